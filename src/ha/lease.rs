//! Read leases and reading from this replica's own copies.
//!
//! A replica answers a read of a shard from its own copy, asking nobody, when it is the shard's
//! writer or when it is a standby in sync holding a *lease* from the writer. Standbys ask for
//! leases by pinging (every member pings every other, `control.rs`): the writer's answer names
//! the shards the pinger follows in sync, and the pinger may answer alone for [`LEASE`] from
//! when it *sent* the ping. The writer, which granted when it *received* the ping, later than
//! that, counts the lease as running until [`LEASE`] after granting; it publishes a push only
//! once every standby holding a lease has taken it (staged it, `standby.rs`), or that lease has
//! run out. So a standby that missed a push, and does not know it (a push that timed out, a
//! cut between the two), stops answering alone before the writer serves what it lacks.
//!
//! Without a lease (it lapsed, or never came), a standby in sync still answers the fan-out of a
//! reader whose first choice, the writer, did not answer, as it always did (`fanout.rs`).

use super::Ha;
use super::copies::{Role, Stream};
use super::fanout::PUBLISH_WAIT;
use coordinator::shard_map::{MemberId, ShardMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a standby may answer alone after asking: two and a half ping intervals, so one lost
/// or late ping does not interrupt it; a writer whose standby missed a push waits at most this
/// long to publish without it.
pub const LEASE: Duration = Duration::from_millis(2500);
/// How long a read waits for the commit of a push a standby staged (the writer sends it right
/// after applying the push, a round trip later).
pub const COMMIT_WAIT: Duration = PUBLISH_WAIT;
/// How often a read waiting for a commit looks whether the writer is still there.
const COMMIT_WAIT_SLICE: Duration = Duration::from_millis(100);

/// A standby's leases: per shard, from which writer's term and until when.
#[derive(Debug, Default)]
pub struct Leases {
    until: Mutex<Vec<Option<(Stream, Instant)>>>,
}

impl Leases {
    pub fn new(shards: u32) -> Leases {
        Leases {
            until: Mutex::new(vec![None; shards as usize]),
        }
    }
}

/// What a copy of one shard can do for a read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    /// Answer from it.
    Yes,
    /// A standby's copy with a push staged from `writer`: answer once the commit came.
    AfterCommit {
        writer: MemberId,
    },
    No,
}

impl Ha {
    /// The writer's side of a ping from `member`: leases for the shards this replica writes
    /// and `member` follows in sync, each with this term of writing it and the last push
    /// applied here; each is recorded (see the module docs). A writer just back from a freeze
    /// grants nothing.
    pub(super) fn grant_leases(&self, member: MemberId) -> Vec<(u32, u64, u64)> {
        if self.unsettled() || member == self.me() {
            return Vec::new();
        }
        let map = self.current_map();
        let until = Instant::now() + LEASE;
        let copies = self.copies.lock().expect("copies lock");
        let mut grants = Vec::new();
        for (shard, copy) in (0..self.shards.shards.min(map.shard_count)).zip(copies.iter()) {
            let writing =
                copy.is_writer() && copy.authoritative(map.primary(shard).copied(), self.term_since(&map, shard), true);
            if !writing || !map.owners(shard).iter().skip(1).any(|o| *o == member) {
                continue;
            }
            let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
            if let Some((term, published)) = outbox.lease_to(member, until) {
                grants.push((shard, term, published));
            }
        }
        grants
    }

    /// A standby's side of a pong from `writer` to a ping sent at `sent`: what it committed is
    /// applied here, and each shard is leased until [`LEASE`] after `sent`, for the copy of
    /// that term of the writer's only.
    pub(super) fn take_grants(&self, writer: MemberId, sent: Instant, grants: &[(u32, u64, u64)]) {
        let until = sent + LEASE;
        for &(shard, term, seq) in grants.iter().filter(|(s, _, _)| *s < self.shards.shards) {
            let stream = Stream { writer, term };
            self.apply_staged(shard, Some((stream, seq)));
            let mut leases = self.leases.until.lock().expect("leases lock");
            leases[shard as usize] = Some((stream, until));
        }
    }

    /// What this replica's copy of `shard` can do for a read now; `alone`: without asking any
    /// other replica (a standby then needs its lease).
    fn serves(&self, map: &ShardMap, shard: u32, settled: bool, alone: bool, now: Instant) -> Serves {
        let follows = {
            let copies = self.copies.lock().expect("copies lock");
            let Some(copy) = copies.get(shard as usize) else {
                return Serves::No;
            };
            if !copy.authoritative(map.primary(shard).copied(), self.term_since(map, shard), settled) {
                return Serves::No;
            }
            match copy.role {
                Role::Follower(f) => f.stream(),
                Role::Writer { .. } if !self.writer_current(shard) => return Serves::No,
                _ => return Serves::Yes,
            }
        };
        if alone {
            let leases = self.leases.until.lock().expect("leases lock");
            let leased = leases[shard as usize].is_some_and(|(s, until)| s == follows && until > now);
            if !leased {
                return Serves::No;
            }
        }
        if self.has_staged(shard) {
            Serves::AfterCommit { writer: follows.writer }
        } else {
            Serves::Yes
        }
    }

    /// Whether this replica's writer copy of `shard` is current: no stall since its term
    /// began, or a push published after the last one (see [`Outbox::current_after`]).
    ///
    /// [`Outbox::current_after`]: super::replicate::Outbox::current_after
    fn writer_current(&self, shard: u32) -> bool {
        self.stall.resumed_at().is_none_or(|resumed| {
            self.outboxes[shard as usize]
                .lock()
                .expect("outbox lock")
                .current_after(resumed)
        })
    }

    /// Waits for the commit of what a standby staged of `shard`; a writer that stopped
    /// answering will send none, so what it staged is applied (it is newer than anything that
    /// writer served). Returns whether the copy can be read.
    async fn after_commit(&self, shard: u32, writer: MemberId) -> bool {
        let deadline = Instant::now() + COMMIT_WAIT;
        loop {
            if !self.reachable(writer) {
                self.apply_staged(shard, None);
                return true;
            }
            // In slices, so that a writer found gone meanwhile (a refused ping) ends the wait.
            let slice = COMMIT_WAIT_SLICE.min(deadline.saturating_duration_since(Instant::now()));
            if self.shards.wait_published(shard, slice).await {
                return true;
            }
            if Instant::now() >= deadline {
                self.metrics.ha.publish_waits_timed_out.inc();
                return false;
            }
        }
    }

    /// Whether this replica's copy of `shard` answers for it now, once anything staged was
    /// committed (see [`Ha::serves`]).
    pub(super) async fn copy_serves(&self, map: &ShardMap, shard: u32, settled: bool, alone: bool) -> bool {
        match self.serves(map, shard, settled, alone, Instant::now()) {
            Serves::Yes => true,
            Serves::No => false,
            Serves::AfterCommit { writer } => self.after_commit(shard, writer).await,
        }
    }

    /// Splits a read's shards into those this replica answers alone from its own copy (see the
    /// module docs) and those to ask others for.
    pub async fn split_local(&self, shards: Vec<u32>) -> (Vec<u32>, Vec<u32>) {
        let map = self.current_map();
        let settled = !self.unsettled();
        let now = Instant::now();
        let (mut local, mut remote, mut waits) = (Vec::new(), Vec::new(), Vec::new());
        for shard in shards {
            match self.serves(&map, shard, settled, true, now) {
                Serves::Yes => local.push(shard),
                Serves::No => remote.push(shard),
                Serves::AfterCommit { writer } => {
                    waits.push(async move { (shard, self.after_commit(shard, writer).await) })
                }
            }
        }
        for (shard, ready) in futures::future::join_all(waits).await {
            if ready { local.push(shard) } else { remote.push(shard) }
        }
        local.sort_unstable();
        (local, remote)
    }
}
