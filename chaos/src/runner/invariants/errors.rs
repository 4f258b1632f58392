//! No client-visible error, except a request to a replica that was killed, frozen or restarted
//! (through the proxy: any replica; straight at a replica: that one), while it was in flight or
//! before the proxy's readiness probe took the replica out: the proxy, like kube-aggregator,
//! does not retry a failed request on another replica.

use super::{Context, Invariant, Tally, Verdict};
use crate::runner::journal::{Observation, Outcome, RunMs, Target};
use std::collections::BTreeMap;

/// How long after a disruption ends a failed request is still excused: the replicas' readiness
/// probe in a run (`runner::setup::PROBE`: period 1 s x 2 failures + 1 s timeout) needs up to
/// this long to take a replica out of the proxy's endpoints.
pub const EXCUSE_AFTER_MS: RunMs = 3_000;

#[derive(Default)]
pub struct NoClientErrors {
    tally: Tally,
    /// Requests and errors per target.
    per_target: BTreeMap<String, (u64, u64)>,
}

impl Invariant for NoClientErrors {
    fn name(&self) -> &'static str {
        "no-client-errors"
    }

    fn rule(&self) -> &'static str {
        "every request succeeds, except one to a replica that was killed, frozen or restarted, in flight or before its probe took it out"
    }

    fn observe(&mut self, observation: &Observation, ctx: &Context) {
        let Observation::Request(req) = observation else { return };
        self.tally.checked += 1;
        let key = match req.target {
            Target::Proxy => "proxy".to_string(),
            Target::Replica(i) => format!("r{i}"),
        };
        let counts = self.per_target.entry(key).or_default();
        counts.0 += 1;
        let Outcome::Err(error) = &req.outcome else { return };
        counts.1 += 1;
        let excused = ctx
            .timeline
            .overlapping(req.started, req.ended, EXCUSE_AFTER_MS)
            .any(|f| match req.target {
                Target::Proxy => !f.disrupted.is_empty(),
                Target::Replica(i) => f.disrupted.contains(&i),
            });
        if excused {
            self.tally.excused += 1;
        } else {
            let message = format!("{:?} request to {:?} failed: {error}", req.client, req.target);
            self.tally.fail(self.name(), req.started, message);
        }
    }

    fn verdict(&self) -> Verdict {
        let stats = self
            .per_target
            .iter()
            .map(|(k, (n, e))| {
                let availability = if *n == 0 { 1.0 } else { 1.0 - *e as f64 / *n as f64 };
                (
                    k.clone(),
                    serde_json::json!({"requests": n, "errors": e, "availability": availability}),
                )
            })
            .collect::<serde_json::Map<_, _>>();
        self.tally.verdict(self, serde_json::Value::Object(stats))
    }
}
