//! Snapshots: the state machine's records as of one applied log id, kept in
//! one file, which is the state machine's durable copy.
//!
//! The data openraft holds, sends and installs is the state machine's
//! records, framed (`DATA`): a follower checks the checksum of what it
//! received before decoding it. The file adds the metadata in a frame of its
//! own (`FILE`): body = metadata length (u32, little-endian), metadata, data.

use std::fs::{self, File};
use std::io::{BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use raftcart_types::codec;
use raftcart_types::{LogId, Snapshot, SnapshotMeta, StoredMembership};
use rocksdb::{IteratorMode, DB};

use crate::crash::crash_point;
use crate::error::{self, Result};
use crate::frame::Frame;
use crate::keys::{self, CF_SM};

/// The snapshot payload: every record of the state machine as a key and
/// value of the `sm` layout (`keys`), its metadata keys included.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

const DATA: Frame = Frame {
    magic: b"raftcart snapshot data\n",
    version: 1,
};

const FILE: Frame = Frame {
    magic: b"raftcart snapshot file\n",
    version: 1,
};

/// The state machine at one applied log id.
pub(crate) struct Capture {
    pub last_log_id: Option<LogId>,
    pub last_membership: StoredMembership,
    pub pairs: Pairs,
}

/// Reads the `sm` column family, where a data directory written by a build
/// that stored the state machine in RocksDB holds it: data, last applied
/// log id and membership from the same RocksDB view, so the metadata can
/// never be older than the data. Empty (nothing applied) everywhere else.
pub(crate) fn capture_column_family(db: &DB) -> Result<Capture> {
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    let view = db.snapshot();
    let get =
        |key: &[u8]| -> Result<Option<Vec<u8>>> { view.get_cf(cf, key).map_err(error::read_sm) };
    let undecodable = |key: &[u8], e: bincode::error::DecodeError| {
        error::read_sm(error::invalid(format!(
            "undecodable record {:?}: {e}",
            String::from_utf8_lossy(key)
        )))
    };
    let last_log_id: Option<LogId> = match get(keys::APPLIED)? {
        Some(b) => Some(codec::decode(&b).map_err(|e| undecodable(keys::APPLIED, e))?),
        None => None,
    };
    let last_membership: StoredMembership = match get(keys::MEMBERSHIP)? {
        Some(b) => codec::decode(&b).map_err(|e| undecodable(keys::MEMBERSHIP, e))?,
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

/// Writes a captured state machine to the snapshot file (synced before it
/// replaces the old one: the log behind it may be purged from then on).
pub(crate) fn build(capture: Capture, file: &SnapshotFile) -> Result<Snapshot> {
    let started = Instant::now();
    let Capture {
        last_log_id,
        last_membership,
        pairs,
    } = capture;
    let mut data = DATA.placeholder();
    codec::encode_into(&pairs, &mut data).map_err(error::write_snapshot)?;
    DATA.seal(&mut data);

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
    crash_point!("snapshot_build.before_save");
    file.save(&meta, &data, "snapshot_build.written_before_rename")?;
    crash_point!("snapshot_build.after_save");
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

/// Decodes snapshot data (received, or read from the file at open) and
/// checks it against its metadata, before anything is touched: openraft
/// stops the node if an install fails.
pub(crate) fn validate(meta: &SnapshotMeta, data: &[u8]) -> Result<Pairs> {
    let refuse = |why: String| {
        error::read_snapshot(error::invalid(format!(
            "snapshot {} is refused: {why}",
            meta.snapshot_id
        )))
    };
    let body = DATA.decode(data).map_err(|e| refuse(e.to_string()))?;
    let pairs: Pairs = codec::decode(body).map_err(|e| refuse(e.to_string()))?;
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

/// A node's snapshot file. openraft builds snapshots (on their own thread)
/// while the state machine may install one received from the leader, so
/// both can be saving at once. Each writes its own temporary file, and the
/// rename that publishes it happens under a lock and only for a snapshot
/// newer than the one on disk: a build that started before an install and
/// ends after it must not replace the installed snapshot with an older one
/// (the log it would need has already been purged).
pub(crate) struct SnapshotFile {
    path: PathBuf,
    /// Last log id of the snapshot on disk; `None` while there is none.
    on_disk: Mutex<Option<Option<LogId>>>,
    next_tmp: AtomicU64,
}

impl SnapshotFile {
    /// Opens the snapshot file at `path` and removes the temporary files of
    /// saves a crash interrupted. The second value is what the file holds,
    /// read once here for the state machine to load: `Ok(None)` if there is
    /// no file, an error if it is unreadable (damaged, or without a
    /// header). An unreadable file counts as missing, so that any save
    /// replaces it.
    pub(crate) fn open(path: PathBuf) -> Result<(SnapshotFile, Result<Option<Snapshot>>)> {
        let found = load(&path);
        let on_disk = match &found {
            Ok(found) => found.as_ref().map(|s| s.meta.last_log_id),
            Err(_) => None,
        };
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let prefix = format!("{}.", name.to_string_lossy());
            for entry in fs::read_dir(dir).map_err(error::read_snapshot)? {
                let entry = entry.map_err(error::read_snapshot)?;
                let stray = entry.file_name().to_string_lossy().into_owned();
                if stray.starts_with(&prefix) && stray.ends_with(".tmp") {
                    fs::remove_file(entry.path()).map_err(error::write_snapshot)?;
                }
            }
        }
        let file = SnapshotFile {
            path,
            on_disk: Mutex::new(on_disk),
            next_tmp: AtomicU64::new(0),
        };
        Ok((file, found))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Last log id of the snapshot on disk; `None` while there is none.
    pub(crate) fn on_disk(&self) -> Option<Option<LogId>> {
        *self.on_disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes the file (one that cannot be read and has nothing to be
    /// rebuilt from).
    pub(crate) fn remove(&self) -> Result<()> {
        let mut on_disk = self.on_disk.lock().unwrap_or_else(|e| e.into_inner());
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(error::write_snapshot(e)),
        }
        *on_disk = None;
        Ok(())
    }

    pub(crate) fn load(&self) -> Result<Option<Snapshot>> {
        load(&self.path)
    }

    /// Writes the snapshot durably and atomically (a crash leaves the old
    /// file or the new one, never a torn one), unless the file on disk is
    /// at least as new. Returns whether it was written. `rename_point`: the
    /// crash point between the temporary file and its rename.
    pub(crate) fn save(
        &self,
        meta: &SnapshotMeta,
        data: &[u8],
        rename_point: &'static str,
    ) -> Result<bool> {
        let seq = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.path.with_extension(format!("{seq}.tmp"));
        write_synced(&tmp, meta, data)?;
        let mut on_disk = self.on_disk.lock().unwrap_or_else(|e| e.into_inner());
        let newer = on_disk.is_none_or(|current| meta.last_log_id > current);
        if !newer {
            drop(on_disk);
            fs::remove_file(&tmp).map_err(error::write_snapshot)?;
            return Ok(false);
        }
        crash_point!(rename_point);
        fs::rename(&tmp, &self.path).map_err(error::write_snapshot)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(error::write_snapshot)?;
        }
        *on_disk = Some(meta.last_log_id);
        Ok(true)
    }
}

fn write_synced(tmp: &Path, meta: &SnapshotMeta, data: &[u8]) -> Result<()> {
    let meta = codec::encode(meta).map_err(error::write_snapshot)?;
    let meta_len = u32::try_from(meta.len())
        .map_err(|_| error::write_snapshot(error::invalid("snapshot metadata over 4 GiB".into())))?
        .to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    for part in [&meta_len[..], &meta, data] {
        crc.update(part);
    }
    let mut out = BufWriter::new(File::create(tmp).map_err(error::write_snapshot)?);
    for part in [&FILE.header(crc.finalize())[..], &meta_len, &meta, data] {
        out.write_all(part).map_err(error::write_snapshot)?;
    }
    let f = out
        .into_inner()
        .map_err(|e| error::write_snapshot(e.into_error()))?;
    f.sync_all().map_err(error::write_snapshot)
}

fn load(file: &Path) -> Result<Option<Snapshot>> {
    let mut bytes = match fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error::read_snapshot(e)),
    };
    let unreadable = |why: String| {
        error::read_snapshot(error::invalid(format!(
            "snapshot file {} is unreadable: {why}",
            file.display()
        )))
    };
    let body = FILE.decode(&bytes).map_err(|e| unreadable(e.to_string()))?;
    let meta_len = body
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .filter(|len| 4 + len <= body.len())
        .ok_or_else(|| unreadable("metadata length out of range".into()))?;
    let meta: SnapshotMeta =
        codec::decode(&body[4..4 + meta_len]).map_err(|e| unreadable(e.to_string()))?;
    let data = bytes.split_off(FILE.header_len() + 4 + meta_len);
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    }))
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use openraft::CommittedLeaderId;

    use super::*;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    /// Data that tells which snapshot it belongs to, large enough that
    /// concurrent saves overlap.
    fn data(index: u64) -> Vec<u8> {
        vec![index as u8; 1 << 20]
    }

    fn on_disk(file: &SnapshotFile) -> (u64, Vec<u8>) {
        let mut s = file.load().unwrap().expect("a snapshot on disk");
        let mut bytes = Vec::new();
        s.snapshot.read_to_end(&mut bytes).unwrap();
        (s.meta.last_log_id.unwrap().index, bytes)
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::open(dir.path().join("snapshot")).unwrap().0;
        assert!(file
            .save(&meta(10), &data(10), "snapshot_build.written_before_rename")
            .unwrap());
        assert!(!file
            .save(&meta(5), &data(5), "snapshot_build.written_before_rename")
            .unwrap());
        assert!(!file
            .save(&meta(10), &data(11), "snapshot_build.written_before_rename")
            .unwrap());
        assert_eq!(on_disk(&file), (10, data(10)));
        assert!(file
            .save(&meta(12), &data(12), "snapshot_build.written_before_rename")
            .unwrap());
        assert_eq!(on_disk(&file), (12, data(12)));
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());

        // A reopened file remembers what is on disk.
        let reopened = SnapshotFile::open(dir.path().join("snapshot")).unwrap().0;
        assert!(!reopened
            .save(&meta(11), &data(11), "snapshot_build.written_before_rename")
            .unwrap());
        assert_eq!(on_disk(&reopened), (12, data(12)));
    }

    /// A build and an install saving at once (openraft runs them in
    /// parallel) leave the newer of the two, whole.
    #[test]
    fn concurrent_saves_leave_the_newest_whole() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let file = Arc::new(SnapshotFile::open(dir.path().join("snapshot")).unwrap().0);
            let savers: Vec<_> = (1..=8u64)
                .map(|i| {
                    let file = file.clone();
                    // Every order of indexes, across rounds and threads.
                    let index = (i * 3 + round) % 8 + 1;
                    std::thread::spawn(move || {
                        file.save(
                            &meta(index),
                            &data(index),
                            "snapshot_build.written_before_rename",
                        )
                        .unwrap()
                    })
                })
                .collect();
            let written = savers
                .into_iter()
                .map(|s| s.join().unwrap())
                .filter(|w| *w)
                .count();
            assert!(written >= 1);
            assert_eq!(on_disk(&file), (8, data(8)));
            assert_eq!(leftovers(dir.path()), Vec::<String>::new());
        }
    }

    #[test]
    fn open_removes_the_temporary_files_of_interrupted_saves() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::open(dir.path().join("snapshot")).unwrap().0;
        assert!(file
            .save(&meta(3), &data(3), "snapshot_build.written_before_rename")
            .unwrap());
        fs::write(dir.path().join("snapshot.7.tmp"), b"torn").unwrap();
        fs::write(dir.path().join("snapshot.tmp"), b"torn").unwrap();
        fs::write(dir.path().join("other.tmp"), b"not ours").unwrap();
        let reopened = SnapshotFile::open(dir.path().join("snapshot")).unwrap().0;
        assert_eq!(leftovers(dir.path()), vec!["other.tmp".to_string()]);
        assert_eq!(on_disk(&reopened), (3, data(3)));
    }
}
