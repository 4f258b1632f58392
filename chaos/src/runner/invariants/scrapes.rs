//! Each kubelet is scraped at most once per interval outside handoffs: over quiet stretches (no
//! fault active or ended within three resolutions, no replica in quorum-loss mode) every
//! healthy node gets at most `W + 1` scrapes in `W` intervals.

use super::{Context, Invariant, Tally, Verdict};
use crate::runner::journal::{Observation, RunMs};
use std::collections::{BTreeMap, VecDeque};

/// Intervals per judged window.
const WINDOW: i64 = 3;

#[derive(Default)]
pub struct OneScrapePerInterval {
    tally: Tally,
    history: VecDeque<(RunMs, BTreeMap<String, u64>)>,
    last_degraded: Option<RunMs>,
    /// Scrapes per node per interval over judged windows: sum and count, and the maximum over
    /// every window (faults included).
    judged: (f64, u64),
    max_any: f64,
}

impl Invariant for OneScrapePerInterval {
    fn name(&self) -> &'static str {
        "one-scrape-per-interval"
    }

    fn rule(&self) -> &'static str {
        "outside faults and handoffs each kubelet is scraped at most once per interval (W+1 in W intervals)"
    }

    fn observe(&mut self, observation: &Observation, ctx: &Context) {
        match observation {
            Observation::Replica(s) if s.degraded => self.last_degraded = Some(s.at),
            Observation::Scrapes { at, per_node } => self.judge(*at, per_node, ctx),
            _ => {}
        }
    }

    fn verdict(&self) -> Verdict {
        let mean = if self.judged.1 == 0 {
            0.0
        } else {
            self.judged.0 / self.judged.1 as f64
        };
        let stats =
            serde_json::json!({"meanPerNodePerIntervalWhenQuiet": mean, "maxPerNodePerIntervalAny": self.max_any});
        self.tally.verdict(self, stats)
    }
}

impl OneScrapePerInterval {
    fn judge(&mut self, at: RunMs, per_node: &BTreeMap<String, u64>, ctx: &Context) {
        let span = WINDOW * ctx.resolution_ms;
        self.history.push_back((at, per_node.clone()));
        // The newest sample at least one window old starts the judged window.
        let Some(first) = self.history.iter().rposition(|(t, _)| *t <= at - span) else {
            return;
        };
        self.history.drain(..first);
        let (from, before) = (&self.history[0].0, &self.history[0].1);
        let intervals = (at - from) as f64 / ctx.resolution_ms as f64;
        let settle = 3 * ctx.resolution_ms;
        let quiet = ctx.timeline.quiet(from - settle, at) && self.last_degraded.is_none_or(|d| d < from - settle);
        for (node, now) in per_node {
            let Some(then) = before.get(node) else { continue };
            let rate = (now - then) as f64 / intervals;
            self.max_any = self.max_any.max(rate);
            if !quiet {
                continue;
            }
            self.tally.checked += 1;
            self.judged.0 += rate;
            self.judged.1 += 1;
            if (now - then) as f64 > intervals.ceil() + 1.0 {
                let msg = format!("{node} scraped {} times in {intervals:.1} intervals", now - then);
                self.tally.fail(self.name(), at, msg);
            }
        }
    }
}
