//! The client side of node-to-node Raft RPCs: signed HTTP POSTs with binary
//! bodies to the peer's `raft_addr` (served by `rpc_server`).

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::peer_client::{CallError, PeerClient};
use raftcart_types::codec;
use raftcart_types::{NodeId, NodeInfo, TypeConfig};

pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";

/// Fail point (`failpoints` builds): while armed with `return`, every Raft
/// RPC this node sends fails as unreachable before a byte leaves it; armed
/// with `return(<id>)`, only those to node `<id>`. Tests use it to keep a
/// leader's entries off a follower; freezing the follower is not enough,
/// as its kernel still takes in what the leader sends.
pub const CUT_OFF: &str = "raft.send";

/// Opens connections to peers; one pooled, signing client serves them all.
#[derive(Clone)]
pub struct Network {
    client: PeerClient,
}

impl Network {
    pub fn new(client: PeerClient) -> Self {
        Network { client }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        Peer {
            client: self.client.clone(),
            target,
            addr: node.raft_addr.clone(),
        }
    }
}

pub struct Peer {
    client: PeerClient,
    target: NodeId,
    addr: String,
}

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        #[cfg(feature = "failpoints")]
        if fail::eval(CUT_OFF, |to| {
            to.is_none_or(|to| to == self.target.to_string())
        }) == Some(true)
        {
            let cut = std::io::Error::other("cut off by the raft.send fail point");
            return Err(RPCError::Unreachable(Unreachable::new(&cut)));
        }
        let body = codec::encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let bytes = match self
            .client
            .post(&self.addr, path, body, option.hard_ttl())
            .await
        {
            Ok(bytes) => bytes,
            // Refused connections mean the peer is down: openraft backs off.
            Err(e @ CallError::Unreachable(_)) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            codec::decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call(PATH_APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(PATH_SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call(PATH_VOTE, &rpc, &option).await
    }
}
