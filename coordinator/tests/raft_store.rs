//! The Raft store: openraft's storage suite on the redb store, durability across reopen, the
//! shard-map watch channel, the node identity file, and a single-node Raft on top of it all.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use coordinator::raft::types::{
    AppendEntriesRequest, AppendEntriesResponse, Entry, InstallSnapshotRequest, InstallSnapshotResponse, LogId,
    RpcError, StorageError, Vote, VoteRequest, VoteResponse,
};
use coordinator::raft::{self, CommandOutcome, LogStore, Raft, StateMachineStore, TypeConfig};
use coordinator::shard_map::{ApplyError, Command, Member, MemberId, MemberState, Response, ShardMap};
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite, log_id};
use openraft::{BasicNode, EntryPayload, RaftLogReader, RaftNetwork, RaftNetworkFactory, RaftSnapshotBuilder};
use tempfile::TempDir;

fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
}

/// Builds a fresh file-backed store per suite case; the `TempDir` guard removes it afterwards.
struct FileStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for FileStores {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write(&e))?;
        let (log, sm) = raft::open(dir.path()).map_err(|e| openraft::StorageIOError::write(&e))?;
        Ok((dir, log, sm))
    }
}

/// Builds a fresh in-memory store per suite case.
struct MemoryStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore> for MemoryStores {
    async fn build(&self) -> Result<((), LogStore, StateMachineStore), StorageError> {
        let (log, sm) = raft::open_in_memory().map_err(|e| openraft::StorageIOError::write(&e))?;
        Ok(((), log, sm))
    }
}

#[test]
fn openraft_storage_suite_on_redb_file() -> anyhow::Result<()> {
    init_tracing();
    Ok(Suite::test_all(FileStores)?)
}

#[test]
fn openraft_storage_suite_in_memory() -> anyhow::Result<()> {
    init_tracing();
    Ok(Suite::test_all(MemoryStores)?)
}

fn member(id: u64) -> Member {
    Member {
        id: MemberId(id),
        name: format!("replica-{id}"),
        peer_address: format!("10.0.0.{id}:7000"),
        state: MemberState::Up,
        voter: true,
    }
}

fn init(members: &[u64]) -> Command {
    Command::Init {
        shard_count: 8,
        replication_factor: 2,
        members: members.iter().copied().map(member).collect(),
        epoch_floor: 0,
        term_floor: 0,
    }
}

fn normal(index: u64, command: Command) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(command),
    }
}

fn blank(index: u64) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Blank,
    }
}

#[tokio::test]
async fn reopen_keeps_vote_log_and_snapshot() -> anyhow::Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let vote = Vote::new(3, 7);
    let entries = vec![
        blank(1),
        normal(2, init(&[1, 2])),
        normal(3, Command::AddMember(member(3))),
    ];
    let expected_map;

    tracing::info!("--- write vote, log and committed id; apply two entries, snapshot them, purge them");
    {
        let (mut log, mut sm) = raft::open(dir.path())?;
        log.save_vote(&vote).await?;
        log.blocking_append(entries.clone()).await?;
        log.save_committed(Some(log_id(1, 1, 3))).await?;
        sm.apply(entries[..2].to_vec()).await?;
        expected_map = sm.map().clone();
        sm.get_snapshot_builder().await.build_snapshot().await?;
        sm.apply(entries[2..].to_vec()).await?;
        log.purge(log_id(1, 1, 2)).await?;
    }

    tracing::info!("--- reopen: the vote, the unpurged entry and the snapshot's map are back");
    let (mut log, mut sm) = raft::open(dir.path())?;
    assert_eq!(log.read_vote().await?, Some(vote));
    assert_eq!(log.read_committed().await?, Some(log_id(1, 1, 3)));
    let state = log.get_log_state().await?;
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(1, 1, 3)));
    let left = log.try_get_log_entries(0..).await?;
    assert_eq!(left, entries[2..]);
    assert_eq!(sm.applied_state().await?.0, Some(log_id(1, 1, 2)));
    assert!(expected_map.is_initialized());
    assert_eq!(sm.map(), &expected_map);
    assert_eq!(**sm.subscribe().borrow(), expected_map);
    Ok(())
}

#[tokio::test]
async fn watch_sees_every_change_and_only_changes() -> anyhow::Result<()> {
    let (_log, mut sm) = raft::open_in_memory()?;
    let mut rx = sm.subscribe();
    assert!(!rx.borrow_and_update().is_initialized());

    tracing::info!("--- a blank entry changes nothing");
    let out = sm.apply([blank(1)]).await?;
    assert_eq!(out, vec![CommandOutcome::NoOp]);
    assert!(!rx.has_changed()?);

    tracing::info!("--- Init is published");
    let out = sm.apply([normal(2, init(&[1, 2]))]).await?;
    assert_eq!(
        out,
        vec![CommandOutcome::Applied(Response {
            epoch: 1,
            changed: true
        })]
    );
    assert!(rx.has_changed()?);
    let map: Arc<ShardMap> = rx.borrow_and_update().clone();
    assert!(map.is_initialized());
    assert_eq!(map.up_members(), vec![MemberId(1), MemberId(2)]);

    tracing::info!("--- a rejected command is an outcome, not an error, and publishes nothing");
    let out = sm.apply([normal(3, init(&[3]))]).await?;
    assert_eq!(
        out,
        vec![CommandOutcome::Rejected(ApplyError::AlreadyInitialized { epoch: 1 })]
    );
    assert_eq!(out[0].result(), Some(Err(ApplyError::AlreadyInitialized { epoch: 1 })));
    assert!(!rx.has_changed()?);

    tracing::info!("--- a member going Down is published with the next epoch");
    let down = Command::SetState {
        member: MemberId(2),
        state: MemberState::Down,
    };
    sm.apply([normal(4, down)]).await?;
    assert!(rx.has_changed()?);
    assert_eq!(rx.borrow_and_update().epoch, 2);
    assert_eq!(sm.last_applied(), Some(log_id(1, 1, 4)));
    Ok(())
}

#[test]
fn node_identity_is_stable_and_fresh_for_empty_storage() -> io::Result<()> {
    let root = tempfile::tempdir()?;
    let dir = root.path().join("data");

    let (id, fresh) = raft::node_identity(&dir)?;
    assert!(fresh, "an empty directory is a new incarnation");
    assert_ne!(id, 0);
    assert_eq!(raft::node_identity(&dir)?, (id, false));
    assert!(!dir.join(format!("{}.tmp", raft::NODE_ID_FILE)).exists());

    let (other, fresh) = raft::node_identity(&root.path().join("other"))?;
    assert!(fresh);
    assert_ne!(other, id, "another empty storage gets another id");

    std::fs::write(dir.join(raft::NODE_ID_FILE), "garbage")?;
    assert_eq!(
        raft::node_identity(&dir).unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
    Ok(())
}

/// A network with no peers: enough for a single-node cluster, which never sends an RPC.
struct NoPeers;

fn unreachable<E: std::error::Error>() -> RpcError<E> {
    RpcError::Unreachable(Unreachable::new(&io::Error::other("single-node test has no peers")))
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> NoPeers {
        NoPeers
    }
}

impl RaftNetwork<TypeConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse, RpcError> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RpcError<openraft::error::InstallSnapshotError>> {
        Err(unreachable())
    }

    async fn vote(&mut self, _rpc: VoteRequest, _option: RPCOption) -> Result<VoteResponse, RpcError> {
        Err(unreachable())
    }
}

async fn start(dir: &std::path::Path, id: u64) -> anyhow::Result<(Raft, tokio::sync::watch::Receiver<Arc<ShardMap>>)> {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    };
    let (log, sm) = raft::open(dir)?;
    let rx = sm.subscribe();
    let raft = Raft::new(id, Arc::new(config.validate()?), NoPeers, log, sm).await?;
    Ok((raft, rx))
}

async fn wait_initialized(rx: &mut tokio::sync::watch::Receiver<Arc<ShardMap>>) -> anyhow::Result<Arc<ShardMap>> {
    let map = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|m| m.is_initialized()))
        .await
        .context("the map was not published in time")??;
    Ok(map.clone())
}

#[tokio::test]
async fn single_node_raft_commits_init_and_recovers_it() -> anyhow::Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let (id, _) = raft::node_identity(dir.path())?;

    tracing::info!("--- form a one-node cluster and wait until it leads");
    let (raft, mut rx) = start(dir.path(), id).await?;
    raft.initialize(BTreeMap::from([(id, BasicNode::new("127.0.0.1:7000"))]))
        .await?;
    raft.wait(Some(Duration::from_secs(10)))
        .current_leader(id, "the single node leads")
        .await?;

    tracing::info!("--- Init goes through the log and reaches the watch channel");
    let written = raft.client_write(init(&[id])).await?;
    assert_eq!(
        written.data,
        CommandOutcome::Applied(Response {
            epoch: 1,
            changed: true
        })
    );
    let map = wait_initialized(&mut rx).await?;
    assert_eq!(map.up_members(), vec![MemberId(id)]);
    let committed: LogId = written.log_id;
    raft.shutdown().await?;
    drop(raft);

    tracing::info!("--- restart on the same storage: the committed Init is re-applied from the log");
    let (raft, mut rx) = start(dir.path(), id).await?;
    let recovered = wait_initialized(&mut rx).await?;
    assert_eq!(recovered, map);
    raft.wait(Some(Duration::from_secs(10)))
        .applied_index_at_least(Some(committed.index), "re-applied")
        .await?;
    raft.shutdown().await?;
    Ok(())
}
