//! Collects samples into points: the node's, and each container's grouped by pod in the
//! order first seen, then applies metrics-server's completeness rules.

use super::labels::{ContainerKey, Labels};
use super::line::{LineError, Series};
use super::{ContainerPoint, DecodeStats, PodBatch};
use crate::point::{MetricsPoint, Nanos};
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// foldhash, several times faster than SipHash on short names. Seeded at random per map, so
/// names chosen in advance (pod names come from cluster users) cannot be made to collide;
/// foldhash calls itself "minimally DoS-resistant", and a body holds at most
/// [`Limits::max_series`](super::Limits::max_series) containers anyway.
type Hasher = foldhash::fast::RandomState;
/// `(namespace, pod)`.
type PodKey<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Which point a line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Node,
    /// An index into [`Builder::seen`].
    Container(usize),
}

/// A container, in the order first seen.
struct Seen<'a> {
    /// Its label block as first written, between `{` and `}`.
    label_block: &'a [u8],
    pod: usize,
    container: usize,
}

/// Points under construction. The map keys clone the body-borrowed names, which costs
/// nothing; only escaped names are owned.
#[derive(Default)]
pub(super) struct Builder<'a> {
    node: MetricsPoint,
    pods: Vec<PodBatch<'a>>,
    seen: Vec<Seen<'a>>,
    /// The index in `seen` of the container whose line probably comes next: the kubelet
    /// writes every container family in the same series order.
    cursor: usize,
    pod_slots: HashMap<PodKey<'a>, usize, Hasher>,
    container_slots: HashMap<ContainerKey<'a>, usize, Hasher>,
}

impl<'a> Builder<'a> {
    /// The container at the cursor, if `rest` (what follows a container series' name) starts
    /// with its label block exactly as first written; and what follows the block. Such a
    /// block parses to the same labels, so it needs no parsing and no hashing.
    pub(super) fn repeated(&mut self, rest: &'a [u8]) -> Option<(Target, &'a [u8])> {
        let block = self.seen.get(self.cursor)?.label_block;
        let end = block.len() + 1;
        let same = rest
            .get(..=end)
            .is_some_and(|r| r[0] == b'{' && r[end] == b'}' && &r[1..end] == block);
        if !same {
            return None;
        }
        self.cursor += 1;
        Some((Target::Container(self.cursor - 1), &rest[end + 1..]))
    }

    /// The point a sample of `series` with `labels` goes to: the node's, or the container's
    /// (created on first sight).
    pub(super) fn target(
        &mut self,
        series: Series,
        labels: Labels<'a>,
        label_block: &'a [u8],
    ) -> Result<Target, LineError> {
        if !series.is_container() {
            return Ok(Target::Node);
        }
        let key = labels.into_key()?;
        let seen = match self.container_slots.entry(key) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => {
                let (pod, container) = add(&mut self.pods, &mut self.pod_slots, new.key());
                self.seen.push(Seen {
                    label_block,
                    pod,
                    container,
                });
                *new.insert(self.seen.len() - 1)
            }
        };
        self.cursor = seen + 1;
        Ok(Target::Container(seen))
    }

    pub(super) fn point(&mut self, target: Target) -> &mut MetricsPoint {
        match target {
            Target::Node => &mut self.node,
            Target::Container(seen) => {
                let Seen { pod, container, .. } = self.seen[seen];
                &mut self.pods[pod].containers[container].point
            }
        }
    }

    /// Drops a node series whose line did not parse; container series are left alone (their
    /// labels, which name them, are what did not parse).
    pub(super) fn drop_node_series(&mut self, series: Series) {
        if !series.is_container() {
            clear(&mut self.node, series);
        }
    }

    /// The node's point if complete, and the complete pods; counts what was left out.
    pub(super) fn finish(self, stats: &mut DecodeStats) -> (Option<MetricsPoint>, Vec<PodBatch<'a>>) {
        let node = Some(self.node).filter(|n| n.timestamp != 0 && complete(n));
        stats.node_incomplete = node.is_none();
        let mut pods = self.pods;
        let before = pods.len();
        pods.retain(|pod| pod.containers.iter().all(|c| complete(&c.point)));
        stats.dropped_pods = (before - pods.len()) as u32;
        (node, pods)
    }
}

/// Adds a container, and its pod on first sight; returns their indices in `pods`.
fn add<'a>(
    pods: &mut Vec<PodBatch<'a>>,
    pod_slots: &mut HashMap<PodKey<'a>, usize, Hasher>,
    (namespace, name, container): &ContainerKey<'a>,
) -> (usize, usize) {
    let pod = *pod_slots.entry((namespace.clone(), name.clone())).or_insert_with(|| {
        let (namespace, name) = (namespace.clone(), name.clone());
        pods.push(PodBatch {
            namespace,
            name,
            containers: Vec::new(),
        });
        pods.len() - 1
    });
    let containers = &mut pods[pod].containers;
    let point = MetricsPoint::default();
    containers.push(ContainerPoint {
        name: container.clone(),
        point,
    });
    (pod, containers.len() - 1)
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
        Series::ContainerSwap | Series::NodeSwap => point.swap = Some(value),
    }
}

/// Drops the field `series` measures, for a line whose value or timestamp was bad.
pub(super) fn clear(point: &mut MetricsPoint, series: Series) {
    match series {
        Series::ContainerCpu | Series::NodeCpu => point.cumulative_cpu = 0,
        Series::ContainerMemory | Series::NodeMemory => point.memory = 0,
        Series::ContainerStart => point.start_time = 0,
        Series::ContainerSwap | Series::NodeSwap => point.swap = None,
    }
}
