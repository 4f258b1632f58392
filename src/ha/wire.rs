//! What replicas say to each other on the peer channel (bincode bodies under `/peer/v1/`).
//! Every message that carries metrics or a decision also carries the sender's shard-map epoch,
//! so a receiver recognises a stale owner (fencing by epoch).

use serde::{Deserialize, Serialize};
use shard::store::ShardSnapshot;

/// Paths under [`crate::peer::transport::PEER_PATH_PREFIX`].
pub mod path {
    pub const INFO: &str = "/peer/v1/info";
    pub const PING: &str = "/peer/v1/ping";
    pub const JOIN: &str = "/peer/v1/join";
    pub const LEAVE: &str = "/peer/v1/leave";
    pub const QUERY: &str = "/peer/v1/query";
    pub const REPLICATE: &str = "/peer/v1/replicate";
    pub const HANDOFF: &str = "/peer/v1/handoff";
    pub const RAFT_APPEND: &str = "/peer/v1/raft/append";
    pub const RAFT_VOTE: &str = "/peer/v1/raft/vote";
    pub const RAFT_SNAPSHOT: &str = "/peer/v1/raft/snapshot";
}

/// Asks a replica who it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InfoRequest {
    /// The asker's name when it belongs to no cluster and may form one: the answering replica
    /// then defers its own formation (see `formation.rs`).
    pub looking: Option<String>,
}

/// Who a replica is and what it knows of the cluster (first formation, joining, `status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub name: String,
    pub member: u64,
    pub address: String,
    /// Whether this replica belongs to a formed Raft cluster (or is forming one).
    pub initialized: bool,
    /// The leader it follows, as `(id, address)`.
    pub leader: Option<(u64, String)>,
    pub term: u64,
    pub epoch: u64,
    pub degraded: bool,
    /// Shards it scrapes and shards it holds as standby.
    pub primaries: u32,
    pub standbys: u32,
    /// Nodes in the shards it scrapes.
    pub nodes: u32,
    /// The shard map as this replica has applied it (for `status`).
    pub map: coordinator::shard_map::ShardMap,
}

/// Liveness probe; the answer names the incarnation that answered.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Ping {
    pub from: u64,
    pub epoch: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Pong {
    pub member: u64,
    pub epoch: u64,
    /// The replica is shutting down: count it as silent.
    pub leaving: bool,
}

/// A replica shutting down asks the leader to mark it Down now, so its shards move (with
/// handoff) before it exits rather than after `--member-down-after`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LeaveRequest {
    pub member: u64,
}

/// A new replica (or a new incarnation of one) asks the leader to be let in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub name: String,
    pub member: u64,
    pub address: String,
    /// Whether the joiner already has a Raft log (from a replica set that no longer knows it).
    pub has_log: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JoinResponse {
    Joined {
        epoch: u64,
    },
    /// Ask this address instead.
    NotLeader {
        leader: Option<String>,
    },
    Failed(String),
    /// The joiner's Raft log is not from this replica set: delete it and join as a new
    /// incarnation.
    StartOver,
}

/// A primary's copy of one shard (after every scrape cycle), or an old primary's hand-over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardPush {
    pub from: u64,
    pub epoch: u64,
    pub shard: u32,
    /// Sender's wall clock (Unix ns) when the copy was taken: replication lag.
    pub taken_at: i64,
    pub snapshot: ShardSnapshot,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum PushAck {
    Accepted,
    /// The receiver's map is newer and the sender no longer owns the shard.
    Stale {
        epoch: u64,
    },
}

/// One fan-out request: everything an owner needs to answer for some of its shards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRequest {
    pub epoch: u64,
    pub shards: Vec<u32>,
    pub target: QueryTarget,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueryTarget {
    /// Pods, filtered by the owner: namespace, one name, and the request's query string
    /// (label and field selectors), parsed exactly as the receiving replica parsed it.
    Pods {
        namespace: Option<String>,
        name: Option<String>,
        query: String,
    },
    /// Every servable node of the shards (the receiver filters by its node cache).
    Nodes,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryResponse {
    pub pods: Vec<WirePod>,
    pub nodes: Vec<WireNode>,
    /// Shards asked for that this replica does not hold current data for (not an owner, or
    /// just took it over): the asker tries the next owner.
    pub cold: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WirePod {
    pub shard: u32,
    pub namespace: String,
    pub name: String,
    pub timestamp: i64,
    pub window: i64,
    /// `(name, nanocores, bytes, swap bytes)`, sorted by name.
    pub containers: Vec<(String, u64, u64, Option<u64>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireNode {
    pub shard: u32,
    pub name: String,
    pub timestamp: i64,
    pub window: i64,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
    pub swap_bytes: Option<u64>,
}
