//! Carrying out one scheduled fault: pick its targets from the step's draws, record its span
//! on the timeline, break things, hold, heal, and wait for the replicas it touched to serve
//! again.

use super::Runner;
use super::journal::FaultSpan;
use super::replicas::State;
use super::schedule::{FaultKind, Step};
use kubesim::cluster::actions::Action;
use kubesim::kubelet::Fault;
use kubesim::sim::rng::Rng;
use std::time::Duration;

/// A restarted replica must serve again within this long.
const READY_LIMIT: Duration = Duration::from_secs(60);

impl Runner {
    /// Runs `step` to its end (healed, restarted replicas serving).
    pub async fn inject(&mut self, step: &Step) -> anyhow::Result<()> {
        let mut rng = Rng::new(step.pick);
        let hold = Duration::from_millis(step.hold_ms as u64);
        let running = self.set.in_state(State::Running);
        let leader = self.leader().await.unwrap_or(running[0]);
        let followers: Vec<usize> = running.iter().copied().filter(|&i| i != leader).collect();
        let follower = *followers
            .get(rng.below(followers.len().max(1) as u64) as usize)
            .unwrap_or(&leader);
        let name = step.kind.name();
        tracing::info!(fault = %name, leader, follower, hold_ms = step.hold_ms, "injecting");
        match step.kind {
            FaultKind::KillLeader { fresh } => self.kill_restart(&name, &[leader], hold, fresh).await?,
            FaultKind::KillFollower { fresh } => self.kill_restart(&name, &[follower], hold, fresh).await?,
            FaultKind::KillAllButOne { fresh } => {
                let survivor = running[rng.below(running.len() as u64) as usize];
                let victims: Vec<usize> = running.iter().copied().filter(|&i| i != survivor).collect();
                self.kill_restart(&name, &victims, hold, fresh).await?
            }
            FaultKind::FreezeLeader | FaultKind::FreezeFollower => {
                let i = if step.kind == FaultKind::FreezeLeader {
                    leader
                } else {
                    follower
                };
                let span = self.open(&name, format!("r{i}"), vec![i], vec![], false);
                self.freeze(i);
                tokio::time::sleep(hold).await;
                self.thaw(i);
                self.close(span);
            }
            FaultKind::RollingRestart => {
                let span = self.open(&name, "all".into(), vec![], vec![], false);
                for i in running {
                    self.terminate(i).await;
                    self.start(i, false)?;
                    self.wait_serving(i).await?;
                }
                self.close(span);
            }
            FaultKind::ScaleOutIn => {
                let spare = self.config.replicas;
                let span = self.open(&name, format!("r{spare}"), vec![], vec![], false);
                self.start(spare, true)?;
                self.wait_serving(spare).await?;
                tokio::time::sleep(hold).await;
                self.terminate(spare).await;
                self.close(span);
            }
            FaultKind::PartitionLeader | FaultKind::PartitionFollower => {
                let i = if step.kind == FaultKind::PartitionLeader {
                    leader
                } else {
                    follower
                };
                let others: Vec<usize> = running.iter().copied().filter(|&j| j != i).collect();
                let span = self.open(&name, format!("r{i} | others"), vec![], vec![], false);
                {
                    // The cut-off side acts as a lone survivor: partial answers until its
                    // quorum-loss timeout, then its own scrapes (two for a rate).
                    let res = self.config.resolution_ms();
                    let mut timeline = self.timeline.lock().expect("timeline lock");
                    timeline.faults[span].split_views = true;
                    timeline.faults[span].gap_budget_ms = Some(super::QUORUM_LOSS_RESOLUTIONS * res + 3 * res);
                }
                if let Some(p) = &self.partitioner {
                    p.split(&[i], &others).map_err(anyhow::Error::msg)?;
                    tokio::time::sleep(hold).await;
                    p.heal().map_err(anyhow::Error::msg)?;
                }
                self.close(span);
            }
            FaultKind::KubeletSlow | FaultKind::KubeletFailing | FaultKind::KubeletLying => {
                self.kubelets(step.kind, &name, &mut rng, hold).await?
            }
            FaultKind::WatchDrop => {
                let span = self.open(&name, "apiserver".into(), vec![], vec![], false);
                for _ in 0..3 {
                    self.cluster.act(Action::DropWatches {}).await?;
                    tokio::time::sleep(hold / 3).await;
                }
                self.close(span);
            }
        }
        Ok(())
    }

    async fn kill_restart(
        &mut self,
        name: &str,
        victims: &[usize],
        hold: std::time::Duration,
        fresh: bool,
    ) -> anyhow::Result<()> {
        let target = victims.iter().map(|i| format!("r{i}")).collect::<Vec<_>>().join(",");
        let span = self.open(name, target, victims.to_vec(), vec![], false);
        if victims.len() >= super::REPLICATION_FACTOR {
            // Every copy of some shards is gone: the survivors scrape them after the
            // quorum-loss timeout and need two scrapes for a rate.
            let res = self.config.resolution_ms();
            self.timeline.lock().expect("timeline lock").faults[span].gap_budget_ms =
                Some(super::QUORUM_LOSS_RESOLUTIONS * res + 3 * res);
        }
        for &i in victims {
            self.kill(i).await;
        }
        tokio::time::sleep(hold).await;
        for &i in victims {
            self.start(i, fresh)?;
        }
        for &i in victims {
            self.wait_serving(i).await?;
        }
        self.close(span);
        Ok(())
    }

    /// Switches a tenth of the nodes (at least one) into a fault of `kind`'s family.
    async fn kubelets(&mut self, kind: FaultKind, name: &str, rng: &mut Rng, hold: Duration) -> anyhow::Result<()> {
        let count = (self.nodes.len() / 10).max(1);
        let mut nodes = Vec::new();
        while nodes.len() < count {
            let n = self.nodes[rng.below(self.nodes.len() as u64) as usize].clone();
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        }
        let res = self.config.resolution_ms() as u64;
        let variant = rng.below(5);
        let fault = match kind {
            FaultKind::KubeletSlow => Fault::Slow { delay_ms: res / 5 },
            FaultKind::KubeletFailing => match variant {
                0 => Fault::ConnectionRefused,
                1 => Fault::Http500,
                2 => Fault::Hang,
                3 => Fault::Garbage,
                _ => Fault::Truncated,
            },
            _ => match variant % 5 {
                0 => Fault::ZeroValues,
                1 => Fault::CounterBackwards { factor: 0.5 },
                2 => Fault::StaleStats,
                3 => Fault::TimestampsBackwards { by_ms: 3 * res as i64 },
                // Ten minutes ahead: far past what the parser accepts.
                _ => Fault::TimestampsAhead { by_ms: 600_000 },
            },
        };
        let lying = kind == FaultKind::KubeletLying;
        // A slow kubelet still answers within the timeout: its pods must not go missing.
        let excused = if kind == FaultKind::KubeletSlow {
            vec![]
        } else {
            nodes.clone()
        };
        let label = format!("{name} ({}) on {}", fault_name(&fault), nodes.join(","));
        let span = self.open(name, label, vec![], excused, lying);
        for n in &nodes {
            self.cluster.set_fault(n, Some(fault.clone())).await?;
        }
        tokio::time::sleep(hold).await;
        for n in &nodes {
            self.cluster.set_fault(n, None).await?;
        }
        self.close(span);
        Ok(())
    }

    fn open(&self, kind: &str, target: String, disrupted: Vec<usize>, nodes: Vec<String>, lying: bool) -> usize {
        let span = FaultSpan {
            kind: kind.to_string(),
            target,
            start: self.clients.now(),
            end: None,
            disrupted,
            nodes,
            lying,
            gap_budget_ms: None,
            split_views: false,
        };
        self.timeline.lock().expect("timeline lock").start_fault(span)
    }

    fn close(&self, span: usize) {
        let now = self.clients.now();
        self.timeline.lock().expect("timeline lock").end_fault(span, now);
    }
}

fn fault_name(fault: &Fault) -> String {
    let json = serde_json::to_value(fault).unwrap_or_default();
    json["kind"].as_str().unwrap_or("?").to_string()
}

/// How long the runner waits for a replica to serve after a start.
pub fn ready_limit() -> Duration {
    READY_LIMIT
}
