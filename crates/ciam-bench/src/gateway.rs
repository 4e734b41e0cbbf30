//! The SMS gateway the bench's server delivers codes to: a webhook on
//! loopback that keeps the last code of each number and counts what it
//! was sent (it takes the signature on trust: the API tests check it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

/// The webhook's secret, as the server is given it.
pub(crate) const SECRET: &str = "bench-webhook-secret-0123456789abcdef";

/// What the gateway was sent.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    /// The last code of each number.
    pub(crate) codes: HashMap<String, String>,
    /// Messages in all.
    pub(crate) count: u64,
}

/// The gateway: its URL and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    pub(crate) url: String,
    pub(crate) delivered: Arc<Mutex<Delivered>>,
}

async fn receive(State(delivered): State<Arc<Mutex<Delivered>>>, body: Bytes) -> &'static str {
    if let Ok(message) = serde_json::from_slice::<Value>(&body)
        && let (Some(to), Some(code)) = (message["to"].as_str(), message["code"].as_str())
        && let Ok(mut delivered) = delivered.lock()
    {
        delivered.codes.insert(to.to_owned(), code.to_owned());
        delivered.count += 1;
    }
    "ok"
}

impl Gateway {
    /// Listens on a free loopback port.
    pub(crate) async fn start() -> Result<Self, String> {
        let delivered = Arc::new(Mutex::new(Delivered::default()));
        let router = Router::new().route("/sms", post(receive)).with_state(Arc::clone(&delivered));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let url = format!("http://{}/sms", listener.local_addr().map_err(|e| e.to_string())?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Gateway { url, delivered })
    }

    /// Takes the code last delivered to `to`, if there is one.
    pub(crate) fn take_code(&self, to: &str) -> Option<String> {
        self.delivered.lock().ok()?.codes.remove(to)
    }

    /// Waits until no message arrived for half a second (deliveries start
    /// after a random wait and run in the background), then forgets every
    /// code it holds.
    pub(crate) async fn settle(&self) {
        let mut last = self.count();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let now = self.count();
            if now == last {
                break;
            }
            last = now;
        }
        if let Ok(mut delivered) = self.delivered.lock() {
            delivered.codes.clear();
        }
    }

    /// Messages delivered so far.
    pub(crate) fn count(&self) -> u64 {
        self.delivered.lock().map(|d| d.count).unwrap_or(0)
    }
}
