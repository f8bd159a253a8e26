//! Snapshots: captured from one RocksDB view, kept in one file.

use std::fs::{self, File};
use std::io::{BufWriter, Cursor};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use raftcart_raft::codec;
use raftcart_raft::types::{LogId, Snapshot, SnapshotMeta, StoredMembership};
use rocksdb::{IteratorMode, DB};
use serde::{Deserialize, Serialize};

use crate::error::{self, Result};
use crate::keys::{self, CF_SM};

/// The snapshot payload: every key and value of the `sm` column family,
/// its metadata keys included.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// `SnapshotFile` as written: borrowed, so that saving copies nothing.
/// Same encoding (a byte slice and a `Vec<u8>` serialize alike).
#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    meta: &'a SnapshotMeta,
    data: &'a [u8],
}

/// The state machine as one RocksDB view saw it.
pub(crate) struct Capture {
    pub last_log_id: Option<LogId>,
    pub last_membership: StoredMembership,
    pub pairs: Pairs,
}

/// Reads data, last applied log id and membership from the same RocksDB
/// snapshot, so the metadata can never be older than the data (which would
/// make entries apply twice after an install).
pub(crate) fn capture(db: &DB) -> Result<Capture> {
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    let view = db.snapshot();
    let get = |key: &[u8]| view.get_cf(cf, key).map_err(error::read_sm);
    let last_log_id: Option<LogId> = match get(keys::APPLIED)? {
        Some(b) => Some(codec::decode(&b).map_err(error::read_sm)?),
        None => None,
    };
    let last_membership: StoredMembership = match get(keys::MEMBERSHIP)? {
        Some(b) => codec::decode(&b).map_err(error::read_sm)?,
        None => StoredMembership::default(),
    };
    let mut pairs: Pairs = Vec::new();
    for item in view.iterator_cf(cf, IteratorMode::Start) {
        let (k, v) = item.map_err(error::read_sm)?;
        pairs.push((k.into_vec(), v.into_vec()));
    }
    Ok(Capture {
        last_log_id,
        last_membership,
        pairs,
    })
}

/// Captures the state machine into the snapshot file.
pub(crate) fn build(db: &DB, file: &Path) -> Result<Snapshot> {
    let started = Instant::now();
    let Capture {
        last_log_id,
        last_membership,
        pairs,
    } = capture(db)?;
    let data = codec::encode(&pairs).map_err(error::write_snapshot)?;

    // Applied state reaches disk (through the WAL) before a snapshot lets
    // openraft purge the log entries that produced it.
    db.flush_wal(true).map_err(error::write_sm)?;

    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let snapshot_id = match &last_log_id {
        Some(l) => format!("{}-{}-{stamp}", l.leader_id.term, l.index),
        None => format!("none-{stamp}"),
    };
    let meta = SnapshotMeta {
        last_log_id,
        last_membership,
        snapshot_id,
    };
    save(file, &meta, &data)?;
    tracing::debug!(
        index = ?meta.last_log_id.map(|l| l.index),
        bytes = data.len(),
        ms = started.elapsed().as_millis() as u64,
        "snapshot built"
    );
    Ok(Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    })
}

/// Decodes a received snapshot and checks it against its metadata, before
/// anything is touched: openraft stops the node if an install fails.
pub(crate) fn validate(meta: &SnapshotMeta, data: &[u8]) -> Result<Pairs> {
    let pairs: Pairs = codec::decode(data).map_err(error::read_snapshot)?;
    let applied = pairs
        .iter()
        .find(|(k, _)| k.as_slice() == keys::APPLIED)
        .map(|(_, v)| codec::decode::<LogId>(v))
        .transpose()
        .map_err(error::read_snapshot)?;
    if applied != meta.last_log_id {
        return Err(error::read_snapshot(error::invalid(format!(
            "snapshot data is at {applied:?} but its metadata says {:?}",
            meta.last_log_id
        ))));
    }
    Ok(pairs)
}

/// Writes the snapshot file atomically: a crash leaves the old file or the
/// new one, never a torn one.
pub(crate) fn save(file: &Path, meta: &SnapshotMeta, data: &[u8]) -> Result<()> {
    let tmp = file.with_extension("tmp");
    let mut out = BufWriter::new(File::create(&tmp).map_err(error::write_snapshot)?);
    codec::encode_into(&SnapshotFileRef { meta, data }, &mut out).map_err(error::write_snapshot)?;
    let f = out
        .into_inner()
        .map_err(|e| error::write_snapshot(e.into_error()))?;
    f.sync_all().map_err(error::write_snapshot)?;
    fs::rename(&tmp, file).map_err(error::write_snapshot)?;
    if let Some(dir) = file.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(error::write_snapshot)?;
    }
    Ok(())
}

pub(crate) fn load(file: &Path) -> Result<Option<Snapshot>> {
    let bytes = match fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error::read_snapshot(e)),
    };
    let f: SnapshotFile = codec::decode(&bytes).map_err(error::read_snapshot)?;
    Ok(Some(Snapshot {
        meta: f.meta,
        snapshot: Box::new(Cursor::new(f.data)),
    }))
}
