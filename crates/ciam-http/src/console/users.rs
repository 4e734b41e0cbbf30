//! Users: search by mobile, create, edit, set a password, unlock, end
//! sessions, memberships and recent events.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ciam_core::admin::{AuditFilter, UserFilter, UserInput};
use ciam_core::model::User;
use ciam_core::{CiamError, Lang, Password};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Console, Done, Empty, Nav, PREFIX, Posted, again, checkbox, done_message, failure, field, form_error, nonblank,
    notice, see_other, ticked, urlencode, when,
};
use crate::AppState;

/// Users per page.
const PAGE: u32 = 25;

#[derive(Deserialize)]
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

/// The policy's length rule, before its tip.
fn length(lang: Lang, min: u32, max: u32) -> String {
    match lang {
        Lang::En => format!("{min} to {max} characters; "),
        Lang::Zh => format!("{min} 到 {max} 个字符;"),
    }
}

pub(crate) async fn list(State(state): State<AppState>, console: Console, Query(search): Query<Search>) -> Response {
    render_list(&state, &console, &search, &NewUser::default(), None).await
}

async fn render_list(
    state: &AppState,
    console: &Console,
    search: &Search,
    form: &NewUser,
    error: Option<(String, String)>,
) -> Response {
    let t = console.t;
    // Past the last page the API can reach, the list is simply empty.
    let page = search.page.unwrap_or(0).min(ciam_core::admin::MAX_OFFSET / PAGE);
    let mobile = search.mobile.as_deref().map(str::trim).filter(|m| !m.is_empty());
    let filter = UserFilter {
        mobile: mobile.map(str::to_owned),
        limit: Some(PAGE + 1),
        offset: Some(page.saturating_mul(PAGE)),
    };
    let mut users = match state.ciam.users(&filter).await {
        Ok(users) => users,
        Err(e) => return failure(console.lang, &e),
    };
    let more = users.len() > PAGE as usize;
    users.truncate(PAGE as usize);
    let locks = match state.ciam.accounts_locked_until(&users).await {
        Ok(locks) => locks,
        Err(e) => return failure(console.lang, &e),
    };
    let link = |page: u32| {
        let mobile = mobile.map(|m| format!("&mobile={}", urlencode(m))).unwrap_or_default();
        format!("{PREFIX}/users?page={page}{mobile}")
    };
    let error = error.as_ref();
    let body = html! {
        form.search method="get" action=(format!("{PREFIX}/users")) {
            label.field {
                span { (t.mobile) }
                input type="search" name="mobile" value=(mobile.unwrap_or_default()) placeholder=(t.mobile_hint);
            }
            button type="submit" { (t.search) }
        }
        @if users.is_empty() {
            p.muted { (if mobile.is_some() { t.no_such_user } else { t.no_users }) }
        } @else {
            div.scroll {
                table #users {
                    thead { tr { th { (t.mobile) } th { (t.user_name) } th { (t.name) } th { (t.status) } th { (t.created) } } }
                    tbody {
                        @for (user, locked_until) in users.iter().zip(&locks) {
                            tr {
                                td { a href=(format!("{PREFIX}/users/{}", urlencode(user.id.as_str()))) { (user.mobile.as_str()) } }
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
        nav.pages {
            @if page > 0 { a href=(link(page - 1)) { (t.previous) } }
            @if more { a href=(link(page + 1)) { (t.next) } }
        }
        section.card #new-user {
            h2 { (t.new_user) }
            form method="post" action=(format!("{PREFIX}/users")) {
                (console.csrf_field())
                div.grid {
                    (field(t.mobile, "mobile", &form.mobile, "text", error))
                    (field(t.password, "password", "", "password", error))
                    (field(t.user_name, "user_name", &form.user_name, "text", error))
                    (field(t.name, "name", &form.name, "text", error))
                    (field(t.email, "email", &form.email, "email", error))
                }
                (form_error(error, &["mobile", "password", "user_name", "name", "email"]))
                button type="submit" { (t.create) }
            }
        }
    };
    console.page(Nav::Users, t.users, body)
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
            let search = Search { mobile: None, page: None };
            again(console.lang, &e, |error| render_list(&state, &console, &search, &form, Some(error))).await
        }
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let message = done_message(console.t, done.done.as_deref());
    render_user(&state, &console, &id, message, None, None).await
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

async fn render_user(
    state: &AppState,
    console: &Console,
    id: &str,
    message: Option<&str>,
    profile: Option<&Profile>,
    error: Option<(String, String)>,
) -> Response {
    let t = console.t;
    let ciam = &state.ciam;
    let loaded = async {
        let user = ciam.user(id).await?;
        let locked_until = ciam.account_locked_until(&user).await?;
        // Each app the user is assigned to, by name (the apps are cached).
        let named = ciam.apps().await?;
        let apps: Vec<(String, String)> = ciam
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
        Ok::<_, CiamError>((user, locked_until, apps, events, policy))
    };
    let (user, locked_until, apps, events, policy) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return failure(console.lang, &e),
    };
    let base = format!("{PREFIX}/users/{}", urlencode(user.id.as_str()));
    let value = |typed: Option<&str>, stored: &Option<String>| {
        typed.map(str::to_owned).unwrap_or_else(|| stored.clone().unwrap_or_default())
    };
    let disabled = profile.map_or(user.disabled, |p| ticked("", p.disabled.as_deref()).unwrap_or(false));
    let error = error.as_ref();
    let body = html! {
        (notice(message))
        p.lead {
            code { (user.id.as_str()) }
            " · " (t.created) " " (when(user.created_at))
            " · " (t.password_changed) " " (when(user.password_changed_at))
        }
        div.columns {
            section.card #profile {
                h2 { (t.profile) }
                form method="post" action=(base) {
                    (console.csrf_field())
                    (field(t.user_name, "user_name", &value(profile.map(|p| p.user_name.as_str()), &user.user_name), "text", error))
                    (field(t.name, "name", &value(profile.map(|p| p.name.as_str()), &user.name), "text", error))
                    (field(t.email, "email", &value(profile.map(|p| p.email.as_str()), &user.email), "email", error))
                    (checkbox(t.disabled, "disabled", disabled))
                    (form_error(error, &["user_name", "name", "email", "password"]))
                    button type="submit" { (t.save) }
                }
            }
            section.card #lock {
                h2 { (t.status) }
                @match locked_until {
                    Some(until) => p { span.tag.bad #locked-until { (t.locked_until) " " (when(until)) } },
                    None => p { span.tag.good { (t.not_locked) } },
                }
                div.actions {
                    @if locked_until.is_some() {
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
                    (field(t.password, "password", "", "password", error))
                    p.muted { (t.password_tip) " " (length(console.lang, policy.min_length, policy.max_length)) (policy.tip.get(console.lang)) }
                    button type="submit" { (t.set_password) }
                }
            }
        }
        section.card #memberships {
            h2 { (t.memberships) }
            @if apps.is_empty() { p.muted { (t.no_memberships) } }
            ul.plain {
                @for (client_id, name) in &apps {
                    li { a href=(format!("{PREFIX}/apps/{client_id}")) { (name) } " " code.muted { (client_id) } }
                }
            }
        }
        section.card #events {
            h2 { (t.recent_events) }
            (super::audit::table(console, &events))
            p { a href=(format!("{PREFIX}/audit?user_id={}", urlencode(user.id.as_str()))) { (t.audit) " →" } }
        }
    };
    console.page(Nav::Users, user.mobile.as_str(), body)
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
            render_user(&state, &console, &id, Some(&message), None, None).await
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
        Err(e) => again(console.lang, &e, |error| render_user(state, console, id, None, profile, Some(error))).await,
    }
}

/// A user's line in other pages' tables.
pub(crate) fn link(user: &User) -> Markup {
    html! { a href=(format!("{PREFIX}/users/{}", urlencode(user.id.as_str()))) { (user.mobile.as_str()) } }
}
