//! openraft's own storage test suite, run over the RocksDB stores.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use raftcart_storage::{LogStore, StateMachine};
use raftcart_types::{NodeId, TypeConfig};
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = TempDir::new().expect("temp dir");
        let (log, sm, _view) = raftcart_storage::open(dir.path())?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(RocksBuilder).expect("openraft storage suite");
}
