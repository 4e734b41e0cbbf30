//! Users: search by mobile, create, edit, set a password, unlock, end
//! sessions, memberships and recent events. Each page has a loader that
//! returns a typed view and a function that only draws it.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ciam_core::admin::{AuditFilter, UserFilter, UserInput};
use ciam_core::clock::UnixTime;
use ciam_core::model::{AuditEntry, User};
use ciam_core::policy::PasswordPolicy;
use ciam_core::{CiamError, Lang, Password};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, Done, Empty, Nav, PREFIX, Posted, again, done_message, failure, see_other, when};
use crate::AppState;
use crate::pages::forms::{Refused, checkbox, field, form_error, nonblank, notice, ticked, urlencode};

/// Users per page.
const PAGE: u32 = 25;

#[derive(Deserialize, Default)]
pub(crate) struct Search {
    mobile: Option<String>,
    page: Option<u32>,
}

/// The new-user form's fields.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct NewUser {
    mobile: String,
    password: String,
    user_name: String,
    name: String,
    email: String,
}

/// A page of the user list.
struct ListView {
    /// The mobile searched for, if any.
    mobile: Option<String>,
    /// The page shown, from 0.
    page: u32,
    /// Whether a next page has users.
    more: bool,
    /// The users, each with the end of its lock when it is locked.
    rows: Vec<(User, Option<UnixTime>)>,
}

async fn load_list(state: &AppState, search: &Search) -> Result<ListView, CiamError> {
    // Past the last page the API can reach, the list is simply empty.
    let page = search.page.unwrap_or(0).min(ciam_core::admin::MAX_OFFSET / PAGE);
    let mobile = search.mobile.as_deref().and_then(nonblank);
    let filter = UserFilter { mobile: mobile.clone(), limit: Some(PAGE + 1), offset: Some(page.saturating_mul(PAGE)) };
    let mut users = state.ciam.users(&filter).await?;
    let more = users.len() > PAGE as usize;
    users.truncate(PAGE as usize);
    let locks = state.ciam.accounts_locked_until(&users).await?;
    Ok(ListView { mobile, page, more, rows: users.into_iter().zip(locks).collect() })
}

pub(crate) async fn list(State(state): State<AppState>, console: Console, Query(search): Query<Search>) -> Response {
    show_list(&state, &console, &search, &NewUser::default(), None).await
}

async fn show_list(
    state: &AppState,
    console: &Console,
    search: &Search,
    form: &NewUser,
    refused: Option<Refused>,
) -> Response {
    match load_list(state, search).await {
        Ok(view) => console.page(Nav::Users, console.t.users, list_view(console, &view, form, refused.as_ref())),
        Err(e) => failure(console.lang, &e),
    }
}

fn list_view(console: &Console, view: &ListView, form: &NewUser, refused: Option<&Refused>) -> Markup {
    let t = console.t;
    let mobile = view.mobile.as_deref();
    let link = |page: u32| {
        let mobile = mobile.map(|m| format!("&mobile={}", urlencode(m))).unwrap_or_default();
        format!("{PREFIX}/users?page={page}{mobile}")
    };
    html! {
        form.search method="get" action=(format!("{PREFIX}/users")) {
            label.field {
                span { (t.mobile) }
                input type="search" name="mobile" value=(mobile.unwrap_or_default()) placeholder=(t.mobile_hint);
            }
            button type="submit" { (t.search) }
        }
        @if view.rows.is_empty() {
            p.muted { (if mobile.is_some() { t.no_such_user } else { t.no_users }) }
        } @else {
            (users_table(console, &view.rows))
        }
        nav.pages {
            @if view.page > 0 { a href=(link(view.page - 1)) { (t.previous) } }
            @if view.more { a href=(link(view.page + 1)) { (t.next) } }
        }
        (new_user_card(console, form, refused))
    }
}

fn users_table(console: &Console, rows: &[(User, Option<UnixTime>)]) -> Markup {
    let t = console.t;
    html! {
        div.scroll {
            table #users {
                thead { tr { th { (t.mobile) } th { (t.user_name) } th { (t.name) } th { (t.status) } th { (t.created) } } }
                tbody {
                    @for (user, locked_until) in rows {
                        tr {
                            td { (link(user)) }
                            td { (user.user_name.as_deref().unwrap_or("")) }
                            td { (user.name.as_deref().unwrap_or("")) }
                            td {
                                @if user.disabled { span.tag.bad { (t.disabled) } }
                                @else if let Some(until) = locked_until {
                                    span.tag.bad.locked title=(when(*until)) { (t.locked) }
                                } @else { (t.active) }
                            }
                            td { (when(user.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

fn new_user_card(console: &Console, form: &NewUser, refused: Option<&Refused>) -> Markup {
    let t = console.t;
    html! {
        section.card #new-user {
            h2 { (t.new_user) }
            form method="post" action=(format!("{PREFIX}/users")) {
                (console.csrf_field())
                div.grid {
                    (field(t.mobile, "mobile", &form.mobile, "text", refused))
                    (field(t.password, "password", "", "password", refused))
                    (field(t.user_name, "user_name", &form.user_name, "text", refused))
                    (field(t.name, "name", &form.name, "text", refused))
                    (field(t.email, "email", &form.email, "email", refused))
                }
                (form_error(refused, &["mobile", "password", "user_name", "name", "email"]))
                button type="submit" { (t.create) }
            }
        }
    }
}

pub(crate) async fn create(State(state): State<AppState>, Posted(console, form): Posted<NewUser>) -> Response {
    let input = UserInput {
        mobile: Some(form.mobile.clone()),
        password: Some(Password::new(form.password.clone())),
        user_name: Some(nonblank(&form.user_name)),
        name: Some(nonblank(&form.name)),
        email: Some(nonblank(&form.email)),
        ..UserInput::default()
    };
    match state.ciam.create_user(input).await {
        Ok(user) => see_other(&format!("{PREFIX}/users/{}?done=saved", urlencode(user.id.as_str()))),
        Err(e) => {
            let search = Search::default();
            again(console.lang, &e, |refused| show_list(&state, &console, &search, &form, Some(refused))).await
        }
    }
}

/// The profile form's fields.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Profile {
    user_name: String,
    name: String,
    email: String,
    disabled: Option<String>,
}

/// One user's page.
struct UserView {
    user: User,
    locked_until: Option<UnixTime>,
    /// The apps the user is assigned to: client id and name.
    apps: Vec<(String, String)>,
    /// The user's latest audit events.
    events: Vec<AuditEntry>,
    /// The password policy, for the new-password tip.
    policy: PasswordPolicy,
}

async fn load_user(state: &AppState, id: &str) -> Result<UserView, CiamError> {
    let ciam = &state.ciam;
    let user = ciam.user(id).await?;
    let locked_until = ciam.account_locked_until(&user).await?;
    // Each app the user is assigned to, by name (the apps are cached).
    let named = ciam.apps().await?;
    let apps = ciam
        .user_apps(&user)
        .await?
        .into_iter()
        .map(|client_id| {
            let name = named.iter().find(|a| a.client_id == client_id).map(|a| a.name.clone()).unwrap_or_default();
            (client_id.to_string(), name)
        })
        .collect();
    let filter = AuditFilter { user_id: Some(id.to_owned()), limit: Some(20), ..AuditFilter::default() };
    let events = ciam.audit_events(&filter).await?;
    let policy = ciam.password_policy().await?;
    Ok(UserView { user, locked_until, apps, events, policy })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let message = done_message(console.t, done.done.as_deref());
    show_user(&state, &console, &id, message, None, None).await
}

async fn show_user(
    state: &AppState,
    console: &Console,
    id: &str,
    message: Option<&str>,
    profile: Option<&Profile>,
    refused: Option<Refused>,
) -> Response {
    match load_user(state, id).await {
        Ok(view) => {
            let body = user_view(console, &view, message, profile, refused.as_ref());
            console.page(Nav::Users, view.user.mobile.as_str(), body)
        }
        Err(e) => failure(console.lang, &e),
    }
}

fn user_view(
    console: &Console,
    view: &UserView,
    message: Option<&str>,
    profile: Option<&Profile>,
    refused: Option<&Refused>,
) -> Markup {
    let (t, user) = (console.t, &view.user);
    html! {
        (notice(message))
        p.lead {
            code { (user.id.as_str()) }
            " · " (t.created) " " (when(user.created_at))
            " · " (t.password_changed) " " (when(user.password_changed_at))
        }
        div.columns {
            (profile_card(console, user, profile, refused))
            (status_card(console, view, refused))
        }
        section.card #memberships {
            h2 { (t.memberships) }
            @if view.apps.is_empty() { p.muted { (t.no_memberships) } }
            ul.plain {
                @for (client_id, name) in &view.apps {
                    li { a href=(format!("{PREFIX}/apps/{client_id}")) { (name) } " " code.muted { (client_id) } }
                }
            }
        }
        section.card #events {
            h2 { (t.recent_events) }
            (super::audit::table(console, &view.events))
            p { a href=(format!("{PREFIX}/audit?user_id={}", urlencode(user.id.as_str()))) { (t.audit) " →" } }
        }
    }
}

/// The profile form: what was typed when it was refused, else what is
/// stored.
fn profile_card(console: &Console, user: &User, profile: Option<&Profile>, refused: Option<&Refused>) -> Markup {
    let t = console.t;
    let value = |typed: Option<&str>, stored: &Option<String>| {
        typed.map(str::to_owned).unwrap_or_else(|| stored.clone().unwrap_or_default())
    };
    let disabled = profile.map_or(user.disabled, |p| ticked("", p.disabled.as_deref()).unwrap_or(false));
    html! {
        section.card #profile {
            h2 { (t.profile) }
            form method="post" action=(user_path(user)) {
                (console.csrf_field())
                (field(t.user_name, "user_name", &value(profile.map(|p| p.user_name.as_str()), &user.user_name), "text", refused))
                (field(t.name, "name", &value(profile.map(|p| p.name.as_str()), &user.name), "text", refused))
                (field(t.email, "email", &value(profile.map(|p| p.email.as_str()), &user.email), "email", refused))
                (checkbox(t.disabled, "disabled", disabled))
                (form_error(refused, &["user_name", "name", "email", "password"]))
                button type="submit" { (t.save) }
            }
        }
    }
}

/// The lock with its unlock button, ending sessions, and a new password.
fn status_card(console: &Console, view: &UserView, refused: Option<&Refused>) -> Markup {
    let t = console.t;
    let base = user_path(&view.user);
    let policy = &view.policy;
    html! {
        section.card #lock {
            h2 { (t.status) }
            @match view.locked_until {
                Some(until) => p { span.tag.bad #locked-until { (t.locked_until) " " (when(until)) } },
                None => p { span.tag.good { (t.not_locked) } },
            }
            div.actions {
                @if view.locked_until.is_some() {
                    form method="post" action=(format!("{base}/unlock")) {
                        (console.csrf_field())
                        button type="submit" { (t.unlock) }
                    }
                }
                form method="post" action=(format!("{base}/sessions")) {
                    (console.csrf_field())
                    button.secondary type="submit" { (t.end_sessions) }
                }
            }
            h2 { (t.set_password) }
            form method="post" action=(format!("{base}/password")) {
                (console.csrf_field())
                (field(t.password, "password", "", "password", refused))
                p.muted { (t.password_tip) " " (length(console.lang, policy.min_length, policy.max_length)) (policy.tip.get(console.lang)) }
                button type="submit" { (t.set_password) }
            }
        }
    }
}

/// The policy's length rule, before its tip.
fn length(lang: Lang, min: u32, max: u32) -> String {
    match lang {
        Lang::En => format!("{min} to {max} characters; "),
        Lang::Zh => format!("{min} 到 {max} 个字符;"),
    }
}

/// A user's page.
fn user_path(user: &User) -> String {
    format!("{PREFIX}/users/{}", urlencode(user.id.as_str()))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(console, profile): Posted<Profile>,
) -> Response {
    let updated = match ticked("disabled", profile.disabled.as_deref()) {
        Ok(disabled) => {
            let input = UserInput {
                user_name: Some(nonblank(&profile.user_name)),
                name: Some(nonblank(&profile.name)),
                email: Some(nonblank(&profile.email)),
                disabled: Some(disabled),
                ..UserInput::default()
            };
            state.ciam.update_user(&id, input).await.map(drop)
        }
        Err(e) => Err(e),
    };
    outcome(&state, &console, &id, updated, "saved", Some(&profile)).await
}

#[derive(Deserialize)]
pub(crate) struct NewPassword {
    #[serde(default)]
    password: String,
}

pub(crate) async fn set_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(console, form): Posted<NewPassword>,
) -> Response {
    let input = UserInput { password: Some(Password::new(form.password)), ..UserInput::default() };
    outcome(&state, &console, &id, state.ciam.update_user(&id, input).await.map(drop), "password", None).await
}

pub(crate) async fn unlock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(console, _): Posted<Empty>,
) -> Response {
    outcome(&state, &console, &id, state.ciam.unlock_user(&id).await, "unlocked", None).await
}

pub(crate) async fn end_sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(console, _): Posted<Empty>,
) -> Response {
    match state.ciam.revoke_sessions(&id).await {
        Ok(n) => {
            let message = format!("{} {n}", console.t.sessions_ended);
            let console = &console.showing(&format!("{PREFIX}/users/{}", urlencode(&id)));
            show_user(&state, console, &id, Some(&message), None, None).await
        }
        Err(e) => failure(console.lang, &e),
    }
}

/// After a post on a user: back to the page with `done`, or the page with
/// the refusal at its field.
async fn outcome(
    state: &AppState,
    console: &Console,
    id: &str,
    result: Result<(), CiamError>,
    done: &str,
    profile: Option<&Profile>,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("{PREFIX}/users/{}?done={done}", urlencode(id))),
        Err(e) => {
            // The user's page, whatever the post's own path (which may be no
            // page): where a language switch returns.
            let console = &console.showing(&format!("{PREFIX}/users/{}", urlencode(id)));
            again(console.lang, &e, |refused| show_user(state, console, id, None, profile, Some(refused))).await
        }
    }
}

/// A user's line in other pages' tables.
pub(crate) fn link(user: &User) -> Markup {
    html! { a href=(user_path(user)) { (user.mobile.as_str()) } }
}
