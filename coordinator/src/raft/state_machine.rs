//! The Raft state machine (openraft storage-v2 `RaftStateMachine`): the [`ShardMap`], the last
//! applied log id and the last membership, with snapshots persisted in the redb file.
//!
//! Control path: committed entries arrive in `apply`, each `Command` goes to
//! [`ShardMap::apply`], and every change of the map is published on a `watch` channel that the
//! supervisor and the query router read ([`StateMachineStore::subscribe`]).
//!
//! Durability is by snapshot (Raft paper §7): `apply` changes memory only, and a built or
//! installed snapshot is written to the redb file. On open the last snapshot is loaded, and
//! openraft re-applies the committed entries after it from the log (the log store keeps the
//! committed log id), so a replica whose log was purged still recovers its map.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::db::{self, Db, SNAPSHOT, SNAPSHOT_KEY};
use super::error::StoreError;
use super::types::{CommandOutcome, Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::shard_map::ShardMap;

/// Everything the state machine holds; a snapshot's data is this, bincode-encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    map: ShardMap,
}

/// A snapshot as persisted: its metadata and its data.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// Numbers snapshots built by this process, to give each a distinct id.
static SNAPSHOT_SEQ: AtomicU64 = AtomicU64::new(0);

/// The state machine. Take a [`subscribe`](Self::subscribe)r before handing it to
/// `Raft::new`, which takes ownership.
pub struct StateMachineStore {
    db: Db,
    state: State,
    map_tx: watch::Sender<Arc<ShardMap>>,
}

impl StateMachineStore {
    /// Loads the last persisted snapshot, if any; otherwise starts from the uninitialised map.
    pub(crate) fn open(db: Db) -> Result<Self, StoreError> {
        let stored: Option<StoredSnapshot> = db.read(|txn| db::get(txn, SNAPSHOT, SNAPSHOT_KEY))?;
        let state = match stored {
            Some(snapshot) => State {
                last_applied: snapshot.meta.last_log_id,
                membership: snapshot.meta.last_membership,
                ..db::decode(&snapshot.data)?
            },
            None => State::default(),
        };
        let (map_tx, _) = watch::channel(Arc::new(state.map.clone()));
        Ok(Self { db, state, map_tx })
    }

    /// Watches the shard map: the current value now, then every change as it is applied or
    /// installed from a snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ShardMap>> {
        self.map_tx.subscribe()
    }

    /// The current shard map.
    pub fn map(&self) -> &ShardMap {
        &self.state.map
    }

    /// The log id of the last applied entry.
    pub fn last_applied(&self) -> Option<LogId> {
        self.state.last_applied
    }

    fn publish(&self) {
        self.map_tx.send_replace(Arc::new(self.state.map.clone()));
    }

    /// Applies one entry to the state; true if the map changed.
    fn apply_entry(&mut self, entry: Entry) -> (CommandOutcome, bool) {
        self.state.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => (CommandOutcome::NoOp, false),
            EntryPayload::Normal(command) => {
                let outcome = CommandOutcome::from(self.state.map.apply(command));
                let changed = matches!(outcome, CommandOutcome::Applied(r) if r.changed);
                (outcome, changed)
            }
            EntryPayload::Membership(membership) => {
                self.state.membership = StoredMembership::new(Some(entry.log_id), membership);
                (CommandOutcome::NoOp, false)
            }
        }
    }
}

/// Builds a snapshot from a copy of the state taken when openraft asked for the builder, so
/// the state machine keeps applying meanwhile.
pub struct SnapshotBuilder {
    db: Db,
    state: State,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let seq = SNAPSHOT_SEQ.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match self.state.last_applied {
            Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.membership.clone(),
            snapshot_id,
        };
        let err = |e: StoreError| StorageError::from(StorageIOError::write_snapshot(None, &e));
        let data = db::encode(&self.state).map_err(err)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.db
            .write(move |txn| persist_if_newer(txn, &stored))
            .await
            .map_err(err)?;
        tracing::debug!(last_log_id = ?meta.last_log_id, "built a snapshot of the shard map");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Stores `snapshot` unless a newer one is already stored (an installed snapshot may have
/// overtaken a build that started earlier).
fn persist_if_newer(txn: &redb::WriteTransaction, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
    let current: Option<StoredSnapshot> = db::get_in_write(txn, SNAPSHOT, SNAPSHOT_KEY)?;
    if current.is_none_or(|c| c.meta.last_log_id <= snapshot.meta.last_log_id) {
        db::put(txn, SNAPSHOT, SNAPSHOT_KEY, snapshot)?;
    }
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        let mut changed = false;
        for entry in entries {
            let (outcome, entry_changed) = self.apply_entry(entry);
            outcomes.push(outcome);
            changed |= entry_changed;
        }
        if changed {
            self.publish();
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            state: self.state.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let err = |e: StoreError| StorageError::from(StorageIOError::write_snapshot(signature.clone(), &e));
        let data = snapshot.into_inner();
        let state: State = db::decode(&data).map_err(err)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.db
            .write(move |txn| db::put(txn, SNAPSHOT, SNAPSHOT_KEY, &stored))
            .await
            .map_err(err)?;
        tracing::info!(last_log_id = ?meta.last_log_id, epoch = state.map.epoch, "installed a shard map snapshot");
        self.state = State {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            map: state.map,
        };
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored: Option<StoredSnapshot> = self
            .db
            .read(|txn| db::get(txn, SNAPSHOT, SNAPSHOT_KEY))
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
