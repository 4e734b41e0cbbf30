//! The admin API (docs/api.md §5) and start-up.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, TestApp, assert_error};

crate::on_both_backends!(
    apps_crud,
    users_crud,
    admin_token_is_required,
    duplicate_mobile_conflicts_in_any_spelling,
    invalid_fields_are_422,
    imported_argon2_hash_logs_in,
    policies_read_back_with_seed_defaults_and_update,
    jwks_publishes_rsa_and_ed25519_keys_with_kid,
    membership_and_unlock,
    audit_records_every_attempt,
    wrong_admin_tokens_are_throttled_per_address_with_the_console,
);

async fn apps_crud(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, created) = app
        .admin(
            Method::POST,
            "/apps",
            Some(json!({"name": "Shop", "access": "assigned", "password_expiry_check": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["client_id"].as_str().expect("client_id").to_owned();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(created["access"], "assigned");
    assert_eq!(created["password_expiry_check"], true);
    assert_eq!(created["session_ttl"], 432_000);
    assert_eq!(created["id_token_ttl"], 300);
    assert_eq!(created["enabled"], true);

    let (status, list) = app.admin(Method::GET, "/apps", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/apps/{id}"),
            Some(json!({"session_ttl": 60, "enabled": false, "name": "Shop 2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!((patched["session_ttl"].as_i64(), patched["enabled"].as_bool()), (Some(60), Some(false)));
    let (_, fetched) = app.admin(Method::GET, &format!("/apps/{id}"), None).await;
    assert_eq!(fetched, patched);

    let (status, _) = app.admin(Method::DELETE, &format!("/apps/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &app.admin(Method::GET, &format!("/apps/{id}"), None).await,
        404,
        "IDAAS.ADMIN.RES.0001",
        Some("app not found"),
    );
    assert_error(&app.admin(Method::DELETE, &format!("/apps/{id}"), None).await, 404, "IDAAS.ADMIN.RES.0001", None);
}

async fn users_crud(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, user) = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"mobile": "152 0000 0000", "password": PASSWORD, "user_name": "alice", "email": "a@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let id = user["id"].as_str().expect("id");
    assert_eq!(user["mobile"], "+8615200000000");
    assert_eq!(user["user_name"], "alice");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none(), "no secret is ever returned");
    assert!(!user.to_string().contains("argon2"));

    let (status, found) = app.admin(Method::GET, "/users?mobile=%2B86%20152%200000%200000", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found[0]["id"], id);
    let (_, none) = app.admin(Method::GET, "/users?mobile=13900000000", None).await;
    assert_eq!(none, json!([]));

    let (status, patched) =
        app.admin(Method::PATCH, &format!("/users/{id}"), Some(json!({"name": "Alice", "email": null}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!((patched["name"].as_str(), patched["email"].is_null()), (Some("Alice"), true));
    assert_eq!(patched["user_name"], "alice", "fields not sent are kept");

    let (status, got) = app.admin(Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &patched));
    let (status, _) = app.admin(Method::DELETE, &format!("/users/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &app.admin(Method::GET, &format!("/users/{id}"), None).await,
        404,
        "IDAAS.ADMIN.RES.0001",
        Some("user not found"),
    );
}

async fn admin_token_is_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.url("/api/v2/admin/apps");
    for auth in [None, Some("Bearer wrong-token-wrong-token"), Some("Bearer "), Some(ADMIN_TOKEN), Some("Basic abc")] {
        let mut req = app.client.get(&url);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let got = crate::helpers::read(req.send().await.expect("request")).await;
        assert_error(&got, 401, "IDAAS.ADMIN.AUTH.0001", Some("A valid admin token is required"));
    }
    let zh = app.client.get(&url).header("X-L", "zh").send().await.expect("request");
    let got = crate::helpers::read(zh).await;
    assert_error(&got, 401, "IDAAS.ADMIN.AUTH.0001", Some("需要有效的管理员令牌"));
    let ok = app.client.get(&url).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    assert_eq!(ok.status(), StatusCode::OK);
}

/// Wrong admin tokens on the API and wrong console sign-ins share one
/// store-backed count per address: after 10 in 15 minutes the address gets
/// 429 even with the right token, other addresses do not, and the count is
/// kept by every instance (three on PostgreSQL).
pub async fn operators_are_throttled_across(instances: &[&TestApp]) {
    let guesser = crate::helpers::client_at(90);
    let apps = |i: usize| instances[i % instances.len()].url("/api/v2/admin/apps");
    let mut answers = Vec::new();
    for i in 0..7 {
        let resp = guesser.get(apps(i)).bearer_auth(format!("wrong-token-{i}")).send().await.expect("request");
        answers.push(resp.status());
    }
    for i in 0..3 {
        let console = instances[i % instances.len()].url("/console/sign-in");
        let resp = guesser.post(console).form(&[("token", "wrong")]).send().await.expect("sign-in");
        answers.push(resp.status());
    }
    assert!(answers.iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{answers:?}");
    for i in 0..instances.len() {
        let right = guesser.get(apps(i)).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
        let retry: u64 = right.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=900).contains(&retry), "{retry}");
        let got = crate::helpers::read(right).await;
        let message = "Too many failed sign-ins from your address, please try again later";
        assert_error(&got, 429, "IDAAS.ADMIN.REQ.0008", Some(message));
    }
    let console = guesser.post(instances[0].url("/console/sign-in")).form(&[("token", ADMIN_TOKEN)]);
    assert_eq!(console.send().await.expect("sign-in").status(), StatusCode::TOO_MANY_REQUESTS);
    // Another address is not held back, and a right token counts nothing.
    let operator = crate::helpers::client_at(91);
    for i in 0..12 {
        let ok = operator.get(apps(i)).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
        assert_eq!(ok.status(), StatusCode::OK);
    }
    // An address on the throttle's allowlist (a trusted network) is not
    // counted.
    let (status, _) =
        instances[0].admin(Method::PUT, "/policies/throttle", Some(json!({"ip_allowlist": ["127.0.0.92"]}))).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(ciam_core::service::POLICY_CACHE).await;
    let trusted = crate::helpers::client_at(92);
    for i in 0..12 {
        let wrong = trusted.get(apps(i)).bearer_auth("wrong-token").send().await.expect("request");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(trusted.get(apps(0)).bearer_auth(ADMIN_TOKEN).send().await.expect("request").status(), StatusCode::OK);
    // The window ends.
    for app in instances {
        app.clock.advance(ciam_core::operator::OPERATOR_WINDOW_SECONDS);
    }
    let again = guesser.get(apps(0)).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    assert_eq!(again.status(), StatusCode::OK);
}

async fn wrong_admin_tokens_are_throttled_per_address_with_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    operators_are_throttled_across(&[&app]).await;
}

async fn duplicate_mobile_conflicts_in_any_spelling(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("15200000000", PASSWORD).await;
    for spelling in ["+86 152 0000 0000", "+8615200000000", "152-0000-0000"] {
        let got = app.admin(Method::POST, "/users", Some(json!({"mobile": spelling, "password": PASSWORD}))).await;
        assert_error(&got, 409, "IDAAS.ADMIN.USER.0001", Some("A user with this mobile number already exists"));
    }
    let other = app.create_user("15200000001", PASSWORD).await;
    let got = app.admin(Method::PATCH, &format!("/users/{other}"), Some(json!({"mobile": "+86 152 0000 0000"}))).await;
    assert_error(&got, 409, "IDAAS.ADMIN.USER.0001", None);
}

async fn invalid_fields_are_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (
            "/users",
            json!({"mobile": "not-a-phone", "password": PASSWORD}),
            "Invalid value for field 'mobile': not a valid phone number",
        ),
        (
            "/users",
            json!({"mobile": "123", "password": PASSWORD}),
            "Invalid value for field 'mobile': not a valid phone number",
        ),
        ("/users", json!({"password": PASSWORD}), "Invalid value for field 'mobile': is required"),
        (
            "/users",
            json!({"mobile": "15200000000"}),
            "Invalid value for field 'password': password or password_hash is required",
        ),
        ("/users", json!({"mobile": "15200000000", "password_hash": "$2b$12$notsupported"}), ""),
        ("/users", json!({"mobile": "15200000000", "password": "short"}), ""),
        ("/users", json!({"mobile": "15200000000", "password": PASSWORD, "email": "nope"}), ""),
        ("/users", json!({"mobile": "15200000000", "password": PASSWORD, "password_changed_at": "yesterday"}), ""),
        ("/users", json!({"mobile": "15200000000", "password": PASSWORD, "colour": "blue"}), ""),
        ("/apps", json!({"name": ""}), "Invalid value for field 'name': must not be empty"),
        ("/apps", json!({"name": "x", "access": "some"}), ""),
        ("/apps", json!({"name": "x", "id_token_alg": "HS256"}), ""),
        ("/apps", json!({"name": "x", "id_token_ttl": 0}), ""),
        ("/apps", json!({"name": "x", "session_ttl": -5}), ""),
    ];
    for (path, body, message) in cases {
        let got = app.admin(Method::POST, path, Some(body.clone())).await;
        assert_error(&got, 422, "IDAAS.ADMIN.PARAM.0001", (!message.is_empty()).then_some(message));
    }
    // In Chinese, the reason and the kind are Chinese too.
    let zh = |method: Method, path: &str| {
        app.client
            .request(method, app.url(&format!("/api/v2/admin{path}")))
            .bearer_auth(ADMIN_TOKEN)
            .header("X-L", "zh")
    };
    let got = crate::helpers::read(zh(Method::POST, "/apps").json(&json!({"name": ""})).send().await.expect("request"));
    assert_error(&got.await, 422, "IDAAS.ADMIN.PARAM.0001", Some("字段 'name' 的值无效:不能为空"));
    let got = crate::helpers::read(
        zh(Method::PUT, "/policies/lockout").json(&json!({"max_failures": 0})).send().await.expect("request"),
    );
    assert_error(&got.await, 422, "IDAAS.ADMIN.PARAM.0001", Some("字段 'max_failures' 的值无效:必须在 1 到 1000 之间"));
    let got = crate::helpers::read(zh(Method::GET, "/users/nobody").send().await.expect("request"));
    assert_error(&got.await, 404, "IDAAS.ADMIN.RES.0001", Some("用户不存在"));
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut req = app.client.post(app.url("/api/v2/admin/apps")).bearer_auth(ADMIN_TOKEN).body(body);
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        req.send()
    };
    let read = |resp| crate::helpers::read(resp);
    let undeclared = read(post(r#"{"name": "x"}"#, None).await.expect("request")).await;
    assert_error(&undeclared, 415, "IDAAS.ADMIN.REQ.0002", Some("Content-Type must be application/json"));
    let form = read(post("name=x", Some("application/x-www-form-urlencoded")).await.expect("request")).await;
    assert_error(&form, 415, "IDAAS.ADMIN.REQ.0002", None);
    for body in ["{not json", r#"["x", true]"#, "null", r#""x""#] {
        let got = read(post(body, Some("application/json")).await.expect("request")).await;
        assert_error(&got, 400, "IDAAS.ADMIN.REQ.0001", None);
    }
    // Wrong types and unknown fields name the field, never an internal type.
    for (body, field) in [
        (json!({"name": "x", "session_ttl": "60"}), "'session_ttl'"),
        (json!({"name": "x", "session_ttl": 60.5}), "'session_ttl'"),
        (json!({"name": "x", "session_ttl": null}), "'session_ttl'"),
        (json!({"name": null}), "'name'"),
        (json!({"name": "x", "enabled": "yes"}), "'enabled'"),
        (json!({"name": "x", "nmae": "y"}), "'nmae'"),
    ] {
        let got = app.admin(Method::POST, "/apps", Some(body.clone())).await;
        assert_error(&got, 422, "IDAAS.ADMIN.PARAM.0001", None);
        let message = got.1["error_msg"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{body}: {message}");
        for internal in ["AppBody", "struct", "i64", "u32", "Option"] {
            assert!(!message.contains(internal), "{body}: {message}");
        }
    }
    // A whole number written with a zero fraction is a whole number.
    let (status, app_60) = app.admin(Method::POST, "/apps", Some(json!({"name": "x", "session_ttl": 60.0}))).await;
    assert_eq!((status, app_60["session_ttl"].as_i64()), (StatusCode::CREATED, Some(60)), "{app_60}");
    let bad_policy = app.admin(Method::PUT, "/policies/password", Some(json!({"regex": "(unclosed"}))).await;
    assert_error(&bad_policy, 422, "IDAAS.ADMIN.PARAM.0001", None);
    let bad_lockout = app.admin(Method::PUT, "/policies/lockout", Some(json!({"max_failures": 0}))).await;
    assert_error(&bad_lockout, 422, "IDAAS.ADMIN.PARAM.0001", None);
}

async fn imported_argon2_hash_logs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    // A PHC string made elsewhere, with weaker parameters than ours.
    let phc = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"imported-salt-16").expect("salt");
        let params = argon2::Params::new(4096, 1, 1, None).expect("params");
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"Imp0rted!", &salt)
            .expect("hash")
            .to_string()
    };
    let id = app.create_user_with(json!({"mobile": "15200000000", "password_hash": phc})).await;
    let (status, wrong) = app.login(&client, "15200000000", "Imp0rted?").await;
    assert_eq!((status, wrong["error_code"].as_str()), (StatusCode::BAD_REQUEST, Some("IDAAS.SDK.LOGIN.0002")));
    app.login_ok(&client, "15200000000", "Imp0rted!").await;
    // The weaker hash was upgraded on that login, and the password still works.
    let stored = app.admin(Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(stored.0, StatusCode::OK);
    app.login_ok(&client, "+8615200000000", "Imp0rted!").await;
}

async fn policies_read_back_with_seed_defaults_and_update(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, pw) = app.admin(Method::GET, "/policies/password", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pw["min_length"], 8);
    assert_eq!(pw["max_length"], 18);
    assert_eq!(pw["regex"], ciam_core::policy::SEED_REGEX);
    assert_eq!(pw["tip"]["zh"], "至少包含数字、大写字母、小写字母和特殊字符中的3种");
    assert_eq!(pw["max_age_days"], 90);
    assert_eq!(pw["warn_days"], 7);
    assert_eq!(pw["history"], 0);
    let (status, lockout) = app.admin(Method::GET, "/policies/lockout", None).await;
    assert_eq!(status, StatusCode::OK);
    let defaults = json!({
        "max_failures": 10,
        "lock_seconds": 1800,
        "scope": "account",
        "account_max_failures": 100,
        "failure_reset_seconds": 86400
    });
    assert_eq!(lockout, defaults);
    let (status, throttle) = app.admin(Method::GET, "/policies/throttle", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(throttle, json!({"ip_max_failures": 100, "ip_window_seconds": 3600, "ip_allowlist": []}));

    let (status, updated) =
        app.admin(Method::PUT, "/policies/password", Some(json!({"min_length": 10, "history": 3}))).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["min_length"].as_u64(), updated["history"].as_u64()), (Some(10), Some(3)));
    assert_eq!(updated["regex"], ciam_core::policy::SEED_REGEX, "fields not sent are kept");
    let (_, again) = app.admin(Method::GET, "/policies/password", None).await;
    assert_eq!(again, updated);
}

async fn jwks_publishes_rsa_and_ed25519_keys_with_kid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jwks = app.jwks().await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "an RSA key, then an Ed25519 key: {jwks}");
    let okp = &keys[1];
    assert_eq!(
        (&okp["kty"], &okp["crv"], &okp["alg"], &okp["use"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"), &json!("sig"))
    );
    assert!(jsonwebtoken::DecodingKey::from_ed_components(okp["x"].as_str().expect("x")).is_ok());
    let key = &keys[0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    // The modulus is a 2048-bit RSA key and the pair parses as a public key.
    let n =
        jsonwebtoken::DecodingKey::from_rsa_components(key["n"].as_str().expect("n"), key["e"].as_str().expect("e"));
    assert!(n.is_ok());
    use base64::Engine;
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key["n"].as_str().expect("n")).expect("b64");
    assert_eq!(modulus.len(), 256);
    let discovery: serde_json::Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["issuer"], "https://ciam.test");
    assert_eq!(discovery["jwks_uri"], "https://ciam.test/api/v1/oauth2/keys");
    assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["RS256", "EdDSA"]));
}

async fn membership_and_unlock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.create_app(json!({"name": "Staff", "access": "assigned"})).await;
    let user = app.create_user("15200000000", PASSWORD).await;
    let (status, denied) = app.login(&client, "15200000000", PASSWORD).await;
    assert_eq!((status, denied), (StatusCode::OK, json!({"status": "ACCESS_DENIED"})));
    let (status, _) = app.admin(Method::PUT, &format!("/apps/{client}/users/{user}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.login_ok(&client, "15200000000", PASSWORD).await;
    let (status, _) = app.admin(Method::DELETE, &format!("/apps/{client}/users/{user}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.login(&client, "15200000000", PASSWORD).await.1["status"], "ACCESS_DENIED");
    assert_error(
        &app.admin(Method::PUT, &format!("/apps/{client}/users/nobody"), None).await,
        404,
        "IDAAS.ADMIN.RES.0001",
        None,
    );

    app.set_lockout(2, 1800).await;
    let _ = app.login(&client, "15200000000", "Wrong-pass1").await;
    let locked = app.login(&client, "15200000000", "Wrong-pass1").await;
    assert_error(&locked, 400, "IDAAS.SDK.LOGIN.0001", None);
    let (status, _) = app.admin(Method::POST, &format!("/users/{user}/unlock"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = app.login(&client, "15200000000", "Wrong-pass1").await;
    assert_error(&after, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 1"));
}

async fn audit_records_every_attempt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    let user = app.create_user("15200000000", PASSWORD).await;
    app.login_ok(&client, "152 0000 0000", PASSWORD).await;
    let _ = app.login(&client, "15200000000", "Wrong-pass1").await;
    let _ = app.login("no-such-app", "15200000000", PASSWORD).await;
    let (status, events) = app.admin(Method::GET, "/audit-events?mobile=15200000000", None).await;
    assert_eq!(status, StatusCode::OK);
    let outcomes: Vec<&str> = events.as_array().expect("list").iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes, vec!["IDAAS.SDK.LOGIN.0002", "SUCCESS"], "newest first");
    let newest = &events[0];
    assert_eq!(newest["user_id"], user.as_str());
    assert_eq!(newest["client_id"], client.as_str());
    assert_eq!(newest["device_fingerprint"], "156aysdna213sc50");
    assert_eq!(newest["os_version"], "windows10.1.1");
    assert_eq!(newest["device_ip"], "192.168.1.2");
    assert!(newest["agent"].as_str().is_some_and(|a| a.starts_with("Mozilla/5.0")));
    assert!(newest["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let (_, all) = app.admin(Method::GET, "/audit-events?limit=10", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "a call of no registered app is not audited: {all}");
    // A password typed into the mobile field is not kept.
    let _ = app.login(&client, "MyS3cret-Passw0rd", "Wrong-pass1").await;
    let (_, junk) = app.admin(Method::GET, "/audit-events?limit=1", None).await;
    assert_eq!(junk[0]["mobile"], "***", "{junk}");
    assert!(!junk.to_string().contains("MyS3cret"), "{junk}");
    let (_, by_junk) = app.admin(Method::GET, "/audit-events?mobile=MyS3cret-Passw0rd", None).await;
    assert_eq!(by_junk, json!([]));
    let (_, by_user) = app.admin(Method::GET, &format!("/audit-events?user_id={user}"), None).await;
    assert_eq!(by_user.as_array().map(Vec::len), Some(2));
    let (_, all) = app.admin(Method::GET, "/audit-events?limit=10", None).await;
    assert!(
        !all.to_string().contains(PASSWORD) && !all.to_string().contains("Wrong-pass1"),
        "no password in the audit log"
    );
}
