//! The console's app pages as OpenID Connect clients, over plain HTTP: a
//! client secret is only in the answer to the post that made it, the New
//! secret button needs the form's token, and the URI fields are refused
//! next to their field; a refused post's language link returns to its
//! page; and the app's SMS sign-up switches and the SMS policy's form.
//! (console.rs drives the same pages in Chromium.)

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::console::signed_in;
use crate::helpers::{Backend, TestApp};

/// The text of the element `id` in `html`.
fn text_of_id<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!(r#"id="{id}">"#))? + id.len() + 6;
    html[start..].split('<').next()
}

/// A signed-in operator over plain HTTP.
struct Operator {
    http: reqwest::Client,
    session: String,
    csrf: String,
}

impl Operator {
    async fn sign_in(app: &TestApp) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let (session, csrf) = signed_in(app).await;
        Operator { http, session, csrf }
    }

    /// Posts `form` with the form's token.
    async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut form = form.to_vec();
        form.push(("csrf", &self.csrf));
        self.http.post(app.url(path)).header("cookie", &self.session).form(&form).send().await.expect("post")
    }

    /// The page at `path`.
    async fn page(&self, app: &TestApp, path: &str) -> String {
        let resp = self.http.get(app.url(path)).header("cookie", &self.session).send().await.expect("page");
        resp.text().await.expect("html")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_secret_is_shown_once_in_the_answer_to_its_post() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let operator = Operator::sign_in(&app).await;

    // A confidential app: the answer is its page, with the secret, kept
    // nowhere a browser could ask for again.
    let made = operator.post(&app, "/console/apps", &[("name", "Shop"), ("client_type", "confidential")]).await;
    assert_eq!(made.status(), StatusCode::OK);
    assert_eq!(made.headers()["cache-control"], "no-store");
    assert!(!made.headers().contains_key("location") && !made.headers().contains_key("set-cookie"));
    let html = made.text().await.expect("html");
    let client_id = text_of_id(&html, "client-id").expect("client id").to_owned();
    let secret = text_of_id(&html, "client-secret").expect("the secret").to_owned();
    assert_eq!(secret.len(), 43, "{secret}");
    let shop = format!("/console/apps/{client_id}");
    let page = operator.page(&app, &shop).await;
    assert!(page.contains(&client_id) && !page.contains(&secret), "the app's page does not show it");
    assert!(page.contains(&format!(r#"action="{shop}/secret""#)), "its New secret button");

    // New secret needs the form's token: without it, nothing changes.
    let forged = operator.http.post(app.url(&format!("{shop}/secret"))).header("cookie", &operator.session);
    assert_eq!(forged.send().await.expect("post").status(), StatusCode::FORBIDDEN);

    // A public app has no secret and no button; a crafted post is refused.
    let public = app.create_app(json!({"name": "Phone"})).await;
    let phone = format!("/console/apps/{public}");
    assert!(!operator.page(&app, &phone).await.contains("/secret\""), "no button");
    let refused = operator.post(&app, &format!("{phone}/secret"), &[]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.expect("html").contains("a public app has no secret"));

    // Made public, an app loses its secret; made confidential again, it
    // has none until New secret makes one.
    for kind in ["public", "confidential"] {
        let edit = operator.post(&app, &shop, &[("name", "Shop"), ("client_type", kind), ("enabled", "true")]).await;
        assert_eq!(edit.status(), StatusCode::SEE_OTHER);
    }
    assert!(operator.page(&app, &shop).await.contains("None yet: make one with New secret"));
    let html = operator.post(&app, &format!("{shop}/secret"), &[]).await.text().await.expect("html");
    let new = text_of_id(&html, "client-secret").expect("the new secret");
    assert!(new.len() == 43 && new != secret, "{new}");
    assert!(!operator.page(&app, &shop).await.contains(new), "shown once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uri_fields_not_sent_are_kept_and_bad_ones_refused_at_their_field() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let operator = Operator::sign_in(&app).await;
    let public = app.create_app(json!({"name": "Phone", "redirect_uris": ["http://127.0.0.1/cb"]})).await;
    let phone = format!("/console/apps/{public}");

    // An edit that does not send the URI fields keeps them.
    let edit = operator.post(&app, &phone, &[("name", "Phone"), ("access", "all"), ("enabled", "true")]).await;
    assert_eq!(edit.status(), StatusCode::SEE_OTHER);
    let (_, stored) = app.admin(Method::GET, &format!("/apps/{public}"), None).await;
    assert_eq!(stored["redirect_uris"], json!(["http://127.0.0.1/cb"]), "{stored}");

    // A bad one is refused next to its field, what was typed kept; a list
    // names the line refused.
    let bad = operator.post(&app, &phone, &[("name", "Phone"), ("initiate_login_uri", "ftp://phone.example/")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    let field = r#"name="initiate_login_uri" value="ftp://phone.example/" aria-invalid="true">"#;
    assert!(html.contains(field) && html.contains("must be https"), "{html}");
    assert!(html.contains(">http://127.0.0.1/cb</textarea>"), "a field not sent shows what is kept: {html}");
    let uris = "https://phone.example/cb\r\nhttps://phone.example/a#b";
    let bad = operator.post(&app, &phone, &[("name", "Phone"), ("post_logout_redirect_uris", uris)]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(html.contains(&format!(r#"aria-invalid="true">{uris}</textarea>"#)), "{html}");
    assert!(html.contains("https://phone.example/a#b: must have no fragment"), "{html}");
    let (_, stored) = app.admin(Method::GET, &format!("/apps/{public}"), None).await;
    assert_eq!(stored["post_logout_redirect_uris"], json!([]), "{stored}");

    // In Chinese, the refusal is Chinese.
    let zh = format!("{}; ciam_console_lang=zh", operator.session);
    let form = [("name", "Phone"), ("redirect_uris", "http://phone.example/cb"), ("csrf", operator.csrf.as_str())];
    let resp = operator.http.post(app.url(&phone)).header("cookie", zh).form(&form).send().await.expect("post");
    assert!(resp.text().await.expect("html").contains("http://phone.example/cb：必须是 https"));
}

/// The `back=` of a page's language link.
fn language_back(html: &str) -> String {
    let at = html.find("/console/lang/").expect("a language link");
    let href = html[at..].split('"').next().expect("href").replace("&amp;", "&");
    let back = href.split("back=").nth(1).expect("back=").split('&').next().expect("value");
    openidconnect::url::form_urlencoded::parse(format!("b={back}").as_bytes()).next().expect("pair").1.into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_post_offers_the_language_of_its_page_not_of_its_path() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let operator = Operator::sign_in(&app).await;
    let user = app.create_user("15200000000", crate::helpers::PASSWORD).await;
    // A password the policy refuses: the user's page again, whose language
    // link returns to that page, not to the post's path.
    let refused = operator.post(&app, &format!("/console/users/{user}/password"), &[("password", "short")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(language_back(&refused.text().await.expect("html")), format!("/console/users/{user}"));
    let policy = operator.post(&app, "/console/policies/lockout", &[("max_failures", "ten")]).await;
    assert_eq!(policy.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(language_back(&policy.text().await.expect("html")), "/console/policies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_opens_an_app_to_sign_up_by_sms_and_sets_the_sms_limits() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let operator = Operator::sign_in(&app).await;
    let phone = app.create_app(json!({"name": "Phone"})).await;
    let page = format!("/console/apps/{phone}");
    let form = [("name", "Phone"), ("enabled", "true"), ("self_registration", "true"), ("sms_auto_register", "true")];
    assert_eq!(operator.post(&app, &page, &form).await.status(), StatusCode::SEE_OTHER);
    let (_, stored) = app.admin(Method::GET, &format!("/apps/{phone}"), None).await;
    assert_eq!((&stored["self_registration"], &stored["sms_auto_register"]), (&json!(true), &json!(true)));
    let html = operator.page(&app, &page).await;
    assert!(html.contains(r#"name="self_registration" value="true" checked"#), "{html}");
    // Unticked, a checkbox is not sent: the switch goes off.
    assert_eq!(operator.post(&app, &page, &form[..3]).await.status(), StatusCode::SEE_OTHER);
    let (_, stored) = app.admin(Method::GET, &format!("/apps/{phone}"), None).await;
    assert_eq!((&stored["self_registration"], &stored["sms_auto_register"]), (&json!(true), &json!(false)));

    let limits = [("code_ttl_seconds", "120"), ("max_checks", "3"), ("allowed_prefixes", "+86, +852")];
    assert_eq!(operator.post(&app, "/console/policies/sms", &limits).await.status(), StatusCode::SEE_OTHER);
    let (_, policy) = app.admin(Method::GET, "/policies/sms", None).await;
    assert_eq!((&policy["code_ttl_seconds"], &policy["max_checks"]), (&json!(120), &json!(3)));
    assert_eq!(policy["allowed_prefixes"], json!(["+86", "+852"]));
    let bad = operator.post(&app, "/console/policies/sms", &[("max_checks", "0"), ("allowed_prefixes", "+86")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(html.contains(r#"name="max_checks" value="0" aria-invalid="true""#), "{html}");
    assert!(operator.page(&app, "/console/policies").await.contains("SMS codes"));
}
