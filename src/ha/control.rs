//! Starting the replica's HA machinery and its control loop: pings, leader duties (Up/Down,
//! rebalance), quorum-loss detection, and reconciling which shards this replica scrapes, holds
//! or hands over.

use super::formation;
use super::liveness::Liveness;
use super::network::Network;
use super::stall::StallWatch;
use super::{
    CONTROL_INTERVAL, ELECTION_MAX_MS, ELECTION_MIN_MS, HEARTBEAT_MS, Ha, Identity, PING_INTERVAL, PING_TIMEOUT,
    REACHABLE_WINDOW,
};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::peer::transport::{PeerClient, PeerTls};
use crate::peer::wire::{InfoRequest, Ping, Pong, path};
use anyhow::Context;
use coordinator::raft::CommandOutcome;
use coordinator::shard_map::{Command, MemberId, MemberState, ShardMap};
use shard::actor::ShardSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How long the control loop waits for one proposal to commit: without a quorum it never
/// does, and the loop must go on reconciling.
const PROPOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A learner silent this many times `--member-down-after` has left for good.
const DEPARTED_AFTER: u32 = 20;

/// Opens the Raft store under `--data-dir`, starts Raft, and spawns formation, pings and the
/// control loop. The peer server is started by the caller (it also needs the reader).
pub async fn start(
    config: &Config,
    shards: Arc<ShardSet>,
    metrics: Arc<Metrics>,
    tls: &PeerTls,
) -> anyhow::Result<Arc<Ha>> {
    let ha_config = config.ha.clone();
    let peers = ha_config.peer_list().map_err(anyhow::Error::msg)?;
    let name = ha_config.replica_name();
    let address = ha_config
        .advertise_address()
        .context("no peer address for this replica")?;
    let client = PeerClient::new(tls);
    let dir = &ha_config.data_dir;
    if dir.join(coordinator::raft::NODE_ID_FILE).exists() && !dir.join(coordinator::raft::DB_FILE).exists() {
        // An identity without its vote and log must not come back: start as a new incarnation.
        std::fs::remove_file(dir.join(coordinator::raft::NODE_ID_FILE))?;
    }
    let (member, fresh) = coordinator::raft::node_identity(&ha_config.data_dir)
        .with_context(|| format!("data dir {}", ha_config.data_dir.display()))?;
    let (log, state_machine) = coordinator::raft::open(&ha_config.data_dir)?;
    let map = state_machine.subscribe();
    let raft_config = openraft::Config {
        cluster_name: "ha-metrics-server".into(),
        heartbeat_interval: HEARTBEAT_MS,
        election_timeout_min: ELECTION_MIN_MS,
        election_timeout_max: ELECTION_MAX_MS,
        ..Default::default()
    }
    .validate()?;
    let liveness = Arc::new(Liveness::default());
    let network = Network {
        client: client.clone(),
        liveness: liveness.clone(),
    };
    let raft = openraft::Raft::new(member, Arc::new(raft_config), network, log, state_machine).await?;
    tracing::info!(replica = %name, member, fresh, %address, "starting as a replica with peers");
    let voter_names = peers.iter().take(ha_config.voters).map(|p| p.name.clone()).collect();
    let ha = Arc::new(Ha {
        id: Identity {
            member: MemberId(member),
            name,
            address,
            peers,
            voter_names,
        },
        shard_count: config.shards,
        config: ha_config,
        raft,
        map,
        client,
        shards: shards.clone(),
        metrics,
        liveness,
        // One scrape interval renews a primary's points and a standby's copy.
        stall: Arc::new(StallWatch::new(config.metric_resolution.max(REACHABLE_WINDOW))),
        degraded: Default::default(),
        leaving: Default::default(),
        copies: Mutex::new(vec![Default::default(); shards.shards as usize]),
        outboxes: (0..shards.shards).map(|_| Default::default()).collect(),
        couriers: Default::default(),
        inboxes: (0..shards.shards).map(|_| Default::default()).collect(),
        leases: super::lease::Leases::new(shards.shards),
        last_expiry: Mutex::new(Instant::now()),
        cluster_seen: Default::default(),
        formation_floor: Default::default(),
        formation_term_floor: Default::default(),
        resolution: config.metric_resolution,
        formation: Default::default(),
        formation_gate: Default::default(),
    });
    actix::spawn(formation::form_or_join(ha.clone()));
    actix::spawn(ha.stall.clone().run());
    actix::spawn(ping_loop(ha.clone()));
    actix::spawn(super::reset::orphan_watch(ha.clone()));
    actix::spawn(control_loop(ha.clone()));
    Ok(ha)
}

/// Pings every other member each interval; answers from the right incarnation count.
async fn ping_loop(ha: Arc<Ha>) {
    let mut first = true;
    loop {
        // At once the first time: a replica that just started must learn who is there before
        // it decides anything from it (takeovers, quorum).
        if !std::mem::take(&mut first) {
            tokio::time::sleep(PING_INTERVAL).await;
        }
        let map = ha.current_map();
        ha.liveness.retain(|m| map.members.contains_key(&m));
        let ping = Ping { from: ha.me().0 };
        let calls = map.members.values().filter(|m| m.id != ha.me()).map(|m| {
            let (ha, id, address) = (ha.clone(), m.id, m.peer_address.clone());
            async move {
                ha.liveness.known_for(id);
                let sent = Instant::now();
                let pong: Result<Pong, _> = ha.client.call(&address, path::PING, &ping, PING_TIMEOUT).await;
                match pong {
                    Ok(pong) if pong.member == id.0 && pong.leaving => ha.liveness.record_leaving(id),
                    Ok(pong) if pong.member == id.0 => {
                        ha.liveness.record_ok(id, pong.settling);
                        ha.liveness.record_writing(id, pong.writing);
                        // Leases count from when the ping left (`lease.rs`).
                        ha.take_grants(id, sent, &pong.grants);
                    }
                    Err(crate::peer::transport::PeerError::Connect(_)) => ha.liveness.record_refused(id),
                    _ => {}
                }
            }
        });
        futures::future::join_all(calls).await;
    }
}

async fn control_loop(ha: Arc<Ha>) {
    let mut changes = ha.map.clone();
    let mut lost_since: Option<Instant> = Some(Instant::now());
    let mut stepped_down = false;
    loop {
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(CONTROL_INTERVAL) => {}
        }
        if let Err(fatal) = &ha.raft.metrics().borrow().running_state {
            // A dead Raft core never recovers in process: exit so the kubelet (or the
            // operator) restarts the replica with its data dir.
            tracing::error!(error = %fatal, "the Raft core stopped; exiting");
            std::process::exit(70);
        }
        let map = ha.current_map();
        if map.is_initialized() && map.shard_count != ha.shards.shards {
            ha.adopt_shard_count(map.shard_count).await;
        }
        let quorum = ha.has_quorum();
        lost_since = if quorum {
            None
        } else {
            Some(lost_since.unwrap_or_else(Instant::now))
        };
        let degraded = lost_since.is_some_and(|t| t.elapsed() >= ha.config.quorum_loss_timeout);
        stepped_down &= degraded;
        if ha.degraded.swap(degraded, Ordering::Relaxed) != degraded {
            if degraded {
                tracing::warn!("no reachable Raft quorum: scraping the shards whose owners are unreachable");
            } else {
                tracing::info!("Raft quorum reachable again: back to the shard map");
            }
        }
        if degraded && !stepped_down && ha.is_leader() {
            stepped_down = true;
            // A leader that reaches no quorum commits nothing: it steps down (etcd's
            // CheckQuorum), so nobody takes it for the set's leader, neither fresh replicas
            // looking for a set to join nor operators.
            tracing::warn!("leading without a reachable quorum: stepping down");
            let _ = ha.raft.trigger().elect().await;
        }
        // Without a quorum nothing the leader proposes commits: waiting out each proposal's
        // timeout would hold up reconciling (quorum-loss writing) for seconds. (`Init` is
        // proposed before the map names any member to ping, so it always is.)
        if ha.is_leader() && (quorum || !map.is_initialized()) {
            ha.leader_duties(&map).await;
        }
        // Without a quorum (and before quorum-loss mode) the map may be stale, for example
        // replayed from the log after a restart: keep scraping what we scrape.
        if quorum || degraded {
            ha.reconcile(&map);
            ha.sync_standbys(&map);
        } else {
            ha.warm_orphans(&map);
        }
        ha.expire_copies();
        ha.publish_metrics(&map);
    }
}

impl Ha {
    /// Whether a leader and a majority of voters (this replica included) are reachable.
    pub(super) fn has_quorum(&self) -> bool {
        let metrics = self.raft.metrics().borrow().clone();
        let voters: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
        let reachable = voters.iter().filter(|v| self.reachable(MemberId(**v))).count();
        let leader = metrics.current_leader.is_some_and(|l| self.reachable(MemberId(l)));
        leader && !voters.is_empty() && reachable * 2 > voters.len()
    }

    /// The leader marks members Up/Down from pings and rebalances until the map settles.
    async fn leader_duties(&self, map: &ShardMap) {
        if !map.is_initialized() {
            return formation::propose_init(self).await;
        }
        self.adopt_raft_members(map).await;
        if self.unsettled() {
            // After a freeze every ping answer here is old: deciding Up/Down now would mark
            // the live members Down.
            return;
        }
        let down_after = self.config.member_down_after;
        for member in map.members.values() {
            let alive = if member.id == self.me() {
                !self.is_leaving()
            } else {
                self.liveness.alive(member.id, down_after)
            };
            let seen = Seen {
                alive,
                reachable: self.reachable(member.id),
                settling: member.id != self.me() && self.liveness.settling(member.id),
                known_long_enough: self.liveness.known_for(member.id) >= down_after,
            };
            let Some(state) = transition(member.is_up(), seen) else {
                continue;
            };
            tracing::info!(member = %member.id, name = %member.name, ?state, "member state changes");
            self.propose(Command::SetState {
                member: member.id,
                state,
            })
            .await;
        }
        self.forget_departed(map).await;
        if !self.current_map().is_settled() {
            self.propose(Command::Rebalance).await;
        }
    }

    /// Learners silent for `DEPARTED_AFTER` x `--member-down-after` (replicas scaled in) leave
    /// the map and the Raft membership; voters stay (they are the quorum's fixed set).
    async fn forget_departed(&self, map: &ShardMap) {
        let gone_after = self.config.member_down_after * DEPARTED_AFTER;
        for member in map.members.values().filter(|m| !m.voter && !m.is_up()) {
            if self.liveness.recently(member.id, gone_after) || self.liveness.known_for(member.id) < gone_after {
                continue;
            }
            tracing::info!(member = %member.id, name = %member.name, "forgetting a departed learner");
            let nodes = std::collections::BTreeSet::from([member.id.0]);
            let change = self
                .raft
                .change_membership(openraft::ChangeMembers::RemoveNodes(nodes), false);
            let _ = tokio::time::timeout(PROPOSE_TIMEOUT, change).await;
            self.propose(Command::RemoveMember(member.id)).await;
        }
    }

    /// Raft members missing from the shard map (a formation whose `Init` named fewer members,
    /// a join interrupted between its steps) are asked who they are and added.
    async fn adopt_raft_members(&self, map: &ShardMap) {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: Vec<u64> = membership.voter_ids().collect();
        for (id, node) in membership.nodes() {
            if map.members.contains_key(&MemberId(*id)) {
                continue;
            }
            let info: Result<crate::peer::wire::Info, _> = self
                .client
                .call(&node.addr, path::INFO, &InfoRequest::default(), PING_TIMEOUT)
                .await;
            let Ok(info) = info.map_err(|e| tracing::debug!(member = id, error = %e, "cannot ask a Raft member"))
            else {
                continue;
            };
            if info.member != *id {
                continue;
            }
            tracing::info!(member = id, name = %info.name, "adding a Raft member missing from the shard map");
            self.propose(Command::AddMember(coordinator::shard_map::Member {
                id: MemberId(*id),
                name: info.name,
                peer_address: node.addr.clone(),
                state: MemberState::Up,
                voter: voters.contains(id),
            }))
            .await;
        }
        // A member added before its voter swap (by the loop above, racing the leader's
        // admission) is flagged a learner: the flag follows the membership.
        for member in map.members.values() {
            let votes = voters.contains(&member.id.0);
            if member.voter != votes && membership.nodes().any(|(id, _)| *id == member.id.0) {
                tracing::info!(member = %member.id, name = %member.name, voter = votes, "the map's voter flag follows the Raft membership");
                self.propose(Command::SetVoter {
                    member: member.id,
                    voter: votes,
                })
                .await;
            }
        }
    }

    /// Proposes one command; failures (lost leadership, no quorum) are logged and retried by the
    /// next control round. A command the state machine rejected is an error of the proposer's
    /// view of the map (every replica rejects it alike): logged as a warning and returned.
    pub(super) async fn propose(&self, command: Command) -> Option<CommandOutcome> {
        match tokio::time::timeout(PROPOSE_TIMEOUT, self.raft.client_write(command.clone())).await {
            Ok(Ok(written)) => {
                if let CommandOutcome::Rejected(e) = &written.data {
                    tracing::warn!(error = %e, ?command, "the shard map rejected a command");
                }
                Some(written.data)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, ?command, "proposal not committed");
                None
            }
            Err(_) => {
                tracing::debug!(?command, "proposal not committed in time (no quorum?)");
                None
            }
        }
    }

    fn publish_metrics(&self, map: &ShardMap) {
        let (primaries, standbys) = map.shards_of(self.me());
        let raft = self.raft.metrics().borrow().clone();
        let m = &self.metrics.ha;
        let member = crate::metrics::MemberLabel {
            member: self.me().0.to_string(),
        };
        m.member_info.get_or_create(&member).set(1);
        // Leading counts only with a reachable quorum: a leader that reaches none commits
        // nothing (and steps down), while a new set may already have a leader of its own.
        m.is_leader
            .set(i64::from(raft.current_leader == Some(self.me().0) && self.has_quorum()));
        m.term.set((raft.current_term + map.term_floor) as i64);
        m.epoch.set(map.epoch as i64);
        m.degraded.set(i64::from(self.is_degraded()));
        m.set_shards(primaries.len() as i64, standbys.len() as i64);
    }
}

/// What the leader's ping table says of a member.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Answered within `--member-down-after`.
    alive: bool,
    /// Answered within [`super::REACHABLE_WINDOW`].
    reachable: bool,
    /// Its last answer said it is just back from a freeze.
    settling: bool,
    /// Known for at least `--member-down-after` (a new member gets that long to answer).
    known_long_enough: bool,
}

/// The leader's Up/Down decision for a member that is `up` in the map. A member that answers
/// but is settling after a freeze stays Down: made Up, it would get shards back (and the
/// writers it takes them from would yield) while it cannot serve its own copies yet, leaving
/// those shards unserved until it settles.
fn transition(up: bool, seen: Seen) -> Option<MemberState> {
    match (up, seen.alive) {
        (true, false) if seen.known_long_enough => Some(MemberState::Down),
        (false, true) if seen.reachable && !seen.settling => Some(MemberState::Up),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(alive: bool, settling: bool) -> Seen {
        Seen {
            alive,
            reachable: alive,
            settling,
            known_long_enough: true,
        }
    }

    #[test]
    fn a_member_back_from_a_freeze_stays_down_until_it_has_settled() {
        assert_eq!(transition(false, seen(true, true)), None, "settling: no shards yet");
        assert_eq!(transition(false, seen(true, false)), Some(MemberState::Up));
    }

    #[test]
    fn silence_makes_a_member_down_once_it_had_time_to_answer() {
        assert_eq!(transition(true, seen(false, false)), Some(MemberState::Down));
        let new = Seen {
            known_long_enough: false,
            ..seen(false, false)
        };
        assert_eq!(transition(true, new), None);
        assert_eq!(
            transition(true, seen(true, true)),
            None,
            "an Up member that settles keeps its shards"
        );
    }
}
