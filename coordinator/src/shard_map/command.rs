//! Commands replicated through Raft and [`ShardMap::apply`], the state machine's transition.
//!
//! `apply` is deterministic and all-or-nothing: a command that fails leaves the map untouched,
//! so every replica that applies the same log holds the same map. A command that changes
//! membership or assignment bumps `epoch` exactly once; a command that changes nothing (an Up
//! member reported Up, a rebalance of an already balanced map) leaves `epoch` alone.

use serde::{Deserialize, Serialize};

use super::assign::assign;
use super::{Member, MemberId, MemberState, ShardMap};

/// The largest `shard_count` that [`Command::Init`] accepts: keeps the replicated map small.
pub const MAX_SHARDS: u32 = 4096;

/// A change to the shard map, proposed by the Raft leader. A command that changes members
/// (and `Rebalance`) recomputes the assignment; one that changes nothing leaves the map alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Form the map once, when the cluster is first formed. `shard_count` never changes after.
    Init {
        /// Number of shards `S` (`--shards`), `1..=MAX_SHARDS`.
        shard_count: u32,
        /// Owners wanted per shard (`--replication-factor`), at least 1.
        replication_factor: u8,
        /// The initial members, distinct ids.
        members: Vec<Member>,
        /// The highest epoch of a replica set this one replaces (one whose voters lost their
        /// data): the new map starts above it, so epochs rise across sets too and a replica of
        /// the old set yields to the new one by epoch alone.
        #[serde(default)]
        epoch_floor: u64,
        /// Likewise for the reported Raft terms ([`ShardMap::term_floor`]).
        #[serde(default)]
        term_floor: u64,
    },
    /// A new member (a new replica or a new incarnation of one), Up or Down.
    AddMember(Member),
    /// Forget a member; its shards move to the others.
    RemoveMember(MemberId),
    /// The leader saw a member come back or go silent.
    SetState {
        /// Which member.
        member: MemberId,
        /// Its new state.
        state: MemberState,
    },
    /// Recompute the assignment from the current one; a no-op when it is already settled
    /// (see [`ShardMap::is_settled`]).
    Rebalance,
    /// The member's `voter` flag follows the Raft membership (the authority on who votes): the
    /// leader proposes it when the two differ, for example when a new incarnation was added to
    /// the map as a learner before its voter swap.
    SetVoter {
        /// Which member.
        member: MemberId,
        /// Whether it votes now.
        voter: bool,
    },
}

/// What an applied command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The map's epoch after the command.
    pub epoch: u64,
    /// Whether members or assignment changed (and so the epoch was bumped).
    pub changed: bool,
}

/// Why a command was rejected. None is worth retrying unchanged: the map's state makes the
/// command invalid, and retrying gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    /// A command other than `Init` arrived before `Init`.
    #[error("the shard map is not initialised")]
    NotInitialized,
    /// `Init` arrived for a map that is already formed.
    #[error("the shard map is already initialised (epoch {epoch})")]
    AlreadyInitialized {
        /// The epoch of the existing map.
        epoch: u64,
    },
    /// `Init` with a shard count outside `1..=MAX_SHARDS`.
    #[error("shard count {0} is outside 1..={MAX_SHARDS}")]
    InvalidShardCount(u32),
    /// `Init` with a replication factor of 0.
    #[error("replication factor must be at least 1")]
    InvalidReplicationFactor,
    /// A member id that is already in the map (or twice in `Init`).
    #[error("member {0} already exists")]
    DuplicateMember(MemberId),
    /// A member id that is not in the map.
    #[error("member {0} is not in the shard map")]
    UnknownMember(MemberId),
}

impl ShardMap {
    /// Applies one committed command; on error the map is unchanged.
    pub fn apply(&mut self, command: Command) -> Result<Response, ApplyError> {
        let rebalance = matches!(command, Command::Rebalance);
        let changed = match command {
            Command::Init {
                shard_count,
                replication_factor,
                members,
                epoch_floor,
                term_floor,
            } => {
                self.init(shard_count, replication_factor, members)?;
                self.epoch = self.epoch.max(epoch_floor);
                self.term_floor = term_floor;
                true
            }
            _ if !self.is_initialized() => return Err(ApplyError::NotInitialized),
            Command::AddMember(member) => self.add_member(member)?,
            Command::RemoveMember(id) => self.remove_member(id)?,
            Command::SetState { member, state } => self.set_state(member, state)?,
            Command::Rebalance => false,
            Command::SetVoter { member, voter } => self.set_voter(member, voter)?,
        };
        let changed = ((changed || rebalance) && self.reassign()) | changed;
        self.epoch += u64::from(changed);
        Ok(Response {
            epoch: self.epoch,
            changed,
        })
    }

    fn init(&mut self, shard_count: u32, replication_factor: u8, members: Vec<Member>) -> Result<bool, ApplyError> {
        if self.is_initialized() {
            return Err(ApplyError::AlreadyInitialized { epoch: self.epoch });
        }
        if shard_count == 0 || shard_count > MAX_SHARDS {
            return Err(ApplyError::InvalidShardCount(shard_count));
        }
        if replication_factor == 0 {
            return Err(ApplyError::InvalidReplicationFactor);
        }
        let mut by_id = std::collections::BTreeMap::new();
        for member in members {
            let id = member.id;
            if by_id.insert(id, member).is_some() {
                return Err(ApplyError::DuplicateMember(id));
            }
        }
        self.shard_count = shard_count;
        self.replication_factor = replication_factor;
        self.members = by_id;
        self.assignment = vec![Vec::new(); shard_count as usize];
        Ok(true)
    }

    fn add_member(&mut self, member: Member) -> Result<bool, ApplyError> {
        if self.members.contains_key(&member.id) {
            return Err(ApplyError::DuplicateMember(member.id));
        }
        self.members.insert(member.id, member);
        Ok(true)
    }

    fn remove_member(&mut self, id: MemberId) -> Result<bool, ApplyError> {
        self.members
            .remove(&id)
            .map(|_| true)
            .ok_or(ApplyError::UnknownMember(id))
    }

    fn set_voter(&mut self, id: MemberId, voter: bool) -> Result<bool, ApplyError> {
        let member = self.members.get_mut(&id).ok_or(ApplyError::UnknownMember(id))?;
        let changed = member.voter != voter;
        member.voter = voter;
        Ok(changed)
    }

    fn set_state(&mut self, id: MemberId, state: MemberState) -> Result<bool, ApplyError> {
        let member = self.members.get_mut(&id).ok_or(ApplyError::UnknownMember(id))?;
        let changed = member.state != state;
        member.state = state;
        Ok(changed)
    }

    /// Whether [`Command::Rebalance`] would change nothing. After a failover, which moves only
    /// the failed member's shards, a member can be left without its share (when there are
    /// about as many members as shards); the leader then proposes a rebalance.
    pub fn is_settled(&self) -> bool {
        let next = assign(
            &self.assignment,
            &self.up_members(),
            self.shard_count,
            self.replication_factor,
        );
        next == self.assignment
    }

    /// Recomputes the assignment from the current one and the Up members; true if it changed.
    fn reassign(&mut self) -> bool {
        let next = assign(
            &self.assignment,
            &self.up_members(),
            self.shard_count,
            self.replication_factor,
        );
        let changed = next != self.assignment;
        // The epoch this change brings (`apply` bumps it once for a changed assignment).
        let epoch = self.epoch + 1;
        self.primary_since.resize(next.len(), epoch);
        for (shard, owners) in next.iter().enumerate() {
            if self.assignment.get(shard).and_then(|o| o.first()) != owners.first() {
                self.primary_since[shard] = epoch;
            }
        }
        self.assignment = next;
        changed
    }
}

#[cfg(test)]
mod tests;
