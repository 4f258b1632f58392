//! `PodMetricsList` bodies written straight into one pre-sized buffer: no serde, no per-pod view
//! structs, no per-field allocation. Quantities, times and durations are formatted on the stack
//! and strings are copied between quotes unless they need escaping (then the serde path writes
//! them, see [`json::push_str`]). The bytes are exactly those of the serde types in `types.rs`,
//! which the tests keep as the reference.
//!
//! The all-namespace LIST (`kubectl top pods -A`) is the largest and most frequent body; callers
//! hand their own rows in through [`PodItem`], so nothing is copied out of them first.

use super::{ApiVersion, ContainerUsage, Labels, ListMeta, PodUsage, Rfc3339Seconds};
use crate::api::json;
use crate::api::quantity::{push_cpu_nanocores, push_memory_bytes};
use apimachinery::duration::GoDuration;

/// One pod of a list, as whatever the caller keeps it in.
pub trait PodItem {
    fn namespace(&self) -> &str;
    fn name(&self) -> &str;
    fn labels(&self) -> Labels<'_>;
    /// See [`PodUsage::timestamp_ns`].
    fn timestamp_ns(&self) -> i64;
    fn window_ns(&self) -> i64;
    /// How many containers are served.
    fn container_count(&self) -> usize;
    /// Container `i`, `i < container_count()`.
    fn container(&self, i: usize) -> ContainerUsage<'_>;
}

impl PodItem for PodUsage<'_> {
    fn namespace(&self) -> &str {
        self.namespace
    }

    fn name(&self) -> &str {
        self.name
    }

    fn labels(&self) -> Labels<'_> {
        self.labels
    }

    fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }

    fn window_ns(&self) -> i64 {
        self.window_ns
    }

    fn container_count(&self) -> usize {
        self.containers.len()
    }

    fn container(&self, i: usize) -> ContainerUsage<'_> {
        self.containers[i]
    }
}

/// Bytes a list item takes besides its strings (field names, times, quantities), a little more
/// than the usual, so that most lists never grow their buffer.
const ITEM_OVERHEAD: usize = 160;
const CONTAINER_OVERHEAD: usize = 72;

/// An upper estimate of the body's size, from the strings' lengths.
fn estimate<P: PodItem>(items: &[P]) -> usize {
    let item = |p: &P| {
        let mut n = ITEM_OVERHEAD + p.namespace().len() + p.name().len();
        p.labels().for_each(|k, v| n += k.len() + v.len() + 6);
        (0..p.container_count()).fold(n, |n, i| n + CONTAINER_OVERHEAD + p.container(i).name.len())
    };
    128 + items.iter().map(item).sum::<usize>()
}

/// A `PodMetricsList` of `items` in the given order, ending with a newline; `now_ns` is the
/// build time (every item's `creationTimestamp`).
pub fn pod_list<P: PodItem>(items: &[P], version: ApiVersion, meta: ListMeta<'_>, now_ns: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(estimate(items));
    out.extend_from_slice(b"{\"kind\":\"PodMetricsList\",\"apiVersion\":\"");
    out.extend_from_slice(version.group_version().as_bytes());
    out.extend_from_slice(b"\",\"metadata\":");
    json::write(&mut out, &meta);
    out.extend_from_slice(b",\"items\":[");
    let created = Rfc3339Seconds(now_ns).to_ascii();
    let mut times = TimeCache::default();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_item(&mut out, item, &created, &mut times);
    }
    out.extend_from_slice(b"]}\n");
    out
}

/// The last timestamp's text: most pods of a list share their scrape's second.
#[derive(Default)]
struct TimeCache {
    seconds: Option<i64>,
    ascii: [u8; 20],
}

impl TimeCache {
    fn get(&mut self, ns: i64) -> &[u8; 20] {
        let seconds = ns.div_euclid(1_000_000_000);
        if self.seconds != Some(seconds) {
            self.ascii = Rfc3339Seconds(ns).to_ascii();
            self.seconds = Some(seconds);
        }
        &self.ascii
    }
}

/// One untyped `PodMetrics`: `metadata`, `timestamp`, `window`, `containers`.
fn push_item<P: PodItem>(out: &mut Vec<u8>, item: &P, created: &[u8; 20], times: &mut TimeCache) {
    out.extend_from_slice(b"{\"metadata\":{\"name\":");
    json::push_str(out, item.name());
    out.extend_from_slice(b",\"namespace\":");
    json::push_str(out, item.namespace());
    out.extend_from_slice(b",\"creationTimestamp\":\"");
    out.extend_from_slice(created);
    out.push(b'"');
    let labels = item.labels();
    if !labels.is_empty() {
        out.extend_from_slice(b",\"labels\":{");
        let mut first = true;
        labels.for_each(|k, v| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            json::push_str(out, k);
            out.push(b':');
            json::push_str(out, v);
        });
        out.push(b'}');
    }
    let containers = item.container_count();
    if containers == 0 {
        out.extend_from_slice(b"},\"timestamp\":null,\"window\":\"0s\",\"containers\":[");
    } else {
        out.extend_from_slice(b"},\"timestamp\":\"");
        out.extend_from_slice(times.get(item.timestamp_ns()));
        out.extend_from_slice(b"\",\"window\":\"");
        GoDuration(item.window_ns()).push_to(out);
        out.extend_from_slice(b"\",\"containers\":[");
    }
    for i in 0..containers {
        if i > 0 {
            out.push(b',');
        }
        let c = item.container(i);
        out.extend_from_slice(b"{\"name\":");
        json::push_str(out, c.name);
        out.extend_from_slice(b",\"usage\":{\"cpu\":\"");
        push_cpu_nanocores(out, c.cpu_nanocores);
        out.extend_from_slice(b"\",\"memory\":\"");
        push_memory_bytes(out, c.memory_bytes);
        if let Some(swap) = c.swap_bytes {
            out.extend_from_slice(b"\",\"swap\":\"");
            push_memory_bytes(out, swap);
        }
        out.extend_from_slice(b"\"}}");
    }
    out.extend_from_slice(b"]}");
}
