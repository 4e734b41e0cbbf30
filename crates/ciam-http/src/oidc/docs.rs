//! How the OpenID Connect endpoints are described in the OpenAPI
//! document: their error bodies and the answers the pages give.

use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// An OAuth 2.0 error (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_token` or
    /// `server_error`.
    pub error: &'static str,
    /// What a developer reads.
    pub error_description: String,
}

/// The claims userinfo answers, by scope; a claim with no value is left
/// out.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema only: the domain builds the claims")]
pub(crate) struct UserinfoClaims {
    /// The user's id, the id_token's `sub`.
    sub: String,
    /// `phone`: E.164.
    phone_number: Option<String>,
    /// `phone`.
    phone_number_verified: Option<bool>,
    /// `profile`: the display name.
    name: Option<String>,
    /// `profile`: the user name.
    preferred_username: Option<String>,
    /// `email`.
    email: Option<String>,
    /// `email`: always false.
    email_verified: Option<bool>,
}

/// The answers of an endpoint a browser opens: a page or a redirect.
#[derive(IntoResponses)]
#[expect(dead_code, reason = "read by the OpenAPI derive only")]
pub(crate) enum PageAnswers {
    /// A page: the login page, a question, or what happened.
    #[response(status = 200, content_type = "text/html")]
    Page(String),
    /// Back to the app (a code or an error in the query) or on to the next
    /// step.
    #[response(status = 303, headers(("Location" = String, description = "Where the browser goes")))]
    Redirect,
    /// A page saying the request cannot be answered (an unknown app, a
    /// redirect URI it did not register, an expired link, a query that
    /// cannot be read); nothing is redirected.
    #[response(status = 400, content_type = "text/html")]
    Refused(String),
    /// A form not bound to this browser, or posted from another site.
    #[response(status = 403, content_type = "text/html")]
    Forbidden(String),
    /// The server cannot answer now (the database).
    #[response(status = 503, content_type = "text/html")]
    Busy(String),
}

/// The refusals of the token and revocation endpoints.
#[derive(IntoResponses)]
#[expect(dead_code, reason = "read by the OpenAPI derive only")]
pub(crate) enum OAuthRefusals {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`,
    /// `invalid_scope`.
    #[response(status = 400)]
    Bad(OAuthErrorBody),
    /// `invalid_client`.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Basic realm=\"ciam\"` when Basic was tried")))]
    Client(OAuthErrorBody),
    /// `server_error`.
    #[response(status = 500)]
    Failed(OAuthErrorBody),
}
