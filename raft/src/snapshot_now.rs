//! Taking a snapshot on demand (`raftcart cluster snapshot`), rather than
//! waiting for the every-N-entries policy.

use std::time::Duration;

use crate::error::ClusterError;
use raftcart_types::Raft;

/// Snapshots this node's state machine and waits until the snapshot covers
/// everything it had applied when asked. Returns the snapshot's log index.
pub async fn snapshot_and_wait(raft: &Raft, within: Duration) -> Result<u64, ClusterError> {
    let applied = raft.metrics().borrow().last_applied.map(|l| l.index);
    raft.trigger()
        .snapshot()
        .await
        .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
    let m = raft
        .wait(Some(within))
        .metrics(
            |m| m.snapshot.is_some() && m.snapshot.map(|l| l.index) >= applied,
            "snapshot",
        )
        .await
        .map_err(|e| ClusterError::Unavailable(format!("no snapshot in time: {e}")))?;
    Ok(m.snapshot.map_or(0, |l| l.index))
}
