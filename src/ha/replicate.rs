//! Replication from a shard's writer to its standbys. Every change a shard actor makes to its
//! store is staged as an op (`shard::store::Op`: a node's parsed scrape, the tick's expiry,
//! nodes no longer scraped) and handed here ([`Hook`] is the actor's [`Publisher`]); the writer
//! sends the ops to each standby and applies them to its own store, in the order staged, only
//! once a standby holds them, so a point the writer serves is held by a standby that may be
//! promoted in its place; ops no standby took are withheld (see [`Ha::unheld_verdict`] for the
//! exceptions). One push per shard is in flight at a time; ops staged meanwhile go in the next.
//! Pushes to one standby travel together (`courier.rs`).
//!
//! A standby in sync applies a writer's ops in sequence, so its store goes through the writer's
//! states; one that misses a push (a gap, a timeout, a restart) is out of sync, and therefore
//! not authoritative, until the writer's next push brings it the whole shard. Pushes carry the
//! writer's map epoch: a standby with a newer map under which the writer no longer owns the
//! shard refuses it, and a writer so refused drops what it staged and stops writing (fencing by
//! epoch). See docs/architecture.md.

use super::Ha;
use super::copies::Claim;
use crate::peer::wire::{PushAck, PushBody, ShardPush};
use coordinator::shard_map::MemberId;
use futures::future::BoxFuture;
use shard::actor::{Publisher, Verdict};
use shard::point::now_nanos;
use shard::store::{Op, ShardSnapshot};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Deadline of one push. A standby that does not answer within it is out of sync, and the
/// push is published without it once its read lease (if any) ran out.
pub const PUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// An op staged by a shard actor, waiting for its push.
struct Staged {
    op: Op,
    done: oneshot::Sender<Verdict>,
}

/// One shard's replication state on its writer.
#[derive(Default)]
pub struct Outbox {
    /// Sequence number of the last push sent.
    seq: u64,
    /// Standbys whose copy holds every push so far.
    in_sync: HashMap<MemberId, bool>,
    queue: Vec<Staged>,
    /// A push is in flight (its task sends whatever is queued next).
    sending: bool,
    /// Since when no push reached a standby (while the shard has standbys).
    unheld_since: Option<Instant>,
    /// Sequence number of the last push applied here (a standby's lease carries it as a commit).
    published: u64,
    /// Until when each standby may answer reads of the shard alone (`lease.rs`). Kept across
    /// terms: a lease granted in an earlier term runs all the same.
    leases: HashMap<MemberId, Instant>,
    /// A push is wanted even with nothing queued: a standby is out of sync and the shard is
    /// quiet (no node, or none scraped lately), so no op would bring it the whole shard.
    resync: bool,
    /// When this term of writing began (`None`: before this process started writing).
    term_began: Option<Instant>,
    /// This term of writing, named by when it began (Unix ns, rising within the process):
    /// pushes carry it, and a standby takes updates only within the term it has the whole
    /// shard of. 0 before the first term.
    term: u64,
    /// When a push was last applied here.
    published_at: Option<Instant>,
}

impl Outbox {
    /// Starts over for a new term of writing: every standby needs the whole shard first. A
    /// push of the previous term still in flight counts for nothing ([`Outbox::term`]).
    pub fn reset(&mut self) {
        self.seq = 0;
        self.published = 0;
        self.in_sync.clear();
        self.unheld_since = None;
        self.term_began = Some(Instant::now());
        self.term = (self.term + 1).max(now_nanos().max(0) as u64);
    }

    /// Whether this writer's copy is current again after this process stalled at `resumed`:
    /// its term began after the stall, or a push was published since (its standbys took it
    /// under their maps, or it has none to ask). A writer frozen for longer than the takeover
    /// time wakes up with the old map, and its copy lacks what the next writer served
    /// meanwhile; its standbys refuse its first push once their map names that writer, but
    /// until that push it is still the writer here. Serving it then sent readers back in time
    /// (chaos seed 22, freeze-follower: a writer's copy 8 s old served 2.8 s after SIGCONT,
    /// its map not caught up yet).
    pub fn current_after(&self, resumed: Instant) -> bool {
        self.term_began.is_some_and(|t| t > resumed) || self.published_at.is_some_and(|t| t > resumed)
    }

    /// Leases the shard to `standby` until `until` if it is in sync; returns the term and the
    /// last push applied here.
    pub fn lease_to(&mut self, standby: MemberId, until: Instant) -> Option<(u64, u64)> {
        if self.in_sync.get(&standby) != Some(&true) {
            return None;
        }
        let lease = self.leases.entry(standby).or_insert(until);
        *lease = (*lease).max(until);
        Some((self.term, self.published))
    }

    /// The latest end of a lease held by a standby outside `acked`.
    fn lease_end_outside(&self, acked: &[MemberId]) -> Option<Instant> {
        let now = Instant::now();
        self.leases
            .iter()
            .filter(|(m, until)| !acked.contains(m) && **until > now)
            .map(|(_, until)| *until)
            .max()
    }
}

/// The shard actors' [`Publisher`], before and after the `Ha` exists (the shard set is built
/// first); without it the actor applies its changes itself.
pub struct Hook(pub Arc<OnceLock<Weak<Ha>>>);

impl Publisher for Hook {
    fn stage(&self, shard: u32, op: Op) -> Result<BoxFuture<'static, Verdict>, Op> {
        match self.0.get().and_then(Weak::upgrade) {
            Some(ha) => Ok(ha.stage(shard, op)),
            None => Err(op),
        }
    }
}

/// What one push told the writer.
enum Outcome {
    /// A standby holds the ops, or the shard has no standby to hold them.
    Delivered,
    /// The shard has standbys and none took the ops.
    Unheld,
    /// A new term of writing began while the push was out (the shard was taken over again):
    /// its ops are the previous term's, and its answers say nothing of the new term.
    Superseded,
    Fenced {
        epoch: u64,
    },
}

/// One push's outcome, and who took it.
struct Pushed {
    outcome: Outcome,
    /// The map epoch the push was sent under.
    epoch: u64,
    /// The term of writing it belongs to.
    term: u64,
    /// The standbys it was sent to.
    targets: Vec<(MemberId, String)>,
    /// Those that staged it.
    acked: Vec<MemberId>,
}

impl Pushed {
    fn sent_to_nobody(outcome: Outcome) -> Pushed {
        Pushed {
            outcome,
            epoch: 0,
            term: 0,
            targets: Vec::new(),
            acked: Vec::new(),
        }
    }
}

impl Ha {
    /// Queues an op for the shard's standbys; resolves once it was applied here (or withheld,
    /// or dropped).
    fn stage(self: Arc<Self>, shard: u32, op: Op) -> BoxFuture<'static, Verdict> {
        let (done, verdict) = oneshot::channel();
        let start = {
            let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
            outbox.queue.push(Staged { op, done });
            !std::mem::replace(&mut outbox.sending, true)
        };
        if start {
            tokio::spawn(self.send_loop(shard));
        }
        // A dropped sender is a bug; the op was then concluded one way or another.
        Box::pin(async move { verdict.await.unwrap_or(Verdict::Drop) })
    }

    /// Sends what is queued for `shard`, one push at a time, until nothing is left; each push's
    /// ops are then applied to this replica's store (or withheld, or dropped) in order.
    async fn send_loop(self: Arc<Self>, shard: u32) {
        loop {
            let (batch, term, seq) = {
                let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
                if outbox.queue.is_empty() && !std::mem::take(&mut outbox.resync) {
                    outbox.sending = false;
                    return;
                }
                outbox.seq += 1;
                (std::mem::take(&mut outbox.queue), outbox.term, outbox.seq)
            };
            let (ops, dones): (Vec<Op>, Vec<_>) = batch.into_iter().map(|s| (s.op, s.done)).unzip();
            let pushed = self.push_batch(shard, term, seq, &ops).await;
            let verdict = match pushed.outcome {
                Outcome::Delivered => {
                    // A standby that did not take the push may still answer reads alone until
                    // its lease runs out: publish only then (docs/architecture.md).
                    let waited = self.outboxes[shard as usize]
                        .lock()
                        .expect("outbox lock")
                        .lease_end_outside(&pushed.acked);
                    if let Some(end) = waited {
                        tokio::time::sleep_until(end.into()).await;
                    }
                    Verdict::Publish
                }
                Outcome::Unheld => self.unheld_verdict(shard),
                Outcome::Superseded => Verdict::Drop,
                Outcome::Fenced { epoch } => {
                    tracing::info!(
                        shard,
                        epoch,
                        "a standby's map gives the shard to another writer: stopping"
                    );
                    self.fence(shard, None, epoch);
                    Verdict::Drop
                }
            };
            self.shards.conclude(shard, &ops, verdict);
            if verdict == Verdict::Publish {
                let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
                outbox.published = seq;
                outbox.published_at = Some(Instant::now());
            }
            self.settle_standbys(shard, seq, verdict, &pushed);
            for done in dones {
                let _ = done.send(verdict);
            }
        }
    }

    /// Brings the out-of-sync standbys of the shards this replica writes in sync even when the
    /// shard is quiet: a push with no ops, which reaches them as the whole shard (an in-sync
    /// standby gets an empty update). Without it a standby of a shard without nodes would never
    /// be in sync, and so never answer for it. Called every control round; does nothing for
    /// shards in sync or with a push in flight.
    pub(super) fn sync_standbys(self: &Arc<Self>, map: &coordinator::shard_map::ShardMap) {
        let writing: Vec<u32> = {
            let copies = self.copies.lock().expect("copies lock");
            (0..self.shards.shards.min(map.shard_count))
                .filter(|&s| copies[s as usize].is_writer() && copies[s as usize].claim.is_none())
                .collect()
        };
        for shard in writing {
            let behind: Vec<MemberId> = map
                .owners(shard)
                .iter()
                .skip(1)
                .copied()
                .filter(|s| *s != self.me() && self.reachable(*s))
                .collect();
            let start = {
                let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
                let out_of_sync = behind.iter().any(|s| outbox.in_sync.get(s) != Some(&true));
                if outbox.sending || !out_of_sync {
                    continue;
                }
                outbox.resync = true;
                outbox.sending = true;
                true
            };
            if start {
                tokio::spawn(self.clone().send_loop(shard));
            }
        }
    }

    /// Tells the standbys that took push `seq` what became of it: applied (they apply it too)
    /// or not (they drop it). Sent at once, not waited for: a lost commit is made good by the
    /// next one or by the next lease.
    fn settle_standbys(&self, shard: u32, seq: u64, verdict: Verdict, pushed: &Pushed) {
        let body = match verdict {
            Verdict::Publish => PushBody::Commit,
            Verdict::Withhold | Verdict::Drop => PushBody::Abort,
        };
        for (standby, address) in &pushed.targets {
            if !pushed.acked.contains(standby) {
                continue;
            }
            let push = ShardPush {
                from: self.me().0,
                epoch: pushed.epoch,
                shard,
                term: pushed.term,
                seq,
                taken_at: now_nanos(),
                body: body.clone(),
            };
            let courier = self.couriers.clone();
            let (client, standby, address) = (self.client.clone(), *standby, address.clone());
            tokio::spawn(async move {
                let _ = courier.deliver_now(&client, standby, &address, push).await;
            });
        }
    }

    /// One push (`seq` of `term`) of `ops` to every reachable standby of `shard`: the ops to
    /// those in sync, the whole shard (as it will be once the ops apply) to the others. The
    /// answers count only if the term is still this writer's when they come: a takeover that
    /// began meanwhile starts every standby over, and a standby marked in sync by the previous
    /// term's answers would be leased the shard with a copy the new term never sent it (chaos
    /// seed 22, partition-follower).
    async fn push_batch(&self, shard: u32, term: u64, seq: u64, ops: &[Op]) -> Pushed {
        let map = self.current_map();
        let interrupted =
            self.copies.lock().expect("copies lock")[shard as usize].interrupted(self.term_since(&map, shard));
        if interrupted {
            // Until it has taken the shard over again, its copy may be older than what another
            // writer served meanwhile: push nothing, serve nothing new.
            return Pushed::sent_to_nobody(self.held(shard, false));
        }
        // A quorum-loss writer may be one of the shard's standbys itself.
        let standbys: Vec<MemberId> = map
            .owners(shard)
            .iter()
            .skip(1)
            .copied()
            .filter(|s| *s != self.me())
            .collect();
        let in_sync: HashMap<MemberId, bool> = {
            let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
            outbox.in_sync.retain(|m, _| standbys.contains(m));
            standbys
                .iter()
                .map(|s| (*s, outbox.in_sync.get(s).copied().unwrap_or(false)))
                .collect()
        };
        let reachable: Vec<(MemberId, String)> = standbys
            .iter()
            .filter(|s| self.reachable(**s))
            .filter_map(|&s| Some((s, self.address_of(&map, s)?)))
            .collect();
        if standbys.is_empty() {
            return Pushed::sent_to_nobody(self.held(shard, true));
        }
        if reachable.is_empty() {
            self.mark_out_of_sync(shard, &standbys);
            return Pushed::sent_to_nobody(self.held(shard, false));
        }
        let needs_full = reachable.iter().any(|(s, _)| !in_sync[s]);
        let full = needs_full.then(|| PushBody::Full(self.full_copy(shard, ops)));
        let (from, epoch, taken_at) = (self.me().0, map.epoch, now_nanos());
        let calls = reachable.iter().map(|(standby, address)| {
            let body = if in_sync[standby] {
                PushBody::Update { ops: ops.to_vec() }
            } else {
                full.clone().expect("a full copy for standbys out of sync")
            };
            let push = ShardPush {
                from,
                epoch,
                shard,
                term,
                seq,
                taken_at,
                body,
            };
            let (couriers, client) = (self.couriers.clone(), &self.client);
            async move { (*standby, couriers.deliver(client, *standby, address, push).await) }
        });
        let acks = futures::future::join_all(calls).await;
        let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
        if outbox.term != term {
            return Pushed {
                outcome: Outcome::Superseded,
                epoch,
                term,
                targets: reachable,
                acked: Vec::new(),
            };
        }
        for standby in &standbys {
            outbox.in_sync.insert(*standby, false);
        }
        let mut fenced = None;
        let mut acked = Vec::new();
        for (standby, ack) in acks {
            match ack {
                Ok(PushAck::Accepted) => {
                    outbox.in_sync.insert(standby, true);
                    acked.push(standby);
                }
                Ok(PushAck::Stale { epoch: theirs }) if theirs > epoch => fenced = Some(theirs),
                Ok(other) => tracing::debug!(shard, %standby, ?other, "standby out of sync"),
                Err(e) => {
                    self.metrics.ha.push_failures.inc();
                    tracing::debug!(shard, %standby, error = %e, "push failed; the standby is out of sync");
                }
            }
        }
        drop(outbox);
        let outcome = match fenced {
            Some(epoch) => Outcome::Fenced { epoch },
            None => self.held(shard, !acked.is_empty()),
        };
        Pushed {
            outcome,
            epoch,
            term,
            targets: reachable,
            acked,
        }
    }

    /// The outcome of a push that some standby took (`held`) or none did, noting since when
    /// none has.
    fn held(&self, shard: u32, held: bool) -> Outcome {
        let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
        if held {
            outbox.unheld_since = None;
            Outcome::Delivered
        } else {
            outbox.unheld_since.get_or_insert_with(Instant::now);
            Outcome::Unheld
        }
    }

    /// What becomes of copies no standby holds: served all the same only by a writer in
    /// quorum-loss mode, which serves its own scrapes as the other side of the cut does and
    /// hands its copy to the shard's primary when the cut heals (`takeover.rs`). Any other
    /// writer keeps its published copy (renewed) until a standby takes its copies again; the
    /// map replaces a dead standby within `--member-down-after`, and a standby promoted
    /// meanwhile starts from a copy that holds everything served (docs/architecture.md,
    /// "Serving rule"). A writer that reaches its quorum but no standby (a cut between the two
    /// alone, which the leader does not see) serves unheld copies after the quorum-loss
    /// timeout plus `--member-down-after`: later than any replica cut off from its quorum
    /// enters quorum-loss mode, so its points freeze for a while but never for good.
    fn unheld_verdict(&self, shard: u32) -> Verdict {
        let since = self.outboxes[shard as usize].lock().expect("outbox lock").unheld_since;
        let cut_off_after = self.config.quorum_loss_timeout + self.config.member_down_after;
        unheld_verdict(self.is_degraded(), since.map(|t| t.elapsed()), cut_off_after)
    }

    fn mark_out_of_sync(&self, shard: u32, standbys: &[MemberId]) {
        let mut outbox = self.outboxes[shard as usize].lock().expect("outbox lock");
        for standby in standbys {
            outbox.in_sync.insert(*standby, false);
        }
    }

    /// The shard as it will be once `ops` are applied: the writer's copy with them replayed on
    /// a scratch copy (the store itself changes only when the push is concluded).
    fn full_copy(&self, shard: u32, ops: &[Op]) -> ShardSnapshot {
        let mut scratch = self.shards.stores[shard as usize].read().expect("store lock").clone();
        for op in ops {
            let _ = scratch.apply(op);
        }
        scratch.snapshot()
    }

    /// Stops this replica writing `shard`: another replica (`by`, if known) writes it under
    /// `epoch`. The control loop stops the shard's actor.
    pub(super) fn fence(&self, shard: u32, by: Option<MemberId>, epoch: u64) {
        let mut copies = self.copies.lock().expect("copies lock");
        let copy = &mut copies[shard as usize];
        copy.claim = Some(Claim {
            by: by.unwrap_or(MemberId(0)),
            epoch,
        });
    }
}

/// [`Ha::unheld_verdict`]: `degraded` (quorum-loss mode), and for how long no push of the shard
/// has reached a standby.
fn unheld_verdict(degraded: bool, unheld_for: Option<Duration>, cut_off_after: Duration) -> Verdict {
    if degraded || unheld_for.is_some_and(|d| d >= cut_off_after) {
        Verdict::Publish
    } else {
        Verdict::Withhold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_serves_no_copy_its_standbys_lack_unless_cut_off_like_a_quorum_loss_writer() {
        let cut_off_after = Duration::from_secs(6);
        let unheld = |secs| Some(Duration::from_secs(secs));
        // Partition seed 652857: the writer cut off for 3.5 s served scrapes the promoted
        // standby never had. Now it keeps what the standby holds.
        assert_eq!(unheld_verdict(false, unheld(0), cut_off_after), Verdict::Withhold);
        assert_eq!(unheld_verdict(false, unheld(5), cut_off_after), Verdict::Withhold);
        assert_eq!(
            unheld_verdict(true, unheld(1), cut_off_after),
            Verdict::Publish,
            "quorum-loss mode"
        );
        assert_eq!(
            unheld_verdict(false, unheld(6), cut_off_after),
            Verdict::Publish,
            "cut off from its standbys alone, with its quorum: never frozen for good"
        );
    }
}
