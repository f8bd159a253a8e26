//! RocksDB storage for a raftcart node: the Raft log and vote, the state
//! machine, and snapshots, all in one database (one write-ahead log).
//!
//! Durability rules (the crash windows they close, and the crash point that
//! proves each, are in docs/STORAGE.md):
//! - log appends and votes are synced before they are acknowledged (appends
//!   on a sync thread, `wal_sync`);
//! - each applied batch of entries is one atomic write that also records the
//!   last applied log id; apply and the queries read the records from a
//!   copy in memory that the batch updates once stored (`records`);
//! - a purge never deletes past what the state machine durably holds: the
//!   rest of what openraft asked for is only hidden from it, and deleted once
//!   the state machine catches up (openraft purges as soon as it queues a
//!   snapshot install, before the install is stored);
//! - a snapshot's data and metadata come from one RocksDB view; a snapshot
//!   file is only ever replaced by a newer one (a build and an install can
//!   run at once);
//! - snapshot files, snapshot data and backups carry a checksum (`frame`),
//!   checked before anything is decoded; received snapshot data is checked
//!   before anything is touched;
//! - the snapshot file is a copy of the database: at open, one that cannot
//!   be read, or from which the log cannot lead to the applied state (a
//!   crash between an install's database write and its file), is rebuilt
//!   from the database.

// openraft's trait methods return its StorageError (over 200 bytes); the
// helpers here return the same type rather than converting at every call.
#![allow(clippy::result_large_err)]

mod background;
mod backup;
mod crash;
mod db;
mod error;
mod frame;
mod keys;
mod log_store;
mod purge;
mod records;
mod snapshot;
mod state_machine;
mod state_view;
mod wal_sync;

pub use backup::{refuse_occupied, Backup, BackupError, Summary};
pub use crash::{is_crash_point, CRASH_POINTS};
pub use db::open;
pub use log_store::LogStore;
pub use state_machine::StateMachine;
pub use state_view::StateView;
