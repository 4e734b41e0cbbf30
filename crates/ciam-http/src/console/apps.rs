//! Apps: list, create (its client id with a copy button), edit, enable or
//! disable, members, delete after a confirmation; as OpenID Connect
//! clients, their client type and URIs, and a confidential client's secret.
//!
//! A secret is shown once, in the page that answers the post that made it
//! (the new-app form, or the New secret button): never in a URL, a cookie
//! or a page that can be asked for again (every console page is
//! `no-store`). The script then gives that page the app's own URL, so
//! reloading it asks for the app's page instead of posting again.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ciam_core::admin::{AppInput, UserFilter};
use ciam_core::model::{App, AppAccess, ClientType, User};
use ciam_core::token::OpaqueToken;
use ciam_core::{CiamError, Lang, Reason};
use maud::{Markup, html};
use serde::Deserialize;

use super::app_form::{AppForm, fields};
use super::users::link;
use super::{Console, Done, Empty, Nav, PREFIX, Posted, Texts, again, done_message, failure, see_other, texts, when};
use crate::AppState;
use crate::pages::forms::{Refused, field, notice, urlencode};

/// Members listed on an app's page.
const MEMBERS_SHOWN: u32 = 200;

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
                    thead { tr {
                        th { (t.name) } th { (t.client_id) } th { (t.client_type) } th { (t.access) } th { (t.status) }
                        th { (t.created) }
                    } }
                    tbody {
                        @for app in &apps {
                            tr {
                                td { a href=(format!("{PREFIX}/apps/{}", app.client_id.as_str())) { (app.name) } }
                                td { code { (app.client_id.as_str()) } }
                                td { (client_type(t, app.oidc.client_type)) }
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
        Ok((app, None)) => see_other(&format!("{PREFIX}/apps/{}?done=created", app.client_id.as_str())),
        // The secret, shown once: in the answer to this post.
        Ok((app, Some(secret))) => {
            let shown = Shown { done: Some("created"), secret: Some(&secret), ..Shown::default() };
            render_app(&state, &console, app.client_id.as_str(), shown).await
        }
        Err(e) => {
            let e = form.naming_the_line(e);
            again(console.lang, &e, |error| render_list(&state, &console, None, &form, Some(error))).await
        }
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(client_id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    render_app(&state, &console, &client_id, Shown { done: done.done.as_deref(), ..Shown::default() }).await
}

/// What was typed into a form of an app's page that was refused, shown
/// again with the refusal.
enum Typed<'a> {
    /// The app's fields.
    App(&'a AppForm),
    /// The mobile of a user to assign.
    Member(&'a str),
}

/// What an app's page shows besides the app.
#[derive(Default)]
struct Shown<'a> {
    /// The `?done=` of the post that led here.
    done: Option<&'a str>,
    /// What was typed into a refused form.
    typed: Option<Typed<'a>>,
    /// Why it was refused.
    refused: Option<Refused>,
    /// A confidential client's secret, just made: shown this once.
    secret: Option<&'a OpaqueToken>,
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

async fn render_app(state: &AppState, console: &Console, client_id: &str, shown: Shown<'_>) -> Response {
    match load_app(state, client_id).await {
        Ok(view) => {
            // Whichever post this answers, the language switch returns to
            // the app's page.
            let console = &console.showing(&format!("{PREFIX}/apps/{}", view.app.client_id.as_str()));
            let body = app_view(console, &view, shown);
            console.page(Nav::Apps, &view.app.name, body)
        }
        Err(e) => failure(console.lang, &e),
    }
}

fn app_view(console: &Console, view: &AppView, shown: Shown<'_>) -> Markup {
    let t = console.t;
    let app = &view.app;
    let (done, refused) = (shown.done, shown.refused.as_ref());
    let base = format!("{PREFIX}/apps/{}", app.client_id.as_str());
    let current = AppForm::of(app);
    let (form, member) = match shown.typed {
        Some(Typed::App(form)) => (form.or_stored(&current), ""),
        Some(Typed::Member(mobile)) => (current, mobile),
        None => (current, ""),
    };
    // A refused member's mobile is shown by the members' form only.
    let for_app = refused.filter(|r| !matches!(r, Refused::Field { name, .. } if name == "mobile"));
    html! {
        (notice(done_message(t, done)))
        @if done == Some("created") { p.notice role="status" { (t.app_created) } }
        @if let Some(secret) = shown.secret { (secret_once(t, &base, secret, done == Some("created"))) }
        p.client-id {
            span { (t.client_id) } " "
            code #client-id { (app.client_id.as_str()) } " "
            button.copy type="button" data-copy="client-id" data-copied=(t.copied) { (t.copy) }
        }
        (client_card(console, app, &base))
        section.card #edit-app {
            form method="post" action=(base) {
                (console.csrf_field())
                (fields(console, &form, for_app, false))
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

/// A client secret just made, shown this once. The script gives the page
/// the app's own URL (`data-location`), so a reload asks for the app's page
/// (which does not show it) instead of posting again.
fn secret_once(t: &Texts, base: &str, secret: &OpaqueToken, created: bool) -> Markup {
    html! {
        div.secret #new-secret role="status" data-location=(base) {
            @if !created { p { (t.secret_made) } }
            p.client-id {
                span { (t.client_secret) } " "
                code #client-secret { (secret.expose()) } " "
                button.copy type="button" data-copy="client-secret" data-copied=(t.copied) { (t.copy) }
            }
            p { strong { (t.secret_once) } }
        }
    }
}

/// The app as an OpenID Connect client, read-only, with a confidential
/// client's New secret button.
fn client_card(console: &Console, app: &App, base: &str) -> Markup {
    let t = console.t;
    let oidc = &app.oidc;
    let confidential = oidc.client_type == ClientType::Confidential;
    html! {
        section.card #client {
            h2 { (t.openid_connect) }
            dl.details {
                dt { (t.client_type) } dd #client-type { (client_type(t, oidc.client_type)) }
                dt { (t.redirect_uris) } dd #redirect-uris { (uri_list(t, &oidc.redirect_uris)) }
                dt { (t.post_logout_redirect_uris) } dd { (uri_list(t, &oidc.post_logout_redirect_uris)) }
                dt { (t.initiate_login_uri) } dd { (uri_list(t, oidc.initiate_login_uri.as_slice())) }
                @if confidential {
                    dt { (t.client_secret) }
                    dd { @if oidc.secret_digest.is_some() { (t.secret_kept) } @else { span.tag.bad { (t.no_secret) } } }
                }
            }
            @if confidential {
                div.actions {
                    form method="post" action=(format!("{base}/secret")) {
                        (console.csrf_field())
                        button.secondary type="submit" { (t.new_secret) }
                    }
                    span.muted { (t.new_secret_hint) }
                }
            }
        }
    }
}

/// URIs, one a line; "none" for none.
fn uri_list(t: &Texts, uris: &[String]) -> Markup {
    html! {
        @if uris.is_empty() { span.muted { (t.none_set) } }
        @else { ul.plain { @for uri in uris { li { code { (uri) } } } } }
    }
}

/// A client type as the console names it.
fn client_type(t: &Texts, kind: ClientType) -> &'static str {
    match kind {
        ClientType::Public => t.client_public,
        ClientType::Confidential => t.client_confidential,
    }
}

/// The New secret button: a new secret for a confidential app, shown once
/// in the answer; the old one stops working.
pub(crate) async fn new_secret(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Posted(console, _): Posted<Empty>,
) -> Response {
    match state.ciam.new_client_secret(&client_id).await {
        Ok(secret) => {
            render_app(&state, &console, &client_id, Shown { secret: Some(&secret), ..Shown::default() }).await
        }
        Err(e) => {
            again(console.lang, &e, |error| {
                render_app(&state, &console, &client_id, Shown { refused: Some(error), ..Shown::default() })
            })
            .await
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
            let e = form.naming_the_line(e);
            again(console.lang, &e, |error| {
                let shown = Shown { typed: Some(Typed::App(&form)), refused: Some(error), ..Shown::default() };
                render_app(&state, &console, &client_id, shown)
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
                let shown =
                    Shown { typed: Some(Typed::Member(&member.mobile)), refused: Some(error), ..Shown::default() };
                render_app(&state, &console, &client_id, shown)
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
