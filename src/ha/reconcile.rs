//! Reconciling this replica's copies with the shard map, once per control round: which shards
//! it should write, follow or leave (`copies.rs`), and the moves between those roles. Moves to
//! and from writing need IO and run as tasks of their own (`takeover.rs`); a shard with a move
//! under way is left alone until it ends.

use super::copies::{Role, Wanted};
use super::{Ha, REACHABLE_WINDOW};
use coordinator::shard_map::ShardMap;
use shard::point::now_nanos;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Ha {
    /// What the map and this replica's situation ask of it for `shard`: write it as its
    /// primary, or in quorum-loss mode when its first reachable owner is this replica or none
    /// is reachable; follow its primary as a standby; or nothing.
    fn wanted(&self, map: &ShardMap, shard: u32) -> Wanted {
        let owners = map.owners(shard);
        let me = self.me();
        if owners.first() == Some(&me) {
            return Wanted::Write;
        }
        let orphaned = owners.iter().find(|o| self.reachable(**o)).is_none_or(|o| *o == me);
        // Outside any replica set (a fresh replica that has not joined yet), quorum-loss
        // writing is for a replica that found no set at all: a set that exists writes.
        let outside = !map.is_initialized() && self.cluster_seen.load(std::sync::atomic::Ordering::Relaxed);
        if self.is_degraded() && orphaned && !outside {
            return Wanted::Write;
        }
        if owners.iter().skip(1).any(|o| *o == me) {
            Wanted::Follow(owners[0])
        } else {
            Wanted::Nothing
        }
    }

    /// Whether this replica, writing `shard` without a quorum, keeps writing it although an
    /// owner before it in the map answers pings again: until that owner says it writes the
    /// shard. A replica restarted with its data dir answers pings at once but writes nothing
    /// until it reaches a quorum (its replayed map may be stale, `control.rs`); stopping at its
    /// first ping left the shard to nobody until then, and the nodes the stopped writer had
    /// scraped meanwhile to be scraped again (chaos seed 11, kill-all-but-one: 2 s gaps). The
    /// owner takes the shard over by pulling, which this replica yields to as to any pull.
    fn keeps_writing_orphan(&self, map: &ShardMap, shard: u32) -> bool {
        let me = self.me();
        self.is_degraded()
            && map
                .owners(shard)
                .iter()
                .find(|o| self.reachable(**o))
                .is_some_and(|o| *o != me && !self.liveness.writes(*o, shard))
    }

    /// The shards this replica writes now, for its ping answers.
    pub fn writing_shards(&self) -> Vec<u32> {
        let copies = self.copies.lock().expect("copies lock");
        (0u32..)
            .zip(copies.iter())
            .filter(|(_, c)| c.is_writer() && c.claim.is_none())
            .map(|(s, _)| s)
            .collect()
    }

    /// Moves every shard towards what the map asks (see the module docs).
    pub(super) fn reconcile(self: &Arc<Self>, map: &ShardMap) {
        let now = Instant::now();
        let (mut take, mut stop, mut clear, mut cool) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut retake = Vec::new();
        {
            let mut copies = self.copies.lock().expect("copies lock");
            for (shard, copy) in (0u32..).zip(copies.iter_mut()) {
                // A claim by a replica of another set (not in this map) lapses only with a new
                // map: this replica's set is gone, and it starts over to join the other.
                let claimer_reachable =
                    |c: super::copies::Claim| !map.members.contains_key(&c.by) || self.reachable(c.by);
                if let Some(claim) = copy.claim
                    && copy.claim_lapsed(map.epoch, claimer_reachable(claim), self.is_degraded())
                {
                    copy.claim = None;
                }
                if copy.busy {
                    continue;
                }
                let wanted = match (copy.claim, self.wanted(map, shard)) {
                    (Some(_), Wanted::Write) => Wanted::Nothing,
                    (None, _) if copy.is_writer() && self.keeps_writing_orphan(map, shard) => Wanted::Write,
                    (_, wanted) => wanted,
                };
                if wanted != Wanted::Write && self.shards.is_warm(shard) {
                    cool.push(shard);
                }
                let since = self.term_since(map, shard);
                match (&copy.role, wanted) {
                    (Role::Writer { .. }, Wanted::Write) if copy.interrupted(since) => {
                        copy.busy = true;
                        retake.push(shard);
                    }
                    (Role::Writer { .. }, Wanted::Write) => {}
                    (Role::Writer { .. }, _) => {
                        copy.busy = true;
                        stop.push(shard);
                    }
                    (_, Wanted::Write) => {
                        let whole = copy.holds_whole(since, !self.unsettled());
                        copy.role = Role::Taking {
                            epoch: map.epoch,
                            whole,
                        };
                        copy.busy = true;
                        take.push(shard);
                    }
                    (_, wanted) => {
                        copy.settle_without_io(wanted, now);
                    }
                }
                if let Role::Idle { released: Some(at) } = copy.role
                    && at.elapsed() >= self.release_grace()
                {
                    copy.role = Role::Idle { released: None };
                    clear.push(shard);
                }
            }
        }
        for shard in clear {
            self.drop_all_staged(shard);
            self.shards.clear(shard);
        }
        for shard in cool {
            if let Some(stopped) = self.shards.stop_one(shard) {
                actix::spawn(stopped);
            }
        }
        if !take.is_empty() {
            actix::spawn(self.clone().take_over(take, map.epoch));
        }
        if !retake.is_empty() {
            actix::spawn(self.clone().retake(retake, map.epoch));
        }
        for shard in stop {
            actix::spawn(self.clone().stop_writing(shard));
        }
    }

    /// Without a quorum, before quorum-loss mode: starts a warm-up ([`ShardSet::start_warm`])
    /// for every shard this replica would write in that mode and holds no copy of (none of its
    /// owners answers, and this replica is none of them). Its first scrape as the writer then
    /// gives rates, instead of its second one a resolution later: the pods of shards whose
    /// every copy was lost are missing the quorum-loss timeout plus one scrape, not plus two.
    /// The warm copy is never served (an idle copy is not authoritative, and the takeover marks
    /// its nodes stale until the writer's own scrape renews them). Reconciling stops the warm-ups
    /// of shards it will not write.
    ///
    /// [`ShardSet::start_warm`]: shard::actor::ShardSet::start_warm
    pub(super) fn warm_orphans(&self, map: &ShardMap) {
        if !map.is_initialized() || self.unsettled() {
            return;
        }
        let me = self.me();
        let mut copies = self.copies.lock().expect("copies lock");
        let mut started = Vec::new();
        for (shard, copy) in (0..map.shard_count.min(self.shards.shards)).zip(copies.iter_mut()) {
            let owners = map.owners(shard);
            // Owners just met (a replica starting) have not had time to answer.
            let lost = !owners.contains(&me)
                && owners
                    .iter()
                    .all(|o| !self.reachable(*o) && self.liveness.known_for(*o) >= REACHABLE_WINDOW);
            // A claim does not matter: it is the claimer's shard, and the claimer is silent.
            let idle = matches!(copy.role, Role::Idle { .. }) && !copy.busy;
            if lost && idle && !self.shards.is_scraping(shard) && !self.shards.is_warm(shard) {
                // A copy released whole (after a quorum-loss writer's hand-back, say) stops
                // being what it was: its nodes become stale at the takeover, like the others.
                copy.whole = false;
                self.shards.start_warm(shard);
                started.push(shard);
            }
        }
        if !started.is_empty() {
            tracing::info!(shards = ?started, "no quorum and no owner of these shards answers: warming them up");
        }
    }

    /// How long a released shard's points are kept: two resolutions, enough for the next
    /// writer's pull and for readers' contests while the new owners take over.
    fn release_grace(&self) -> Duration {
        self.resolution * 2
    }

    /// Expires the copies of shards this replica does not scrape, once per resolution. A
    /// standby's points are kept longer than a writer's (twice the resolution) by the time a
    /// dead writer takes to be replaced, so the promoted standby still has them to continue
    /// from.
    pub(super) fn expire_copies(&self) {
        let mut last = self.last_expiry.lock().expect("expiry lock");
        if last.elapsed() < self.resolution {
            return;
        }
        *last = Instant::now();
        let max_age = 2 * self.resolution + self.config.member_down_after + self.resolution;
        self.shards.expire_idle(now_nanos(), max_age.as_nanos() as i64);
    }
}
