//! The one error type of the HTTP layer. Whatever fails becomes
//! `{"error_code", "error_msg"}` with the code's status, in the caller's
//! language. Infrastructure causes are logged here and never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ciam_core::{CiamError, ErrorCode, Lang};
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    /// What went wrong.
    pub error: CiamError,
    /// The language to say it in.
    pub lang: Lang,
}

#[derive(Serialize)]
struct ErrorBody {
    error_code: &'static str,
    error_msg: String,
}

impl ApiError {
    /// A refusal without placeholders.
    pub fn code(code: ErrorCode, lang: Lang) -> Self {
        Self { error: CiamError::refused(code), lang }
    }

    /// Wraps a domain error.
    pub fn from_ciam(error: CiamError, lang: Lang) -> Self {
        Self { error, lang }
    }

    /// The code the client sees.
    pub fn error_code(&self) -> ErrorCode {
        self.error.code()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self.error {
            CiamError::Internal(cause) => tracing::error!(%cause, "request failed"),
            CiamError::Overloaded => tracing::warn!("password hashing pool saturated"),
            _ => {}
        }
        let code = self.error.code();
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody { error_code: code.as_str(), error_msg: self.error.message(self.lang) };
        (status, Json(body)).into_response()
    }
}
