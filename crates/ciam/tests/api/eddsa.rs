//! EdDSA (Ed25519) id_tokens, per app (docs/oidc.md §12): published as an
//! OKP key beside the RSA one, used for an app that asks for it and for no
//! other, rotated with the RSA key, and verified by relying parties written
//! by others: PyJWT (Debian's python3-jwt) and the `openidconnect` crate.

use std::io::Write;
use std::process::{Command, Stdio};

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, verify_with_jwks};
use crate::oidc_helpers::{
    Browser, MOBILE, RpHttp, alice, code_from, exchange, issuer, jwt_header, refresh, register_with, relying_party,
    spawn_oidc, start, verified_id_token_signed,
};

crate::on_both_backends!(
    an_eddsa_app_signs_its_sdk_id_tokens_with_ed25519,
    pyjwt_verifies_both_algorithms_from_the_jwks,
    an_eddsa_client_passes_the_relying_partys_checks,
    a_rotation_replaces_both_keys_and_old_eddsa_tokens_still_verify,
    an_algorithm_left_without_a_current_key_gets_one_at_the_next_reload,
);

/// The JWKS key with `kid`.
fn key_of<'a>(jwks: &'a Value, kid: &Value) -> &'a Value {
    jwks["keys"].as_array().expect("keys").iter().find(|k| &k["kid"] == kid).expect("kid in the JWKS")
}

async fn an_eddsa_app_signs_its_sdk_id_tokens_with_ed25519(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (status, fast) = app.admin(Method::POST, "/apps", Some(json!({"name": "Fast", "id_token_alg": "EdDSA"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{fast}");
    assert_eq!(fast["id_token_alg"], "EdDSA", "{fast}");
    let fast = fast["client_id"].as_str().expect("client_id").to_owned();
    let (_, plain) = app.admin(Method::POST, "/apps", Some(json!({"name": "Plain"}))).await;
    assert_eq!(plain["id_token_alg"], "RS256", "RS256 is the default: {plain}");
    let plain = plain["client_id"].as_str().expect("client_id").to_owned();
    app.create_user(MOBILE, PASSWORD).await;
    let jwks = app.jwks().await;
    let kinds: Vec<(&Value, &Value)> =
        jwks["keys"].as_array().expect("keys").iter().map(|k| (&k["kty"], &k["alg"])).collect();
    assert_eq!(kinds, [(&json!("RSA"), &json!("RS256")), (&json!("OKP"), &json!("EdDSA"))], "{jwks}");
    assert_eq!(jwks["keys"][1]["crv"], "Ed25519", "{jwks}");

    let login = app.login_ok(&fast, MOBILE, PASSWORD).await;
    let token = login["id_token"].as_str().expect("id_token");
    let (header, claims) = verify_with_jwks(token, &jwks).expect("verifies with the OKP key");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], jwks["keys"][1]["kid"], "signed by the current EdDSA key");
    assert_eq!(claims["aud"], fast.as_str());
    assert!(claims["api"].is_string(), "the SDK's id_token keeps its api claim: {claims}");
    let (status, refreshed) = app.refresh(&fast, login["session_token"].as_str().expect("session")).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (header, _) = verify_with_jwks(refreshed["id_token"].as_str().expect("id_token"), &jwks).expect("verifies");
    assert_eq!(header["alg"], "EdDSA", "a refresh signs as the app says");

    // Another app's tokens are RS256, by the RSA key.
    let other = app.login_ok(&plain, MOBILE, PASSWORD).await;
    let (header, _) = verify_with_jwks(other["id_token"].as_str().expect("id_token"), &jwks).expect("verifies");
    assert_eq!((&header["alg"], &header["kid"]), (&json!("RS256"), &jwks["keys"][0]["kid"]));

    // Back to RS256: the next token is RS256 (the app cache lasts a second).
    let (status, patched) =
        app.admin(Method::PATCH, &format!("/apps/{fast}"), Some(json!({"id_token_alg": "RS256"}))).await;
    assert_eq!((status, &patched["id_token_alg"]), (StatusCode::OK, &json!("RS256")), "{patched}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = app.login_ok(&fast, MOBILE, PASSWORD).await;
    assert_eq!(jwt_header(again["id_token"].as_str().expect("id_token"))["alg"], "RS256");
}

/// Verifies `token` with PyJWT: the key is picked from the JWKS by `kid`
/// (`PyJWKSet`), the signature checked with `alg` only, and `aud` and
/// `iss` required. Returns what PyJWT printed: the key type and the subject.
fn pyjwt_verify(jwks: &Value, token: &str, alg: &str, aud: &str, iss: &str) -> Result<String, String> {
    const SCRIPT: &str = r#"
import json, sys
import jwt
jwks = json.load(sys.stdin)
token, alg, aud, iss = sys.argv[1:]
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
claims = jwt.decode(token, key.key, algorithms=[alg], audience=aud, issuer=iss)
print(key.key_type, claims["sub"])
"#;
    // Debian's python3 with Debian's python3-jwt (scripts/test says so).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, token, alg, aud, iss])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("/usr/bin/python3 with python3-jwt is needed: {e}"))?;
    child.stdin.take().expect("stdin").write_all(jwks.to_string().as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
    }
}

async fn pyjwt_verifies_both_algorithms_from_the_jwks(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = app.create_user(MOBILE, PASSWORD).await;
    for (alg, kty) in [("EdDSA", "OKP"), ("RS256", "RSA")] {
        let client = app.create_app(json!({"name": alg, "id_token_alg": alg})).await;
        let token = app.login_ok(&client, MOBILE, PASSWORD).await["id_token"].as_str().expect("id_token").to_owned();
        let jwks = app.jwks().await;
        let said = pyjwt_verify(&jwks, &token, alg, &client, &iss).expect("PyJWT verifies it");
        assert_eq!(said, format!("{kty} {user}"));
        // PyJWT refuses it under the other algorithm, another audience, or
        // with one byte of the signature changed.
        let other = if alg == "EdDSA" { "RS256" } else { "EdDSA" };
        assert!(pyjwt_verify(&jwks, &token, other, &client, &iss).is_err(), "{alg} token taken as {other}");
        assert!(pyjwt_verify(&jwks, &token, alg, "another-app", &iss).is_err());
        let mut forged = token.clone().into_bytes();
        let at = forged.len() - 5;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        let refused = pyjwt_verify(&jwks, &forged, alg, &client, &iss).expect_err("a forged signature");
        assert!(refused.contains("Signature verification failed"), "{refused}");
    }
}

async fn an_eddsa_client_passes_the_relying_partys_checks(backend: Backend) {
    let app = spawn_oidc(backend).await;
    alice(&app).await;
    let client_id = register_with(&app, json!({"id_token_alg": "EdDSA"})).await;
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &client_id, None).await;
    let started = start(&rp, &["offline_access"], None);
    let mut browser = Browser::new(&app);
    let location = browser.sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &issuer(&app));
    let tokens = exchange(&rp, &http, code, started.verifier).await.expect("tokens");
    let eddsa = CoreJwsSigningAlgorithm::EdDsa;
    // The crate checks the signature with the OKP key and at_hash with
    // SHA-512, as it does for EdDSA.
    let claims = verified_id_token_signed(&app, &rp, &tokens, &started.nonce, eddsa.clone()).await;
    assert_eq!(claims["aud"], client_id.as_str());
    // A relying party that takes RS256 only (mod_auth_openidc's lot)
    // refuses it: the reason RS256 is the default.
    let id_token = tokens.id_token().expect("id_token");
    let rs256_only = rp.id_token_verifier().set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    assert!(id_token.claims(&rs256_only, &started.nonce).is_err());

    let refreshed = refresh(&rp, &http, tokens.refresh_token().expect("refresh_token")).await.expect("refreshed");
    let id_token = refreshed.id_token().expect("a refreshed id_token");
    let verifier = rp.id_token_verifier().set_allowed_algs([eddsa]);
    let claims = id_token.claims(&verifier, |_: Option<&openidconnect::Nonce>| Ok(())).expect("verifies");
    assert_eq!(claims.audiences()[0].as_str(), client_id);
}

async fn a_rotation_replaces_both_keys_and_old_eddsa_tokens_still_verify(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.create_app(json!({"name": "Fast", "id_token_alg": "EdDSA"})).await;
    app.create_user(MOBILE, PASSWORD).await;
    let old = app.login_ok(&client, MOBILE, PASSWORD).await["id_token"].as_str().expect("id_token").to_owned();
    let old_kid = jwt_header(&old)["kid"].clone();
    let (status, rotated) = app.admin(Method::POST, "/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["eddsa_kid"], old_kid);
    let jwks = app.jwks().await;
    assert_eq!(key_of(&jwks, &old_kid)["kty"], "OKP", "the retired key stays published: {jwks}");
    verify_with_jwks(&old, &jwks).expect("a token signed before the rotation still verifies");
    let new = app.login_ok(&client, MOBILE, PASSWORD).await["id_token"].as_str().expect("id_token").to_owned();
    let (header, _) = verify_with_jwks(&new, &jwks).expect("verifies");
    assert_eq!((&header["alg"], &header["kid"]), (&json!("EdDSA"), &rotated["eddsa_kid"]));
}

/// A rotation by a version that knows RSA keys only retires the Ed25519 key
/// and makes no other: the next reload of the keys (every 2 s) makes one,
/// and EdDSA tokens go on meanwhile, signed by the key in memory.
async fn an_algorithm_left_without_a_current_key_gets_one_at_the_next_reload(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.create_app(json!({"name": "Fast", "id_token_alg": "EdDSA"})).await;
    app.create_user(MOBILE, PASSWORD).await;
    let before = app.jwks().await["keys"][1]["kid"].clone();
    let retired =
        app.db.execute("UPDATE signing_keys SET retired_at = 1, publish_until = 9999999999 WHERE alg = 'EdDSA'");
    assert_eq!(retired.await.expect("retire"), 1);
    let token = app.login_ok(&client, MOBILE, PASSWORD).await["id_token"].as_str().expect("id_token").to_owned();
    assert_eq!(jwt_header(&token)["kid"], before, "signed by the key in memory");
    let started = std::time::Instant::now();
    let jwks = loop {
        let jwks = app.jwks().await;
        if jwks["keys"][1]["kid"] != before {
            break jwks;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(6), "no new Ed25519 key: {jwks}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(jwks["keys"][1]["kty"], "OKP", "{jwks}");
    assert_eq!(key_of(&jwks, &before)["kty"], "OKP", "the retired key stays published: {jwks}");
    verify_with_jwks(&token, &jwks).expect("the token signed before still verifies");
    let after = app.login_ok(&client, MOBILE, PASSWORD).await["id_token"].as_str().expect("id_token").to_owned();
    let (header, _) = verify_with_jwks(&after, &jwks).expect("verifies");
    assert_eq!(header["kid"], jwks["keys"][1]["kid"]);
    let current = "SELECT COUNT(*) FROM signing_keys WHERE alg = 'EdDSA' AND retired_at IS NULL";
    assert_eq!(app.db.count(current).await.expect("count"), 1);
}
