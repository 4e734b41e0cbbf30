//! The limits on codes, each with its own refusal: how often one number is
//! sent a code, how many an address and the whole service may ask for, how
//! many times a code and a number may be tried (however many tries arrive
//! at once), and what is refused before any of that.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, client_at};
use crate::sms_helpers::{
    Gateway, MOBILE, assert_wrong, code_login, other_than, send, send_from, sms_policy, spawn_sms,
};

crate::on_both_backends!(
    a_number_waits_between_codes_and_has_a_day_of_them,
    an_address_and_the_service_have_an_hour_of_sends,
    a_code_takes_a_few_tries_even_all_at_once,
    a_number_has_a_day_of_wrong_entries_across_codes,
    wrong_codes_count_against_the_address,
    what_a_send_refuses_before_any_limit,
    the_policy_is_read_and_changed_by_the_admin_api,
    a_failing_webhook_is_retried_and_its_failure_audited,
    a_captcha_is_checked_before_each_send,
);

async fn a_number_waits_between_codes_and_has_a_day_of_them(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    sms_policy(&app, json!({"resend_seconds": 60, "mobile_daily_max": 2})).await;
    assert_eq!(send(&app, &client_id, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK);
    let (status, body, retry) = send(&app, &client_id, MOBILE, "FORGET_PWD_SMS").await;
    assert_eq!((status, body["error_code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("IDAAS.SDK.SMS.0001")));
    assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
    app.clock.advance(60);
    assert_eq!(send(&app, &client_id, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK);
    app.clock.advance(60);
    let (status, body, retry) = send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    assert_eq!((status, body["error_code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("IDAAS.SDK.SMS.0002")));
    assert!(retry.is_some_and(|r| r > 80_000), "the day ends in {retry:?} s");
    assert_eq!(gateway.delivered().await, 2);
    app.clock.advance(86_400);
    assert_eq!(send(&app, &client_id, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK, "a new day");
}

async fn an_address_and_the_service_have_an_hour_of_sends(backend: Backend) {
    let (app, _gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    sms_policy(&app, json!({"ip_hourly_max": 3, "global_hourly_max": 5})).await;
    let first = client_at(11);
    for n in 0..3 {
        let body = json!({"mobile": format!("1520000010{n}"), "type": "LOGIN_SMS"});
        assert_eq!(send_from(&app, &first, &client_id, body).await.0, StatusCode::OK);
    }
    let body = json!({"mobile": "15200000109", "type": "LOGIN_SMS"});
    let (status, refused, retry) = send_from(&app, &first, &client_id, body.clone()).await;
    assert_eq!(refused["error_code"], "IDAAS.SDK.SMS.0001", "{refused}");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|r| r > 3000), "{retry:?}");
    let second = client_at(12);
    for n in 0..2 {
        let body = json!({"mobile": format!("1520000020{n}"), "type": "LOGIN_SMS"});
        assert_eq!(send_from(&app, &second, &client_id, body).await.0, StatusCode::OK);
    }
    let body = json!({"mobile": "15200000209", "type": "LOGIN_SMS"});
    let (status, refused, _) = send_from(&app, &second, &client_id, body).await;
    assert_eq!((status, refused["error_code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("IDAAS.SDK.SMS.0007")));
    app.clock.advance(3600);
    assert_eq!(
        send_from(&app, &first, &client_id, json!({"mobile": "15200000109", "type": "LOGIN_SMS"})).await.0,
        StatusCode::OK
    );
}

async fn a_code_takes_a_few_tries_even_all_at_once(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    sms_policy(&app, json!({"max_checks": 3, "mobile_daily_max_checks": 1000})).await;
    send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    let code = gateway.code(1).await;
    let wrong = other_than(&code);
    let app = std::sync::Arc::new(app);
    let tries: Vec<_> = (0..12)
        .map(|_| {
            let (app, client_id, wrong) = (app.clone(), client_id.clone(), wrong.clone());
            tokio::spawn(async move { code_login(&app, &client_id, MOBILE, &wrong).await })
        })
        .collect();
    for t in tries {
        assert_error(&t.await.expect("task"), 400, "IDAAS.SDK.CAPTCHA.0007", None);
    }
    // Twelve wrong tries at once used up the code's three: the right
    // digits fail now.
    assert_wrong(&app, &client_id, &code).await;
}

async fn a_number_has_a_day_of_wrong_entries_across_codes(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    sms_policy(&app, json!({"max_checks": 5, "mobile_daily_max_checks": 3, "resend_seconds": 0})).await;
    send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    let code = gateway.code(1).await;
    for _ in 0..3 {
        assert_wrong(&app, &client_id, &other_than(&code)).await;
    }
    // A new code does not bring new guesses.
    send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    let code = gateway.code(2).await;
    assert_wrong(&app, &client_id, &code).await;
    app.clock.advance(86_400);
    send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    let code = gateway.code(3).await;
    assert_eq!(code_login(&app, &client_id, MOBILE, &code).await.1["status"], "SUCCESS", "a new day");
}

async fn wrong_codes_count_against_the_address(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    let (status, _) = app
        .admin(Method::PUT, "/policies/throttle", Some(json!({"ip_max_failures": 3, "ip_window_seconds": 120})))
        .await;
    assert_eq!(status, StatusCode::OK);
    send(&app, &client_id, MOBILE, "LOGIN_SMS").await;
    let code = gateway.code(1).await;
    for _ in 0..3 {
        assert_wrong(&app, &client_id, &other_than(&code)).await;
    }
    assert_error(&code_login(&app, &client_id, MOBILE, &code).await, 429, "IDAAS.SDK.REQ.0007", None);
    assert_error(&app.login(&client_id, MOBILE, PASSWORD).await, 429, "IDAAS.SDK.REQ.0007", None);
    app.clock.advance(120);
    assert_eq!(code_login(&app, &client_id, MOBILE, &code).await.1["status"], "SUCCESS");
}

async fn what_a_send_refuses_before_any_limit(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    let refused = |sent: (StatusCode, serde_json::Value, Option<i64>)| (sent.0, sent.1);
    assert_error(&refused(send(&app, &client_id, " ", "LOGIN_SMS").await), 400, "IDAAS.SDK.USER.0004", None);
    for kind in ["", "EMAIL", "login_sms"] {
        assert_error(&refused(send(&app, &client_id, MOBILE, kind).await), 400, "IDAAS.SDK.SMS.0004", None);
    }
    let no_type = send_from(&app, &app.client, &client_id, json!({"mobile": MOBILE})).await;
    assert_error(&refused(no_type), 400, "IDAAS.SDK.SMS.0004", None);
    for number in ["+447911123456", "not a number"] {
        assert_error(&refused(send(&app, &client_id, number, "LOGIN_SMS").await), 400, "IDAAS.SDK.SMS.0003", None);
    }
    sms_policy(&app, json!({"allowed_prefixes": []})).await;
    assert_eq!(send(&app, &client_id, "+447911123456", "LOGIN_SMS").await.0, StatusCode::OK, "every country");
    let empty =
        crate::sms_helpers::with_code(&app, &client_id, "/login/mobile-verify-code", json!({"mobile": MOBILE})).await;
    assert_error(&empty, 400, "IDAAS.SDK.SMS.0005", Some("Verification code cannot be empty"));
    assert_eq!(gateway.delivered().await, 0);

    let silent = TestApp::spawn(backend).await;
    let client_id = silent.default_app().await;
    let none = refused(send(&silent, &client_id, MOBILE, "LOGIN_SMS").await);
    assert_error(&none, 400, "IDAAS.SDK.CAPTCHA.0006", Some("Failed to send verification code"));
}

async fn the_policy_is_read_and_changed_by_the_admin_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, policy) = app.admin(Method::GET, "/policies/sms", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        policy,
        json!({"code_ttl_seconds": 300, "resend_seconds": 60, "mobile_daily_max": 10, "ip_hourly_max": 20,
               "global_hourly_max": 1000, "max_checks": 5, "mobile_daily_max_checks": 10, "allowed_prefixes": ["+86"]})
    );
    let changed = sms_policy(&app, json!({"max_checks": 3, "allowed_prefixes": ["+86", "+852"]})).await;
    assert_eq!((changed["max_checks"].clone(), changed["resend_seconds"].clone()), (json!(3), json!(60)));
    for bad in [json!({"max_checks": 0}), json!({"allowed_prefixes": ["86"]}), json!({"code_ttl_seconds": 5})] {
        let (status, body) = app.admin(Method::PUT, "/policies/sms", Some(bad)).await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("IDAAS.ADMIN.PARAM.0001"))
        );
    }
    let (_, kept) = app.admin(Method::GET, "/policies/sms", None).await;
    assert_eq!(kept, changed);
}

async fn a_failing_webhook_is_retried_and_its_failure_audited(backend: Backend) {
    let (app, gateway) = spawn_sms(backend).await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    gateway.seen.lock().expect("seen").fail_next = 2;
    assert_eq!(send(&app, &client_id, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK);
    // The server answers other calls while delivery retries.
    app.login_ok(&client_id, MOBILE, PASSWORD).await;
    let code = gateway.code(1).await;
    assert_eq!(gateway.seen.lock().expect("seen").posts, 3, "two 500s, then delivered");
    assert_eq!(code_login(&app, &client_id, MOBILE, &code).await.1["status"], "SUCCESS");

    gateway.seen.lock().expect("seen").fail_next = 3;
    app.clock.advance(61);
    assert_eq!(send(&app, &client_id, MOBILE, "LOGIN_SMS").await.0, StatusCode::OK);
    let started = std::time::Instant::now();
    loop {
        let (_, events) = app.admin(Method::GET, "/audit-events?limit=20", None).await;
        let failed = events.as_array().expect("list").iter().find(|e| e["outcome"] == "IDAAS.SDK.CAPTCHA.0006");
        if let Some(event) = failed {
            assert_eq!(event["action"], "sms.send");
            assert_eq!(event["mobile"], crate::sms_helpers::E164);
            break;
        }
        assert!(started.elapsed().as_secs() < 15, "no audit event of the failed delivery");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(gateway.seen.lock().expect("seen").posts, 6, "three tries, no more");
}

async fn a_captcha_is_checked_before_each_send(backend: Backend) {
    let gateway = Gateway::start().await;
    let (sms_url, verify_url) = (format!("{}/sms", gateway.base), format!("{}/siteverify", gateway.base));
    let app = TestApp::spawn_with(backend, |c| {
        c.sms_provider = Some("webhook".into());
        c.sms_webhook_url = Some(sms_url);
        c.sms_webhook_secret = Some(crate::sms_helpers::WEBHOOK_SECRET.into());
        c.captcha_verify_url = Some(verify_url);
        c.captcha_secret = Some("captcha-secret".into());
    })
    .await;
    let client_id = app.default_app().await;
    app.create_user(MOBILE, PASSWORD).await;
    for token in [None, Some("robot")] {
        let body = json!({"mobile": MOBILE, "type": "LOGIN_SMS", "captcha_token": token});
        let (status, refused, _) = send_from(&app, &app.client, &client_id, body).await;
        assert_error(&(status, refused), 400, "IDAAS.SDK.SMS.0006", None);
    }
    let body = json!({"mobile": MOBILE, "type": "LOGIN_SMS", "captcha_token": "human"});
    assert_eq!(send_from(&app, &app.client, &client_id, body).await.0, StatusCode::OK);
    assert_eq!(gateway.wait_for(1).await.len(), 1);
}
