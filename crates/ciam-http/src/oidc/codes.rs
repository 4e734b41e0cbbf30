//! Codes by SMS on the hosted login page (docs/sms.md, docs/oidc.md §4):
//! "Sign in with a code" and "Forgot your password?", offered when an SMS
//! provider is configured. Each form is bound to the browser as the
//! password form is, and each post runs the SDK call it stands for.

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ciam_core::oidc::page::{PageForm, PageOutcome, PendingPage};
use ciam_core::password::Password;
use ciam_core::sms::SmsKind;
use ciam_core::{CiamError, Lang};
use maud::html;
use serde::Deserialize;

use super::authorize::{
    PageError, Unchecked, caller, checked, failed, finish, outcome_code, parse, posted, with_outcome, with_retry_after,
};
use super::texts::texts;
use super::view::{self, LoginView};
use super::{Cookies, LOGIN_PATH, binding, form_token, origin_of, page_lang};
use crate::AppState;

/// The page that shows the forms.
pub(crate) const CODE_PATH: &str = "/api/v1/login/code";
/// Where a form asks for a code.
pub(crate) const SEND_PATH: &str = "/api/v1/login/code/send";
/// Where a code logs in.
pub(crate) const VERIFY_PATH: &str = "/api/v1/login/code/verify";
/// Where a code sets a new password.
pub(crate) const RESET_PATH: &str = "/api/v1/login/code/reset";

/// What the code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Signing in.
    Login,
    /// A forgotten password.
    Reset,
}

impl Purpose {
    fn parse(text: &str) -> Self {
        if text == "reset" { Purpose::Reset } else { Purpose::Login }
    }

    fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Reset => "reset",
        }
    }

    fn kind(self) -> SmsKind {
        match self {
            Purpose::Login => SmsKind::Login,
            Purpose::Reset => SmsKind::ForgetPassword,
        }
    }
}

/// The link to the code page of stored request `request`.
pub(crate) fn page_link(request: &str, purpose: Purpose) -> String {
    let query = serde_urlencoded::to_string([("request", request), ("purpose", purpose.as_str())]);
    format!("{CODE_PATH}?{}", query.unwrap_or_default())
}

/// What the code page shows.
struct CodeView<'a> {
    lang: Lang,
    request: &'a str,
    csrf: &'a str,
    purpose: Purpose,
    mobile: &'a str,
    /// Whether a code was sent: the code's field is shown.
    sent: bool,
    notice: Option<String>,
    error: Option<String>,
    /// The password policy's tip, for a new password.
    tip: Option<String>,
    redirect_origin: Option<&'a str>,
}

fn code_page(v: &CodeView<'_>, status: StatusCode) -> Response {
    let t = texts(v.lang);
    let (title, submit, action) = match v.purpose {
        Purpose::Login => (t.code_title, t.sign_in, VERIFY_PATH),
        Purpose::Reset => (t.reset_title, t.set_password, RESET_PATH),
    };
    let back = format!("{LOGIN_PATH}?{}", serde_urlencoded::to_string([("request", v.request)]).unwrap_or_default());
    let content = html! {
        h1 { (title) }
        form method="post" action=(if v.sent { action } else { SEND_PATH }) {
            input type="hidden" name="request" value=(v.request);
            input type="hidden" name="csrf" value=(v.csrf);
            input type="hidden" name="purpose" value=(v.purpose.as_str());
            label.field {
                span { (t.mobile) }
                input type="text" inputmode="tel" name="mobile" value=(v.mobile) autocomplete="username" required readonly[v.sent] autofocus[!v.sent];
            }
            @if v.sent {
                input type="hidden" name="sent" value="1";
                label.field {
                    span { (t.code) }
                    input type="text" inputmode="numeric" name="verify_code" autocomplete="one-time-code" maxlength="6" required autofocus;
                }
                @if v.purpose == Purpose::Reset {
                    label.field {
                        span { (t.new_password) }
                        input type="password" name="new_password" autocomplete="new-password" required;
                        @if let Some(tip) = &v.tip { small { (tip) } }
                    }
                    label.field {
                        span { (t.confirm) }
                        input type="password" name="new_password_confirm" autocomplete="new-password" required;
                    }
                }
            }
            @if let Some(notice) = &v.notice { p.notice role="status" { (notice) } }
            @if let Some(error) = &v.error { p.error role="alert" { (error) } }
            div.actions {
                @if v.sent {
                    button type="submit" { (submit) }
                    button.secondary type="submit" formaction=(SEND_PATH) formnovalidate { (t.send_again) }
                } @else {
                    button type="submit" { (t.send_code) }
                }
            }
        }
        p { a href=(back) { (t.with_password) } }
    };
    view::page(v.lang, status, title, content, v.redirect_origin)
}

#[derive(Deserialize)]
pub(super) struct ShowQuery {
    #[serde(default)]
    request: String,
    #[serde(default)]
    purpose: String,
}

/// `GET /api/v1/login/code?request=…&purpose=login|reset`: the number's
/// form, binding the browser.
pub(super) async fn show(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query: ShowQuery = match parse(query.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(status) => return view::unreadable(&headers, status),
    };
    let lang = page_lang(None, &headers);
    if !state.ciam.page_offers_codes() {
        return view::message(lang, StatusCode::NOT_FOUND, texts(lang).request_gone);
    }
    match state.ciam.pending_page(&query.request).await {
        Ok(Some(pending)) => {
            let lang = page_lang(pending.ui_locales(), &headers);
            let (bind, cookie) = binding(&headers, Cookies::of(&state));
            let csrf = form_token(&bind, &query.request);
            let origin = origin_of(pending.redirect_uri());
            let mobile = pending.login_hint().unwrap_or_default();
            let view = CodeView {
                lang,
                request: &query.request,
                csrf: &csrf,
                purpose: Purpose::parse(&query.purpose),
                mobile,
                sent: false,
                notice: None,
                error: None,
                tip: None,
                redirect_origin: origin.as_deref(),
            };
            view::setting(code_page(&view, StatusCode::OK), cookie)
        }
        Ok(None) => view::message(lang, StatusCode::BAD_REQUEST, texts(lang).request_gone),
        Err(e) => failed(lang, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    sent: String,
    #[serde(default)]
    verify_code: String,
    #[serde(default)]
    new_password: String,
    new_password_confirm: Option<String>,
}

/// A posted code form, bound to this browser, with its stored request.
struct Posted {
    form: CodeForm,
    pending: PendingPage,
    lang: Lang,
    parts: axum::http::request::Parts,
}

async fn read(state: &AppState, request: Request) -> Result<Posted, Response> {
    let (parts, body) = request.into_parts();
    let form: CodeForm = posted(body).await.map_err(|status| view::unreadable(&parts.headers, status))?;
    if !state.ciam.page_offers_codes() {
        return Err(Unchecked::Gone.page(&parts.headers));
    }
    let (pending, lang) =
        checked(state, &parts.headers, &form.request, &form.csrf).await.map_err(|e| e.page(&parts.headers))?;
    Ok(Posted { form, pending, lang, parts })
}

impl Posted {
    /// The code page again, with `error` or `notice`.
    async fn again(&self, state: &AppState, sent: bool, notice: Option<String>, error: Option<PageError>) -> Response {
        let purpose = Purpose::parse(&self.form.purpose);
        let tip = match purpose {
            Purpose::Reset => state.ciam.password_policy().await.ok().map(|p| p.tip.get(self.lang).to_owned()),
            Purpose::Login => None,
        };
        let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
        let retry_after = error.as_ref().and_then(|e| e.retry_after);
        let origin = origin_of(self.pending.redirect_uri());
        let view = CodeView {
            lang: self.lang,
            request: &self.form.request,
            csrf: &self.form.csrf,
            purpose,
            mobile: &self.form.mobile,
            sent,
            notice,
            error: error.map(|e| e.text),
            tip,
            redirect_origin: origin.as_deref(),
        };
        with_retry_after(code_page(&view, status), retry_after)
    }

    fn page_form<'a>(&'a self, state: &AppState, session: Option<&'a str>) -> PageForm<'a> {
        PageForm {
            request: &self.form.request,
            pending: self.pending.clone(),
            caller: caller(state, &self.parts, self.lang),
            browser: session,
        }
    }
}

/// `POST /api/v1/login/code/send`: a code to the number, then its form.
pub(super) async fn send(State(state): State<AppState>, request: Request) -> Response {
    let p = match read(&state, request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let kind = Purpose::parse(&p.form.purpose).kind();
    let sent = state.ciam.page_send_code(p.page_form(&state, None), &p.form.mobile, kind).await;
    let code = sent.as_ref().err().map(|e| e.code().as_str()).or(Some("SUCCESS"));
    let response = match sent {
        Ok(_) => {
            let notice = texts(p.lang).code_sent.replace("{0}", p.form.mobile.trim());
            p.again(&state, true, Some(notice), None).await
        }
        Err(e) if matches!(e, CiamError::Internal(_)) => failed(p.lang, &e),
        Err(e) => p.again(&state, p.form.sent == "1", None, Some(PageError::of(&e, p.lang))).await,
    };
    with_outcome(response, code)
}

/// `POST /api/v1/login/code/verify`: a login with the code.
pub(super) async fn verify(State(state): State<AppState>, request: Request) -> Response {
    let p = match read(&state, request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let session = Cookies::of(&state).session(&p.parts.headers);
    let form = p.page_form(&state, session.as_deref());
    let outcome = state.ciam.page_code_login(form, &p.form.mobile, &p.form.verify_code).await;
    let code = outcome_code(&outcome);
    let origin = origin_of(p.pending.redirect_uri());
    let response = match outcome {
        Ok(outcome @ (PageOutcome::SignedIn { .. } | PageOutcome::Denied(_) | PageOutcome::Expired)) => {
            finish(&state, p.lang, &p.form.request, &p.form.csrf, outcome, origin.as_deref())
        }
        Ok(PageOutcome::Change(_)) => failed(p.lang, &CiamError::Internal("a code asked for a password".into())),
        Err(e) if matches!(e, CiamError::Internal(_)) => failed(p.lang, &e),
        Err(e) => p.again(&state, true, None, Some(PageError::of(&e, p.lang))).await,
    };
    with_outcome(response, code)
}

/// `POST /api/v1/login/code/reset`: a new password with the code, then the
/// password form to sign in with it.
pub(super) async fn reset(State(state): State<AppState>, request: Request) -> Response {
    let p = match read(&state, request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    if p.form.new_password_confirm.as_ref().is_some_and(|c| *c != p.form.new_password) {
        let mismatch = PageError {
            text: texts(p.lang).mismatch.into(),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            retry_after: None,
        };
        return p.again(&state, true, None, Some(mismatch)).await;
    }
    let password = Password::new(p.form.new_password.clone());
    let result =
        state.ciam.page_reset_password(p.page_form(&state, None), &p.form.mobile, &p.form.verify_code, &password).await;
    let code = result.as_ref().err().map(|e| e.code().as_str()).or(Some("SUCCESS"));
    let response = match result {
        Ok(_) => {
            let (bind, cookie) = binding(&p.parts.headers, Cookies::of(&state));
            let csrf = form_token(&bind, &p.form.request);
            let origin = origin_of(p.pending.redirect_uri());
            let view = LoginView {
                lang: p.lang,
                request: &p.form.request,
                csrf: &csrf,
                app_name: p.pending.app_name(),
                mobile: p.form.mobile.trim(),
                error: None,
                notice: Some(texts(p.lang).password_set),
                codes: true,
                redirect_origin: origin.as_deref(),
            };
            view::setting(view::login(&view, StatusCode::OK), cookie)
        }
        Err(e) if matches!(e, CiamError::Internal(_)) => failed(p.lang, &e),
        Err(e) => p.again(&state, true, None, Some(PageError::of(&e, p.lang))).await,
    };
    with_outcome(response, code)
}
