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

mod app_form;
mod apps;
mod audit;
mod chart;
mod overview;
mod policies;
mod sign_in;
mod sms_policy;
mod texts;
mod users;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ciam_core::clock::{UnixTime, to_rfc3339};
use ciam_core::{CiamError, Lang};
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::pages::forms::{self, Refused};
use crate::pages::{csrf, lang, layout};
pub(crate) use texts::{Texts, texts};

/// Where the console is served.
pub(crate) const PREFIX: &str = "/console";
/// The overview's path.
pub(crate) const HOME: &str = "/console/";

/// The overview, also served at [`HOME`] outside the nested router.
pub(crate) use overview::page as home;

/// The cookie of a signed-in session.
const SESSION_COOKIE: &str = "ciam_console";
/// The cookie of the chosen language.
const LANG_COOKIE: &str = "ciam_console_lang";

/// The console's routes, under [`PREFIX`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/sign-in", get(sign_in::page).post(sign_in::sign_in))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/lang/{lang}", get(set_lang))
        .route("/assets/console.css", get(layout::stylesheet))
        .route("/assets/console.js", get(layout::script))
        .route("/assets/favicon.svg", get(layout::favicon))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show).post(users::update))
        .route("/users/{id}/password", post(users::set_password))
        .route("/users/{id}/unlock", post(users::unlock))
        .route("/users/{id}/sessions", post(users::end_sessions))
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{client_id}", get(apps::show).post(apps::update))
        .route("/apps/{client_id}/secret", post(apps::new_secret))
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
    let lang = console_lang(request.headers());
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

/// The language the console speaks: the one chosen, else the browser's.
fn console_lang(headers: &HeaderMap) -> Lang {
    lang::lang_of(headers, LANG_COOKIE)
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

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = console_lang(&parts.headers);
        let session = lang::cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned);
        let alive = match &session {
            Some(token) => state.ciam.console_session_alive(token).await.map_err(|e| failure(lang, &e))?,
            None => false,
        };
        match session {
            Some(token) if alive => Ok(Console {
                lang,
                t: texts(lang),
                csrf: csrf::token_for("console", &token),
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
        let bytes = forms::read_form(body).await.map_err(|status| as_page(console.lang, status.into_response()))?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| (StatusCode::BAD_REQUEST, "not a form").into_response())?;
        let presented = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
        if !csrf::matches(presented, &console.csrf) {
            return Err(error_page(console.lang, StatusCode::FORBIDDEN, console.t.expired_form));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("form: {e}")).into_response())?;
        Ok(Posted(console, form))
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

    /// The same request, drawing the page at `path`: where the language
    /// switch returns from a page that answers a post (the post's own path
    /// may be no page).
    pub fn showing(&self, path: &str) -> Console {
        Console { lang: self.lang, t: self.t, csrf: self.csrf.clone(), path: path.to_owned() }
    }

    /// A page: the navigation, then `body`.
    pub fn page(&self, nav: Nav, title: &str, body: Markup) -> Response {
        let t = self.t;
        let item = |to: Nav, href: &str, label: &str| {
            html! { a href=(format!("{PREFIX}{href}")) aria-current=[(to == nav).then_some("page")] { (label) } }
        };
        let other = lang::other(self.lang);
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
        layout::document(self.lang, &format!("{title} · {}", t.title), content).into_response()
    }
}

/// `back=PATH`, encoded for a query.
fn back_query(path: &str) -> String {
    serde_urlencoded::to_string([("back", path)]).unwrap_or_default()
}

/// A redirect after a post, or to the sign-in page; to the overview when
/// `to` cannot be a header.
pub(crate) fn see_other(to: &str) -> Response {
    layout::see_other(to, HOME)
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
pub(crate) async fn again<F>(lang: Lang, error: &CiamError, render: impl FnOnce(Refused) -> F) -> Response
where
    F: std::future::Future<Output = Response>,
{
    match Refused::of(error, lang) {
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
    (status, layout::document(lang, t.title, body)).into_response()
}

/// An answer under [`PREFIX`] that no page made (an unknown path or
/// method, a query or form that does not parse, a deadline) as a page in
/// the console's language instead of the API's JSON or a plain text.
pub(crate) fn as_page(lang: Lang, response: Response) -> Response {
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
    layout::redirect_setting(back.as_deref().unwrap_or(HOME), &cookie, HOME)
}
