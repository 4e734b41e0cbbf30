//! The OIDC harness: a server whose issuer is its own plain-HTTP loopback
//! address, a relying party written by others (the `openidconnect` crate)
//! that speaks to it over the tests' reqwest, and a small cookie-keeping
//! "browser" that fills the hosted login page.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::url::Url;
use openidconnect::{
    AccessToken, AccessTokenHash, AsyncHttpClient, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardErrorResponse,
    SubjectIdentifier, TokenResponse,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, free_port, verify_with_jwks};

/// The redirect URI the relying parties register (nothing listens there:
/// the browser never follows the final redirect).
pub const REDIRECT: &str = "http://127.0.0.1:8765/cb";
pub const MOBILE: &str = "15200000000";
/// [`MOBILE`] in E.164 (the default region is CN).
pub const E164: &str = "+8615200000000";

/// A server on a free loopback port whose issuer is `http://127.0.0.1:PORT`,
/// so its cookies are plain `ciam_bind` / `ciam_sso` without `Secure`, and
/// reqwest sends them over HTTP.
pub async fn spawn_oidc(backend: Backend) -> TestApp {
    let port = free_port();
    let app = TestApp::spawn_with(backend, |config| {
        config.listen = format!("127.0.0.1:{port}");
        config.issuer = Some(format!("http://127.0.0.1:{port}"));
    })
    .await;
    assert_eq!(app.base, format!("http://127.0.0.1:{port}"));
    app
}

/// The issuer of a server started by [`spawn_oidc`].
pub fn issuer(app: &TestApp) -> String {
    app.config.issuer.clone().expect("issuer")
}

/// Registers an app of `client_type` ("public" or "confidential") with
/// [`REDIRECT`]; returns its client id and, for a confidential one, the
/// secret from the create answer.
pub async fn register(app: &TestApp, client_type: &str) -> (String, Option<String>) {
    let body = json!({"name": format!("RP {client_type}"), "redirect_uris": [REDIRECT], "client_type": client_type});
    let (status, created) = app.admin(Method::POST, "/apps", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["client_type"], client_type, "{created}");
    assert_eq!(created["redirect_uris"], json!([REDIRECT]), "{created}");
    let client_id = created["client_id"].as_str().expect("client_id").to_owned();
    let secret = match client_type {
        "confidential" => {
            let secret = created["client_secret"].as_str().expect("client_secret").to_owned();
            assert_eq!(secret.len(), 43, "{created}");
            Some(secret)
        }
        _ => {
            assert!(created.get("client_secret").is_none_or(Value::is_null), "{created}");
            None
        }
    };
    (client_id, secret)
}

/// Registers a public app with [`REDIRECT`] and the fields of `extra`;
/// returns its client id.
pub async fn register_with(app: &TestApp, extra: Value) -> String {
    let mut body = json!({"name": "RP", "redirect_uris": [REDIRECT], "client_type": "public"});
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    app.create_app(body).await
}

// --- the relying party's HTTP ---

/// openidconnect's HTTP client: the tests' reqwest, never following a
/// redirect (as the crate advises for the token endpoint).
#[derive(Debug, Clone)]
pub struct RpHttp(reqwest::Client);

impl RpHttp {
    pub fn new() -> Self {
        Self(no_redirects())
    }
}

impl<'c> AsyncHttpClient<'c> for RpHttp {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.execute(reqwest::Request::try_from(request)?).await?;
            let mut builder = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(builder.body(body).expect("a response from its own parts"))
        })
    }
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// A client built from discovery: authorization endpoint set, token and
/// userinfo endpoints "maybe" (as the metadata gave them).
pub type Rp =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// A relying party for `client_id` (and `secret`, sent as
/// client_secret_basic), configured by discovery at the server's issuer.
pub async fn relying_party(app: &TestApp, http: &RpHttp, client_id: &str, secret: Option<&str>) -> Rp {
    let issuer = IssuerUrl::new(issuer(app)).expect("issuer URL");
    let metadata = CoreProviderMetadata::discover_async(issuer, http).await.expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("redirect URL"))
}

/// An authorization request the relying party made, and what it keeps to
/// finish it.
#[derive(Debug)]
pub struct Started {
    pub url: Url,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// An authorization code request for `openid` and `scopes`, with PKCE S256,
/// a random state and a random nonce, and `prompt` when given.
pub fn start(rp: &Rp, scopes: &[&str], prompt: Option<CoreAuthPrompt>) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    if let Some(prompt) = prompt {
        request = request.add_prompt(prompt);
    }
    let (url, state, nonce) = request.url();
    Started { url, state, nonce, verifier }
}

/// The query parameters of a URL (the last of each name).
pub fn query(url: &str) -> HashMap<String, String> {
    Url::parse(url).expect("an absolute URL").query_pairs().into_owned().collect()
}

/// Checks a successful authorization response at [`REDIRECT`] (code, the
/// same state, iss = the issuer) and returns the code.
#[track_caller]
pub fn code_from(location: &str, state: &CsrfToken, issuer: &str) -> AuthorizationCode {
    assert!(location.starts_with(&format!("{REDIRECT}?")), "redirect to {location}");
    let params = query(location);
    assert_eq!(params.get("error"), None, "{location}");
    assert_eq!(params.get("state").map(String::as_str), Some(state.secret().as_str()), "{location}");
    assert_eq!(params.get("iss").map(String::as_str), Some(issuer), "{location}");
    let code = params.get("code").expect("a code");
    assert!(!code.is_empty());
    AuthorizationCode::new(code.clone())
}

/// Checks an error authorization response at [`REDIRECT`] (error, the
/// same state, iss = the issuer).
#[track_caller]
pub fn assert_error_redirect(location: &str, error: &str, state: &str, issuer: &str) {
    assert!(location.starts_with(&format!("{REDIRECT}?")), "redirect to {location}");
    let params = query(location);
    assert_eq!(params.get("error").map(String::as_str), Some(error), "{location}");
    assert_eq!(params.get("state").map(String::as_str), Some(state), "{location}");
    assert_eq!(params.get("iss").map(String::as_str), Some(issuer), "{location}");
    assert_eq!(params.get("code"), None, "{location}");
}

pub type TokenError = RequestTokenError<reqwest::Error, StandardErrorResponse<CoreErrorResponseType>>;

/// Exchanges `code` with `verifier` through the crate.
pub async fn exchange(
    rp: &Rp,
    http: &RpHttp,
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
) -> Result<CoreTokenResponse, TokenError> {
    rp.exchange_code(code).expect("token endpoint").set_pkce_verifier(verifier).request_async(http).await
}

/// Refreshes through the crate.
pub async fn refresh(rp: &Rp, http: &RpHttp, token: &RefreshToken) -> Result<CoreTokenResponse, TokenError> {
    rp.exchange_refresh_token(token).expect("token endpoint").request_async(http).await
}

/// The RFC 6749 error code of a refusal from the token endpoint.
#[track_caller]
pub fn token_error(result: Result<CoreTokenResponse, TokenError>) -> String {
    match result {
        Ok(tokens) => panic!("tokens where a refusal was due: {:?}", tokens.token_type()),
        Err(RequestTokenError::ServerResponse(refusal)) => refusal.error().as_ref().to_owned(),
        Err(other) => panic!("not an RFC 6749 error answer: {other:?}"),
    }
}

/// Userinfo through the crate, expecting `sub`.
pub async fn userinfo(rp: &Rp, http: &RpHttp, token: &AccessToken, sub: &str) -> CoreUserInfoClaims {
    rp.user_info(token.clone(), Some(SubjectIdentifier::new(sub.to_owned())))
        .expect("userinfo endpoint")
        .request_async(http)
        .await
        .expect("userinfo")
}

/// Userinfo by hand: status, `WWW-Authenticate` and the JSON body.
pub async fn userinfo_raw(app: &TestApp, token: &str) -> (StatusCode, Option<String>, Value) {
    let resp = app.client.get(app.url("/api/v1/oauth2/userinfo")).bearer_auth(token).send().await.expect("request");
    let status = resp.status();
    let challenge = header(&resp, "www-authenticate");
    let text = resp.text().await.expect("body");
    (status, challenge, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A token request by hand: status, `WWW-Authenticate` and the JSON body.
pub async fn token_raw(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, Option<String>, Value) {
    let mut req = app.client.post(app.url("/api/v1/oauth2/token")).form(form);
    if let Some((user, password)) = basic {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let challenge = header(&resp, "www-authenticate");
    let text = resp.text().await.expect("body");
    (status, challenge, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The claims of a JWT, decoded without any check.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = token.split('.').nth(1).expect("a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().expect("ASCII header").to_owned())
}

// --- the browser ---

/// One answer the browser got: status, `Location`, `Content-Type`, body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The `Location` of a 303.
    #[track_caller]
    pub fn see_other(&self) -> &str {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        self.location.as_deref().expect("Location")
    }

    /// The hosted login page's form.
    #[track_caller]
    pub fn login_page(&self) -> LoginForm {
        assert_eq!(self.status, StatusCode::OK, "Location {:?}: {}", self.location, self.body);
        self.form()
    }

    /// The hidden fields of a form on this page, whatever its status.
    #[track_caller]
    pub fn form(&self) -> LoginForm {
        assert!(self.content_type.as_deref().is_some_and(|t| t.starts_with("text/html")), "{:?}", self.content_type);
        assert!(self.body.contains("action=\"/api/v1/login\""), "{}", self.body);
        LoginForm {
            request: hidden(&self.body, "request").expect("a hidden request field"),
            csrf: hidden(&self.body, "csrf").expect("a hidden csrf field"),
        }
    }
}

/// The hidden fields of the login form.
#[derive(Debug, Clone)]
pub struct LoginForm {
    pub request: String,
    pub csrf: String,
}

/// The `value` of the `<input>` named `name` (simple string search).
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let value = &tag[tag.find("value=\"")? + "value=\"".len()..];
    Some(unescape(&value[..value.find('"')?]))
}

/// The `(name, value)` of every hidden `<input>` of a page, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let tags = html.split("<input").skip(1).map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())]);
    let hidden = tags.filter(|tag| tag.contains("type=\"hidden\""));
    hidden.filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value").unwrap_or_default()))).collect()
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let value = &tag[tag.find(&format!(" {name}=\""))? + name.len() + 3..];
    Some(unescape(&value[..value.find('"')?]))
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The text of a page's `role="alert"` paragraph.
pub fn alert(html: &str) -> Option<String> {
    let text = &html[html.find("role=\"alert\">")? + "role=\"alert\">".len()..];
    Some(unescape(&text[..text.find('<')?]))
}

/// A browser: follows no redirect, keeps the cookies it is given and sends
/// them back (and `extra` headers on every request).
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` seen, by cookie name (the last one).
    pub set_cookie: BTreeMap<String, String>,
    pub extra: Vec<(String, String)>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let cookies = BTreeMap::new();
        Self { http: no_redirects(), base: app.base.clone(), cookies, set_cookie: BTreeMap::new(), extra: Vec::new() }
    }

    /// Sends the forms from now on to `base` (another instance), keeping
    /// the cookies.
    pub fn set_base(&mut self, base: &str) {
        base.clone_into(&mut self.base);
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }

    /// Posts `fields` form-encoded to `path`, with `Origin` (when given).
    pub async fn post(&mut self, path: &str, fields: &[(String, String)], origin: Option<&str>) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(fields);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        self.send(req).await
    }

    /// Sets a cookie by hand (as a forger would).
    pub fn put_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }

    /// The `Cookie` header value this browser sends.
    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let req = self.http.get(url);
        self.send(req).await
    }

    /// Posts the login form as the page would: `request`, `csrf`, `mobile`,
    /// `password`, with `Origin` (when given).
    pub async fn post_login(&mut self, form: &LoginForm, mobile: &str, password: &str, origin: Option<&str>) -> Answer {
        let fields = [
            ("request", form.request.as_str()),
            ("csrf", form.csrf.as_str()),
            ("mobile", mobile),
            ("password", password),
        ];
        let mut req = self.http.post(format!("{}/api/v1/login", self.base)).form(&fields);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        self.send(req).await
    }

    /// Opens `authorize_url`, expects the login page, signs in with the
    /// right origin and returns the 303's `Location`.
    pub async fn sign_in(&mut self, authorize_url: &str, mobile: &str, password: &str) -> String {
        let form = self.get(authorize_url).await.login_page();
        let origin = self.base.clone();
        self.post_login(&form, mobile, password, Some(&origin)).await.see_other().to_owned()
    }

    async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Answer {
        if !self.cookies.is_empty() {
            req = req.header("Cookie", self.cookie_header());
        }
        for (name, value) in &self.extra {
            req = req.header(name, value);
        }
        let resp = req.send().await.expect("request");
        for value in resp.headers().get_all("set-cookie") {
            let line = value.to_str().expect("ASCII Set-Cookie").to_owned();
            let pair = line.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else { continue };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            let gone = value.is_empty() || line.to_ascii_lowercase().contains("max-age=0");
            if gone {
                self.cookies.remove(&name);
            } else {
                self.cookies.insert(name.clone(), value);
            }
            self.set_cookie.insert(name, line);
        }
        Answer {
            status: resp.status(),
            location: header(&resp, "location"),
            content_type: header(&resp, "content-type"),
            headers: resp.headers().clone(),
            body: resp.text().await.expect("body"),
        }
    }
}

/// A user with a mobile number, a user name and a name; returns its id.
pub async fn alice(app: &TestApp) -> String {
    app.create_user_with(json!({"mobile": MOBILE, "password": PASSWORD, "user_name": "alice", "name": "Alice"})).await
}

/// Verifies the id_token of `tokens` with the crate's verifier and `nonce`
/// (an RS256 signature from the JWKS found by discovery, iss, aud, exp,
/// nonce), the at_hash against the access token, and independently against
/// the JWKS; returns the raw claims.
pub async fn verified_id_token(app: &TestApp, rp: &Rp, tokens: &CoreTokenResponse, nonce: &Nonce) -> Value {
    verified_id_token_signed(app, rp, tokens, nonce, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256).await
}

/// [`verified_id_token`], for an id_token the verifier takes only when
/// signed with `alg` (the crate hashes at_hash as `alg` says: SHA-512 for
/// EdDSA).
pub async fn verified_id_token_signed(
    app: &TestApp,
    rp: &Rp,
    tokens: &CoreTokenResponse,
    nonce: &Nonce,
    alg: CoreJwsSigningAlgorithm,
) -> Value {
    let id_token: &CoreIdToken = tokens.id_token().expect("an id_token");
    let verifier = rp.id_token_verifier().set_allowed_algs([alg.clone()]);
    let claims = id_token.claims(&verifier, nonce).expect("the id_token verifies");
    assert_eq!(claims.issuer().as_str(), issuer(app));
    assert_eq!(claims.audiences().iter().map(|a| a.as_str()).collect::<Vec<_>>(), [rp.client_id().as_str()]);
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("signed"),
        id_token.signing_key(&verifier).expect("its key"),
    )
    .expect("hash");
    assert_eq!(at_hash, &expected);

    let raw = id_token.to_string();
    let (header, checked) = verify_with_jwks(&raw, &app.jwks().await).expect("verifies against the JWKS");
    assert_eq!(header["alg"], serde_json::to_value(&alg).expect("alg"));
    let claims = jwt_claims(&raw);
    assert_eq!(claims, checked);
    assert!(claims.get("api").is_none(), "no api claim in an OIDC id_token: {claims}");
    for name in ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "auth_time", "nonce", "at_hash"] {
        assert!(claims.get(name).is_some(), "{name} missing: {claims}");
    }
    assert_eq!(claims["nonce"], nonce.secret().as_str());
    claims
}

/// A JWT's header.
pub fn jwt_header(token: &str) -> Value {
    use base64::Engine;
    let header = token.split('.').next().expect("a header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}
