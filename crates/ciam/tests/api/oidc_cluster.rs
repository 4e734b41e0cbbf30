//! One login spread over three instances on one PostgreSQL database
//! (docs/oidc.md §9): authorize on one, the page's post on another, the
//! token exchange on a third; and a code redeemed on two at once.

use std::sync::Arc;

use openidconnect::core::CoreAuthPrompt;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::oidc_helpers::{
    Browser, MOBILE, REDIRECT, RpHttp, alice, code_from, issuer, spawn_oidc, start, token_raw, userinfo_raw,
};
use crate::oidc_sessions::client;

/// Another instance on `a`'s database, with `a`'s issuer.
async fn another(a: &TestApp) -> TestApp {
    let mut config = a.config.clone();
    config.listen = "127.0.0.1:0".into();
    TestApp::start(config, Arc::clone(&a.db)).await
}

/// The code grant of a public client, as a form.
fn code_grant<'a>(client_id: &'a str, code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 5] {
    let grant = ("grant_type", "authorization_code");
    [grant, ("code", code), ("redirect_uri", REDIRECT), ("code_verifier", verifier), ("client_id", client_id)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_spread_over_three_instances() {
    let a = spawn_oidc(Backend::Postgres).await;
    let (b, c) = (another(&a).await, another(&a).await);
    let iss = issuer(&a);
    let user = alice(&a).await;
    let http = RpHttp::new();
    let rp = client(&a, &http, json!({})).await;
    let client_id = rp.client_id().as_str();

    let started = start(&rp, &["phone", "offline_access"], None);
    let mut browser = Browser::new(&a);
    let form = browser.get(started.url.as_str()).await.login_page();
    browser.set_base(&b.base);
    let answer = browser.post_login(&form, MOBILE, PASSWORD, Some(&iss)).await;
    let code = code_from(answer.see_other(), &started.state, &iss);
    let grant = code_grant(client_id, code.secret(), started.verifier.secret());
    let (status, _, tokens) = token_raw(&c, None, &grant).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let (_, claims) = crate::helpers::verify_with_jwks(id_token, &a.jwks().await).expect("A's keys verify C's token");
    assert_eq!((&claims["iss"], &claims["sub"]), (&json!(iss), &json!(user)), "{claims}");

    let refresh_token = tokens["refresh_token"].as_str().expect("refresh_token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
    let (status, _, refreshed) = token_raw(&a, None, &form).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, _, info) = userinfo_raw(&b, refreshed["access_token"].as_str().expect("access_token")).await;
    assert_eq!((status, info["sub"].as_str()), (StatusCode::OK, Some(user.as_str())), "{info}");
    // The session made on B answers on C.
    let silent = start(&rp, &["phone"], Some(CoreAuthPrompt::None));
    let on_c = silent.url.as_str().replace(&iss, &c.base);
    code_from(browser.get(&on_c).await.see_other(), &silent.state, &iss);
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_redeemed_on_two_instances_at_once_gives_tokens_once() {
    let a = spawn_oidc(Backend::Postgres).await;
    let (b, c) = (another(&a).await, another(&a).await);
    alice(&a).await;
    let http = RpHttp::new();
    let rp = client(&a, &http, json!({})).await;
    let client_id = rp.client_id().as_str();
    let mut browser = Browser::new(&a);
    let mut winners = Vec::new();
    for round in 0..5 {
        let started = start(&rp, &["phone"], Some(CoreAuthPrompt::Login));
        let location = browser.sign_in(started.url.as_str(), MOBILE, PASSWORD).await;
        let code = code_from(&location, &started.state, &issuer(&a));
        let grant = code_grant(client_id, code.secret(), started.verifier.secret());
        let (on_b, on_c) = tokio::join!(token_raw(&b, None, &grant), token_raw(&c, None, &grant));
        let answers = [on_b, on_c];
        let (won, lost): (Vec<_>, Vec<_>) = answers.iter().partition(|(status, _, _)| *status == StatusCode::OK);
        // At most one gets tokens; when the two meet mid-exchange, the
        // first sees the replay too and refuses as well.
        assert!(won.len() <= 1 && !lost.is_empty(), "round {round}: {answers:?}");
        for refused in &lost {
            assert_eq!((refused.0, refused.2["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
        }
        winners.extend(won.iter().map(|w| w.2["access_token"].as_str().expect("access_token").to_owned()));
    }
    // The second redemption revokes what the first issued (docs §6,
    // RFC 6749 §4.1.2), whichever instance answered first.
    for (round, access_token) in winners.iter().enumerate() {
        let (status, _, body) = userinfo_raw(&a, access_token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "round {round}: the replayed code's token lives: {body}");
    }
    b.stop().await;
    c.stop().await;
}
