//! Opening the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, DB};

use crate::error::{read_sm, Result};
use crate::keys::{CF_LOG, CF_META, CF_SM};
use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::state_view::StateView;

/// Opens (creating if needed) the node's database under `dir`, returning
/// the log store and state machine for openraft, and a read view of the
/// state machine for serving queries.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine, StateView)> {
    let db = open_db(dir)?;
    let view = StateView::new(db.clone());
    let sm = StateMachine::open(db.clone(), snapshot_file(dir))?;
    Ok((LogStore::new(db), sm, view))
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
    let cfs = [CF_LOG, CF_META, CF_SM]
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    Ok(Arc::new(
        DB::open_cf_descriptors(&opts, dir.join("db"), cfs).map_err(read_sm)?,
    ))
}
