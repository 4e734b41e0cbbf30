//! `POST /api/v2/sdk/login/mobile-pwd` (docs/api.md §1–§3).

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, read, verify_with_jwks};

crate::on_both_backends!(
    success_answers_the_seed_shape_with_a_verifiable_id_token,
    checks_run_in_the_contract_order,
    messages_in_both_languages,
    countdown_then_lock_then_unlock,
    unknown_mobile_counts_down_and_locks_alike,
    concurrent_failures_are_counted_once_each,
    success_resets_the_count,
    disabled_user_only_after_the_right_password,
    password_warn_and_expired_carry_the_seed_data,
    saturated_hashing_pool_answers_com_0002,
    every_check_gives_its_place_back_whatever_it_answers,
);

/// A check holds a place on its counter only while it runs: logins in a
/// row, far more than the limit, each answer as they would alone, whether
/// they end in a session, a refusal after the password, or a failure that
/// a success then forgets.
async fn every_check_gives_its_place_back_whatever_it_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    let members_only = app.create_app(json!({"name": "Members", "access": "assigned"})).await;
    app.create_user("15200000000", PASSWORD).await;
    app.set_lockout(3, 600).await;
    for _ in 0..8 {
        app.login_ok(&client, "15200000000", PASSWORD).await;
        let (status, denied) = app.login(&members_only, "15200000000", PASSWORD).await;
        assert_eq!((status, denied["status"].as_str()), (StatusCode::OK, Some("ACCESS_DENIED")), "{denied}");
        let wrong = app.login(&client, "15200000000", "Wrong-pass1").await;
        assert_error(&wrong, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 2"));
    }
}

async fn success_answers_the_seed_shape_with_a_verifiable_id_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    let user = app
        .create_user_with(json!({"mobile": "15200000000", "password": PASSWORD, "user_name": "alice", "name": "Alice", "email": "a@example.com"}))
        .await;
    for spelling in ["15200000000", "+86 152 0000 0000", "+8615200000000"] {
        let body = app.login_ok(&client, spelling, PASSWORD).await;
        let keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "{body}");
        let token = body["session_token"].as_str().expect("session_token");
        assert_eq!(token.len(), 32);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(body["expire"], 432_000);

        let id_token = body["id_token"].as_str().expect("id_token");
        let (header, claims) = verify_with_jwks(id_token, &app.jwks().await).expect("verifies against the JWKS");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["iss"], "https://ciam.test");
        assert_eq!(claims["aud"], client.as_str());
        assert_eq!(claims["sub"], user.as_str());
        let iat = claims["iat"].as_i64().expect("iat");
        assert_eq!(claims["nbf"].as_i64(), Some(iat));
        assert_eq!(claims["exp"].as_i64(), Some(iat + 300));
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let api: Value = serde_json::from_str(claims["api"].as_str().expect("api is a JSON string")).expect("json");
        assert_eq!(
            api,
            json!({"id": user, "userName": "alice", "name": "Alice", "mobile": "+8615200000000", "email": "a@example.com"})
        );
    }
    // A tampered token does not verify.
    let body = app.login_ok(&client, "15200000000", PASSWORD).await;
    let mut tampered = body["id_token"].as_str().expect("id_token").to_owned();
    tampered.insert(tampered.find('.').expect("dot") + 5, 'x');
    assert!(verify_with_jwks(&tampered, &app.jwks().await).is_err());
}

async fn checks_run_in_the_contract_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    let url = app.url("/api/v2/sdk/login/mobile-pwd");
    let device = [
        ("X-operating-sys-version", "windows10.1.1"),
        ("X-device-fingerprint", "156aysdna213sc50"),
        ("X-agent", "Mozilla/5.0"),
    ];
    // 1. each required device header missing or blank, even with nothing else right
    for skip in 0..device.len() {
        for blank in [false, true] {
            let mut req = app.client.post(&url).body("garbage");
            for (i, (name, value)) in device.iter().enumerate() {
                if i != skip {
                    req = req.header(*name, *value);
                } else if blank {
                    req = req.header(*name, "  ");
                }
            }
            let got = read(req.send().await.expect("request")).await;
            assert_error(&got, 400, "IDAAS.SDK.PARAM.0001", Some("Device information is incomplete"));
        }
    }
    let with_device = || {
        let mut req = app.client.post(&url);
        for (name, value) in device {
            req = req.header(name, value);
        }
        req
    };
    // X-device-ip and X-L are optional; header names are case-insensitive.
    let lower = app
        .client
        .post(&url)
        .header("x-operating-sys-version", "a")
        .header("X-DEVICE-FINGERPRINT", "b")
        .header("x-agent", "c")
        .header("x-client-id", client.as_str())
        .json(&json!({"mobile": "15200000000", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(lower.status(), StatusCode::OK);
    // 2. client id missing or blank
    let got = read(with_device().body("garbage").send().await.expect("request")).await;
    assert_error(&got, 400, "IDAAS.SDK.PARAM.0002", Some("clientId cannot be empty"));
    let got = read(with_device().header("X-client-id", " ").body("garbage").send().await.expect("request")).await;
    assert_error(&got, 400, "IDAAS.SDK.PARAM.0002", None);
    // 3. unknown or disabled app
    let got = read(
        with_device()
            .header("X-client-id", "nTo1eRIub60vPb54WeE6aojPwYwImtl4")
            .body("garbage")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_error(&got, 400, "IDAAS.SDK.PARAM.0003", Some("The app is not registered, please register the app first"));
    let disabled = app.create_app(json!({"name": "Off", "enabled": false})).await;
    let got =
        read(with_device().header("X-client-id", disabled.as_str()).json(&json!({})).send().await.expect("request"))
            .await;
    assert_error(&got, 400, "IDAAS.SDK.PARAM.0003", None);
    // 4. body problems come after the app check
    let got =
        read(with_device().header("X-client-id", client.as_str()).body("{}").send().await.expect("request")).await;
    assert_error(&got, 400, "IDAAS.SDK.REQ.0001", Some("Content-Type must be application/json"));
    // then the fields: mobile before password
    for (body, code, message) in [
        (json!({}), "IDAAS.SDK.USER.0004", "Mobile number cannot be empty"),
        (json!({"mobile": "", "password": ""}), "IDAAS.SDK.USER.0004", "Mobile number cannot be empty"),
        (json!({"mobile": "   ", "password": "x"}), "IDAAS.SDK.USER.0004", "Mobile number cannot be empty"),
        (json!({"mobile": null, "password": "x"}), "IDAAS.SDK.USER.0004", "Mobile number cannot be empty"),
        (json!({"mobile": "15200000000"}), "IDAAS.SDK.USER.0006", "Password cannot be empty"),
        (json!({"mobile": "15200000000", "password": ""}), "IDAAS.SDK.USER.0006", "Password cannot be empty"),
    ] {
        let got = app.sdk(Method::POST, "/login/mobile-pwd", &client).json(&body).send().await.expect("request");
        assert_error(&read(got).await, 400, code, Some(message));
    }
}

async fn messages_in_both_languages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    let user = app.create_user("15200000000", PASSWORD).await;
    let zh = |got: &(StatusCode, Value)| got.1["error_msg"].as_str().unwrap_or_default().to_owned();
    let no_device = read(
        app.client.post(app.url("/api/v2/sdk/login/mobile-pwd")).header("X-L", "zh").send().await.expect("request"),
    )
    .await;
    assert_eq!(zh(&no_device), "设备信息不完整");
    let no_client = read(
        app.client
            .post(app.url("/api/v2/sdk/login/mobile-pwd"))
            .header("X-L", "zh-CN")
            .header("X-operating-sys-version", "a")
            .header("X-device-fingerprint", "b")
            .header("X-agent", "c")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(zh(&no_client), "clientId不能为空");
    assert_eq!(zh(&app.login_lang("unknown", "1", "1", Some("zh")).await), "应用未注册,请先注册应用");
    assert_eq!(zh(&app.login_lang(&client, "", "1", Some("zh")).await), "手机号不能为空");
    assert_eq!(zh(&app.login_lang(&client, "15200000000", "", Some("zh")).await), "密码不能为空");
    assert_eq!(
        zh(&app.login_lang(&client, "15200000000", "Wrong-pass1", Some("zh")).await),
        "无效的账号或密码。 剩余次数:9"
    );
    assert_eq!(
        app.login_lang(&client, "15200000000", "Wrong-pass1", Some("en-US")).await.1["error_msg"],
        "Invalid account or password. Remaining times: 8"
    );
    app.set_lockout(3, 1800).await;
    let locked = app.login_lang(&client, "15200000000", "Wrong-pass1", Some("zh")).await;
    assert_eq!(zh(&locked), "由于多次登录失败,用户已被锁定。 它将在 30 分钟和 0 秒内解锁");
    app.admin(Method::POST, &format!("/users/{user}/unlock"), None).await;
    app.admin(Method::PATCH, &format!("/users/{user}"), Some(json!({"disabled": true}))).await;
    assert_eq!(zh(&app.login_lang(&client, "15200000000", PASSWORD, Some("zh")).await), "用户已被禁用");
}

async fn countdown_then_lock_then_unlock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The seconds left are asserted exactly.
    app.clock.freeze();
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    for left in (1..=9).rev() {
        let got = app.login(&client, "15200000000", "Wrong-pass1").await;
        assert_error(
            &got,
            400,
            "IDAAS.SDK.LOGIN.0002",
            Some(&format!("Invalid account or password. Remaining times: {left}")),
        );
    }
    let tenth = app.login(&client, "15200000000", "Wrong-pass1").await;
    assert_error(
        &tenth,
        400,
        "IDAAS.SDK.LOGIN.0001",
        Some(
            "User has been locked out due to multiple login failures. It will be unlocked in 30 minutes and 0 seconds",
        ),
    );
    // Locked: even the right password is refused, and no hash is computed.
    app.clock.advance(61);
    let right = app.login(&client, "15200000000", PASSWORD).await;
    assert_error(
        &right,
        400,
        "IDAAS.SDK.LOGIN.0001",
        Some(
            "User has been locked out due to multiple login failures. It will be unlocked in 28 minutes and 59 seconds",
        ),
    );
    // The lock lifts when its time is up; the count starts again.
    app.clock.advance(1800 - 61);
    let again = app.login(&client, "15200000000", "Wrong-pass1").await;
    assert_error(&again, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 9"));
    app.login_ok(&client, "15200000000", PASSWORD).await;
    // One event per attempt, each with the answer it got.
    let (_, events) = app.admin(Method::GET, "/audit-events?limit=100", None).await;
    let mut outcomes: Vec<&str> =
        events.as_array().expect("list").iter().filter_map(|e| e["outcome"].as_str()).collect();
    outcomes.reverse();
    let mut expected = vec!["IDAAS.SDK.LOGIN.0002"; 9];
    expected.extend(["IDAAS.SDK.LOGIN.0001", "IDAAS.SDK.LOGIN.0001", "IDAAS.SDK.LOGIN.0002", "SUCCESS"]);
    assert_eq!(outcomes, expected);
}

async fn unknown_mobile_counts_down_and_locks_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.set_lockout(4, 120).await;
    for mobile in ["13900000000", "no phone at all"] {
        for left in (1..=3).rev() {
            let got = app.login(&client, mobile, "Wrong-pass1").await;
            assert_error(
                &got,
                400,
                "IDAAS.SDK.LOGIN.0002",
                Some(&format!("Invalid account or password. Remaining times: {left}")),
            );
        }
        let got = app.login(&client, mobile, "Wrong-pass1").await;
        assert_error(
            &got,
            400,
            "IDAAS.SDK.LOGIN.0001",
            Some(
                "User has been locked out due to multiple login failures. It will be unlocked in 2 minutes and 0 seconds",
            ),
        );
    }
    // Another spelling of the locked unknown number is the same account.
    let got = app.login(&client, "+86 139 0000 0000", "Wrong-pass1").await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0001", None);
    app.clock.advance(120);
    let got = app.login(&client, "13900000000", "Wrong-pass1").await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 3"));
}

async fn concurrent_failures_are_counted_once_each(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let req = app
            .sdk(Method::POST, "/login/mobile-pwd", &client)
            .json(&json!({"mobile": "15200000000", "password": "Wrong-pass1"}));
        tasks.push(tokio::spawn(async move { read(req.send().await.expect("request")).await }));
    }
    let (remaining, locked) = crate::helpers::tally_failures(tasks).await;
    let distinct: HashSet<u32> = remaining.iter().copied().collect();
    assert_eq!(distinct.len(), remaining.len(), "no count given twice: {remaining:?}");
    assert!(remaining.len() <= 9, "{remaining:?}");
    assert_eq!(remaining.len() + locked, 40);
    let after = app.login(&client, "15200000000", PASSWORD).await;
    assert_error(&after, 400, "IDAAS.SDK.LOGIN.0001", None);
}

async fn success_resets_the_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    for _ in 0..5 {
        let _ = app.login(&client, "15200000000", "Wrong-pass1").await;
    }
    app.login_ok(&client, "15200000000", PASSWORD).await;
    let got = app.login(&client, "15200000000", "Wrong-pass1").await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 9"));
}

async fn disabled_user_only_after_the_right_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user_with(json!({"mobile": "15200000000", "password": PASSWORD, "disabled": true})).await;
    let wrong = app.login(&client, "15200000000", "Wrong-pass1").await;
    assert_error(&wrong, 400, "IDAAS.SDK.LOGIN.0002", None);
    let right = app.login(&client, "15200000000", PASSWORD).await;
    assert_error(&right, 400, "IDAAS.SDK.USER.0039", Some("User is disabled"));
}

/// The seed's PASSWORD_WARN `data`, decoded.
fn seed_data() -> Value {
    json!({
        "maxLength": 18,
        "minLength": 8,
        "regEx": ciam_core::policy::SEED_REGEX,
        "tip": "至少包含数字、大写字母、小写字母和特殊字符中的3种"
    })
}

async fn password_warn_and_expired_carry_the_seed_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.create_app(json!({"name": "Strict", "password_expiry_check": true})).await;
    let lax = app.default_app().await;
    app.create_user_with(
        json!({"mobile": "15200000001", "password": PASSWORD, "password_changed_at": "2000-01-01T00:00:00Z"}),
    )
    .await;
    let warn_at = ciam_core::clock::to_rfc3339(ciam_core::Clock::now(&ciam_core::SystemClock) - 85 * 86_400);
    app.create_user_with(json!({"mobile": "15200000002", "password": PASSWORD, "password_changed_at": warn_at})).await;
    app.create_user("15200000003", PASSWORD).await;

    for (mobile, status) in [("15200000001", "PASSWORD_EXPIRED"), ("15200000002", "PASSWORD_WARN")] {
        let (code, body) = app.login_lang(&client, mobile, PASSWORD, Some("zh")).await;
        assert_eq!(code, StatusCode::OK);
        let keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["status", "state_token", "data"], "{body}");
        assert_eq!(body["status"], status);
        assert!(body["state_token"].as_str().is_some_and(|t| t.len() >= 32));
        let data: Value = serde_json::from_str(body["data"].as_str().expect("data is a JSON string")).expect("json");
        assert_eq!(data, seed_data());
        let (_, en) = app.login_lang(&client, mobile, PASSWORD, None).await;
        let data: Value = serde_json::from_str(en["data"].as_str().expect("data")).expect("json");
        assert_eq!(data["tip"], ciam_core::policy::SEED_TIP_EN);
        // An app without the expiry check lets the same user straight in.
        app.login_ok(&lax, mobile, PASSWORD).await;
    }
    app.login_ok(&client, "15200000003", PASSWORD).await;
}

async fn saturated_hashing_pool_answers_com_0002(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.hash_workers = Some(1);
        c.hash_queue = 0;
    })
    .await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let req = app
            .sdk(Method::POST, "/login/mobile-pwd", &client)
            .json(&json!({"mobile": format!("1390000000{}", i % 10), "password": "x"}));
        tasks.push(tokio::spawn(async move { read(req.send().await.expect("request")).await }));
    }
    let mut busy = 0;
    for task in tasks {
        let got = task.await.expect("task");
        match got.1["error_code"].as_str() {
            Some("IDAAS.SDK.COM.0002") => {
                assert_error(&got, 500, "IDAAS.SDK.COM.0002", Some("System busy, please try again later"));
                busy += 1;
            }
            Some("IDAAS.SDK.LOGIN.0002") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(busy > 0, "a full pool with no queue must refuse at once");
    // The server serves normally right after.
    app.login_ok(&client, "15200000000", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_comes_within_five_seconds() {
    // One hashing worker, a long queue and wait, and a slow hash: the last
    // of several logins would wait far past the deadline.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.hash_workers = Some(1);
        c.hash_queue = 100;
        c.hash_max_wait_ms = 60_000;
        c.argon2_t = 120;
    })
    .await;
    let client = app.default_app().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let req = app
            .sdk(Method::POST, "/login/mobile-pwd", &client)
            .json(&json!({"mobile": format!("1390000000{i}"), "password": "x"}));
        tasks.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let got = read(req.send().await.expect("request")).await;
            (started.elapsed(), got)
        }));
    }
    let mut busy = 0;
    for task in tasks {
        let (took, got) = task.await.expect("task");
        assert!(took < std::time::Duration::from_secs(5), "answered after {took:?}");
        match got.1["error_code"].as_str() {
            Some("IDAAS.SDK.COM.0002") => busy += 1,
            Some("IDAAS.SDK.LOGIN.0002") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(busy > 0, "the slow queue must hit the deadline");
    // The attempts cut by the deadline are in the audit log like any other.
    let (_, events) = app.admin(Method::GET, "/audit-events?limit=100", None).await;
    let audited = events.as_array().expect("list").iter().filter(|e| e["outcome"] == "IDAAS.SDK.COM.0002").count();
    assert_eq!(audited, busy);
}
