//! `meta.k8s.io` Table output for `kubectl get nodes.metrics.k8s.io` / `kubectl get podmetrics`,
//! exactly as metrics-server's `pkg/api/table.go` builds it and the apiserver's `asTable` wraps
//! it (`k8s.io/apiserver` `registry/rest/table.go`), and the `Accept` negotiation that selects it.
//!
//! Sits beside [`crate::api::types`] at the end of the read path: a handler calls
//! [`negotiate`] on the `Accept` header, then either `types::*_json` or [`node_table_json`] /
//! [`pod_table_json`] with the same [`NodeUsage`] / [`PodUsage`] views.
//!
//! Go's behaviour, kept on purpose:
//! - columns: `Name`, then the usage keys of the first item, sorted (`cpu`, `memory`, and
//!   `swap` when that item reports swap), then `Window`; for pods the first item *with
//!   containers* (Go recomputes the columns while its key list is still empty), so rows before
//!   it have only name and window; a row without a column's key shows Go's zero quantity, `0`;
//! - an empty list has `"columnDefinitions":null,"rows":null` (nil slices in Go);
//! - `metadata` is `{}`: the list's empty `resourceVersion` is `omitempty`;
//! - pod cells are sums over containers (Quantity addition); window cells are Go durations;
//! - each row's `object` follows `includeObject`: `Metadata` (default) gives a
//!   `PartialObjectMetadata`, `Object` the full metrics object, `None` gives `null`.

use serde::Serialize;

use super::accept::parse_accept;
use super::error::ApiError;
use super::json;
use super::quantity::{Format, Quantity};
use super::types::{
    ApiVersion, GoDurationJson, Labels, ListMeta, NodeJson, NodeUsage, ObjectMetaJson, PodJson, PodUsage,
    Rfc3339Seconds,
};

/// Which `meta.k8s.io` version of Table the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableVersion {
    V1,
    V1beta1,
}

impl TableVersion {
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }

    /// The response `Content-Type`, as the apiserver sends it.
    pub fn content_type(self) -> &'static str {
        match self {
            TableVersion::V1 => "application/json;as=Table;v=v1;g=meta.k8s.io",
            TableVersion::V1beta1 => "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        }
    }
}

/// What a data request should be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFormat {
    /// The plain object or list, `application/json`.
    Json,
    /// A Table.
    Table(TableVersion),
    /// The plain object or list in the Kubernetes protobuf envelope.
    Protobuf,
}

impl ResponseFormat {
    /// Whether errors go out as protobuf `Status` bodies (the apiserver negotiates them like the
    /// object; a Table request gets JSON errors).
    pub fn is_protobuf(self) -> bool {
        self == ResponseFormat::Protobuf
    }
}

/// Chooses the response format from an `Accept` header: the best range we can serve wins
/// (plain protobuf, a JSON Table, plain JSON); protobuf Tables, YAML and unknown ranges are
/// skipped; nothing servable (or no header) means JSON, never 406.
pub fn negotiate(accept: Option<&str>) -> ResponseFormat {
    for range in parse_accept(accept.unwrap_or("")) {
        if range.is_protobuf() {
            if range.param("as").is_none() {
                return ResponseFormat::Protobuf;
            }
            continue;
        }
        if !range.accepts_json() {
            continue;
        }
        match range.param("as") {
            None => return ResponseFormat::Json,
            Some("Table") if range.param("g") == Some("meta.k8s.io") => match range.param("v") {
                Some("v1") => return ResponseFormat::Table(TableVersion::V1),
                Some("v1beta1") => return ResponseFormat::Table(TableVersion::V1beta1),
                _ => {}
            },
            Some(_) => {}
        }
    }
    ResponseFormat::Json
}

/// The `includeObject` query parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum IncludeObject {
    /// `"object": null`.
    None,
    /// A `PartialObjectMetadata` (the default; kubectl reads the namespace from it).
    #[default]
    Metadata,
    /// The full `NodeMetrics` / `PodMetrics`.
    Object,
}

impl IncludeObject {
    /// Parses `?includeObject=`; absent or empty is `Metadata`, other values are a 400.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(ApiError::unrecognized_include_object(other)),
        }
    }
}

/// How to build a Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableOptions {
    pub version: TableVersion,
    pub include_object: IncludeObject,
    /// The metrics version of the request: the `apiVersion` of full row objects.
    pub api: ApiVersion,
}

/// A Table of nodes (a list, or one node for a named get). `now_ns` is the build time, used for
/// `creationTimestamp` in row objects; `meta` is the list's (its `continue` is copied).
pub fn node_table_json(items: &[NodeUsage<'_>], now_ns: i64, options: TableOptions, meta: ListMeta<'_>) -> Vec<u8> {
    let created = Rfc3339Seconds(now_ns).to_string();
    let swap = items.first().is_some_and(|n| n.swap_bytes.is_some());
    let columns = (!items.is_empty()).then(|| usage_columns(swap));
    let rows = (!items.is_empty()).then_some(NodeRows {
        items,
        options,
        created: &created,
        swap,
    });
    let table = TableJson::new(options.version, meta, columns, rows);
    json::to_vec_with_capacity(&table, 256 + 300 * items.len())
}

/// A Table of pods (a list, or one pod for a named get); usage cells are container sums.
pub fn pod_table_json(items: &[PodUsage<'_>], now_ns: i64, options: TableOptions, meta: ListMeta<'_>) -> Vec<u8> {
    let created = Rfc3339Seconds(now_ns).to_string();
    let first_with_usage = items.iter().position(|pod| !pod.containers.is_empty());
    let swap = first_with_usage.is_some_and(|i| items[i].containers.iter().any(|c| c.swap_bytes.is_some()));
    let columns = match first_with_usage {
        _ if items.is_empty() => None,
        Some(_) => Some(usage_columns(swap)),
        None => Some(&WINDOW_ONLY_COLUMNS[..]),
    };
    let rows = (!items.is_empty()).then_some(PodRows {
        items,
        options,
        created: &created,
        first_with_usage,
        swap,
    });
    let table = TableJson::new(options.version, meta, columns, rows);
    json::to_vec_with_capacity(&table, 256 + 320 * items.len())
}

/// `Name`, the usage keys, `Window`.
fn usage_columns(swap: bool) -> &'static [ColumnJson] {
    if swap { &USAGE_SWAP_COLUMNS } else { &USAGE_COLUMNS }
}

/// The rows of a node Table; `swap` adds the swap cell.
struct NodeRows<'a, 'b> {
    items: &'b [NodeUsage<'a>],
    options: TableOptions,
    created: &'b str,
    swap: bool,
}

impl Serialize for NodeRows<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().map(|item| {
            let cells = UsageCells {
                name: item.name,
                cpu: cpu(item.cpu_nanocores),
                memory: memory(item.memory_bytes),
                swap: self.swap.then(|| memory(item.swap_bytes.unwrap_or(0))),
                window: item.window_ns,
            };
            let object = match self.options.include_object {
                IncludeObject::None => None,
                IncludeObject::Metadata => Some(RowObject::Partial(partial(
                    self.options,
                    item.name,
                    None,
                    self.created,
                    item.labels,
                ))),
                IncludeObject::Object => Some(RowObject::Node(NodeJson {
                    item,
                    created: self.created,
                    typed: Some(self.options.api),
                })),
            };
            RowJson { cells, object }
        }))
    }
}

/// The rows of a pod Table; rows before `first_with_usage` have only name and window cells;
/// `swap` adds the swap cell.
struct PodRows<'a, 'b> {
    items: &'b [PodUsage<'a>],
    options: TableOptions,
    created: &'b str,
    first_with_usage: Option<usize>,
    swap: bool,
}

impl Serialize for PodRows<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().enumerate().map(|(index, item)| {
            let with_usage = self.first_with_usage.is_some_and(|first| index >= first);
            let object = match self.options.include_object {
                IncludeObject::None => None,
                IncludeObject::Metadata => Some(RowObject::Partial(partial(
                    self.options,
                    item.name,
                    Some(item.namespace),
                    self.created,
                    item.labels,
                ))),
                IncludeObject::Object => Some(RowObject::Pod(PodJson {
                    item,
                    created: self.created,
                    typed: Some(self.options.api),
                })),
            };
            RowJson {
                cells: PodCells {
                    item,
                    with_usage,
                    swap: self.swap,
                },
                object,
            }
        }))
    }
}

fn cpu(nanocores: u64) -> Quantity {
    Quantity::cpu_from_nanocores(nanocores)
}

fn memory(bytes: u64) -> Quantity {
    Quantity::memory_from_bytes(bytes)
}

fn partial<'a>(
    options: TableOptions,
    name: &'a str,
    namespace: Option<&'a str>,
    created: &'a str,
    labels: Labels<'a>,
) -> PartialJson<'a> {
    PartialJson {
        kind: "PartialObjectMetadata",
        api_version: options.version.api_version(),
        metadata: ObjectMetaJson {
            name,
            namespace,
            creation_timestamp: created,
            labels,
        },
    }
}

/// `metav1.TableColumnDefinition`; every field is written, even when empty.
#[derive(Serialize, Clone, Copy)]
struct ColumnJson {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
}

const NAME_COLUMN: ColumnJson = ColumnJson {
    name: "Name",
    kind: "string",
    format: "name",
    description: "Name of the resource",
    priority: 0,
};
const WINDOW_COLUMN: ColumnJson = ColumnJson {
    name: "Window",
    kind: "string",
    format: "duration",
    description: "",
    priority: 0,
};
const USAGE_COLUMNS: [ColumnJson; 4] = [
    NAME_COLUMN,
    ColumnJson {
        name: "cpu",
        kind: "string",
        format: "quantity",
        description: "",
        priority: 0,
    },
    ColumnJson {
        name: "memory",
        kind: "string",
        format: "quantity",
        description: "",
        priority: 0,
    },
    WINDOW_COLUMN,
];
const USAGE_SWAP_COLUMNS: [ColumnJson; 5] = [
    NAME_COLUMN,
    USAGE_COLUMNS[1],
    USAGE_COLUMNS[2],
    ColumnJson {
        name: "swap",
        kind: "string",
        format: "quantity",
        description: "",
        priority: 0,
    },
    WINDOW_COLUMN,
];
const WINDOW_ONLY_COLUMNS: [ColumnJson; 2] = [NAME_COLUMN, WINDOW_COLUMN];

/// `metav1.Table`: kind, apiVersion, metadata, columnDefinitions, rows.
#[derive(Serialize)]
struct TableJson<'m, C: Serialize, R: Serialize> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: ListMeta<'m>,
    #[serde(rename = "columnDefinitions")]
    column_definitions: Option<C>,
    rows: Option<R>,
}

impl<'m, C: Serialize, R: Serialize> TableJson<'m, C, R> {
    fn new(version: TableVersion, metadata: ListMeta<'m>, column_definitions: Option<C>, rows: Option<R>) -> Self {
        Self {
            kind: "Table",
            api_version: version.api_version(),
            metadata,
            column_definitions,
            rows,
        }
    }
}

/// A row's cells with usage: name, cpu, memory, swap (when the columns have it), window.
struct UsageCells<'a> {
    name: &'a str,
    cpu: Quantity,
    memory: Quantity,
    swap: Option<Quantity>,
    window: i64,
}

impl Serialize for UsageCells<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element(self.name)?;
        seq.serialize_element(&self.cpu)?;
        seq.serialize_element(&self.memory)?;
        if let Some(swap) = &self.swap {
            seq.serialize_element(swap)?;
        }
        seq.serialize_element(&GoDurationJson(self.window))?;
        seq.end()
    }
}

/// `metav1.TableRow`: cells, then object (`conditions` is never set).
#[derive(Serialize)]
struct RowJson<'p, 'a, 'b, C: Serialize> {
    cells: C,
    object: Option<RowObject<'p, 'a, 'b>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RowObject<'p, 'a, 'b> {
    Partial(PartialJson<'p>),
    Node(NodeJson<'a, 'b>),
    Pod(PodJson<'a, 'b>),
}

/// `metav1.PartialObjectMetadata`.
#[derive(Serialize)]
struct PartialJson<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: ObjectMetaJson<'a>,
}

/// A pod row's cells: name, summed cpu, memory and swap (when the columns have them), window.
struct PodCells<'a, 'b> {
    item: &'b PodUsage<'a>,
    with_usage: bool,
    swap: bool,
}

impl Serialize for PodCells<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pod = self.item;
        let window = if pod.containers.is_empty() { 0 } else { pod.window_ns };
        if !self.with_usage {
            return (pod.name, GoDurationJson(window)).serialize(serializer);
        }
        // Sums of u64 usages stay far below the quantity range; zero is an unreachable fallback.
        let sum = |quantities: &mut dyn Iterator<Item = Quantity>, format| {
            Quantity::sum(quantities).unwrap_or(Quantity::zero(format))
        };
        let cpu_sum = sum(
            &mut pod.containers.iter().map(|c| cpu(c.cpu_nanocores)),
            Format::DecimalSi,
        );
        let memory_sum = sum(
            &mut pod.containers.iter().map(|c| memory(c.memory_bytes)),
            Format::BinarySi,
        );
        let swaps = &mut pod.containers.iter().filter_map(|c| c.swap_bytes).map(memory);
        let swap = self.swap.then(|| sum(swaps, Format::BinarySi));
        UsageCells {
            name: pod.name,
            cpu: cpu_sum,
            memory: memory_sum,
            swap,
            window,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests;
