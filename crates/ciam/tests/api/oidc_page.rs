//! The hosted login page's outcomes (docs/oidc.md §4): the SDK's refusals
//! on the page (a wrong password with the attempts left, a lock, a
//! disabled user, a throttled address), ACCESS_DENIED back to the app, the
//! page's languages, and the change form after PASSWORD_EXPIRED and
//! PASSWORD_WARN.

use openidconnect::OAuth2TokenResponse;
use openidconnect::core::CoreAuthPrompt;
use openidconnect::url::form_urlencoded;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::oidc_helpers::{
    Answer, Browser, LoginForm, MOBILE, Rp, RpHttp, Started, alert, alice, assert_error_redirect, code_from, exchange,
    hidden_fields, issuer, register, register_with, relying_party, spawn_oidc, start, userinfo_raw,
};

crate::on_both_backends!(
    wrong_passwords_count_down_then_lock_with_the_sdk_messages,
    a_disabled_user_gets_the_sdk_message_on_the_page,
    a_throttled_address_is_answered_429_with_retry_after,
    access_denied_goes_back_to_the_app_with_the_state,
    the_page_speaks_chinese_from_ui_locales_or_accept_language,
    the_language_link_switches_the_page_and_its_messages,
    an_expired_password_is_changed_on_the_page_before_the_code,
    a_password_warning_can_be_skipped_and_the_password_stays,
    a_new_password_on_the_page_ends_the_users_other_sessions,
    an_sdk_state_token_is_refused_on_the_pages_change_form,
);

const WRONG: &str = "Wrong-pass1";
const NEW: &str = "N3w-Passw0rd";

/// A public app (with `extra` fields), its relying party, and the login
/// form of a fresh authorization request in a new browser.
async fn page_for(app: &TestApp, extra: Value) -> (Rp, Browser, LoginForm, Started) {
    let client_id = register_with(app, extra).await;
    let rp = relying_party(app, &RpHttp::new(), &client_id, None).await;
    let started = start(&rp, &["phone"], None);
    let mut browser = Browser::new(app);
    let form = browser.get(started.url.as_str()).await.login_page();
    (rp, browser, form, started)
}

/// The SDK's `error_msg` for a login, in `lang`.
async fn sdk_message(app: &TestApp, client: &str, mobile: &str, password: &str, lang: Option<&str>) -> String {
    let (_, body) = app.login_lang(client, mobile, password, lang).await;
    body["error_msg"].as_str().unwrap_or_else(|| panic!("an error_msg: {body}")).to_owned()
}

/// A refusal on the page: `status`, the SDK's `message`, and the form again.
#[track_caller]
fn assert_refused(answer: &Answer, status: u16, message: &str) -> LoginForm {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
    assert_eq!(answer.location, None);
    assert_eq!(alert(&answer.body).as_deref(), Some(message), "{}", answer.body);
    assert!(answer.body.contains("name=\"password\""), "the form again: {}", answer.body);
    answer.form()
}

async fn wrong_passwords_count_down_then_lock_with_the_sdk_messages(backend: Backend) {
    let app = spawn_oidc(backend).await;
    app.clock.freeze();
    let iss = issuer(&app);
    alice(&app).await;
    app.create_user("15200000001", PASSWORD).await;
    app.set_lockout(3, 600).await;
    let sdk = app.default_app().await;
    let (_, mut browser, mut form, started) = page_for(&app, json!({})).await;
    let origin = app.base.clone();

    // The same count on another account through the SDK says what the page must.
    for left in [2, 1] {
        let want = sdk_message(&app, &sdk, "15200000001", WRONG, None).await;
        assert_eq!(want, format!("Invalid account or password. Remaining times: {left}"));
        let wrong = browser.post_login(&form, MOBILE, WRONG, Some(&origin)).await;
        form = assert_refused(&wrong, 400, &want);
        assert!(wrong.body.contains(&format!("value=\"{MOBILE}\"")), "the mobile kept: {}", wrong.body);
    }
    let want = sdk_message(&app, &sdk, "15200000001", WRONG, None).await;
    assert!(want.ends_with("It will be unlocked in 10 minutes and 0 seconds"), "{want}");
    form = assert_refused(&browser.post_login(&form, MOBILE, WRONG, Some(&origin)).await, 400, &want);
    // Locked: the right password too, with the time left.
    app.clock.advance(61);
    let right = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    let want = "User has been locked out due to multiple login failures. \
                It will be unlocked in 8 minutes and 59 seconds";
    form = assert_refused(&right, 400, want);
    assert!(!browser.has_cookie("ciam_sso"));
    // When the lock lifts, the same form signs in.
    app.clock.advance(600 - 61);
    let answer = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    code_from(answer.see_other(), &started.state, &iss);
}

async fn a_disabled_user_gets_the_sdk_message_on_the_page(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let sdk = app.default_app().await;
    let (status, body) = app.admin(Method::PATCH, &format!("/users/{user}"), Some(json!({"disabled": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let want = sdk_message(&app, &sdk, MOBILE, PASSWORD, None).await;
    assert_eq!(want, "User is disabled");

    let (_, mut browser, form, started) = page_for(&app, json!({})).await;
    let origin = app.base.clone();
    let refused = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    let form = assert_refused(&refused, 400, &want);
    assert!(!browser.has_cookie("ciam_sso"));
    // Enabled again, the same request goes on.
    app.admin(Method::PATCH, &format!("/users/{user}"), Some(json!({"disabled": false}))).await;
    let answer = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    code_from(answer.see_other(), &started.state, &iss);
}

async fn a_throttled_address_is_answered_429_with_retry_after(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let sdk = app.default_app().await;
    let body = json!({"ip_max_failures": 2, "ip_window_seconds": 600});
    let (status, policy) = app.admin(Method::PUT, "/policies/throttle", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    let (_, mut browser, mut form, _) = page_for(&app, json!({})).await;
    let origin = app.base.clone();
    for mobile in ["13900000001", "13900000002"] {
        let wrong = browser.post_login(&form, mobile, WRONG, Some(&origin)).await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
        form = wrong.form();
    }
    // The window is closed for this address: even the right password.
    let throttled = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    let retry: u64 =
        throttled.headers.get("retry-after").expect("Retry-After").to_str().expect("ASCII").parse().expect("seconds");
    assert!((1..=600).contains(&retry), "Retry-After: {retry}");
    let want = sdk_message(&app, &sdk, MOBILE, PASSWORD, None).await;
    assert_eq!(want, "Too many attempts from your network, please try again later");
    assert_refused(&throttled, 429, &want);
    assert!(!browser.has_cookie("ciam_sso"));
}

async fn access_denied_goes_back_to_the_app_with_the_state(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let (rp, mut browser, form, started) = page_for(&app, json!({"access": "assigned"})).await;
    let origin = app.base.clone();
    let denied = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    assert_error_redirect(denied.see_other(), "access_denied", started.state.secret(), &iss);
    assert!(!browser.has_cookie("ciam_sso"), "no session for a denied login");
    // The SDK login answers the same for this app.
    let (status, body) = app.login(rp.client_id().as_str(), MOBILE, PASSWORD).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ACCESS_DENIED")), "{body}");

    // A member is let in.
    let (status, body) = app.admin(Method::PUT, &format!("/apps/{}/users/{user}", rp.client_id().as_str()), None).await;
    assert!(status.is_success(), "{status} {body}");
    let started = start(&rp, &["phone"], None);
    let location = browser.sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    code_from(&location, &started.state, &iss);
}

/// Whether a page is the Chinese login page (and not the English one).
fn chinese(answer: &Answer) -> bool {
    let body = &answer.body;
    body.contains("<html lang=\"zh-CN\"") && body.contains("手机号") && !body.contains("Mobile number")
}

fn english(answer: &Answer) -> bool {
    let body = &answer.body;
    body.contains("<html lang=\"en\"") && body.contains("Mobile number") && !body.contains("手机号")
}

async fn the_page_speaks_chinese_from_ui_locales_or_accept_language(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    app.create_user("15200000001", PASSWORD).await;
    let sdk = app.default_app().await;
    let (client_id, _) = register(&app, "public").await;
    let rp = relying_party(&app, &RpHttp::new(), &client_id, None).await;
    let origin = app.base.clone();

    let mut url = start(&rp, &["phone"], None).url;
    url.query_pairs_mut().append_pair("ui_locales", "zh-CN en");
    let mut browser = Browser::new(&app);
    let page = browser.get(url.as_str()).await;
    assert!(chinese(&page), "{}", page.body);
    // A refusal is the SDK's message in Chinese.
    let want = sdk_message(&app, &sdk, "15200000001", WRONG, Some("zh")).await;
    assert_eq!(want, "无效的账号或密码。 剩余次数:9");
    let wrong = browser.post_login(&page.login_page(), MOBILE, WRONG, Some(&origin)).await;
    assert!(chinese(&wrong), "{}", wrong.body);
    assert_refused(&wrong, 400, &want);

    // No ui_locales: the browser's Accept-Language decides.
    let mut zh = Browser::new(&app);
    zh.extra.push(("Accept-Language".into(), "zh".into()));
    let page = zh.get(start(&rp, &["phone"], None).url.as_str()).await;
    assert!(chinese(&page), "{}", page.body);
    let mut en = Browser::new(&app);
    en.extra.push(("Accept-Language".into(), "en-US,en;q=0.9".into()));
    let page = en.get(start(&rp, &["phone"], None).url.as_str()).await;
    assert!(english(&page), "{}", page.body);
}

/// The page's language link: the stored request in `lang`.
fn lang_link(request: &str, lang: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("request", request)
        .append_pair("lang", lang)
        .finish();
    format!("/api/v1/login?{query}")
}

async fn the_language_link_switches_the_page_and_its_messages(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let (client_id, _) = register(&app, "public").await;
    let rp = relying_party(&app, &RpHttp::new(), &client_id, None).await;
    let mut url = start(&rp, &["phone"], None).url;
    url.query_pairs_mut().append_pair("ui_locales", "zh-CN");
    let mut browser = Browser::new(&app);
    let page = browser.get(url.as_str()).await;
    assert!(chinese(&page), "{}", page.body);
    let form = page.login_page();

    let href = lang_link(&form.request, "en");
    assert!(page.body.contains(&format!("href=\"{}\"", href.replace('&', "&amp;"))), "{}", page.body);
    let switched = browser.get(&app.url(&href)).await;
    assert!(english(&switched), "{}", switched.body);
    let again = switched.login_page();
    assert_eq!(again.request, form.request, "the same stored request");
    // The choice holds for the page's answers, over the request's ui_locales.
    let origin = app.base.clone();
    let wrong = browser.post_login(&again, MOBILE, WRONG, Some(&origin)).await;
    assert!(english(&wrong), "{}", wrong.body);
    assert_refused(&wrong, 400, "Invalid account or password. Remaining times: 9");
    let page = browser.get(url.as_str()).await;
    assert!(english(&page), "a chosen language wins over ui_locales: {}", page.body);
    // And back to Chinese.
    let form = page.login_page();
    assert!(chinese(&browser.get(&app.url(&lang_link(&form.request, "zh"))).await));
}

/// Posts the change form of `page` with `new` and `confirm` (or the skip).
async fn post_change(browser: &mut Browser, app: &TestApp, page: &Answer, new: &str, confirm: &str) -> Answer {
    let mut fields = hidden_fields(&page.body);
    assert!(fields.iter().any(|(name, value)| name == "state" && value.len() >= 32), "{fields:?}");
    match new {
        "skip" => fields.push(("action".into(), "skip".into())),
        _ => fields.extend([("new_password".into(), new.into()), ("new_password_confirm".into(), confirm.into())]),
    }
    browser.post("/api/v1/login/password", &fields, Some(&app.base)).await
}

/// Whether a page is the change form (with the skip button when `warn`).
#[track_caller]
fn assert_change_form(answer: &Answer, warn: bool) {
    let body = &answer.body;
    assert!(body.contains("action=\"/api/v1/login/password\""), "{body}");
    for field in ["new_password", "new_password_confirm"] {
        let at = body.find(&format!("name=\"{field}\"")).unwrap_or_else(|| panic!("{field} in {body}"));
        assert!(body[at..].split('>').next().is_some_and(|tag| tag.contains("autocomplete=\"new-password\"")));
    }
    assert!(body.contains(ciam_core::policy::SEED_TIP_EN), "the tip: {body}");
    assert_eq!(body.contains("name=\"action\" value=\"skip\""), warn, "{body}");
}

async fn an_expired_password_is_changed_on_the_page_before_the_code(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let lax = app.default_app().await;
    let old = "2000-01-01T00:00:00Z";
    let user = app.create_user_with(json!({"mobile": MOBILE, "password": PASSWORD, "password_changed_at": old})).await;
    let (rp, mut browser, form, started) = page_for(&app, json!({"password_expiry_check": true})).await;
    let expired = browser.post_login(&form, MOBILE, PASSWORD, Some(&app.base.clone())).await;
    assert_eq!(expired.status, StatusCode::OK, "{}", expired.body);
    assert_change_form(&expired, false);
    assert!(!browser.has_cookie("ciam_sso"), "no session before the change");

    let short = post_change(&mut browser, &app, &expired, "Sh0rt!", "Sh0rt!").await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    let why = alert(&short.body).unwrap_or_default();
    assert!(why.contains(ciam_core::policy::SEED_TIP_EN), "the policy's tip in {why:?}");
    assert_change_form(&short, false);
    let differ = post_change(&mut browser, &app, &short, NEW, "N3w-Passw0rd?").await;
    assert_eq!(differ.location, None, "{}", differ.body);
    assert!(differ.status.is_client_error(), "{}", differ.body);
    assert_eq!(alert(&differ.body).as_deref(), Some("The two new passwords differ."));
    assert_change_form(&differ, false);

    let changed = post_change(&mut browser, &app, &differ, NEW, NEW).await;
    let code = code_from(changed.see_other(), &started.state, &issuer(&app));
    assert!(browser.has_cookie("ciam_sso"));
    let http = RpHttp::new();
    let tokens = exchange(&rp, &http, code, started.verifier).await.expect("tokens after the change");
    let (status, _, claims) = userinfo_raw(&app, tokens.access_token().secret()).await;
    assert_eq!((status, claims["sub"].as_str()), (StatusCode::OK, Some(user.as_str())), "{claims}");
    // The new password works on the SDK login, the old one does not.
    app.login_ok(&lax, MOBILE, NEW).await;
    let (status, refused) = app.login(&lax, MOBILE, PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error_code"], "IDAAS.SDK.LOGIN.0002", "{refused}");
    let (_, record) = app.admin(Method::GET, &format!("/users/{user}"), None).await;
    assert_ne!(record["password_changed_at"], old, "{record}");
}

async fn a_password_warning_can_be_skipped_and_the_password_stays(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let lax = app.default_app().await;
    let body = json!({"max_age_days": 30, "warn_days": 10});
    let (status, policy) = app.admin(Method::PUT, "/policies/password", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    let changed_at = ciam_core::clock::to_rfc3339(ciam_core::Clock::now(&ciam_core::SystemClock) - 25 * 86_400);
    let user =
        app.create_user_with(json!({"mobile": MOBILE, "password": PASSWORD, "password_changed_at": changed_at})).await;
    let (_, before) = app.admin(Method::GET, &format!("/users/{user}"), None).await;

    let (rp, mut browser, form, started) = page_for(&app, json!({"password_expiry_check": true})).await;
    let warned = browser.post_login(&form, MOBILE, PASSWORD, Some(&app.base.clone())).await;
    assert_eq!(warned.status, StatusCode::OK, "{}", warned.body);
    assert_change_form(&warned, true);

    let skipped = post_change(&mut browser, &app, &warned, "skip", "").await;
    let code = code_from(skipped.see_other(), &started.state, &iss);
    let tokens = exchange(&rp, &RpHttp::new(), code, started.verifier).await.expect("tokens after the skip");
    let (status, _, claims) = userinfo_raw(&app, tokens.access_token().secret()).await;
    assert_eq!((status, claims["sub"].as_str()), (StatusCode::OK, Some(user.as_str())), "{claims}");
    // The password is the same, and as old as it was.
    app.login_ok(&lax, MOBILE, PASSWORD).await;
    let (_, after) = app.admin(Method::GET, &format!("/users/{user}"), None).await;
    assert_eq!(after["password_changed_at"], before["password_changed_at"], "{after}");
}

async fn a_new_password_on_the_page_ends_the_users_other_sessions(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let old = "2000-01-01T00:00:00Z";
    app.create_user_with(json!({"mobile": MOBILE, "password": PASSWORD, "password_changed_at": old})).await;
    // Signed in where the password's age is not checked: the SDK, and
    // another browser through a relying party.
    let sdk = app.default_app().await;
    let session = app.login_ok(&sdk, MOBILE, PASSWORD).await["session_token"].as_str().expect("token").to_owned();
    let (lax, mut other, form, started) = page_for(&app, json!({})).await;
    let location = other.post_login(&form, MOBILE, PASSWORD, Some(&app.base.clone())).await.see_other().to_owned();
    let code = code_from(&location, &started.state, &iss);
    let tokens = exchange(&lax, &RpHttp::new(), code, started.verifier).await.expect("tokens");

    let (_, mut browser, form, started) = page_for(&app, json!({"password_expiry_check": true})).await;
    let expired = browser.post_login(&form, MOBILE, PASSWORD, Some(&app.base.clone())).await;
    assert_change_form(&expired, false);
    // "Not now" is only for PASSWORD_WARN, even posted by hand.
    let skipped = post_change(&mut browser, &app, &expired, "skip", "").await;
    assert_eq!(skipped.location, None, "{}", skipped.body);
    assert!(skipped.status.is_client_error(), "{}", skipped.body);
    assert!(!browser.has_cookie("ciam_sso"));
    let changed = post_change(&mut browser, &app, &expired, NEW, NEW).await;
    code_from(changed.see_other(), &started.state, &iss);

    // Every other session of the user has ended.
    assert_eq!(userinfo_raw(&app, tokens.access_token().secret()).await.0, StatusCode::UNAUTHORIZED);
    let silent = start(&lax, &["phone"], Some(CoreAuthPrompt::None));
    let answer = other.get(silent.url.as_str()).await;
    assert_error_redirect(answer.see_other(), "login_required", silent.state.secret(), &iss);
    let (status, refused) = app.refresh(&sdk, &session).await;
    assert_eq!((status, refused["error_code"].as_str()), (StatusCode::BAD_REQUEST, Some("IDAAS.SDK.PARAM.0023")));
}

async fn an_sdk_state_token_is_refused_on_the_pages_change_form(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let old = "2000-01-01T00:00:00Z";
    app.create_user_with(json!({"mobile": MOBILE, "password": PASSWORD, "password_changed_at": old})).await;
    let (rp, mut browser, form, _) = page_for(&app, json!({"password_expiry_check": true})).await;
    // The SDK hands a state_token for the same app to whoever knows the password.
    let client_id = rp.client_id().as_str();
    let (_, sdk) = app.login(client_id, MOBILE, PASSWORD).await;
    assert_eq!(sdk["status"], "PASSWORD_EXPIRED", "{sdk}");
    let sdk_token = sdk["state_token"].as_str().expect("state_token");
    // A page's form of this browser and request, carrying that token: refused.
    let mut fields = vec![("request".to_owned(), form.request.clone()), ("csrf".to_owned(), form.csrf.clone())];
    fields.extend(
        [("state", sdk_token), ("flow", "expired"), ("new_password", NEW), ("new_password_confirm", NEW)]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let refused = browser.post("/api/v1/login/password", &fields, Some(&app.base)).await;
    assert_eq!((refused.status, refused.location.as_deref()), (StatusCode::BAD_REQUEST, None), "{}", refused.body);
    assert!(!browser.has_cookie("ciam_sso"));
    let (status, body) = app.login(client_id, MOBILE, NEW).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("IDAAS.SDK.LOGIN.0002")),
        "{body}"
    );
}
