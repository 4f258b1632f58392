//! High availability: this replica's part in the replica set.
//!
//! Control path: Raft (openraft, `coordinator::raft`) replicates the `ShardMap`; the control
//! loop (`control.rs`) pings every member, lets the leader mark members Up/Down and rebalance,
//! detects quorum loss, and reconciles which shards this replica writes, follows or releases
//! (`copies.rs`); a replica about to write shards pulls every other holder's copy first and
//! fences the old writer (`takeover.rs`). Data path: a writer replicates each scrape to the
//! shard's standbys before it serves it (`replicate.rs`); reads fan out to the shards' sources
//! (`fanout.rs`). Everything between replicas goes over the mutually authenticated peer channel
//! (`crate::peer`; this replica's handlers in `routes.rs`). The design and its invariants:
//! docs/architecture.md.

mod control;
mod copies;
mod courier;
mod fanout;
mod formation;
mod lease;
mod leave;
mod liveness;
mod network;
mod reconcile;
pub mod replicate;
mod reset;
pub mod routes;
mod stall;
mod standby;
pub mod status;
mod takeover;

use crate::config::{HaConfig, Peer};
use crate::metrics::Metrics;
use crate::peer::transport::PeerClient;
use coordinator::raft::Raft;
use coordinator::shard_map::{MemberId, ShardMap};
use liveness::Liveness;
use shard::actor::ShardSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the control loop runs: leader duties (Up/Down, rebalance), quorum loss, ownership.
/// It also runs at once whenever the shard map changes.
pub const CONTROL_INTERVAL: Duration = Duration::from_millis(500);
/// How often every member is pinged (the answer carries read leases, `lease.rs`). Besides
/// pings, a Raft exchange with a member also shows it is there (`liveness.rs`).
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A member heard from this recently is routed to and counted for quorum: two pings missed in
/// a row, not one.
pub const REACHABLE_WINDOW: Duration = Duration::from_millis(2500);
/// Deadline of one ping.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// Raft heartbeat and election timeouts (ms), an election timeout of five to ten heartbeats.
/// Metrics never wait for Raft (readers keep reading the copies they hold; only moving shards
/// does), but the election must end well within `--quorum-loss-timeout`: with a 300 ms
/// heartbeat and 1.2-2.4 s elections, replacing a killed leader took 4.8 s (split votes), past
/// the chaos runner's 4 s quorum-loss timeout, so both survivors entered quorum-loss mode just
/// before the new leader came (docs/chaos.md, finding X).
pub const HEARTBEAT_MS: u64 = 150;
pub const ELECTION_MIN_MS: u64 = 800;
pub const ELECTION_MAX_MS: u64 = 1600;

/// Fixed facts about this replica and its peers.
pub struct Identity {
    pub member: MemberId,
    pub name: String,
    pub address: String,
    /// `--peers`, in list order.
    pub peers: Vec<Peer>,
    /// Names of the replicas that vote (the first `--voters` of `--peers`).
    pub voter_names: Vec<String>,
}

/// One replica's view of and part in the replica set.
pub struct Ha {
    pub id: Identity,
    pub config: HaConfig,
    pub shard_count: u32,
    pub raft: Raft,
    pub map: watch::Receiver<Arc<ShardMap>>,
    pub client: PeerClient,
    pub shards: Arc<ShardSet>,
    pub metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
    /// Whether this replica was frozen and has not caught up yet.
    pub stall: Arc<stall::StallWatch>,
    degraded: AtomicBool,
    /// Set on SIGTERM: pings answer "leaving" and the leader moves this replica's shards.
    leaving: AtomicBool,
    /// Each shard's copy here: writing, following, released (see `copies.rs`).
    copies: Mutex<Vec<copies::ShardCopy>>,
    /// Each shard's replication state while this replica writes it.
    outboxes: Vec<Mutex<replicate::Outbox>>,
    /// Pushes on their way to each standby, sent together (`courier.rs`).
    couriers: Arc<courier::Couriers>,
    /// Each shard's pushes staged here as its standby, waiting for their commit (`standby.rs`).
    inboxes: Vec<Mutex<standby::Inbox>>,
    /// The read leases this replica holds as a standby (`lease.rs`).
    leases: lease::Leases,
    /// Whether a peer answered as a member of a replica set the last time this replica, outside
    /// any set, looked: it then leaves writing to that set instead of writing in quorum-loss
    /// mode itself.
    cluster_seen: AtomicBool,
    /// The highest epoch of the lost sets seen while forming (see `Command::Init`).
    formation_floor: std::sync::atomic::AtomicU64,
    formation_term_floor: std::sync::atomic::AtomicU64,
    /// When the copies of shards not scraped here were last expired.
    last_expiry: Mutex<std::time::Instant>,
    resolution: Duration,
    /// The members this replica formed the cluster with, until `Init` is committed.
    formation: Mutex<Option<Vec<coordinator::shard_map::Member>>>,
    /// Who asked this replica about itself while looking to form, and whether it is forming.
    formation_gate: Mutex<formation::Gate>,
}

impl Ha {
    /// The shard map as last applied here.
    pub fn current_map(&self) -> Arc<ShardMap> {
        self.map.borrow().clone()
    }

    pub fn me(&self) -> MemberId {
        self.id.member
    }

    /// Whether this replica is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id.member.0)
    }

    /// Whether this replica scrapes shards whose owners it cannot reach (quorum lost).
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Whether this replica was frozen (or starved) recently: its own data is read last.
    pub fn unsettled(&self) -> bool {
        self.stall.unsettled()
    }

    /// Notes that `member` reached this replica (an incoming Raft heartbeat).
    pub fn heard_from(&self, member: MemberId) {
        self.liveness.heard_from(member);
    }

    /// Whether `member` answered a ping recently (this replica always has).
    pub fn reachable(&self, member: MemberId) -> bool {
        member == self.id.member || self.liveness.reachable(member, REACHABLE_WINDOW)
    }

    /// Readiness with peers: the map is formed with this replica's shard count, and every shard
    /// has a reachable owner or a copy here.
    pub fn can_answer(&self) -> bool {
        let map = self.current_map();
        map.is_initialized()
            && map.shard_count == self.shards.shards
            && (0..map.shard_count).all(|s| {
                map.owners(s).iter().any(|&o| self.reachable(o))
                    || self.shards.stores[s as usize].read().expect("store lock").holds_nodes()
            })
    }

    /// The epoch from which this replica has been `shard`'s primary without a break; 0 when it
    /// is not its primary (see [`copies::ShardCopy::interrupted`]).
    pub(super) fn term_since(&self, map: &ShardMap, shard: u32) -> u64 {
        if map.primary(shard) == Some(&self.me()) {
            map.primary_since(shard)
        } else {
            0
        }
    }

    /// The peer address of a member, from the map.
    fn address_of(&self, map: &ShardMap, member: MemberId) -> Option<String> {
        map.members.get(&member).map(|m| m.peer_address.clone())
    }
}

pub use control::start;
