//! Apps as OpenID Connect clients (docs/oidc.md): the redirect URIs they
//! register and how a presented one is matched, their secrets, and how a
//! client authenticates at the token and revocation endpoints.

use crate::admin::invalid;
use crate::error::{CiamError, Reason};
use crate::model::{App, ClientType};
use crate::service::Ciam;
use crate::token::{OpaqueToken, constant_time_eq, sha256_hex};

use super::GRANT_TOKEN_LEN;

/// At most this many URIs in each list.
pub const MAX_URIS: usize = 20;
/// The longest URI taken.
const MAX_URI_LEN: usize = 2_000;

/// Whether `host` is a loopback host a native app listens on (RFC 8252 §7.3).
fn loopback(url: &url::Url) -> bool {
    matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost")
}

/// Why `uri` cannot be registered: an absolute `https` URI (or `http` for a
/// loopback host), with no fragment, no user and password.
pub fn check_uri(uri: &str) -> Result<(), Reason> {
    if uri.len() > MAX_URI_LEN || uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Reason::new("not a URI", "不是有效的 URI"));
    }
    let Ok(url) = url::Url::parse(uri) else {
        return Err(Reason::new("must be an absolute URI", "必须是绝对 URI"));
    };
    let allowed = url.scheme() == "https" || (url.scheme() == "http" && loopback(&url));
    if !allowed || url.host().is_none() {
        return Err(Reason::new("must be https, or http on a loopback address", "必须是 https，或回环地址上的 http"));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(Reason::new("must have no fragment and no user", "不能包含片段或用户信息"));
    }
    Ok(())
}

/// Whether a presented `redirect_uri` is the registered one: exactly, but
/// that for `http://127.0.0.1` and `http://[::1]` the port is not compared
/// (a native app listens on any free port, RFC 8252 §7.3).
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(mut a), Ok(mut b)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let ip_loopback = |u: &url::Url| {
        u.scheme() == "http" && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || u.scheme() == "http" && matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
    };
    if !ip_loopback(&a) || !ip_loopback(&b) {
        return false;
    }
    // Compared without their ports, as text, so nothing else is loosened.
    let (Ok(()), Ok(())) = (a.set_port(None), b.set_port(None)) else {
        return false;
    };
    a.as_str() == b.as_str() && presented.starts_with("http://")
}

/// Checks a list of URIs an operator registers.
pub(crate) fn check_uris(field: &str, uris: &[String]) -> Result<(), CiamError> {
    if uris.len() > MAX_URIS {
        return Err(invalid(field, Reason::new(format!("at most {MAX_URIS}"), format!("最多 {MAX_URIS} 个"))));
    }
    for uri in uris {
        check_uri(uri).map_err(|why| invalid(field, why))?;
    }
    Ok(())
}

/// How a client presented itself at the token or revocation endpoint.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// HTTP Basic: the decoded client id and secret.
    pub basic: Option<(String, String)>,
    /// `client_id` in the form.
    pub client_id: Option<String>,
    /// `client_secret` in the form.
    pub client_secret: Option<String>,
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The error code.
    pub error: &'static str,
    /// What a developer reads.
    pub description: String,
    /// 401 for `invalid_client` and `invalid_token`, else 400 (500 when the
    /// server failed).
    pub status: u16,
    /// Whether the client tried HTTP Basic (then the 401 names it).
    pub basic: bool,
}

impl OAuthError {
    /// A 400 error.
    pub fn bad(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into(), status: 400, basic: false }
    }

    /// 401 `invalid_client`.
    pub fn client(basic: bool) -> Self {
        Self { error: "invalid_client", description: "client authentication failed".into(), status: 401, basic }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        CiamError::from(e).into()
    }
}

impl From<CiamError> for OAuthError {
    fn from(e: CiamError) -> Self {
        if let CiamError::Internal(cause) = &e {
            tracing::error!(%cause, "OpenID Connect request failed");
        }
        Self { error: "server_error", description: "the server could not answer".into(), status: 500, basic: false }
    }
}

impl Ciam {
    /// A new secret for a confidential app, stored as its digest; the old
    /// one stops working. Answered once.
    pub async fn new_client_secret(&self, client_id: &str) -> Result<OpaqueToken, CiamError> {
        let mut app = self.app(client_id).await?;
        if app.oidc.client_type != ClientType::Confidential {
            return Err(invalid("client_type", Reason::new("a public app has no secret", "公开应用没有密钥")));
        }
        let secret = OpaqueToken::generate(GRANT_TOKEN_LEN)?;
        app.oidc.secret_digest = Some(sha256_hex(secret.expose().as_bytes()));
        if !self.store().update_app(&app).await? {
            return Err(crate::admin::not_found(crate::admin::Resource::App));
        }
        self.forget_app(&app.client_id);
        Ok(secret)
    }

    /// The enabled app a client authenticated as: a confidential client by
    /// its secret (Basic or form, one of them), a public one by its id.
    pub async fn authenticate_client(&self, auth: &ClientAuth) -> Result<App, OAuthError> {
        let tried_basic = auth.basic.is_some();
        let (id, secret) = match (&auth.basic, &auth.client_id) {
            (Some((id, secret)), form_id) => {
                if form_id.as_ref().is_some_and(|f| f != id) || auth.client_secret.is_some() {
                    return Err(OAuthError::bad("invalid_request", "one client authentication method only"));
                }
                (id.clone(), Some(secret.clone()))
            }
            (None, Some(id)) => (id.clone(), auth.client_secret.clone()),
            (None, None) => return Err(OAuthError::client(false)),
        };
        let app = self.enabled_app(&id).await?.ok_or_else(|| OAuthError::client(tried_basic))?;
        match app.oidc.client_type {
            ClientType::Public if secret.as_deref().is_none_or(str::is_empty) => Ok(app),
            ClientType::Public => Err(OAuthError::client(tried_basic)),
            ClientType::Confidential => {
                let presented = sha256_hex(secret.unwrap_or_default().as_bytes());
                match &app.oidc.secret_digest {
                    Some(kept) if constant_time_eq(kept, &presented) => Ok(app),
                    _ => Err(OAuthError::client(tried_basic)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_uris_are_https_or_loopback_http() {
        assert!(check_uri("https://app.example.com/cb").is_ok());
        assert!(check_uri("http://127.0.0.1:8080/cb").is_ok());
        assert!(check_uri("http://[::1]/cb").is_ok());
        assert!(check_uri("http://localhost:3000/cb").is_ok());
        assert!(check_uri("http://app.example.com/cb").is_err());
        assert!(check_uri("https://app.example.com/cb#x").is_err());
        assert!(check_uri("https://user:pw@app.example.com/cb").is_err());
        assert!(check_uri("/cb").is_err());
        assert!(check_uri("javascript:alert(1)").is_err());
        assert!(check_uri("https://app.example.com/c b").is_err());
    }

    #[test]
    fn redirect_uris_match_exactly_but_for_a_loopback_port() {
        assert!(redirect_matches("https://a.test/cb", "https://a.test/cb"));
        assert!(!redirect_matches("https://a.test/cb", "https://a.test/cb/"));
        assert!(!redirect_matches("https://a.test/cb", "https://a.test:444/cb"));
        assert!(!redirect_matches("https://a.test/cb", "https://A.test/cb"));
        assert!(redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(redirect_matches("http://127.0.0.1:1/cb", "http://127.0.0.1:2/cb"));
        assert!(redirect_matches("http://[::1]:1/cb", "http://[::1]:9/cb"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:5/other"));
        assert!(!redirect_matches("http://localhost/cb", "http://localhost:5/cb"), "localhost: exact");
        assert!(!redirect_matches("http://127.0.0.1/cb", "https://127.0.0.1:5/cb"));
    }
}
