//! Verification codes by SMS over the wire: a code is delivered to the
//! webhook signed, logs in once, and nothing about it leaks; registration
//! and a forgotten password go through codes too.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, assert_error};
use crate::sms_helpers::{E164, MOBILE, assert_wrong, code_login, other_than, send, sms_policy, spawn_sms, with_code};

crate::on_both_backends!(
    a_code_is_delivered_signed_and_logs_in_once,
    codes_appear_in_no_audit_event_and_no_answer,
    a_registration_goes_through_an_app_open_to_it,
    a_forgotten_password_is_set_with_a_code_and_ends_every_session,
    a_login_code_can_create_the_user_where_the_app_allows,
);

async fn a_code_is_delivered_signed_and_logs_in_once(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    let resp = app
        .sdk(Method::POST, "/sms/send", &client_id)
        .header("X-L", "zh")
        .header("X-Request-Id", "req-sms-1")
        .json(&json!({"mobile": "+86 152 0000 0000", "type": "LOGIN_SMS"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.expect("json"), json!({}));

    let message = gateway.wait_for(1).await.remove(0);
    let code = message["code"].as_str().expect("code").to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    assert_eq!(message["to"], E164);
    assert_eq!(message["type"], "LOGIN_SMS");
    assert_eq!(message["lang"], "zh");
    assert_eq!(message["client_id"], client_id.as_str());
    assert_eq!(message["request_id"], "req-sms-1");
    let text = message["text"].as_str().expect("text");
    assert!(text.contains(&code) && text.contains("5分钟"), "{text}");
    assert_eq!(gateway.seen.lock().expect("seen").bad_signatures, 0);

    let (status, body) = code_login(&app, &client_id, MOBILE, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "SUCCESS");
    assert_eq!(body["session_token"].as_str().expect("session").len(), 32);
    let (status, _) = app.refresh(&client_id, body["session_token"].as_str().expect("token")).await;
    assert_eq!(status, StatusCode::OK, "the session is a real one");
    let again = code_login(&app, &client_id, MOBILE, &code).await;
    assert_error(&again, 400, "IDAAS.SDK.CAPTCHA.0007", Some("Incorrect verification code"));

    // A new code replaces the old one.
    app.clock.advance(61);
    assert_eq!(send(&app, &client_id, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK);
    let first = gateway.code(2).await;
    app.clock.advance(61);
    assert_eq!(send(&app, &client_id, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK);
    let second = gateway.code(3).await;
    if first != second {
        assert_wrong(&app, &client_id, &first).await;
    }
    // A login code is no password-reset code.
    let reset = json!({"mobile": MOBILE, "verify_code": second, "password": "N3w-Passw0rd"});
    assert_error(
        &with_code(&app, &client_id, "/pwd/update-by-mobile", reset).await,
        400,
        "IDAAS.SDK.CAPTCHA.0007",
        None,
    );
    // A code expires.
    app.clock.advance(301);
    assert_wrong(&app, &client_id, &second).await;
}

async fn codes_appear_in_no_audit_event_and_no_answer(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    let code = gateway.code(1).await;
    let wrong = code_login(&app, &client_id, MOBILE, &other_than(&code)).await;
    assert!(!wrong.1.to_string().contains(&code));
    code_login(&app, &client_id, MOBILE, &code).await;
    let (status, events) = app.admin(Method::GET, "/audit-events?limit=50", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = events.to_string();
    assert!(!text.contains(&code), "a code in the audit log: {text}");
    let calls: Vec<&str> = events.as_array().expect("list").iter().filter_map(|e| e["action"].as_str()).collect();
    for call in ["sms.send", "login.mobile_verify_code"] {
        assert!(calls.contains(&call), "{call} not audited: {calls:?}");
    }
    let outcomes: Vec<&str> = events.as_array().expect("list").iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert!(outcomes.contains(&"IDAAS.SDK.CAPTCHA.0007"), "{outcomes:?}");
}

async fn a_registration_goes_through_an_app_open_to_it(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let closed = app.default_app().await;
    let sent = send(&app, &closed, MOBILE, "REGISTER_SMS").await;
    assert_error(&(sent.0, sent.1), 400, "IDAAS.SDK.SMS.0008", Some("This app does not accept registrations"));
    let call = json!({"mobile": MOBILE, "verify_code": "123456"});
    let refused = with_code(&app, &closed, "/register/mobile-verify-code", call).await;
    assert_error(&refused, 400, "IDAAS.SDK.SMS.0008", None);

    let open = app.create_app(json!({"name": "Open", "self_registration": true, "access": "assigned"})).await;
    assert_eq!(send(&app, &open, MOBILE, "REGISTER_SMS").await.0, StatusCode::OK);
    let code = gateway.code(1).await;
    let register = |password: &str, email: &str| json!({"mobile": MOBILE, "verify_code": code, "password": password, "name": "Li Lei", "email": email});
    let weak = with_code(&app, &open, "/register/mobile-verify-code", register("weak", "li@example.com")).await;
    assert_error(&weak, 400, "IDAAS.SDK.PWD.0002", None);
    let bad_mail = with_code(&app, &open, "/register/mobile-verify-code", register(PASSWORD, "not-mail")).await;
    assert_error(&bad_mail, 400, "IDAAS.SDK.SMS.0009", None);
    let (status, body) =
        with_code(&app, &open, "/register/mobile-verify-code", register(PASSWORD, "li@example.com")).await;
    assert_eq!(status, StatusCode::OK, "the refusals left the code good: {body}");
    assert_eq!(body["status"], "SUCCESS");
    // The new user logs in with the password, through the app that admits
    // only assigned users: registering through it assigned them.
    app.login_ok(&open, MOBILE, PASSWORD).await;
    let (_, users) = app.admin(Method::GET, &format!("/users?mobile={MOBILE}"), None).await;
    assert_eq!(users[0]["name"], "Li Lei", "{users}");

    // A registered number asks a code like any other and gets none.
    app.clock.advance(61);
    assert_eq!(send(&app, &open, MOBILE, "REGISTER_SMS").await.0, StatusCode::OK);
    assert_eq!(gateway.delivered().await, 1);
}

async fn a_forgotten_password_is_set_with_a_code_and_ends_every_session(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    let session = app.login_ok(&client_id, MOBILE, PASSWORD).await["session_token"].as_str().expect("s").to_owned();
    app.set_lockout(3, 1800).await;
    for _ in 0..3 {
        app.login(&client_id, MOBILE, "Wr0ng-pass").await;
    }
    assert_error(&app.login(&client_id, MOBILE, PASSWORD).await, 400, "IDAAS.SDK.LOGIN.0001", None);

    // Two tries a code: the refusals of the new password below must give
    // theirs back. A login code is live beside the reset's.
    sms_policy(&app, json!({"max_checks": 2, "resend_seconds": 0})).await;
    send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    let login_code = gateway.code(1).await;
    send(&app, &client_id, MOBILE, "FORGET_PWD_SMS").await;
    let code = gateway.code(2).await;
    let reset = |code: &str, password: &str| json!({"mobile": MOBILE, "verify_code": code, "password": password});
    // Without the code, nothing is said about the password.
    let guess = with_code(&app, &client_id, "/pwd/update-by-mobile", reset(&other_than(&code), "weak")).await;
    assert_error(&guess, 400, "IDAAS.SDK.CAPTCHA.0007", None);
    let weak = with_code(&app, &client_id, "/pwd/update-by-mobile", reset(&code, "weak")).await;
    assert_error(&weak, 400, "IDAAS.SDK.PWD.0002", None);
    let reused = with_code(&app, &client_id, "/pwd/update-by-mobile", reset(&code, PASSWORD)).await;
    assert_error(&reused, 400, "IDAAS.SDK.PWD.0003", None);
    let (status, body) = with_code(&app, &client_id, "/pwd/update-by-mobile", reset(&code, "N3w-Passw0rd")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));

    assert_error(&app.refresh(&client_id, &session).await, 400, "IDAAS.SDK.PARAM.0023", None);
    app.login_ok(&client_id, MOBILE, "N3w-Passw0rd").await;
    assert_wrong(&app, &client_id, &login_code).await;
    let spent = with_code(&app, &client_id, "/pwd/update-by-mobile", reset(&code, "An0ther-Passw0rd")).await;
    assert_error(&spent, 400, "IDAAS.SDK.CAPTCHA.0007", None);
}

async fn a_login_code_can_create_the_user_where_the_app_allows(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let plain = app.default_app().await;
    let auto = app.create_app(json!({"name": "Auto", "sms_auto_register": true})).await;
    // Unregistered, an ordinary app: an answer like any other, no message.
    assert_eq!(send(&app, &plain, MOBILE, "LOGIN_SMS").await, (StatusCode::OK, json!({}), None));
    assert_eq!(gateway.delivered().await, 0);
    app.clock.advance(61);
    assert_eq!(send(&app, &auto, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK);
    let code = gateway.code(1).await;
    let (status, body) = code_login(&app, &auto, MOBILE, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "SUCCESS");
    // The user has no password: no password logs in.
    assert_error(&app.login(&auto, MOBILE, "").await, 400, "IDAAS.SDK.USER.0006", None);
    assert_error(&app.login(&auto, MOBILE, PASSWORD).await, 400, "IDAAS.SDK.LOGIN.0002", None);
    // And a login code of the ordinary app now reaches the user too.
    app.clock.advance(61);
    send(&app, &plain, MOBILE, "LOGIN_SMS").await;
    let code = gateway.code(2).await;
    assert_eq!(code_login(&app, &plain, MOBILE, &code).await.1["status"], "SUCCESS");
}
