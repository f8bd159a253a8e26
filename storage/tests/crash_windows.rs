//! Crashes between two steps that openraft or the stores take one after the
//! other: the node must come back able to start and to serve its snapshot.
//! A crash is simulated by dropping the stores (nothing more is written) and
//! putting back on disk what had not been written yet.

use std::fs;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine, StorageHelper};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder};
use raftcart_domain::{Command, Proposal, Proposals, StateRead};
use raftcart_storage::open;
use raftcart_types::Snapshot;
use raftcart_types::TypeConfig;

fn id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
    Entry {
        log_id: id(index),
        payload: EntryPayload::Normal(Proposals(vec![Proposal {
            request_id: format!("r{index}"),
            at_ms: index,
            command,
        }])),
    }
}

fn funds(index: u64) -> Entry<TypeConfig> {
    entry(
        index,
        Command::AddFunds {
            user_id: "0".into(),
            amount: 1,
        },
    )
}

/// Entries 0..=n: a blank entry where openraft's log starts, three users
/// with 10 each, then one unit more per entry to user "0" (its credit
/// tells how many entries were applied).
fn log(n: u64) -> Vec<Entry<TypeConfig>> {
    let mut entries = vec![
        Entry {
            log_id: id(0),
            payload: EntryPayload::Blank,
        },
        entry(1, Command::BatchInitUsers { n: 3, credit: 10 }),
    ];
    entries.extend((2..=n).map(funds));
    entries
}

fn data(snapshot: Snapshot) -> Vec<u8> {
    snapshot.snapshot.into_inner()
}

/// A node in `dir` that applied `log(n)` and built its snapshot.
async fn node_with_snapshot(dir: &Path, n: u64) -> Snapshot {
    let (mut log_store, mut sm, _view) = open(dir).unwrap();
    log_store.blocking_append(log(n)).await.unwrap();
    sm.apply(log(n)).await.unwrap();
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

/// A follower receiving a snapshot: openraft queues the install and purges
/// the log up to the snapshot at once, without waiting for the install. The
/// node crashes before the install is stored. It must start again: the
/// entries after what its state machine holds cannot be gone.
#[tokio::test]
async fn a_purge_ahead_of_the_state_machine_leaves_a_node_that_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log_store, mut sm, _view) = open(dir.path()).unwrap();
        log_store.blocking_append(log(5)).await.unwrap();
        sm.apply(log(2)).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        log_store.save_committed(Some(id(4))).await.unwrap();
        // The leader's snapshot is at 8; the install has not been stored.
        log_store.purge(id(8)).await.unwrap();
        let state = log_store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(id(8)), "openraft's view");
        assert_eq!(state.last_log_id, Some(id(8)));
    }

    let (mut log_store, mut sm, view) = open(dir.path()).unwrap();
    let state = StorageHelper::new(&mut log_store, &mut sm)
        .get_initial_state()
        .await
        .expect("the node restarts");
    // Entries 3 and 4 (committed) were applied after the snapshot file.
    assert_eq!(state.committed.map(|l| l.index), Some(4));
    assert_eq!(view.user("0").unwrap().credit, 10 + 3);
    let log_state = log_store.get_log_state().await.unwrap();
    assert!(
        log_state.last_purged_log_id <= Some(id(2)),
        "purged past the state machine: {:?}",
        log_state.last_purged_log_id
    );
    let kept = log_store.try_get_log_entries(3..=5).await.unwrap();
    assert_eq!(
        kept.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        [3, 4, 5]
    );
}

/// The purge that had to wait for the install happens once the install is
/// stored, and survives a restart.
#[tokio::test]
async fn a_purge_held_back_for_an_install_completes_with_it() {
    let leader = tempfile::tempdir().unwrap();
    let snapshot = node_with_snapshot(leader.path(), 8).await;

    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log_store, mut sm, _view) = open(dir.path()).unwrap();
        log_store.blocking_append(log(5)).await.unwrap();
        sm.apply(log(2)).await.unwrap();
        log_store.purge(id(8)).await.unwrap();
        sm.install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
    }
    let (mut log_store, mut sm, view) = open(dir.path()).unwrap();
    let state = log_store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(id(8)));
    assert_eq!(state.last_log_id, Some(id(8)));
    assert!(log_store.try_get_log_entries(0..).await.unwrap().is_empty());
    assert_eq!(sm.applied_state().await.unwrap().0, Some(id(8)));
    assert_eq!(view.user("0").unwrap().credit, 10 + 7);
}

/// A byte of the snapshot file changed on disk (in the data, where the
/// file's own encoding cannot notice): reading it is refused, naming the
/// file, rather than sending damaged state to a follower.
#[tokio::test]
async fn a_damaged_snapshot_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot");
    let (_log_store, mut sm, _view) = open(dir.path()).unwrap();
    sm.apply(log(5)).await.unwrap();
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    flip_byte(&file, 10);
    let err = sm
        .get_current_snapshot()
        .await
        .expect_err("a damaged snapshot file is refused");
    let message = err.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("checksum"), "{message}");
}

/// A damaged snapshot file found at open, on a node whose log was never
/// purged, is removed: the log holds every entry, and openraft applies them
/// all again.
#[tokio::test]
async fn a_damaged_snapshot_file_with_the_whole_log_is_replaced_by_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot");
    node_with_snapshot(dir.path(), 5).await;
    flip_byte(&file, 10);
    assert_restarts_from_the_whole_log(dir.path(), &file).await;
}

/// A snapshot file written before snapshot files had a header (the
/// metadata and the data, bincode-encoded) counts as damaged.
#[tokio::test]
async fn a_snapshot_file_without_a_header_is_replaced_by_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot");
    let built = node_with_snapshot(dir.path(), 5).await;
    let legacy = raftcart_types::codec::encode(&(&built.meta, vec![1u8, 2, 3])).unwrap();
    fs::write(&file, legacy).unwrap();
    assert_restarts_from_the_whole_log(dir.path(), &file).await;
}

async fn assert_restarts_from_the_whole_log(dir: &Path, file: &Path) {
    {
        let (mut log_store, _sm, _view) = open(dir).unwrap();
        log_store.save_committed(Some(id(5))).await.unwrap();
    }
    let (mut log_store, mut sm, view) = open(dir).unwrap();
    assert!(!file.exists(), "the damaged file was kept");
    StorageHelper::new(&mut log_store, &mut sm)
        .get_initial_state()
        .await
        .expect("the node restarts");
    assert_eq!(sm.applied_state().await.unwrap().0, Some(id(5)));
    assert_eq!(view.user("0").unwrap().credit, 10 + 4);
}

/// A damaged snapshot file on a node whose log is purged behind it is the
/// only copy of the state up to the purge: the open stops, naming the file
/// and what to do, rather than start a node that lacks those entries.
#[tokio::test]
async fn a_damaged_snapshot_file_behind_a_purged_log_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot");
    node_with_snapshot(dir.path(), 5).await;
    {
        let (mut log_store, _sm, _view) = open(dir.path()).unwrap();
        log_store.purge(id(5)).await.unwrap();
    }
    flip_byte(&file, 10);
    let err = open(dir.path()).err().expect("open refuses").to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("remove the node's data directory"), "{err}");
}

/// A data directory where an older build kept the state machine in the
/// `sm` column family (written at every apply) and the snapshot file
/// behind it: open saves the column family as the snapshot file, empties
/// it, and starts from the file.
#[tokio::test]
async fn state_kept_in_the_column_family_moves_to_the_snapshot_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot");
    node_with_snapshot(dir.path(), 2).await;
    {
        let db = raw_db(dir.path());
        let sm = db.cf_handle("sm").unwrap();
        let user = raftcart_types::codec::encode(&raftcart_domain::User { credit: 99 }).unwrap();
        db.put_cf(sm, b"u/0", user).unwrap();
        let applied = raftcart_types::codec::encode(&id(7)).unwrap();
        db.put_cf(sm, b"m/applied", applied).unwrap();
    }
    let (_log_store, mut sm, view) = open(dir.path()).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(id(7)));
    assert_eq!(view.user("0").unwrap().credit, 99);
    let saved = sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!(saved.meta.last_log_id, Some(id(7)));
    drop((sm, view, _log_store));
    assert!(file.exists());
    let db = raw_db(dir.path());
    let left = db
        .iterator_cf(db.cf_handle("sm").unwrap(), rocksdb::IteratorMode::Start)
        .count();
    assert_eq!(left, 0, "the column family was emptied");
}

/// Received snapshot data that was damaged on the way is refused before
/// anything is touched.
#[tokio::test]
async fn damaged_snapshot_data_is_refused_untouched() {
    let leader = tempfile::tempdir().unwrap();
    let snapshot = node_with_snapshot(leader.path(), 5).await;
    let mut damaged = data(snapshot.clone());
    let last = damaged.len() - 1;
    damaged[last - 20] ^= 0x01;

    let dir = tempfile::tempdir().unwrap();
    let (_log_store, mut sm, view) = open(dir.path()).unwrap();
    sm.apply(log(1)).await.unwrap();
    let err = sm
        .install_snapshot(&snapshot.meta, Box::new(std::io::Cursor::new(damaged)))
        .await
        .expect_err("damaged data is refused");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(sm.applied_state().await.unwrap().0, Some(id(1)));
    assert_eq!(view.user("0").unwrap().credit, 10);
}

/// The node's database opened behind the stores' back.
fn raw_db(dir: &Path) -> rocksdb::DB {
    rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        dir.join("db"),
        ["log", "meta", "sm"],
    )
    .unwrap()
}

/// Flips one bit of the byte `from_end` bytes before the end of `file`.
fn flip_byte(file: &Path, from_end: usize) {
    let mut bytes = fs::read(file).unwrap();
    let at = bytes.len() - from_end;
    bytes[at] ^= 0x01;
    fs::write(file, bytes).unwrap();
}
