//! What each call costs the database, counted, not guessed
//! (docs/scaling.md): a real `ciam serve` on PostgreSQL, its
//! `ciam_db_reads_total`, `ciam_db_writes_total` and
//! `ciam_db_statements_total` read before and after a batch of each call,
//! one call at a time. The table it prints is the one in docs/scaling.md;
//! the assertions hold the figures there, so that a change that adds a
//! database call to a hot path is seen.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, PASSWORD, Serving, TestDatabase, admin_at, read, samples, sdk_at, serve};
use crate::oidc_helpers::{hidden, query};
use crate::sms_helpers::{Gateway, WEBHOOK_SECRET};

const BATCH: usize = 20;
const REDIRECT: &str = "http://127.0.0.1:8765/cb";

/// Reads, writes and statements per call.
type Cost = [f64; 3];

struct Counted<'a> {
    server: &'a Serving,
    http: reqwest::Client,
    client_id: String,
}

impl Counted<'_> {
    async fn counters(&self) -> Cost {
        // The audit writer commits a moment after the answer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let page = self.http.get(&self.server.metrics).send().await.expect("metrics").text().await.expect("text");
        let all = samples(&page);
        let get = |name: &str| all.get(name).copied().unwrap_or(0.0);
        [get("ciam_db_reads_total"), get("ciam_db_writes_total"), get("ciam_db_statements_total")]
    }

    /// What `BATCH` calls of `call` cost, per call.
    async fn cost<F: AsyncFn(usize)>(&self, call: F) -> Cost {
        let before = self.counters().await;
        for i in 0..BATCH {
            call(i).await;
        }
        let after = self.counters().await;
        [0, 1, 2].map(|k| ((after[k] - before[k]) / BATCH as f64 * 10.0).round() / 10.0)
    }

    fn sdk(&self, path: &str) -> reqwest::RequestBuilder {
        sdk_at(&self.http, &self.server.base, Method::POST, path, &self.client_id)
    }

    async fn login(&self, password: &str) -> Value {
        let body = json!({"mobile": "15200000000", "password": password});
        read(self.sdk("/login/mobile-pwd").json(&body).send().await.expect("login")).await.1
    }

    /// One OpenID Connect code flow as a browser and a web app make it:
    /// authorize (the login page), the page's post, the token exchange.
    async fn code_flow(&self) {
        let base = &self.server.base;
        let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let authorize = format!(
            "{base}/api/v1/oauth2/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}\
             &scope=openid&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256",
            self.client_id
        );
        let page = self.http.get(authorize).send().await.expect("authorize");
        let cookie = page.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_owned();
        let html = page.text().await.expect("page");
        let (request, csrf) = (hidden(&html, "request").expect("request"), hidden(&html, "csrf").expect("csrf"));
        let form = [("request", request.as_str()), ("csrf", &csrf), ("mobile", "15200000000"), ("password", PASSWORD)];
        let posted = self.http.post(format!("{base}/api/v1/login")).header("cookie", cookie).header("origin", base);
        let answer = posted.form(&form).send().await.expect("login");
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let code = query(answer.headers()["location"].to_str().expect("location"))["code"].clone();
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &self.client_id),
        ];
        let tokens = self.http.post(format!("{base}/api/v1/oauth2/token")).form(&grant).send().await.expect("token");
        assert_eq!(tokens.status(), StatusCode::OK);
    }
}

fn table_of(costs: &[(&str, Cost)], call: &str) -> Cost {
    costs.iter().find(|(c, _)| *c == call).map(|(_, cost)| *cost).expect("measured")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_calls_of_each_call_are_counted() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let gateway = Gateway::start().await;
    let url = format!("{}/sms", gateway.base);
    let env =
        [("CIAM_SMS_PROVIDER", "webhook"), ("CIAM_SMS_WEBHOOK_URL", &url), ("CIAM_SMS_WEBHOOK_SECRET", WEBHOOK_SECRET)];
    let server = serve(&db.url, &env).await;
    let (http, base) = (crate::oidc_helpers::no_redirects(), server.base.clone());
    let app = json!({"name": "Shop", "redirect_uris": [REDIRECT]});
    let client_id =
        admin_at(&http, &base, Method::POST, "/apps", app).await["client_id"].as_str().expect("id").to_owned();
    admin_at(&http, &base, Method::POST, "/users", json!({"mobile": "15200000000", "password": PASSWORD})).await;
    admin_at(&http, &base, Method::PUT, "/policies/lockout", json!({"max_failures": 1000})).await;
    admin_at(
        &http,
        &base,
        Method::PUT,
        "/policies/sms",
        json!({"resend_seconds": 0, "mobile_daily_max": 1000, "ip_hourly_max": 1000}),
    )
    .await;
    let counted = Counted { server: &server, http, client_id };
    let session = counted.login(PASSWORD).await["session_token"].as_str().expect("session").to_owned();

    let mut costs: Vec<(&str, Cost)> = Vec::new();
    costs.push((
        "login (SUCCESS)",
        counted.cost(async |_| assert_eq!(counted.login(PASSWORD).await["status"], "SUCCESS")).await,
    ));
    costs.push(("login, wrong password", counted.cost(async |_| drop(counted.login("Wrong-pass1").await)).await));
    let refresh = async |_| {
        let sent = counted.sdk("/sso/session-token/id-token").header("session-token", &session).send().await;
        assert_eq!(sent.expect("refresh").status(), StatusCode::OK);
    };
    costs.push(("refresh", counted.cost(refresh).await));
    costs.push(("code flow (3 requests)", counted.cost(async |_| counted.code_flow().await).await));
    let send = async |_| {
        let body = json!({"mobile": "15200000000", "type": "LOGIN_SMS"});
        assert_eq!(read(counted.sdk("/sms/send").json(&body).send().await.expect("send")).await.1, json!({}));
    };
    costs.push(("SMS code sent", counted.cost(send).await));
    let by_code = async |i: usize| {
        // Codes 21 to 40: the 20 sends above came first.
        let body = json!({"mobile": "15200000000", "verify_code": gateway.code(BATCH + i + 1).await});
        let login = counted.sdk("/login/mobile-verify-code").json(&body).send().await.expect("login");
        assert_eq!(read(login).await.1["status"], "SUCCESS");
    };
    let send_then = async |i: usize| {
        send(i).await;
        by_code(i).await;
    };
    let pair = counted.cost(send_then).await;
    let sent = table_of(&costs, "SMS code sent");
    costs.push((
        "login with an SMS code (the send not counted)",
        [0, 1, 2].map(|k| ((pair[k] - sent[k]) * 10.0).round() / 10.0),
    ));
    let table: HashMap<&str, Cost> = costs.iter().copied().collect();
    eprintln!("| call | reads | writes (commits) | statements |\n|---|---|---|---|");
    for (call, [reads, writes, statements]) in &costs {
        eprintln!("| {call} | {reads} | {writes} | {statements} |");
    }
    // The figures of docs/scaling.md, with half a call of room for the
    // background's own (a policy re-read each second, the purge's lease).
    let within = |call: &str, most: Cost| {
        let got = table[call];
        assert!((0..3).all(|k| got[k] <= most[k]), "{call}: {got:?}, documented at most {most:?}");
    };
    within("login (SUCCESS)", [2.5, 2.5, 6.5]);
    within("login, wrong password", [1.5, 2.5, 5.5]);
    within("refresh", [1.5, 1.5, 2.5]);
    within("code flow (3 requests)", [5.5, 7.5, 17.5]);
    within("SMS code sent", [1.5, 3.5, 6.5]);
    within("login with an SMS code (the send not counted)", [1.5, 6.5, 7.5]);
}
