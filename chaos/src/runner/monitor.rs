//! Samples the replicas' self-metrics (leader, term, epoch, shards, degraded) every half
//! second and kubesim's kubelet scrape counters every resolution, and marks a started replica
//! as serving (for direct clients) once its `/readyz` answers 200.

use super::clients::{Clients, Serving};
use super::journal::{Observation, ReplicaSample, Target};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// What the monitor needs to know about each replica, kept current by the runner.
#[derive(Debug, Clone, Copy)]
pub struct Watched {
    pub port: u16,
    pub incarnation: u32,
    /// Running (not frozen, not down).
    pub running: bool,
}

pub type WatchList = Arc<Mutex<Vec<Watched>>>;

/// The value of the first sample of `name` (exact name, optional labels in `labels`).
fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(&format!("{labels} ")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn sample(text: &str, replica: usize, incarnation: u32, at: i64) -> Option<ReplicaSample> {
    let m = |name: &str, labels: &str| metric(text, name, labels);
    let member = text
        .lines()
        .find_map(|l| l.strip_prefix("ha_metrics_server_member_info{member=\""))
        .and_then(|rest| rest.split('"').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or(0);
    Some(ReplicaSample {
        replica,
        incarnation,
        member,
        at,
        leader: m("ha_metrics_server_coordinator_is_leader", "")? == 1.0,
        term: m("ha_metrics_server_coordinator_term", "")? as u64,
        epoch: m("ha_metrics_server_shard_map_epoch", "")? as u64,
        primaries: m("ha_metrics_server_shards", "{role=\"primary\"}").unwrap_or(0.0) as u32,
        standbys: m("ha_metrics_server_shards", "{role=\"standby\"}").unwrap_or(0.0) as u32,
        degraded: m("ha_metrics_server_degraded", "").unwrap_or(0.0) == 1.0,
    })
}

/// Samples replicas until aborted.
pub fn spawn_replicas(
    clients: Clients,
    watched: WatchList,
    serving: Serving,
    tx: UnboundedSender<Observation>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let list = watched.lock().expect("watch lock").clone();
            let polls = list.iter().enumerate().filter(|(_, w)| w.running).map(|(i, w)| {
                let (c, w) = (clients.clone(), *w);
                async move {
                    let target = Target::Replica(i);
                    let metrics = c.get(target, w.port, "/metrics").await;
                    let ready = c.get(target, w.port, "/readyz").await.is_ok();
                    (i, w, metrics, ready)
                }
            });
            for (i, w, metrics, ready) in futures::future::join_all(polls).await {
                if let Some(s) = metrics
                    .ok()
                    .and_then(|b| sample(&String::from_utf8_lossy(&b), i, w.incarnation, clients.now()))
                {
                    let _ = tx.send(Observation::Replica(s));
                }
                let mut serving = serving.lock().expect("serving lock");
                let still = watched.lock().expect("watch lock")[i];
                if ready && still.running && still.incarnation == w.incarnation && serving[i].is_none() {
                    serving[i] = Some(w.port);
                }
            }
        }
    })
}

/// Reads kubesim's scrape counters every `period` until aborted.
pub fn spawn_scrapes(
    cluster: kubesim::Cluster,
    clients: Clients,
    period: Duration,
    tx: UnboundedSender<Observation>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let stats = cluster.kubelet_stats().await;
            let per_node = stats.into_iter().map(|(n, s)| (n, s.scrapes)).collect();
            let _ = tx.send(Observation::Scrapes {
                at: clients.now(),
                per_node,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples() {
        let text = "ha_metrics_server_coordinator_is_leader 1\nha_metrics_server_coordinator_term 3\n\
                    ha_metrics_server_shard_map_epoch 9\nha_metrics_server_shards{role=\"primary\"} 4\n\
                    ha_metrics_server_shards{role=\"standby\"} 5\nha_metrics_server_degraded 0\n";
        let s = sample(text, 1, 2, 10).unwrap();
        assert!(s.leader && !s.degraded);
        assert_eq!((s.term, s.epoch, s.primaries, s.standbys), (3, 9, 4, 5));
    }
}
