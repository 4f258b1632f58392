//! Replica lifecycle as the runner sees it: every start, kill, freeze and stop also updates the
//! timeline, what the monitor samples, what direct clients may ask, and the aggregation
//! proxy's endpoints.

use super::Runner;
use super::journal::Target;
use super::monitor::Watched;
use super::replicas::State;
use std::time::{Duration, Instant};

impl Runner {
    fn mark(&self, i: usize, state: &str) {
        let now = self.clients.now();
        self.timeline
            .lock()
            .expect("timeline lock")
            .replica_state(i, state, now);
        let r = &self.set.replicas[i];
        self.watched.lock().expect("watch lock")[i] = Watched {
            port: r.port,
            incarnation: r.incarnation,
            running: r.state == State::Running,
        };
        if r.state != State::Running {
            self.serving.lock().expect("serving lock")[i] = None;
        }
        self.cluster.set_replicas(&self.set.proxy_addresses());
    }

    pub fn start(&mut self, i: usize, fresh: bool) -> anyhow::Result<()> {
        self.set.start(i, fresh, self.partitioner.as_ref())?;
        self.mark(i, if fresh { "running (fresh)" } else { "running" });
        Ok(())
    }

    pub async fn kill(&mut self, i: usize) {
        self.serving.lock().expect("serving lock")[i] = None;
        self.set.kill(i).await;
        self.mark(i, "down");
    }

    /// SIGTERM, as a pod deletion sends it: the endpoint leaves the aggregation proxy first (a
    /// terminating pod is no ready endpoint), then the replica drains, leaves and exits.
    pub async fn terminate(&mut self, i: usize) {
        self.serving.lock().expect("serving lock")[i] = None;
        let port = format!("127.0.0.1:{}", self.set.replicas[i].port);
        let others: Vec<String> = self.set.proxy_addresses().into_iter().filter(|a| *a != port).collect();
        self.cluster.set_replicas(&others);
        self.set.terminate(i, Duration::from_secs(25)).await;
        self.mark(i, "down");
    }

    pub fn freeze(&mut self, i: usize) {
        self.serving.lock().expect("serving lock")[i] = None;
        self.set.freeze(i);
        self.mark(i, "frozen");
    }

    pub fn thaw(&mut self, i: usize) {
        self.set.thaw(i);
        self.mark(i, "running");
    }

    /// Waits until the monitor saw replica `i` ready.
    pub async fn wait_serving(&self, i: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < super::faults::ready_limit() {
            if self.serving.lock().expect("serving lock")[i].is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "r{i} not ready after {:?}; see {}",
            started.elapsed(),
            self.set.replicas[i].log.display()
        )
    }

    /// The replica that says it leads, if one does.
    pub async fn leader(&self) -> Option<usize> {
        for i in self.set.in_state(State::Running) {
            let port = self.set.replicas[i].port;
            let Ok(body) = self.clients.get(Target::Replica(i), port, "/metrics").await else {
                continue;
            };
            let text = String::from_utf8_lossy(&body);
            if text.lines().any(|l| l == "ha_metrics_server_coordinator_is_leader 1") {
                return Some(i);
            }
        }
        None
    }
}
