//! Turning RocksDB, encoding and file errors into openraft storage errors.

use openraft::{AnyError, StorageError, StorageIOError};
use raftcart_types::NodeId;

pub(crate) type Result<T> = std::result::Result<T, StorageError<NodeId>>;

pub(crate) fn read_logs(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}
pub(crate) fn write_logs(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}
pub(crate) fn read_vote(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_vote(AnyError::new(&e)).into()
}
pub(crate) fn write_vote(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_vote(AnyError::new(&e)).into()
}
pub(crate) fn read_sm(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}
pub(crate) fn write_sm(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}
pub(crate) fn read_snapshot(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_snapshot(None, AnyError::new(&e)).into()
}
pub(crate) fn write_snapshot(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}
pub(crate) fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}
