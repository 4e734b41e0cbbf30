//! The hosted login page's pages: the login form, the change form, the
//! "Sign out?" question and the pages that say what went wrong. Each works
//! without script, and fits a 390 px screen.

use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use ciam_core::Lang;
use ciam_core::model::Flow;
use maud::{Markup, html};

use super::texts::{Texts, texts};
use super::{LOGIN_PATH, LOGOUT_PATH, PASSWORD_PATH, TICKET_PATH, page_headers};
use crate::pages::{lang, layout};

/// A page of the login flow: `content` in the document, under `status`,
/// with the page headers, setting `cookie` when given.
pub(crate) fn page(lang: Lang, status: StatusCode, title: &str, content: Markup, form_to: Option<&str>) -> Response {
    let body = html! { main.sign-in.login { (content) } };
    let mut response = (status, layout::document(lang, title, body)).into_response();
    page_headers(&mut response, form_to);
    response
}

/// Adds `Set-Cookie` to a response.
pub(crate) fn setting(mut response: Response, cookie: Option<String>) -> Response {
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// The page for a request that cannot be read (`status`: 400, or what
/// reading a form met: 408, 413), in the browser's language.
pub(crate) fn unreadable(headers: &HeaderMap, status: StatusCode) -> Response {
    let lang = super::page_lang(None, headers);
    message(lang, status, texts(lang).bad_request)
}

/// A page that says what went wrong, and nothing else.
pub(crate) fn message(lang: Lang, status: StatusCode, text: &str) -> Response {
    let t = texts(lang);
    page(lang, status, t.error_title, html! { h1 { (t.error_title) } p.error role="alert" { (text) } }, None)
}

/// The link to the same page in the other language.
fn switch(request: &str, lang: Lang, t: &Texts) -> Markup {
    let other = lang::other(lang);
    let href = format!(
        "{LOGIN_PATH}?{}",
        serde_urlencoded::to_string([("request", request), ("lang", other)]).unwrap_or_default()
    );
    html! { p { a.lang href=(href) lang=(other) { (t.other_language) } } }
}

/// What the login form shows.
#[derive(Debug)]
pub(crate) struct LoginView<'a> {
    pub lang: Lang,
    pub request: &'a str,
    pub csrf: &'a str,
    pub app_name: &'a str,
    pub mobile: &'a str,
    pub error: Option<&'a str>,
    /// A word that is no error (a password just set).
    pub notice: Option<&'a str>,
    /// Whether the page offers codes by SMS.
    pub codes: bool,
    /// The origin the login's redirect goes to.
    pub redirect_origin: Option<&'a str>,
}

/// The login form.
pub(crate) fn login(view: &LoginView<'_>, status: StatusCode) -> Response {
    let t = texts(view.lang);
    let content = html! {
        h1 { (t.sign_in_title) }
        p.lead { (t.to_continue.replace("{0}", view.app_name)) }
        form method="post" action=(LOGIN_PATH) {
            input type="hidden" name="request" value=(view.request);
            input type="hidden" name="csrf" value=(view.csrf);
            label.field {
                span { (t.mobile) }
                input type="text" inputmode="tel" name="mobile" value=(view.mobile) autocomplete="username" required autofocus[view.mobile.is_empty()];
            }
            label.field {
                span { (t.password) }
                input type="password" name="password" autocomplete="current-password" required autofocus[!view.mobile.is_empty()];
            }
            @if let Some(notice) = view.notice { p.notice role="status" { (notice) } }
            @if let Some(error) = view.error { p.error role="alert" { (error) } }
            button type="submit" { (t.sign_in) }
        }
        @if view.codes {
            p.alternatives {
                a href=(super::codes::page_link(view.request, super::codes::Purpose::Login)) { (t.with_code) }
                " · "
                a href=(super::codes::page_link(view.request, super::codes::Purpose::Reset)) { (t.forgot) }
            }
        }
        (switch(view.request, view.lang, t))
    };
    page(view.lang, status, t.sign_in_title, content, view.redirect_origin)
}

/// What the change form shows.
#[derive(Debug)]
pub(crate) struct ChangeView<'a> {
    pub lang: Lang,
    pub request: &'a str,
    pub csrf: &'a str,
    pub flow: Flow,
    pub state_token: &'a str,
    pub tip: &'a str,
    pub error: Option<&'a str>,
    pub redirect_origin: Option<&'a str>,
}

/// The password change form (PASSWORD_EXPIRED; PASSWORD_WARN adds a skip).
pub(crate) fn change(view: &ChangeView<'_>, status: StatusCode) -> Response {
    let t = texts(view.lang);
    let warn = view.flow == Flow::PasswordWarn;
    let content = html! {
        h1 { (t.change_title) }
        p.lead { (if warn { t.warn } else { t.expired }) }
        form method="post" action=(PASSWORD_PATH) {
            input type="hidden" name="request" value=(view.request);
            input type="hidden" name="csrf" value=(view.csrf);
            input type="hidden" name="state" value=(view.state_token);
            input type="hidden" name="flow" value=(if warn { "warn" } else { "expired" });
            label.field {
                span { (t.new_password) }
                input type="password" name="new_password" autocomplete="new-password" required autofocus;
                small { (view.tip) }
            }
            label.field {
                span { (t.confirm) }
                input type="password" name="new_password_confirm" autocomplete="new-password" required;
            }
            @if let Some(error) = view.error { p.error role="alert" { (error) } }
            div.actions {
                button type="submit" { (t.change) }
                @if warn { button.secondary type="submit" name="action" value="skip" formnovalidate { (t.skip) } }
            }
        }
    };
    page(view.lang, status, t.change_title, content, view.redirect_origin)
}

/// "Sign out?", with a form that posts the logout back, bound to the
/// browser.
pub(crate) fn confirm_logout(lang: Lang, csrf: &str, fields: &[(&str, &str)], form_to: Option<&str>) -> Response {
    let t = texts(lang);
    let content = html! {
        h1 { (t.sign_out_title) }
        p.lead { (t.sign_out_question) }
        form method="post" action=(LOGOUT_PATH) {
            input type="hidden" name="confirm" value="1";
            input type="hidden" name="csrf" value=(csrf);
            @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
            button type="submit" { (t.sign_out) }
        }
    };
    page(lang, StatusCode::OK, t.sign_out_title, content, form_to)
}

/// "You are signed out."
pub(crate) fn signed_out(lang: Lang) -> Response {
    let t = texts(lang);
    page(lang, StatusCode::OK, t.sign_out_title, html! { h1 { (t.signed_out) } }, None)
}

/// "Continue as 152****0000 to <app>?", with the form that uses the
/// ticket.
pub(crate) fn ticket(
    lang: Lang,
    ticket: &str,
    csrf: &str,
    masked: &str,
    app_name: &str,
    form_to: Option<&str>,
) -> Response {
    let t = texts(lang);
    let question = t.continue_as.replacen("{0}", masked, 1).replacen("{1}", app_name, 1);
    let content = html! {
        h1 { (t.ticket_title) }
        p.lead { (question) }
        form method="post" action=(TICKET_PATH) {
            input type="hidden" name="sso_ticket" value=(ticket);
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (t.continue_button) }
        }
    };
    page(lang, StatusCode::OK, t.ticket_title, content, form_to)
}
