//! `POST /debug/crash-at/{name}`: arms a storage crash point on this node
//! (admin token only). Built only with the `failpoints` feature: release
//! builds have no such route. The process aborts when it next reaches the
//! point; restarted, it comes up with nothing armed.

use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;

pub async fn crash_at(Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    if !raftcart_storage::is_crash_point(&name) {
        return Err(ApiError::not_found(format!(
            "no crash point {name:?} (see raftcart_storage::CRASH_POINTS)"
        )));
    }
    fail::cfg(name.as_str(), "return").map_err(|e| ApiError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("arming {name}: {e}"),
    })?;
    tracing::warn!(point = %name, "crash point armed: this node aborts when it reaches it");
    Ok(Json(json!({ "armed": name })))
}
