//! The authorization endpoint and the hosted login page's forms.

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ciam_core::call::{Answered, Caller};
use ciam_core::model::{Device, Flow};
use ciam_core::oidc::authorize::{AuthorizeParams, Authorized, Change, LoginPage, NoRedirect};
use ciam_core::oidc::page::{PageForm, PageOutcome, PendingPage};
use ciam_core::password::Password;
use ciam_core::{CiamError, Lang};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::docs::PageAnswers;
use super::texts::texts;
use super::view::{self, ChangeView, LoginView};
use super::{Cookies, binding, bound, form_token, origin_of, page_lang};
use crate::AppState;
use crate::error::OutcomeCode;
use crate::headers::client_ip;
use crate::pages::{forms, layout};

/// A page for a failure no form can fix.
pub(super) fn failed(lang: Lang, error: &CiamError) -> Response {
    if let CiamError::Internal(cause) = error {
        tracing::error!(%cause, "login page failed");
    }
    let status = StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    view::message(lang, status, texts(lang).busy)
}

/// Parameters from a query or a form; 400 for unreadable ones.
pub(super) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, StatusCode> {
    serde_urlencoded::from_str(text).map_err(|_| StatusCode::BAD_REQUEST)
}

/// A posted form's fields.
pub(super) async fn posted<T: DeserializeOwned>(body: Body) -> Result<T, StatusCode> {
    parse(&String::from_utf8_lossy(&forms::read_form(body).await?))
}

/// The authorization request (OpenID Connect Core §3.1.2, docs/oidc.md
/// §3): a code at once from a live browser session, else the hosted login
/// page.
#[utoipa::path(get, path = "/api/v1/oauth2/authorize", tag = "oidc", params(AuthorizeParams), responses(PageAnswers))]
pub(crate) async fn get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match parse::<AuthorizeParams>(query.as_deref().unwrap_or_default()) {
        Ok(params) => answer(&state, &headers, &params).await,
        Err(status) => view::unreadable(&headers, status),
    }
}

/// The authorization request with its parameters form-encoded.
#[utoipa::path(
    post,
    path = "/api/v1/oauth2/authorize",
    tag = "oidc",
    request_body(content = AuthorizeParams, content_type = "application/x-www-form-urlencoded"),
    responses(PageAnswers),
)]
pub(crate) async fn post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match posted::<AuthorizeParams>(body).await {
        Ok(params) => answer(&state, &parts.headers, &params).await,
        Err(status) => view::unreadable(&parts.headers, status),
    }
}

async fn answer(state: &AppState, headers: &HeaderMap, params: &AuthorizeParams) -> Response {
    let cookies = Cookies::of(state);
    let session = cookies.session(headers);
    match state.ciam.authorize(params, session.as_deref()).await {
        Ok(Authorized::NoRedirect(why)) => {
            let lang = page_lang(params.ui_locales.as_deref(), headers);
            let t = texts(lang);
            let text = match why {
                NoRedirect::UnknownClient => t.unknown_client,
                NoRedirect::UnknownRedirect => t.unknown_redirect,
            };
            view::message(lang, StatusCode::BAD_REQUEST, text)
        }
        Ok(Authorized::Redirect(to)) => layout::see_other(&to, "/"),
        Ok(Authorized::Login(page)) => login_page(state, headers, &page, params.redirect_uri.as_deref()),
        Err(e) => failed(page_lang(params.ui_locales.as_deref(), headers), &e),
    }
}

/// The login page for a stored request, binding the browser.
fn login_page(state: &AppState, headers: &HeaderMap, page: &LoginPage, redirect_uri: Option<&str>) -> Response {
    let lang = page_lang(page.ui_locales.as_deref(), headers);
    let (bind, cookie) = binding(headers, Cookies::of(state));
    let request = page.request.expose();
    let csrf = form_token(&bind, request);
    let origin = redirect_uri.and_then(origin_of);
    let view = LoginView {
        lang,
        request,
        csrf: &csrf,
        app_name: &page.app_name,
        mobile: page.login_hint.as_deref().unwrap_or_default(),
        error: None,
        notice: None,
        codes: state.ciam.page_offers_codes(),
        redirect_origin: origin.as_deref(),
    };
    let response = view::login(&view, StatusCode::OK);
    view::setting(response, cookie)
}

fn change_page(
    lang: Lang,
    request: &str,
    csrf: &str,
    change: &Change,
    error: Option<&str>,
    origin: Option<&str>,
    status: StatusCode,
) -> Response {
    let view = ChangeView {
        lang,
        request,
        csrf,
        flow: change.flow,
        state_token: change.state_token.expose(),
        tip: &change.tip,
        error,
        redirect_origin: origin,
    };
    view::change(&view, status)
}

#[derive(Deserialize)]
pub(super) struct ShowQuery {
    #[serde(default)]
    request: String,
    lang: Option<String>,
}

/// `GET /api/v1/login?request=…&lang=…`: the login page of a stored
/// request again, in the language chosen (the page's language link).
pub(super) async fn show(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query: ShowQuery = match parse(query.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(status) => return view::unreadable(&headers, status),
    };
    let chosen = query.lang.as_deref().and_then(|l| super::LANG_CHOICES.iter().find(|(code, _)| *code == l));
    let lang = chosen.map_or_else(|| page_lang(None, &headers), |(_, lang)| *lang);
    match state.ciam.pending_page(&query.request).await {
        Ok(Some(pending)) => {
            let lang = if chosen.is_some() { lang } else { page_lang(pending.ui_locales(), &headers) };
            let (bind, cookie) = binding(&headers, Cookies::of(&state));
            let csrf = form_token(&bind, &query.request);
            let origin = origin_of(pending.redirect_uri());
            let view = LoginView {
                lang,
                request: &query.request,
                csrf: &csrf,
                app_name: pending.app_name(),
                mobile: pending.login_hint().unwrap_or_default(),
                error: None,
                notice: None,
                codes: state.ciam.page_offers_codes(),
                redirect_origin: origin.as_deref(),
            };
            let response = view::setting(view::login(&view, StatusCode::OK), cookie);
            let remembered = chosen.map(|(code, _)| super::lang_cookie(code));
            view::setting(response, remembered)
        }
        Ok(None) => view::message(lang, StatusCode::BAD_REQUEST, texts(lang).request_gone),
        Err(e) => failed(lang, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    password: String,
}

/// Who posts a page's form, as the domain's calls see them.
pub(super) fn caller(state: &AppState, parts: &axum::http::request::Parts, lang: Lang) -> Caller {
    let agent = parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Caller {
        client_id: None,
        device: Device { agent, ..Device::default() },
        ip: client_ip(&parts.headers, &parts.extensions, &state.trusted_proxies),
        lang,
        request_id: crate::headers::header_text(&parts.headers, crate::headers::REQUEST_ID),
    }
}

/// Why a posted form is not taken.
pub(super) enum Unchecked {
    /// Not bound to this browser: 403.
    Unbound,
    /// Its stored request is gone: 400.
    Gone,
    /// The store failed.
    Failed(CiamError),
}

impl Unchecked {
    pub(super) fn page(self, headers: &HeaderMap) -> Response {
        let lang = page_lang(None, headers);
        match self {
            Unchecked::Unbound => view::message(lang, StatusCode::FORBIDDEN, texts(lang).unbound_form),
            Unchecked::Gone => view::message(lang, StatusCode::BAD_REQUEST, texts(lang).request_gone),
            Unchecked::Failed(e) => failed(lang, &e),
        }
    }
}

/// A posted form's stored request, when the form is bound to this browser
/// (see [`super::bound`]), and the language of its pages.
pub(super) async fn checked(
    state: &AppState,
    headers: &HeaderMap,
    request: &str,
    csrf: &str,
) -> Result<(PendingPage, Lang), Unchecked> {
    let issuer = &state.ciam.config().issuer;
    if !bound(headers, Cookies::of(state), issuer, request, csrf) {
        return Err(Unchecked::Unbound);
    }
    match state.ciam.pending_page(request).await {
        Ok(Some(pending)) => {
            let lang = page_lang(pending.ui_locales(), headers);
            Ok((pending, lang))
        }
        Ok(None) => Err(Unchecked::Gone),
        Err(e) => Err(Unchecked::Failed(e)),
    }
}

/// `POST /api/v1/login`: the password form.
pub(super) async fn login(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let form: LoginForm = match posted(body).await {
        Ok(form) => form,
        Err(status) => return view::unreadable(&parts.headers, status),
    };
    let (pending, lang) = match checked(&state, &parts.headers, &form.request, &form.csrf).await {
        Ok(checked) => checked,
        Err(refused) => return refused.page(&parts.headers),
    };
    let cookies = Cookies::of(&state);
    let session = cookies.session(&parts.headers);
    let (origin, app_name) = (origin_of(pending.redirect_uri()), pending.app_name().to_owned());
    let page_form =
        PageForm { request: &form.request, pending, caller: caller(&state, &parts, lang), browser: session.as_deref() };
    let outcome = state.ciam.page_login(page_form, &form.mobile, &Password::new(form.password)).await;
    let code = outcome_code(&outcome);
    let response = match outcome {
        Ok(outcome) => finish(&state, lang, &form.request, &form.csrf, outcome, origin.as_deref()),
        Err(e) if matches!(e, CiamError::Internal(_)) => failed(lang, &e),
        Err(e) => {
            let refused = PageError::of(&e, lang);
            let view = LoginView {
                lang,
                request: &form.request,
                csrf: &form.csrf,
                app_name: &app_name,
                mobile: &form.mobile,
                error: Some(&refused.text),
                notice: None,
                codes: state.ciam.page_offers_codes(),
                redirect_origin: origin.as_deref(),
            };
            with_retry_after(view::login(&view, refused.status), refused.retry_after)
        }
    };
    with_outcome(response, code)
}

/// What a refused form says on its page: the message, the code's status,
/// and for a refusal that lifts with time, the seconds until it does.
pub(super) struct PageError {
    pub(super) text: String,
    pub(super) status: StatusCode,
    pub(super) retry_after: Option<i64>,
}

impl PageError {
    pub(super) fn of(error: &CiamError, lang: Lang) -> Self {
        let retry_after = match error {
            CiamError::Throttled { retry_after } | CiamError::Wait { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let status = StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        PageError { text: error.message(lang), status, retry_after }
    }
}

/// `response` with `Retry-After`, when given.
pub(super) fn with_retry_after(mut response: Response, retry_after: Option<i64>) -> Response {
    if let Some(value) = retry_after.and_then(|seconds| seconds.max(1).to_string().parse().ok()) {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
    }
    response
}

/// What a form's call ended in, for the metrics and the access log (as an
/// SDK call's status or error code); none for a request already gone.
pub(super) fn outcome_code(outcome: &Result<PageOutcome, CiamError>) -> Option<&'static str> {
    match outcome {
        Ok(PageOutcome::Expired) => None,
        Ok(answered) => Some(answered.status().as_str()),
        Err(e) => Some(e.code().as_str()),
    }
}

pub(super) fn with_outcome(mut response: Response, code: Option<&'static str>) -> Response {
    if let Some(code) = code {
        response.extensions_mut().insert(OutcomeCode(code));
    }
    response
}

/// The answer to a form that went through.
pub(super) fn finish(
    state: &AppState,
    lang: Lang,
    request: &str,
    csrf: &str,
    outcome: PageOutcome,
    origin: Option<&str>,
) -> Response {
    match outcome {
        PageOutcome::SignedIn { redirect, browser, max_age } => {
            let cookies = Cookies::of(state);
            let cookie = cookies.set(cookies.session_name(), browser.expose(), max_age, "Lax");
            layout::redirect_setting(&redirect, &cookie, "/")
        }
        PageOutcome::Change(change) => change_page(lang, request, csrf, &change, None, origin, StatusCode::OK),
        PageOutcome::Denied(to) => layout::see_other(&to, "/"),
        PageOutcome::Expired => view::message(lang, StatusCode::BAD_REQUEST, texts(lang).request_gone),
    }
}

#[derive(Deserialize)]
pub(super) struct ChangeForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    new_password: String,
    new_password_confirm: Option<String>,
    action: Option<String>,
}

/// `POST /api/v1/login/password`: the change form (or its skip).
pub(super) async fn change_password(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let form: ChangeForm = match posted(body).await {
        Ok(form) => form,
        Err(status) => return view::unreadable(&parts.headers, status),
    };
    let (pending, lang) = match checked(&state, &parts.headers, &form.request, &form.csrf).await {
        Ok(checked) => checked,
        Err(refused) => return refused.page(&parts.headers),
    };
    let cookies = Cookies::of(&state);
    let origin = origin_of(pending.redirect_uri());
    let flow = if form.flow == "warn" { Flow::PasswordWarn } else { Flow::PasswordExpired };
    let skip = form.action.as_deref() == Some("skip");
    let again = async |error: &str, status: StatusCode| match state.ciam.change_form(flow, &form.state, lang).await {
        Ok(change) => change_page(lang, &form.request, &form.csrf, &change, Some(error), origin.as_deref(), status),
        Err(e) => failed(lang, &e),
    };
    if !skip && form.new_password_confirm.as_ref().is_some_and(|c| *c != form.new_password) {
        return again(texts(lang).mismatch, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let session = cookies.session(&parts.headers);
    let page_form =
        PageForm { request: &form.request, pending, caller: caller(&state, &parts, lang), browser: session.as_deref() };
    let new_password = (!skip).then(|| Password::new(form.new_password.clone()));
    let outcome = state.ciam.page_change_password(page_form, &form.state, new_password.as_ref()).await;
    let code = outcome_code(&outcome);
    let response = match outcome {
        Ok(outcome) => finish(&state, lang, &form.request, &form.csrf, outcome, origin.as_deref()),
        Err(e) if matches!(e, CiamError::Internal(_)) => failed(lang, &e),
        Err(e) => {
            let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            again(&e.message(lang), status).await
        }
    };
    with_outcome(response, code)
}
