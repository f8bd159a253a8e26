//! Everything between a node's API and openraft: the node-to-node network
//! (`network`, `peer_client`, `rpc_server`, signed by `peer_auth`), the
//! executor that runs an operation (`op`) on the leader wherever it arrives
//! (`executor`, `forward`, `proposer`), membership changes, elections that
//! start once a majority has lost the leader, leadership hand-over, status
//! and snapshots on demand.

pub mod attempt;
pub mod election;
pub mod error;
pub mod executor;
pub mod forward;
pub mod leadership;
pub mod membership;
pub mod network;
pub mod op;
pub mod peer_auth;
pub mod peer_client;
pub mod proposer;
pub mod rpc_server;
pub mod shared_round;
pub mod snapshot_now;
pub mod status;
pub mod trace;

pub use attempt::Attempt;
pub use error::ClusterError;
pub use executor::{Executor, ExecutorConfig, ReadIndexCounts};
pub use membership::MembershipOp;
pub use op::{Consistency, Op};
pub use proposer::Batching;
pub use status::{ClusterStatus, MemberStatus};
