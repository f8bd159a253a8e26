//! Backups: a consistent copy of the state machine taken from a running
//! node, and a new node's data directory seeded from one.
//!
//! A backup file is a 16-byte header, the format version and a CRC-32 of
//! the body (both little-endian u32), then the body: the last applied log
//! id and every record of the state machine, copied at one applied log id.
//!
//! A restored directory holds the backup as a snapshot at a made-up log id
//! `(term 0, node 0, index of the backup)` with the log purged up to it, and
//! the new cluster's membership. Every node restored from the same file
//! starts from the same log id with the same data; a node that starts empty
//! instead is sent that snapshot by the leader. No entry of the old
//! cluster's log is ever replayed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use openraft::{CommittedLeaderId, Membership};
use raftcart_types::codec;
use raftcart_types::{LogId, StorageError, StoredMembership};
use raftcart_types::{NodeId, NodeInfo};
use rocksdb::{WriteBatch, WriteOptions};
use serde::Serialize;

use crate::crash::crash_point;
use crate::db;
use crate::frame::{Frame, FrameError};
use crate::keys::{self, CF_META};
use crate::records::Records;
use crate::snapshot::{self, Pairs};
use crate::state_view::StateView;

const FORMAT: u32 = 1;
const FRAME: Frame = Frame {
    magic: b"raftcart backup\n",
    version: FORMAT,
};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a raftcart backup (the file does not start with the backup header)")]
    NotABackup,
    #[error("backup format {0} is not supported (this build reads format {FORMAT})")]
    UnknownFormat(u32),
    #[error("the backup is corrupt: {0}")]
    Corrupt(String),
    #[error("{0} already holds data: restore only into a new or empty directory")]
    Occupied(PathBuf),
    #[error("no members to restore for")]
    NoMembers,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(Box<StorageError>),
}

impl From<StorageError> for BackupError {
    fn from(e: StorageError) -> Self {
        BackupError::Storage(Box::new(e))
    }
}

/// A restore writes only into a directory that is new or empty.
pub fn refuse_occupied(dir: &Path) -> Result<(), BackupError> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        return Err(BackupError::Occupied(dir.to_path_buf()));
    }
    Ok(())
}

fn encoded<T: Serialize>(value: &T) -> Result<Vec<u8>, BackupError> {
    codec::encode(value).map_err(|e| BackupError::Corrupt(e.to_string()))
}

/// The body: (last applied log id, records).
type Body = (Option<LogId>, Pairs);

/// How many records of each kind a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub users: u64,
    pub items: u64,
    pub orders: u64,
    /// Remembered request ids (for exactly-once retries).
    pub request_records: u64,
}

pub struct Backup {
    applied: Option<LogId>,
    pairs: Pairs,
}

impl Backup {
    /// Copies the state machine at its last applied log id. Blocking:
    /// encodes every record.
    pub fn capture(view: &StateView) -> Result<Backup, BackupError> {
        let c = view.copy().capture().map_err(BackupError::Corrupt)?;
        Ok(Backup {
            applied: c.last_log_id,
            pairs: c.pairs,
        })
    }

    /// The log index the copy was taken at (every write up to it is in).
    pub fn applied_index(&self) -> Option<u64> {
        self.applied.map(|l| l.index)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for (k, _) in &self.pairs {
            let count = match &k[..k.len().min(2)] {
                p if p == keys::USER => &mut s.users,
                p if p == keys::ITEM => &mut s.items,
                p if p == keys::ORDER => &mut s.orders,
                p if p == keys::REQUEST_RECORD => &mut s.request_records,
                _ => continue,
            };
            *count += 1;
        }
        s
    }

    /// The records, without the cluster's own metadata (applied log id and
    /// membership), which differ between a cluster and one restored from it.
    pub fn records(&self) -> Vec<(&[u8], &[u8])> {
        self.pairs
            .iter()
            .filter(|(k, _)| k.as_slice() != keys::APPLIED && k.as_slice() != keys::MEMBERSHIP)
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect()
    }

    pub fn encode(&self) -> Result<Vec<u8>, BackupError> {
        Ok(FRAME.encode(&encoded(&(&self.applied, &self.pairs))?))
    }

    pub fn decode(bytes: &[u8]) -> Result<Backup, BackupError> {
        let body = FRAME.decode(bytes).map_err(|e| match e {
            FrameError::NoHeader => BackupError::NotABackup,
            FrameError::UnknownFormat { found, .. } => BackupError::UnknownFormat(found),
            FrameError::Checksum => {
                BackupError::Corrupt("checksum mismatch (truncated or damaged file)".into())
            }
        })?;
        let (applied, pairs): Body =
            codec::decode(body).map_err(|e| BackupError::Corrupt(e.to_string()))?;
        Ok(Backup { applied, pairs })
    }

    /// Seeds `dir` (a node's data directory, new or empty) with this backup
    /// for a cluster of `members`, all voters. Returns the log id the new
    /// cluster starts from. Built in a side directory and renamed into
    /// place, so an interrupted restore leaves nothing a node would start
    /// from.
    pub fn restore_into(
        &self,
        dir: &Path,
        members: &BTreeMap<NodeId, NodeInfo>,
    ) -> Result<LogId, BackupError> {
        if members.is_empty() {
            return Err(BackupError::NoMembers);
        }
        refuse_occupied(dir)?;
        let mut staging = dir.as_os_str().to_owned();
        staging.push(".restoring");
        let staging = PathBuf::from(staging);
        if staging.exists() {
            fs::remove_dir_all(&staging)?;
        }

        let start = LogId::new(
            CommittedLeaderId::new(0, 0),
            self.applied_index().unwrap_or(0),
        );
        let membership = StoredMembership::new(
            Some(start),
            Membership::new(vec![members.keys().copied().collect()], members.clone()),
        );
        // Through the state machine's own records, so that the file
        // holds exactly what a live node would capture (and every
        // record is checked to decode first).
        let owned = self
            .records()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let mut records = Records::from_pairs(owned).map_err(BackupError::Corrupt)?;
        records.applied = Some(start);
        records.membership = membership;
        let capture = records.capture().map_err(BackupError::Corrupt)?;
        {
            let db = db::open_db(&staging)?;
            crash_point!("backup_restore.staging_opened");
            let meta = db.cf_handle(CF_META).expect("meta column family exists");
            let mut batch = WriteBatch::default();
            // The log "ends" where the snapshot does: openraft sees nothing
            // to replay and sends the snapshot to members without it.
            batch.put_cf(meta, keys::LAST_PURGED, encoded(&start)?);
            batch.put_cf(meta, keys::COMMITTED, encoded(&Some(start))?);
            let mut opts = WriteOptions::default();
            opts.set_sync(true);
            db.write_opt(batch, &opts)
                .map_err(|e| BackupError::Io(std::io::Error::other(e)))?;
            crash_point!("backup_restore.db_written_before_snapshot");
            let (file, _) = snapshot::SnapshotFile::open(db::snapshot_file(&staging))?;
            snapshot::build(capture, &file)?;
        }
        crash_point!("backup_restore.staged_before_rename");
        fs::rename(&staging, dir)?;
        crash_point!("backup_restore.renamed_before_sync");
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_whose_record_does_not_decode_is_refused_before_anything_is_written() {
        let backup = Backup {
            applied: None,
            pairs: vec![(keys::prefixed(keys::USER, "u1"), b"not a user".to_vec())],
        };
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("node1");
        let members = BTreeMap::from([(
            1,
            NodeInfo {
                api_addr: "127.0.0.1:1".into(),
                raft_addr: "127.0.0.1:2".into(),
            },
        )]);
        let refused = backup.restore_into(&dir, &members);
        assert!(matches!(refused, Err(BackupError::Corrupt(_))));
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    }
}
