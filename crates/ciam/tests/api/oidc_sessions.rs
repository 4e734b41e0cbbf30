//! Browser sessions, logout and revocation (docs/oidc.md §5, §6, §8, §9):
//! single sign-on and what ends it (a new password, a disabled user,
//! `max_age`, an old password under `prompt=none`), RP-initiated logout
//! with and without an `id_token_hint`, and revocation of a token family.

use openidconnect::core::{CoreAuthPrompt, CoreTokenResponse};
use openidconnect::{OAuth2TokenResponse, RefreshToken, TokenResponse};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::oidc_helpers::{
    Answer, Browser, MOBILE, REDIRECT, Rp, RpHttp, alice, assert_error_redirect, code_from, exchange, hidden_fields,
    issuer, jwt_claims, jwt_header, query, refresh, register_with, relying_party, spawn_oidc, start, token_error,
    userinfo_raw,
};

crate::on_both_backends!(
    a_second_app_is_answered_from_the_session_after_its_own_checks,
    an_admin_reset_ends_the_browser_session_and_every_token,
    an_sdk_password_update_ends_the_browser_session_and_every_token,
    disabling_a_user_ends_the_browser_session_and_every_token,
    max_age_asks_for_the_password_again,
    prompt_none_with_an_expired_password_is_interaction_required,
    logout_with_a_hint_returns_to_the_app_and_ends_the_session,
    an_expired_hint_still_signs_out,
    a_hint_from_a_key_retired_within_30_days_still_counts,
    logout_without_a_hint_asks_and_only_a_bound_post_ends_it,
    an_unregistered_post_logout_redirect_uri_is_never_followed,
    revoking_a_refresh_token_ends_its_family_and_nothing_else,
);

/// Where the relying parties ask to be sent after a logout.
const BYE: &str = "http://127.0.0.1:8765/bye";

/// A public app (with `extra` fields) and its relying party.
pub(crate) async fn client(app: &TestApp, http: &RpHttp, extra: Value) -> Rp {
    let client_id = register_with(app, extra).await;
    relying_party(app, http, &client_id, None).await
}

/// Signs `browser` in through `rp` on the page and exchanges the code.
async fn tokens(app: &TestApp, rp: &Rp, http: &RpHttp, browser: &mut Browser, scopes: &[&str]) -> CoreTokenResponse {
    let started = start(rp, scopes, None);
    let location = browser.sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &issuer(app));
    exchange(rp, http, code, started.verifier).await.expect("tokens")
}

/// What `prompt=none` gets from `browser` for `rp`: "code", or the error
/// (with the state and iss checked).
async fn silent(app: &TestApp, rp: &Rp, browser: &mut Browser) -> String {
    let started = start(rp, &["phone"], Some(CoreAuthPrompt::None));
    let answer = browser.get(started.url.as_str()).await;
    let params = query(answer.see_other());
    assert_eq!(params.get("state").map(String::as_str), Some(started.state.secret().as_str()), "{params:?}");
    assert_eq!(params.get("iss"), Some(&issuer(app)), "{params:?}");
    match params.get("error") {
        Some(error) => error.clone(),
        None => params.get("code").map(|_| "code".to_owned()).expect("a code or an error"),
    }
}

/// The status of userinfo for an access token.
async fn userinfo_status(app: &TestApp, token: &CoreTokenResponse) -> StatusCode {
    userinfo_raw(app, token.access_token().secret()).await.0
}

async fn a_second_app_is_answered_from_the_session_after_its_own_checks(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let http = RpHttp::new();
    let (first, second) = (client(&app, &http, json!({})).await, client(&app, &http, json!({})).await);
    let mut browser = Browser::new(&app);
    let signed_in = tokens(&app, &first, &http, &mut browser, &["phone"]).await;
    let auth_time = jwt_claims(&signed_in.id_token().expect("id_token").to_string())["auth_time"].clone();

    // The second app: no page, a code at once, for the same user and login.
    let started = start(&second, &["phone"], None);
    let answer = browser.get(started.url.as_str()).await;
    let code = code_from(answer.see_other(), &started.state, &iss);
    let tokens = exchange(&second, &http, code, started.verifier).await.expect("tokens");
    let claims = jwt_claims(&tokens.id_token().expect("id_token").to_string());
    assert_eq!(claims["aud"], second.client_id().as_str());
    assert_eq!((&claims["sub"], &claims["auth_time"]), (&json!(user), &auth_time), "{claims}");
    // An app for members only refuses a user who is not one, session or not.
    let members = client(&app, &http, json!({"access": "assigned"})).await;
    let started = start(&members, &["phone"], None);
    let location = browser.get(started.url.as_str()).await.see_other().to_owned();
    assert_error_redirect(&location, "access_denied", started.state.secret(), &iss);
    // The session survives that refusal.
    assert_eq!(silent(&app, &second, &mut browser).await, "code");
}

async fn an_admin_reset_ends_the_browser_session_and_every_token(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let user = alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({})).await;
    let mut browser = Browser::new(&app);
    let before = tokens(&app, &rp, &http, &mut browser, &["phone", "offline_access"]).await;
    assert_eq!(userinfo_status(&app, &before).await, StatusCode::OK);
    assert_eq!(silent(&app, &rp, &mut browser).await, "code");

    let body = json!({"password": "Res3t-pass"});
    let (status, answer) = app.admin(Method::PATCH, &format!("/users/{user}"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The browser still sends its cookie; the server no longer knows it.
    assert!(browser.has_cookie("ciam_sso"));
    browser.get(start(&rp, &["phone"], None).url.as_str()).await.login_page();
    assert_eq!(silent(&app, &rp, &mut browser).await, "login_required");
    let refresh_token = before.refresh_token().expect("refresh_token");
    assert_eq!(token_error(refresh(&rp, &http, refresh_token).await), "invalid_grant");
    assert_eq!(userinfo_status(&app, &before).await, StatusCode::UNAUTHORIZED);
    // The new password signs in again.
    tokens_with(&app, &rp, &http, &mut browser, "Res3t-pass").await;
}

async fn an_sdk_password_update_ends_the_browser_session_and_every_token(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let user = alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({})).await;
    let mut browser = Browser::new(&app);
    let before = tokens_with(&app, &rp, &http, &mut browser, PASSWORD).await;
    let strict = app.create_app(json!({"name": "Strict", "password_expiry_check": true})).await;
    let old = json!({"password_changed_at": "2000-01-01T00:00:00Z"});
    app.admin(Method::PATCH, &format!("/users/{user}"), Some(old)).await;
    assert_eq!(silent(&app, &rp, &mut browser).await, "code", "an old password alone ends nothing");
    let (_, expired) = app.login(&strict, MOBILE, PASSWORD).await;
    let state_token = expired["state_token"].as_str().expect("state_token");
    let update = json!({"old_password": PASSWORD, "new_password": "Th1rd-pass"});
    let req = app.sdk(Method::POST, "/pwd/update", &strict).header("X-state-token", state_token).json(&update);
    assert_eq!(req.send().await.expect("request").status(), StatusCode::OK);
    assert_eq!(silent(&app, &rp, &mut browser).await, "login_required");
    let refresh_token = before.refresh_token().expect("refresh_token");
    assert_eq!(token_error(refresh(&rp, &http, refresh_token).await), "invalid_grant");
    assert_eq!(userinfo_status(&app, &before).await, StatusCode::UNAUTHORIZED);
}

/// [`tokens`] for `phone offline_access`, signing in with password `pw`.
async fn tokens_with(app: &TestApp, rp: &Rp, http: &RpHttp, browser: &mut Browser, pw: &str) -> CoreTokenResponse {
    let started = start(rp, &["phone", "offline_access"], None);
    let location = browser.sign_in(started.url.as_str(), MOBILE, pw).await;
    let code = code_from(&location, &started.state, &issuer(app));
    exchange(rp, http, code, started.verifier).await.expect("tokens")
}

async fn disabling_a_user_ends_the_browser_session_and_every_token(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let user = alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({})).await;
    let mut browser = Browser::new(&app);
    let before = tokens(&app, &rp, &http, &mut browser, &["phone", "offline_access"]).await;
    let path = format!("/users/{user}");
    let patch = |disabled: bool| app.admin(Method::PATCH, &path, Some(json!({"disabled": disabled})));
    assert_eq!(patch(true).await.0, StatusCode::OK);

    // Disabling ends the browser session (docs §5): no code from it, the
    // page instead, though the browser still sends its cookie.
    assert!(browser.has_cookie("ciam_sso"));
    assert_eq!(silent(&app, &rp, &mut browser).await, "login_required");
    browser.get(start(&rp, &["phone"], None).url.as_str()).await.login_page();
    assert_eq!(token_error(refresh(&rp, &http, before.refresh_token().expect("refresh")).await), "invalid_grant");
    assert_eq!(userinfo_status(&app, &before).await, StatusCode::UNAUTHORIZED);
    // Enabled again, the old session and tokens stay dead.
    assert_eq!(patch(false).await.0, StatusCode::OK);
    assert_eq!(silent(&app, &rp, &mut browser).await, "login_required");
    assert_eq!(userinfo_status(&app, &before).await, StatusCode::UNAUTHORIZED);
}

async fn max_age_asks_for_the_password_again(backend: Backend) {
    let app = spawn_oidc(backend).await;
    app.clock.freeze();
    let iss = issuer(&app);
    alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({})).await;
    let mut browser = Browser::new(&app);
    tokens(&app, &rp, &http, &mut browser, &["phone"]).await;
    let with_max_age = |seconds: &str| {
        let started = start(&rp, &["phone"], None);
        let mut url = started.url.clone();
        url.query_pairs_mut().append_pair("max_age", seconds);
        (url, started)
    };
    let (url, started) = with_max_age("3600");
    code_from(browser.get(url.as_str()).await.see_other(), &started.state, &iss);
    // max_age=0 is prompt=login (OpenID Connect Core §3.1.2.1), even in
    // the second of the login.
    let (url, _) = with_max_age("0");
    browser.get(url.as_str()).await.login_page();
    // Two minutes later: 60 is exceeded, 600 is not.
    app.clock.advance(120);
    let (url, _) = with_max_age("60");
    browser.get(url.as_str()).await.login_page();
    let (url, started) = with_max_age("600");
    code_from(browser.get(url.as_str()).await.see_other(), &started.state, &iss);
}

async fn prompt_none_with_an_expired_password_is_interaction_required(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let user = alice(&app).await;
    let http = RpHttp::new();
    let strict = client(&app, &http, json!({"password_expiry_check": true})).await;
    let lax = client(&app, &http, json!({})).await;
    let mut browser = Browser::new(&app);
    tokens(&app, &strict, &http, &mut browser, &["phone"]).await;
    assert_eq!(silent(&app, &strict, &mut browser).await, "code");

    // The password grows old while the session lives.
    let old = json!({"password_changed_at": "2000-01-01T00:00:00Z"});
    let (status, body) = app.admin(Method::PATCH, &format!("/users/{user}"), Some(old)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(silent(&app, &strict, &mut browser).await, "interaction_required");
    // Without prompt=none: the login page, since a browser session alone
    // sets no new password; the change form once the password is typed.
    let page = browser.get(start(&strict, &["phone"], None).url.as_str()).await;
    assert!(!page.body.contains("name=\"new_password\""), "{}", page.body);
    let origin = app.base.clone();
    let changing = browser.post_login(&page.login_page(), MOBILE, PASSWORD, Some(&origin)).await;
    assert!(changing.body.contains("name=\"new_password\""), "{}", changing.body);
    // An app that does not check the password's age still signs in at once.
    assert_eq!(silent(&app, &lax, &mut browser).await, "code");
}

/// A logout request by GET with `params`.
async fn logout(app: &TestApp, browser: &mut Browser, params: &[(&str, &str)]) -> Answer {
    let mut url = openidconnect::url::Url::parse(&app.url("/api/v1/logout")).expect("URL");
    url.query_pairs_mut().extend_pairs(params);
    browser.get(url.as_str()).await
}

/// Puts the session cookie `cookie` back (as a browser that ignored its
/// removal would) and asks `prompt=none`.
async fn silent_with(app: &TestApp, rp: &Rp, browser: &mut Browser, cookie: &str) -> String {
    browser.put_cookie("ciam_sso", cookie);
    silent(app, rp, browser).await
}

async fn logout_with_a_hint_returns_to_the_app_and_ends_the_session(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({"post_logout_redirect_uris": [BYE]})).await;
    let mut browser = Browser::new(&app);
    let signed_in = tokens(&app, &rp, &http, &mut browser, &["phone", "offline_access"]).await;
    let hint = signed_in.id_token().expect("id_token").to_string();
    let cookie = browser.cookie("ciam_sso").expect("a session");

    // Someone else's hint proves nothing about this browser: it is asked.
    app.create_user("15200000001", PASSWORD).await;
    let started = start(&rp, &["phone"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), "15200000001", PASSWORD).await;
    let code = code_from(&location, &started.state, &issuer(&app));
    let other = exchange(&rp, &http, code, started.verifier).await.expect("tokens").id_token().expect("id").to_string();
    let asked = logout(&app, &mut browser, &[("id_token_hint", &other), ("post_logout_redirect_uri", BYE)]).await;
    assert_eq!(asked.status, StatusCode::OK, "{:?} {}", asked.location, asked.body);
    assert!(asked.body.contains("Sign out?"), "{}", asked.body);
    assert_eq!(silent(&app, &rp, &mut browser).await, "code", "the session lives");

    let params = [("id_token_hint", hint.as_str()), ("post_logout_redirect_uri", BYE), ("state", "s 1")];
    let answer = logout(&app, &mut browser, &params).await;
    assert_eq!(answer.see_other(), format!("{BYE}?state=s+1"));
    assert!(!browser.has_cookie("ciam_sso"), "the cookie is cleared");
    assert_eq!(silent_with(&app, &rp, &mut browser, &cookie).await, "login_required");
    // offline_access outlives the browser session (docs §6).
    refresh(&rp, &http, signed_in.refresh_token().expect("refresh")).await.expect("a refresh after the logout");
}

async fn an_expired_hint_still_signs_out(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({"post_logout_redirect_uris": [BYE]})).await;
    let mut browser = Browser::new(&app);
    // Signed in two hours ago: the id_token is long expired, the session not.
    app.clock.advance(-7200);
    let signed_in = tokens(&app, &rp, &http, &mut browser, &["phone"]).await;
    app.clock.advance(7200);
    let hint = signed_in.id_token().expect("id_token").to_string();
    let now = ciam_core::Clock::now(&ciam_core::SystemClock);
    assert!(jwt_claims(&hint)["exp"].as_i64().is_some_and(|exp| exp + 3600 < now), "expired");
    let cookie = browser.cookie("ciam_sso").expect("a session");
    assert_eq!(silent(&app, &rp, &mut browser).await, "code");

    let params = [("id_token_hint", hint.as_str()), ("post_logout_redirect_uri", BYE), ("state", "xyz")];
    let answer = logout(&app, &mut browser, &params).await;
    assert_eq!(answer.see_other(), format!("{BYE}?state=xyz"));
    assert_eq!(silent_with(&app, &rp, &mut browser, &cookie).await, "login_required");
}

async fn a_hint_from_a_key_retired_within_30_days_still_counts(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({"post_logout_redirect_uris": [BYE]})).await;
    let hint = tokens(&app, &rp, &http, &mut Browser::new(&app), &["phone"]).await.id_token().expect("id").to_string();
    let kid = jwt_header(&hint)["kid"].as_str().expect("kid").to_owned();
    assert!(app.admin(Method::POST, "/keys/rotate", None).await.0.is_success());
    // Two days on, the key has left the JWKS, and the hint still names its app.
    app.clock.advance(2 * 86_400);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.jwks().await.to_string().contains(&kid) {
        assert!(std::time::Instant::now() < deadline, "the retired key is still published");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let params = [("id_token_hint", hint.as_str()), ("post_logout_redirect_uri", BYE), ("state", "k")];
    assert_eq!(logout(&app, &mut Browser::new(&app), &params).await.see_other(), format!("{BYE}?state=k"));
    // Past 30 days (once the instance has reread its keys) it is no hint:
    // nothing is redirected.
    app.clock.advance(29 * 86_400);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let answer = loop {
        let answer = logout(&app, &mut Browser::new(&app), &params).await;
        if answer.location.is_none() || std::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!((answer.status, answer.location), (StatusCode::OK, None), "{}", answer.body);
}

async fn logout_without_a_hint_asks_and_only_a_bound_post_ends_it(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({"post_logout_redirect_uris": [BYE]})).await;
    let mut browser = Browser::new(&app);
    tokens(&app, &rp, &http, &mut browser, &["phone"]).await;
    let cookie = browser.cookie("ciam_sso").expect("a session");
    let client_id = rp.client_id().as_str();

    let params = [("client_id", client_id), ("post_logout_redirect_uri", BYE), ("state", "st")];
    let asked = logout(&app, &mut browser, &params).await;
    assert_eq!(asked.status, StatusCode::OK, "{:?} {}", asked.location, asked.body);
    assert!(asked.body.contains("Sign out?") && asked.body.contains("action=\"/api/v1/logout\""), "{}", asked.body);
    assert_eq!(silent(&app, &rp, &mut browser).await, "code", "a GET without a hint ends nothing");
    let fields = hidden_fields(&asked.body);
    assert!(fields.iter().any(|(name, _)| name == "csrf"), "{fields:?}");

    // Another browser holding the session cookie but not the binding one.
    let mut thief = Browser::new(&app);
    thief.put_cookie("ciam_sso", &cookie);
    let refused = thief.post("/api/v1/logout", &fields, Some(&app.base)).await;
    assert_eq!((refused.status, refused.location.as_deref()), (StatusCode::FORBIDDEN, None), "{}", refused.body);
    // The right browser, from another site.
    let refused = browser.post("/api/v1/logout", &fields, Some("https://evil.example")).await;
    assert_eq!((refused.status, refused.location.as_deref()), (StatusCode::FORBIDDEN, None), "{}", refused.body);
    assert_eq!(silent(&app, &rp, &mut browser).await, "code", "the session lives");

    let confirmed = browser.post("/api/v1/logout", &fields, Some(&app.base)).await;
    assert_eq!(confirmed.see_other(), format!("{BYE}?state=st"));
    assert_eq!(silent_with(&app, &rp, &mut browser, &cookie).await, "login_required");
}

async fn an_unregistered_post_logout_redirect_uri_is_never_followed(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let http = RpHttp::new();
    let rp = client(&app, &http, json!({"post_logout_redirect_uris": [BYE]})).await;
    let other = client(&app, &http, json!({"post_logout_redirect_uris": [BYE]})).await;
    let elsewhere = "https://evil.example/bye";
    for (target, client_id) in [
        (elsewhere, rp.client_id().as_str()),
        ("http://127.0.0.1:8765/bye/", rp.client_id().as_str()),
        (REDIRECT, rp.client_id().as_str()),
        (BYE, other.client_id().as_str()), // the hint's aud is rp, not other
    ] {
        let mut browser = Browser::new(&app);
        let signed_in = tokens(&app, &rp, &http, &mut browser, &["phone"]).await;
        let hint = signed_in.id_token().expect("id_token").to_string();
        let cookie = browser.cookie("ciam_sso").expect("a session");
        let params = [("id_token_hint", hint.as_str()), ("client_id", client_id), ("post_logout_redirect_uri", target)];
        let answer = logout(&app, &mut browser, &params).await;
        assert_eq!((answer.status, answer.location.as_deref()), (StatusCode::OK, None), "{target}: {}", answer.body);
        assert!(answer.body.contains("You are signed out."), "{}", answer.body);
        assert_eq!(silent_with(&app, &rp, &mut browser, &cookie).await, "login_required");
    }
    // Without a hint, confirmed: the same signed-out page, not the target.
    let mut browser = Browser::new(&app);
    tokens(&app, &rp, &http, &mut browser, &["phone"]).await;
    let params = [("client_id", rp.client_id().as_str()), ("post_logout_redirect_uri", elsewhere)];
    let fields = hidden_fields(&logout(&app, &mut browser, &params).await.body);
    let answer = browser.post("/api/v1/logout", &fields, Some(&app.base)).await;
    assert_eq!((answer.status, answer.location.as_deref()), (StatusCode::OK, None), "{}", answer.body);
}

/// RFC 7009 revocation by a public client: the status.
async fn revoke(app: &TestApp, client_id: &str, token: &str) -> StatusCode {
    let form = [("token", token), ("client_id", client_id)];
    app.client.post(app.url("/api/v1/oauth2/revoke")).form(&form).send().await.expect("request").status()
}

async fn revoking_a_refresh_token_ends_its_family_and_nothing_else(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let http = RpHttp::new();
    let (rp, other) = (client(&app, &http, json!({})).await, client(&app, &http, json!({})).await);
    let scopes = ["phone", "offline_access"];
    let family = tokens(&app, &rp, &http, &mut Browser::new(&app), &scopes).await;
    let sibling = tokens(&app, &rp, &http, &mut Browser::new(&app), &scopes).await;
    let refresh_token = family.refresh_token().expect("refresh").secret().clone();

    // Another client's revocation is answered 200 and changes nothing.
    assert_eq!(revoke(&app, other.client_id().as_str(), &refresh_token).await, StatusCode::OK);
    assert_eq!(userinfo_status(&app, &family).await, StatusCode::OK);
    let rotated = refresh(&rp, &http, &RefreshToken::new(refresh_token)).await.expect("the token survived");
    let next = rotated.refresh_token().expect("the next refresh token").clone();

    assert_eq!(revoke(&app, rp.client_id().as_str(), next.secret()).await, StatusCode::OK);
    assert_eq!(token_error(refresh(&rp, &http, &next).await), "invalid_grant");
    assert_eq!(userinfo_status(&app, &rotated).await, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo_status(&app, &family).await, StatusCode::UNAUTHORIZED, "the whole family");
    // Another login's tokens live on.
    assert_eq!(userinfo_status(&app, &sibling).await, StatusCode::OK);
    refresh(&rp, &http, sibling.refresh_token().expect("refresh")).await.expect("another family survives");
}
