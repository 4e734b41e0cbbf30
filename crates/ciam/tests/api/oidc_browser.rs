//! The hosted login page in a real browser: a small web app (the relying
//! party) on its own loopback port signs its users in at ciam with the
//! code flow, its own state, nonce and PKCE S256, and Chromium goes through
//! it as a person does: the login page, a wrong password, single sign-on,
//! an expired password changed on the page, and a lock. Chromium applies
//! the page's `form-action` to the redirect after the post, which no HTTP
//! client checks: a sign-in that does not reach the app is a server bug.
//! With `CIAM_LOGIN_SCREENSHOTS=DIR` the pages are also saved there as
//! `<name>-<lang>-<width>.png`, at 1280 and 390 px wide (how `docs/login/`
//! is made).
//!
//! On SQLite only: the page flow is the same code on both stores, and the
//! store's parts of it (stored requests, codes, browser sessions, locks)
//! are tested on both in oidc.rs, oidc_refusals.rs and login.rs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, Redirect};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fantoccini::Client;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::chromium::{browser, browser_log, click, fill, find, resize, save_screenshot, text_of};
use crate::helpers::{Backend, PASSWORD, TestApp, verify_with_jwks};
use crate::oidc_helpers::{MOBILE, alice, issuer, no_redirects, spawn_oidc};

/// A password the policy takes, for the change form.
const NEW_PASSWORD: &str = "N3w-Passw0rd";

/// The relying party: what it knows of the provider and itself, and the
/// sign-ins it started (state → nonce and PKCE verifier).
#[derive(Debug, Clone)]
struct Rp {
    issuer: String,
    client_id: String,
    redirect_uri: String,
    http: reqwest::Client,
    started: Arc<Mutex<HashMap<String, (String, String)>>>,
}

/// 128 random bits as 32 hex characters.
fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Listens on a free loopback port, registers there as a public app (with
/// `password_expiry_check`) whose redirect URI is its own `/cb`, and
/// serves; returns its base URL.
pub(crate) async fn start_rp(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let redirect_uri = format!("{base}/cb");
    let client_id = app
        .create_app(json!({
            "name": "Shop", "client_type": "public", "redirect_uris": [redirect_uri], "password_expiry_check": true,
        }))
        .await;
    let rp = Rp { issuer: issuer(app), client_id, redirect_uri, http: no_redirects(), started: Arc::default() };
    let router = Router::new().route("/login", get(rp_login)).route("/cb", get(rp_callback)).with_state(rp);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    base
}

/// `/login[?prompt=…&ui_locales=…]`: sends the browser to ciam's
/// authorization endpoint with a new state, nonce and S256 challenge.
async fn rp_login(State(rp): State<Rp>, Query(query): Query<HashMap<String, String>>) -> Redirect {
    let (state, nonce, verifier) = (random(), random(), format!("{}{}", random(), random()));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    rp.started.lock().expect("the map").insert(state.clone(), (nonce.clone(), verifier));
    let mut url = Url::parse(&format!("{}/api/v1/oauth2/authorize", rp.issuer)).expect("a URL");
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", &rp.client_id),
        ("redirect_uri", &rp.redirect_uri),
        ("scope", "openid phone"),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    for name in ["prompt", "ui_locales"] {
        if let Some(value) = query.get(name) {
            url.query_pairs_mut().append_pair(name, value);
        }
    }
    Redirect::to(url.as_str())
}

/// `/cb`: a page that says who signed in, or what went wrong.
async fn rp_callback(State(rp): State<Rp>, Query(query): Query<HashMap<String, String>>) -> (StatusCode, Html<String>) {
    match rp.finish(&query).await {
        Ok(sub) => (StatusCode::OK, Html(format!(r#"<!doctype html><p id="signed-in">Signed in as {sub}</p>"#))),
        Err(why) => {
            let why = why.replace('&', "&amp;").replace('<', "&lt;");
            (StatusCode::BAD_REQUEST, Html(format!(r#"<!doctype html><p id="rp-error">{why}</p>"#)))
        }
    }
}

impl Rp {
    /// Checks the state and `iss`, exchanges the code with the verifier,
    /// verifies the id_token against the JWKS (signature, iss, aud, exp,
    /// nonce); returns its `sub`.
    async fn finish(&self, query: &HashMap<String, String>) -> Result<String, String> {
        if let Some(error) = query.get("error") {
            return Err(format!("refused: {error}: {:?}", query.get("error_description")));
        }
        let state = query.get("state").ok_or("no state")?;
        let started = self.started.lock().expect("the map").remove(state);
        let (nonce, verifier) = started.ok_or("a state this app never sent")?;
        if query.get("iss") != Some(&self.issuer) {
            return Err(format!("iss {:?}", query.get("iss")));
        }
        let code = query.get("code").ok_or("no code")?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("client_id", &self.client_id),
            ("code_verifier", &verifier),
        ];
        let tokens = self.call(self.http.post(format!("{}/api/v1/oauth2/token", self.issuer)).form(&form)).await?;
        let id_token = tokens["id_token"].as_str().ok_or(format!("no id_token: {tokens}"))?;
        let jwks = self.call(self.http.get(format!("{}/api/v1/oauth2/keys", self.issuer))).await?;
        let (_, claims) = verify_with_jwks(id_token, &jwks)?;
        let now = ciam_core::Clock::now(&ciam_core::SystemClock);
        let fresh = claims["exp"].as_i64().is_some_and(|exp| exp > now);
        let aud = claims["aud"] == self.client_id.as_str() || claims["aud"] == json!([self.client_id]);
        if claims["iss"] != self.issuer.as_str() || !aud || !fresh || claims["nonce"] != nonce.as_str() {
            return Err(format!("an id_token not for this sign-in: {claims}"));
        }
        claims["sub"].as_str().map(str::to_owned).ok_or(format!("no sub: {claims}"))
    }

    /// The JSON of a 200 answer.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let resp = request.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if status == StatusCode::OK { Ok(body) } else { Err(format!("{status}: {body}")) }
    }
}

// --- in the browser ---

/// Checks that the page fits each width (nothing to scroll sideways) and,
/// with `CIAM_LOGIN_SCREENSHOTS=DIR`, saves it as
/// `DIR/<name>-<lang>-<width>.png`.
pub(crate) async fn shots(browser: &Client, name: &str, lang: &str) {
    let folder = std::env::var_os("CIAM_LOGIN_SCREENSHOTS").map(PathBuf::from);
    for (width, height) in [(1280, 800), (390, 844)] {
        resize(browser, width, height).await;
        let script = "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];";
        let sizes = browser.execute(script, vec![]).await.expect("a script");
        assert!(sizes[0].as_u64() <= sizes[1].as_u64(), "{name}-{lang} is wider than {width} px: {sizes}");
        save_screenshot(browser, folder.as_deref(), &format!("{name}-{lang}-{width}.png")).await;
    }
    resize(browser, 1280, 1000).await;
}

/// Opens the app's `/login` with `query`.
pub(crate) async fn visit(browser: &Client, rp: &str, query: &str) {
    browser.goto(&format!("{rp}/login{query}")).await.expect("open the app");
}

/// Asserts ciam's login page in `lang` ("en" or "zh-CN").
async fn assert_login_page(browser: &Client, lang: &str, title: &str) {
    let html = find(browser, "html").await;
    assert_eq!(html.attr("lang").await.expect("lang").as_deref(), Some(lang));
    assert_eq!(text_of(browser, "main.login h1").await, title);
    let url = browser.current_url().await.expect("url");
    assert_eq!(url.path(), "/api/v1/oauth2/authorize", "the app sent the browser to ciam: {url}");
}

/// Fills the login form and posts it.
pub(crate) async fn sign_in(browser: &Client, mobile: &str, password: &str) {
    fill(browser, "input[name=mobile]", mobile).await;
    fill(browser, "input[name=password]", password).await;
    click(browser, "main.login form button[type=submit]").await;
}

/// The user the app's page says is signed in, once the browser is there
/// (on the app's `/cb`); with the browser's log when it is not.
pub(crate) async fn signed_in(browser: &Client, rp: &str) -> String {
    let text = text_of(browser, "#signed-in").await;
    let url = browser.current_url().await.expect("url").to_string();
    assert!(url.starts_with(&format!("{rp}/cb?")), "at {url}");
    text.strip_prefix("Signed in as ").expect("the app's words").to_owned()
}

/// Asserts the browser reported no Content-Security-Policy violation
/// since the last look.
pub(crate) async fn assert_no_csp_violation(browser: &Client) {
    let log = browser_log(browser).await;
    assert!(!log.iter().any(|line| line.starts_with("no log:") || line.starts_with("an odd log:")), "{log:?}");
    let violations: Vec<_> = log.iter().filter(|line| line.contains("Content Security Policy")).collect();
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_app_users_sign_in_on_the_hosted_page_in_chromium() {
    let app = spawn_oidc(Backend::Sqlite).await;
    let rp = start_rp(&app).await;
    let session = browser().await;
    let browser = &session.client;
    let user = alice(&app).await;

    signs_in_then_single_sign_on(browser, &rp, &user).await;
    signs_in_again_in_chinese(browser, &rp, &user).await;

    let body = json!({"max_age_days": 30});
    let (status, policy) = app.admin(Method::PUT, "/policies/password", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    for (lang, mobile) in [("en", "15200000001"), ("zh", "15200000002")] {
        let user = expired_user(&app, mobile).await;
        changes_an_expired_password(browser, &rp, lang, mobile, &user).await;
    }

    app.set_lockout(3, 1800).await;
    app.create_user("15200000003", PASSWORD).await;
    locked_after_three_failures(browser, &rp, "15200000003").await;
    signs_out_when_asked(browser, &rp, &issuer(&app)).await;
    session.close().await;
}

/// The login page, a wrong password, the right one, and the app's page;
/// then a second visit signs in without the page.
async fn signs_in_then_single_sign_on(browser: &Client, rp: &str, user: &str) {
    visit(browser, rp, "").await;
    assert_login_page(browser, "en", "Sign in").await;
    assert_eq!(text_of(browser, "main.login p.lead").await, "to continue to Shop");
    shots(browser, "login", "en").await;

    sign_in(browser, MOBILE, "Wrong-pass1").await;
    assert_eq!(text_of(browser, "main.login p.error").await, "Invalid account or password. Remaining times: 9");
    let mobile = find(browser, "input[name=mobile]").await.prop("value").await.expect("value");
    assert_eq!(mobile.as_deref(), Some(MOBILE), "what was typed is kept");
    shots(browser, "login-error", "en").await;

    // The redirect after the post reaches the app: the page's form-action
    // lets it through.
    sign_in(browser, MOBILE, PASSWORD).await;
    assert_eq!(signed_in(browser, rp).await, user);

    // Single sign-on: the app's next sign-in comes straight back.
    visit(browser, rp, "").await;
    assert_eq!(signed_in(browser, rp).await, user);
    assert_no_csp_violation(browser).await;
}

/// With `prompt=login` and `ui_locales=zh-CN`: the page again, in Chinese.
async fn signs_in_again_in_chinese(browser: &Client, rp: &str, user: &str) {
    visit(browser, rp, "?prompt=login&ui_locales=zh-CN").await;
    assert_login_page(browser, "zh-CN", "登录").await;
    shots(browser, "login", "zh").await;

    sign_in(browser, MOBILE, "Wrong-pass1").await;
    assert!(text_of(browser, "main.login p.error").await.starts_with("无效的账号或密码。 剩余次数:"));
    shots(browser, "login-error", "zh").await;

    sign_in(browser, MOBILE, PASSWORD).await;
    assert_eq!(signed_in(browser, rp).await, user);
    assert_no_csp_violation(browser).await;
}

/// A user whose password was last changed 60 days ago.
async fn expired_user(app: &TestApp, mobile: &str) -> String {
    let user = app.create_user(mobile, PASSWORD).await;
    let at = ciam_core::clock::to_rfc3339(ciam_core::Clock::now(&ciam_core::SystemClock) - 60 * 86_400);
    let body = json!({"password_changed_at": at});
    let (status, patched) = app.admin(Method::PATCH, &format!("/users/{user}"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    user
}

/// An expired password: the change form, then the app's page.
async fn changes_an_expired_password(browser: &Client, rp: &str, lang: &str, mobile: &str, user: &str) {
    let (locales, title) = match lang {
        "zh" => ("&ui_locales=zh-CN", "修改密码"),
        _ => ("", "Change your password"),
    };
    visit(browser, rp, &format!("?prompt=login{locales}")).await;
    sign_in(browser, mobile, PASSWORD).await;
    assert_eq!(text_of(browser, "main.login h1").await, title);
    assert!(!text_of(browser, "main.login .field small").await.is_empty(), "the policy's tip");
    shots(browser, "change", lang).await;

    fill(browser, "input[name=new_password]", NEW_PASSWORD).await;
    fill(browser, "input[name=new_password_confirm]", NEW_PASSWORD).await;
    click(browser, "main.login form button[type=submit]").await;
    assert_eq!(signed_in(browser, rp).await, user);
    assert_no_csp_violation(browser).await;
}

/// With `max_failures` 3: two wrong passwords count down, the third locks,
/// and the page says for how long in minutes and seconds, even to the
/// right password.
async fn locked_after_three_failures(browser: &Client, rp: &str, mobile: &str) {
    visit(browser, rp, "?prompt=login").await;
    let mut said = Vec::new();
    for password in ["Wrong-pass1", "Wrong-pass2", "Wrong-pass3", PASSWORD] {
        sign_in(browser, mobile, password).await;
        said.push(text_of(browser, "main.login p.error").await);
    }
    assert!(said[0].ends_with("Remaining times: 2"), "{said:?}");
    assert!(said[1].ends_with("Remaining times: 1"), "{said:?}");
    for lock in &said[2..] {
        let left =
            lock.strip_prefix("User has been locked out due to multiple login failures. It will be unlocked in ");
        let words: Vec<&str> = left.unwrap_or_else(|| panic!("{said:?}")).split(' ').collect();
        let [minutes, "minutes", "and", seconds, "seconds"] = words.as_slice() else { panic!("{said:?}") };
        let (minutes, seconds) = (minutes.parse::<u32>().expect("minutes"), seconds.parse::<u32>().expect("seconds"));
        assert!(minutes <= 30 && seconds < 60 && (minutes, seconds) != (0, 0), "{lock}");
    }
    assert_no_csp_violation(browser).await;
}

/// A logout without a hint asks first; confirmed, the browser session
/// ends, and the app's next sign-in shows the page again.
async fn signs_out_when_asked(browser: &Client, rp: &str, issuer: &str) {
    browser.goto(&format!("{issuer}/api/v1/logout")).await.expect("logout");
    assert_eq!(text_of(browser, "main.login h1").await, "Sign out?");
    click(browser, "main.login form button[type=submit]").await;
    assert_eq!(text_of(browser, "main.login h1").await, "You are signed out.");
    visit(browser, rp, "").await;
    assert_login_page(browser, "en", "Sign in").await;
    assert_no_csp_violation(browser).await;
}
