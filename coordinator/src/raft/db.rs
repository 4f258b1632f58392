//! The one redb file behind the log store and the state machine, and its record encoding.
//!
//! Three tables: the log (`index -> bincode(Entry)`), the log's metadata (vote, committed and
//! last purged log id) and the state machine's last snapshot. Writes run on tokio's blocking
//! pool because a commit fsyncs (redb's default `Durability::Immediate`); when a write returns,
//! its data is on disk. Reads are short and run in place.

use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;

/// Log entries by index.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Log metadata: [`VOTE`], [`COMMITTED`], [`LAST_PURGED`].
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
/// The state machine's last snapshot under [`SNAPSHOT_KEY`].
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("state_machine");

pub(crate) const VOTE: &str = "vote";
pub(crate) const COMMITTED: &str = "committed";
pub(crate) const LAST_PURGED: &str = "last_purged";
pub(crate) const SNAPSHOT_KEY: &str = "snapshot";

/// A shared handle on the database.
#[derive(Clone)]
pub(crate) struct Db(Arc<Database>);

impl Db {
    /// Wraps `db` and creates the tables, so read transactions can open them on a new file.
    pub(crate) fn new(db: Database) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        txn.open_table(LOG)?;
        txn.open_table(META)?;
        txn.open_table(SNAPSHOT)?;
        txn.commit()?;
        Ok(Self(Arc::new(db)))
    }

    /// Runs `f` in a read transaction that sees every committed write.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        f(&self.0.begin_read()?)
    }

    /// Runs `f` in a write transaction and commits it on the blocking pool; returns once the
    /// commit is durable. If `f` fails, nothing is written.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_write()?;
            let value = f(&txn)?;
            txn.commit()?;
            Ok(value)
        })
        .await?
    }
}

/// Reads and decodes `key` of a string-keyed table.
pub(crate) fn get<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let table = txn.open_table(table)?;
    let value = table.get(key)?;
    value.map(|v| decode(v.value())).transpose()
}

/// Reads and decodes `key` of a string-keyed table inside a write transaction.
pub(crate) fn get_in_write<T: DeserializeOwned>(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let table = txn.open_table(table)?;
    let value = table.get(key)?;
    value.map(|v| decode(v.value())).transpose()
}

/// Encodes `value` and stores it under `key` of a string-keyed table.
pub(crate) fn put<T: Serialize>(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    txn.open_table(table)?.insert(key, encode(value)?.as_slice())?;
    Ok(())
}

/// Encodes a record with bincode 1 (fixed-width integers, the format of the Raft network too).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(bincode::serialize(value)?)
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(bincode::deserialize(bytes)?)
}
