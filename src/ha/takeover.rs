//! Writership changing hands. A replica about to write shards (the map made it their primary,
//! or it lost the quorum and nobody else reachable owns them) first *pulls*: it asks every
//! other replica it can reach for its copy. A holder whose map is not newer yields: it stops
//! writing those shards (its staged copies are published or dropped first), answers with its
//! copy and is fenced (a [`Claim`]) until its map moves on. The puller keeps, per node, the
//! best of all copies and only then writes and answers for the shards: whatever any replica
//! served is in the copy it starts from, so its answers never go back.
//!
//! A writer that stops because the map says so keeps its copy (released) for the next writer's
//! pull. A quorum-loss writer that stops because the shard's primary is reachable again hands
//! its copy to that primary (which was writing all along and will not pull) and serves the
//! shard itself until the primary has taken it. See docs/architecture.md.

use super::Ha;
use super::copies::{Claim, Role, yields};
use crate::peer::wire::{MAX_ANSWER_BYTES, PullRequest, PullResponse, PushAck, PushBody, ShardPush, path};
use coordinator::shard_map::MemberId;
use shard::point::now_nanos;
use shard::store::{Missing, ShardSnapshot};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deadline of one pull. A holder answers once its shard actors stopped and their staged copies
/// were pushed (at most about one push deadline).
pub const PULL_TIMEOUT: Duration = Duration::from_millis(1500);
/// Deadline of a quorum-loss writer's hand-over to the shard's primary.
pub const HANDOFF_TIMEOUT: Duration = Duration::from_secs(2);

impl Ha {
    /// Takes `shards` over at map epoch `epoch` (their roles are `Taking`): pulls every
    /// reachable holder's copy, keeps the best per node, then writes those not refused. A node
    /// that no whole copy had (see [`ShardCopy::holds_whole`]) may be older than what the last
    /// writer served: it is marked stale, not served until this replica has scraped it (at once).
    ///
    /// [`ShardCopy::holds_whole`]: super::copies::ShardCopy::holds_whole
    pub(super) async fn take_over(self: Arc<Self>, shards: Vec<u32>, epoch: u64) {
        let started = Instant::now();
        for &shard in &shards {
            // A warm-up's copy stays (its nodes marked stale below); the writer replaces it.
            if self.shards.is_warm(shard)
                && let Some(stopped) = self.shards.stop_one(shard)
            {
                stopped.await;
            }
        }
        for &shard in &shards {
            // Staged as the shard's standby and never committed: newer than anything served.
            self.apply_staged(shard, None);
        }
        let mut refused = BTreeSet::new();
        // Per shard, the nodes some whole copy had: this replica's own copy first.
        let mut covered: HashMap<u32, HashSet<String>> = HashMap::new();
        {
            let copies = self.copies.lock().expect("copies lock");
            for &shard in &shards {
                if copies[shard as usize].role == (Role::Taking { epoch, whole: true }) {
                    let store = self.shards.stores[shard as usize].read().expect("store lock");
                    let fresh = store.node_names().filter(|n| !store.is_stale(n)).map(String::from);
                    covered.entry(shard).or_default().extend(fresh);
                }
            }
        }
        let targets = self.pull_targets();
        let pulls = targets.iter().map(|address| self.pull_from(address, &shards, epoch));
        for answer in futures::future::join_all(pulls).await.into_iter().flatten() {
            refused.extend(answer.refused.iter().copied());
            let shift = now_nanos() - answer.taken_at;
            for (shard, mut copy, whole) in answer.copies {
                copy.shift_received(shift);
                let Some(store) = self.shards.stores.get(shard as usize) else {
                    continue;
                };
                if whole {
                    let fresh = copy.nodes.iter().map(|(n, _)| n).filter(|n| !copy.stale.contains(n));
                    covered.entry(shard).or_default().extend(fresh.cloned());
                }
                store.write().expect("store lock").replace_from(copy, Missing::Keep);
            }
        }
        for &shard in &shards {
            let mut store = self.shards.stores[shard as usize].write().expect("store lock");
            let whole = covered.remove(&shard).unwrap_or_default();
            let stale: Vec<String> = store
                .node_names()
                .filter(|n| !whole.contains(*n))
                .map(String::from)
                .collect();
            if !stale.is_empty() {
                tracing::info!(shard, nodes = ?stale, "no whole copy had these nodes: served again once scraped (at once)");
            }
            store.mark_stale(stale.iter().map(String::as_str));
        }
        let mut writing = Vec::new();
        {
            let mut copies = self.copies.lock().expect("copies lock");
            for &shard in &shards {
                let copy = &mut copies[shard as usize];
                copy.busy = false;
                if !matches!(copy.role, Role::Taking { epoch: e, .. } if e == epoch) {
                    continue;
                }
                if copy.claim.is_some() || refused.contains(&shard) {
                    copy.role = Role::Idle { released: None };
                    continue;
                }
                copy.role = Role::Writer { epoch };
                self.outboxes[shard as usize].lock().expect("outbox lock").reset();
                writing.push(shard);
            }
        }
        for &shard in &writing {
            self.shards.start_one(shard);
        }
        tracing::info!(
            shards = writing.len(),
            refused = refused.len(),
            asked = targets.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "took shards over"
        );
    }

    /// Takes `shards` over again at map epoch `epoch`: this replica writes them under a term
    /// the map has since broken ([`ShardCopy::interrupted`]). Their actors stop first (what
    /// they staged is withheld: their pushes are refused), then it is a takeover like any other,
    /// this replica's own copy not counted whole: what another writer served meanwhile comes
    /// with its copy, and nodes no whole copy had are served again only once scraped.
    ///
    /// [`ShardCopy::interrupted`]: super::copies::ShardCopy::interrupted
    pub(super) async fn retake(self: Arc<Self>, shards: Vec<u32>, epoch: u64) {
        tracing::info!(
            ?shards,
            epoch,
            "the map broke this replica's term on these shards: taking them over again"
        );
        for &shard in &shards {
            if let Some(stopped) = self.shards.stop_one(shard) {
                stopped.await;
            }
        }
        {
            let mut copies = self.copies.lock().expect("copies lock");
            for &shard in &shards {
                copies[shard as usize].role = Role::Taking { epoch, whole: false };
            }
        }
        self.take_over(shards, epoch).await;
    }

    /// Where to pull from: every member of the map this replica can reach or has not heard of
    /// long enough to tell (a replica just started knows nobody yet: the holder of the newest
    /// copy must not be skipped for that, or the takeover starts from an empty copy and its
    /// first push empties the standbys' too), and every address of `--peers` outside the map
    /// (a replica set that formed without this one, or a survivor of an old one). A member that
    /// is gone refuses at once.
    ///
    /// A member the map marks Down that also missed its last ping (frozen, or cut off) is not
    /// asked: it would hold the takeover for the whole `PULL_TIMEOUT` while no copy of the
    /// shard is served (the other standby already follows the new writer; chaos finding Y).
    /// Skipping it cannot send a reader back: only whole copies count, and nodes no whole copy
    /// had are served again only once scraped. A member leaving on SIGTERM is Down but still
    /// answers its pings, so it is still asked and yields everything it staged.
    fn pull_targets(&self) -> Vec<String> {
        let map = self.current_map();
        let unknown = |m: MemberId| self.liveness.known_for(m) < super::REACHABLE_WINDOW;
        let silent_and_down = |m: &coordinator::shard_map::Member| {
            m.state == coordinator::shard_map::MemberState::Down
                && !self.liveness.recently(m.id, super::PING_INTERVAL + super::PING_TIMEOUT)
        };
        let mut targets: Vec<String> = map
            .members
            .values()
            .filter(|m| m.id != self.me() && (self.reachable(m.id) || unknown(m.id)) && !silent_and_down(m))
            .map(|m| m.peer_address.clone())
            .collect();
        let known: BTreeSet<&str> = map.members.values().map(|m| m.peer_address.as_str()).collect();
        let outside = self
            .id
            .peers
            .iter()
            .map(|p| p.address.clone())
            .filter(|a| *a != self.id.address && !known.contains(a.as_str()));
        targets.extend(outside);
        targets.sort();
        targets.dedup();
        targets
    }

    /// Pulls `shards` from one holder, asking again for what it deferred.
    async fn pull_from(&self, address: &str, shards: &[u32], epoch: u64) -> Vec<PullResponse> {
        let mut answers = Vec::new();
        let mut asked = shards.to_vec();
        let deadline = Instant::now() + PULL_TIMEOUT;
        while !asked.is_empty() {
            let request = PullRequest {
                from: self.me().0,
                epoch,
                shards: std::mem::take(&mut asked),
            };
            let budget = deadline.saturating_duration_since(Instant::now());
            let answer: Result<PullResponse, _> = self.client.call(address, path::PULL, &request, budget).await;
            match answer {
                Ok(answer) => {
                    asked = answer.deferred.clone();
                    answers.push(answer);
                }
                Err(e) => tracing::debug!(address, error = %e, "pull failed"),
            }
        }
        answers
    }

    /// A holder's side of a pull: yields every asked shard whose takeover is not older than its
    /// own view, stops writing those, and answers with its copies.
    pub async fn answer_pull(&self, request: PullRequest) -> PullResponse {
        let map = self.current_map();
        let puller = MemberId(request.from);
        // A puller from another replica set (or an incarnation not yet admitted): epochs of two
        // sets cannot be compared; a replica without a quorum yields to it all the same.
        let foreign = !self.in_membership(request.from) && !map.members.contains_key(&puller);
        if !foreign {
            // The puller is there, whatever this replica's pings last found (it may have just
            // restarted and not been pinged yet). Without this, a replica without a quorum
            // found the claim below lapsed at once (its claimer unreachable), took the shard
            // back and scraped it while the puller wrote it from the older copy it pulled: two
            // writers, and the puller's answers went back in time (chaos seed 11,
            // kill-all-but-one). The claim now lapses only once the puller has not been heard
            // from for the reachable window or refused a connection.
            self.heard_from(puller);
        }
        let mut stopped = Vec::new();
        let mut response = PullResponse {
            epoch: map.epoch,
            ..Default::default()
        };
        let mut yielded = Vec::new();
        let settled = !self.unsettled();
        {
            let mut copies = self.copies.lock().expect("copies lock");
            for &shard in request.shards.iter().filter(|&&s| s < self.shards.shards) {
                let copy = &mut copies[shard as usize];
                let primary = map.primary(shard).copied();
                let yields = if foreign {
                    self.is_degraded() || !self.in_cluster()
                } else {
                    yields(
                        request.epoch,
                        map.epoch,
                        primary == Some(puller),
                        primary == Some(self.me()),
                    )
                };
                if !yields {
                    response.refused.push(shard);
                    continue;
                }
                let whole = copy.holds_whole(self.term_since(&map, shard), settled);
                copy.claim = Some(Claim {
                    by: puller,
                    epoch: request.epoch.max(map.epoch),
                });
                if copy.is_writer() {
                    stopped.extend(self.shards.stop_one(shard));
                }
                if matches!(copy.role, Role::Writer { .. } | Role::Taking { .. } | Role::Follower(_)) {
                    copy.role = Role::Idle {
                        released: Some(Instant::now()),
                    };
                }
                // Whole for this puller only: once it writes, this copy falls behind.
                copy.whole = false;
                yielded.push((shard, whole));
            }
        }
        for drained in stopped {
            drained.await;
        }
        for &(shard, _) in &yielded {
            // What this replica staged as a standby is newer than what its writer served (it
            // may have served it): the puller gets it.
            self.apply_staged(shard, None);
        }
        response.taken_at = now_nanos();
        let mut size = 0;
        for (i, &(shard, whole)) in yielded.iter().enumerate() {
            if size > MAX_ANSWER_BYTES {
                response.deferred.extend(yielded[i..].iter().map(|(s, _)| *s));
                break;
            }
            let copy = self.shards.stores[shard as usize]
                .read()
                .expect("store lock")
                .snapshot();
            if !copy.nodes.is_empty() {
                size += bincode::serialized_size(&copy).unwrap_or(0) as usize;
                response.copies.push((shard, copy, whole));
            }
        }
        tracing::debug!(from = %puller, yielded = yielded.len(), refused = response.refused.len(), "answered a pull");
        response
    }

    /// Stops writing `shard` (the map or a fence says so). A quorum-loss writer whose shard's
    /// primary is reachable hands its copy over first and keeps answering for the shard until
    /// the primary took it.
    pub(super) async fn stop_writing(self: Arc<Self>, shard: u32) {
        if let Some(drained) = self.shards.stop_one(shard) {
            drained.await;
        }
        let map = self.current_map();
        let primary = map.primary(shard).copied().filter(|p| *p != self.me());
        let claimed = self.copies.lock().expect("copies lock")[shard as usize].claim.is_some();
        if let Some(primary) = primary.filter(|p| !claimed && self.reachable(*p)) {
            self.hand_to(&map, shard, primary).await;
        }
        let mut copies = self.copies.lock().expect("copies lock");
        let copy = &mut copies[shard as usize];
        copy.busy = false;
        if copy.is_writer() {
            // A clean stop: every staged copy was published, so this copy is everything this
            // replica served as the shard's writer, for the next writer's pull.
            copy.whole = copy.claim.is_none();
            copy.role = Role::Idle {
                released: Some(Instant::now()),
            };
        }
    }

    /// Sends the shard's copy to its primary as a hand-over and waits for the answer.
    async fn hand_to(&self, map: &coordinator::shard_map::ShardMap, shard: u32, primary: MemberId) {
        let Some(address) = self.address_of(map, primary) else {
            return;
        };
        let Some(push) = self.handoff_push(map.epoch, shard) else {
            return;
        };
        let ack: Result<PushAck, _> = self.client.call(&address, path::HANDOFF, &push, HANDOFF_TIMEOUT).await;
        tracing::debug!(shard, to = %primary, ?ack, "handed a quorum-loss copy to the primary");
    }

    /// A hand-over of this replica's whole copy of `shard` at map `epoch`; `None` when it holds
    /// nothing of it.
    fn handoff_push(&self, epoch: u64, shard: u32) -> Option<ShardPush> {
        self.apply_staged(shard, None);
        let snapshot: ShardSnapshot = self.shards.stores[shard as usize]
            .read()
            .expect("store lock")
            .snapshot();
        (!snapshot.nodes.is_empty()).then(|| ShardPush {
            from: self.me().0,
            epoch,
            shard,
            term: 0,
            seq: 0,
            taken_at: now_nanos(),
            body: PushBody::Full(snapshot),
        })
    }

    /// The primary's side of a hand-over: nodes newer than its own go through its shard actor
    /// (staged, pushed to the standbys, then published); a replica taking the shard over keeps
    /// the best per node directly. Anyone else refuses: a standby's copy must stay the writer's.
    pub async fn receive_handoff(&self, push: ShardPush) -> PushAck {
        let map = self.current_map();
        let stale = PushAck::Stale { epoch: map.epoch };
        let PushBody::Full(mut snapshot) = push.body else {
            return stale;
        };
        if push.shard >= self.shards.shards {
            return stale;
        }
        snapshot.shift_received(now_nanos() - push.taken_at);
        let role = self.copies.lock().expect("copies lock")[push.shard as usize]
            .role
            .clone();
        match role {
            Role::Writer { .. } => {
                if self.shards.merge(push.shard, snapshot).await {
                    PushAck::Accepted
                } else {
                    stale
                }
            }
            Role::Taking { .. } => {
                let store = &self.shards.stores[push.shard as usize];
                store.write().expect("store lock").replace_from(snapshot, Missing::Keep);
                PushAck::Accepted
            }
            _ => stale,
        }
    }

    /// Hands every shard this replica holds to its owners under `map`, another replica set's
    /// map (before starting over to join it), and waits for the answers.
    pub(super) async fn hand_over_all(&self, map: &coordinator::shard_map::ShardMap) {
        let mut calls = Vec::new();
        for shard in 0..self.shards.shards.min(map.shard_count) {
            let Some(primary) = map.primary(shard) else { continue };
            let Some(address) = self.address_of(map, *primary) else {
                continue;
            };
            let Some(push) = self.handoff_push(map.epoch, shard) else {
                continue;
            };
            let client = self.client.clone();
            calls.push(async move {
                let ack: Result<PushAck, _> = client.call(&address, path::HANDOFF, &push, HANDOFF_TIMEOUT).await;
                matches!(ack, Ok(PushAck::Accepted))
            });
        }
        let sent = calls.len();
        let accepted = futures::future::join_all(calls)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        tracing::info!(sent, accepted, "handed this replica's shards to the other replica set");
    }
}
