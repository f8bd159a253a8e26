//! Opening the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Env, Options, DB};

use crate::error::{read_sm, Result};
use crate::keys::{CF_LOG, CF_META, CF_SM};
use crate::log_store::LogStore;
use crate::purge::Purge;
use crate::snapshot::SnapshotFile;
use crate::state_machine::StateMachine;
use crate::state_view::StateView;

/// Opens (creating if needed) the node's database and snapshot file under
/// `dir`, returning the log store and state machine for openraft, and a
/// read view of the state machine for serving queries.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine, StateView)> {
    let db = open_db(dir)?;
    let (file, found) = SnapshotFile::open(snapshot_file(dir))?;
    let file = Arc::new(file);
    let purge = Arc::new(Purge::open(db.clone(), file.clone())?);
    let log = LogStore::new(db.clone(), purge.clone());
    let (purged, _) = log.on_disk()?;
    let sm = StateMachine::open(&db, file, found, purge, purged)?;
    let view = sm.view();
    Ok((log, sm, view))
}

pub(crate) fn snapshot_file(dir: &Path) -> PathBuf {
    dir.join("snapshot")
}

pub(crate) fn open_db(dir: &Path) -> Result<Arc<DB>> {
    std::fs::create_dir_all(dir).map_err(read_sm)?;
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // A batch_init writes up to a million records at once. Written back to
    // disk as they come (1 MiB at a time), they do not pile up in the page
    // cache for the next log fsync to wait on; and compacting them runs
    // below the requests' CPU priority, so it takes the cores they leave.
    // Flushes stay at normal priority: a flush that falls behind would stall
    // every write of the node, log appends included.
    opts.set_bytes_per_sync(1 << 20);
    opts.set_wal_bytes_per_sync(1 << 20);
    let mut env = Env::new().map_err(read_sm)?;
    env.lower_thread_pool_cpu_priority();
    opts.set_env(&env);
    let cfs = [
        ColumnFamilyDescriptor::new(CF_LOG, Options::default()),
        ColumnFamilyDescriptor::new(CF_META, Options::default()),
        ColumnFamilyDescriptor::new(CF_SM, state_options()),
    ];
    Ok(Arc::new(
        DB::open_cf_descriptors(&opts, dir.join("db"), cfs).map_err(read_sm)?,
    ))
}

/// The state machine's column family is only read at open, to move a state
/// machine stored there by an older build to the snapshot file; it is
/// empty otherwise.
fn state_options() -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts
}
