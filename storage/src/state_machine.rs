//! The state machine openraft drives: applies committed entries through the
//! domain's pure logic and stores each batch with one atomic write.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use raftcart_domain::{
    apply_proposal, Changes, Outcome, Overlay, Proposals, REQUEST_RECORD_TTL_MS,
};
use raftcart_types::codec;
use raftcart_types::TypeConfig;
use raftcart_types::{Entry, LogId, Snapshot, SnapshotMeta, StoredMembership};
use rocksdb::{WriteBatch, WriteOptions, DB};
use serde::Serialize;

use crate::background;
use crate::crash::crash_point;
use crate::error::{self, Result};
use crate::keys::{self, CF_SM};
use crate::purge::Purge;
use crate::records::{Records, SharedRecords};
use crate::snapshot::{self, SnapshotFile};
use crate::state_view::{read, StateView};

pub struct StateMachine {
    db: Arc<DB>,
    snapshot_file: Arc<SnapshotFile>,
    purge: Arc<Purge>,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// What apply and the queries read: the `sm` column family, decoded.
    records: SharedRecords,
}

impl StateMachine {
    pub(crate) fn open(
        db: Arc<DB>,
        snapshot_file: SnapshotFile,
        purge: Arc<Purge>,
    ) -> Result<Self> {
        // Unreadable metadata must stop the start: taken for "nothing
        // applied", it would make every entry apply a second time.
        let unreadable = |e| error::read_sm(error::invalid(e));
        Ok(StateMachine {
            applied: read(&db, keys::APPLIED).map_err(unreadable)?,
            membership: read(&db, keys::MEMBERSHIP)
                .map_err(unreadable)?
                .unwrap_or_default(),
            records: SharedRecords::new(Records::load(&db).map_err(unreadable)?),
            db,
            snapshot_file: Arc::new(snapshot_file),
            purge,
        })
    }

    /// The handle the node's queries read through.
    pub(crate) fn view(&self) -> StateView {
        StateView::new(self.db.clone(), self.records.clone())
    }

    /// At open: makes sure the snapshot file can serve a follower, given the
    /// log on disk (its purge mark and last entry). A file that cannot be
    /// read (damaged, or written without a header) is rebuilt; so is one
    /// from which the log cannot lead to the applied state (an install
    /// stored the database and crashed before the file): a follower sent it
    /// would then need entries this node no longer has. The database holds
    /// the state; the file is only its copy.
    pub(crate) fn repair_snapshot_file(
        &self,
        unreadable: Option<String>,
        purged: Option<LogId>,
        last_index: Option<u64>,
    ) -> Result<()> {
        let file = &self.snapshot_file;
        if let Some(why) = unreadable {
            if self.applied.is_none() {
                tracing::error!("{why}; nothing is applied to rebuild it from: removing it");
                return file.remove();
            }
            tracing::error!("{why}; rebuilding it from the database");
        } else if snapshot::log_leads_on(file.on_disk(), self.applied, purged, last_index) {
            return Ok(());
        } else {
            tracing::warn!(
                file = %file.path().display(),
                at = ?file.on_disk().flatten(),
                applied = ?self.applied,
                log_purged_to = ?purged,
                "the log does not lead from the snapshot file to the applied state: rebuilding the file"
            );
        }
        snapshot::build(&self.db, file).map(|_| ())
    }

    fn cf(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(CF_SM).expect("sm column family exists")
    }

    fn put<T: Serialize>(&self, batch: &mut WriteBatch, key: &[u8], value: &T) -> Result<()> {
        let bytes = codec::encode(value).map_err(error::write_sm)?;
        batch.put_cf(self.cf(), key, bytes);
        Ok(())
    }

    fn write_changes(&self, batch: &mut WriteBatch, changes: &Changes) -> Result<()> {
        for (id, user) in &changes.users {
            self.put(batch, &keys::prefixed(keys::USER, id), user)?;
        }
        for (id, item) in &changes.items {
            self.put(batch, &keys::prefixed(keys::ITEM, id), item)?;
        }
        for (id, order) in &changes.orders {
            let key = keys::prefixed(keys::ORDER, id);
            match order {
                Some(order) => self.put(batch, &key, order)?,
                None => batch.delete_cf(self.cf(), key),
            }
        }
        for (id, request_record) in &changes.request_records {
            self.put(
                batch,
                &keys::prefixed(keys::REQUEST_RECORD, id),
                request_record,
            )?;
            batch.put_cf(
                self.cf(),
                keys::record_by_time(request_record.at_ms, id),
                [],
            );
        }
        if let Some(clock) = changes.clock {
            self.put(batch, keys::CLOCK, &clock.ms)?;
            if let Some(stamp) = clock.stamp_ms {
                self.put(batch, keys::CLOCK_STAMP, &stamp)?;
            }
        }
        Ok(())
    }

    /// Deletes request records that have expired, and returns how many it
    /// deleted (for `Records::absorb`). Only storage hygiene: whether a
    /// request record counts is decided on lookup by the domain, so replicas
    /// that sweep at different moments still answer alike.
    fn sweep_request_records(
        &self,
        records: &Records,
        batch: &mut WriteBatch,
        clock_ms: u64,
    ) -> usize {
        let cutoff = clock_ms.saturating_sub(REQUEST_RECORD_TTL_MS);
        let mut swept = 0;
        for (at_ms, id, current) in records.expired(cutoff) {
            // An id used again since keeps its newer record.
            if current {
                batch.delete_cf(self.cf(), keys::prefixed(keys::REQUEST_RECORD, id));
            }
            batch.delete_cf(self.cf(), keys::record_by_time(at_ms, id));
            swept += 1;
        }
        swept
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Outcome>>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let records = self.records.read();
        let mut overlay = Overlay::new(&*records);
        let mut outcomes = Vec::new();
        let mut last = None;
        // Kept aside until the batch is stored: a failed apply changes nothing.
        let mut new_membership = None;
        for entry in entries {
            last = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Normal(Proposals(proposals)) => proposals
                    .iter()
                    .map(|proposal| apply_proposal(&mut overlay, proposal))
                    .collect(),
                EntryPayload::Membership(m) => {
                    new_membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    Vec::new()
                }
                EntryPayload::Blank => Vec::new(),
            };
            outcomes.push(outcome);
        }
        let Some(last) = last else {
            return Ok(outcomes);
        };
        let changes = overlay.into_changes();

        // Data and last applied log id in ONE batch: a crash between the two
        // would make a restart apply the same entries again.
        let mut batch = WriteBatch::default();
        let swept = match changes.clock {
            Some(clock) => self.sweep_request_records(&records, &mut batch, clock.ms),
            None => 0,
        };
        drop(records);
        self.write_changes(&mut batch, &changes)?;
        self.put(&mut batch, keys::APPLIED, &last)?;
        if let Some(membership) = &new_membership {
            self.put(&mut batch, keys::MEMBERSHIP, membership)?;
        }
        // Not synced: the entries are in the synced log, and a restart
        // re-applies whatever the last applied id says is missing.
        crash_point!("apply.before_write");
        self.db
            .write_opt(batch, &WriteOptions::default())
            .map_err(error::write_sm)?;
        crash_point!("apply.after_write");
        self.records.write().absorb(changes, swept);
        self.applied = Some(last);
        if let Some(membership) = new_membership {
            self.membership = membership;
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            snapshot_file: self.snapshot_file.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let data = snapshot.into_inner();
        let pairs = snapshot::validate(meta, &data)?;

        // Replace the whole state machine and its metadata in one synced
        // batch: the log before this point may be purged right after.
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(), &b""[..], keys::SM_END);
        for (k, v) in &pairs {
            batch.put_cf(self.cf(), k, v);
        }
        self.put(&mut batch, keys::MEMBERSHIP, &meta.last_membership)?;
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        crash_point!("snapshot_install.before_db");
        self.db.write_opt(batch, &opts).map_err(error::write_sm)?;
        crash_point!("snapshot_install.db_written_before_file");
        self.snapshot_file
            .save(meta, &data, "snapshot_install.file_written_before_rename")?;
        crash_point!("snapshot_install.after_file");

        *self.records.write() =
            Records::load(&self.db).map_err(|why| error::read_sm(error::invalid(why)))?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        // openraft asked to purge the log up to this snapshot when it queued
        // the install; the entries could not go before the state was stored.
        self.purge.catch_up()
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>> {
        self.snapshot_file.load()
    }
}

pub struct SnapshotBuilder {
    db: Arc<DB>,
    snapshot_file: Arc<SnapshotFile>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot> {
        let db = self.db.clone();
        let file = self.snapshot_file.clone();
        background::run_low_priority("raftcart-snapshot", move || snapshot::build(&db, &file)).await
    }
}
