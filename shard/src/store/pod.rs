//! A pod's entry (its containers' last two points, kept sorted by name and updated in place) and
//! metrics-server's container rule (`podStorage.Store` and `GetMetrics`, metrics-server v0.8
//! `pkg/storage/pod.go`).

use std::sync::Arc;

use hashbrown::HashSet;

use super::node::next_prev;
use super::rate::rate;
use super::{FRESH_CONTAINER_MIN_AGE, PodMetrics, intern_name};
use crate::point::{MetricsPoint, Nanos};

/// What the store keeps for one pod.
#[derive(Debug, Clone, Default)]
pub(super) struct PodEntry {
    /// The node whose scrape reported the pod last (the last report wins).
    pub node: Arc<str>,
    /// Local time (Unix ns) of that report; drives expiry.
    pub received: Nanos,
    /// The store's scrape sequence number of that report: finds duplicates within a scrape and
    /// pods a node's next scrape no longer reports.
    pub seen: u64,
    /// Sorted by name, unique.
    pub containers: Vec<ContainerEntry>,
}

/// One container's points.
#[derive(Debug, Clone)]
pub(super) struct ContainerEntry {
    pub name: Arc<str>,
    pub last: MetricsPoint,
    pub prev: Option<MetricsPoint>,
    /// Reported by the scrape being applied; false between scrapes.
    seen: bool,
    /// Absent from the pod's last report though in the one before: kept one report longer,
    /// without a previous point, so the pod is not served for a window that has no sample of
    /// it (whole-pod accuracy); forgotten if the next report lacks it too. Its `last` pairs
    /// with its next point if it comes back.
    missing: bool,
}

impl ContainerEntry {
    pub fn new(name: Arc<str>, last: MetricsPoint, prev: Option<MetricsPoint>) -> Self {
        Self {
            name,
            last,
            prev,
            seen: false,
            missing: false,
        }
    }

    /// Keeps a container the report being applied lacks, once (see `missing`).
    fn keep_if_just_missing(&mut self) -> bool {
        if std::mem::take(&mut self.seen) {
            self.missing = false;
            return true;
        }
        if self.missing {
            return false;
        }
        (self.missing, self.prev) = (true, None);
        true
    }
}

impl PodEntry {
    /// Applies a scrape's containers: the container rule for each, in place; a container the
    /// scrape does not report is kept without a previous point for one report (the pod is not
    /// served meanwhile), then forgotten; a name repeated within the scrape keeps its first
    /// point; a point older than the container's last one is ignored (see the store's deliberate
    /// differences). A container it did not have takes its name from `names` (allocated if new
    /// there). Returns whether some container took a new point.
    pub fn update(
        &mut self,
        containers: &[(&str, MetricsPoint)],
        resolution: Nanos,
        names: &mut HashSet<Arc<str>>,
    ) -> bool {
        self.containers
            .reserve_exact(containers.len().saturating_sub(self.containers.len()));
        let (mut added, mut changed) = (false, false);
        for (name, new) in containers {
            match self.containers.iter_mut().find(|c| &*c.name == *name) {
                Some(c) if c.seen => {}
                Some(c) if new.timestamp < c.last.timestamp => c.seen = true,
                Some(c) => {
                    c.prev = container_prev(new, Some(c), resolution);
                    c.last = *new;
                    c.seen = true;
                    changed = true;
                }
                None => {
                    let prev = container_prev(new, None, resolution);
                    let name = intern_name(names, name);
                    self.containers.push(ContainerEntry {
                        seen: true,
                        ..ContainerEntry::new(name, *new, prev)
                    });
                    (added, changed) = (true, true);
                }
            }
        }
        self.containers.retain_mut(ContainerEntry::keep_if_just_missing);
        if added {
            self.containers.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
        changed
    }

    /// Whether the pod counts as having a previous point (metrics-server's `prev` map holds a pod
    /// when at least one container has one).
    pub fn has_prev(&self) -> bool {
        self.containers.iter().any(|c| c.prev.is_some())
    }

    /// Containers that have a previous point (`storage_points{type="container"}`).
    pub fn containers_with_prev(&self) -> usize {
        self.containers.iter().filter(|c| c.prev.is_some()).count()
    }

    /// The pod's metrics: `None` unless every container has a previous point and a rate
    /// (whole-pod accuracy, metrics-server PR #1781: a pod one of whose containers has no valid
    /// sample this window, missing, restarted or with a counter that went back, is left out, not
    /// under-reported, since the HPA treats a missing pod conservatively and an under-reported one
    /// as idle).
    /// Timestamp and window are those of the container with the earliest newer point; on a tie,
    /// the first by name.
    pub fn metrics(&self) -> Option<PodMetrics> {
        if self.containers.is_empty() {
            return None;
        }
        let mut pod = PodMetrics {
            timestamp: 0,
            window: 0,
            containers: Vec::with_capacity(self.containers.len()),
        };
        for c in &self.containers {
            let rate = rate(&c.last, c.prev.as_ref()?).ok()?;
            if pod.containers.is_empty() || rate.timestamp < pod.timestamp {
                (pod.timestamp, pod.window) = (rate.timestamp, rate.window);
            }
            pod.containers.push((c.name.clone(), rate.usage));
        }
        Some(pod)
    }
}

/// The container rule: the point to keep as `prev` when `new` arrives for a container whose entry
/// (from the pod's last report) is `old`.
///
/// - a fresh container (started 10 s to one resolution before `new`) gets a synthesised point at
///   its start time with zero CPU, so it is served after one scrape, window = its age;
/// - else, if the container has not restarted since `old.last` (`start_time < last.timestamp`),
///   the node rule applies;
/// - else (restart, new container or new pod) none.
pub(super) fn container_prev(
    new: &MetricsPoint,
    old: Option<&ContainerEntry>,
    resolution: Nanos,
) -> Option<MetricsPoint> {
    if is_fresh(new, resolution) {
        return Some(MetricsPoint {
            timestamp: new.start_time,
            cumulative_cpu: 0,
            ..*new
        });
    }
    let old = old.filter(|old| new.start_time < old.last.timestamp)?;
    next_prev(new, Some(&old.last), old.prev.as_ref())
}

/// `start < timestamp` and `10 s <= timestamp - start < resolution`. A start time of 0 means
/// unknown and is never fresh (metrics-server's zero time is year 1, just as never fresh).
fn is_fresh(new: &MetricsPoint, resolution: Nanos) -> bool {
    let age = new.timestamp.checked_sub(new.start_time);
    new.start_time != 0 && age.is_some_and(|age| (FRESH_CONTAINER_MIN_AGE..resolution).contains(&age))
}
