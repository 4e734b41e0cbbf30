//! Moving users in and out (docs/api.md §10): hashes from other systems log
//! in and are upgraded, their cost is bounded, a cheap one tells nothing by
//! its timing, and whole files come in and go out through the command line.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, TestApp, TestDatabase, assert_error};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn salt() -> SaltString {
    SaltString::encode_b64(b"0123456789abcdef").expect("salt")
}

fn bcrypt_hash(password: &str, cost: u32) -> String {
    bcrypt::hash_with_salt(password, cost, *b"0123456789abcdef")
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoB)
}

fn pbkdf2_phc(password: &str, sha512: bool, rounds: u32) -> String {
    let algorithm = if sha512 { pbkdf2::Algorithm::Pbkdf2Sha512 } else { pbkdf2::Algorithm::Pbkdf2Sha256 };
    let params = pbkdf2::Params { rounds, output_length: 32 };
    let salt = salt();
    let hash =
        pbkdf2::Pbkdf2.hash_password_customized(password.as_bytes(), Some(algorithm.ident()), None, params, &salt);
    hash.expect("pbkdf2").to_string()
}

fn scrypt_phc(password: &str) -> String {
    let params = scrypt::Params::new(10, 8, 1, 32).expect("params");
    scrypt::Scrypt
        .hash_password_customized(password.as_bytes(), None, None, params, &salt())
        .expect("scrypt")
        .to_string()
}

fn argon2_phc(password: &str, m: u32, t: u32) -> String {
    let params = argon2::Params::new(m, t, 1, None).expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon.hash_password(password.as_bytes(), &salt()).expect("argon2").to_string()
}

/// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`.
fn django_hash(password: &str, rounds: u32) -> String {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), b"djangosalt", rounds, &mut key);
    format!("pbkdf2_sha256${rounds}$djangosalt${}", B64.encode(key))
}

/// A Keycloak `password` credential as its realm export writes it.
fn keycloak_credential(password: &str, rounds: u32) -> Value {
    let mut key = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), b"keycloak-salt-16", rounds, &mut key);
    json!({
        "id": "5a4b9f1e-8d2c-4c55-9a57-0f7c3e1d2b6a",
        "type": "password",
        "userLabel": "My password",
        "createdDate": 1_700_000_000_000_u64,
        "secretData": json!({"value": B64.encode(key), "salt": B64.encode(b"keycloak-salt-16"), "additionalParameters": {}}).to_string(),
        "credentialData": json!({"hashIterations": rounds, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}).to_string(),
    })
}

/// `ciam ARGS` on `database_url`.
fn ciam(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(args)
        .env("CIAM_DATABASE_URL", database_url)
        .env("CIAM_LOG", "warn")
        .output()
        .expect("run ciam")
}

fn import(database_url: &str, file: &Path, extra: &[&str]) -> (bool, Value, String) {
    let mut args = vec!["user", "import", file.to_str().expect("path")];
    args.extend_from_slice(extra);
    let out = ciam(database_url, &args);
    let summary = String::from_utf8_lossy(&out.stdout).lines().last().map(str::to_owned).unwrap_or_default();
    let summary = serde_json::from_str(&summary).unwrap_or(Value::Null);
    (out.status.success(), summary, String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn stored_hash(app: &TestApp, mobile: &str) -> String {
    let sql = format!("SELECT password_hash FROM users WHERE mobile = '{mobile}'");
    match app.db.backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.expect("connect");
            sqlx::query_scalar(&sql).fetch_one(&mut conn).await.expect("hash")
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&app.db.url).await.expect("connect");
            sqlx::query_scalar(&sql).fetch_one(&mut conn).await.expect("hash")
        }
    }
}

crate::on_both_backends!(
    hashes_from_other_systems_log_in_and_are_upgraded,
    an_expired_imported_password_is_changed_through_the_password_flow,
    hashes_beyond_the_bounds_are_refused_naming_the_parameter,
    files_from_other_systems_come_in_and_go_out,
    max_cost_refuses_hashes_costlier_than_asked,
);

async fn hashes_from_other_systems_log_in_and_are_upgraded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client_id = app.default_app().await;
    app.set_lockout(1000, 1800).await;
    let users = [
        ("15200000001", bcrypt_hash(PASSWORD, 10)),
        ("15200000002", pbkdf2_phc(PASSWORD, false, 27_500)),
        ("15200000003", pbkdf2_phc(PASSWORD, true, 10_000)),
        ("15200000004", scrypt_phc(PASSWORD)),
        ("15200000005", argon2_phc(PASSWORD, 256, 1)),
        ("15200000006", django_hash(PASSWORD, 10_000)),
    ];
    for (mobile, hash) in &users {
        app.create_user_with(json!({"mobile": mobile, "password_hash": hash})).await;
    }
    for (mobile, hash) in &users {
        // A wrong password is refused, and the hash is kept.
        let wrong = app.login(&client_id, mobile, "Wrong-pass1").await;
        assert_error(&wrong, 400, "IDAAS.SDK.LOGIN.0002", None);
        let stored = stored_hash(&app, &format!("+86{mobile}")).await;
        assert!(!stored.starts_with("$argon2id$v=19$m=19456"), "{hash}: {stored}");
        // The right one logs in, and the hash becomes the server's argon2id.
        app.login_ok(&client_id, mobile, PASSWORD).await;
        let upgraded = stored_hash(&app, &format!("+86{mobile}")).await;
        assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash} became {upgraded}");
        app.login_ok(&client_id, mobile, PASSWORD).await;
    }
}

async fn an_expired_imported_password_is_changed_through_the_password_flow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client_id = app.create_app(json!({"name": "Strict", "password_expiry_check": true})).await;
    let body = json!({
        "mobile": "15200000001",
        "password_hash": bcrypt_hash(PASSWORD, 4),
        "password_changed_at": "2020-01-01T00:00:00Z",
    });
    app.create_user_with(body).await;
    let (status, expired) = app.login(&client_id, "15200000001", PASSWORD).await;
    assert_eq!((status, expired["status"].as_str()), (StatusCode::OK, Some("PASSWORD_EXPIRED")), "{expired}");
    let state_token = expired["state_token"].as_str().expect("state_token");
    let resp = app
        .sdk(Method::POST, "/pwd/update", &client_id)
        .header("X-state-token", state_token)
        .json(&json!({"old_password": PASSWORD, "new_password": "N3w-Passw0rd!"}))
        .send()
        .await
        .expect("update");
    let (status, updated) = crate::helpers::read(resp).await;
    assert_eq!((status, updated["status"].as_str()), (StatusCode::OK, Some("SUCCESS")), "{updated}");
    let stored = stored_hash(&app, "+8615200000001").await;
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    app.login_ok(&client_id, "15200000001", "N3w-Passw0rd!").await;
}

async fn hashes_beyond_the_bounds_are_refused_naming_the_parameter(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (bcrypt_hash("x", 4).replacen("$04$", "$14$", 1), "cost"),
        ("$argon2id$v=19$m=524288,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$c29tZWhhc2hvdXRwdXQ".to_owned(), "m"),
        ("$argon2id$v=19$m=19456,t=1000,p=1$MDEyMzQ1Njc4OWFiY2RlZg$c29tZWhhc2hvdXRwdXQ".to_owned(), "t"),
        (pbkdf2_phc("x", false, 1000).replacen("i=1000,", "i=3000000,", 1), "i"),
        ("$scrypt$ln=20,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$c29tZWhhc2hvdXRwdXQ".to_owned(), "N"),
        ("$md5$abc".to_owned(), "format"),
    ];
    for (n, (hash, parameter)) in cases.iter().enumerate() {
        let body = json!({"mobile": format!("1520000001{n}"), "password_hash": hash});
        let (status, refused) = app.admin(Method::POST, "/users", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{hash}: {refused}");
        let message = refused["error_msg"].as_str().unwrap_or_default();
        assert!(message.contains("password_hash") && message.contains(&format!("{parameter}:")), "{hash}: {message}");
    }
}

async fn files_from_other_systems_come_in_and_go_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client_id = app.default_app().await;
    let folder = std::env::temp_dir().join(format!("ciam-import-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&folder).expect("folder");

    // ciam's own JSON Lines, with a line of each kind of trouble.
    let jsonl = folder.join("users.jsonl");
    let lines = [
        json!({"id": "old-system-1", "mobile": "+86 152 0000 0001", "password_hash": bcrypt_hash(PASSWORD, 4), "user_name": "alice"}).to_string(),
        json!({"mobile": "15200000002", "password_hash": pbkdf2_phc(PASSWORD, false, 1000), "disabled": false}).to_string(),
        json!({"mobile": "not a number", "password_hash": bcrypt_hash(PASSWORD, 4)}).to_string(),
        String::new(),
        json!({"mobile": "15200000003", "password_hash": "$2b$14$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}).to_string(),
        "{not json".to_owned(),
        json!({"mobile": "152-0000-0001", "password_hash": bcrypt_hash(PASSWORD, 4)}).to_string(),
    ];
    std::fs::write(&jsonl, lines.join("\n")).expect("write");
    let (ok, summary, said) = import(&app.db.url, &jsonl, &[]);
    assert!(!ok, "rejected lines fail the import: {said}");
    assert_eq!((summary["read"].as_u64(), summary["imported"].as_u64()), (Some(6), Some(2)), "{summary} {said}");
    assert_eq!((summary["skipped"].as_u64(), summary["rejected"].as_u64()), (Some(1), Some(3)), "{summary}");
    assert!(said.contains("line 3: rejected: ") && said.contains("mobile"), "{said}");
    assert!(said.contains("line 5: rejected: ") && said.contains("cost"), "{said}");
    assert!(said.contains("line 6: rejected: not a user object: key must be a string at column 2"), "{said}");
    assert!(!said.contains("at line 1"), "a line's own position only: {said}");
    let order: Vec<usize> = ["line 3: rejected", "line 5: rejected", "line 6: rejected"]
        .iter()
        .map(|needle| said.find(needle).expect("reported"))
        .collect();
    assert!(order.is_sorted(), "rejected lines in line order: {said}");
    assert!(said.contains("line 7: skipped: +8615200000001"), "{said}");
    app.login_ok(&client_id, "15200000001", PASSWORD).await;
    app.login_ok(&client_id, "15200000002", PASSWORD).await;
    let (_, alice) = app.admin(Method::GET, "/users/old-system-1", None).await;
    assert_eq!(alice["user_name"], "alice", "the old system's id is kept: {alice}");

    // Run again after an interruption: what is there is skipped.
    let (_, again, _) = import(&app.db.url, &jsonl, &[]);
    assert_eq!((again["imported"].as_u64(), again["skipped"].as_u64()), (Some(0), Some(3)), "{again}");

    // A Keycloak realm export, pretty-printed, the mobile in an attribute.
    let realm = json!({
        "id": "shop", "realm": "shop", "enabled": true,
        "users": [
            {
                "id": "9a1c5b52-3f1e-4d7a-b0c2-6f3e2a1d4c55", "createdTimestamp": 1_700_000_000_000_u64,
                "username": "bob", "enabled": true, "emailVerified": true, "firstName": "Bob", "lastName": "Li",
                "email": "bob@example.com", "attributes": {"phoneNumber": ["+8615200000010"]},
                "credentials": [keycloak_credential(PASSWORD, 27_500)], "disableableCredentialTypes": [],
                "requiredActions": [], "realmRoles": ["default-roles-shop"], "notBefore": 0, "groups": []
            },
            {
                "id": "0b7e1c9d-2a3f-4e5b-8c6d-7e8f9a0b1c2d", "username": "15200000011", "enabled": false,
                "credentials": [keycloak_credential(PASSWORD, 27_500)]
            }
        ]
    });
    let keycloak = folder.join("realm-export.json");
    std::fs::write(&keycloak, serde_json::to_string_pretty(&realm).expect("json")).expect("write");
    let (ok, summary, said) = import(&app.db.url, &keycloak, &[]);
    assert!(!ok, "the second user has no phoneNumber attribute: {said}");
    assert_eq!((summary["imported"].as_u64(), summary["rejected"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert!(said.contains("user 2: rejected: no attribute phoneNumber"), "{said}");
    let (ok, summary, said) = import(&app.db.url, &keycloak, &["--mobile-from", "username"]);
    assert!(!ok, "bob is no phone number: {said}");
    assert_eq!(summary["imported"].as_u64(), Some(1), "{summary}");
    app.login_ok(&client_id, "15200000010", PASSWORD).await;
    let disabled = app.login(&client_id, "15200000011", PASSWORD).await;
    assert_error(&disabled, 400, "IDAAS.SDK.USER.0039", None);
    let (_, bob) = app.admin(Method::GET, "/users/9a1c5b52-3f1e-4d7a-b0c2-6f3e2a1d4c55", None).await;
    assert_eq!((bob["name"].as_str(), bob["email"].as_str()), (Some("Bob Li"), Some("bob@example.com")), "{bob}");

    // An Auth0 export: JSON Lines with bcrypt hashes.
    let auth0 = folder.join("auth0.json");
    let lines = [
        json!({"_id": {"$oid": "60a7c2b9e13f4a006f1d2e3a"}, "email": "carol@example.com", "email_verified": true, "phone_number": "+8615200000020", "passwordHash": bcrypt_hash(PASSWORD, 10), "tenant": "shop", "connection": "Username-Password-Authentication"}).to_string(),
        json!({"user_id": "auth0|dave", "phone_number": "+8615200000021", "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": bcrypt_hash(PASSWORD, 4)}}, "blocked": false}).to_string(),
    ];
    std::fs::write(&auth0, lines.join("\n")).expect("write");
    let (ok, summary, said) = import(&app.db.url, &auth0, &[]);
    assert!(ok, "{said}");
    assert_eq!(summary["imported"].as_u64(), Some(2), "{summary}");
    app.login_ok(&client_id, "15200000020", PASSWORD).await;
    app.login_ok(&client_id, "15200000021", PASSWORD).await;

    // Out again, with hashes, and into another database, where they log in
    // with the same subject.
    let exported = folder.join("export.jsonl");
    let out = ciam(&app.db.url, &["user", "export", "--to", exported.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&exported).expect("export");
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(!text.contains(PASSWORD));
    let other = Arc::new(TestDatabase::create(backend).await);
    let config = ciam::Config {
        listen: "127.0.0.1:0".into(),
        database_url: Some(other.url.clone()),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..ciam::Config::default()
    };
    let second = TestApp::start(config, Arc::clone(&other)).await;
    let second_client = second.default_app().await;
    let (ok, summary, said) = import(&other.url, &exported, &[]);
    assert!(ok, "{said}");
    assert_eq!(summary["imported"].as_u64(), Some(6), "{summary}");
    let granted = second.login_ok(&second_client, "15200000001", PASSWORD).await;
    let (_, alice) = second.admin(Method::GET, "/users/old-system-1", None).await;
    assert_eq!(alice["mobile"], "+8615200000001", "{granted}");
    let _ = std::fs::remove_dir_all(&folder);
}

/// `--max-cost MS` refuses a hash that takes longer to verify here (bcrypt
/// 13 takes about half a second), naming its line and its time, and lets
/// cheaper ones in; one measurement per parameter set.
async fn max_cost_refuses_hashes_costlier_than_asked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = std::env::temp_dir().join(format!("ciam-max-cost-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("users.jsonl");
    let lines = [
        json!({"mobile": "15200000031", "password_hash": bcrypt_hash(PASSWORD, 4)}).to_string(),
        json!({"mobile": "15200000032", "password_hash": bcrypt_hash(PASSWORD, 13)}).to_string(),
        json!({"mobile": "15200000033", "password_hash": bcrypt_hash(PASSWORD, 4)}).to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).expect("write");
    let (ok, summary, stderr) = import(&app.db.url, &file, &["--max-cost", "100"]);
    assert!(!ok, "a rejected line fails the import");
    assert_eq!((summary["imported"].as_u64(), summary["rejected"].as_u64()), (Some(2), Some(1)), "{summary}");
    let line = stderr.lines().find(|l| l.contains("rejected")).expect("a rejected line");
    assert!(line.starts_with("line 2: rejected: password_hash takes "), "{stderr}");
    assert!(line.ends_with("ms to verify here, over --max-cost 100 ms"), "{stderr}");
    let client_id = app.default_app().await;
    app.login_ok(&client_id, "15200000033", PASSWORD).await;
    let _ = std::fs::remove_dir_all(&dir);
}
