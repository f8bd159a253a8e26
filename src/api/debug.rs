//! Test builds only (the `failpoints` feature; release builds have no such
//! routes), admin token only:
//! - `POST /debug/crash-at/{name}` arms a storage crash point: the process
//!   aborts when it next reaches the point;
//! - `POST /debug/cut-off` arms Raft's `raft.send` fail point: every Raft
//!   RPC this node sends fails as unreachable, while it still answers the
//!   RPCs it receives; `POST /debug/cut-off/{id}` cuts off only the RPCs to
//!   node `id`; `DELETE /debug/cut-off` lifts either;
//! - `POST /debug/hold-joint` arms storage's `HOLD_JOINT`: this node's state
//!   machine waits before applying a joint membership entry, so a
//!   membership change led by this node stays between its two steps;
//!   `DELETE /debug/hold-joint` lifts it.
//!
//! What is armed lasts until it is lifted or the process ends; restarted, a
//! node has nothing armed.

use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::params::Params;

pub async fn crash_at(Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    if !raftcart_storage::is_crash_point(&name) {
        return Err(ApiError::not_found(format!(
            "no crash point {name:?} (see raftcart_storage::CRASH_POINTS)"
        )));
    }
    arm(&name, "return")?;
    tracing::warn!(point = %name, "crash point armed: this node aborts when it reaches it");
    Ok(Json(json!({ "armed": name })))
}

pub async fn cut_off() -> Result<Json<Value>, ApiError> {
    let name = raftcart_raft::network::CUT_OFF;
    arm(name, "return")?;
    tracing::warn!(point = %name, "cut off: this node sends no Raft RPC");
    Ok(Json(json!({ "armed": name })))
}

pub async fn cut_off_to(p: Params) -> Result<Json<Value>, ApiError> {
    let id = p.number(0, "node id")?;
    let name = raftcart_raft::network::CUT_OFF;
    arm(name, &format!("return({id})"))?;
    tracing::warn!(point = %name, to = id, "cut off: this node sends no Raft RPC to node {id}");
    Ok(Json(json!({ "armed": name, "to": id })))
}

pub async fn lift_cut_off() -> Json<Value> {
    let name = raftcart_raft::network::CUT_OFF;
    fail::remove(name);
    tracing::warn!(point = %name, "cut-off lifted");
    Json(json!({ "lifted": name }))
}

pub async fn hold_joint() -> Result<Json<Value>, ApiError> {
    let name = raftcart_storage::HOLD_JOINT;
    arm(name, "return")?;
    tracing::warn!(point = %name, "apply holds before joint membership entries");
    Ok(Json(json!({ "armed": name })))
}

pub async fn lift_hold_joint() -> Json<Value> {
    let name = raftcart_storage::HOLD_JOINT;
    fail::remove(name);
    tracing::warn!(point = %name, "hold on joint membership entries lifted");
    Json(json!({ "lifted": name }))
}

fn arm(name: &str, action: &str) -> Result<(), ApiError> {
    fail::cfg(name, action).map_err(|e| ApiError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("arming {name}: {e}"),
    })
}
