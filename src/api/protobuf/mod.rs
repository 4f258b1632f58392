//! Protobuf bodies (`Accept: application/vnd.kubernetes.protobuf`), which kubectl `top` and
//! client-go's metrics clients ask for first and the generic apiserver metrics-server builds on
//! answers with: the magic `k8s\0`, then a `runtime.Unknown` whose `typeMeta` names the object
//! (`metrics.k8s.io/v1beta1` `PodMetricsList`, `v1` `Status`, ...) and whose `raw` holds the
//! object's own message (apimachinery `runtime/serializer/protobuf`).
//!
//! Sits beside the JSON writers at the end of the read path: [`metrics`] writes the metrics
//! messages from the same views, [`envelope`] wraps them, `api::error` writes `Status` with the
//! same [`wire`] helpers, and [`messages`] has prost structs that decode all of it.

pub mod messages;
pub mod metrics;
pub mod wire;

use crate::api::types::{ApiVersion, ListMeta, NodeUsage, PodItem};

/// `Content-Type` of a protobuf answer.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// `k8s\0` + `runtime.Unknown { typeMeta: {apiVersion, kind}, raw, contentEncoding: "",
/// contentType: "" }`, the raw message written by `raw`. `capacity` is a size estimate.
pub fn envelope(api_version: &str, kind: &str, capacity: usize, raw: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity + 64);
    out.extend_from_slice(MAGIC);
    wire::message(&mut out, 1, |o| {
        wire::string(o, 1, api_version);
        wire::string(o, 2, kind);
    });
    wire::message(&mut out, 2, raw);
    wire::string(&mut out, 3, "");
    wire::string(&mut out, 4, "");
    out
}

/// Whole seconds of a build time in nanoseconds.
fn created_s(now_ns: i64) -> i64 {
    now_ns.div_euclid(1_000_000_000)
}

/// `GET .../nodes/{name}`.
pub fn node_metrics(item: &NodeUsage<'_>, version: ApiVersion, now_ns: i64) -> Vec<u8> {
    envelope(version.group_version(), "NodeMetrics", 256, |o| {
        metrics::node(o, item, created_s(now_ns))
    })
}

/// `GET .../nodes`.
pub fn node_list(items: &[NodeUsage<'_>], version: ApiVersion, meta: ListMeta<'_>, now_ns: i64) -> Vec<u8> {
    envelope(
        version.group_version(),
        "NodeMetricsList",
        64 + 256 * items.len(),
        |o| metrics::node_list(o, items, meta, created_s(now_ns)),
    )
}

/// `GET .../namespaces/{ns}/pods/{name}`.
pub fn pod_metrics<P: PodItem>(item: &P, version: ApiVersion, now_ns: i64) -> Vec<u8> {
    let capacity = metrics::pod_list_estimate(std::slice::from_ref(item));
    envelope(version.group_version(), "PodMetrics", capacity, |o| {
        metrics::pod(o, item, created_s(now_ns))
    })
}

/// `GET .../pods` and `.../namespaces/{ns}/pods`.
pub fn pod_list<P: PodItem>(items: &[P], version: ApiVersion, meta: ListMeta<'_>, now_ns: i64) -> Vec<u8> {
    envelope(
        version.group_version(),
        "PodMetricsList",
        metrics::pod_list_estimate(items),
        |o| metrics::pod_list(o, items, meta, created_s(now_ns)),
    )
}

#[cfg(test)]
mod tests;
