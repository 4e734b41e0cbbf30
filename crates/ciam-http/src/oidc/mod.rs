//! OpenID Connect over HTTP (docs/oidc.md): the discovery document, the
//! authorization endpoint and the hosted login page it shows, the token,
//! userinfo and revocation endpoints, and logout. The domain decides;
//! this module reads requests, binds the page's forms to the browser, and
//! draws pages and OAuth answers.
//!
//! A page's form is bound to the browser that was shown it: the page sets
//! a random cookie (`ciam_bind`, `__Host-` under an https issuer), and the
//! form carries a token derived from that cookie and the stored request's
//! id. A post without both, with another browser's, or whose `Origin` is
//! another site, is refused (403) before anything is counted.

mod authorize;
mod codes;
mod discovery;
mod docs;
mod endpoints;
mod logout;
mod texts;
mod tickets;
mod view;

use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use ciam_core::Lang;
use ciam_core::token::OpaqueToken;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::pages::{csrf, lang};

pub(crate) use discovery::{__path_openid_configuration, openid_configuration};

/// The authorization endpoint (the vendor's path).
pub(crate) const AUTHORIZE_PATH: &str = "/api/v1/oauth2/authorize";
/// The token endpoint.
pub(crate) const TOKEN_PATH: &str = "/api/v1/oauth2/token";
/// The userinfo endpoint.
pub(crate) const USERINFO_PATH: &str = "/api/v1/oauth2/userinfo";
/// The revocation endpoint.
pub(crate) const REVOKE_PATH: &str = "/api/v1/oauth2/revoke";
/// The logout endpoint (the vendor's path).
pub(crate) const LOGOUT_PATH: &str = "/api/v1/logout";
/// Where the login page's password form posts.
pub(crate) const LOGIN_PATH: &str = "/api/v1/login";
/// Where the login page's change form posts.
pub(crate) const PASSWORD_PATH: &str = "/api/v1/login/password";
/// Where a browser redeems an SSO ticket.
pub(crate) const TICKET_PATH: &str = "/api/v1/sso/ticket";

/// The routes of OpenID Connect: the protocol's endpoints in the OpenAPI
/// document; the login page's own forms, bound to the browser, beside it.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(authorize::get, authorize::post))
        .routes(routes!(endpoints::token))
        .routes(routes!(endpoints::userinfo))
        .routes(routes!(endpoints::revoke))
        .routes(routes!(logout::get, logout::post))
        .routes(routes!(tickets::get, tickets::post))
        .route(LOGIN_PATH, get(authorize::show).post(authorize::login))
        .route(PASSWORD_PATH, post(authorize::change_password))
        .route(codes::CODE_PATH, get(codes::show))
        .route(codes::SEND_PATH, post(codes::send))
        .route(codes::VERIFY_PATH, post(codes::verify))
        .route(codes::RESET_PATH, post(codes::reset))
}

/// The cookies the pages set, named for the issuer's scheme.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cookies {
    /// Under https: `Secure`, and the `__Host-` prefix.
    secure: bool,
}

impl Cookies {
    pub(crate) fn of(state: &AppState) -> Self {
        Self { secure: state.ciam.config().issuer.starts_with("https://") }
    }

    /// The cookie that binds forms to the browser.
    pub(crate) fn bind_name(self) -> &'static str {
        if self.secure { "__Host-ciam_bind" } else { "ciam_bind" }
    }

    /// The browser session's cookie.
    pub(crate) fn session_name(self) -> &'static str {
        if self.secure { "__Host-ciam_sso" } else { "ciam_sso" }
    }

    /// `Set-Cookie` for `name=value`, living `max_age` seconds.
    pub(crate) fn set(self, name: &str, value: &str, max_age: i64, same_site: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}")
    }

    /// The browser session the request carries.
    pub(crate) fn session(self, headers: &HeaderMap) -> Option<String> {
        lang::cookie(headers, self.session_name()).map(str::to_owned)
    }
}

/// The browser's binding cookie: the one it has, or a new one to set.
pub(crate) fn binding(headers: &HeaderMap, cookies: Cookies) -> (String, Option<String>) {
    match lang::cookie(headers, cookies.bind_name()).filter(|v| v.len() == 43) {
        Some(value) => (value.to_owned(), None),
        None => {
            let value = OpaqueToken::generate(ciam_core::oidc::GRANT_TOKEN_LEN)
                .map(|t| t.expose().to_owned())
                .unwrap_or_default();
            // Lax: a browser arriving from an app's site keeps its cookie, so
            // a login page open in another tab stays postable.
            let cookie = cookies.set(cookies.bind_name(), &value, 86_400, "Lax");
            (value, Some(cookie))
        }
    }
}

/// The token a form for stored request `request` carries in the browser
/// bound by `bind`.
pub(crate) fn form_token(bind: &str, request: &str) -> String {
    csrf::token_for("login", &format!("{bind}:{request}"))
}

/// Whether a posted form comes from a page this server drew for this
/// browser: the binding cookie, the form's token for it and the request,
/// and an `Origin` (when sent) that is the issuer's.
pub(crate) fn bound(headers: &HeaderMap, cookies: Cookies, issuer: &str, request: &str, token: &str) -> bool {
    let Some(bind) = lang::cookie(headers, cookies.bind_name()) else {
        return false;
    };
    let origin_ok = match headers.get("origin").and_then(|v| v.to_str().ok()) {
        Some(origin) => origin_of(issuer).is_some_and(|ours| ours == origin),
        None => headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_none_or(|s| s != "cross-site"),
    };
    origin_ok && !request.is_empty() && csrf::matches(token, &form_token(bind, request))
}

/// The cookie that keeps the language a visitor chose on a page.
const LANG_COOKIE: &str = "ciam_login_lang";

/// The languages a page speaks, by code.
pub(crate) const LANG_CHOICES: [(&str, Lang); 2] = [("zh", Lang::Zh), ("en", Lang::En)];

/// `Set-Cookie` that remembers a chosen language for a year.
pub(crate) fn lang_cookie(code: &str) -> String {
    format!("{LANG_COOKIE}={code}; Path=/; Max-Age=31536000; SameSite=Lax")
}

/// The language of a page: the one the visitor chose on a page, else
/// `ui_locales` when it names zh or en, else the browser's.
pub(crate) fn page_lang(ui_locales: Option<&str>, headers: &HeaderMap) -> Lang {
    if let Some((_, lang)) =
        lang::cookie(headers, LANG_COOKIE).and_then(|c| LANG_CHOICES.iter().find(|(code, _)| *code == c))
    {
        return *lang;
    }
    for tag in ui_locales.unwrap_or_default().split(' ') {
        let tag = tag.to_ascii_lowercase();
        if tag.starts_with("zh") {
            return Lang::Zh;
        }
        if tag.starts_with("en") {
            return Lang::En;
        }
    }
    lang::lang_of(headers, LANG_COOKIE)
}

/// The headers of every page: a strict CSP (this origin's stylesheet and
/// icon, forms to this origin and to `redirect_origin`, where a login's
/// redirect goes: browsers apply `form-action` to it), no framing, no
/// referrer to other sites.
pub(crate) fn page_headers(response: &mut Response, redirect_origin: Option<&str>) {
    let form_action = match redirect_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it Chrome sends `Origin: null` on the
    // page's own form posts, which `bound` must refuse.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// The origin of a URI (`scheme://host[:port]`), for a CSP source.
pub(crate) fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}
