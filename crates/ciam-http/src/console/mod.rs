//! The admin console at `/console/`: server-rendered pages (maud, checked
//! at compile time) over the same domain calls as the admin API, so the
//! console can do nothing the API cannot. Nothing is fetched from outside:
//! the stylesheet, the one small script and the chart (SVG, drawn here) come
//! from this binary.
//!
//! Signing in takes the admin token and opens a session kept in the
//! database (an `HttpOnly`, `SameSite=Strict` cookie; `Secure` when the
//! issuer is https), which ends after [`CONSOLE_SESSION_SECONDS`] or when
//! signed out. Every form carries a token derived from the session, checked
//! on every post. Failed sign-ins are counted with the admin API's and
//! throttled per address.

mod apps;
mod audit;
mod chart;
mod overview;
mod policies;
mod texts;
mod users;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY, RETRY_AFTER, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use ciam_core::clock::{UnixTime, to_rfc3339};
use ciam_core::console::CONSOLE_SESSION_SECONDS;
use ciam_core::token::sha256_hex;
use ciam_core::{CiamError, Lang, Reason};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::headers::client_ip;
pub(crate) use texts::{Texts, texts};

/// Where the console is served.
pub(crate) const PREFIX: &str = "/console";
/// Its home page, the overview.
pub(crate) const HOME: &str = "/console/";

/// The overview, at [`HOME`] (a nested router's `/` is the prefix itself).
pub(crate) use overview::page as home;
/// The session cookie.
const SESSION_COOKIE: &str = "ciam_console";
/// The language cookie.
const LANG_COOKIE: &str = "ciam_console_lang";
/// The largest form accepted.
const FORM_LIMIT: usize = 64 * 1024;

/// The console's routes, under [`PREFIX`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/lang/{lang}", get(set_lang))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .route("/assets/favicon.svg", get(favicon))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show).post(users::update))
        .route("/users/{id}/password", post(users::set_password))
        .route("/users/{id}/unlock", post(users::unlock))
        .route("/users/{id}/sessions", post(users::end_sessions))
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{client_id}", get(apps::show).post(apps::update))
        .route("/apps/{client_id}/members", post(apps::add_member))
        .route("/apps/{client_id}/members/{user_id}/remove", post(apps::remove_member))
        .route("/apps/{client_id}/delete", get(apps::confirm_delete).post(apps::delete))
        .route("/policies", get(policies::page))
        .route("/policies/{which}", post(policies::update))
        .route("/audit", get(audit::page))
}

/// Every answer under [`PREFIX`], errors and redirects included: a strict
/// Content-Security-Policy (this origin's stylesheet and script only, no
/// inline script or style, no framing, forms to this origin only),
/// `X-Frame-Options: DENY`, and no caching but of the assets.
pub(crate) async fn console_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path != PREFIX && !path.starts_with(HOME) {
        return next.run(request).await;
    }
    let lang = lang_of(request.headers());
    let mut response = as_page(lang, next.run(request).await);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'none'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A cookie's value.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The language the console speaks: the one chosen, else the browser's
/// first (Chinese for `zh…`), else English.
fn lang_of(headers: &HeaderMap) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        _ => {
            let accepted = headers.get("accept-language").and_then(|v| v.to_str().ok()).unwrap_or_default();
            Lang::from_header(accepted.split(',').next())
        }
    }
}

/// A signed-in operator's request: the session, its language, and the
/// token its forms carry.
pub(crate) struct Console {
    /// The language the pages speak.
    pub lang: Lang,
    /// The pages' words in that language.
    pub t: &'static Texts,
    /// The token every form carries.
    csrf: String,
    /// The page asked for, with its query: where a language switch returns.
    path: String,
}

/// The form token of a session.
fn csrf_of(session: &str) -> String {
    sha256_hex(format!("ciam-console-csrf:{session}").as_bytes())
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = lang_of(&parts.headers);
        let session = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned);
        let alive = match &session {
            Some(token) => state.ciam.console_session_alive(token).await.map_err(|e| failure(lang, &e))?,
            None => false,
        };
        match session {
            Some(token) if alive => Ok(Console {
                lang,
                t: texts(lang),
                csrf: csrf_of(&token),
                // The path as asked (a nested router sees it without the
                // prefix), with its query: where a language switch returns.
                path: parts
                    .extensions
                    .get::<axum::extract::OriginalUri>()
                    .and_then(|uri| uri.path_and_query())
                    .map_or_else(|| format!("{PREFIX}/"), |p| p.as_str().to_owned()),
            }),
            _ => Err(see_other(&format!("{PREFIX}/sign-in"))),
        }
    }
}

/// A form posted by a signed-in operator, its token checked: `T` from its
/// fields.
pub(crate) struct Posted<T>(pub Console, pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let bytes = read_form(body).await.map_err(|status| as_page(console.lang, status.into_response()))?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| (StatusCode::BAD_REQUEST, "not a form").into_response())?;
        let presented = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(console.csrf.as_bytes())) {
            return Err(error_page(console.lang, StatusCode::FORBIDDEN, console.t.expired_form));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("form: {e}")).into_response())?;
        Ok(Posted(console, form))
    }
}

/// A form's bytes, within [`FORM_LIMIT`] and [`crate::json::BODY_TIMEOUT`]:
/// a form that stops arriving is 408, one too large 413, one broken in
/// transit 400.
async fn read_form(body: axum::body::Body) -> Result<axum::body::Bytes, StatusCode> {
    match tokio::time::timeout(crate::json::BODY_TIMEOUT, axum::body::to_bytes(body, FORM_LIMIT)).await {
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
        Ok(Err(e)) if crate::json::over_limit(&e) => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Ok(Err(_)) => Err(StatusCode::BAD_REQUEST),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Which page of the navigation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// The overview.
    Overview,
    /// Users.
    Users,
    /// Apps.
    Apps,
    /// Policies.
    Policies,
    /// The audit log.
    Audit,
}

impl Console {
    /// The hidden field every form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// A page: the navigation, then `body`.
    pub fn page(&self, nav: Nav, title: &str, body: Markup) -> Response {
        let t = self.t;
        let item = |to: Nav, href: &str, label: &str| {
            html! { a href=(format!("{PREFIX}{href}")) aria-current=[(to == nav).then_some("page")] { (label) } }
        };
        let other = if self.lang == Lang::Zh { "en" } else { "zh" };
        let content = html! {
            header.bar {
                a.brand href=(format!("{PREFIX}/")) { "ciam" }
                nav {
                    (item(Nav::Overview, "/", t.overview))
                    (item(Nav::Users, "/users", t.users))
                    (item(Nav::Apps, "/apps", t.apps))
                    (item(Nav::Policies, "/policies", t.policies))
                    (item(Nav::Audit, "/audit", t.audit))
                }
                div.session {
                    a.lang href=(format!("{PREFIX}/lang/{other}?{}", back_query(&self.path))) lang=(other) { (t.other_language) }
                    form method="post" action=(format!("{PREFIX}/sign-out")) {
                        (self.csrf_field())
                        button.link type="submit" { (t.sign_out) }
                    }
                }
            }
            main {
                h1 { (title) }
                (body)
            }
        };
        page_shell(self.lang, &format!("{title} · {}", t.title), content).into_response()
    }
}

/// `text` for a URL's path segment or query value: everything but the
/// unreserved characters percent-encoded.
pub(crate) fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A form's text field: trimmed, `None` when left empty.
pub(crate) fn nonblank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// `back=PATH`, encoded for a query.
fn back_query(path: &str) -> String {
    serde_urlencoded::to_string([("back", path)]).unwrap_or_default()
}

/// The HTML document around `content`.
fn page_shell(lang: Lang, title: &str, content: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang=(if lang == Lang::Zh { "zh-CN" } else { "en" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="icon" type="image/svg+xml" href=(FAVICON_PATH);
                link rel="stylesheet" href=(format!("{PREFIX}/assets/console.css"));
                script src=(format!("{PREFIX}/assets/console.js")) defer {}
            }
            body { (content) }
        }
    };
    Html(page.into_string())
}

/// A redirect after a post, or to the sign-in page; to the overview when
/// `to` cannot be a header.
pub(crate) fn see_other(to: &str) -> Response {
    let to = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static(HOME));
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

/// A failure the operator cannot fix by editing a form.
pub(crate) fn failure(lang: Lang, error: &CiamError) -> Response {
    let status = StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let CiamError::Internal(cause) = error {
        tracing::error!(%cause, "console request failed");
    }
    error_page(lang, status, &error.message(lang))
}

/// A refused form: shown again by `render` with its refusal next to the
/// field, under the refusal's status (422, 409); or, when no form field can
/// show it, the failure page.
pub(crate) async fn again<F>(lang: Lang, error: &CiamError, render: impl FnOnce((String, String)) -> F) -> Response
where
    F: std::future::Future<Output = Response>,
{
    match field_error(error, lang) {
        Some(shown) => {
            let mut page = render(shown).await;
            if page.status() == StatusCode::OK {
                *page.status_mut() =
                    StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            }
            page
        }
        None => failure(lang, error),
    }
}

/// A page that says what went wrong, with the way back to the overview.
pub(crate) fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let t = texts(lang);
    let body = html! { main { h1 { (t.title) } p.error role="alert" { (message) } p { a href=(HOME) { (t.overview) " →" } } } };
    (status, page_shell(lang, t.title, body)).into_response()
}

/// An answer under [`PREFIX`] that no page made (an unknown path or
/// method, a query or form that does not parse, a deadline) as a page in
/// the console's language instead of the API's JSON or a plain text.
fn as_page(lang: Lang, response: Response) -> Response {
    let status = response.status();
    let html =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let t = texts(lang);
    let message = match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => t.no_such_page,
        StatusCode::PAYLOAD_TOO_LARGE => t.form_too_large,
        StatusCode::REQUEST_TIMEOUT => t.form_too_slow,
        _ if status.is_server_error() => t.busy_page,
        _ => t.bad_request,
    };
    // The page replaces the body; the answer's other headers (`Allow`,
    // `Retry-After`, the request id) stay.
    let mut page = error_page(lang, status, message);
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            page.headers_mut().append(name.clone(), value.clone());
        }
    }
    page
}

/// A form's refusal, shown next to its field: the field's name and why.
fn field_error(error: &CiamError, lang: Lang) -> Option<(String, String)> {
    match error.invalid_field(lang) {
        Some((field, why)) => Some((field.to_owned(), why.to_owned())),
        None if error.code() == ciam_core::ErrorCode::AdminMobileTaken => Some(("mobile".into(), error.message(lang))),
        None => match error {
            CiamError::Refused(_) | CiamError::RefusedLocalised { .. } => Some((String::new(), error.message(lang))),
            _ => None,
        },
    }
}

/// A time as the console shows it: `2026-11-30 22:53 UTC`.
pub(crate) fn when(at: UnixTime) -> String {
    let text = to_rfc3339(at);
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

/// The `?done=` of the page a post redirects to.
#[derive(Deserialize)]
pub(crate) struct Done {
    pub done: Option<String>,
}

/// A labelled choice of `options` (value, label), with its refusal under
/// it when it has one; the first is chosen when `current` is none of them.
pub(crate) fn choice(
    label: &str,
    name: &str,
    current: &str,
    options: &[(&str, &str)],
    error: Option<&(String, String)>,
) -> Markup {
    let chosen = options.iter().find(|(value, _)| *value == current).or(options.first()).map(|(value, _)| *value);
    let why = refusal_of(name, error);
    html! {
        label.field {
            span { (label) }
            select name=(name) aria-invalid=[why.map(|_| "true")] {
                @for (value, text) in options {
                    option value=(value) selected[Some(*value) == chosen] { (text) }
                }
            }
            @if let Some(why) = why { small.error { (why) } }
        }
    }
}

/// The message of a `?done=` redirect.
pub(crate) fn done_message(t: &Texts, done: Option<&str>) -> Option<&'static str> {
    match done? {
        "saved" => Some(t.saved),
        "unlocked" => Some(t.unlocked),
        "password" => Some(t.password_set),
        "deleted" => Some(t.deleted),
        _ => None,
    }
}

/// A notice above a page's content.
pub(crate) fn notice(message: Option<&str>) -> Markup {
    html! { @if let Some(message) = message { p.notice role="status" { (message) } } }
}

/// Why field `name` was refused, when the form's refusal is its.
fn refusal_of<'a>(name: &str, error: Option<&'a (String, String)>) -> Option<&'a str> {
    error.filter(|(field, _)| field == name).map(|(_, why)| why.as_str())
}

/// A labelled text input, with its refusal under it when it has one.
pub(crate) fn field(label: &str, name: &str, value: &str, kind: &str, error: Option<&(String, String)>) -> Markup {
    let why = refusal_of(name, error);
    html! {
        label.field {
            span { (label) }
            input type=(kind) name=(name) value=(value) aria-invalid=[why.map(|_| "true")];
            @if let Some(why) = why { small.error { (why) } }
        }
    }
}

/// A checkbox.
pub(crate) fn checkbox(label: &str, name: &str, checked: bool) -> Markup {
    html! { label.check { input type="checkbox" name=(name) value="true" checked[checked]; span { (label) } } }
}

/// A checkbox as posted: absent (unticked) or `true` (ticked); `false`
/// also reads as unticked, anything else is refused.
pub(crate) fn ticked(field: &str, value: Option<&str>) -> Result<bool, CiamError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true" | "on") => Ok(true),
        Some(_) => Err(ciam_core::admin::invalid(field, one_of(&["true", "false"]))),
    }
}

/// A form's error that belongs to no one field.
pub(crate) fn form_error(error: Option<&(String, String)>, fields: &[&str]) -> Markup {
    match error {
        Some((field, why)) if !fields.contains(&field.as_str()) => html! {
            p.error role="alert" { @if !field.is_empty() { code { (field) } ": " } (why) }
        },
        _ => html! {},
    }
}

/// A whole number typed in a form; text that is none is passed on for the
/// domain to refuse.
pub(crate) fn number<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<Option<T>, CiamError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        let why = match text.parse::<i128>() {
            Ok(n) if n < 0 => Reason::new("must be 0 or more", "不能小于 0"),
            Ok(_) => Reason::new("is too large", "过大"),
            Err(_) => Reason::new("must be a whole number", "必须是整数"),
        };
        ciam_core::admin::invalid(field, why)
    })
}

/// "must be one of …" for a choice.
pub(crate) fn one_of(values: &[&str]) -> Reason {
    let list = values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    Reason::new(format!("must be one of {list}"), format!("必须是 {list} 之一"))
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

fn sign_in_form(lang: Lang, error: Option<&str>) -> Html<String> {
    let t = texts(lang);
    let other = if lang == Lang::Zh { "en" } else { "zh" };
    page_shell(
        lang,
        &format!("{} · {}", t.sign_in, t.title),
        html! {
            main.sign-in {
                h1 { (t.title) }
                form method="post" action=(format!("{PREFIX}/sign-in")) {
                    label.field {
                        span { (t.admin_token) }
                        input type="password" name="token" autocomplete="current-password" required autofocus;
                        small { (t.admin_token_hint) }
                    }
                    @if let Some(error) = error { p.error role="alert" { (error) } }
                    button type="submit" { (t.sign_in) }
                }
                p { a.lang href=(format!("{PREFIX}/lang/{other}?back={PREFIX}/sign-in")) { (t.other_language) } }
            }
        },
    )
}

async fn sign_in_page(headers: HeaderMap) -> Response {
    sign_in_form(lang_of(&headers), None).into_response()
}

async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let lang = lang_of(&parts.headers);
    let t = texts(lang);
    let ip = client_ip(&parts.headers, &parts.extensions, &state.trusted_proxies);
    let form: SignInForm = match read_form(body).await {
        Ok(bytes) => serde_urlencoded::from_bytes(&bytes).unwrap_or(SignInForm { token: String::new() }),
        Err(status) => return as_page(lang, status.into_response()),
    };
    let ciam = &state.ciam;
    let opened = ciam.operator_attempt(ip, async || ciam.open_console_session(form.token.trim()).await).await;
    match opened {
        Ok(Some((session, _))) => {
            let secure = if state.ciam.config().issuer.starts_with("https://") { "; Secure" } else { "" };
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path={PREFIX}; Max-Age={CONSOLE_SESSION_SECONDS}; HttpOnly; SameSite=Strict{secure}",
                session.expose()
            );
            redirect_setting(HOME, &cookie)
        }
        Ok(None) => {
            state.auth_failures.record(ip.map(|ip| ip.to_string()));
            (StatusCode::UNAUTHORIZED, sign_in_form(lang, Some(t.wrong_token))).into_response()
        }
        Err(CiamError::Throttled { retry_after }) => {
            let minutes = (retry_after.max(1) + 59) / 60;
            let message = t.too_many_sign_ins.replace("{0}", &minutes.to_string());
            let retry_after = [(RETRY_AFTER, retry_after.max(1).to_string())];
            (StatusCode::TOO_MANY_REQUESTS, retry_after, sign_in_form(lang, Some(&message))).into_response()
        }
        Err(e) => failure(lang, &e),
    }
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap, Posted(console, _): Posted<Empty>) -> Response {
    if let Some(session) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.ciam.close_console_session(session).await
    {
        return failure(console.lang, &e);
    }
    let cleared = format!("{SESSION_COOKIE}=; Path={PREFIX}; Max-Age=0; HttpOnly; SameSite=Strict");
    redirect_setting(&format!("{PREFIX}/sign-in"), &cleared)
}

/// A redirect to `to` that sets `cookie` (made here, always a valid header).
fn redirect_setting(to: &str, cookie: &str) -> Response {
    let mut response = see_other(to);
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// A form with no fields but its token.
#[derive(Deserialize)]
pub(crate) struct Empty {}

#[derive(Deserialize)]
struct Back {
    back: Option<String>,
}

/// Switches the language, remembered for a year, and goes back to the page
/// it was asked from (a console page only).
async fn set_lang(Path(lang): Path<String>, axum::extract::Query(back): axum::extract::Query<Back>) -> Response {
    let lang = if lang == "zh" { "zh" } else { "en" };
    // A console page: in its path no other host (`//`, `\`) and no way up
    // (`..`, or an escape that may hide one); nothing a header cannot carry.
    let back = back.back.filter(|b| {
        let path = b.split('?').next().unwrap_or_default();
        path.starts_with(HOME)
            && !["//", "\\", "..", "%"].iter().any(|bad| path.contains(bad))
            && !b.chars().any(char::is_control)
    });
    let cookie = format!("{LANG_COOKIE}={lang}; Path={PREFIX}; Max-Age=31536000; SameSite=Strict");
    redirect_setting(back.as_deref().unwrap_or(HOME), &cookie)
}

const STYLESHEET: &str = include_str!("../../assets/console.css");
const SCRIPT: &str = include_str!("../../assets/console.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

const FAVICON: &str = include_str!("../../assets/favicon.svg");
/// Where the pages' icon is served; `/favicon.ico` answers it too, for
/// agents that ask there without reading the page.
pub(crate) const FAVICON_PATH: &str = "/console/assets/favicon.svg";

/// The icon of every page ciam draws (without one, every page load logs a
/// 404 in the browser's console).
pub(crate) async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON)
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(result: Result<impl std::fmt::Debug, CiamError>) -> String {
        let error = result.expect_err("refused");
        error.invalid_field(Lang::En).map(|(field, why)| format!("{field}: {why}")).unwrap_or_default()
    }

    #[test]
    fn a_typed_number_is_read_or_refused_saying_why() {
        assert_eq!(number::<u32>("n", " 42 ").ok(), Some(Some(42)));
        assert_eq!(number::<u32>("n", "  ").ok(), Some(None), "left empty: not sent");
        assert_eq!(why(number::<u32>("n", "-1")), "n: must be 0 or more");
        assert_eq!(why(number::<u32>("n", "99999999999")), "n: is too large");
        assert_eq!(why(number::<u32>("n", "ten")), "n: must be a whole number");
    }

    #[test]
    fn a_checkbox_is_ticked_unticked_or_refused() {
        assert_eq!(ticked("enabled", None).ok(), Some(false));
        assert_eq!(ticked("enabled", Some("false")).ok(), Some(false));
        assert_eq!(ticked("enabled", Some("true")).ok(), Some(true));
        assert_eq!(ticked("enabled", Some("on")).ok(), Some(true));
        assert_eq!(why(ticked("enabled", Some("yes"))), "enabled: must be one of \"true\", \"false\"");
    }
}
