//! Leaving on SIGTERM (rolling restart, scale in): the replica tells the leader it is going, the
//! leader marks it Down at once, the new primaries take its shards with handoff, and only then
//! does it stop, so readers never wait `--member-down-after` for a dead primary.

use super::Ha;
use crate::peer::wire::{LeaveRequest, path};
use coordinator::shard_map::{Command, MemberId, MemberState};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Longest a leaving replica waits for its shards to move.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

impl Ha {
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Relaxed)
    }

    /// The leader's side: marks `member` Down (its shards move); false if not the leader.
    pub async fn mark_left(&self, member: u64) -> bool {
        if !self.is_leader() {
            return false;
        }
        tracing::info!(member, "a replica is leaving");
        self.liveness.record_leaving(MemberId(member));
        self.propose(Command::SetState {
            member: MemberId(member),
            state: MemberState::Down,
        })
        .await;
        true
    }

    /// Announces the departure and waits (bounded) until the map gives this replica no primary
    /// shard and the reconcile loop has handed them over.
    pub async fn leave(&self) {
        self.leaving.store(true, Ordering::Relaxed);
        let started = Instant::now();
        while started.elapsed() < LEAVE_TIMEOUT {
            let map = self.current_map();
            if map.shards_of(self.me()).0.is_empty() {
                // One more control round hands the last shards over.
                tokio::time::sleep(super::CONTROL_INTERVAL * 2).await;
                tracing::info!(took = ?started.elapsed(), "left the replica set's shard map");
                return;
            }
            let leader = {
                let metrics = self.raft.metrics().borrow().clone();
                let leader = metrics.current_leader;
                leader.and_then(|l| Some(metrics.membership_config.membership().get_node(&l)?.addr.clone()))
            };
            if let Some(address) = leader {
                let request = LeaveRequest { member: self.me().0 };
                let _: Result<bool, _> = self
                    .client
                    .call(&address, path::LEAVE, &request, Duration::from_secs(1))
                    .await;
            }
            tokio::time::sleep(super::CONTROL_INTERVAL).await;
        }
        tracing::warn!("leaving without handing every shard over (no leader answered in time)");
    }
}
