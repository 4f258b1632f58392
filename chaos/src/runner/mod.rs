//! The chaos runner: a simulated cluster in this process, `ha-metrics-server` replicas as child
//! processes, consumer-like clients, a seeded fault schedule, invariants checked as
//! observations arrive, a recovery check once the faults stop, and a report.
//!
//! Flow: [`schedule::plan`] -> [`Runner::inject`] (faults.rs) changes processes, kubelets,
//! watches and iptables and records [`journal::FaultSpan`]s; clients and the monitor send
//! [`journal::Observation`]s to the checker (checker.rs), which feeds [`invariants`]; the
//! report module writes JSON, a summary and an SVG timeline.

pub mod campaign;
pub mod checker;
pub mod clients;
mod control;
pub mod faults;
pub mod invariants;
pub mod journal;
pub mod monitor;
pub mod partition;
pub mod replicas;
pub mod report;
pub mod schedule;
mod setup;

use clients::{Clients, Serving};
use journal::Timeline;
use monitor::WatchList;
use partition::Partitioner;
use replicas::ReplicaSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `--replication-factor` of the replicas (the server's default).
pub const REPLICATION_FACTOR: usize = 3;
/// `--quorum-loss-timeout`, in resolutions.
pub const QUORUM_LOSS_RESOLUTIONS: i64 = 2;

/// Everything a run depends on; with the same values (and the same binaries) the same faults
/// hit the same targets in the same order.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    /// Length of the fault phase (warm-up and recovery come on top).
    pub duration: Duration,
    pub nodes: u32,
    pub pods_per_node: u32,
    /// Replicas listed in `--peers`; one more is kept for scale-out.
    pub replicas: usize,
    /// `--metric-resolution`; every other period scales with it (HPA sync = resolution,
    /// VPA = 4 resolutions).
    pub resolution: Duration,
    pub hpas: usize,
    pub shards: u32,
    /// Resolutions without faults after each fault.
    pub settle: i64,
    /// Try network partitions (needs root, iptables, cgroup2, a private netns).
    pub partitions: bool,
    /// Fault kinds to use (names as in reports); all when empty.
    pub only: Vec<String>,
    pub out_dir: PathBuf,
    pub server_bin: PathBuf,
}

impl RunConfig {
    pub fn resolution_ms(&self) -> i64 {
        self.resolution.as_millis() as i64
    }

    /// The command that repeats this run.
    pub fn reproduce(&self) -> String {
        format!(
            "chaos --reproduce {} --duration {}s --nodes {} --pods-per-node {} --replicas {} --resolution {}ms --hpas {}{}",
            self.seed,
            self.duration.as_secs(),
            self.nodes,
            self.pods_per_node,
            self.replicas,
            self.resolution.as_millis(),
            self.hpas,
            if self.partitions { "" } else { " --no-partitions" }
        ) + &if self.only.is_empty() {
            String::new()
        } else {
            format!(" --faults {}", self.only.join(","))
        }
    }
}

/// The live state of a run, driven by the fault schedule.
pub struct Runner {
    pub config: RunConfig,
    pub cluster: kubesim::Cluster,
    pub set: ReplicaSet,
    pub partitioner: Option<Partitioner>,
    /// Why partitions are off, if they are.
    pub partitions_off: Option<String>,
    pub timeline: Arc<Mutex<Timeline>>,
    pub watched: WatchList,
    pub serving: Serving,
    pub clients: Clients,
    pub nodes: Vec<String>,
}

/// Runs one chaos run and writes its report into `config.out_dir`.
pub async fn run(config: RunConfig) -> anyhow::Result<report::Report> {
    setup::run(config).await
}
