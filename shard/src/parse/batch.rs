//! Collects samples into points: the node's, and each container's grouped by pod in the
//! order first seen, then applies metrics-server's completeness rules.

use super::labels::Labels;
use super::line::{LineError, Series};
use super::{ContainerPoint, DecodeStats, PodBatch};
use crate::point::{MetricsPoint, Nanos};
use std::borrow::Cow;
use std::collections::HashMap;

/// `(namespace, pod, container)`.
type ContainerKey<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);
/// `(namespace, pod)`.
type PodKey<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Points under construction. The keys clone the body-borrowed names, which costs nothing;
/// only escaped names are owned.
#[derive(Default)]
pub(super) struct Builder<'a> {
    node: MetricsPoint,
    pods: Vec<PodBatch<'a>>,
    pod_slots: HashMap<PodKey<'a>, usize>,
    container_slots: HashMap<ContainerKey<'a>, (usize, usize)>,
}

impl<'a> Builder<'a> {
    /// The point a sample of `series` goes to: the node's, or the container's named by
    /// `labels` (created on first sight).
    pub(super) fn point(
        &mut self,
        series: Series,
        labels: Labels<'a>,
    ) -> Result<&mut MetricsPoint, LineError> {
        if !series.is_container() {
            return Ok(&mut self.node);
        }
        let (pod, container) = self.slot(labels.into_key()?);
        Ok(&mut self.pods[pod].containers[container].point)
    }

    /// Drops a node series whose line did not parse; container series are left alone (their
    /// labels, which name them, are what did not parse).
    pub(super) fn drop_node_series(&mut self, series: Series) {
        if !series.is_container() {
            clear(&mut self.node, series);
        }
    }

    /// `(pod index, container index)` of a container, created on first sight.
    fn slot(&mut self, key: ContainerKey<'a>) -> (usize, usize) {
        if let Some(&slot) = self.container_slots.get(&key) {
            return slot;
        }
        let (namespace, name, container) = key.clone();
        let pods = &mut self.pods;
        let pod = *self
            .pod_slots
            .entry((namespace.clone(), name.clone()))
            .or_insert_with(|| {
                let containers = Vec::new();
                pods.push(PodBatch { namespace, name, containers });
                pods.len() - 1
            });
        let containers = &mut pods[pod].containers;
        containers.push(ContainerPoint {
            name: container,
            point: MetricsPoint::default(),
        });
        let slot = (pod, containers.len() - 1);
        self.container_slots.insert(key, slot);
        slot
    }

    /// The node's point if complete, and the complete pods; counts what was left out.
    pub(super) fn finish(
        self,
        stats: &mut DecodeStats,
    ) -> (Option<MetricsPoint>, Vec<PodBatch<'a>>) {
        let node = Some(self.node).filter(|n| n.timestamp != 0 && complete(n));
        stats.node_incomplete = node.is_none();
        let mut pods = self.pods;
        let before = pods.len();
        pods.retain(|pod| pod.containers.iter().all(|c| complete(&c.point)));
        stats.dropped_pods = (before - pods.len()) as u32;
        (node, pods)
    }
}

/// metrics-server's `checkContainerMetrics`: CPU and memory both non-zero.
fn complete(point: &MetricsPoint) -> bool {
    point.cumulative_cpu != 0 && point.memory != 0
}

/// Sets the field `series` measures, and the point's timestamp for CPU and memory (so the
/// later of the two lines wins). `value` comes from `value::convert`, so a start time fits.
pub(super) fn set(point: &mut MetricsPoint, series: Series, value: u64, timestamp: Nanos) {
    match series {
        Series::ContainerCpu | Series::NodeCpu => {
            point.cumulative_cpu = value;
            point.timestamp = timestamp;
        }
        Series::ContainerMemory | Series::NodeMemory => {
            point.memory = value;
            point.timestamp = timestamp;
        }
        Series::ContainerStart => point.start_time = value as Nanos,
    }
}

/// Drops the field `series` measures, for a line whose value or timestamp was bad.
pub(super) fn clear(point: &mut MetricsPoint, series: Series) {
    match series {
        Series::ContainerCpu | Series::NodeCpu => point.cumulative_cpu = 0,
        Series::ContainerMemory | Series::NodeMemory => point.memory = 0,
        Series::ContainerStart => point.start_time = 0,
    }
}
