//! What one attempt to run an operation on one node came to. It also
//! travels back from the leader to a forwarding node.

use raftcart_domain::{Outcome, Refusal, Reply};
use serde::{Deserialize, Serialize};

use raftcart_types::NodeId;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Attempt {
    Done(Outcome),
    /// The leader's commit point, as confirmed by a quorum.
    ReadIndex(u64),
    /// This node is not the leader; it names the one it knows, if any.
    NotLeader(Option<NodeId>),
    /// No answer could be had in time (lost quorum, shutting down...). For a
    /// write the outcome is unknown; a retry with the same id is safe.
    Unavailable(String),
}

impl Attempt {
    /// Done: the operation succeeded, with a message for the operator.
    pub fn done(msg: String) -> Attempt {
        Attempt::Done(Ok(Reply::Done { msg }))
    }

    /// Done: refused as invalid, nothing changed.
    pub fn refused(why: String) -> Attempt {
        Attempt::Done(Err(Refusal::Invalid(why)))
    }

    /// Done: refused because what it names does not exist.
    pub fn not_found(why: String) -> Attempt {
        Attempt::Done(Err(Refusal::NotFound(why)))
    }
}
