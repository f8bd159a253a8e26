//! Crash points: places between durable steps where a test can make the
//! process abort, as a SIGKILL would at that instant. Compiled in only with
//! the `failpoints` feature (the `fail` crate); without it `crash_point!`
//! expands to nothing. A point is armed with the action `return`
//! (`fail::cfg(name, "return")`, or `FAILPOINTS=name=return` where the
//! process reads it).
//!
//! `CRASH_POINTS` is the one list of every point: the crash test iterates
//! it, the node's `POST /debug/crash-at/{name}` accepts only its names, and
//! docs/STORAGE.md cites it.

/// Every crash point, by step and position.
pub const CRASH_POINTS: &[&str] = &[
    // Log append: the entries written (unsynced), then the sync thread's
    // fsync, then the callback that tells openraft they are on disk.
    "append.before_write",
    "append.written_before_sync",
    "append.synced_before_callback",
    // Log truncation (a follower dropping a deposed leader's entries).
    "truncate.before",
    "truncate.after",
    // Purge: the synced batch that deletes entries and moves the mark.
    "purge.before_delete",
    "purge.after_delete",
    // Snapshot build: the file's temporary copy, its rename into place.
    "snapshot_build.before_save",
    "snapshot_build.written_before_rename",
    "snapshot_build.after_save",
    // Snapshot install: the file (its temporary copy, its rename), then
    // the purge catch-up.
    "snapshot_install.before_file",
    "snapshot_install.file_written_before_rename",
    "snapshot_install.after_file",
    // Backup restore (`raftcart restore`, armed by FAILPOINTS=name=return):
    // the side directory opened, its log marks written, its snapshot file
    // saved, renamed into place, the parent directory synced.
    "backup_restore.staging_opened",
    "backup_restore.db_written_before_snapshot",
    "backup_restore.staged_before_rename",
    "backup_restore.renamed_before_sync",
];

/// Whether `name` is in `CRASH_POINTS`.
pub fn is_crash_point(name: &str) -> bool {
    CRASH_POINTS.contains(&name)
}

/// Aborts the process if the crash point `name` is armed.
macro_rules! crash_point {
    ($name:expr) => {{
        #[cfg(feature = "failpoints")]
        $crate::crash::hit($name);
        #[cfg(not(feature = "failpoints"))]
        let _ = $name;
    }};
}
pub(crate) use crash_point;

#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &str) {
    debug_assert!(is_crash_point(name), "{name} is not in CRASH_POINTS");
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("crash point {name} reached: aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_by_step() {
        let mut seen = std::collections::BTreeSet::new();
        for name in CRASH_POINTS {
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(name.contains('.'), "{name}: step.position");
        }
    }
}
