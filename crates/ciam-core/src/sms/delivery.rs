//! Delivery of codes (docs/sms.md): a bounded queue the send call hands
//! each code to, and the background work that posts it to the operator's
//! webhook (signed, 5 s per try, up to 3 tries within 15 s) or writes it to
//! the log in development. The HTTP client itself is the server's
//! ([`Outbound`]); what is sent, and how it is signed, is decided here.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::{ErrorCode, Lang};
use crate::mobile::Mobile;
use crate::model::{AuditEvent, Outcome};
use crate::store::Store;
use crate::token::keyed_digest;

use super::SmsKind;

/// Posts a body to a URL and answers the status and body: the server's
/// HTTP client, for the webhook and the captcha check.
#[async_trait]
pub trait Outbound: Send + Sync + fmt::Debug {
    /// POSTs `body` (of `content_type`) with `headers` to `url`, giving up
    /// after `timeout`; an error is a try that reached no answer.
    async fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String>;
}

/// Where codes go.
#[derive(Clone)]
pub enum Provider {
    /// The server's log, for development only.
    Log,
    /// A signed POST to the operator's webhook.
    Webhook {
        /// Where.
        url: String,
        /// Signs each post (at least 32 characters).
        secret: Zeroizing<String>,
    },
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provider::Log => f.write_str("Log"),
            Provider::Webhook { url, .. } => f.debug_struct("Webhook").field("url", url).finish_non_exhaustive(),
        }
    }
}

/// A siteverify-compatible human verification service.
#[derive(Clone)]
pub struct Captcha {
    /// Its verify URL.
    pub verify_url: String,
    /// The deployment's secret with it.
    pub secret: Zeroizing<String>,
}

impl fmt::Debug for Captcha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Captcha").field("verify_url", &self.verify_url).finish_non_exhaustive()
    }
}

/// How the server reaches out for SMS: the provider, the captcha, and the
/// HTTP client both use.
#[derive(Debug, Clone, Default)]
pub struct SmsConfig {
    /// Where codes go; `None`: sends answer `CAPTCHA.0006`.
    pub provider: Option<Provider>,
    /// Checked before each send, when set.
    pub captcha: Option<Captcha>,
    /// The HTTP client (needed by the webhook and the captcha).
    pub outbound: Option<Arc<dyn Outbound>>,
}

/// Codes waiting for delivery, at most.
pub const QUEUE: usize = 1024;
/// Deliveries under way at once, at most.
const AT_ONCE: usize = 16;
/// How long one try may take.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries of one code.
pub const TRIES: u32 = 3;
/// How long after the send the last try may start: a code lives minutes,
/// so a late try is no use.
const TRY_WITHIN: Duration = Duration::from_secs(15);

/// The metric of codes handed to delivery, by `type` and `result`.
pub const SMS_SENT: &str = "ciam_sms_sent_total";

/// One code handed to delivery (its `Debug` leaves the code out).
pub struct Message {
    /// The number.
    pub to: Mobile,
    /// The purpose.
    pub kind: SmsKind,
    /// The code.
    pub code: Zeroizing<String>,
    /// The language of the text.
    pub lang: Lang,
    /// Minutes the code lasts, for the text.
    pub minutes: i64,
    /// Whether it goes out at all: a send to a number it cannot serve
    /// (no enumeration) takes its place in the queue and is dropped here.
    pub deliver: bool,
    /// The send's audit event, for a delivery that fails.
    pub event: AuditEvent,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message").field("to", &self.to).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Message {
    /// The whole text in the message's language.
    pub fn text(&self) -> String {
        let code = self.code.as_str();
        match self.lang {
            Lang::En => format!(
                "Your verification code is {code}. It is valid for {} minutes. Do not share it with anyone.",
                self.minutes
            ),
            Lang::Zh => format!("您的验证码是{code},{}分钟内有效。请勿告诉他人。", self.minutes),
        }
    }

    /// The webhook's JSON body.
    fn body(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "to": self.to.as_str(),
            "type": self.kind.as_str(),
            "code": self.code.as_str(),
            "lang": match self.lang { Lang::En => "en", Lang::Zh => "zh" },
            "text": self.text(),
            "client_id": self.event.client_id,
            "request_id": self.event.request_id,
        });
        body.to_string().into_bytes()
    }
}

/// The `X-Ciam-Signature` of `body` sent at Unix time `t`:
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    format!("t={t},v1={}", keyed_digest(secret, &signed))
}

/// The queue's sending end.
#[derive(Debug, Clone)]
pub struct Delivery {
    tx: mpsc::Sender<Message>,
}

impl Delivery {
    /// Starts the background delivery of `provider`'s codes.
    pub fn start(
        provider: Provider,
        outbound: Option<Arc<dyn Outbound>>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(rx, Arc::new(Courier { provider, outbound, store, clock })));
        Delivery { tx }
    }

    /// A place in the queue, or `None` when it is full.
    pub fn place(&self) -> Option<mpsc::OwnedPermit<Message>> {
        self.tx.clone().try_reserve_owned().ok()
    }
}

#[derive(Debug)]
struct Courier {
    provider: Provider,
    outbound: Option<Arc<dyn Outbound>>,
    store: Arc<dyn Store>,
    /// The time the signatures carry.
    clock: Arc<dyn Clock>,
}

async fn deliver_all(mut rx: mpsc::Receiver<Message>, courier: Arc<Courier>) {
    // Messages taken from the queue and not yet done, at most `QUEUE`; of
    // them, at most `AT_ONCE` being posted.
    let (pending, at_once) = (Arc::new(Semaphore::new(QUEUE)), Arc::new(Semaphore::new(AT_ONCE)));
    while let Some(message) = rx.recv().await {
        let Ok(held) = Arc::clone(&pending).acquire_owned().await else {
            return;
        };
        let (courier, at_once) = (Arc::clone(&courier), Arc::clone(&at_once));
        tokio::spawn(async move {
            jitter().await;
            if message.deliver {
                let Ok(turn) = at_once.acquire_owned().await else {
                    return;
                };
                courier.deliver(message).await;
                drop(turn);
            } else {
                metrics::counter!(SMS_SENT, "type" => message.kind.as_str(), "result" => "withheld").increment(1);
            }
            drop(held);
        });
    }
}

/// The longest a delivery waits before it starts.
const JITTER_MS: u16 = 50;

/// A random wait before each delivery, for a code that goes out and for one
/// that does not: the delivery's work then lands on whichever requests come
/// later, not on the next one, so no answer's timing says whether the
/// number before it has an account.
async fn jitter() {
    let mut bytes = [0u8; 2];
    if getrandom::fill(&mut bytes).is_ok() {
        let ms = u16::from_le_bytes(bytes) % (JITTER_MS + 1);
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
    }
}

impl Courier {
    async fn deliver(&self, message: Message) {
        let kind = message.kind.as_str();
        let outcome = match &self.provider {
            Provider::Log => {
                tracing::info!(to = %message.to, code = %message.code.as_str(), "SMS code (log provider: development only)");
                Ok(())
            }
            Provider::Webhook { url, secret } => self.post(url, secret.as_bytes(), &message).await,
        };
        match outcome {
            Ok(()) => metrics::counter!(SMS_SENT, "type" => kind, "result" => "delivered").increment(1),
            Err(why) => {
                metrics::counter!(SMS_SENT, "type" => kind, "result" => "failed").increment(1);
                tracing::warn!(kind, %why, request_id = message.event.request_id.as_deref(), "SMS code not delivered");
                let event = AuditEvent { outcome: Outcome::Refused(ErrorCode::SmsSendFailed), ..message.event };
                if let Err(e) = self.store.insert_audit(&event).await {
                    tracing::warn!(error = %e, "the failed delivery's audit event was not stored");
                }
            }
        }
    }

    /// Up to [`TRIES`] signed posts within [`TRY_WITHIN`]; 2xx delivers.
    async fn post(&self, url: &str, secret: &[u8], message: &Message) -> Result<(), String> {
        let outbound = self.outbound.as_ref().ok_or("no HTTP client")?;
        let body = message.body();
        let started = Instant::now();
        let mut last = String::new();
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 2 - 1)).await;
            }
            let left = TRY_WITHIN.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            let t = self.clock.now();
            let headers = [("X-Ciam-Signature", signature(secret, t, &body))];
            match outbound.post(url, "application/json", &headers, body.clone(), TRY_TIMEOUT.min(left)).await {
                Ok((status, _)) if (200..300).contains(&status) => return Ok(()),
                Ok((status, _)) => last = format!("the webhook answered {status}"),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Asks the captcha service whether `token` is a person's, from `remote`.
pub(crate) async fn human(outbound: &dyn Outbound, captcha: &Captcha, token: &str, remote: Option<String>) -> bool {
    let mut form = vec![("secret", captcha.secret.as_str()), ("response", token)];
    let remote = remote.unwrap_or_default();
    if !remote.is_empty() {
        form.push(("remoteip", remote.as_str()));
    }
    let Ok(body) = serde_urlencoded::to_string(&form) else {
        return false;
    };
    let content_type = "application/x-www-form-urlencoded";
    match outbound.post(&captcha.verify_url, content_type, &[], body.into_bytes(), TRY_TIMEOUT).await {
        Ok((status, answer)) if (200..300).contains(&status) => serde_json::from_slice::<serde_json::Value>(&answer)
            .is_ok_and(|v| v.get("success") == Some(&serde_json::Value::Bool(true))),
        Ok((status, _)) => {
            tracing::warn!(status, "the captcha service answered with an error");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "the captcha service did not answer");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_time_and_body() {
        let sig = signature(b"0123456789abcdef0123456789abcdef", 1_700_000_000, b"{\"to\":\"+8615200000000\"}");
        let (t, v1) = sig.split_once(',').expect("two parts");
        assert_eq!(t, "t=1700000000");
        let hex = v1.strip_prefix("v1=").expect("v1");
        assert_eq!(hex.len(), 64);
        let again = keyed_digest(b"0123456789abcdef0123456789abcdef", b"1700000000.{\"to\":\"+8615200000000\"}");
        assert_eq!(hex, again);
        assert_ne!(sig, signature(b"another secret, just as long......", 1_700_000_000, b"{}"));
    }
}
