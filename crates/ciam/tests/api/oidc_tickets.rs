//! SSO tickets: a native app turns its session into a single-use ticket
//! for one web app; the browser's GET only asks, the POST (bound to the
//! browser) signs it in and sends it to the app's `initiate_login_uri`,
//! whose own authorize is then answered without the login page.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, read};
use crate::oidc_helpers::{
    Answer, Browser, MOBILE, REDIRECT, RpHttp, alice, code_from, hidden, issuer, no_redirects, relying_party,
    spawn_oidc, start,
};

crate::on_both_backends!(
    a_ticket_signs_a_browser_into_the_web_app_once,
    a_ticket_is_asked_for_with_a_live_session_of_the_calling_app,
    a_ticket_never_replaces_another_signed_in_user,
    a_ticket_form_from_another_site_is_refused,
);

const START: &str = "http://127.0.0.1:8765/start";

/// A public web app with [`REDIRECT`] and an `initiate_login_uri`.
async fn web_app(app: &TestApp) -> String {
    let body = json!({"name": "Shop web", "redirect_uris": [REDIRECT], "initiate_login_uri": START});
    let (status, created) = app.admin(Method::POST, "/apps", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["initiate_login_uri"], START, "{created}");
    created["client_id"].as_str().expect("client_id").to_owned()
}

/// Asks for a ticket for `target` with `session_token` of app `native`.
async fn ask(app: &TestApp, native: &str, session_token: &str, target: &str) -> (StatusCode, Value) {
    let req = app
        .sdk(Method::POST, "/sso/session-token/sso-ticket", native)
        .header("session-token", session_token)
        .json(&json!({"client_id": target}));
    read(req.send().await.expect("request")).await
}

/// A native app, alice signed in to it, and a ticket for a new web app:
/// (native client id, web client id, session_token, ticket).
async fn ticket_for_alice(app: &TestApp) -> (String, String, String, String) {
    alice(app).await;
    let native = app.default_app().await;
    let web = web_app(app).await;
    let session = app.login_ok(&native, MOBILE, PASSWORD).await["session_token"].as_str().expect("token").to_owned();
    let (status, body) = ask(app, &native, &session, &web).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expire"], 300, "{body}");
    let ticket = body["sso_ticket"].as_str().expect("sso_ticket").to_owned();
    assert_eq!(ticket.len(), 43, "{body}");
    (native, web, session, ticket)
}

/// Posts the ticket page's form as the page would, from `origin`.
async fn redeem(app: &TestApp, browser: &mut Browser, page: &Answer, origin: &str) -> (StatusCode, Option<String>) {
    let fields = [
        ("sso_ticket", hidden(&page.body, "sso_ticket").expect("the ticket field")),
        ("csrf", hidden(&page.body, "csrf").expect("the csrf field")),
    ];
    let resp = no_redirects()
        .post(app.url("/api/v1/sso/ticket"))
        .header("Cookie", browser.cookie_header())
        .header("Origin", origin)
        .form(&fields)
        .send()
        .await
        .expect("request");
    for value in resp.headers().get_all("set-cookie") {
        let pair = value.to_str().expect("ASCII").split(';').next().unwrap_or_default().to_owned();
        if let Some((name, value)) = pair.split_once('=') {
            browser.put_cookie(name, value);
        }
    }
    let location = resp.headers().get("location").map(|v| v.to_str().expect("ASCII").to_owned());
    (resp.status(), location)
}

async fn a_ticket_signs_a_browser_into_the_web_app_once(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (_, web, _, ticket) = ticket_for_alice(&app).await;
    let url = app.url(&format!("/api/v1/sso/ticket?sso_ticket={ticket}"));
    let mut browser = Browser::new(&app);
    // A mail scanner's GET spends nothing: the page asks, twice.
    let _ = Browser::new(&app).get(&url).await;
    let page = browser.get(&url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("152****0000") && page.body.contains("Shop web"), "{}", page.body);
    assert!(!page.body.contains("15200000000"), "the number is masked: {}", page.body);
    let (status, location) = redeem(&app, &mut browser, &page, &app.base).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some(format!("{START}?iss={}", urlencode(&issuer(&app))).as_str()));
    assert!(browser.has_cookie("ciam_sso"), "the ticket signed the browser in");
    // The web app's own authorize is answered without the page.
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &web, None).await;
    let started = start(&rp, &[], None);
    let answer = browser.get(started.url.as_str()).await;
    code_from(answer.see_other(), &started.state, &issuer(&app));
    // Used once: the same form again, and the link again, say it expired.
    let (status, _) = redeem(&app, &mut Browser::new(&app), &page, &app.base).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another browser's form");
    let (status, _) = redeem(&app, &mut browser, &page, &app.base).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(Browser::new(&app).get(&url).await.status, StatusCode::BAD_REQUEST);
}

fn urlencode(text: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn a_ticket_is_asked_for_with_a_live_session_of_the_calling_app(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (native, web, session, _) = ticket_for_alice(&app).await;
    let other = app.create_app(json!({"name": "Other native"})).await;
    let got = ask(&app, &other, &session, &web).await;
    assert_error(&got, 400, "IDAAS.SDK.PARAM.0023", None);
    assert_error(&ask(&app, &native, "not-a-session", &web).await, 400, "IDAAS.SDK.PARAM.0023", None);
    // A target without an initiate_login_uri, or no such app.
    let plain = app.default_app().await;
    assert_error(&ask(&app, &native, &session, &plain).await, 400, "IDAAS.SDK.SSO.0001", None);
    assert_error(&ask(&app, &native, &session, "nope").await, 400, "IDAAS.SDK.SSO.0001", None);
    // The session's end ends the tickets' source.
    let req = app.sdk(Method::POST, "/logout", &native).header("session-token", &session);
    assert_eq!(req.send().await.expect("request").status(), StatusCode::OK);
    assert_error(&ask(&app, &native, &session, &web).await, 400, "IDAAS.SDK.PARAM.0023", None);
}

async fn a_ticket_never_replaces_another_signed_in_user(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (_, web, _, ticket) = ticket_for_alice(&app).await;
    app.create_user("15200000001", PASSWORD).await;
    // Bob signs in to the web app in this browser.
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &web, None).await;
    let mut browser = Browser::new(&app);
    let started = start(&rp, &[], None);
    browser.sign_in(started.url.as_str(), "15200000001", PASSWORD).await;
    let bob_session = browser.cookie_header();
    let url = app.url(&format!("/api/v1/sso/ticket?sso_ticket={ticket}"));
    let page = browser.get(&url).await;
    let (status, location) = redeem(&app, &mut browser, &page, &app.base).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(location, None);
    assert_eq!(browser.cookie_header(), bob_session, "bob stays signed in");
    // Nothing was spent: another browser can still use the ticket.
    let mut fresh = Browser::new(&app);
    let page = fresh.get(&url).await;
    assert_eq!(redeem(&app, &mut fresh, &page, &app.base).await.0, StatusCode::SEE_OTHER);
}

async fn a_ticket_form_from_another_site_is_refused(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (_, _, _, ticket) = ticket_for_alice(&app).await;
    let url = app.url(&format!("/api/v1/sso/ticket?sso_ticket={ticket}"));
    let mut browser = Browser::new(&app);
    let page = browser.get(&url).await;
    let (status, _) = redeem(&app, &mut browser, &page, "https://evil.example").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!browser.has_cookie("ciam_sso"));
    // Unspent: the page's own post still works.
    assert_eq!(redeem(&app, &mut browser, &page, &app.base).await.0, StatusCode::SEE_OTHER);
}
