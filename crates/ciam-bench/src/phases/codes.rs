//! The OpenID Connect phases (docs/oidc.md): complete code flows, as a
//! browser and a web app make them (the authorize page, the page's
//! password post, the token exchange), against the hash limit; and code
//! exchanges answered from a browser session (authorize without the page,
//! then the token exchange: one id_token signature each) against the
//! signing limit.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Run;
use crate::PASSWORD;
use crate::driver::{Measured, interleaved};
use crate::report::{Report, percentile, ratio, round1};

/// The bench's web app's redirect URI (nothing listens there: the flow
/// reads the code from the redirect).
const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// One PKCE verifier and its S256 challenge, for every flow (the server
/// still checks each).
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92IaHRgOlQmZc3Vuh1Ivm6cT0Y9I";
const CHALLENGE: &str = "S1ffuEi-L5AyLHhlDrbdSVjmILGB42U18BOaT1SVHiY";

/// A public web app on the bench's server, and a client that follows no
/// redirect (the flow reads each one).
struct WebApp {
    http: reqwest::Client,
    base: String,
    client_id: String,
}

/// The value of the hidden input `name` in a page.
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    Some(html[at..].split('"').next()?.to_owned())
}

/// `name=value` of the first `Set-Cookie` named `name`.
fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")))
}

/// The `code` of a redirect to [`REDIRECT`].
fn code_of(resp: &reqwest::Response) -> Option<String> {
    let location = resp.headers().get("location")?.to_str().ok()?;
    let query = location.strip_prefix(REDIRECT)?.strip_prefix('?')?;
    query.split('&').find_map(|pair| pair.strip_prefix("code=")).map(str::to_owned)
}

impl WebApp {
    fn authorize_url(&self, i: usize) -> String {
        format!(
            "{}/api/v1/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s{i}\
             &code_challenge={CHALLENGE}&code_challenge_method=S256",
            self.base,
            self.client_id,
            REDIRECT.replace(':', "%3A").replace('/', "%2F")
        )
    }

    /// A whole flow for `mobile`: the page, its post, the exchange. Returns
    /// `ok`, or the step that went wrong, and the browser session it made.
    async fn flow(&self, mobile: &str, i: usize) -> (String, Option<String>) {
        let Ok(page) = self.http.get(self.authorize_url(i)).send().await else { return ("authorize".into(), None) };
        let bind = cookie(&page, "ciam_bind");
        let body = page.text().await.unwrap_or_default();
        let (Some(bind), Some(request), Some(csrf)) = (bind, hidden(&body, "request"), hidden(&body, "csrf")) else {
            return ("page".into(), None);
        };
        let form = [("request", request.as_str()), ("csrf", &csrf), ("mobile", mobile), ("password", PASSWORD)];
        let posted = self
            .http
            .post(format!("{}/api/v1/login", self.base))
            .header("Cookie", bind)
            .header("Origin", &self.base)
            .form(&form)
            .send()
            .await;
        let Ok(posted) = posted else { return ("login".into(), None) };
        let session = cookie(&posted, "ciam_sso");
        match code_of(&posted) {
            Some(code) => (self.exchange(&code).await, session),
            None => (format!("login {}", posted.status()), None),
        }
    }

    /// A code for tokens; `ok` when an id_token came back.
    async fn exchange(&self, code: &str) -> String {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &self.client_id),
        ];
        let sent = self.http.post(format!("{}/api/v1/oauth2/token", self.base)).form(&form).send().await;
        match sent {
            Ok(resp) => match resp.json::<Value>().await {
                Ok(body) if body["id_token"].is_string() => "ok".into(),
                Ok(body) => body["error"].as_str().unwrap_or("?").to_owned(),
                Err(_) => "unreadable".into(),
            },
            Err(_) => "transport".into(),
        }
    }

    /// Single sign-on: authorize with a browser session, then the exchange.
    async fn silent(&self, session: &str, i: usize) -> String {
        let sent = self.http.get(self.authorize_url(i)).header("Cookie", session).send().await;
        match sent.ok().as_ref().and_then(code_of) {
            Some(code) => self.exchange(&code).await,
            None => "authorize".into(),
        }
    }
}

/// Both phases, when the plan asks for `codes`.
pub(crate) async fn run(run: &Run<'_>, report: &mut Report) -> Result<(), String> {
    let created =
        run.api.admin(reqwest::Method::POST, "/apps", json!({"name": "bench web", "redirect_uris": [REDIRECT]}));
    let client_id = created.await?["client_id"].as_str().ok_or("client_id")?.to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(2 * run.plan.refresh_concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let web = Arc::new(WebApp { http, base: run.api.base.clone(), client_id });
    let (w, p) = (Arc::clone(&web), Arc::new(run.plan.clone()));
    let measured = interleaved(
        run.plan.rounds,
        run.plan.window,
        run.plan.concurrency,
        run.pid,
        "ok",
        || run.limits.hash(),
        move |i| {
            let (w, mobile) = (Arc::clone(&w), p.login_mobile(i));
            async move { w.flow(&mobile, i).await.0 }
        },
    )
    .await;
    put(report, "code_flow", "hash", measured);
    let mut sessions = Vec::new();
    for i in 0..crate::USERS {
        match web.flow(&run.plan.login_mobile(i), i).await {
            (ok, Some(session)) if ok == "ok" => sessions.push(session),
            (step, _) => return Err(format!("a code flow failed at {step}")),
        }
    }
    let (w, s) = (Arc::clone(&web), Arc::new(sessions));
    let measured = interleaved(
        run.plan.rounds,
        run.plan.window,
        run.plan.refresh_concurrency,
        run.pid,
        "ok",
        || run.limits.sign(),
        move |i| {
            let (w, s) = (Arc::clone(&w), Arc::clone(&s));
            async move { w.silent(&s[i % s.len()], i).await }
        },
    )
    .await;
    put(report, "code_exchange", "sign", measured);
    Ok(())
}

/// A phase's figures: its rate, the limit beside it, the ratio, p50/p99.
fn put(report: &mut Report, name: &str, limit_name: &str, measured: Measured) {
    let Measured { rate, limit, mut latencies, other, server_ms, .. } = measured;
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "  {name}: {rate:.1}/s against {limit:.1}/s {limit_name} limit (others {other}); server cpu {server_ms} ms each"
    );
    report.put(format!("{name}_per_s"), round1(rate));
    report.put(format!("{name}_{limit_name}_limit_per_s"), round1(limit));
    report.put(format!("{name}_ratio"), ratio(rate, limit));
    report.put(format!("{name}_server_cpu_ms"), server_ms);
    report.put(format!("{name}_p50_ms"), percentile(&latencies, 0.5));
    report.put(format!("{name}_p99_ms"), percentile(&latencies, 0.99));
}
