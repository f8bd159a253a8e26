//! The raftcart domain: the order/stock/payment state machine.
//!
//! Pure logic only. Nothing here does I/O, reads a clock or draws random
//! numbers; storage and consensus live in other crates.

pub mod apply;
pub mod clock;
pub mod command;
pub mod error;
pub mod model;
pub mod outcome;
pub mod query;
pub mod rng;
pub mod state;

pub use apply::{apply_proposal, execute, REQUEST_RECORD_TTL_MS};
pub use clock::{LogClock, MAX_CLOCK_STEP_MS};
pub use command::{Command, Proposal, Proposals, RequestId, MAX_BATCH};
pub use error::Refusal;
pub use model::{Item, Line, Order, Payment, User};
pub use outcome::{Outcome, Reply};
pub use query::{answer, Query};
pub use state::{Changes, MemState, Overlay, RequestRecord, StateRead, StateWrite};
