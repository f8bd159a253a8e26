//! What a node can be asked to run on the leader: an operation (`Op`), and
//! how fresh a read must be (`Consistency`).

use raftcart_domain::{Command, Query, RequestId};
use raftcart_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::membership::MembershipOp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Write {
        request_id: RequestId,
        command: Command,
    },
    /// Answer a query on the leader (`Executor::read` uses `ReadIndex`).
    Read {
        query: Query,
    },
    /// Confirm leadership and name the commit point (see
    /// `Executor::catch_up`): a linearizable read on any node.
    ReadIndex,
    Membership(MembershipOp),
    /// Hand the leadership to this voter, or to the most caught-up one.
    TransferLeader {
        to: Option<NodeId>,
    },
}

impl Op {
    /// For logs: the command's name, or the kind of operation.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Write { command, .. } => command.name(),
            Op::Read { .. } => "read",
            Op::ReadIndex => "read_index",
            Op::Membership(_) => "membership",
            Op::TransferLeader { .. } => "transfer_leader",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Confirm leadership with a quorum (read index) and read, on this
    /// node, once it has applied up to the commit point: never stale.
    Linearizable,
    /// Read this node's state as it is: fast, possibly behind.
    Stale,
}
