//! Opening the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Env, Options, DB};

use crate::error::{read_sm, Result};
use crate::keys::{CF_LOG, CF_META, CF_SM};
use crate::log_store::LogStore;
use crate::purge::Purge;
use crate::snapshot::SnapshotFile;
use crate::state_machine::StateMachine;
use crate::state_view::StateView;

/// Opens (creating if needed) the node's database under `dir`, returning
/// the log store and state machine for openraft, and a read view of the
/// state machine for serving queries.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine, StateView)> {
    let db = open_db(dir)?;
    let view = StateView::new(db.clone());
    let purge = Arc::new(Purge::open(db.clone())?);
    let (file, unreadable) = SnapshotFile::open(snapshot_file(dir))?;
    let sm = StateMachine::open(db.clone(), file, purge.clone())?;
    let log = LogStore::new(db, purge);
    let (purged, last_index) = log.on_disk()?;
    sm.repair_snapshot_file(unreadable, purged, last_index)?;
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

/// The state machine's column family is read by queries, snapshots and the
/// rare retry (apply reads its records from memory, `records.rs`). Bloom
/// filters, in the memtable and in every table file, let a miss skip the
/// search, and let a hit skip the files that do not hold the key.
fn state_options() -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(&Cache::new_lru_cache(32 << 20));
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    opts.set_memtable_prefix_bloom_ratio(0.1);
    opts.set_memtable_whole_key_filtering(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts
}
