//! The SMS and captcha settings (docs/sms.md), checked at start.

use std::sync::Arc;

use ciam_core::sms::delivery::{Captcha, Provider, SmsConfig};
use zeroize::Zeroizing;

use super::{Config, ConfigError};
use crate::outbound::HttpOut;

/// The shortest webhook secret accepted.
pub const MIN_WEBHOOK_SECRET: usize = 32;

/// An `http` or `https` URL, or why not.
fn web_url(name: &str, text: &str) -> Result<String, ConfigError> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(text.to_owned()),
        _ => Err(ConfigError(format!("{name} must be an http or https URL"))),
    }
}

impl Config {
    /// Where codes go and the captcha before them, with the HTTP client
    /// both use (made only when one of them is set).
    pub fn sms(&self) -> Result<SmsConfig, ConfigError> {
        let (provider, captcha) = self.sms_settings()?;
        let outbound = if provider.is_some() || captcha.is_some() {
            Some(Arc::new(HttpOut::new().map_err(ConfigError)?) as Arc<dyn ciam_core::sms::delivery::Outbound>)
        } else {
            None
        };
        Ok(SmsConfig { provider, captcha, outbound })
    }

    /// The provider and the captcha the settings name; refuses a provider
    /// without what it needs, and the log provider under an `https`
    /// issuer (a deployment for real users).
    pub(super) fn sms_settings(&self) -> Result<(Option<Provider>, Option<Captcha>), ConfigError> {
        let provider = match self.sms_provider.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("log") => {
                if self.issuer.as_deref().is_some_and(|i| i.starts_with("https://")) {
                    return Err(ConfigError(
                        "sms_provider = log writes codes to the log: for development only, not under an https issuer"
                            .into(),
                    ));
                }
                Some(Provider::Log)
            }
            Some("webhook") => {
                let url = self.sms_webhook_url.as_deref().ok_or_else(|| {
                    ConfigError("sms_provider = webhook needs sms_webhook_url and sms_webhook_secret".into())
                })?;
                let secret = self.sms_webhook_secret.as_ref().map(|s| s.expose()).unwrap_or_default();
                if secret.chars().count() < MIN_WEBHOOK_SECRET {
                    return Err(ConfigError(format!(
                        "sms_webhook_secret must be at least {MIN_WEBHOOK_SECRET} characters"
                    )));
                }
                let url = web_url("sms_webhook_url", url)?;
                Some(Provider::Webhook { url, secret: Zeroizing::new(secret.to_owned()) })
            }
            Some(other) => {
                return Err(ConfigError(format!("sms_provider {other:?} is not one of webhook, log")));
            }
        };
        let captcha = match (&self.captcha_verify_url, &self.captcha_secret) {
            (None, None) => None,
            (Some(url), Some(secret)) if !secret.expose().is_empty() => Some(Captcha {
                verify_url: web_url("captcha_verify_url", url)?,
                secret: Zeroizing::new(secret.expose().to_owned()),
            }),
            _ => return Err(ConfigError("captcha_verify_url and captcha_secret go together".into())),
        };
        Ok((provider, captcha))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_needs_what_it_uses() {
        let mut config = Config::default();
        assert!(config.sms().expect("none").provider.is_none());
        config.sms_provider = Some("webhook".into());
        assert!(config.sms().is_err(), "no URL");
        config.sms_webhook_url = Some("https://sms.example.com/hook".into());
        config.sms_webhook_secret = Some("short".into());
        assert!(config.sms().is_err(), "short secret");
        config.sms_webhook_secret = Some("0123456789abcdef0123456789abcdef".into());
        assert!(matches!(config.sms().expect("ok").provider, Some(Provider::Webhook { .. })));
        config.sms_provider = Some("log".into());
        config.issuer = Some("https://login.example.com".into());
        assert!(config.sms().is_err(), "log under https");
        config.issuer = Some("http://127.0.0.1:8080".into());
        assert!(matches!(config.sms().expect("ok").provider, Some(Provider::Log)));
        config.captcha_verify_url = Some("https://challenges.example.com/siteverify".into());
        assert!(config.sms().is_err(), "a captcha URL without its secret");
    }
}
