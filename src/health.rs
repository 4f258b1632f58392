//! `/livez`, `/readyz`, `/healthz` with metrics-server's check names, `?verbose`, `?exclude=`
//! and per-check paths, answered the way the generic apiserver's healthz handler answers.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

/// What the checks look at.
pub trait HealthSource: Send + Sync {
    /// Informers have synced (node and pod caches).
    fn informers_synced(&self) -> bool;
    /// At least one node and one pod can be served.
    fn storage_ready(&self) -> bool;
    /// The pod metadata watch runs.
    fn metadata_informer_running(&self) -> bool;
    /// Since when (Unix ns) this replica scrapes some shard; `None` while it scrapes none (a
    /// replica with peers may hold no primary shard: it has nothing to collect).
    fn scraping_since(&self) -> Option<i64>;
}

/// Liveness and readiness state shared by the checks.
pub struct Health<S> {
    pub source: S,
    pub resolution: Duration,
    /// Unix ns of the latest scrape tick start (0 before the first).
    pub last_tick: std::sync::Arc<AtomicI64>,
    pub shutting_down: AtomicBool,
}

/// One named check; `Err` carries the reason.
type Check<S> = (&'static str, fn(&Health<S>, i64) -> Result<(), String>);

fn ok<S>(_: &Health<S>, _: i64) -> Result<(), String> {
    Ok(())
}

fn storage_ready<S: HealthSource>(h: &Health<S>, _: i64) -> Result<(), String> {
    if h.source.storage_ready() {
        Ok(())
    } else {
        Err("no metrics to serve".into())
    }
}

fn informer_sync<S: HealthSource>(h: &Health<S>, _: i64) -> Result<(), String> {
    if h.source.informers_synced() {
        Ok(())
    } else {
        Err("informers not synced".into())
    }
}

fn shutdown<S>(h: &Health<S>, _: i64) -> Result<(), String> {
    if h.shutting_down.load(Ordering::Relaxed) {
        Err("process is shutting down".into())
    } else {
        Ok(())
    }
}

fn metadata_sync<S: HealthSource>(h: &Health<S>, _: i64) -> Result<(), String> {
    if h.source.metadata_informer_running() {
        Ok(())
    } else {
        Err("the pod metadata informer is not running".into())
    }
}

/// Fails if this replica scrapes shards and the last tick started more than 1.5 x resolution
/// ago, counting from when it started scraping (passes before the first tick, and while it
/// scrapes nothing: a replica that holds no primary shard is not stuck).
fn collection_timely<S: HealthSource>(h: &Health<S>, now: i64) -> Result<(), String> {
    let Some(since) = h.source.scraping_since() else {
        return Ok(());
    };
    let last = h.last_tick.load(Ordering::Relaxed).max(since);
    let limit = h.resolution.mul_f64(1.5).as_nanos() as i64;
    if now - last <= limit {
        Ok(())
    } else {
        Err(format!(
            "metric collection didn't finish on time; last tick started {:.1}s ago",
            (now - last) as f64 / 1e9
        ))
    }
}

const COMMON: [&str; 4] = [
    "ping",
    "log",
    "poststarthook/max-in-flight-filter",
    "poststarthook/storage-object-count-tracker-hook",
];

impl<S: HealthSource> Health<S> {
    /// The checks of `/readyz`, `/livez` or `/healthz`, in metrics-server's order.
    fn checks(endpoint: &str) -> Vec<Check<S>> {
        let mut checks: Vec<Check<S>> = COMMON
            .iter()
            .map(|&n| (n, ok as fn(&Health<S>, i64) -> Result<(), String>))
            .collect();
        match endpoint {
            "readyz" => checks.extend([
                (
                    "metric-storage-ready",
                    storage_ready as fn(&Health<S>, i64) -> Result<(), String>,
                ),
                ("metric-informer-sync", informer_sync),
                ("metadata-informer-sync", metadata_sync),
                ("shutdown", shutdown),
            ]),
            "livez" => checks.extend([
                (
                    "metric-collection-timely",
                    collection_timely as fn(&Health<S>, i64) -> Result<(), String>,
                ),
                ("metadata-informer-sync", metadata_sync),
            ]),
            _ => checks.push(("metadata-informer-sync", metadata_sync)),
        }
        checks
    }

    /// Answers `/<endpoint>[/<check>]?verbose&exclude=...`: (status code, text body).
    pub fn answer(
        &self,
        endpoint: &str,
        check: Option<&str>,
        verbose: bool,
        exclude: &[String],
        now: i64,
    ) -> (u16, String) {
        let checks = Self::checks(endpoint);
        if let Some(name) = check {
            return match checks.iter().find(|(n, _)| *n == name) {
                Some((_, run)) => match run(self, now) {
                    Ok(()) => (200, "ok".into()),
                    Err(e) => (500, format!("internal server error: {e}\n")),
                },
                None => (404, "404 page not found\n".into()),
            };
        }
        let mut body = String::new();
        let mut failed = false;
        for (name, run) in checks.iter().filter(|(n, _)| !exclude.iter().any(|e| e == n)) {
            match run(self, now) {
                Ok(()) => body.push_str(&format!("[+]{name} ok\n")),
                Err(_) => {
                    failed = true;
                    body.push_str(&format!("[-]{name} failed: reason withheld\n"));
                }
            }
        }
        for name in exclude.iter().filter(|e| checks.iter().any(|(n, _)| n == e)) {
            body.push_str(&format!("[+]{name} excluded: ok\n"));
        }
        match (failed, verbose) {
            (true, _) => (500, format!("{body}{endpoint} check failed\n")),
            (false, true) => (200, format!("{body}{endpoint} check passed\n")),
            (false, false) => (200, "ok".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Fake {
        synced: bool,
        ready: bool,
        metadata: bool,
        scraping_since: Option<i64>,
    }

    impl HealthSource for Fake {
        fn informers_synced(&self) -> bool {
            self.synced
        }
        fn storage_ready(&self) -> bool {
            self.ready
        }
        fn metadata_informer_running(&self) -> bool {
            self.metadata
        }
        fn scraping_since(&self) -> Option<i64> {
            self.scraping_since
        }
    }

    fn health(synced: bool, ready: bool, last_tick: i64) -> Health<Fake> {
        let source = Fake {
            synced,
            ready,
            metadata: true,
            scraping_since: Some(0),
        };
        Health {
            source,
            resolution: Duration::from_secs(15),
            last_tick: Arc::new(AtomicI64::new(last_tick)),
            shutting_down: AtomicBool::new(false),
        }
    }

    #[test]
    fn readyz_lists_metrics_server_checks_in_order() {
        let (code, body) = health(true, true, 0).answer("readyz", None, true, &[], 0);
        assert_eq!(code, 200);
        let names: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("[+]"))
            .map(|l| l.trim_end_matches(" ok"))
            .collect();
        assert_eq!(
            names,
            [
                "ping",
                "log",
                "poststarthook/max-in-flight-filter",
                "poststarthook/storage-object-count-tracker-hook",
                "metric-storage-ready",
                "metric-informer-sync",
                "metadata-informer-sync",
                "shutdown"
            ]
        );
        assert!(body.ends_with("readyz check passed\n"));
        assert_eq!(
            health(true, true, 0).answer("readyz", None, false, &[], 0),
            (200, "ok".into())
        );
    }

    #[test]
    fn livez_checks_and_timeliness() {
        let now = 100_000_000_000;
        let (code, body) = health(true, false, now - 20_000_000_000).answer("livez", None, true, &[], now);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("[+]metric-collection-timely ok"));
        let (code, body) = health(true, false, now - 23_000_000_000).answer("livez", None, false, &[], now);
        assert_eq!(code, 500);
        assert!(
            body.contains("[-]metric-collection-timely failed: reason withheld")
                && body.ends_with("livez check failed\n")
        );
    }

    #[test]
    fn not_ready_without_metrics_and_per_check_paths_and_exclude() {
        let h = health(true, false, 0);
        assert_eq!(h.answer("readyz", None, false, &[], 0).0, 500);
        assert_eq!(
            h.answer("readyz", Some("metric-storage-ready"), false, &[], 0),
            (500, "internal server error: no metrics to serve\n".into())
        );
        assert_eq!(h.answer("readyz", Some("ping"), false, &[], 0), (200, "ok".into()));
        assert_eq!(
            h.answer("readyz", None, false, &["metric-storage-ready".into()], 0).0,
            200
        );
        h.shutting_down.store(true, Ordering::Relaxed);
        assert_eq!(h.answer("readyz", Some("shutdown"), false, &[], 0).0, 500);
    }

    #[test]
    fn a_replica_that_scrapes_nothing_is_alive_and_one_that_just_started_is_given_time() {
        let now = 100_000_000_000;
        let mut h = health(true, true, now - 60_000_000_000);
        assert_eq!(
            h.answer("livez", Some("metric-collection-timely"), false, &[], now).0,
            500
        );
        h.source.scraping_since = None;
        assert_eq!(
            h.answer("livez", Some("metric-collection-timely"), false, &[], now).0,
            200,
            "no primary shard: nothing to collect, nothing stuck"
        );
        h.source.scraping_since = Some(now - 5_000_000_000);
        assert_eq!(
            h.answer("livez", Some("metric-collection-timely"), false, &[], now).0,
            200,
            "scraping again since 5 s: its first tick is not due yet"
        );
    }

    #[test]
    fn metadata_informer_sync_fails_when_the_pod_metadata_watch_stopped() {
        let mut h = health(true, true, 0);
        assert_eq!(h.answer("livez", Some("metadata-informer-sync"), false, &[], 0).0, 200);
        h.source.metadata = false;
        for endpoint in ["livez", "readyz", "healthz"] {
            assert_eq!(h.answer(endpoint, None, false, &[], 0).0, 500, "{endpoint}");
        }
    }
}
