//! Purging the log no further than the state machine durably holds.
//!
//! A follower that receives a snapshot has openraft queue the install and
//! then, without waiting for it, purge the log up to the snapshot. Deleting
//! those entries at once would leave, until the install is stored, a log
//! purged past the state machine: a crash then, and the restarted node
//! needs entries that are gone, on every restart.
//!
//! So a purge is kept as two marks. What openraft asked for is where the log
//! starts for openraft from then on (reads and the log state act as if the
//! entries were gone). What is deleted on disk, with the on-disk purge mark
//! in the same synced batch, is only what the state machine durably holds,
//! which is what the snapshot file holds (applying writes nothing to disk);
//! the rest goes when it catches up (the install calls `catch_up` once
//! stored, and every later purge retries). After a crash the log starts at
//! the on-disk mark, at or before the state machine, as if the purge had not
//! been asked for yet: a state openraft already meets whenever a node stops
//! between queuing a purge and running it.

use std::sync::{Arc, Mutex, MutexGuard};

use raftcart_types::codec;
use raftcart_types::LogId;
use rocksdb::{WriteBatch, WriteOptions, DB};

use crate::crash::crash_point;
use crate::error::{self, Result};
use crate::keys::{self, CF_LOG, CF_META};
use crate::snapshot::SnapshotFile;

pub(crate) struct Purge {
    db: Arc<DB>,
    /// The state machine's durable copy.
    snapshot_file: Arc<SnapshotFile>,
    /// The furthest purge asked for (at open: the on-disk mark).
    asked: Mutex<Option<LogId>>,
}

impl Purge {
    pub(crate) fn open(db: Arc<DB>, snapshot_file: Arc<SnapshotFile>) -> Result<Purge> {
        let asked = deleted(&db)?;
        Ok(Purge {
            db,
            snapshot_file,
            asked: Mutex::new(asked),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<LogId>> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the log starts for openraft.
    pub(crate) fn asked(&self) -> Option<LogId> {
        *self.lock()
    }

    /// The on-disk purge mark: every entry up to it is deleted.
    pub(crate) fn deleted(&self) -> Result<Option<LogId>> {
        deleted(&self.db)
    }

    pub(crate) fn purge(&self, upto: LogId) -> Result<()> {
        let mut asked = self.lock();
        if asked.is_none_or(|a| a.index < upto.index) {
            *asked = Some(upto);
        }
        self.delete_held(*asked)
    }

    /// Deletes what an earlier purge had to leave, as far as the snapshot
    /// file now holds.
    pub(crate) fn catch_up(&self) -> Result<()> {
        let asked = self.lock();
        self.delete_held(*asked)
    }

    /// Called with the lock held: purges and catch-ups run one at a time.
    fn delete_held(&self, asked: Option<LogId>) -> Result<()> {
        let Some(asked) = asked else {
            return Ok(());
        };
        let done = self.deleted()?;
        let upto = match self.snapshot_file.on_disk().flatten() {
            None => return Ok(()),
            Some(held) if held.index >= asked.index => asked,
            Some(held) => held,
        };
        if done.is_some_and(|d| d.index >= upto.index) {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let mark = codec::encode(&upto).map_err(error::write_logs)?;
        batch.put_cf(cf(&self.db, CF_META), keys::LAST_PURGED, mark);
        batch.delete_range_cf(
            cf(&self.db, CF_LOG),
            keys::log_index(0),
            keys::log_index(upto.index + 1),
        );
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        crash_point!("purge.before_delete");
        self.db
            .write_opt(batch, &synced)
            .map_err(error::write_logs)?;
        crash_point!("purge.after_delete");
        Ok(())
    }
}

fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("column family exists")
}

fn deleted(db: &DB) -> Result<Option<LogId>> {
    match db
        .get_cf(cf(db, CF_META), keys::LAST_PURGED)
        .map_err(error::read_logs)?
    {
        Some(bytes) => Ok(Some(codec::decode(&bytes).map_err(error::read_logs)?)),
        None => Ok(None),
    }
}
