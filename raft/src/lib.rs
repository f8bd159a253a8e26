//! Consensus glue: the node-to-node network (signed, bounded), and
//! the layer that runs a client operation on the leader wherever it arrives.

pub mod attempt;
pub mod forward;
pub mod membership;
pub mod network;
pub mod peer_auth;
pub mod peer_client;
pub mod proposer;
pub mod rpc_server;
pub mod snapshot_now;
pub mod status;
pub mod trace;

pub use attempt::{Attempt, ClusterError};
pub use forward::{Consistency, Executor, ExecutorConfig, Op};
pub use membership::MembershipOp;
pub use proposer::Batching;
pub use status::{ClusterStatus, MemberStatus};
