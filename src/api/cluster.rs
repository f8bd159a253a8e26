//! The operator's routes under `/cluster`: status, membership changes,
//! snapshots and backups.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use raftcart_raft::{snapshot_now, MembershipOp};
use raftcart_storage::Backup;
use raftcart_types::NodeInfo;
use serde_json::json;

use super::error::ApiError;
use super::handlers::ApiResult;
use super::params::Params;
use super::reply::respond;
use super::state::AppState;

/// Response header naming the log index a backup was taken at.
pub const BACKUP_INDEX_HEADER: &str = "x-raftcart-applied-index";

/// Building a snapshot reads the whole state: give it far longer than a
/// request.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(120);

pub async fn cluster_status(State(s): State<AppState>) -> Response {
    Json(s.status()).into_response()
}

async fn change_membership(state: &AppState, op: MembershipOp) -> ApiResult {
    respond(state.executor.change_membership(op).await?)
}

fn address(p: &Params, i: usize, name: &str) -> Result<String, ApiError> {
    let addr = p.id(i, name)?;
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(addr),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be HOST:PORT, got {addr:?}"
        ))),
    }
}

pub async fn add_learner(State(s): State<AppState>, p: Params) -> ApiResult {
    let id = p.number(0, "node id")?;
    let info = NodeInfo {
        api_addr: address(&p, 1, "api_addr")?,
        raft_addr: address(&p, 2, "raft_addr")?,
    };
    change_membership(&s, MembershipOp::AddLearner { id, info }).await
}

/// `POST /cluster/transfer-leader/{id}`.
pub async fn transfer_leader_to(State(s): State<AppState>, p: Params) -> ApiResult {
    let to = p.number(0, "node id")?;
    respond(s.executor.transfer_leader(Some(to)).await?)
}

/// `POST /cluster/transfer-leader`: to the most caught-up voter.
pub async fn transfer_leader(State(s): State<AppState>) -> ApiResult {
    respond(s.executor.transfer_leader(None).await?)
}

pub async fn promote(State(s): State<AppState>, p: Params) -> ApiResult {
    let id = p.number(0, "node id")?;
    change_membership(&s, MembershipOp::Promote { id }).await
}

pub async fn remove_member(State(s): State<AppState>, p: Params) -> ApiResult {
    let id = p.number(0, "node id")?;
    change_membership(&s, MembershipOp::Remove { id }).await
}

/// Snapshots this node (not the cluster: `raftcart cluster snapshot` asks
/// every member).
pub async fn snapshot(State(s): State<AppState>) -> ApiResult {
    let raft = s.executor.raft();
    let index = snapshot_now::snapshot_and_wait(raft, SNAPSHOT_WAIT).await?;
    let node_id = raft.metrics().borrow().id;
    Ok(Json(json!({ "node_id": node_id, "snapshot_index": index })).into_response())
}

/// A consistent copy of the state machine, served by this node once it has
/// applied everything committed when the request arrived: it holds every
/// write acknowledged before the backup started.
pub async fn backup(State(s): State<AppState>) -> ApiResult {
    // A backup holds the whole state machine in memory, about twice: one
    // at a time per node, so parallel calls cannot exhaust memory.
    static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let Ok(_running) = ONE_AT_A_TIME.try_acquire() else {
        return Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "a backup is already being taken on this node: try again when it is done"
                .into(),
        });
    };
    s.executor.catch_up().await?;
    let view = s.view.clone();
    let captured = tokio::task::spawn_blocking(move || {
        let backup = Backup::capture(&view)?;
        Ok::<_, raftcart_storage::BackupError>((backup.applied_index(), backup.encode()?))
    })
    .await
    .map_err(|e| ApiError::internal(format!("backup task failed: {e}")))?;
    let (index, bytes) = captured.map_err(|e| ApiError::internal(format!("backup failed: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static(BACKUP_INDEX_HEADER),
                index.map_or("none".into(), |i| i.to_string()),
            ),
        ],
        bytes,
    )
        .into_response())
}
