//! The OpenAPI 3.1 document, made from the handlers themselves: each route
//! is registered with the `#[utoipa::path]` that describes it, and bodies
//! and answers are described by the types the handlers read and write, so
//! what is served is what is documented.

use serde::Serialize;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use ciam_core::ErrorCode;

/// The body of every refusal (docs/api.md §1).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The error code; see the README's error table.
    #[schema(schema_with = error_code)]
    pub error_code: &'static str,
    /// The message, in the language `X-L` asks for (Chinese for `zh…`,
    /// English otherwise).
    pub error_msg: String,
    /// The request's id (`X-Request-Id`), also in the log line and the
    /// audit event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Every code the server answers with.
fn error_code() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .build()
}

/// The refusals every SDK call may answer.
#[derive(IntoResponses)]
#[expect(dead_code, reason = "read by the OpenAPI derive only")]
pub(crate) enum SdkRefusals {
    /// `PARAM.0001` device headers, `PARAM.0002` client id, `PARAM.0003`
    /// app, `REQ.0001`–`0003`/`0009` the request's shape, and the call's own
    /// codes (the seed's and `PWD.*`), all with HTTP 400.
    #[response(status = 400)]
    Refused(ErrorBody),
    /// `REQ.0008`: the body did not arrive within 3 s.
    #[response(status = 408)]
    BodyTimeout(ErrorBody),
    /// `REQ.0004`: the body is over 16 KiB.
    #[response(status = 413)]
    BodyTooLarge(ErrorBody),
    /// `REQ.0007`: the caller's address has used up its failed password
    /// attempts, its share of a full hashing pool, or its calls in progress;
    /// `SMS.0001`, `SMS.0002`, `SMS.0007`: an SMS limit (docs/sms.md).
    #[response(status = 429, headers(("Retry-After" = i64, description = "Seconds until the address may try again")))]
    Throttled(ErrorBody),
    /// `COM.0002`: system busy (database unreachable, hashing pool full).
    #[response(status = 500)]
    Busy(ErrorBody),
}

/// The refusals every admin call may answer.
#[derive(IntoResponses)]
#[expect(dead_code, reason = "read by the OpenAPI derive only")]
pub(crate) enum AdminRefusals {
    /// `ADMIN.REQ.0001`: the body is not a JSON object; `ADMIN.REQ.0005`:
    /// the request could not be read.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `ADMIN.AUTH.0001`: no or wrong admin token.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"ciam\"`")))]
    Unauthorized(ErrorBody),
    /// `ADMIN.RES.0001`: no such resource.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `ADMIN.REQ.0004`: the body did not arrive within 3 s.
    #[response(status = 408)]
    BodyTimeout(ErrorBody),
    /// `ADMIN.REQ.0003`: the body is over 64 KiB.
    #[response(status = 413)]
    BodyTooLarge(ErrorBody),
    /// `ADMIN.REQ.0002`: the body is not declared `application/json`.
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// `ADMIN.PARAM.0001`: a field or parameter is invalid; the message
    /// names it and says why.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// `ADMIN.REQ.0008`: the caller's address presented too many wrong
    /// admin tokens of late; refused even with the right one.
    #[response(status = 429, headers(("Retry-After" = i64, description = "Seconds until the address may try again")))]
    Throttled(ErrorBody),
    /// `ADMIN.COM.0001`: the server could not complete the call.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// The admin token's security scheme.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("admin_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("access_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document's frame; the paths come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ciam",
        description = "A customer-identity login server: mobile number and password login, the password-expiry \
                       flows, tokens, and the operator API. Every refusal is `{\"error_code\", \"error_msg\"}`; the \
                       codes and both languages of each message are in the README's error table.",
    ),
    tags(
        (name = "sdk", description = "The calls client apps make (the vendor's SDK API)."),
        (name = "admin", description = "The operator API, behind `Authorization: Bearer <admin token>`."),
        (name = "oidc", description = "OpenID Connect: the code flow with PKCE, the hosted login page, tokens, \
                                         userinfo, revocation, logout and SSO tickets (docs/oidc.md). Errors of the \
                                         token, userinfo and revocation endpoints are OAuth 2.0's \
                                         `{\"error\", \"error_description\"}`."),
        (name = "discovery", description = "Keys, discovery, health and this document."),
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminToken),
)]
pub(crate) struct Frame;

/// Links from the calls that create a resource to the calls on it, so that
/// a client (or a fuzzer's stateful phase) can follow one to the next.
pub(crate) fn link_resources(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    let links: [(&str, &str, &str, &[&str]); 2] = [
        ("/api/v2/admin/apps", "client_id", "/client_id", &["get_app", "update_app", "delete_app"]),
        (
            "/api/v2/admin/users",
            "id",
            "/id",
            &["get_user", "update_user", "delete_user", "unlock_user", "revoke_sessions"],
        ),
    ];
    for (path, parameter, pointer, operations) in links {
        let created = document
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut())
            .and_then(|post| post.responses.responses.get_mut("201"));
        let Some(utoipa::openapi::RefOr::T(created)) = created else {
            continue;
        };
        for operation in operations {
            let link = LinkBuilder::new()
                .operation_id(*operation)
                .parameter(parameter, format!("$response.body#{pointer}"))
                .build();
            created.links.insert((*operation).to_owned(), link.into());
        }
    }
}
