//! The admin console in a real browser: headless Chromium through
//! WebDriver (Debian's `chromium` and `chromium-driver`), as an operator
//! uses it. With `CIAM_CONSOLE_SCREENSHOTS=DIR` each page is also saved
//! there at 1280 and 390 px wide (how `docs/console/` is made).

use std::path::PathBuf;

use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::chromium::{browser, click, fill, find, path, resize, save_screenshot, text_of};
use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, TestApp, assert_error};

/// Saves what the browser shows of `name`, at both widths.
async fn screenshots(browser: &Client, name: &str) {
    let Some(folder) = std::env::var_os("CIAM_CONSOLE_SCREENSHOTS").map(PathBuf::from) else {
        return save_screenshot(browser, None, name).await;
    };
    for (width, height) in [(1280, 1100), (390, 1500)] {
        resize(browser, width, height).await;
        save_screenshot(browser, Some(&folder), &format!("{name}-{width}.png")).await;
    }
    browser.set_window_size(1280, 1000).await.expect("resize");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_locked_user_in_the_browser_and_unlocks_them() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let session = browser().await;
    let browser = &session.client;
    let console = app.url("/console/");

    // Closed until signed in; a wrong token is refused.
    browser.goto(&console).await.expect("open");
    assert_eq!(path(browser).await, "/console/sign-in");
    screenshots(browser, "sign-in").await;
    fill(browser, "input[name=token]", "not-the-token-at-all-0123456789").await;
    click(browser, "form button[type=submit]").await;
    assert!(text_of(browser, "p.error").await.contains("not the admin token"));
    fill(browser, "input[name=token]", ADMIN_TOKEN).await;
    click(browser, "form button[type=submit]").await;
    assert_eq!(path(browser).await, "/console/");

    let client_id = a_confidential_app_is_made_in_the_browser(&app, browser).await;
    browser.goto(&app.url("/console/apps")).await.expect("apps");
    assert!(text_of(browser, "#apps tbody").await.contains("Shop"));
    screenshots(browser, "apps").await;

    // A user, created in the console; a password against the policy is
    // refused next to its field.
    browser.goto(&app.url("/console/users")).await.expect("users");
    fill(browser, "#new-user input[name=mobile]", "+86 152 0000 0001").await;
    fill(browser, "#new-user input[name=password]", "short").await;
    click(browser, "#new-user button[type=submit]").await;
    assert!(!text_of(browser, "#new-user small.error").await.is_empty());
    fill(browser, "#new-user input[name=password]", PASSWORD).await;
    fill(browser, "#new-user input[name=user_name]", "alice").await;
    click(browser, "#new-user button[type=submit]").await;
    assert!(path(browser).await.starts_with("/console/users/"));
    let user_page = path(browser).await;
    assert!(text_of(browser, "h1").await.contains("+8615200000001"));

    // Assigned to the app by mobile, in any spelling; both pages show it.
    browser.goto(&app.url(&format!("/console/apps/{client_id}"))).await.expect("app");
    fill(browser, "#members input[name=mobile]", "152 0000 0001").await;
    click(browser, "#members form:not(.inline) button[type=submit]").await;
    assert!(text_of(browser, "#members ul").await.contains("+8615200000001"));
    browser.goto(&app.url(&user_page)).await.expect("user");
    assert!(text_of(browser, "#memberships").await.contains(&client_id));

    // Ten failed logins over the SDK lock the account.
    for _ in 0..10 {
        app.login(&client_id, "15200000001", "Wrong-pass1").await;
    }
    assert_error(&app.login(&client_id, "15200000001", PASSWORD).await, 400, "IDAAS.SDK.LOGIN.0001", None);

    // The Users page finds them in another spelling; their page says locked.
    browser.goto(&app.url("/console/users?mobile=152-0000-0001")).await.expect("search");
    assert_eq!(text_of(browser, "#users tbody .locked").await, "Locked");
    screenshots(browser, "users").await;
    click(browser, "#users tbody a").await;
    assert!(text_of(browser, "#locked-until").await.contains("Locked until"));
    screenshots(browser, "user").await;

    // The overview draws the failures and lists the lock.
    browser.goto(&console).await.expect("overview");
    let wrong = browser.find(Locator::Css("li[data-outcome=wrong]")).await.expect("legend");
    assert_eq!(wrong.attr("data-total").await.expect("attr").as_deref(), Some("9"));
    let locked = browser.find(Locator::Css("li[data-outcome=locked]")).await.expect("legend");
    assert_eq!(locked.attr("data-total").await.expect("attr").as_deref(), Some("2"));
    assert!(!browser.find_all(Locator::Css("svg rect[data-outcome=wrong]")).await.expect("bars").is_empty());
    assert!(text_of(browser, "#locked").await.contains("+8615200000001"));
    screenshots(browser, "overview").await;

    // Unlocked from the console, the user logs in over the SDK again.
    browser.goto(&app.url(&user_page)).await.expect("user");
    click(browser, "#lock form[action$=\"/unlock\"] button").await;
    assert!(text_of(browser, "p.notice").await.contains("Unlocked"));
    app.login_ok(&client_id, "15200000001", PASSWORD).await;

    // A policy changed in the console is what the API returns.
    browser.goto(&app.url("/console/policies")).await.expect("policies");
    fill(browser, "#lockout-policy input[name=max_failures]", "0").await;
    click(browser, "#lockout-policy button[type=submit]").await;
    assert!(!text_of(browser, "#lockout-policy small.error").await.is_empty(), "refused next to the field");
    fill(browser, "#lockout-policy input[name=max_failures]", "7").await;
    click(browser, "#lockout-policy button[type=submit]").await;
    let (status, lockout) = app.admin(Method::GET, "/policies/lockout", None).await;
    assert_eq!((status, lockout["max_failures"].as_u64()), (StatusCode::OK, Some(7)), "{lockout}");
    screenshots(browser, "policies").await;

    browser.goto(&app.url("/console/audit?mobile=15200000001")).await.expect("audit");
    assert!(browser.find_all(Locator::Css("table.events tbody tr")).await.expect("rows").len() >= 12);
    screenshots(browser, "audit").await;

    // An app is deleted only once confirmed.
    browser.goto(&app.url(&format!("/console/apps/{client_id}"))).await.expect("app");
    click(browser, "a.danger").await;
    assert!(text_of(browser, "#confirm-delete").await.contains(&client_id));
    let (status, _) = app.admin(Method::GET, &format!("/apps/{client_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "not yet");
    click(browser, "#confirm-delete button.danger").await;
    assert!(text_of(browser, "p.notice").await.contains("Deleted"));
    let (status, _) = app.admin(Method::GET, &format!("/apps/{client_id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // In Chinese, remembered.
    click(browser, "a.lang").await;
    assert_eq!(text_of(browser, "h1").await, "应用");
    browser.goto(&console).await.expect("overview");
    assert_eq!(text_of(browser, "h1").await, "概览");
    screenshots(browser, "overview-zh").await;
    click(browser, "a.lang").await;

    // Signed out, the pages are closed again.
    click(browser, "header form button").await;
    assert_eq!(path(browser).await, "/console/sign-in");
    browser.goto(&app.url("/console/users")).await.expect("users");
    assert_eq!(path(browser).await, "/console/sign-in");
    session.close().await;
}

/// An app created in the console as a confidential OpenID Connect client
/// with EdDSA id_tokens:
/// a URI the domain refuses is refused next to its field, what was typed
/// kept; then its client id and its secret are on the page, the secret
/// once. Its New secret button replaces the secret. Returns its client id.
async fn a_confidential_app_is_made_in_the_browser(app: &TestApp, browser: &Client) -> String {
    browser.goto(&app.url("/console/apps")).await.expect("apps");
    fill(browser, "#new-app input[name=name]", "Shop").await;
    find(browser, "#new-app select[name=client_type]")
        .await
        .select_by(Locator::Css("option[value=confidential]"))
        .await
        .expect("choose");
    find(browser, "#new-app select[name=id_token_alg]")
        .await
        .select_by(Locator::Css("option[value=EdDSA]"))
        .await
        .expect("choose");
    fill(browser, "#new-app textarea[name=redirect_uris]", "https://shop.example/cb\nhttp://shop.example/cb").await;
    fill(browser, "#new-app textarea[name=post_logout_redirect_uris]", "https://shop.example/").await;
    click(browser, "#new-app button[type=submit]").await;
    let refused = text_of(browser, "#new-app textarea[name=redirect_uris][aria-invalid=true] ~ small.error").await;
    assert!(refused.starts_with("http://shop.example/cb: must be https"), "{refused}");
    let typed = find(browser, "#new-app textarea[name=redirect_uris]").await.prop("value").await.expect("value");
    assert_eq!(typed.as_deref(), Some("https://shop.example/cb\nhttp://shop.example/cb"), "what was typed is kept");
    fill(browser, "#new-app textarea[name=redirect_uris]", "https://shop.example/cb\nhttp://127.0.0.1/cb").await;
    click(browser, "#new-app button[type=submit]").await;

    let client_id = text_of(browser, "#client-id").await;
    assert_eq!(client_id.len(), 32, "{client_id}");
    assert!(text_of(browser, "p.notice").await.contains("client id"));
    let secret = text_of(browser, "#client-secret").await;
    assert_eq!(secret.len(), 43, "{secret}");
    assert!(text_of(browser, "#new-secret").await.contains("will not be shown again"));
    screenshots(browser, "app").await;
    let (_, shop) = app.admin(Method::GET, &format!("/apps/{client_id}"), None).await;
    assert_eq!(shop["client_type"], "confidential", "{shop}");
    assert_eq!(shop["id_token_alg"], "EdDSA", "kept through the refused post: {shop}");
    assert_eq!(shop["redirect_uris"], json!(["https://shop.example/cb", "http://127.0.0.1/cb"]), "{shop}");
    assert_eq!(shop["post_logout_redirect_uris"], json!(["https://shop.example/"]), "{shop}");
    assert_eq!(revoke(app, &client_id, &secret).await, (StatusCode::OK, String::new()));

    // Reloaded, the page is the app's and shows no secret: nothing was
    // posted again.
    browser.refresh().await.expect("reload");
    assert_eq!(path(browser).await, format!("/console/apps/{client_id}"));
    assert!(text_of(browser, "#redirect-uris").await.contains("http://127.0.0.1/cb"));
    assert!(browser.find_all(Locator::Css("#client-secret")).await.expect("none").is_empty(), "shown once");
    let (_, apps) = app.admin(Method::GET, "/apps", None).await;
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "{apps}");

    // A new secret, shown once; the old one stops working.
    click(browser, "#client form[action$=\"/secret\"] button").await;
    let new = text_of(browser, "#client-secret").await;
    assert!(new.len() == 43 && new != secret, "{new}");
    assert!(text_of(browser, "#new-secret").await.contains("the old one no longer works"));
    // Its language switch leads to the app's page, which shows no secret.
    click(browser, "a.lang").await;
    assert_eq!(path(browser).await, format!("/console/apps/{client_id}"));
    assert_eq!(text_of(browser, "#client-type").await, "机密客户端");
    assert!(browser.find_all(Locator::Css("#client-secret")).await.expect("none").is_empty());
    click(browser, "a.lang").await;
    assert_eq!(revoke(app, &client_id, &secret).await, (StatusCode::UNAUTHORIZED, "invalid_client".into()));
    assert_eq!(revoke(app, &client_id, &new).await, (StatusCode::OK, String::new()));
    client_id
}

/// Revokes a token that is none with `client_secret_post`: the status and
/// the OAuth error, if any.
async fn revoke(app: &TestApp, client_id: &str, secret: &str) -> (StatusCode, String) {
    let form = [("token", "not-a-token"), ("client_id", client_id), ("client_secret", secret)];
    let resp = app.client.post(app.url("/api/v1/oauth2/revoke")).form(&form).send().await.expect("revoke");
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

/// Signs in over plain HTTP; returns the session cookie and a page's form
/// token.
pub(crate) async fn signed_in(app: &TestApp) -> (String, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = http.post(app.url("/console/sign-in")).form(&[("token", ADMIN_TOKEN)]).send().await.expect("sign in");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/console"));
    let session = cookie.split(';').next().expect("pair").to_owned();
    let page = http.get(app.url("/console/policies")).header("cookie", &session).send().await.expect("page");
    let html = page.text().await.expect("html");
    let csrf = html.split(r#"name="csrf" value=""#).nth(1).and_then(|rest| rest.split('"').next()).expect("csrf");
    (session, csrf.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_forms_need_their_token_and_pages_are_locked_down() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let (session, csrf) = signed_in(&app).await;

    // A post without the form's token (what a forged cross-site form
    // sends) changes nothing.
    let forged = http
        .post(app.url("/console/policies/lockout"))
        .header("cookie", &session)
        .form(&[("max_failures", "3"), ("lock_seconds", "60")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = http
        .post(app.url("/console/policies/lockout"))
        .header("cookie", &session)
        .form(&[("max_failures", "3"), ("csrf", "0".repeat(64).as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let (_, lockout) = app.admin(Method::GET, "/policies/lockout", None).await;
    assert_eq!(lockout["max_failures"], 10, "unchanged");
    let real = http
        .post(app.url("/console/policies/lockout"))
        .header("cookie", &session)
        .form(&[("max_failures", "3"), ("lock_seconds", "60"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(real.status(), StatusCode::SEE_OTHER);
    let (_, lockout) = app.admin(Method::GET, "/policies/lockout", None).await;
    assert_eq!(lockout["max_failures"], 3);

    // Every page: a strict CSP, no framing, no caching.
    let page = http.get(app.url("/console/")).header("cookie", &session).send().await.expect("page");
    let headers = page.headers();
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    for part in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    // Nothing in a page comes from elsewhere.
    let html = page.text().await.expect("html");
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");

    // The headers hold for answers no page handler made, too.
    for (method, path) in [(Method::GET, "/console/nothing-here"), (Method::GET, "/console/sign-out")] {
        let resp = http.request(method, app.url(path)).header("cookie", &session).send().await.expect("answer");
        assert!(resp.status().is_client_error(), "{path}: {}", resp.status());
        assert_eq!(resp.headers()["x-frame-options"], "DENY", "{path}");
        assert!(resp.headers().contains_key("content-security-policy"), "{path}");
    }
    let missing = http.get(app.url("/console/nothing-here")).send().await.expect("answer");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.expect("html").contains("There is no such page"), "a page, not JSON");

    // A value the admin API would refuse is refused here too, not taken
    // as the most open one.
    let bogus = http
        .post(app.url("/console/apps"))
        .header("cookie", &session)
        .form(&[("name", "Odd"), ("access", "everyone"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(bogus.status(), StatusCode::UNPROCESSABLE_ENTITY, "the form again, with its refusal");
    let html = bogus.text().await.expect("html");
    assert!(html.contains(r#"<select name="access" aria-invalid="true">"#), "{html}");
    assert!(html.contains(r#"Odd"#), "what was typed is kept");
    let (_, apps) = app.admin(Method::GET, "/apps", None).await;
    assert!(!apps.to_string().contains("Odd"), "{apps}");

    // A checkbox says what it says: `false` unticks, anything else is
    // refused.
    let client_id = app.create_app(json!({"name": "Shop"})).await;
    let edit = |enabled: &'static str| {
        http.post(app.url(&format!("/console/apps/{client_id}")))
            .header("cookie", &session)
            .form(&[("name", "Shop"), ("access", "all"), ("enabled", enabled), ("csrf", csrf.as_str())])
            .send()
    };
    assert_eq!(edit("false").await.expect("post").status(), StatusCode::SEE_OTHER);
    let (_, shop) = app.admin(Method::GET, &format!("/apps/{client_id}"), None).await;
    assert_eq!(shop["enabled"], false, "{shop}");
    let odd = edit("maybe").await.expect("post");
    assert_eq!(odd.status(), StatusCode::UNPROCESSABLE_ENTITY, "the form again, with its refusal");
    assert!(odd.text().await.expect("html").contains("<code>enabled</code>: must be one of"));

    // In Chinese, a refusal is Chinese down to its reason.
    let zh = format!("{session}; ciam_console_lang=zh");
    let refused = http
        .post(app.url("/console/policies/lockout"))
        .header("cookie", &zh)
        .form(&[("max_failures", "0"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert!(refused.text().await.expect("html").contains("必须在 1 到 1000 之间"));

    // What no page handler answers is still a console page, in the
    // console's language: a query that does not parse, a method a page
    // does not take, a form too large.
    let answers = [
        http.get(app.url("/console/users?page=abc")).header("cookie", &zh).send().await.expect("answer"),
        http.delete(app.url("/console/users")).header("cookie", &zh).send().await.expect("answer"),
        http.post(app.url("/console/policies/lockout"))
            .header("cookie", &zh)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("max_failures={}", "9".repeat(100_000)))
            .send()
            .await
            .expect("answer"),
    ];
    for (answer, status) in answers.into_iter().zip([400, 405, 413]) {
        assert_eq!(answer.status().as_u16(), status);
        assert!(answer.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
        assert!(answer.text().await.expect("html").contains("lang=\"zh-CN\""));
    }
    let bogus = http
        .post(app.url("/console/policies/bogus"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(bogus.status(), StatusCode::NOT_FOUND, "no such policy");

    // A page past the last one is an empty list, not an error.
    let far =
        http.get(app.url("/console/users?page=4294967295")).header("cookie", &session).send().await.expect("page");
    assert_eq!(far.status(), StatusCode::OK);

    // A time that is no time is refused next to its field.
    let audit =
        http.get(app.url("/console/audit?since=yesterday")).header("cookie", &session).send().await.expect("page");
    assert!(audit.text().await.expect("html").contains("Not a time"));

    // The language switch goes back only to a console page, and a return
    // path that cannot be a header lands on the overview, not a 500.
    for (back, to) in [
        ("/console/audit?mobile=1", "/console/audit?mobile=1"),
        ("https://elsewhere.example/", "/console/"),
        ("/console//elsewhere.example", "/console/"),
        ("/console/\\elsewhere.example", "/console/"),
        ("/console/\r\nSet-Cookie: x=1", "/console/"),
        ("/console/../healthz", "/console/"),
        ("/console/%2e%2e/healthz", "/console/"),
        ("/console/users?mobile=%2B86", "/console/users?mobile=%2B86"),
    ] {
        let resp = http.get(app.url("/console/lang/zh")).query(&[("back", back)]).send().await.expect("switch");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{back}");
        assert_eq!(resp.headers()["location"], to, "{back}");
    }

    // A session ends when signed out, on the server: the old cookie opens
    // nothing.
    let out = http
        .post(app.url("/console/sign-out"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sign out");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = http.get(app.url("/console/users")).header("cookie", &session).send().await.expect("page");
    assert_eq!(after.status(), StatusCode::SEE_OTHER);

    // Failed sign-ins are throttled per address.
    let mut refused = Vec::new();
    for _ in 0..11 {
        let resp = http.post(app.url("/console/sign-in")).form(&[("token", "wrong")]).send().await.expect("post");
        refused.push(resp.status());
    }
    assert!(refused[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{refused:?}");
    assert_eq!(refused[10], StatusCode::TOO_MANY_REQUESTS);
    let right = http.post(app.url("/console/sign-in")).form(&[("token", ADMIN_TOKEN)]).send().await.expect("post");
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS, "throttled, even with the right token");
    let retry_after: u64 = right.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert!(right.text().await.expect("html").contains("Try again in 15 minutes"));
}
