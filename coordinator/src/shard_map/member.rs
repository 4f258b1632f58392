//! Members of the replica set: the Raft node id, the replica's name and peer address, whether it
//! is Up, and whether it votes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable identity of one replica incarnation, equal to its openraft node id.
///
/// A `u64` rather than the replica name: openraft node ids are `u64`, the id is `Copy` and cheap
/// to hash into shard scores, and it separates incarnations. A pod that restarts with empty
/// storage keeps its name (`--replica-id`, for example `ha-metrics-server-0`) but is a new
/// incarnation with a new `MemberId`, so it never reuses the old identity's vote. The name and
/// address live in [`Member`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether a member is acknowledging the leader. Only Up members own shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// Acknowledging; may own shards.
    Up,
    /// Silent for longer than `--member-down-after`; owns nothing until it is Up again.
    Down,
}

/// One replica in the shard map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Raft node id of this incarnation.
    pub id: MemberId,
    /// The replica name given by `--replica-id` (usually the pod name); shared by incarnations.
    pub name: String,
    /// `host:port` of the replica's peer channel.
    pub peer_address: String,
    /// Up or Down, as last decided by the leader.
    pub state: MemberState,
    /// Whether the member is a Raft voter; learners own shards all the same.
    pub voter: bool,
}

impl Member {
    /// Whether the member may own shards.
    pub fn is_up(&self) -> bool {
        self.state == MemberState::Up
    }
}
