//! Raft for the coordinator: the openraft type configuration ([`types`]), the durable log and
//! vote store ([`LogStore`]), the shard-map state machine ([`StateMachineStore`]) and the
//! replica's persisted node id ([`node_identity`]).
//!
//! Control path: openraft appends proposed [`Command`](crate::shard_map::Command)s to the
//! [`LogStore`], and once they are committed hands them to the [`StateMachineStore`], which
//! applies them to the `ShardMap` and publishes it on a `watch` channel. Both stores share one
//! redb file, `<dir>/raft.redb`; the node id sits beside it in `<dir>/node-id`.

use std::fs;
use std::path::Path;

use redb::Database;
use redb::backends::InMemoryBackend;

mod db;
mod error;
mod identity;
mod log_store;
mod state_machine;
pub mod types;

pub use error::StoreError;
pub use identity::{NODE_ID_FILE, node_identity};
pub use log_store::LogStore;
pub use state_machine::{SnapshotBuilder, StateMachineStore};
pub use types::{CommandOutcome, NodeId, Raft, TypeConfig};

/// The redb file under the storage directory.
pub const DB_FILE: &str = "raft.redb";

/// Opens (or creates) `<dir>/raft.redb` and returns the log store and the state machine,
/// restored from the last persisted snapshot. The file is locked while either is alive.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachineStore), StoreError> {
    fs::create_dir_all(dir)?;
    stores(Database::create(dir.join(DB_FILE))?)
}

/// Stores held in memory only, for tests and the simulator: same code, no file.
pub fn open_in_memory() -> Result<(LogStore, StateMachineStore), StoreError> {
    stores(Database::builder().create_with_backend(InMemoryBackend::new())?)
}

fn stores(db: Database) -> Result<(LogStore, StateMachineStore), StoreError> {
    let db = db::Db::new(db)?;
    Ok((LogStore::new(db.clone()), StateMachineStore::open(db)?))
}
