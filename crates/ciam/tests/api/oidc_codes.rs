//! Codes by SMS on the hosted login page (docs/sms.md): "Sign in with a
//! code" ends in the app's code as a password does, "Forgot your
//! password?" sets a new one and leads back to the password form; both are
//! bound to the browser, and offered only with a provider.

use openidconnect::OAuth2TokenResponse;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, free_port};
use crate::oidc_helpers::{
    Answer, Browser, LoginForm, MOBILE, Rp, RpHttp, Started, alert, alice, code_from, exchange, issuer, register_with,
    relying_party, spawn_oidc, start,
};
use crate::sms_helpers::{Gateway, WEBHOOK_SECRET};

crate::on_both_backends!(
    a_code_signs_in_through_the_login_page,
    a_forgotten_password_is_set_on_the_login_page,
    without_a_provider_the_page_offers_no_codes,
    a_code_form_from_another_site_sends_nothing,
);

/// A server on a loopback issuer that sends codes to a new gateway.
pub(crate) async fn spawn(backend: Backend) -> (TestApp, Gateway) {
    let gateway = Gateway::start().await;
    let url = format!("{}/sms", gateway.base);
    let port = free_port();
    let app = TestApp::spawn_with(backend, |c| {
        c.listen = format!("127.0.0.1:{port}");
        c.issuer = Some(format!("http://127.0.0.1:{port}"));
        c.sms_provider = Some("webhook".into());
        c.sms_webhook_url = Some(url);
        c.sms_webhook_secret = Some(WEBHOOK_SECRET.into());
    })
    .await;
    (app, gateway)
}

/// A relying party, and the login page of a fresh request in a new browser.
async fn login_page(app: &TestApp) -> (Rp, Started, Browser, LoginForm, Answer) {
    let client_id = register_with(app, json!({})).await;
    let rp = relying_party(app, &RpHttp::new(), &client_id, None).await;
    let started = start(&rp, &["phone"], None);
    let mut browser = Browser::new(app);
    let page = browser.get(started.url.as_str()).await;
    let form = page.login_page();
    (rp, started, browser, form, page)
}

/// The fields of a code form: the page's own, then `extra`.
fn fields(form: &LoginForm, purpose: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields = vec![
        ("request".to_owned(), form.request.clone()),
        ("csrf".to_owned(), form.csrf.clone()),
        ("purpose".to_owned(), purpose.to_owned()),
        ("mobile".to_owned(), MOBILE.to_owned()),
    ];
    fields.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    fields
}

async fn a_code_signs_in_through_the_login_page(backend: Backend) {
    let (app, gateway) = spawn(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let (rp, started, mut browser, form, page) = login_page(&app).await;
    assert!(page.body.contains("/api/v1/login/code?request="), "the page offers codes: {}", page.body);
    let code_page =
        browser.get(&format!("{}/api/v1/login/code?request={}&purpose=login", app.base, form.request)).await;
    assert_eq!(code_page.status, StatusCode::OK, "{}", code_page.body);
    assert!(code_page.body.contains("action=\"/api/v1/login/code/send\""), "{}", code_page.body);

    let sent = browser.post("/api/v1/login/code/send", &fields(&form, "login", &[]), Some(&iss)).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.body.contains("name=\"verify_code\"") && sent.body.contains("autocomplete=\"one-time-code\""));
    let code = gateway.code(1).await;
    let wrong = fields(&form, "login", &[("sent", "1"), ("verify_code", "00000x")]);
    let refused = browser.post("/api/v1/login/code/verify", &wrong, Some(&iss)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(alert(&refused.body).as_deref(), Some("Incorrect verification code"));

    let right = fields(&form, "login", &[("sent", "1"), ("verify_code", &code)]);
    let signed_in = browser.post("/api/v1/login/code/verify", &right, Some(&iss)).await;
    let location = signed_in.see_other().to_owned();
    assert!(browser.has_cookie("ciam_sso"), "a browser session");
    let code = code_from(&location, &started.state, &iss);
    let tokens = exchange(&rp, &RpHttp::new(), code, started.verifier).await.expect("tokens");
    assert!(!tokens.access_token().secret().is_empty());
    let (_, events) = app.admin(reqwest::Method::GET, "/audit-events?limit=10", None).await;
    let by_code = events.as_array().expect("list").iter().find(|e| e["action"] == "login.mobile_verify_code");
    assert_eq!(by_code.map(|e| e["user_id"].clone()), Some(json!(user)), "{events}");
}

async fn a_forgotten_password_is_set_on_the_login_page(backend: Backend) {
    let (app, gateway) = spawn(backend).await;
    let iss = issuer(&app);
    alice(&app).await;
    let (_, started, mut browser, form, _) = login_page(&app).await;
    let sent = browser.post("/api/v1/login/code/send", &fields(&form, "reset", &[]), Some(&iss)).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.body.contains("name=\"new_password\""), "{}", sent.body);
    let code = gateway.code(1).await;
    assert_eq!(gateway.wait_for(1).await[0]["type"], "FORGET_PWD_SMS");

    let reset = |password: &str, confirm: &str| {
        fields(
            &form,
            "reset",
            &[("sent", "1"), ("verify_code", &code), ("new_password", password), ("new_password_confirm", confirm)],
        )
    };
    let mismatch = browser.post("/api/v1/login/code/reset", &reset("N3w-Passw0rd", "N3w-Passw0rd!"), Some(&iss)).await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    let weak = browser.post("/api/v1/login/code/reset", &reset("weak", "weak"), Some(&iss)).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(alert(&weak.body).is_some_and(|a| a.starts_with("The new password does not meet")), "{}", weak.body);
    let done = browser.post("/api/v1/login/code/reset", &reset("N3w-Passw0rd", "N3w-Passw0rd"), Some(&iss)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Your new password is set"), "{}", done.body);
    let again = done.form();
    assert_eq!(again.request, form.request, "the same request goes on");
    let old = browser.post_login(&again, MOBILE, PASSWORD, Some(&iss)).await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST, "the old password is gone");
    let location = browser.post_login(&old.form(), MOBILE, "N3w-Passw0rd", Some(&iss)).await.see_other().to_owned();
    code_from(&location, &started.state, &iss);
}

async fn without_a_provider_the_page_offers_no_codes(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let (_, _, mut browser, form, page) = login_page(&app).await;
    assert!(!page.body.contains("/api/v1/login/code"), "{}", page.body);
    let code_page = browser.get(&format!("{}/api/v1/login/code?request={}", app.base, form.request)).await;
    assert_eq!(code_page.status, StatusCode::NOT_FOUND);
}

async fn a_code_form_from_another_site_sends_nothing(backend: Backend) {
    let (app, gateway) = spawn(backend).await;
    alice(&app).await;
    let (_, _, mut browser, form, _) = login_page(&app).await;
    let forged =
        browser.post("/api/v1/login/code/send", &fields(&form, "login", &[]), Some("https://evil.example")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut stranger = Browser::new(&app);
    let unbound = stranger.post("/api/v1/login/code/send", &fields(&form, "login", &[]), Some(&issuer(&app))).await;
    assert_eq!(unbound.status, StatusCode::FORBIDDEN);
    assert_eq!(gateway.delivered().await, 0);
}
