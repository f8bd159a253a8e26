//! The log appends' fsync, on a thread of its own: one fsync for every
//! append that arrived while the previous one ran.
//!
//! An append's callback must come only once its entries are on disk. So an
//! append writes its entries (unsynced: visible to readers at once) and
//! queues its callback here; this thread syncs RocksDB's write-ahead log,
//! which covers every write issued before the sync began, and then
//! completes every callback it had taken. openraft 0.9 awaits each
//! callback before its next append (`RaftCore::append_to_log`), so in
//! practice each sync serves one append; what the thread buys is that the
//! Raft runtime's workers never wait on the disk (syncing on the calling
//! task measured the same, docs/performance.md).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use openraft::storage::LogFlushed;
use raftcart_types::TypeConfig;
use rocksdb::DB;

use crate::crash::crash_point;

pub(crate) struct WalSync {
    /// `None` only while dropping: closing the queue is what stops the thread.
    queue: Option<Sender<LogFlushed<TypeConfig>>>,
    thread: Option<JoinHandle<()>>,
}

impl WalSync {
    pub(crate) fn start(db: Arc<DB>) -> WalSync {
        let (queue, pending) = channel();
        let thread = std::thread::Builder::new()
            .name("raftcart-wal-sync".into())
            .spawn(move || run(db, pending))
            .expect("spawning the WAL sync thread");
        WalSync {
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// Completes `callback` once everything written so far is on disk.
    /// Must be called after the write it stands for returned.
    pub(crate) fn after_sync(&self, callback: LogFlushed<TypeConfig>) {
        let queue = self.queue.as_ref().expect("the queue closes only on drop");
        if let Err(unsent) = queue.send(callback) {
            // The thread is gone only if a sync panicked: never claim
            // durability then.
            unsent
                .0
                .log_io_completed(Err(std::io::Error::other("the WAL sync thread stopped")));
        }
    }
}

impl Drop for WalSync {
    /// Waits for the thread so that its handle on the database is gone when
    /// the store is: reopening the same directory right after closing it
    /// would otherwise find RocksDB's lock still held.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(db: Arc<DB>, pending: Receiver<LogFlushed<TypeConfig>>) {
    // Ends when the log store (the only sender) is dropped.
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        batch.extend(pending.try_iter());
        let synced = db.flush_wal(true);
        crash_point!("append.synced_before_callback");
        for callback in batch {
            callback.log_io_completed(
                synced
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
            );
        }
    }
}
