//! Stall detection. A replica that was frozen (SIGSTOP, a paused VM, a starved CPU quota)
//! wakes up believing what it believed before: the old shard map, its peers unreachable (their
//! last pings are old), its points older than the ones the others served meanwhile. Until it
//! has caught up, its own data is the last source for a read, never the first, and the leader
//! makes no Up/Down decisions from its outdated ping table.
//!
//! A task beats every [`BEAT_INTERVAL`]; a beat later than [`STALL_THRESHOLD`] means the process
//! did not run. Readers check the beat themselves, because requests queued during the freeze
//! may be served before the beat task runs again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the stall watch beats.
pub const BEAT_INTERVAL: Duration = Duration::from_millis(500);
/// A beat this late means the process was stopped (or starved) meanwhile.
pub const STALL_THRESHOLD: Duration = Duration::from_secs(1);

pub struct StallWatch {
    /// After a stall this replica distrusts its own view for this long.
    settle: Duration,
    state: Mutex<State>,
}

struct State {
    last_beat: Instant,
    resumed_at: Option<Instant>,
}

impl StallWatch {
    /// A watch whose post-stall caution lasts `settle` (one scrape interval renews the points).
    pub fn new(settle: Duration) -> StallWatch {
        StallWatch {
            settle,
            state: Mutex::new(State {
                last_beat: Instant::now(),
                resumed_at: None,
            }),
        }
    }

    /// Records a beat; returns how long the process was stalled if the beat came late.
    pub fn beat(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("stall lock");
        let gap = now.saturating_duration_since(state.last_beat);
        state.last_beat = now;
        (gap > STALL_THRESHOLD).then(|| {
            state.resumed_at = Some(now);
            gap
        })
    }

    /// Whether this replica is stalled (its beat is overdue) or resumed less than the settle
    /// time ago.
    pub fn unsettled(&self) -> bool {
        let now = Instant::now();
        let state = self.state.lock().expect("stall lock");
        now.saturating_duration_since(state.last_beat) > STALL_THRESHOLD
            || state
                .resumed_at
                .is_some_and(|t| now.saturating_duration_since(t) < self.settle)
    }

    /// When this process last resumed after a stall, if it ever stalled.
    pub fn resumed_at(&self) -> Option<Instant> {
        self.state.lock().expect("stall lock").resumed_at
    }

    /// Whether this process stalled at some point after `since`: it resumed after it, or its
    /// beat is overdue now (stopped until a moment ago; the beat task has not run yet).
    pub fn stalled_since(&self, since: Instant) -> bool {
        let now = Instant::now();
        let state = self.state.lock().expect("stall lock");
        now.saturating_duration_since(state.last_beat) > STALL_THRESHOLD || state.resumed_at.is_some_and(|t| t > since)
    }

    /// Beats until the process ends, logging every stall.
    pub async fn run(self: std::sync::Arc<Self>) {
        loop {
            tokio::time::sleep(BEAT_INTERVAL).await;
            if let Some(gap) = self.beat() {
                tracing::warn!(
                    stalled_ms = gap.as_millis() as u64,
                    settle_ms = self.settle.as_millis() as u64,
                    "this replica did not run for a while (frozen or starved): \
                     its own data is read last until it has caught up"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_beat_unsettles_until_the_settle_time_has_passed() {
        let watch = StallWatch::new(Duration::from_millis(50));
        assert!(!watch.unsettled());
        assert_eq!(watch.beat(), None);
        watch.state.lock().unwrap().last_beat -= STALL_THRESHOLD * 2;
        assert!(watch.unsettled(), "an overdue beat counts before the beat task runs");
        assert!(watch.beat().is_some_and(|gap| gap >= STALL_THRESHOLD * 2));
        assert!(watch.unsettled(), "settling after the stall");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!watch.unsettled());
        assert_eq!(watch.beat(), None);
    }

    #[test]
    fn a_stall_counts_for_work_that_began_before_it_only() {
        let watch = StallWatch::new(Duration::from_millis(50));
        let before = Instant::now();
        assert!(!watch.stalled_since(before));
        watch.state.lock().unwrap().last_beat -= STALL_THRESHOLD * 2;
        assert!(watch.stalled_since(before), "stopped until now: the beat is overdue");
        watch.beat();
        assert!(watch.stalled_since(before), "resumed after the work began");
        let after = Instant::now();
        assert!(
            !watch.stalled_since(after),
            "work begun after the stall is not affected"
        );
    }
}
