//! `GET`/`POST /api/v1/sso/ticket` (docs/oidc.md §11): the page where a
//! browser redeems an SSO ticket. The GET only asks; the POST, bound to the
//! browser, uses the ticket.

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::docs::PageAnswers;
use super::texts::texts;
use super::view;
use super::{Cookies, binding, bound, form_token, origin_of, page_lang};
use crate::AppState;
use crate::pages::{forms, layout};
use ciam_core::oidc::tickets::Redeemed;

/// The ticket page's form.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct TicketForm {
    /// The ticket.
    #[serde(default)]
    sso_ticket: String,
    /// The token that binds the form to the browser the page was shown to.
    #[serde(default)]
    csrf: String,
}

/// Where a browser redeems an SSO ticket (docs/oidc.md §11): "Continue
/// as …?"; spends nothing.
#[utoipa::path(
    get,
    path = "/api/v1/sso/ticket",
    tag = "oidc",
    params(("sso_ticket" = Option<String>, Query, description = "The ticket of `POST /api/v2/sdk/sso/session-token/sso-ticket`")),
    responses(PageAnswers),
)]
pub(crate) async fn get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let lang = page_lang(None, &headers);
    let t = texts(lang);
    let form: TicketForm = serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    match state.ciam.ticket_view(&form.sso_ticket).await {
        Ok(Some(ticket)) => {
            let (bind, cookie) = binding(&headers, Cookies::of(&state));
            let csrf = form_token(&bind, &form.sso_ticket);
            // The form's post is followed by the app's own login: the
            // origins of its redirects may all be in the chain.
            let mut origins: Vec<String> = std::iter::once(&ticket.initiate_login_uri)
                .chain(&ticket.redirect_uris)
                .filter_map(|u| origin_of(u))
                .collect();
            origins.dedup();
            let origin = (!origins.is_empty()).then(|| origins.join(" "));
            let page =
                view::ticket(lang, &form.sso_ticket, &csrf, &ticket.masked_mobile, &ticket.app_name, origin.as_deref());
            view::setting(page, cookie)
        }
        Ok(None) => view::message(lang, StatusCode::BAD_REQUEST, t.ticket_expired),
        Err(e) => {
            tracing::error!(error = %e, "ticket page failed");
            view::message(lang, StatusCode::SERVICE_UNAVAILABLE, t.busy)
        }
    }
}

/// The ticket page's form: uses the ticket, signs the browser in (never
/// replacing another signed-in user: 409), and sends it to the app's
/// `initiate_login_uri`. Bound to the browser the page was shown to.
#[utoipa::path(
    post,
    path = "/api/v1/sso/ticket",
    tag = "oidc",
    request_body(content = TicketForm, content_type = "application/x-www-form-urlencoded"),
    responses(PageAnswers, (status = 409, content_type = "text/html", body = String, description = "Another user is signed in in this browser; nothing changed")),
)]
pub(crate) async fn post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let lang = page_lang(None, &parts.headers);
    let t = texts(lang);
    let form: TicketForm = match forms::read_form(body).await {
        Ok(bytes) => serde_urlencoded::from_bytes(&bytes).unwrap_or_default(),
        Err(status) => return view::message(lang, status, t.bad_request),
    };
    let cookies = Cookies::of(&state);
    let issuer = state.ciam.config().issuer.clone();
    if !bound(&parts.headers, cookies, &issuer, &form.sso_ticket, &form.csrf) {
        return view::message(lang, StatusCode::FORBIDDEN, t.unbound_form);
    }
    let session = cookies.session(&parts.headers);
    match state.ciam.redeem_ticket(&form.sso_ticket, session.as_deref()).await {
        Ok(Redeemed::SignedIn { redirect, browser }) => {
            let cookie =
                browser.map(|(token, max_age)| cookies.set(cookies.session_name(), token.expose(), max_age, "Lax"));
            view::setting(layout::see_other(&redirect, "/"), cookie)
        }
        Ok(Redeemed::OtherUser) => view::message(lang, StatusCode::CONFLICT, t.other_user),
        Ok(Redeemed::Expired) => view::message(lang, StatusCode::BAD_REQUEST, t.ticket_expired),
        Err(e) => {
            tracing::error!(error = %e, "ticket redemption failed");
            view::message(lang, StatusCode::SERVICE_UNAVAILABLE, t.busy)
        }
    }
}
