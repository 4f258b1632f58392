//! `metrics.k8s.io` objects (`NodeMetrics`, `PodMetrics`, their lists and `ContainerMetrics`) of
//! either served version ([`ApiVersion`]: `v1` and `v1beta1`, identical but for the name)
//! written straight to JSON bytes exactly as metrics-server serialises them.
//!
//! Sits at the end of the read path: handlers gather [`NodeUsage`] / [`PodUsage`] views (store
//! values plus labels from the Node and pod metadata caches), sort them, and call
//! [`node_list_json`], [`pod_metrics_json`] and friends. Nothing here allocates per field: the
//! views borrow, and serde writes into one `Vec<u8>` (metrics-server
//! `pkg/storage/{node,pod}.go`, `k8s.io/metrics` `v1beta1/types.go`).
//!
//! Shapes, with Go's field order:
//! - object: `kind`, `apiVersion`, `metadata {name, namespace?, creationTimestamp, labels?}`,
//!   `timestamp`, `window`, `usage {cpu, memory}` / `containers [{name, usage}]`;
//! - list: `kind`, `apiVersion`, `metadata: {}` (or `{"continue": ...}` for a page that has a
//!   next one), `items` (items carry no kind/apiVersion);
//! - `usage` holds `cpu` and `memory`, and `swap` when the kubelet reported it;
//! - `creationTimestamp` is the response build time; times are RFC 3339 in UTC with whole
//!   seconds (truncated); `window` is a Go duration string; labels are omitted when empty.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use super::json;
use super::quantity::Quantity;
use apimachinery::duration::GoDuration;

mod list;

pub use list::{PodItem, pod_list};

/// The API group served.
pub const GROUP: &str = "metrics.k8s.io";

/// A served version of the group. Both have the same resources, kinds, fields and handlers
/// (KEP-5207: `v1` is `v1beta1` under a GA name); only `apiVersion` differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiVersion {
    V1,
    V1beta1,
}

impl ApiVersion {
    /// Every served version, the preferred (`v1`) first, as discovery lists them.
    pub const ALL: [ApiVersion; 2] = [ApiVersion::V1, ApiVersion::V1beta1];

    /// `v1` or `v1beta1`.
    pub fn version(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V1beta1 => "v1beta1",
        }
    }

    /// `metrics.k8s.io/v1` or `metrics.k8s.io/v1beta1`: the `apiVersion` of its objects.
    pub fn group_version(self) -> &'static str {
        match self {
            ApiVersion::V1 => "metrics.k8s.io/v1",
            ApiVersion::V1beta1 => "metrics.k8s.io/v1beta1",
        }
    }

    /// The version named by a path segment, if served.
    pub fn parse(segment: &str) -> Option<ApiVersion> {
        ApiVersion::ALL.into_iter().find(|v| v.version() == segment)
    }
}

/// A list's `metadata` (`metav1.ListMeta`): empty, or the token of the next page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListMeta<'a> {
    /// `continue`: set when a `limit` cut the list and more items follow.
    pub continue_token: Option<&'a str>,
}

impl Serialize for ListMeta<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(token) = self.continue_token {
            map.serialize_entry("continue", token)?;
        }
        map.end()
    }
}

/// Labels of a Node or pod, borrowed from wherever the caches keep them. Keys should be sorted
/// and unique (Go writes map keys sorted); `Map` always is.
#[derive(Debug, Clone, Copy, Default)]
pub enum Labels<'a> {
    /// No labels: the `labels` field is omitted.
    #[default]
    None,
    /// A map, e.g. k8s-openapi's `ObjectMeta.labels`.
    Map(&'a BTreeMap<String, String>),
    /// Sorted pairs.
    Pairs(&'a [(String, String)]),
    /// Sorted pairs of shared (interned) strings.
    Shared(&'a [(Arc<str>, Arc<str>)]),
}

impl Labels<'_> {
    /// Whether there is no label at all.
    pub fn is_empty(&self) -> bool {
        match self {
            Labels::None => true,
            Labels::Map(map) => map.is_empty(),
            Labels::Pairs(pairs) => pairs.is_empty(),
            Labels::Shared(pairs) => pairs.is_empty(),
        }
    }
}

impl<'a> Labels<'a> {
    /// Calls `f` with every `(key, value)`, in order.
    pub fn for_each(&self, mut f: impl FnMut(&'a str, &'a str)) {
        match *self {
            Labels::None => {}
            Labels::Map(map) => map.iter().for_each(|(k, v)| f(k, v)),
            Labels::Pairs(pairs) => pairs.iter().for_each(|(k, v)| f(k, v)),
            Labels::Shared(pairs) => pairs.iter().for_each(|(k, v)| f(k, v)),
        }
    }
}

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Labels::None => serializer.serialize_map(Some(0))?.end(),
            Labels::Map(map) => serializer.collect_map(map),
            Labels::Pairs(pairs) => serializer.collect_map(pairs.iter().map(|(k, v)| (k, v))),
            Labels::Shared(pairs) => serializer.collect_map(pairs.iter().map(|(k, v)| (&**k, &**v))),
        }
    }
}

/// One node's usage, as the store and the Node cache know it.
#[derive(Debug, Clone, Copy)]
pub struct NodeUsage<'a> {
    pub name: &'a str,
    pub labels: Labels<'a>,
    /// Kubelet timestamp of the newer point, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// Newer minus older point time, nanoseconds.
    pub window_ns: i64,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
    /// Swap in bytes, when the kubelet reports it (`node_swap_usage_bytes`).
    pub swap_bytes: Option<u64>,
}

/// One container's usage inside a [`PodUsage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerUsage<'a> {
    pub name: &'a str,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
    /// Swap in bytes, when the kubelet reports it (`container_swap_usage_bytes`).
    pub swap_bytes: Option<u64>,
}

/// One pod's usage, as the store and the pod metadata cache know it.
///
/// `timestamp_ns` / `window_ns` are those of the container with the earliest newer point. A pod
/// whose containers all failed their rate is served with `"containers": []`, and then, as in
/// metrics-server (whose earliest time stays Go's zero time), with `"timestamp": null` and
/// `"window": "0s"` whatever these two fields hold.
#[derive(Debug, Clone)]
pub struct PodUsage<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: Labels<'a>,
    pub timestamp_ns: i64,
    pub window_ns: i64,
    /// Borrowed or owned: `containers: slice.into()` or `containers: vec.into()`.
    pub containers: Containers<'a>,
}

/// A pod's containers, borrowed or owned (like `Cow`, but covariant in `'a`, so a
/// `PodUsage<'long>` passes where a `PodUsage<'short>` is expected).
#[derive(Debug, Clone)]
pub enum Containers<'a> {
    Borrowed(&'a [ContainerUsage<'a>]),
    Owned(Vec<ContainerUsage<'a>>),
}

impl<'a> std::ops::Deref for Containers<'a> {
    type Target = [ContainerUsage<'a>];

    fn deref(&self) -> &Self::Target {
        match self {
            Containers::Borrowed(slice) => slice,
            Containers::Owned(vec) => vec,
        }
    }
}

impl<'a> From<&'a [ContainerUsage<'a>]> for Containers<'a> {
    fn from(slice: &'a [ContainerUsage<'a>]) -> Self {
        Containers::Borrowed(slice)
    }
}

impl<'a> From<Vec<ContainerUsage<'a>>> for Containers<'a> {
    fn from(vec: Vec<ContainerUsage<'a>>) -> Self {
        Containers::Owned(vec)
    }
}

/// Sorts nodes by name, the order metrics-server lists them in.
pub fn sort_nodes(items: &mut [NodeUsage<'_>]) {
    items.sort_unstable_by(|a, b| a.name.cmp(b.name));
}

/// Sorts pods by namespace, then name, the order metrics-server lists them in.
pub fn sort_pods(items: &mut [PodUsage<'_>]) {
    items.sort_unstable_by(|a, b| (a.namespace, a.name).cmp(&(b.namespace, b.name)));
}

/// `GET .../nodes/{name}`: one `NodeMetrics`. `now_ns` is the build time (Unix ns).
pub fn node_metrics_json(item: &NodeUsage<'_>, version: ApiVersion, now_ns: i64) -> Vec<u8> {
    let created = Rfc3339Seconds(now_ns).to_string();
    json::to_vec(&NodeJson {
        item,
        created: &created,
        typed: Some(version),
    })
}

/// `GET .../nodes`: a `NodeMetricsList` of `items` in the given order (see [`sort_nodes`]).
pub fn node_list_json(items: &[NodeUsage<'_>], version: ApiVersion, meta: ListMeta<'_>, now_ns: i64) -> Vec<u8> {
    let created = Rfc3339Seconds(now_ns).to_string();
    let capacity = 128 + 320 * items.len();
    let items = Items::new(items, |item| NodeJson {
        item,
        created: &created,
        typed: None,
    });
    json::to_vec_with_capacity(&ListJson::new("NodeMetricsList", version, meta, items), capacity)
}

/// `GET .../namespaces/{ns}/pods/{name}`: one `PodMetrics`.
pub fn pod_metrics_json(item: &PodUsage<'_>, version: ApiVersion, now_ns: i64) -> Vec<u8> {
    let created = Rfc3339Seconds(now_ns).to_string();
    json::to_vec(&PodJson {
        item,
        created: &created,
        typed: Some(version),
    })
}

/// `GET .../pods` and `.../namespaces/{ns}/pods`: a `PodMetricsList` of `items` in the given
/// order (see [`sort_pods`]).
pub fn pod_list_json(items: &[PodUsage<'_>], version: ApiVersion, meta: ListMeta<'_>, now_ns: i64) -> Vec<u8> {
    list::pod_list(items, version, meta, now_ns)
}

/// [`pod_list_json`] through serde, the reference the direct writer is tested against.
#[cfg(test)]
fn pod_list_json_serde(items: &[PodUsage<'_>], version: ApiVersion, meta: ListMeta<'_>, now_ns: i64) -> Vec<u8> {
    let created = Rfc3339Seconds(now_ns).to_string();
    let items = Items::new(items, |item| PodJson {
        item,
        created: &created,
        typed: None,
    });
    json::to_vec(&ListJson::new("PodMetricsList", version, meta, items))
}

/// A Unix time in nanoseconds that displays as `metav1.Time` marshals: RFC 3339, UTC, whole
/// seconds (the fraction is truncated, never rounded): `2026-08-04T09:59:58Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339Seconds(pub i64);

impl Rfc3339Seconds {
    /// `YYYY-MM-DDTHH:MM:SSZ` as ASCII bytes (years 0 to 9999; an `i64` of nanoseconds spans
    /// 1677 to 2262).
    pub fn to_ascii(self) -> [u8; 20] {
        let seconds = self.0.div_euclid(1_000_000_000);
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        let second_of_day = seconds.rem_euclid(86_400);
        let mut out = *b"0000-00-00T00:00:00Z";
        let fields = [(0, 4, year), (5, 2, month), (8, 2, day), (11, 2, second_of_day / 3600)];
        let fields = fields
            .into_iter()
            .chain([(14, 2, second_of_day / 60 % 60), (17, 2, second_of_day % 60)]);
        for (start, width, mut value) in fields {
            for i in (start..start + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        out
    }
}

impl fmt::Display for Rfc3339Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.to_ascii()).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Rfc3339Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ascii = self.to_ascii();
        serializer.serialize_str(std::str::from_utf8(&ascii).map_err(serde::ser::Error::custom)?)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// `metadata` of an object: name, namespace, creationTimestamp, labels (Go's field order).
#[derive(Serialize)]
pub(crate) struct ObjectMetaJson<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    #[serde(rename = "creationTimestamp")]
    pub creation_timestamp: &'a str,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels<'a>,
}

/// `usage`: `cpu`, `memory` and, when reported, `swap`, in Go's sorted map-key order.
#[derive(Serialize)]
struct UsageJson {
    cpu: Quantity,
    memory: Quantity,
    #[serde(skip_serializing_if = "Option::is_none")]
    swap: Option<Quantity>,
}

impl UsageJson {
    fn new(cpu_nanocores: u64, memory_bytes: u64, swap_bytes: Option<u64>) -> Self {
        Self {
            cpu: Quantity::cpu_from_nanocores(cpu_nanocores),
            memory: Quantity::memory_from_bytes(memory_bytes),
            swap: swap_bytes.map(Quantity::memory_from_bytes),
        }
    }
}

/// A `NodeMetrics`; `typed` adds `kind` and that version's `apiVersion` (top-level objects, not
/// list items).
pub(crate) struct NodeJson<'a, 'b> {
    pub item: &'b NodeUsage<'a>,
    pub created: &'b str,
    pub typed: Option<ApiVersion>,
}

impl Serialize for NodeJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let item = self.item;
        let mut s = serializer.serialize_struct("NodeMetrics", 6)?;
        if let Some(version) = self.typed {
            s.serialize_field("kind", "NodeMetrics")?;
            s.serialize_field("apiVersion", version.group_version())?;
        }
        let meta = ObjectMetaJson {
            name: item.name,
            namespace: None,
            creation_timestamp: self.created,
            labels: item.labels,
        };
        s.serialize_field("metadata", &meta)?;
        s.serialize_field("timestamp", &Rfc3339Seconds(item.timestamp_ns))?;
        s.serialize_field("window", &GoDurationJson(item.window_ns))?;
        let usage = UsageJson::new(item.cpu_nanocores, item.memory_bytes, item.swap_bytes);
        s.serialize_field("usage", &usage)?;
        s.end()
    }
}

/// A `PodMetrics`; `typed` adds `kind` and that version's `apiVersion`.
pub(crate) struct PodJson<'a, 'b> {
    pub item: &'b PodUsage<'a>,
    pub created: &'b str,
    pub typed: Option<ApiVersion>,
}

impl Serialize for PodJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let item = self.item;
        let mut s = serializer.serialize_struct("PodMetrics", 6)?;
        if let Some(version) = self.typed {
            s.serialize_field("kind", "PodMetrics")?;
            s.serialize_field("apiVersion", version.group_version())?;
        }
        let meta = ObjectMetaJson {
            name: item.name,
            namespace: Some(item.namespace),
            creation_timestamp: self.created,
            labels: item.labels,
        };
        s.serialize_field("metadata", &meta)?;
        if item.containers.is_empty() {
            s.serialize_field("timestamp", &None::<Rfc3339Seconds>)?;
            s.serialize_field("window", &GoDurationJson(0))?;
        } else {
            s.serialize_field("timestamp", &Rfc3339Seconds(item.timestamp_ns))?;
            s.serialize_field("window", &GoDurationJson(item.window_ns))?;
        }
        s.serialize_field("containers", &Items::new(&item.containers[..], ContainerJson))?;
        s.end()
    }
}

/// A `ContainerMetrics`: `name`, `usage`.
struct ContainerJson<'b, 'a>(&'b ContainerUsage<'a>);

impl Serialize for ContainerJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ContainerMetrics", 2)?;
        s.serialize_field("name", self.0.name)?;
        let usage = UsageJson::new(self.0.cpu_nanocores, self.0.memory_bytes, self.0.swap_bytes);
        s.serialize_field("usage", &usage)?;
        s.end()
    }
}

/// A window as a JSON string.
pub(crate) struct GoDurationJson(pub i64);

impl Serialize for GoDurationJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        json::serialize_display(serializer, &GoDuration(self.0))
    }
}

/// `{"kind":..., "apiVersion":"metrics.k8s.io/v1beta1", "metadata":{}, "items":[...]}`.
#[derive(Serialize)]
struct ListJson<'m, I: Serialize> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: ListMeta<'m>,
    items: I,
}

impl<'m, I: Serialize> ListJson<'m, I> {
    fn new(kind: &'static str, version: ApiVersion, metadata: ListMeta<'m>, items: I) -> Self {
        Self {
            kind,
            api_version: version.group_version(),
            metadata,
            items,
        }
    }
}

/// `{}`.
#[derive(Serialize)]
pub(crate) struct EmptyObject {}

/// A slice serialised as a JSON array, each element through `F`.
struct Items<'s, T, F>(&'s [T], F);

impl<'s, T, F, R> Items<'s, T, F>
where
    F: Fn(&'s T) -> R,
    R: Serialize,
{
    fn new(items: &'s [T], map: F) -> Self {
        Self(items, map)
    }
}

impl<'s, T, F, R> Serialize for Items<'s, T, F>
where
    F: Fn(&'s T) -> R,
    R: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(&self.1))
    }
}

#[cfg(test)]
pub(crate) mod tests;
