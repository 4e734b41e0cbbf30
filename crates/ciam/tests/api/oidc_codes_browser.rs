//! Codes by SMS on the hosted login page in Chromium: a person signs into
//! the web app with a code, then sets a forgotten password and signs in
//! with it, in Chinese; no Content-Security-Policy violation on the way.
//! With `CIAM_LOGIN_SCREENSHOTS=DIR` the pages are saved there (how
//! `docs/login/` is made).

use fantoccini::Client;
use serde_json::json;

use crate::chromium::{browser, click, fill, text_of};
use crate::helpers::Backend;
use crate::oidc_browser::{assert_no_csp_violation, shots, sign_in, signed_in, start_rp, visit};
use crate::oidc_codes::spawn;
use crate::oidc_helpers::{MOBILE, alice};
use crate::sms_helpers::{Gateway, sms_policy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_app_users_sign_in_with_a_code_in_chromium() {
    let (app, gateway) = spawn(Backend::Sqlite).await;
    let rp = start_rp(&app).await;
    let session = browser().await;
    let browser = &session.client;
    let user = alice(&app).await;
    // Two codes to one number in a minute: the resend interval out of the way.
    sms_policy(&app, json!({"resend_seconds": 0})).await;

    visit(browser, &rp, "").await;
    shots(browser, "login-codes", "en").await;
    click(browser, "main.login p.alternatives a[href*='purpose=login']").await;
    assert_eq!(text_of(browser, "main.login h1").await, "Sign in with a code");
    shots(browser, "code", "en").await;
    fill(browser, "input[name=mobile]", MOBILE).await;
    click(browser, "main.login form button[type=submit]").await;
    assert_eq!(text_of(browser, "main.login p.notice").await, format!("A code is on its way to {MOBILE} by SMS."));
    let code = gateway.code(1).await;
    fill(browser, "input[name=verify_code]", &code).await;
    shots(browser, "code-sent", "en").await;
    click(browser, "main.login form button[type=submit]").await;
    assert_eq!(signed_in(browser, &rp).await, user);
    assert_no_csp_violation(browser).await;

    forgets_the_password_in_chinese(browser, &rp, &gateway).await;
    assert_eq!(signed_in(browser, &rp).await, user);
    assert_no_csp_violation(browser).await;
    session.close().await;
}

/// "Forgot your password?" in Chinese: a code, a new password, then the
/// password form says it is set, and the new password signs in.
async fn forgets_the_password_in_chinese(browser: &Client, rp: &str, gateway: &Gateway) {
    const NEW: &str = "N3w-Passw0rd";
    visit(browser, rp, "?prompt=login&ui_locales=zh-CN").await;
    click(browser, "main.login p.alternatives a[href*='purpose=reset']").await;
    assert_eq!(text_of(browser, "main.login h1").await, "设置新密码");
    fill(browser, "input[name=mobile]", MOBILE).await;
    click(browser, "main.login form button[type=submit]").await;
    let code = gateway.code(2).await;
    fill(browser, "input[name=verify_code]", &code).await;
    fill(browser, "input[name=new_password]", NEW).await;
    fill(browser, "input[name=new_password_confirm]", NEW).await;
    shots(browser, "reset", "zh").await;
    click(browser, "main.login form button[type=submit]").await;
    assert_eq!(text_of(browser, "main.login p.notice").await, "新密码已设置，请用新密码登录。");
    sign_in(browser, MOBILE, NEW).await;
}
