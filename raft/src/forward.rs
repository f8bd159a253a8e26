//! Sending an operation to the leader over the Raft port
//! (`/raft/forward`), signed like every node-to-node request; the leader's
//! side is in `rpc_server`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attempt::Attempt;
use crate::op::Op;
use crate::peer_client::PeerClient;
use raftcart_types::codec;
use raftcart_types::{NodeId, Raft};

pub const PATH_FORWARD: &str = "/raft/forward";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardRequest {
    pub op: Op,
    /// How long the leader may take before giving up.
    pub wait_ms: u64,
    /// The client request's id, for the leader's logs.
    pub trace_id: Option<String>,
}

/// Sends `op` to `leader` and returns its answer, or gives up (`NotLeader`)
/// as soon as another leader is elected.
pub async fn to_leader(
    raft: &Raft,
    peers: &PeerClient,
    leader: NodeId,
    op: &Op,
    wait: Duration,
) -> Attempt {
    let addr = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.raft_addr.clone())
    };
    let Some(addr) = addr else {
        return Attempt::Unavailable(format!("leader {leader} has no known address"));
    };
    let req = ForwardRequest {
        op: op.clone(),
        wait_ms: wait.as_millis() as u64,
        trace_id: crate::trace::current(),
    };
    let body = match codec::encode(&req) {
        Ok(b) => b,
        Err(e) => return Attempt::Unavailable(format!("encoding the request: {e}")),
    };
    // A little longer than the leader's own wait, so that its answer
    // (even "unavailable") gets back before we give up on it.
    let sent = peers.post(&addr, PATH_FORWARD, body, wait + Duration::from_millis(200));
    // A frozen or cut-off leader would hold the request for the whole
    // wait; once another leader is elected, retry there instead. The
    // abandoned attempt may still commit: the request id makes that safe.
    // (The server metrics change only with the vote, role, leader or
    // membership, not with every entry as the full metrics do.)
    let mut metrics = raft.server_metrics();
    let deposed = async {
        let _ = metrics
            .wait_for(|m| m.current_leader.is_some_and(|l| l != leader))
            .await
            .is_ok();
    };
    let bytes = tokio::select! {
        sent = sent => match sent {
            Ok(bytes) => bytes,
            Err(e) => return Attempt::Unavailable(format!("leader {leader}: {e}")),
        },
        _ = deposed => return Attempt::NotLeader(None),
    };
    codec::decode(&bytes)
        .unwrap_or_else(|e| Attempt::Unavailable(format!("bad reply from leader {leader}: {e}")))
}
