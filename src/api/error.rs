//! Every refusal as a JSON `{"error": ...}` body with the right status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use raftcart_domain::Refusal;
use raftcart_raft::ClusterError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// The node itself failed (storage), not the request.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound(m) => ApiError::not_found(m),
            Refusal::Invalid(m) | Refusal::NoStock(m) | Refusal::NoCredit(m) => {
                ApiError::bad_request(m)
            }
            Refusal::KeyReused(m) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: m,
            },
        }
    }
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: e.to_string(),
        }
    }
}

/// Why a write got no reply. One enum, so that a caller that cares which
/// (the checkout metric) can tell, and every other caller maps it to an
/// HTTP answer with `?`.
#[derive(Debug)]
pub enum WriteError {
    /// Refused before reaching Raft (a malformed Idempotency-Key).
    BadRequest(ApiError),
    /// Refused by the state machine; nothing changed.
    Refused(Refusal),
    /// No leader served it in time; its fate is unknown, and a retry with
    /// the same key is safe.
    Unavailable(ClusterError),
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::BadRequest(e) => e,
            WriteError::Refused(r) => r.into(),
            WriteError::Unavailable(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub async fn unknown_route() -> ApiError {
    ApiError::not_found("no such route")
}

pub async fn wrong_method() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed on this route".into(),
    }
}
