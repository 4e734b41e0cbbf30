//! The OpenID Connect provider's refusals, each on its own: a wrong
//! secret or verifier, a code used twice, a challenge missing or `plain`,
//! an unregistered redirect URI, a login form from another browser or
//! site, `prompt=none` with no one signed in.

use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow};
use openidconnect::{CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD};
use crate::oidc_helpers::{
    Browser, LoginForm, MOBILE, REDIRECT, RpHttp, alice, assert_error_redirect, code_from, exchange, issuer, register,
    relying_party, spawn_oidc, start, token_error, token_raw, userinfo_raw, verified_id_token,
};

crate::on_both_backends!(
    wrong_client_secret_is_invalid_client,
    client_secret_post_with_the_right_secret_gets_tokens,
    a_new_secret_retires_the_old_one,
    code_used_twice_is_refused_and_revokes_its_tokens,
    wrong_code_verifier_is_invalid_grant,
    public_client_needs_an_s256_challenge,
    unregistered_redirect_uri_gets_a_page_not_a_redirect,
    login_form_refusals_count_no_attempt,
    prompt_none_without_a_session_is_login_required,
);

async fn wrong_client_secret_is_invalid_client(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    alice(&app).await;
    let (client_id, secret) = register(&app, "confidential").await;
    let secret = secret.expect("secret");
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &client_id, Some(&secret)).await;
    let started = start(&rp, &["phone"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    let verifier = started.verifier.secret().clone();
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.secret().as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let wrong = format!("{}x", &secret[..42]);

    // client_secret_basic with a wrong secret
    let (status, challenge, body) = token_raw(&app, Some((&client_id, &wrong)), &grant).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(challenge.is_some_and(|c| c.to_ascii_lowercase().starts_with("basic")), "{body}");
    // client_secret_post with a wrong secret
    let mut post = grant.to_vec();
    post.extend([("client_id", client_id.as_str()), ("client_secret", wrong.as_str())]);
    let (status, _, body) = token_raw(&app, None, &post).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    // a confidential client with no secret at all
    let mut bare = grant.to_vec();
    bare.push(("client_id", client_id.as_str()));
    let (status, _, body) = token_raw(&app, None, &bare).await;
    assert!(matches!(status.as_u16(), 400 | 401), "{status} {body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    // and through the crate
    let liar = relying_party(&app, &http, &client_id, Some(&wrong)).await;
    let refused = exchange(&liar, &http, code.clone(), PkceCodeVerifier::new(verifier.clone())).await;
    assert_eq!(token_error(refused), "invalid_client");
}

/// The right secret, as client_secret_post, gets the tokens.
async fn client_secret_post_with_the_right_secret_gets_tokens(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    alice(&app).await;
    let (client_id, secret) = register(&app, "confidential").await;
    let secret = secret.expect("secret");
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &client_id, Some(&secret)).await;
    let started = start(&rp, &["phone"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    let right = [
        ("grant_type", "authorization_code"),
        ("code", code.secret().as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", started.verifier.secret().as_str()),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let (status, _, body) = token_raw(&app, None, &right).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["id_token"].is_string(), "{body}");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");
    assert!(body.get("refresh_token").is_none(), "no offline_access asked: {body}");
}

async fn a_new_secret_retires_the_old_one(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let (client_id, old) = register(&app, "confidential").await;
    let old = old.expect("secret");
    let (status, body) = app.admin(Method::POST, &format!("/apps/{client_id}/secret"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["client_secret"].as_str().expect("client_secret").to_owned();
    assert_eq!(new.len(), 43, "{body}");
    assert_ne!(new, old);

    let http = RpHttp::new();
    let stale = relying_party(&app, &http, &client_id, Some(&old)).await;
    let started = start(&stale, &["phone"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    assert_eq!(token_error(exchange(&stale, &http, code, started.verifier).await), "invalid_client");

    let fresh = relying_party(&app, &http, &client_id, Some(&new)).await;
    let started = start(&fresh, &["phone"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    let tokens = exchange(&fresh, &http, code, started.verifier).await.expect("tokens with the new secret");
    let claims = verified_id_token(&app, &fresh, &tokens, &started.nonce).await;
    assert_eq!(claims["sub"], user.as_str());

    // A public app has no secret to renew.
    let (public, _) = register(&app, "public").await;
    let (status, body) = app.admin(Method::POST, &format!("/apps/{public}/secret"), None).await;
    assert!(matches!(status.as_u16(), 409 | 422), "{status} {body}");
}

async fn code_used_twice_is_refused_and_revokes_its_tokens(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let user = alice(&app).await;
    let (client_id, _) = register(&app, "public").await;
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &client_id, None).await;
    let started = start(&rp, &["phone"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    let verifier = started.verifier.secret().clone();

    let tokens = exchange(&rp, &http, code.clone(), started.verifier).await.expect("tokens");
    let access = tokens.access_token().secret().clone();
    let (status, _, body) = userinfo_raw(&app, &access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], user.as_str());

    let again = exchange(&rp, &http, code, PkceCodeVerifier::new(verifier)).await;
    assert_eq!(token_error(again), "invalid_grant");
    // RFC 6749 §4.1.2: the tokens issued from that code are revoked.
    let (status, challenge, body) = userinfo_raw(&app, &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let challenge = challenge.expect("WWW-Authenticate");
    assert!(challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""), "{challenge}");
}

async fn wrong_code_verifier_is_invalid_grant(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    alice(&app).await;
    let (client_id, _) = register(&app, "public").await;
    let http = RpHttp::new();
    let rp = relying_party(&app, &http, &client_id, None).await;
    let started = start(&rp, &["phone"], None);
    let location = Browser::new(&app).sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    let (_, other) = PkceCodeChallenge::new_random_sha256();
    assert_ne!(other.secret(), started.verifier.secret());
    assert_eq!(token_error(exchange(&rp, &http, code, other).await), "invalid_grant");
    // and no verifier at all
    let started = start(&rp, &["phone"], None);
    let mut browser = Browser::new(&app);
    let location = browser.sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
    let code = code_from(&location, &started.state, &iss);
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.secret().as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id.as_str()),
    ];
    let (status, _, body) = token_raw(&app, None, &grant).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(matches!(body["error"].as_str(), Some("invalid_grant" | "invalid_request")), "{body}");
}

async fn public_client_needs_an_s256_challenge(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    let (client_id, _) = register(&app, "public").await;
    let rp = relying_party(&app, &RpHttp::new(), &client_id, None).await;

    // No code_challenge at all.
    let (url, state, _) =
        rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    assert!(!url.as_str().contains("code_challenge"));
    let location = Browser::new(&app).get(url.as_str()).await.see_other().to_owned();
    assert_error_redirect(&location, "invalid_request", state.secret(), &iss);

    // code_challenge_method=plain
    let (url, state, _) =
        rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let mut plain = url.clone();
    let verifier = PkceCodeChallenge::new_random_sha256().1;
    plain
        .query_pairs_mut()
        .append_pair("code_challenge", verifier.secret())
        .append_pair("code_challenge_method", "plain");
    let location = Browser::new(&app).get(plain.as_str()).await.see_other().to_owned();
    assert_error_redirect(&location, "invalid_request", state.secret(), &iss);

    // With S256 the same client gets the page.
    let started = start(&rp, &[], None);
    Browser::new(&app).get(started.url.as_str()).await.login_page();
}

async fn unregistered_redirect_uri_gets_a_page_not_a_redirect(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let (client_id, _) = register(&app, "public").await;
    let rp = relying_party(&app, &RpHttp::new(), &client_id, None).await;
    let started = start(&rp, &["phone"], None);

    let with = |name: &str, value: &str| {
        let mut url = started.url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .map(|(n, v)| if n == name { (n, value.to_owned()) } else { (n, v) })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url
    };
    let refused = [
        with("redirect_uri", "http://127.0.0.1:8765/other"),
        with("redirect_uri", "https://evil.example/cb"),
        with("redirect_uri", "http://127.0.0.1.evil.example:8765/cb"),
        with("client_id", "nTo1eRIub60vPb54WeE6aojPwYwImtl4"),
    ];
    for url in refused {
        let answer = Browser::new(&app).get(url.as_str()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{url}: {}", answer.body);
        assert_eq!(answer.location, None, "{url}");
        assert!(answer.content_type.as_deref().is_some_and(|t| t.starts_with("text/html")), "{url}");
    }
    // A disabled app is refused the same way.
    let (status, body) = app.admin(Method::PATCH, &format!("/apps/{client_id}"), Some(json!({"enabled": false}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = Browser::new(&app).get(started.url.as_str()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.location, None);
    let (status, body) = app.admin(Method::PATCH, &format!("/apps/{client_id}"), Some(json!({"enabled": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The registered loopback URI on another port is the same URI.
    Browser::new(&app).get(with("redirect_uri", "http://127.0.0.1:9123/cb").as_str()).await.login_page();
    Browser::new(&app).get(started.url.as_str()).await.login_page();
}

async fn login_form_refusals_count_no_attempt(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    alice(&app).await;
    app.create_user("15200000001", PASSWORD).await;
    app.set_lockout(3, 600).await;
    let (client_id, _) = register(&app, "public").await;
    let rp = relying_party(&app, &RpHttp::new(), &client_id, None).await;
    let origin = app.base.clone();
    // What the SDK says after a first failure, to compare with the page.
    let sdk_app = app.default_app().await;
    let (status, first_failure) = app.login(&sdk_app, "15200000001", "Wrong-pass1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{first_failure}");
    let first_failure = first_failure["error_msg"].as_str().expect("error_msg").to_owned();

    let started = start(&rp, &["phone"], None);
    let mut browser = Browser::new(&app);
    let form = browser.get(started.url.as_str()).await.login_page();
    assert!(browser.has_cookie("ciam_bind"));

    // Each refusal carries a wrong password: three counted would lock.
    let mut refusals = Vec::new();
    // no cookie
    let mut cookieless = Browser::new(&app);
    refusals.push(cookieless.post_login(&form, MOBILE, "Wrong-pass1", Some(&origin)).await);
    // another browser's cookie
    let mut other = Browser::new(&app);
    other.get(start(&rp, &["phone"], None).url.as_str()).await.login_page();
    refusals.push(other.post_login(&form, MOBILE, "Wrong-pass1", Some(&origin)).await);
    // a wrong csrf
    let forged = LoginForm { csrf: format!("{}x", form.csrf), ..form.clone() };
    refusals.push(browser.post_login(&forged, MOBILE, "Wrong-pass1", Some(&origin)).await);
    // another origin
    refusals.push(browser.post_login(&form, MOBILE, "Wrong-pass1", Some("https://evil.example")).await);
    for refused in &refusals {
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert_eq!(refused.location, None);
    }
    assert!(!browser.has_cookie("ciam_sso"));

    // A wrong password through the page: the full count less one.
    let form = browser.get(started.url.as_str()).await.login_page();
    let wrong = browser.post_login(&form, MOBILE, "Wrong-pass1", Some(&origin)).await;
    assert_ne!(wrong.status, StatusCode::SEE_OTHER, "{:?}", wrong.location);
    assert!(wrong.body.contains(&first_failure), "want {first_failure:?} in {}", wrong.body);
    // The page offers the form again; the right password now signs in.
    let form = wrong.form();
    let answer = browser.post_login(&form, MOBILE, PASSWORD, Some(&origin)).await;
    code_from(answer.see_other(), &started.state, &iss);
    assert!(browser.has_cookie("ciam_sso"));
    // Without an Origin header at all, the form is accepted too.
    let started = start(&rp, &["phone"], Some(CoreAuthPrompt::Login));
    let form = browser.get(started.url.as_str()).await.login_page();
    let answer = browser.post_login(&form, MOBILE, PASSWORD, None).await;
    code_from(answer.see_other(), &started.state, &iss);
}

async fn prompt_none_without_a_session_is_login_required(backend: Backend) {
    let app = spawn_oidc(backend).await;
    let iss = issuer(&app);
    alice(&app).await;
    let (client_id, _) = register(&app, "public").await;
    let rp = relying_party(&app, &RpHttp::new(), &client_id, None).await;
    let started = start(&rp, &["phone"], Some(CoreAuthPrompt::None));
    let mut browser = Browser::new(&app);
    let answer = browser.get(started.url.as_str()).await;
    assert_error_redirect(answer.see_other(), "login_required", started.state.secret(), &iss);
    assert!(!browser.has_cookie("ciam_sso"));
    // A made-up session cookie is no session either.
    let mut forged = Browser::new(&app);
    forged.put_cookie("ciam_sso", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let started = start(&rp, &["phone"], Some(CoreAuthPrompt::None));
    let answer = forged.get(started.url.as_str()).await;
    assert_error_redirect(answer.see_other(), "login_required", started.state.secret(), &iss);
}
