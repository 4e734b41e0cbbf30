//! The server's HTTP client for what it sends out: SMS codes to the
//! operator's webhook, captcha tokens to their verify URL (docs/sms.md).
//! TLS by rustls on the same aws-lc crypto as the token signatures, with
//! the Mozilla roots built in; no redirect is followed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ciam_core::sms::delivery::Outbound;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Answers larger than this are refused (a webhook's or captcha's answer
/// is small).
const MAX_ANSWER: usize = 64 * 1024;

/// A pooled HTTP(S) client.
#[derive(Clone)]
pub struct HttpOut {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpOut")
    }
}

impl HttpOut {
    /// A client for the webhook and the captcha.
    pub fn new() -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(3)));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| format!("TLS set-up: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self { client: Client::builder(TokioExecutor::new()).build(connector) })
    }
}

#[async_trait]
impl Outbound for HttpOut {
    async fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut request = hyper::Request::post(url)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(hyper::header::USER_AGENT, concat!("ciam/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| format!("request: {e}"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| format!("no answer: {e}"))?;
            let status = response.status().as_u16();
            let answer = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("answer: {e}"))?
                .to_bytes();
            Ok((status, answer.to_vec()))
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("no answer within {timeout:?}"))?
    }
}
