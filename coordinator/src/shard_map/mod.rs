//! The `ShardMap`: the Raft state machine's data. It says which members exist, which are Up, and
//! which members own each shard (`[primary, standby, ...]`).
//!
//! Control path: commands committed through Raft go to [`ShardMap::apply`] (in `command.rs`),
//! which recomputes the assignment with [`assign::assign`]; replicas read the result to start
//! and stop scrapers (`primary`, `shards_of`) and to route queries (`owners`). The map knows
//! shard numbers only: every replica hashes node names to shards itself (`shard::hash`), so
//! this crate depends on no scraping code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod assign;
mod command;
mod member;

pub use command::{ApplyError, Command, MAX_SHARDS, Response};
pub use member::{Member, MemberId, MemberState};

/// Shards and their owners at one `epoch`.
///
/// The default value is the uninitialised map (no shards, no members, epoch 0) that the state
/// machine starts from before [`Command::Init`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMap {
    /// Bumped exactly once by every applied command that changes members or assignment;
    /// never decreases. Results produced under an older epoch are stale (fencing by epoch).
    pub epoch: u64,
    /// Number of shards `S`, fixed by [`Command::Init`]; 0 until then.
    pub shard_count: u32,
    /// Wanted owners per shard (primary plus standbys), fixed by [`Command::Init`].
    pub replication_factor: u8,
    /// Added to this set's Raft terms when they are reported: a set formed to replace a lost
    /// one starts above the lost set's terms, so terms (like epochs) rise across sets.
    #[serde(default)]
    pub term_floor: u64,
    /// Every known member, Up or Down, by id.
    pub members: BTreeMap<MemberId, Member>,
    /// `assignment[shard] = [primary, standby, ...]`: `min(replication_factor, Up members)`
    /// distinct Up members, or none when no member is Up. Empty until `Init`.
    pub assignment: Vec<Vec<MemberId>>,
    /// `primary_since[shard]`: the epoch from which the shard's current primary has been its
    /// primary without a break. A writer that started writing before it (it lost the shard and
    /// got it back, and a map in between may be one it never saw: Raft applies entries in
    /// batches) must take the shard over again before it serves it.
    pub primary_since: Vec<u64>,
}

impl ShardMap {
    /// Whether [`Command::Init`] has been applied.
    pub fn is_initialized(&self) -> bool {
        self.shard_count > 0
    }

    /// The members that are Up, in id order.
    pub fn up_members(&self) -> Vec<MemberId> {
        self.members.values().filter(|m| m.is_up()).map(|m| m.id).collect()
    }

    /// The owners of `shard`, primary first; empty for an unknown shard or when nobody is Up.
    pub fn owners(&self, shard: u32) -> &[MemberId] {
        self.assignment.get(shard as usize).map_or(&[], Vec::as_slice)
    }

    /// The member that scrapes `shard`, if any.
    pub fn primary(&self, shard: u32) -> Option<&MemberId> {
        self.owners(shard).first()
    }

    /// The epoch from which `shard`'s primary has been its primary without a break (see the
    /// field); 0 for a shard the map does not have.
    pub fn primary_since(&self, shard: u32) -> u64 {
        self.primary_since.get(shard as usize).copied().unwrap_or(0)
    }

    /// The shards `member` is primary for and the shards it is a standby for (any rank after
    /// the primary), each in ascending order.
    pub fn shards_of(&self, member: MemberId) -> (Vec<u32>, Vec<u32>) {
        let (mut primaries, mut standbys) = (Vec::new(), Vec::new());
        for (shard, owners) in (0u32..).zip(&self.assignment) {
            match owners.iter().position(|m| *m == member) {
                Some(0) => primaries.push(shard),
                Some(_) => standbys.push(shard),
                None => {}
            }
        }
        (primaries, standbys)
    }
}

#[cfg(test)]
mod node_owner;
#[cfg(test)]
mod tests;
