//! What replicas say to each other on the peer channel (bincode bodies under `/peer/v1/`).
//! Every message that carries metrics or a decision also carries the sender's shard-map epoch,
//! so a receiver recognises a stale owner (fencing by epoch).

use serde::{Deserialize, Serialize};
use shard::store::{Op, ShardSnapshot};

/// Paths under [`crate::peer::transport::PEER_PATH_PREFIX`].
pub mod path {
    pub const INFO: &str = "/peer/v1/info";
    /// `v2`: the answer carries the asker's read leases.
    pub const PING: &str = "/peer/v2/ping";
    pub const JOIN: &str = "/peer/v1/join";
    pub const LEAVE: &str = "/peer/v1/leave";
    pub const QUERY: &str = "/peer/v1/query";
    /// Pushes to one standby, several shards' at once (`Vec<ShardPush>`, answered by
    /// `Vec<PushAck>` in the same order). `v2`: v1 took one push of whole node copies.
    pub const REPLICATE: &str = "/peer/v2/replicate";
    pub const HANDOFF: &str = "/peer/v1/handoff";
    pub const PULL: &str = "/peer/v1/pull";
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
    /// Whether it reaches its set's leader and a majority of its voters: a set whose leader
    /// reaches no quorum is not joined, and does not count as a set that formed without us.
    pub quorum: bool,
    /// Shards it scrapes and shards it holds as standby.
    pub primaries: u32,
    pub standbys: u32,
    /// Nodes in the shards it scrapes.
    pub nodes: u32,
    /// The shard map as this replica has applied it (for `status`).
    pub map: coordinator::shard_map::ShardMap,
    /// The voters of its Raft membership: the authority on who votes (the map's `voter` flags
    /// follow the membership only once the leader has proposed the change).
    pub voters: Vec<u64>,
}

/// Liveness probe; the answer names the incarnation that answered.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Ping {
    pub from: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    pub member: u64,
    /// The replica is shutting down: count it as silent.
    pub leaving: bool,
    /// The replica is just back from a freeze and does not serve its own copies yet
    /// (`ha/stall.rs`): reachable, but the leader must not make it Up (and so give it shards)
    /// before it can serve them.
    pub settling: bool,
    /// Read leases for the asker: `(shard, term, seq)` for every shard this replica writes and
    /// the asker follows in sync, with the term and last push this replica has applied (so
    /// committed). The
    /// asker may answer reads of the shard from its own copy, alone, for a lease's length
    /// from when it sent the ping (`ha/lease.rs`).
    pub grants: Vec<(u32, u64, u64)>,
    /// The shards this replica writes now (as their primary, or without a quorum): a replica
    /// writing a shard without a quorum stops once an owner before it in the map writes it,
    /// not merely answers pings (`ha/reconcile.rs`).
    pub writing: Vec<u32>,
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

/// A writer's copies of one shard's nodes, sent to a standby before they are served
/// (`/replicate`), or a quorum-loss writer's copy handed to the shard's primary when it stops
/// (`/handoff`, always [`PushBody::Full`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardPush {
    pub from: u64,
    /// The sender's shard-map epoch: a receiver with a newer map refuses a sender that no
    /// longer owns the shard (fencing by epoch).
    pub epoch: u64,
    pub shard: u32,
    /// The writer's term of writing the shard (`ha/replicate.rs`, [`Outbox::reset`]): each
    /// term numbers its pushes from 1 again, so a standby takes an update only on top of the
    /// same term's previous push. 0 for a hand-over.
    ///
    /// [`Outbox::reset`]: crate::ha::replicate::Outbox::reset
    pub term: u64,
    /// Per writer, shard and term, from 1: a standby that sees a gap is out of sync.
    pub seq: u64,
    /// Sender's wall clock (Unix ns) when the copy was taken: its `received` times are moved
    /// onto the receiver's clock by the difference, and the lag is a self-metric.
    pub taken_at: i64,
    pub body: PushBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PushBody {
    /// The writer's changes since the last push, in order (`shard::store::Op`); applies only on
    /// top of push `seq - 1`.
    Update { ops: Vec<Op> },
    /// The whole shard: brings a standby in sync whatever it held.
    Full(ShardSnapshot),
    /// The writer applied every push up to `seq` (each standby held it): a standby applies
    /// what it staged up to there.
    Commit,
    /// The writer did not apply push `seq` (no standby held it, or it was fenced): a standby
    /// drops what it staged for it and is out of sync.
    Abort,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum PushAck {
    Accepted,
    /// An update that does not follow the last push applied here: send the whole shard.
    OutOfSync,
    /// The receiver's map is newer and the sender no longer owns the shard, or the receiver
    /// writes the shard itself under a map at least as new.
    Stale {
        epoch: u64,
    },
}

/// A replica about to write shards asks every other holder for its copy; a holder whose map is
/// not newer stops writing them, answers with its copy and serves them no more (it is fenced
/// until its map moves past `epoch`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRequest {
    pub from: u64,
    /// The puller's shard-map epoch.
    pub epoch: u64,
    pub shards: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PullResponse {
    /// The holder's map epoch.
    pub epoch: u64,
    /// The holder's wall clock when the copies were taken (see [`ShardPush::taken_at`]).
    pub taken_at: i64,
    /// Copies of the shards it held (shards it held nothing of are left out), each with whether
    /// it holds everything the shard's writer had published (`copies.rs`, `holds_whole`).
    pub copies: Vec<(u32, ShardSnapshot, bool)>,
    /// Shards it did not yield: its map or its own takeover is newer.
    pub refused: Vec<u32>,
    /// Shards yielded but left out to keep the answer under [`MAX_ANSWER_BYTES`]: pulled again.
    pub deferred: Vec<u32>,
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
    /// Shards asked for whose copy here is stale (see `copies.rs`): no rows are sent for them,
    /// the asker tries another source.
    pub cold: Vec<u32>,
    /// Shards not answered because the answer would have passed [`MAX_ANSWER_BYTES`]: asked
    /// again in another request.
    pub deferred: Vec<u32>,
}

/// An owner stops adding shards to an answer beyond this size (the rest are `deferred`), so no
/// answer comes near the peer body cap however many pods one owner holds.
pub const MAX_ANSWER_BYTES: usize = crate::peer::transport::MAX_PEER_BODY_BYTES / 4;

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
