//! RocksDB storage for a raftcart node: the Raft log and vote, the state
//! machine, and snapshots, all in one database (one write-ahead log).
//!
//! Durability rules (see RAFT-NOTES.md): log appends and votes are synced
//! before they are acknowledged (appends by a group commit that shares one
//! fsync among all the appends waiting for it); each applied batch of entries is one atomic
//! write that also records the last applied log id; a snapshot's data and
//! metadata come from one RocksDB view; a snapshot file is only ever
//! replaced by a newer one (a build and an install can run at once).

// openraft's trait methods return its StorageError (over 200 bytes); the
// helpers here return the same type rather than converting at every call.
#![allow(clippy::result_large_err)]

mod background;
mod backup;
mod db;
mod error;
mod frame;
mod keys;
mod log_store;
mod purge;
mod snapshot;
mod state_machine;
mod state_view;
mod wal_sync;

pub use backup::{refuse_occupied, Backup, BackupError, Summary};
pub use db::open;
pub use log_store::LogStore;
pub use state_machine::StateMachine;
pub use state_view::StateView;
