//! Two writes that measure the layers under a checkout
//! (`bench/compare.sh --ceiling`): one answered by the HTTP server alone,
//! and one that goes through the proposer, Raft, the synced log and apply
//! but touches no record. Admin token only, like the other operator routes.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use raftcart_domain::Command;
use serde_json::json;

use super::handlers::{write, ApiResult};
use super::state::AppState;

/// What HTTP costs: the request is parsed, authenticated and answered.
pub async fn http_only() -> Response {
    Json(json!({ "done": true })).into_response()
}

/// What Raft costs: a command committed by a majority, synced and applied,
/// that changes nothing but the log clock.
pub async fn noop(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    write(&s, &headers, Command::Noop).await
}
