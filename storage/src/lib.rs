//! Storage for a raftcart node: the Raft log and vote in RocksDB (one
//! write-ahead log), the state machine in memory, and its durable copy in
//! the snapshot file.
//!
//! Durability rules (the crash windows they close, and the crash point that
//! proves each, are in docs/STORAGE.md):
//! - log appends and votes are synced before they are acknowledged (appends
//!   on a sync thread, `wal_sync`);
//! - applying entries writes nothing: the records change in memory
//!   (`records`), and the entries stay in the synced log until a snapshot
//!   file holds their effect; a restart loads the file and applies the
//!   rest of the log again;
//! - a purge never deletes past the snapshot file: the rest of what
//!   openraft asked for is only hidden from it, and deleted once a file
//!   holds it (openraft purges as soon as it queues a snapshot install,
//!   before the install is saved);
//! - a snapshot is a copy of the records at one applied log id; a snapshot
//!   file is only ever replaced by a newer one (a build and an install can
//!   run at once);
//! - snapshot files, snapshot data and backups carry a checksum (`frame`),
//!   checked before anything is decoded; received snapshot data is checked
//!   before anything is touched;
//! - a snapshot file that cannot be read at open is replaced by the log if
//!   the log holds every entry, and stops the open otherwise.

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
pub use state_machine::{StateMachine, HOLD_JOINT};
pub use state_view::StateView;
