//! Signing in with the admin token (throttled per address with the admin
//! API's wrong tokens: `ciam_core::operator`), and signing out.

use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use ciam_core::console::CONSOLE_SESSION_SECONDS;
use ciam_core::{CiamError, Lang};
use maud::html;
use serde::Deserialize;

use super::{Empty, HOME, PREFIX, Posted, SESSION_COOKIE, as_page, console_lang, failure, texts};
use crate::AppState;
use crate::headers::client_ip;
use crate::pages::{forms, lang, layout};

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

fn sign_in_form(lang: Lang, error: Option<&str>) -> Html<String> {
    let t = texts(lang);
    let other = lang::other(lang);
    layout::document(
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

pub(super) async fn page(headers: HeaderMap) -> Response {
    sign_in_form(console_lang(&headers), None).into_response()
}

pub(super) async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let lang = console_lang(&parts.headers);
    let t = texts(lang);
    let ip = client_ip(&parts.headers, &parts.extensions, &state.trusted_proxies);
    let form: SignInForm = match forms::read_form(body).await {
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
            layout::redirect_setting(HOME, &cookie, HOME)
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

pub(super) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(console, _): Posted<Empty>,
) -> Response {
    if let Some(session) = lang::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.ciam.close_console_session(session).await
    {
        return failure(console.lang, &e);
    }
    let cleared = format!("{SESSION_COOKIE}=; Path={PREFIX}; Max-Age=0; HttpOnly; SameSite=Strict");
    layout::redirect_setting(&format!("{PREFIX}/sign-in"), &cleared, HOME)
}
