//! Codes and the server's log (docs/sms.md §5, §7): with a webhook, no code
//! is ever written to the log, the access log included; the `log`
//! provider, for development, writes each code there and nowhere else.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestDatabase, admin_at, read, samples, sdk_at, serve};
use crate::sms_helpers::{E164, Gateway, MOBILE, WEBHOOK_SECRET};

/// An SDK call of `client_id` to the server at `base`.
async fn sdk(base: &str, client_id: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    read(sdk_at(&client, base, Method::POST, path, client_id).json(&body).send().await.expect("sdk call")).await
}

/// Whether `text` holds `code` as a number of its own (not inside a longer
/// run of digits, as a timestamp's fraction might).
fn holds(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_some_and(|c| c.is_ascii_digit());
        let after = text[at + code.len()..].chars().next().is_some_and(|c| c.is_ascii_digit());
        !before && !after
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_stay_out_of_the_log_and_the_log_provider_writes_them_for_development() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let gateway = Gateway::start().await;
    let url = format!("{}/sms", gateway.base);
    let env = [
        ("CIAM_LOG_FORMAT", "json"),
        ("CIAM_SMS_PROVIDER", "webhook"),
        ("CIAM_SMS_WEBHOOK_URL", url.as_str()),
        ("CIAM_SMS_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ];
    let server = serve(&db.url, &env).await;
    let base = server.base.clone();
    let client_id =
        admin_at(&reqwest::Client::new(), &base, Method::POST, "/apps", json!({"name": "Shop"})).await["client_id"]
            .as_str()
            .expect("client_id")
            .to_owned();
    admin_at(&reqwest::Client::new(), &base, Method::POST, "/users", json!({"mobile": MOBILE, "password": PASSWORD}))
        .await;
    admin_at(&reqwest::Client::new(), &base, Method::PUT, "/policies/sms", json!({"resend_seconds": 0})).await;
    let send = json!({"mobile": MOBILE, "type": "LOGIN_SMS"});
    assert_eq!(sdk(&base, &client_id, "/sms/send", send.clone()).await.0, StatusCode::OK);
    let code = gateway.code(1).await;
    let wrong = json!({"mobile": MOBILE, "verify_code": crate::sms_helpers::other_than(&code)});
    assert_eq!(sdk(&base, &client_id, "/login/mobile-verify-code", wrong).await.0, StatusCode::BAD_REQUEST);
    let right = json!({"mobile": MOBILE, "verify_code": code});
    assert_eq!(sdk(&base, &client_id, "/login/mobile-verify-code", right).await.1["status"], "SUCCESS");
    let page = reqwest::get(&server.metrics).await.expect("metrics").text().await.expect("text");
    let sent = samples(&page);
    assert_eq!(sent.get("ciam_sms_sent_total{type=\"LOGIN_SMS\",result=\"delivered\"}"), Some(&1.0), "{page}");
    let log = server.stop();
    assert!(log.lines().any(|l| l.contains("/api/v2/sdk/sms/send")), "the access log has the send: {log}");
    assert!(!holds(&log, &code), "the code {code} is in the log: {log}");

    // The log provider, on the same database: the code is in the log, and
    // it is the code.
    let server = serve(&db.url, &[("CIAM_SMS_PROVIDER", "log")]).await;
    let base = server.base.clone();
    assert_eq!(sdk(&base, &client_id, "/sms/send", send).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = server.stop();
    let line = log.lines().find(|l| l.contains("log provider")).unwrap_or_else(|| panic!("no code logged: {log}"));
    assert!(line.contains(E164), "{line}");
    let logged = line.split("code=").nth(1).expect("code=").chars().take(6).collect::<String>();
    let server = serve(&db.url, &[]).await;
    let right = json!({"mobile": MOBILE, "verify_code": logged});
    assert_eq!(sdk(&server.base, &client_id, "/login/mobile-verify-code", right).await.1["status"], "SUCCESS");
}
