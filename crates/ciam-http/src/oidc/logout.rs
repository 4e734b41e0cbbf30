//! `GET`/`POST /api/v1/logout` (docs/oidc.md): RP-initiated logout. The
//! "Sign out?" page posts back here with `confirm`, bound to the browser.

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ciam_core::oidc::logout::{LoggedOut, LogoutParams};
use serde::Deserialize;

use super::docs::PageAnswers;
use super::texts::texts;
use super::view;
use super::{Cookies, binding, bound, form_token, origin_of, page_lang};
use crate::AppState;
use crate::pages::{forms, layout};

/// What the confirm form posts beside the logout's parameters.
#[derive(Deserialize, Default)]
struct Confirm {
    confirm: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// What a binding token of the "Sign out?" form is made for.
const LOGOUT_FORM: &str = "logout";

/// RP-initiated logout (docs/oidc.md §8): with an `id_token_hint` for the
/// signed-in user, at once; otherwise after a "Sign out?" page.
#[utoipa::path(get, path = "/api/v1/logout", tag = "oidc", params(LogoutParams), responses(PageAnswers))]
pub(crate) async fn get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    match serde_urlencoded::from_str::<LogoutParams>(&query) {
        Ok(params) => answer(&state, &headers, &params, false).await,
        Err(_) => view::unreadable(&headers, StatusCode::BAD_REQUEST),
    }
}

/// RP-initiated logout with its parameters form-encoded; with `confirm`
/// and `csrf`, the "Sign out?" page's answer.
#[utoipa::path(
    post,
    path = "/api/v1/logout",
    tag = "oidc",
    request_body(content = Option<LogoutParams>, content_type = "application/x-www-form-urlencoded"),
    responses(PageAnswers),
)]
pub(crate) async fn post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = forms::read_form(body).await else {
        return view::unreadable(&parts.headers, StatusCode::BAD_REQUEST);
    };
    // A form is `name=value` pairs: a bare word is not one.
    if String::from_utf8_lossy(&bytes).split('&').any(|pair| !pair.is_empty() && !pair.contains('=')) {
        return view::unreadable(&parts.headers, StatusCode::BAD_REQUEST);
    }
    let (Ok(params), Ok(confirm)) =
        (serde_urlencoded::from_bytes::<LogoutParams>(&bytes), serde_urlencoded::from_bytes::<Confirm>(&bytes))
    else {
        return view::unreadable(&parts.headers, StatusCode::BAD_REQUEST);
    };
    let confirmed = confirm.confirm.is_some();
    let issuer = state.ciam.config().issuer.clone();
    if confirmed && !bound(&parts.headers, Cookies::of(&state), &issuer, LOGOUT_FORM, &confirm.csrf) {
        let lang = page_lang(None, &parts.headers);
        return view::message(lang, StatusCode::FORBIDDEN, texts(lang).unbound_form);
    }
    answer(&state, &parts.headers, &params, confirmed).await
}

async fn answer(state: &AppState, headers: &HeaderMap, params: &LogoutParams, confirmed: bool) -> Response {
    let lang = page_lang(None, headers);
    let cookies = Cookies::of(state);
    let session = cookies.session(headers);
    match state.ciam.end_session(params, session.as_deref(), confirmed).await {
        Ok(LoggedOut::Confirm) => {
            let (bind, cookie) = binding(headers, cookies);
            let csrf = form_token(&bind, LOGOUT_FORM);
            let fields: Vec<(&str, &str)> = [
                ("id_token_hint", &params.id_token_hint),
                ("client_id", &params.client_id),
                ("post_logout_redirect_uri", &params.post_logout_redirect_uri),
                ("redirect_url", &params.redirect_url),
                ("state", &params.state),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
            .collect();
            let target = params.post_logout_redirect_uri.as_deref().or(params.redirect_url.as_deref());
            let origin = target.and_then(origin_of);
            view::setting(view::confirm_logout(lang, &csrf, &fields, origin.as_deref()), cookie)
        }
        Ok(outcome) => {
            let gone = cookies.set(cookies.session_name(), "", 0, "Lax");
            let response = match outcome {
                LoggedOut::Redirect(to) => layout::see_other(&to, "/"),
                _ => view::signed_out(lang),
            };
            view::setting(response, Some(gone))
        }
        Err(e) => {
            tracing::error!(error = %e, "logout failed");
            view::message(lang, StatusCode::SERVICE_UNAVAILABLE, texts(lang).busy)
        }
    }
}
