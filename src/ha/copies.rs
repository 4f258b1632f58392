//! Which copy of each shard this replica holds, and whether that copy alone may answer for the
//! shard. Pure state, no IO: the control loop, replication and takeover move shards between
//! roles; the fan-out and the peer server ask [`Copies::authoritative`].
//!
//! A shard has at most one writer (the replica that scrapes it): the primary of the shard map,
//! or in quorum-loss mode a replica that reaches none of the shard's owners. Its standbys follow
//! it. A copy is *authoritative* when it holds everything of the shard the replica set may
//! have served: the writer's own copy (it publishes a scrape only once its in-sync followers
//! hold it), or a follower's copy while it has every push of the current writer. Every other
//! copy (taking over, out of sync, released, fenced, or anything after a freeze) is *stale*:
//! readers use it only when no authoritative copy answers, and then only the newest of all.
//! See docs/architecture.md, "Serving rule".

use coordinator::shard_map::MemberId;
use std::time::Instant;

/// What this replica does with one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Neither writing nor following. `released`: when the shard left this replica; its points
    /// are kept a while for readers' contests and for the next writer's pull.
    Idle { released: Option<Instant> },
    /// Pulling the other holders' copies before writing (map epoch of the takeover);
    /// `whole`: this replica's own copy held everything the shard's writer had published.
    Taking { epoch: u64, whole: bool },
    /// Scraping and replicating the shard, since map epoch `epoch`.
    Writer { epoch: u64 },
    /// Holding the writer's copy.
    Follower(Following),
}

/// A follower's position in its writer's stream of pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Following {
    pub writer: MemberId,
    /// The writer's term of writing the shard whose pushes this follower takes (0: none yet).
    pub term: u64,
    /// The last applied push's sequence number (per writer, shard and term, from 1).
    pub seq: u64,
    /// Whether every push since the writer's last full copy was applied: only then does this
    /// copy hold everything the writer published.
    pub in_sync: bool,
    /// This replica's clock minus the writer's (ns), fixed when the writer's whole copy was
    /// taken: the writer's ops are applied at their time plus this, so expiry compares the same
    /// differences here as there.
    pub shift: i64,
}

impl Following {
    /// Following `writer`, nothing applied yet.
    pub fn of(writer: MemberId) -> Following {
        Following {
            writer,
            term: 0,
            seq: 0,
            in_sync: false,
            shift: 0,
        }
    }

    /// The writer and term this follower takes pushes from.
    pub fn stream(&self) -> Stream {
        Stream {
            writer: self.writer,
            term: self.term,
        }
    }
}

/// One writer's pushes of one shard in one term of writing it. A writer numbers each term's
/// pushes from 1 again (it starts every standby over with the whole shard), so a sequence
/// number means something only within its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    pub writer: MemberId,
    pub term: u64,
}

/// Another replica took the shard over at `epoch` (it pulled this replica's copy): this replica
/// does not write the shard until its own map is newer than the claim, or (in quorum-loss mode)
/// the claimer stops answering. It may follow the shard's writer meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub by: MemberId,
    pub epoch: u64,
}

/// One shard's state here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCopy {
    pub role: Role,
    pub claim: Option<Claim>,
    /// A role change (takeover, stop) is under way: the control loop starts no other.
    pub busy: bool,
    /// Released after a clean stop as the shard's writer: the copy holds everything this
    /// replica published, until the next writer has pulled it once.
    pub whole: bool,
}

impl Default for ShardCopy {
    fn default() -> Self {
        ShardCopy {
            role: Role::Idle { released: None },
            claim: None,
            busy: false,
            whole: false,
        }
    }
}

/// What the map and this replica's situation ask of it for one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Write,
    /// Follow the shard's primary (this replica is one of its standbys).
    Follow(MemberId),
    Nothing,
}

/// Whether a peer taking a shard over (pulling it, or pushing it as its writer) under map epoch
/// `epoch` is yielded to by a replica whose map is at `mine`: a newer map always wins, an older
/// one never; under the same map the shard's primary wins, and anyone else is yielded to
/// unless this replica is the primary (two quorum-loss writers of one shard end up one).
pub fn yields(epoch: u64, mine: u64, peer_is_primary: bool, me_is_primary: bool) -> bool {
    epoch > mine || (epoch == mine && (peer_is_primary || !me_is_primary))
}

impl ShardCopy {
    pub fn is_writer(&self) -> bool {
        matches!(self.role, Role::Writer { .. })
    }

    /// Whether this replica writes the shard under a term the map has since broken: it began
    /// before `since`, the epoch from which this replica has been the shard's primary without
    /// a break (`ShardMap::primary_since`; 0 when it is not the primary: a writer that is not,
    /// stopping or in quorum-loss mode, has no term to break). The shard went to another writer and came back (the
    /// maps in between may never have been seen here); that writer may have served points this
    /// copy lacks, so it must take the shard over again before it serves it.
    pub fn interrupted(&self, since: u64) -> bool {
        matches!(self.role, Role::Writer { epoch } if epoch < since)
    }

    /// Whether this copy alone answers for the shard (see the module docs). `primary` is the
    /// shard's primary under this replica's map and `since` the epoch this replica's term as
    /// that primary began (see [`ShardCopy::interrupted`]); `settled` is false just after a
    /// freeze.
    pub fn authoritative(&self, primary: Option<MemberId>, since: u64, settled: bool) -> bool {
        if !settled {
            return false;
        }
        match self.role {
            Role::Writer { .. } => self.claim.is_none() && !self.interrupted(since),
            Role::Follower(f) => f.in_sync && primary == Some(f.writer),
            Role::Idle { .. } | Role::Taking { .. } => false,
        }
    }

    /// Whether the copy holds everything the shard's writer has published (so a takeover may
    /// start from it): the writer's own, an in-sync follower's (not just after a freeze), or a
    /// writer's released copy not yet pulled.
    pub fn holds_whole(&self, since: u64, settled: bool) -> bool {
        match self.role {
            Role::Writer { .. } => self.claim.is_none() && !self.interrupted(since),
            Role::Follower(f) => f.in_sync && settled,
            Role::Idle { .. } => self.whole,
            Role::Taking { .. } => false,
        }
    }

    /// The claim is over: this replica's map moved past it, or (`claimer_reachable` false) the
    /// claimer is gone while this replica runs without a quorum.
    pub fn claim_lapsed(&self, map_epoch: u64, claimer_reachable: bool, degraded: bool) -> bool {
        self.claim
            .is_some_and(|c| map_epoch > c.epoch || (degraded && !claimer_reachable))
    }

    /// The role to take for `wanted`, if it differs and needs no IO (following or idling); a
    /// move to or from writing is a transition of its own (takeover, stop).
    pub fn settle_without_io(&mut self, wanted: Wanted, now: Instant) -> bool {
        self.whole &= matches!(self.role, Role::Idle { .. }) && wanted == Wanted::Nothing;
        let next = match (&self.role, wanted) {
            (Role::Writer { .. } | Role::Taking { .. }, _) | (_, Wanted::Write) => return false,
            (Role::Follower(f), Wanted::Follow(writer)) if f.writer == writer => return false,
            (_, Wanted::Follow(writer)) => Role::Follower(Following::of(writer)),
            (Role::Idle { .. }, Wanted::Nothing) => return false,
            (Role::Follower(_), Wanted::Nothing) => Role::Idle { released: Some(now) },
        };
        self.role = next;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: MemberId = MemberId(1);
    const OTHER: MemberId = MemberId(2);

    fn follower(in_sync: bool) -> ShardCopy {
        ShardCopy {
            role: Role::Follower(Following {
                seq: 3,
                in_sync,
                ..Following::of(W)
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_writer_and_an_in_sync_follower_of_the_maps_primary_are_authoritative() {
        let writer = ShardCopy {
            role: Role::Writer { epoch: 4 },
            ..Default::default()
        };
        assert!(writer.authoritative(Some(W), 0, true));
        assert!(!writer.authoritative(Some(W), 0, false), "not just after a freeze");
        assert!(follower(true).authoritative(Some(W), 0, true));
        assert!(!follower(false).authoritative(Some(W), 0, true), "missed a push");
        assert!(
            !follower(true).authoritative(Some(OTHER), 0, true),
            "the map has a new primary: its full copy has not come yet"
        );
        let taking = ShardCopy {
            role: Role::Taking { epoch: 5, whole: true },
            ..Default::default()
        };
        assert!(!taking.authoritative(Some(W), 0, true));
        assert!(!ShardCopy::default().authoritative(Some(W), 0, true));
        let claimed = ShardCopy {
            claim: Some(Claim { by: OTHER, epoch: 5 }),
            ..writer
        };
        assert!(!claimed.authoritative(Some(W), 0, true), "fenced by a newer writer");
    }

    #[test]
    fn a_writer_whose_term_the_map_broke_is_neither_authoritative_nor_whole() {
        // Campaign seed 808932: r2, cut off, was marked Down (its shards went to r0) and Up
        // again; the map it saw next gave the shards back, so it kept writing from its copy of
        // before the cut and served it, older than what r0 had served meanwhile.
        let writer = ShardCopy {
            role: Role::Writer { epoch: 40 },
            ..Default::default()
        };
        assert!(writer.authoritative(Some(W), 40, true), "the term it took the shard in");
        assert!(writer.holds_whole(40, true));
        assert!(!writer.interrupted(40));
        assert!(writer.interrupted(42), "the map gave the shard to it again at 42");
        assert!(!writer.authoritative(Some(W), 42, true));
        assert!(!writer.holds_whole(42, true));
        let follower = follower(true);
        assert!(!follower.interrupted(42), "only a writer's own term can break");
    }

    #[test]
    fn a_claim_lapses_with_a_newer_map_or_a_vanished_claimer_without_quorum() {
        let copy = ShardCopy {
            claim: Some(Claim { by: OTHER, epoch: 7 }),
            ..Default::default()
        };
        assert!(!copy.claim_lapsed(7, true, false));
        assert!(!copy.claim_lapsed(7, false, false), "with a quorum the map decides");
        assert!(copy.claim_lapsed(8, true, false));
        assert!(copy.claim_lapsed(7, false, true));
        assert!(!copy.claim_lapsed(7, true, true));
    }

    #[test]
    fn a_newer_map_wins_and_under_one_map_the_primary_wins() {
        assert!(yields(7, 6, false, true), "a newer map, whatever ours says");
        assert!(!yields(5, 6, true, false), "the peer's map is behind ours");
        assert!(yields(6, 6, true, false), "the primary takes its shard back");
        assert!(
            !yields(6, 6, false, true),
            "the primary keeps it from a quorum-loss writer"
        );
        assert!(
            yields(6, 6, false, false),
            "between two quorum-loss writers the asker wins"
        );
    }

    #[test]
    fn following_and_idling_need_no_io_but_writing_does() {
        let now = Instant::now();
        let mut copy = ShardCopy::default();
        assert!(copy.settle_without_io(Wanted::Follow(W), now));
        assert_eq!(copy.role, Role::Follower(Following::of(W)));
        assert!(!copy.settle_without_io(Wanted::Follow(W), now), "already following W");
        assert!(
            copy.settle_without_io(Wanted::Follow(OTHER), now),
            "a new primary: out of sync"
        );
        assert!(copy.settle_without_io(Wanted::Nothing, now));
        assert_eq!(copy.role, Role::Idle { released: Some(now) });
        assert!(!copy.settle_without_io(Wanted::Write, now));
        copy.role = Role::Writer { epoch: 1 };
        assert!(
            !copy.settle_without_io(Wanted::Follow(W), now),
            "stopping a writer is a transition"
        );
    }
}
