//! First formation and joining. A replica with a Raft membership just runs. Otherwise it asks
//! its `--peers` who they are: if one belongs to a cluster, it asks that cluster's leader to let
//! it in (a new incarnation replaces the old one of the same name); if none does, the first
//! replica of `--peers` among those answering forms the cluster with the voters that answered,
//! provided they (with itself) are a majority of the voters.
//!
//! Two formations must never both happen, or a voter counted by both ends up in one set and the
//! other's former waits forever for a leader. "First among those answering" alone does not
//! ensure it: if r0's answer to r1 is late while r0 counts r1, r0 forms {r0, r1} and r1 forms
//! {r1, r2}. So a replica that is asked by a peer looking to form remembers the asker (the
//! [`Gate`]), and defers its own formation while an earlier replica of `--peers` asked recently;
//! once it decides to form it answers as formed, so a later asker does not count it. The
//! decision and the answers are serialised by the gate's lock.

use super::Ha;
use crate::peer::wire::{Info, InfoRequest, JoinRequest, JoinResponse, path};
use coordinator::shard_map::{Command, Member, MemberId, MemberState};
use openraft::{BasicNode, ChangeMembers};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an outsider asks its peers again.
const FORMATION_RETRY: Duration = Duration::from_secs(1);
/// Deadline of one `info` or `join` call (a join waits for the log to catch up).
const INFO_TIMEOUT: Duration = Duration::from_secs(1);
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// An earlier replica of `--peers` that asked this long ago while looking to form may still be
/// forming with this replica counted: a few of its retries, plus an answer's deadline.
const DEFER_TO_ASKER: Duration = Duration::from_secs(4);

/// Who asked this replica about itself while looking to form, and whether it decided to form.
#[derive(Debug, Default)]
pub struct Gate {
    forming: bool,
    asked: HashMap<String, Instant>,
}

impl Gate {
    /// Records an asker looking to form; returns whether this replica must answer as formed.
    fn asked_by(&mut self, asker: &str, now: Instant) -> bool {
        self.asked.insert(asker.to_string(), now);
        self.forming
    }

    /// Decides to form unless one of `earlier` (the replicas before this one in `--peers`)
    /// asked within [`DEFER_TO_ASKER`]; from then on this replica answers as formed.
    fn decide(&mut self, earlier: &[&str], now: Instant) -> Result<(), String> {
        let recent = |name: &&str| {
            self.asked
                .get(*name)
                .is_some_and(|at| now.saturating_duration_since(*at) < DEFER_TO_ASKER)
        };
        if let Some(name) = earlier.iter().copied().find(recent) {
            return Err(format!(
                "deferring to {name}, which is looking for its peers and may form the cluster"
            ));
        }
        self.forming = true;
        Ok(())
    }
}

impl Ha {
    /// Whether this incarnation is in the Raft membership (voter or learner).
    pub fn in_cluster(&self) -> bool {
        let metrics = self.raft.metrics().borrow().clone();
        metrics.membership_config.membership().get_node(&self.me().0).is_some()
    }

    /// This replica as `Info` (peers, `status`).
    pub fn info(&self) -> Info {
        let metrics = self.raft.metrics().borrow().clone();
        let map = self.current_map();
        let leader = metrics.current_leader.and_then(|l| {
            let node = metrics.membership_config.membership().get_node(&l)?.clone();
            Some((l, node.addr))
        });
        let (primaries, standbys) = map.shards_of(self.me());
        let per_shard = self.shards.targets_per_shard();
        Info {
            name: self.id.name.clone(),
            member: self.me().0,
            address: self.id.address.clone(),
            initialized: self.in_cluster(),
            leader,
            term: metrics.current_term + map.term_floor,
            epoch: map.epoch,
            degraded: self.is_degraded(),
            quorum: self.has_quorum(),
            primaries: primaries.len() as u32,
            standbys: standbys.len() as u32,
            nodes: primaries
                .iter()
                .map(|&s| per_shard.get(s as usize).copied().unwrap_or(0) as u32)
                .sum(),
            map: (*map).clone(),
            voters: metrics.membership_config.membership().voter_ids().collect(),
        }
    }

    /// The answer to `info`: an asker looking to form is remembered, and a replica that decided
    /// to form answers as formed (under the gate's lock, so no asker can count it afterwards).
    pub fn answer_info(&self, request: &InfoRequest) -> Info {
        let mut gate = self.formation_gate.lock().expect("formation gate lock");
        let forming = match &request.looking {
            Some(asker) => gate.asked_by(asker, Instant::now()),
            None => gate.forming,
        };
        let mut info = self.info();
        info.initialized |= forming;
        info
    }

    /// The leader's answer to a join: add the learner, swap it in for an old incarnation of the
    /// same name (as a voter if the name votes), and add it to the shard map.
    pub async fn admit(&self, request: JoinRequest) -> JoinResponse {
        if !self.is_leader() {
            let metrics = self.raft.metrics().borrow().clone();
            let leader = metrics
                .current_leader
                .and_then(|l| Some(metrics.membership_config.membership().get_node(&l)?.addr.clone()));
            return JoinResponse::NotLeader { leader };
        }
        let map = self.current_map();
        let id = MemberId(request.member);
        if map.members.contains_key(&id) && self.in_membership(request.member) {
            return JoinResponse::Joined { epoch: map.epoch };
        }
        if request.has_log && !self.in_membership(request.member) {
            // Its log comes from another replica set (or an old membership of this one):
            // replicating into it would mix two histories.
            return JoinResponse::StartOver;
        }
        tracing::info!(name = %request.name, member = request.member, address = %request.address, "admitting a replica");
        let node = BasicNode::new(request.address.clone());
        if let Err(e) = self.raft.add_learner(request.member, node, true).await {
            return JoinResponse::Failed(format!("adding learner: {e}"));
        }
        let old: Vec<MemberId> = map
            .members
            .values()
            .filter(|m| m.name == request.name && m.id != id)
            .map(|m| m.id)
            .collect();
        let voter = self.id.voter_names.contains(&request.name);
        let metrics = self.raft.metrics().borrow().clone();
        let mut voters: BTreeSet<u64> = metrics.membership_config.membership().voter_ids().collect();
        let old_ids: BTreeSet<u64> = old.iter().map(|m| m.0).collect();
        if voter || voters.iter().any(|v| old_ids.contains(v)) {
            voters.retain(|v| !old_ids.contains(v));
            if voter {
                voters.insert(request.member);
            }
            if let Err(e) = self.raft.change_membership(voters, false).await {
                return JoinResponse::Failed(format!("changing voters: {e}"));
            }
        }
        let learners_left: BTreeSet<u64> = old_ids.iter().copied().filter(|o| self.in_membership(*o)).collect();
        if !learners_left.is_empty() {
            let _ = self
                .raft
                .change_membership(ChangeMembers::RemoveNodes(learners_left), false)
                .await;
        }
        for member in old {
            self.propose(Command::RemoveMember(member)).await;
        }
        let member = Member {
            id,
            name: request.name,
            peer_address: request.address,
            state: MemberState::Up,
            voter,
        };
        match self.raft.client_write(Command::AddMember(member)).await {
            Ok(r) => JoinResponse::Joined {
                epoch: r.data.result().and_then(Result::ok).map_or(0, |r| r.epoch),
            },
            Err(e) => JoinResponse::Failed(format!("adding to the shard map: {e}")),
        }
    }

    pub(super) fn in_membership(&self, member: u64) -> bool {
        let metrics = self.raft.metrics().borrow().clone();
        metrics.membership_config.membership().get_node(&member).is_some()
    }
}

/// Runs until this replica is in the cluster.
pub async fn form_or_join(ha: Arc<Ha>) {
    while !ha.in_cluster() {
        if let Err(e) = try_once(&ha).await {
            tracing::info!(reason = %e, "not in a cluster yet");
        }
        tokio::time::sleep(FORMATION_RETRY).await;
    }
    tracing::info!("member of the replica set");
}

/// What the other replicas of `--peers` that answer say about themselves; `looking`: this
/// replica belongs to no cluster and may form one.
pub(super) async fn peer_infos(ha: &Ha, looking: bool) -> Vec<Info> {
    let others: Vec<_> = ha.id.peers.iter().filter(|p| p.name != ha.id.name).collect();
    let request = InfoRequest {
        looking: looking.then(|| ha.id.name.clone()),
    };
    let calls = others.iter().map(|p| {
        ha.client
            .call::<_, Info>(&p.address, path::INFO, &request, INFO_TIMEOUT)
    });
    futures::future::join_all(calls).await.into_iter().flatten().collect()
}

async fn try_once(ha: &Ha) -> Result<(), String> {
    let answers = peer_infos(ha, true).await;
    let me = (ha.id.name.as_str(), ha.me());
    ha.cluster_seen.store(
        answers.iter().any(|i| i.initialized),
        std::sync::atomic::Ordering::Relaxed,
    );
    // A set that lost its quorum for good may still have a leader that never learnt it (a
    // leader steps down only after the quorum-loss timeout): joining it would wait forever.
    if let Some(leader) = answers
        .iter()
        .filter(|i| i.quorum && !lost_for_good(me, i, &answers))
        .find_map(|i| i.initialized.then(|| i.leader.clone()).flatten())
    {
        let request = JoinRequest {
            name: ha.id.name.clone(),
            member: ha.me().0,
            address: ha.id.address.clone(),
            has_log: ha.raft.metrics().borrow().last_log_index.is_some(),
        };
        let answer: JoinResponse = ha
            .client
            .call(&leader.1, path::JOIN, &request, JOIN_TIMEOUT)
            .await
            .map_err(|e| format!("join via {}: {e}", leader.1))?;
        return match answer {
            JoinResponse::Joined { epoch } => {
                tracing::info!(epoch, "joined the replica set");
                Ok(())
            }
            JoinResponse::StartOver => ha.start_over("the leader does not know this replica's Raft log").await,
            other => Err(format!("join refused: {other:?}")),
        };
    }
    if answers.iter().any(|i| i.initialized && !lost_for_good(me, i, &answers)) {
        return Err("a cluster exists but has no leader yet".into());
    }
    // Replicas of a set that lost its quorum for good keep their logs out of the new set; they
    // start over and join it once it has a leader. The new set's epochs start above the old
    // one's, so its takeovers win over the old set's writers by epoch.
    let floor = answers
        .iter()
        .filter(|i| i.initialized)
        .map(|i| i.map.epoch)
        .max()
        .unwrap_or(0);
    ha.formation_floor.store(floor, std::sync::atomic::Ordering::Relaxed);
    let term_floor = answers
        .iter()
        .filter(|i| i.initialized)
        .map(|i| i.term)
        .max()
        .unwrap_or(0);
    ha.formation_term_floor
        .store(term_floor, std::sync::atomic::Ordering::Relaxed);
    let answers: Vec<Info> = answers.into_iter().filter(|i| !i.initialized).collect();
    // Nobody answering belongs to a cluster: the first of --peers among us may form one.
    let first = ha
        .id
        .peers
        .iter()
        .find(|p| p.name == ha.id.name || answers.iter().any(|i| i.name == p.name));
    if first.is_none_or(|p| p.name != ha.id.name) {
        return Err("waiting for the first replica of --peers to form the cluster".into());
    }
    let is_voter = |name: &str| ha.id.voter_names.iter().any(|v| v == name);
    let mut members = vec![Member {
        id: ha.me(),
        name: ha.id.name.clone(),
        peer_address: ha.id.address.clone(),
        state: MemberState::Up,
        voter: true,
    }];
    members.extend(answers.iter().filter(|i| is_voter(&i.name)).map(|i| Member {
        id: MemberId(i.member),
        name: i.name.clone(),
        peer_address: i.address.clone(),
        state: MemberState::Up,
        voter: true,
    }));
    if members.len() * 2 <= ha.id.voter_names.len() {
        return Err(format!(
            "only {} of {} voters answer",
            members.len(),
            ha.id.voter_names.len()
        ));
    }
    let nodes: BTreeMap<u64, BasicNode> = members
        .iter()
        .map(|m| (m.id.0, BasicNode::new(m.peer_address.clone())))
        .collect();
    let earlier: Vec<&str> = ha
        .id
        .peers
        .iter()
        .map(|p| p.name.as_str())
        .take_while(|name| *name != ha.id.name)
        .collect();
    ha.formation_gate
        .lock()
        .expect("formation gate lock")
        .decide(&earlier, Instant::now())?;
    tracing::info!(voters = ?nodes.keys().collect::<Vec<_>>(), "forming the replica set");
    *ha.formation.lock().expect("formation lock") = Some(members);
    let formed = ha.raft.initialize(nodes).await.map_err(|e| format!("initialize: {e}"));
    if formed.is_err() && !ha.in_cluster() {
        ha.formation_gate.lock().expect("formation gate lock").forming = false;
    }
    formed
}

/// Whether the replica set `info` belongs to can never reach a quorum again: most of its voters
/// are names now answering as other incarnations (their data dirs are gone, and an incarnation
/// whose log is gone never comes back). The voters are its Raft membership's (`info.voters`),
/// the authority on its quorum; the map only names them. A voter the map does not name may
/// still come back.
fn lost_for_good((my_name, me): (&str, MemberId), info: &Info, answers: &[Info]) -> bool {
    let replaced = info
        .voters
        .iter()
        .filter_map(|id| info.map.members.get(&MemberId(*id)))
        .filter(|v| (v.name == my_name && v.id != me) || answers.iter().any(|a| a.name == v.name && a.member != v.id.0))
        .count();
    let voters = info.voters.len();
    voters > 0 && (voters - replaced) * 2 <= voters
}

/// Leader of a formed Raft cluster whose map is not initialised: proposes `Init` with the
/// formation's members (or itself, if another replica formed and failed before `Init`).
pub async fn propose_init(ha: &Ha) {
    let members = ha.formation.lock().expect("formation lock").clone().unwrap_or_else(|| {
        vec![Member {
            id: ha.me(),
            name: ha.id.name.clone(),
            peer_address: ha.id.address.clone(),
            state: MemberState::Up,
            voter: true,
        }]
    });
    ha.propose(Command::Init {
        shard_count: ha.shard_count,
        replication_factor: ha.config.replication_factor,
        members,
        epoch_floor: ha.formation_floor.load(std::sync::atomic::Ordering::Relaxed),
        term_floor: ha.formation_term_floor.load(std::sync::atomic::Ordering::Relaxed),
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use coordinator::shard_map::ShardMap;

    fn info(name: &str, member: u64, initialized: bool, voters: &[(&str, u64)]) -> Info {
        let mut map = ShardMap::default();
        for &(name, id) in voters {
            let member = Member {
                id: MemberId(id),
                name: name.into(),
                peer_address: String::new(),
                state: MemberState::Up,
                voter: true,
            };
            map.members.insert(MemberId(id), member);
        }
        Info {
            name: name.into(),
            member,
            address: String::new(),
            initialized,
            leader: None,
            term: 0,
            epoch: 0,
            degraded: true,
            quorum: false,
            primaries: 0,
            standbys: 0,
            nodes: 0,
            voters: voters.iter().map(|&(_, id)| id).collect(),
            map,
        }
    }

    #[test]
    fn a_replica_defers_forming_to_an_earlier_peer_that_asked_recently() {
        let t0 = Instant::now();
        let mut gate = Gate::default();
        assert!(!gate.asked_by("r2", t0), "a later asker does not hold r1 back");
        assert!(!gate.asked_by("r0", t0));
        assert!(
            gate.decide(&["r0"], t0 + Duration::from_secs(1)).is_err(),
            "r0 may be forming with r1 counted"
        );
        assert!(!gate.forming);
        gate.decide(&["r0"], t0 + DEFER_TO_ASKER)
            .expect("r0 stopped asking: it is gone or formed");
        assert!(
            gate.asked_by("r0", t0 + DEFER_TO_ASKER),
            "once deciding, r1 answers as formed"
        );
    }

    #[test]
    fn the_first_replica_never_defers() {
        let t0 = Instant::now();
        let mut gate = Gate::default();
        gate.asked_by("r1", t0);
        gate.decide(&[], t0).expect("no replica comes before the first");
    }

    #[test]
    fn a_set_is_lost_for_good_only_when_most_voters_came_back_as_new_incarnations() {
        let old = [("r0", 1), ("r1", 2), ("r2", 3)];
        let survivor = info("r1", 2, true, &old);
        // r0 restarted fresh (id 10), r2 too (id 30): only r1 of the old voters is left.
        let fresh_r2 = info("r2", 30, false, &[]);
        let answers = [survivor.clone(), fresh_r2];
        assert!(lost_for_good(("r0", MemberId(10)), &survivor, &answers));
        // r2 is only slow to answer: two old voters may still come back.
        assert!(!lost_for_good(("r0", MemberId(10)), &survivor, &answers[..1]));
        // r0 restarted with its data dir (same id): the set can recover.
        let answers = [survivor.clone(), info("r2", 30, false, &[])];
        assert!(!lost_for_good(("r0", MemberId(1)), &survivor, &answers));
    }

    #[test]
    fn voters_are_the_raft_membership_s_not_the_map_s_flags() {
        // r0 came back fresh (id 10) and was swapped in as a voter, but the map added it as a
        // learner first (soak seed 400607); then r2 restarts fresh (id 30). r0 and r1 still
        // make a quorum of {10, 2, 3}: the set is not lost, r2 must join it.
        let mut leader = info("r0", 10, true, &[("r0", 10), ("r1", 2), ("r2", 3)]);
        leader.map.members.get_mut(&MemberId(10)).unwrap().voter = false;
        let answers = [leader.clone(), info("r1", 2, true, &[("r0", 10), ("r1", 2), ("r2", 3)])];
        assert!(!lost_for_good(("r2", MemberId(30)), &leader, &answers));
        // With r1 gone fresh too (id 20), only r0 of the three is left: lost.
        let answers = [leader.clone(), info("r1", 20, false, &[])];
        assert!(lost_for_good(("r2", MemberId(30)), &leader, &answers));
    }
}
