//! The state machine openraft drives: applies committed entries through the
//! domain's pure logic to the records in memory, and keeps their durable
//! copy in the snapshot file.
//!
//! Applying writes nothing to disk: every applied entry is in the synced
//! log, and the log is never purged past the snapshot file (`purge`), so a
//! restart loads the file and openraft applies the entries after it again
//! (committed ones at start, the rest as the leader commits them).

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use raftcart_domain::{apply_proposal, Outcome, Overlay, Proposals};
use raftcart_types::TypeConfig;
use raftcart_types::{Entry, LogId, Snapshot, SnapshotMeta, StoredMembership};
use rocksdb::{WriteOptions, DB};

use crate::background;
use crate::crash::crash_point;
use crate::error::{self, Result};
use crate::keys::{self, CF_SM};
use crate::purge::Purge;
use crate::records::{Records, SharedRecords};
use crate::snapshot::{self, SnapshotFile};
use crate::state_view::StateView;

/// Fail point (test builds): while it is armed, apply waits before an entry
/// that holds a joint membership, so openraft's membership change stays
/// between its joint and its final configuration for as long as a test
/// needs (`POST /debug/hold-joint`).
pub const HOLD_JOINT: &str = "apply.hold_joint";

pub struct StateMachine {
    snapshot_file: Arc<SnapshotFile>,
    purge: Arc<Purge>,
    /// What apply, the queries, snapshots and backups read.
    records: SharedRecords,
    /// Writes applied since the last snapshot was copied or installed:
    /// what a restart would apply again (`StateView::unsnapshotted_writes`).
    unsnapshotted_writes: Arc<AtomicU64>,
}

impl StateMachine {
    /// Loads the state machine from the snapshot file. `found`: what
    /// `SnapshotFile::open` read from it; `purged`: the log's on-disk purge
    /// mark.
    pub(crate) fn open(
        db: &DB,
        snapshot_file: Arc<SnapshotFile>,
        found: Result<Option<Snapshot>>,
        purge: Arc<Purge>,
        purged: Option<LogId>,
    ) -> Result<Self> {
        let found = match move_column_family_to_file(db, &snapshot_file, found.is_err())? {
            Some(saved) => Ok(Some(saved)),
            None => found,
        };
        let records = match found {
            Ok(Some(snapshot)) => {
                let data = snapshot.snapshot.into_inner();
                let pairs = snapshot::validate(&snapshot.meta, &data)?;
                let mut records = Records::from_pairs(pairs).map_err(|why| {
                    error::read_snapshot(error::invalid(format!(
                        "snapshot file {}: {why}",
                        snapshot_file.path().display()
                    )))
                })?;
                records.membership = snapshot.meta.last_membership;
                records
            }
            Ok(None) => Records::default(),
            // The file is the only copy of the state up to the purge mark:
            // without it, this node cannot rebuild its state machine.
            Err(e) if purged.is_some() => {
                return Err(error::read_snapshot(error::invalid(format!(
                    "{e}; the log before it is purged, so this node's state cannot be \
                     rebuilt here: remove the node's data directory and add it to the \
                     cluster again, and it receives a snapshot from the leader"
                ))))
            }
            Err(e) => {
                tracing::error!(
                    "{e}; the whole log is here: removing the file and applying the log"
                );
                snapshot_file.remove()?;
                Records::default()
            }
        };
        Ok(StateMachine {
            snapshot_file,
            purge,
            records: SharedRecords::new(records),
            unsnapshotted_writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The handle the node's queries and backups read through.
    pub(crate) fn view(&self) -> StateView {
        StateView::new(self.records.clone(), self.unsnapshotted_writes.clone())
    }
}

/// A data directory written by a build that stored the state machine in
/// the `sm` column family, written at every apply, and the snapshot file
/// as its copy, moves the state to the file: the file is saved from the
/// column family where it is behind it (or unreadable), and the column
/// family is emptied once the file holds at least as much. Returns the
/// snapshot it saved, if it saved one.
fn move_column_family_to_file(
    db: &DB,
    file: &SnapshotFile,
    file_unreadable: bool,
) -> Result<Option<Snapshot>> {
    let column_family = snapshot::capture_column_family(db)?;
    if column_family.pairs.is_empty() {
        return Ok(None);
    }
    let at = column_family.last_log_id;
    let mut saved = None;
    if file_unreadable || at > file.on_disk().flatten() {
        tracing::info!(
            ?at,
            "saving the state machine's column family as the snapshot file"
        );
        saved = Some(snapshot::build(column_family, file)?);
    }
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    let mut batch = rocksdb::WriteBatch::default();
    batch.delete_range_cf(cf, &b""[..], keys::SM_END);
    let mut synced = WriteOptions::default();
    synced.set_sync(true);
    db.write_opt(batch, &synced).map_err(error::write_sm)?;
    Ok(saved)
}

/// `HOLD_JOINT`: waits while the point is armed, if `entries` hold a joint
/// membership.
#[cfg(feature = "failpoints")]
async fn hold_before_joint(entries: impl IntoIterator<Item = Entry>) -> Vec<Entry> {
    let entries: Vec<Entry> = entries.into_iter().collect();
    let joint = entries.iter().any(
        |e| matches!(&e.payload, EntryPayload::Membership(m) if m.get_joint_config().len() > 1),
    );
    while joint && fail::eval(HOLD_JOINT, |_| ()).is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    entries
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership)> {
        let records = self.records.read();
        Ok((records.applied, records.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Outcome>>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        #[cfg(feature = "failpoints")]
        let entries = hold_before_joint(entries).await;
        let records = self.records.read();
        let mut overlay = Overlay::new(&*records);
        let mut outcomes = Vec::new();
        let mut last = None;
        let mut new_membership = None;
        let mut writes = 0;
        for entry in entries {
            last = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Normal(Proposals(proposals)) => {
                    writes += proposals.len() as u64;
                    proposals
                        .iter()
                        .map(|proposal| apply_proposal(&mut overlay, proposal))
                        .collect()
                }
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
        drop(records);
        let mut records = self.records.write();
        records.absorb(changes);
        records.applied = Some(last);
        self.unsnapshotted_writes
            .fetch_add(writes, Ordering::Relaxed);
        if let Some(membership) = new_membership {
            records.membership = membership;
        }
        Ok(outcomes)
    }

    /// Copies the records (sharing their persistent maps): the snapshot is
    /// then encoded and saved on a low-priority thread while apply goes on.
    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let started = std::time::Instant::now();
        let records = self.records.read().clone();
        // Apply runs on this task too: no write is counted in between.
        self.unsnapshotted_writes.store(0, Ordering::Relaxed);
        // Apply waits this long: what a snapshot costs the requests.
        tracing::info!(
            index = ?records.applied.map(|l| l.index),
            ms = started.elapsed().as_millis() as u64,
            "state machine copied for a snapshot"
        );
        SnapshotBuilder {
            records,
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
        let mut records = Records::from_pairs(pairs).map_err(|why| {
            error::read_snapshot(error::invalid(format!(
                "snapshot {} is refused: {why}",
                meta.snapshot_id
            )))
        })?;
        records.membership = meta.last_membership.clone();

        // The file first: once it is saved, the log before it may go.
        crash_point!("snapshot_install.before_file");
        self.snapshot_file
            .save(meta, &data, "snapshot_install.file_written_before_rename")?;
        crash_point!("snapshot_install.after_file");
        *self.records.write() = records;
        self.unsnapshotted_writes.store(0, Ordering::Relaxed);
        // openraft asked to purge the log up to this snapshot when it queued
        // the install; the entries could not go before the file was saved.
        self.purge.catch_up()
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>> {
        self.snapshot_file.load()
    }
}

pub struct SnapshotBuilder {
    records: Records,
    snapshot_file: Arc<SnapshotFile>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot> {
        let records = std::mem::take(&mut self.records);
        let file = self.snapshot_file.clone();
        background::run_low_priority("raftcart-snapshot", move || {
            let capture = records
                .capture()
                .map_err(|why| error::write_snapshot(error::invalid(why)))?;
            snapshot::build(capture, &file)
        })
        .await
    }
}
