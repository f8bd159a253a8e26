//! The Raft log and vote. Every write that openraft relies on for safety is
//! on disk before openraft learns of it: votes and truncations are synced
//! before they return, appends before their callback (`wal_sync`). Purges
//! delete no further than the state machine durably holds (`purge`).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use raftcart_types::codec;
use raftcart_types::TypeConfig;
use raftcart_types::{Entry, LogId, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crash::crash_point;
use crate::error::{self, Result};
use crate::keys::{self, CF_LOG, CF_META};
use crate::purge::Purge;
use crate::wal_sync::WalSync;

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    wal_sync: Arc<WalSync>,
    purge: Arc<Purge>,
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl LogStore {
    pub(crate) fn new(db: Arc<DB>, purge: Arc<Purge>) -> Self {
        LogStore {
            wal_sync: Arc::new(WalSync::start(db.clone())),
            db,
            purge,
        }
    }

    /// The log as it is on disk: the purge mark and the last entry's index.
    pub(crate) fn on_disk(&self) -> Result<(Option<LogId>, Option<u64>)> {
        Ok((self.purge.deleted()?, self.last_entry()?.map(|l| l.index)))
    }

    fn last_entry(&self) -> Result<Option<LogId>> {
        match self
            .db
            .iterator_cf(self.cf(CF_LOG), IteratorMode::End)
            .next()
        {
            Some(item) => {
                let (_, value) = item.map_err(error::read_logs)?;
                let entry: Entry = codec::decode(&value).map_err(error::read_logs)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column family exists")
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self
            .db
            .get_cf(self.cf(CF_META), key)
            .map_err(error::read_vote)?
        {
            Some(bytes) => Ok(Some(codec::decode(&bytes).map_err(error::read_vote)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T, sync: bool) -> Result<()> {
        let bytes = codec::encode(value).map_err(error::write_vote)?;
        let opts = if sync {
            synced()
        } else {
            WriteOptions::default()
        };
        self.db
            .put_cf_opt(self.cf(CF_META), key, bytes, &opts)
            .map_err(error::write_vote)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        // Entries up to a purge still waiting for the state machine are
        // kept on disk but are gone for openraft.
        let start = start.max(self.purge.asked().map_or(0, |p| p.index + 1));
        let mut entries = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_LOG),
            IteratorMode::From(&keys::log_index(start), Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(error::read_logs)?;
            let index =
                u64::from_be_bytes(key.as_ref().try_into().map_err(|_| {
                    error::read_logs(error::invalid(format!("bad log key {key:?}")))
                })?);
            if !range.contains(&index) {
                break;
            }
            entries.push(codec::decode(&value).map_err(error::read_logs)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id = self.purge.asked();
        let last_log_id = match self.last_entry()? {
            Some(last) if last_purged_log_id.is_none_or(|p| last.index > p.index) => Some(last),
            _ => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<()> {
        // A vote lost in a crash could let this node vote twice in a term.
        self.put_meta(keys::VOTE, vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>> {
        self.get_meta(keys::VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<()> {
        // Only a hint that lets a restart re-apply sooner: no sync needed.
        self.put_meta(keys::COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>> {
        Ok(self.get_meta::<Option<LogId>>(keys::COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_LOG);
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(error::write_logs)?;
            batch.put_cf(cf, keys::log_index(entry.log_id.index), bytes);
        }
        // Written now, synced by the sync thread: the callback tells
        // openraft the entries are on disk, and a leader counts them towards
        // a quorum from then on, so it must wait for the fsync.
        crash_point!("append.before_write");
        match self.db.write(batch) {
            Ok(()) => {
                crash_point!("append.written_before_sync");
                self.wal_sync.after_sync(callback);
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(error::write_logs(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_LOG),
            keys::log_index(log_id.index),
            keys::log_index(u64::MAX),
        );
        batch.delete_cf(self.cf(CF_LOG), keys::log_index(u64::MAX));
        crash_point!("truncate.before");
        self.db
            .write_opt(batch, &synced())
            .map_err(error::write_logs)?;
        crash_point!("truncate.after");
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<()> {
        self.purge.purge(log_id)
    }
}
