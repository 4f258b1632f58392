//! Errors of the Raft storage: opening the redb file, reading and writing it, encoding records.
//!
//! Inside openraft's traits these become [`openraft::StorageError`]s, which stop the Raft node:
//! a replica that cannot persist its log or vote must not take part in consensus.

use std::io;

/// A failure of the Raft store. None is worth retrying in place: the file is unusable, full or
/// corrupt, or a record does not decode. Restarting the replica (or wiping its storage, which
/// makes it a new incarnation) is the remedy.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Creating the storage directory failed.
    #[error("storage directory: {0}")]
    Io(#[from] io::Error),
    /// redb could not open, read, write or commit.
    #[error("redb: {0}")]
    Db(#[from] redb::Error),
    /// A stored record (entry, vote, snapshot) did not encode or decode.
    #[error("encoding: {0}")]
    Codec(#[from] bincode::Error),
    /// The blocking task that ran a write transaction panicked or was cancelled.
    #[error("storage task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Every specific redb error goes through the umbrella [`redb::Error`], so `?` works on them.
macro_rules! from_redb {
    ($($error:ty),*) => {
        $(impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                Self::Db(error.into())
            }
        })*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
