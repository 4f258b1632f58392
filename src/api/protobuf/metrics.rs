//! `NodeMetrics`, `PodMetrics` and their lists as protobuf, written straight from the same views
//! the JSON writers take ([`NodeUsage`], [`PodItem`]), field by field as Kubernetes' generated
//! (gogo) marshallers write them: every non-pointer field, even empty (`generateName`, `uid`,
//! ...), map entries sorted by key, `Time` as whole seconds with `nanos` 0 and Go's zero time as
//! an empty message, `Duration` as nanoseconds, quantities as their canonical strings.

use super::wire;
use crate::api::quantity::{push_cpu_nanocores, push_memory_bytes};
use crate::api::types::{ContainerUsage, Labels, ListMeta, NodeUsage, PodItem};

/// Field numbers of `ObjectMeta`, in the order gogo writes the ones we fill.
mod object_meta {
    pub const NAME: u8 = 1;
    pub const GENERATE_NAME: u8 = 2;
    pub const NAMESPACE: u8 = 3;
    pub const SELF_LINK: u8 = 4;
    pub const UID: u8 = 5;
    pub const RESOURCE_VERSION: u8 = 6;
    pub const GENERATION: u8 = 7;
    pub const CREATION_TIMESTAMP: u8 = 8;
    pub const LABELS: u8 = 11;
}

/// Bytes a pod list item takes besides its strings, for the buffer estimate.
const ITEM_OVERHEAD: usize = 96;
const CONTAINER_OVERHEAD: usize = 40;

/// `ObjectMeta` of a metrics object: name, namespace, creation time, labels.
fn object_meta(out: &mut Vec<u8>, name: &str, namespace: &str, created_s: i64, labels: Labels<'_>) {
    use object_meta::*;
    wire::string(out, NAME, name);
    wire::string(out, GENERATE_NAME, "");
    wire::string(out, NAMESPACE, namespace);
    wire::string(out, SELF_LINK, "");
    wire::string(out, UID, "");
    wire::string(out, RESOURCE_VERSION, "");
    wire::varint(out, GENERATION, 0);
    wire::message(out, CREATION_TIMESTAMP, |o| time(o, created_s));
    labels.for_each(|k, v| {
        wire::message(out, LABELS, |o| {
            wire::string(o, 1, k);
            wire::string(o, 2, v);
        })
    });
}

/// The fields of a `Time` of `seconds` (Unix); Go's zero time is a message without fields.
fn time(out: &mut Vec<u8>, seconds: i64) {
    wire::int64(out, 1, seconds);
    wire::varint(out, 2, 0);
}

/// Whole seconds of a Unix time in nanoseconds (floor, as Go's `Time.Unix`).
fn seconds(ns: i64) -> i64 {
    ns.div_euclid(1_000_000_000)
}

/// `Duration` of `ns` nanoseconds.
fn duration(out: &mut Vec<u8>, ns: i64) {
    wire::int64(out, 1, ns);
}

/// `ListMeta`: selfLink, resourceVersion, continue (all written, empty when unset).
fn list_meta(out: &mut Vec<u8>, meta: ListMeta<'_>) {
    wire::string(out, 1, "");
    wire::string(out, 2, "");
    wire::string(out, 3, meta.continue_token.unwrap_or(""));
}

/// The entries of a `usage` map (field `number`), sorted: cpu, memory, swap.
fn usage(out: &mut Vec<u8>, number: u8, cpu_nanocores: u64, memory_bytes: u64, swap_bytes: Option<u64>) {
    let entry = |out: &mut Vec<u8>, name: &str, push: &dyn Fn(&mut Vec<u8>)| {
        wire::message(out, number, |o| {
            wire::string(o, 1, name);
            wire::message(o, 2, |q| wire::message(q, 1, push));
        })
    };
    entry(out, "cpu", &|o| push_cpu_nanocores(o, cpu_nanocores));
    entry(out, "memory", &|o| push_memory_bytes(o, memory_bytes));
    if let Some(swap) = swap_bytes {
        entry(out, "swap", &|o| push_memory_bytes(o, swap));
    }
}

/// One `NodeMetrics` message (no envelope); `created_s` is the response's build second.
pub fn node(out: &mut Vec<u8>, item: &NodeUsage<'_>, created_s: i64) {
    wire::message(out, 1, |o| object_meta(o, item.name, "", created_s, item.labels));
    wire::message(out, 2, |o| time(o, seconds(item.timestamp_ns)));
    wire::message(out, 3, |o| duration(o, item.window_ns));
    usage(out, 4, item.cpu_nanocores, item.memory_bytes, item.swap_bytes);
}

/// A `NodeMetricsList` message.
pub fn node_list(out: &mut Vec<u8>, items: &[NodeUsage<'_>], meta: ListMeta<'_>, created_s: i64) {
    wire::message(out, 1, |o| list_meta(o, meta));
    for item in items {
        wire::message(out, 2, |o| node(o, item, created_s));
    }
}

/// One `ContainerMetrics` message.
fn container(out: &mut Vec<u8>, c: &ContainerUsage<'_>) {
    wire::string(out, 1, c.name);
    usage(out, 2, c.cpu_nanocores, c.memory_bytes, c.swap_bytes);
}

/// One `PodMetrics` message. A pod served without containers has Go's zero timestamp (an
/// empty `Time`) and a zero window, as in JSON.
pub fn pod<P: PodItem>(out: &mut Vec<u8>, item: &P, created_s: i64) {
    wire::message(out, 1, |o| {
        object_meta(o, item.name(), item.namespace(), created_s, item.labels())
    });
    let count = item.container_count();
    wire::message(out, 2, |o| {
        if count > 0 {
            time(o, seconds(item.timestamp_ns()))
        }
    });
    let window = if count > 0 { item.window_ns() } else { 0 };
    wire::message(out, 3, |o| duration(o, window));
    for i in 0..count {
        wire::message(out, 4, |o| container(o, &item.container(i)));
    }
}

/// A `PodMetricsList` message.
pub fn pod_list<P: PodItem>(out: &mut Vec<u8>, items: &[P], meta: ListMeta<'_>, created_s: i64) {
    wire::message(out, 1, |o| list_meta(o, meta));
    for item in items {
        wire::message(out, 2, |o| pod(o, item, created_s));
    }
}

/// An upper estimate of a pod list's size, from the strings' lengths.
pub fn pod_list_estimate<P: PodItem>(items: &[P]) -> usize {
    let item = |p: &P| {
        let mut n = ITEM_OVERHEAD + p.namespace().len() + p.name().len();
        p.labels().for_each(|k, v| n += k.len() + v.len() + 8);
        (0..p.container_count()).fold(n, |n, i| n + CONTAINER_OVERHEAD + p.container(i).name.len())
    };
    256 + items.iter().map(item).sum::<usize>()
}
