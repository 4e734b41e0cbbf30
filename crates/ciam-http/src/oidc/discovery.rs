//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0):
//! where each endpoint is and what they support.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AUTHORIZE_PATH, LOGOUT_PATH, REVOKE_PATH, TOKEN_PATH, USERINFO_PATH};
use crate::AppState;

/// OpenID Connect discovery metadata.
#[derive(Serialize, ToSchema)]
pub(crate) struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    revocation_endpoint: String,
    end_session_endpoint: String,
    jwks_uri: String,
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: [&'static str; 2],
    code_challenge_methods_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    scopes_supported: [&'static str; 5],
    claims_supported: [&'static str; 16],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 2],
    prompt_values_supported: [&'static str; 3],
    ui_locales_supported: [&'static str; 2],
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    authorization_response_iss_parameter_supported: bool,
}

/// Where the endpoints and keys are and what they support (OpenID Connect
/// Discovery).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery", responses((status = 200, body = Discovery, description = "The metadata")))]
pub(crate) async fn openid_configuration(State(state): State<AppState>) -> Json<Discovery> {
    let issuer = state.ciam.config().issuer.clone();
    let at = |path: &str| format!("{}{path}", issuer.trim_end_matches('/'));
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    Json(Discovery {
        authorization_endpoint: at(AUTHORIZE_PATH),
        token_endpoint: at(TOKEN_PATH),
        userinfo_endpoint: at(USERINFO_PATH),
        revocation_endpoint: at(REVOKE_PATH),
        end_session_endpoint: at(LOGOUT_PATH),
        jwks_uri: at("/api/v1/oauth2/keys"),
        issuer,
        response_types_supported: ["code"],
        response_modes_supported: ["query"],
        grant_types_supported: ["authorization_code", "refresh_token"],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: auth_methods,
        revocation_endpoint_auth_methods_supported: auth_methods,
        scopes_supported: ciam_core::oidc::SCOPES,
        claims_supported: [
            "iss",
            "aud",
            "sub",
            "iat",
            "nbf",
            "exp",
            "jti",
            "auth_time",
            "nonce",
            "at_hash",
            "name",
            "preferred_username",
            "phone_number",
            "phone_number_verified",
            "email",
            "email_verified",
        ],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256", "EdDSA"],
        prompt_values_supported: ["none", "login", "consent"],
        ui_locales_supported: ["zh-CN", "en"],
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
    })
}
