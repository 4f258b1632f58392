//! The durable Raft log and vote (openraft storage-v2 `RaftLogStorage`), in the redb file.
//!
//! Raft's safety rests on two things surviving a crash (Raft paper §5.2, §5.4, Figure 2
//! "persistent state"): the vote, so a replica never votes twice in one term, and the log
//! entries it acknowledged. Every write here commits an fsync'd redb transaction before it
//! returns, and `append` reports the entries flushed only after that commit. The committed log
//! id is kept too, so a restarted replica re-applies the committed entries after its snapshot
//! instead of waiting for a leader.

use std::fmt::Debug;
use std::ops::RangeBounds;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use redb::{ReadableTable, ReadableTableMetadata};

use super::db::{self, COMMITTED, Db, LAST_PURGED, LOG, META, VOTE};
use super::error::StoreError;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The Raft log and vote. Cheap to clone: clones share the database, and a clone is the
/// log reader that openraft hands to its replication tasks.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
}

impl LogStore {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// The number of entries held (not purged), for metrics and tests.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.db.read(|txn| Ok(txn.open_table(LOG)?.len()?))
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StoreError> {
        self.db.read(|txn| {
            let table = txn.open_table(LOG)?;
            let last = table.last()?;
            last.map(|(_, v)| db::decode::<Entry>(v.value()).map(|e| e.log_id))
                .transpose()
        })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, StoreError> {
        self.db.read(|txn| db::get(txn, META, key))
    }
}

fn read_err(e: StoreError) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: StoreError) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.db
            .read(|txn| {
                let table = txn.open_table(LOG)?;
                let mut entries = Vec::new();
                for item in table.range::<u64>(range)? {
                    let (_, value) = item?;
                    entries.push(db::decode(value.value())?);
                }
                Ok(entries)
            })
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(LAST_PURGED).map_err(read_err)?;
        let last_log_id = self.last_entry_id().map_err(read_err)?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        self.db
            .write(move |txn| db::put(txn, META, VOTE, &vote))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(VOTE).map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.db
            .write(move |txn| db::put(txn, META, COMMITTED, &committed))
            .await
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED).map_err(read_err)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, db::encode(&e)?)))
            .collect::<Result<Vec<_>, StoreError>>();
        let written = match encoded {
            Ok(records) => self.db.write(move |txn| insert_all(txn, records)).await,
            Err(e) => Err(e),
        };
        // The commit fsyncs, so the entries are durable exactly when it has returned.
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating the raft log from here on");
        self.db
            .write(move |txn| Ok(txn.open_table(LOG)?.retain_in(log_id.index.., |_, _| false)?))
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging the raft log up to here");
        self.db
            .write(move |txn| {
                // Record the purge point first, in the same transaction: the log never has a
                // hole that `get_log_state` cannot explain.
                let previous: Option<LogId> = db::get_in_write(txn, META, LAST_PURGED)?;
                if previous.is_none_or(|p| p < log_id) {
                    db::put(txn, META, LAST_PURGED, &log_id)?;
                }
                Ok(txn.open_table(LOG)?.retain_in(..=log_id.index, |_, _| false)?)
            })
            .await
            .map_err(write_err)
    }
}

fn insert_all(txn: &redb::WriteTransaction, records: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
    let mut table = txn.open_table(LOG)?;
    for (index, bytes) in records {
        table.insert(index, bytes.as_slice())?;
    }
    Ok(())
}
