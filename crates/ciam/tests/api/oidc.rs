//! The OpenID Connect provider, judged by a relying party written by
//! others (the `openidconnect` crate) and a cookie-keeping browser that
//! fills the hosted login page: discovery, authorization code with PKCE,
//! tokens, userinfo, refresh rotation, and the refusals.

use openidconnect::core::CoreAuthPrompt;
use openidconnect::{Nonce, OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD};
use crate::oidc_helpers::{
    Browser, E164, MOBILE, RpHttp, alice, code_from, exchange, issuer, query, refresh, register, relying_party,
    spawn_oidc, start, token_error, token_raw, userinfo, userinfo_raw, verified_id_token,
};

crate::on_both_backends!(
    discovery_names_the_endpoints_of_the_spec,
    public_client_code_flow_with_pkce,
    confidential_client_code_flow_and_refresh_rotation,
    second_authorize_in_the_same_browser_is_single_sign_on,
    a_narrower_refresh_keeps_the_granted_scope,
);

async fn discovery_names_the_endpoints_of_the_spec(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let resp = app.client.get(app.url("/.well-known/openid-configuration")).send().await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["issuer"], iss.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/api/v1/oauth2/authorize"),
        ("token_endpoint", "/api/v1/oauth2/token"),
        ("userinfo_endpoint", "/api/v1/oauth2/userinfo"),
        ("revocation_endpoint", "/api/v1/oauth2/revoke"),
        ("end_session_endpoint", "/api/v1/logout"),
        ("jwks_uri", "/api/v1/oauth2/keys"),
    ] {
        assert_eq!(doc[field], format!("{iss}{path}"), "{field}: {doc}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]), "{doc}");
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]), "{doc}");
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256", "EdDSA"]), "{doc}");
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true, "{doc}");
    assert_eq!(doc["request_parameter_supported"], false, "{doc}");
    for scope in ["openid", "profile", "phone", "email", "offline_access"] {
        assert!(doc["scopes_supported"].as_array().expect("scopes").iter().any(|s| s == scope), "{doc}");
    }
    for method in ["client_secret_basic", "client_secret_post", "none"] {
        let methods = doc["token_endpoint_auth_methods_supported"].as_array().expect("auth methods");
        assert!(methods.iter().any(|m| m == method), "{doc}");
    }
    // The crate accepts it (and the JWKS it names).
    let (client_id, _) = register(&app, "public").await;
    relying_party(&app, &RpHttp::new(), &client_id, None).await;
}

async fn public_client_code_flow_with_pkce(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let (client_id, _) = register(&app, "public").await;
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &client_id, None).await;

    let started = start(&rp, &["phone", "profile"], None);
    let params = query(started.url.as_str());
    assert_eq!(params.get("code_challenge_method").map(String::as_str), Some("S256"));
    let mut browser = Browser::new(&app);
    let page = browser.get(started.url.as_str()).await;
    let form = page.login_page();
    assert!(page.body.contains("name=\"mobile\"") && page.body.contains("autocomplete=\"username\""), "{}", page.body);
    assert!(page.body.contains("autocomplete=\"current-password\""), "{}", page.body);
    let bind = browser.set_cookie.get("ciam_bind").expect("the page sets ciam_bind").to_ascii_lowercase();
    assert!(bind.contains("httponly") && bind.contains("samesite=lax") && bind.contains("path=/"), "{bind}");
    assert!(!bind.contains("secure"), "not Secure under an http issuer: {bind}");

    let origin = app.base.clone();
    let answer = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    let location = answer.see_other().to_owned();
    let sso = browser.set_cookie.get("ciam_sso").expect("login sets ciam_sso").to_ascii_lowercase();
    assert!(sso.contains("httponly") && sso.contains("samesite=lax") && sso.contains("path=/"), "{sso}");
    let code = code_from(&location, &started.state, &iss);

    // Public client: the crate sends client_id in the body, no secret.
    let tokens = exchange(&rp, &http, code, started.verifier).await.expect("tokens");
    // token_type is case-insensitive (RFC 6749 §5.1); the crate keeps the spelling.
    assert!(tokens.token_type().as_ref().eq_ignore_ascii_case("bearer"), "{:?}", tokens.token_type());
    assert!(tokens.expires_in().is_some_and(|d| d.as_secs() > 0));
    assert!(tokens.refresh_token().is_none(), "no refresh token without offline_access");
    let scopes: Vec<String> = tokens.scopes().expect("scope").iter().map(|s| s.to_string()).collect();
    for scope in ["openid", "phone", "profile"] {
        assert!(scopes.iter().any(|s| s == scope), "{scopes:?}");
    }
    let claims = verified_id_token(&app, &rp, &tokens, &started.nonce).await;
    assert_eq!(claims["sub"], user.as_str());

    let info = userinfo(&rp, &http, tokens.access_token(), &user).await;
    assert_eq!(info.subject().as_str(), user);
    assert_eq!(info.phone_number().map(|p| p.as_str()), Some(E164));
    let (status, _, raw) = userinfo_raw(&app, tokens.access_token().secret()).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(raw["sub"], user.as_str());
    assert_eq!(raw["phone_number"], E164);
    assert!(raw["phone_number_verified"].is_boolean(), "{raw}");
    assert_eq!(raw["name"], "Alice", "{raw}");
    assert_eq!(raw["preferred_username"], "alice", "{raw}");
    assert!(raw.get("email").is_none(), "no email scope asked: {raw}");
}

async fn confidential_client_code_flow_and_refresh_rotation(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let (client_id, secret) = register(&app, "confidential").await;
    let http = RpHttp::new();
    // A secret given: the crate authenticates with client_secret_basic.
    let rp = relying_party(&app, &http, &client_id, secret.as_deref()).await;

    let started = start(&rp, &["phone", "profile", "offline_access"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    let tokens = exchange(&rp, &http, code, started.verifier).await.expect("tokens");
    let claims = verified_id_token(&app, &rp, &tokens, &started.nonce).await;
    assert_eq!(claims["sub"], user.as_str());
    let info = userinfo(&rp, &http, tokens.access_token(), &user).await;
    assert_eq!(info.phone_number().map(|p| p.as_str()), Some(E164));

    // offline_access: a refresh token, rotated on each use.
    let first = tokens.refresh_token().expect("a refresh token with offline_access").clone();
    let refreshed = refresh(&rp, &http, &first).await.expect("refresh");
    let second = refreshed.refresh_token().expect("a new refresh token").clone();
    assert_ne!(first.secret(), second.secret());
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    let info = userinfo(&rp, &http, refreshed.access_token(), &user).await;
    assert_eq!(info.subject().as_str(), user);
    if let Some(id_token) = refreshed.id_token() {
        let claims = id_token.claims(&rp.id_token_verifier(), |_: Option<&Nonce>| Ok(())).expect("verifies");
        assert_eq!(claims.subject().as_str(), user);
    }

    // Reuse of a rotated token: refused, and the whole family dies.
    assert_eq!(token_error(refresh(&rp, &http, &first).await), "invalid_grant");
    assert_eq!(token_error(refresh(&rp, &http, &second).await), "invalid_grant");
}

async fn second_authorize_in_the_same_browser_is_single_sign_on(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let (client_id, _) = register(&app, "public").await;
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &client_id, None).await;
    let mut browser = Browser::new(&app);

    let first = start(&rp, &["phone"], None);
    let location = browser.sign_in(first.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &first.state, &iss);
    let tokens = exchange(&rp, &http, code, first.verifier).await.expect("tokens");
    let first_claims = verified_id_token(&app, &rp, &tokens, &first.nonce).await;
    assert!(browser.has_cookie("ciam_sso"));

    // The session answers at once, with a new code for the new request.
    let second = start(&rp, &["phone"], None);
    let answer = browser.get(second.url.as_str()).await;
    let code = code_from(answer.see_other(), &second.state, &iss);
    let tokens = exchange(&rp, &http, code, second.verifier).await.expect("tokens");
    let claims = verified_id_token(&app, &rp, &tokens, &second.nonce).await;
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["auth_time"], first_claims["auth_time"], "the same authentication");
    assert_ne!(claims["nonce"], first_claims["nonce"]);

    // prompt=none with a session: a code too.
    let silent = start(&rp, &["phone"], Some(CoreAuthPrompt::None));
    code_from(browser.get(silent.url.as_str()).await.see_other(), &silent.state, &iss);
    // prompt=login: the page again, whatever the session.
    let again = start(&rp, &["phone"], Some(CoreAuthPrompt::Login));
    browser.get(again.url.as_str()).await.login_page();
    // Another browser has no session.
    let other = start(&rp, &["phone"], None);
    Browser::new(&app).get(other.url.as_str()).await.login_page();
}

/// A refresh asking for less scope narrows its access token only: the new
/// refresh token keeps what was granted (RFC 6749 §6).
async fn a_narrower_refresh_keeps_the_granted_scope(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let user = alice(&app).await;
    let (client_id, secret) = register(&app, "confidential").await;
    let (http, secret) = (RpHttp::new(), secret.expect("secret"));
    let rp = relying_party(&app, &http, &client_id, Some(&secret)).await;
    let started = start(&rp, &["phone", "offline_access"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let tokens = exchange(&rp, &http, code_from(&location, &started.state, &issuer(&app)), started.verifier).await;
    let first = tokens.expect("tokens").refresh_token().expect("refresh token").secret().clone();
    let ask = |token: String, scope: &'static str| {
        let (app, client_id, secret) = (&app, client_id.clone(), secret.clone());
        async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str()), ("scope", scope)];
            token_raw(app, Some((&client_id, &secret)), &form).await
        }
    };
    let (status, _, narrow) = ask(first, "openid").await;
    assert_eq!((status, narrow["scope"].as_str()), (StatusCode::OK, Some("openid")), "{narrow}");
    let (status, _, info) = userinfo_raw(&app, narrow["access_token"].as_str().expect("access_token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((info["sub"].as_str(), info.get("phone_number")), (Some(user.as_str()), None), "{info}");
    let next = narrow["refresh_token"].as_str().expect("a new refresh token").to_owned();
    let (status, _, wide) = ask(next, "openid phone").await;
    assert_eq!((status, wide["scope"].as_str()), (StatusCode::OK, Some("openid phone")), "{wide}");
    let (status, _, wider) = ask(wide["refresh_token"].as_str().expect("refresh").to_owned(), "openid email").await;
    assert_eq!((status, wider["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")), "{wider}");
}
