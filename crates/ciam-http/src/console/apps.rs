//! Apps: list, create (its client id with a copy button), edit, enable or
//! disable, members, delete after a confirmation.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ciam_core::admin::{AppInput, UserFilter};
use ciam_core::model::{App, AppAccess, User};
use ciam_core::{CiamError, Lang, Reason};
use maud::{Markup, html};
use serde::Deserialize;

use super::users::link;
use super::{Console, Done, Empty, Nav, PREFIX, Posted, again, done_message, failure, see_other, texts, when};
use crate::AppState;
use crate::pages::forms::{Refused, checkbox, choice, field, form_error, notice, number, one_of, ticked, urlencode};

/// Members listed on an app's page.
const MEMBERS_SHOWN: u32 = 200;

/// The app form's fields.
#[derive(Deserialize, Default)]
pub(crate) struct AppForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    password_expiry_check: Option<String>,
    #[serde(default)]
    access: String,
    #[serde(default)]
    session_ttl: String,
    #[serde(default)]
    id_token_ttl: String,
}

impl AppForm {
    fn of(app: &App) -> Self {
        AppForm {
            name: app.name.clone(),
            enabled: app.enabled.then(|| "true".to_owned()),
            password_expiry_check: app.password_expiry_check.then(|| "true".to_owned()),
            access: app.access.as_str().to_owned(),
            session_ttl: app.session_ttl.to_string(),
            id_token_ttl: app.id_token_ttl.to_string(),
        }
    }

    fn input(&self) -> Result<AppInput, CiamError> {
        Ok(AppInput {
            name: Some(self.name.clone()),
            enabled: Some(ticked("enabled", self.enabled.as_deref())?),
            password_expiry_check: Some(ticked("password_expiry_check", self.password_expiry_check.as_deref())?),
            // Not sent: the API's default, or kept.
            access: match self.access.as_str() {
                "" => None,
                access => Some(
                    AppAccess::parse(access)
                        .ok_or_else(|| ciam_core::admin::invalid("access", one_of(&["all", "assigned"])))?,
                ),
            },
            session_ttl: number("session_ttl", &self.session_ttl)?,
            id_token_ttl: number("id_token_ttl", &self.id_token_ttl)?,
            ..AppInput::default()
        })
    }
}

/// The fields of an app, for the new-app and edit forms.
fn fields(console: &Console, form: &AppForm, error: Option<&Refused>, new: bool) -> Markup {
    let t = console.t;
    html! {
        div.grid {
            (field(t.name, "name", &form.name, "text", error))
            @if !new {
                (field(t.session_ttl, "session_ttl", &form.session_ttl, "number", error))
                (field(t.id_token_ttl, "id_token_ttl", &form.id_token_ttl, "number", error))
            }
            (choice(t.access, "access", &form.access, &[("all", t.access_all), ("assigned", t.access_assigned)], error))
        }
        @if !new { (checkbox(t.enabled, "enabled", ticked("", form.enabled.as_deref()).unwrap_or(false))) }
        (checkbox(
            t.password_expiry_check,
            "password_expiry_check",
            ticked("", form.password_expiry_check.as_deref()).unwrap_or(false)
        ))
        (form_error(error, &["name", "session_ttl", "id_token_ttl", "access"]))
    }
}

pub(crate) async fn list(State(state): State<AppState>, console: Console, Query(done): Query<Done>) -> Response {
    render_list(&state, &console, done.done.as_deref(), &AppForm::default(), None).await
}

async fn render_list(
    state: &AppState,
    console: &Console,
    done: Option<&str>,
    form: &AppForm,
    error: Option<Refused>,
) -> Response {
    let t = console.t;
    let apps = match state.ciam.apps().await {
        Ok(apps) => apps,
        Err(e) => return failure(console.lang, &e),
    };
    let body = html! {
        (notice(done_message(t, done)))
        @if apps.is_empty() { p.muted { (t.no_apps) } } @else {
            div.scroll {
                table #apps {
                    thead { tr { th { (t.name) } th { (t.client_id) } th { (t.access) } th { (t.status) } th { (t.created) } } }
                    tbody {
                        @for app in &apps {
                            tr {
                                td { a href=(format!("{PREFIX}/apps/{}", app.client_id.as_str())) { (app.name) } }
                                td { code { (app.client_id.as_str()) } }
                                td { (if app.access == AppAccess::Assigned { t.access_assigned } else { t.access_all }) }
                                td { @if app.enabled { (t.enabled) } @else { span.tag.bad { (t.disabled) } } }
                                td { (when(app.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        section.card #new-app {
            h2 { (t.new_app) }
            form method="post" action=(format!("{PREFIX}/apps")) {
                (console.csrf_field())
                (fields(console, form, error.as_ref(), true))
                button type="submit" { (t.create) }
            }
        }
    };
    console.page(Nav::Apps, t.apps, body)
}

pub(crate) async fn create(State(state): State<AppState>, Posted(console, form): Posted<AppForm>) -> Response {
    let created = match form.input() {
        Ok(input) => state.ciam.create_app(AppInput { enabled: Some(true), ..input }).await,
        Err(e) => Err(e),
    };
    match created {
        Ok((app, _)) => see_other(&format!("{PREFIX}/apps/{}?done=created", app.client_id.as_str())),
        Err(e) => again(console.lang, &e, |error| render_list(&state, &console, None, &form, Some(error))).await,
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(client_id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    render_app(&state, &console, &client_id, done.done.as_deref(), None, None).await
}

/// What was typed into a form of an app's page that was refused, shown
/// again with the refusal.
enum Typed<'a> {
    /// The app's fields.
    App(&'a AppForm),
    /// The mobile of a user to assign.
    Member(&'a str),
}

/// An app's page.
struct AppView {
    app: App,
    /// Its first [`MEMBERS_SHOWN`] members.
    members: Vec<User>,
    /// Whether it has more.
    more: bool,
}

async fn load_app(state: &AppState, client_id: &str) -> Result<AppView, CiamError> {
    let app = state.ciam.app(client_id).await?;
    let mut members = state.ciam.app_members(client_id, MEMBERS_SHOWN + 1).await?;
    let more = members.len() > MEMBERS_SHOWN as usize;
    members.truncate(MEMBERS_SHOWN as usize);
    Ok(AppView { app, members, more })
}

async fn render_app(
    state: &AppState,
    console: &Console,
    client_id: &str,
    done: Option<&str>,
    typed: Option<Typed<'_>>,
    refused: Option<Refused>,
) -> Response {
    match load_app(state, client_id).await {
        Ok(view) => {
            let body = app_view(console, &view, done, typed, refused.as_ref());
            console.page(Nav::Apps, &view.app.name, body)
        }
        Err(e) => failure(console.lang, &e),
    }
}

fn app_view(
    console: &Console,
    view: &AppView,
    done: Option<&str>,
    typed: Option<Typed<'_>>,
    refused: Option<&Refused>,
) -> Markup {
    let t = console.t;
    let app = &view.app;
    let base = format!("{PREFIX}/apps/{}", app.client_id.as_str());
    let current = AppForm::of(app);
    let (form, member) = match typed {
        Some(Typed::App(form)) => (form, ""),
        Some(Typed::Member(mobile)) => (&current, mobile),
        None => (&current, ""),
    };
    // A refused member's mobile is shown by the members' form only.
    let for_app = refused.filter(|r| !matches!(r, Refused::Field { name, .. } if name == "mobile"));
    html! {
        (notice(done_message(t, done)))
        @if done == Some("created") { p.notice role="status" { (t.app_created) } }
        p.client-id {
            span { (t.client_id) } " "
            code #client-id { (app.client_id.as_str()) } " "
            button.copy type="button" data-copy="client-id" data-copied=(t.copied) { (t.copy) }
        }
        section.card #edit-app {
            form method="post" action=(base) {
                (console.csrf_field())
                (fields(console, form, for_app, false))
                button type="submit" { (t.save) }
            }
        }
        (members_card(console, view, &base, member, refused))
        p { a.danger href=(format!("{base}/delete")) { (t.delete_app) } }
    }
}

fn members_card(console: &Console, view: &AppView, base: &str, member: &str, refused: Option<&Refused>) -> Markup {
    let t = console.t;
    html! {
        section.card #members {
            h2 { (t.members) }
            @if view.members.is_empty() { p.muted { (t.no_memberships) } }
            ul.plain {
                @for user in &view.members {
                    li {
                        (link(user))
                        form.inline method="post" action=(format!("{base}/members/{}/remove", urlencode(user.id.as_str()))) {
                            (console.csrf_field())
                            button.link type="submit" { (t.remove) }
                        }
                    }
                }
            }
            @if view.more { p.muted { (t.more_members) } }
            form method="post" action=(format!("{base}/members")) {
                (console.csrf_field())
                (field(t.add_member, "mobile", member, "text", refused))
                button type="submit" { (t.add_member) }
            }
        }
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Posted(console, form): Posted<AppForm>,
) -> Response {
    let updated = match form.input() {
        Ok(input) => state.ciam.update_app(&client_id, input).await.map(drop),
        Err(e) => Err(e),
    };
    match updated {
        Ok(()) => see_other(&format!("{PREFIX}/apps/{client_id}?done=saved")),
        Err(e) => {
            again(console.lang, &e, |error| {
                render_app(&state, &console, &client_id, None, Some(Typed::App(&form)), Some(error))
            })
            .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct Member {
    #[serde(default)]
    mobile: String,
}

pub(crate) async fn add_member(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Posted(console, member): Posted<Member>,
) -> Response {
    let filter = UserFilter { mobile: Some(member.mobile.clone()), limit: Some(1), offset: None };
    let added = match state.ciam.users(&filter).await {
        Ok(users) => match users.first() {
            Some(user) => state.ciam.set_member(&client_id, user.id.as_str(), true).await,
            None => Err(ciam_core::admin::invalid(
                "mobile",
                Reason::new(texts(Lang::En).no_such_user, texts(Lang::Zh).no_such_user),
            )),
        },
        Err(e) => Err(e),
    };
    match added {
        Ok(()) => see_other(&format!("{PREFIX}/apps/{client_id}?done=saved")),
        Err(e) => {
            again(console.lang, &e, |error| {
                render_app(&state, &console, &client_id, None, Some(Typed::Member(&member.mobile)), Some(error))
            })
            .await
        }
    }
}

pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Path((client_id, user_id)): Path<(String, String)>,
    Posted(console, _): Posted<Empty>,
) -> Response {
    match state.ciam.set_member(&client_id, &user_id, false).await {
        Ok(()) => see_other(&format!("{PREFIX}/apps/{client_id}?done=saved")),
        Err(e) => failure(console.lang, &e),
    }
}

pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    console: Console,
    Path(client_id): Path<String>,
) -> Response {
    let t = console.t;
    let app = match state.ciam.app(&client_id).await {
        Ok(app) => app,
        Err(e) => return failure(console.lang, &e),
    };
    let body = html! {
        section.card.danger #confirm-delete {
            p { strong { (app.name) } " · " code { (app.client_id.as_str()) } }
            p { (t.delete_app_warning) }
            form method="post" action=(format!("{PREFIX}/apps/{client_id}/delete")) {
                (console.csrf_field())
                button.danger type="submit" { (t.delete) }
                " " a href=(format!("{PREFIX}/apps/{client_id}")) { (t.cancel) }
            }
        }
    };
    console.page(Nav::Apps, t.delete_app, body)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Posted(console, _): Posted<Empty>,
) -> Response {
    match state.ciam.delete_app(&client_id).await {
        Ok(()) => see_other(&format!("{PREFIX}/apps?done=deleted")),
        Err(e) => failure(console.lang, &e),
    }
}
