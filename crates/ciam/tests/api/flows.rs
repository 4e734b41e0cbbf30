//! The calls around the login (docs/api.md §3–§4): password update and skip
//! with a state_token, id_token refresh, logout, key rotation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, read, verify_with_jwks};

crate::on_both_backends!(
    warn_then_skip_then_success,
    skip_from_expired_is_refused,
    expired_then_update_with_every_refusal_then_success,
    reused_passwords_are_refused_within_history,
    state_tokens_expire_and_are_bound_to_their_app,
    refresh_gives_a_new_id_token_until_logout,
    sessions_end_when_the_admin_disables_or_resets,
    rotation_keeps_old_tokens_verifiable,
);

async fn expiring_app(app: &TestApp) -> String {
    app.create_app(json!({"name": "Strict", "password_expiry_check": true})).await
}

async fn user_changed_days_ago(app: &TestApp, mobile: &str, days: i64) -> String {
    let at = ciam_core::clock::to_rfc3339(ciam_core::Clock::now(&ciam_core::SystemClock) - days * 86_400);
    app.create_user_with(json!({"mobile": mobile, "password": PASSWORD, "password_changed_at": at})).await
}

async fn state_token_for(app: &TestApp, client: &str, mobile: &str, expect: &str) -> String {
    let (status, body) = app.login(client, mobile, PASSWORD).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some(expect)), "{body}");
    body["state_token"].as_str().expect("state_token").to_owned()
}

async fn skip(app: &TestApp, client: &str, token: &str) -> (StatusCode, Value) {
    read(app.sdk(Method::GET, "/pwd/skip-update", client).header("X-state-token", token).send().await.expect("request"))
        .await
}

async fn update(app: &TestApp, client: &str, token: &str, old: &str, new: &str) -> (StatusCode, Value) {
    let req = app
        .sdk(Method::POST, "/pwd/update", client)
        .header("X-state-token", token)
        .json(&json!({"old_password": old, "new_password": new}));
    read(req.send().await.expect("request")).await
}

#[track_caller]
fn assert_session(got: &(StatusCode, Value)) {
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["status"], "SUCCESS", "{}", got.1);
    assert_eq!(got.1["session_token"].as_str().map(str::len), Some(32));
    assert!(got.1["id_token"].as_str().is_some());
    assert_eq!(got.1["expire"], 432_000);
}

async fn warn_then_skip_then_success(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = expiring_app(&app).await;
    user_changed_days_ago(&app, "15200000000", 85).await;
    let token = state_token_for(&app, &client, "15200000000", "PASSWORD_WARN").await;
    let got = skip(&app, &client, &token).await;
    assert_session(&got);
    let (_, claims) =
        verify_with_jwks(got.1["id_token"].as_str().expect("id_token"), &app.jwks().await).expect("verifies");
    assert_eq!(claims["aud"], client.as_str());
    // Single use.
    assert_error(
        &skip(&app, &client, &token).await,
        400,
        "IDAAS.SDK.PARAM.0014",
        Some("The state_token is invalid or has expired"),
    );
    // The session works.
    let refreshed = app.refresh(&client, got.1["session_token"].as_str().expect("token")).await;
    assert_eq!(refreshed.0, StatusCode::OK, "{}", refreshed.1);
}

async fn skip_from_expired_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = expiring_app(&app).await;
    user_changed_days_ago(&app, "15200000000", 100).await;
    let token = state_token_for(&app, &client, "15200000000", "PASSWORD_EXPIRED").await;
    assert_error(&skip(&app, &client, &token).await, 400, "IDAAS.SDK.PARAM.0014", None);
    assert_error(&skip(&app, &client, "").await, 400, "IDAAS.SDK.PARAM.0014", None);
    // The refused skip did not use the token up: the update still works.
    assert_session(&update(&app, &client, &token, PASSWORD, "N3w-Passw0rd").await);
}

async fn expired_then_update_with_every_refusal_then_success(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = expiring_app(&app).await;
    user_changed_days_ago(&app, "15200000000", 100).await;
    let token = state_token_for(&app, &client, "15200000000", "PASSWORD_EXPIRED").await;

    let wrong_old = update(&app, &client, &token, "Wrong-pass1", "N3w-Passw0rd").await;
    assert_error(&wrong_old, 400, "IDAAS.SDK.PWD.0001", Some("The old password is incorrect. Remaining times: 9"));
    let short = update(&app, &client, &token, PASSWORD, "N3w-p").await;
    assert_error(&short, 400, "IDAAS.SDK.PWD.0002", None);
    assert!(short.1["error_msg"].as_str().is_some_and(|m| m.contains(ciam_core::policy::SEED_TIP_EN)), "{}", short.1);
    let too_long = update(&app, &client, &token, PASSWORD, "N3w-Passw0rd-N3w-Passw0rd").await;
    assert_error(&too_long, 400, "IDAAS.SDK.PWD.0002", None);
    let regex = update(&app, &client, &token, PASSWORD, "onlylowercase").await;
    assert_error(&regex, 400, "IDAAS.SDK.PWD.0002", None);
    let zh = read(
        app.sdk(Method::POST, "/pwd/update", &client)
            .header("X-state-token", &token)
            .header("X-L", "zh")
            .json(&json!({"old_password": PASSWORD, "new_password": "12345678"}))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert!(
        zh.1["error_msg"].as_str().is_some_and(|m| m.contains("至少包含数字、大写字母、小写字母和特殊字符中的3种")),
        "{}",
        zh.1
    );
    let reused = update(&app, &client, &token, PASSWORD, PASSWORD).await;
    assert_error(
        &reused,
        400,
        "IDAAS.SDK.PWD.0003",
        Some("The new password was used recently, please choose another one"),
    );
    assert_error(&update(&app, &client, &token, "", "N3w-Passw0rd").await, 400, "IDAAS.SDK.PWD.0005", None);
    assert_error(&update(&app, &client, &token, PASSWORD, "").await, 400, "IDAAS.SDK.PWD.0004", None);

    let done = update(&app, &client, &token, PASSWORD, "N3w-Passw0rd").await;
    assert_session(&done);
    // The state_token is dead, the new password logs in, the old one does not.
    assert_error(
        &update(&app, &client, &token, "N3w-Passw0rd", "An0ther-pass").await,
        400,
        "IDAAS.SDK.PARAM.0014",
        None,
    );
    app.login_ok(&client, "15200000000", "N3w-Passw0rd").await;
    let old = app.login(&client, "15200000000", PASSWORD).await;
    assert_error(&old, 400, "IDAAS.SDK.LOGIN.0002", None);
}

async fn reused_passwords_are_refused_within_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = expiring_app(&app).await;
    let (status, _) = app.admin(Method::PUT, "/policies/password", Some(json!({"history": 2}))).await;
    assert_eq!(status, StatusCode::OK);
    let user = user_changed_days_ago(&app, "15200000000", 100).await;
    let token = state_token_for(&app, &client, "15200000000", "PASSWORD_EXPIRED").await;
    assert_session(&update(&app, &client, &token, PASSWORD, "Sec0nd-pass").await);
    // Age the password again and go through the flow once more.
    app.admin(Method::PATCH, &format!("/users/{user}"), Some(json!({"password_changed_at": "2001-01-01T00:00:00Z"})))
        .await;
    let (_, body) = app.login(&client, "15200000000", "Sec0nd-pass").await;
    let token = body["state_token"].as_str().expect("state_token").to_owned();
    let reused = update(&app, &client, &token, "Sec0nd-pass", PASSWORD).await;
    assert_error(&reused, 400, "IDAAS.SDK.PWD.0003", None);
    assert_session(&update(&app, &client, &token, "Sec0nd-pass", "Th1rd-pass").await);
}

async fn state_tokens_expire_and_are_bound_to_their_app(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = expiring_app(&app).await;
    let other = expiring_app(&app).await;
    user_changed_days_ago(&app, "15200000000", 85).await;
    let token = state_token_for(&app, &client, "15200000000", "PASSWORD_WARN").await;
    assert_error(&skip(&app, &other, &token).await, 400, "IDAAS.SDK.PARAM.0014", None);
    assert_error(&skip(&app, &client, "forged-token").await, 400, "IDAAS.SDK.PARAM.0014", None);
    let missing = read(app.sdk(Method::GET, "/pwd/skip-update", &client).send().await.expect("request")).await;
    assert_error(&missing, 400, "IDAAS.SDK.PARAM.0014", None);
    app.clock.advance(601);
    assert_error(&skip(&app, &client, &token).await, 400, "IDAAS.SDK.PARAM.0014", None);
    assert_error(&update(&app, &client, &token, PASSWORD, "N3w-Passw0rd").await, 400, "IDAAS.SDK.PARAM.0014", None);
}

async fn refresh_gives_a_new_id_token_until_logout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    let other = app.default_app().await;
    let user = app.create_user("15200000000", PASSWORD).await;
    let login = app.login_ok(&client, "15200000000", PASSWORD).await;
    let session = login["session_token"].as_str().expect("session_token");
    let (_, first) =
        verify_with_jwks(login["id_token"].as_str().expect("id_token"), &app.jwks().await).expect("verifies");

    app.clock.advance(10);
    let (status, refreshed) = app.refresh(&client, session).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let keys: Vec<&str> = refreshed.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["session_token", "expire", "id_token"]);
    assert_eq!(refreshed["session_token"], session);
    // The session's remaining life: 10 s moved by the clock, plus at most a
    // second or two of wall time between the calls.
    let expire = refreshed["expire"].as_i64().expect("expire");
    assert!((432_000 - 12..=432_000 - 10).contains(&expire), "{expire}");
    let (_, claims) =
        verify_with_jwks(refreshed["id_token"].as_str().expect("id_token"), &app.jwks().await).expect("verifies");
    assert_ne!(claims["jti"], first["jti"]);
    assert_eq!(claims["sub"], user.as_str());

    // Bound to its app; unknown and missing tokens are refused.
    assert_error(
        &app.refresh(&other, session).await,
        400,
        "IDAAS.SDK.PARAM.0023",
        Some("The session_token is invalid or has expired"),
    );
    assert_error(&app.refresh(&client, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await, 400, "IDAAS.SDK.PARAM.0023", None);
    let missing =
        read(app.sdk(Method::POST, "/sso/session-token/id-token", &client).send().await.expect("request")).await;
    assert_error(&missing, 400, "IDAAS.SDK.PARAM.0023", None);

    let out =
        read(app.sdk(Method::POST, "/logout", &client).header("session-token", session).send().await.expect("request"))
            .await;
    assert_eq!(out, (StatusCode::OK, json!({"status": "SUCCESS"})));
    assert_error(&app.refresh(&client, session).await, 400, "IDAAS.SDK.PARAM.0023", None);
    // GET works too, and logging out twice is harmless.
    let again =
        app.sdk(Method::GET, "/logout", &client).header("session-token", session).send().await.expect("request");
    assert_eq!(again.status(), StatusCode::OK);

    // Sessions end with their lifetime.
    let short = app.create_app(json!({"name": "Short", "session_ttl": 60})).await;
    let login = app.login_ok(&short, "15200000000", PASSWORD).await;
    assert_eq!(login["expire"], 60);
    app.clock.advance(60);
    assert_error(
        &app.refresh(&short, login["session_token"].as_str().expect("token")).await,
        400,
        "IDAAS.SDK.PARAM.0023",
        None,
    );
}

async fn sessions_end_when_the_admin_disables_or_resets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    let user = app.create_user("15200000000", PASSWORD).await;
    let session = |b: &Value| b["session_token"].as_str().expect("token").to_owned();

    let a = session(&app.login_ok(&client, "15200000000", PASSWORD).await);
    let b = session(&app.login_ok(&client, "15200000000", PASSWORD).await);
    let (status, revoked) = app.admin(Method::DELETE, &format!("/users/{user}/sessions"), None).await;
    assert_eq!((status, revoked), (StatusCode::OK, json!({"revoked": 2})));
    assert_error(&app.refresh(&client, &a).await, 400, "IDAAS.SDK.PARAM.0023", None);
    assert_error(&app.refresh(&client, &b).await, 400, "IDAAS.SDK.PARAM.0023", None);

    let c = session(&app.login_ok(&client, "15200000000", PASSWORD).await);
    app.admin(Method::PATCH, &format!("/users/{user}"), Some(json!({"password": "Res3t-pass"}))).await;
    assert_error(&app.refresh(&client, &c).await, 400, "IDAAS.SDK.PARAM.0023", None);

    let d = session(&app.login_ok(&client, "15200000000", "Res3t-pass").await);
    app.admin(Method::PATCH, &format!("/users/{user}"), Some(json!({"disabled": true}))).await;
    assert_error(&app.refresh(&client, &d).await, 400, "IDAAS.SDK.PARAM.0023", None);
}

async fn rotation_keeps_old_tokens_verifiable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    let before = app.login_ok(&client, "15200000000", PASSWORD).await;
    let old_token = before["id_token"].as_str().expect("id_token").to_owned();
    let (old_header, _) = verify_with_jwks(&old_token, &app.jwks().await).expect("verifies");

    let (status, rotated) = app.admin(Method::POST, "/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK);
    let new_kid = rotated["kid"].as_str().expect("kid");
    let new_eddsa_kid = rotated["eddsa_kid"].as_str().expect("eddsa_kid");
    assert_ne!(Some(new_kid), old_header["kid"].as_str());

    let jwks = app.jwks().await;
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(4), "two new keys, two retired: {jwks}");
    assert_eq!(jwks["keys"][0]["kid"], new_kid, "the signing keys are listed first");
    assert_eq!(jwks["keys"][1]["kid"], new_eddsa_kid);
    verify_with_jwks(&old_token, &jwks).expect("a token signed before the rotation still verifies");
    let after = app.login_ok(&client, "15200000000", PASSWORD).await;
    let (new_header, _) = verify_with_jwks(after["id_token"].as_str().expect("id_token"), &jwks).expect("verifies");
    assert_eq!(new_header["kid"], new_kid);

    // The retired key leaves the JWKS once every token it signed has expired
    // (the longest id_token lifetime) plus the cache margin.
    app.clock.advance(ciam_core::keys::MAX_ID_TOKEN_TTL + ciam_core::keys::JWKS_CACHE_MARGIN + 1);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let later = app.jwks().await;
    let kids: Vec<&Value> = later["keys"].as_array().expect("keys").iter().map(|k| &k["kid"]).collect();
    assert_eq!(kids, [new_kid, new_eddsa_kid]);
}
