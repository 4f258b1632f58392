//! `meta.k8s.io/v1` Table output for `kubectl get` (human output asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io`): columns per kind as the real apiserver
//! prints them (NAME STATUS ROLES AGE VERSION for nodes; NAME READY STATUS RESTARTS AGE for pods).
//!
//! The cells of one object are computed once, at upsert time ([`cells`], stored in
//! [`Stored::cells`]); a request only adds Name and Age and splices the metadata object in.
//! Cells, column definitions and the `-o wide` (priority 1) columns follow
//! `pkg/printers/internalversion/printers.go` (`printNamespace` and `printConfigMap` here,
//! `printNode` and `printPod` in `printers.rs`); Age and the restart age follow
//! apimachinery `duration.HumanDuration`.

use super::printers;
use super::store::{Kind, Stored};
use serde_json::{Value, json};
use std::sync::Arc;

/// What each row's `object` holds (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object`.
    None,
    /// `PartialObjectMetadata` (the default; `kubectl get -A` reads the namespace from it).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

/// List metadata copied into the Table, as the real apiserver does for list tables.
#[derive(Debug, Clone, Default)]
pub struct TableMeta {
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining_item_count: Option<u64>,
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const ADDRESSES_DOC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

/// `(name, type, format, description, priority)` of each column, Name and Age included.
fn columns(kind: Kind) -> Vec<(&'static str, &'static str, &'static str, &'static str, u8)> {
    let name = ("Name", "string", "name", NAME_DOC, 0);
    let age = ("Age", "string", "", AGE_DOC, 0);
    match kind {
        Kind::Nodes => vec![
            name,
            ("Status", "string", "", "The status of the node", 0),
            ("Roles", "string", "", "The roles of the node", 0),
            age,
            ("Version", "string", "", "Kubelet Version reported by the node.", 0),
            ("Internal-IP", "string", "", ADDRESSES_DOC, 1),
            ("External-IP", "string", "", ADDRESSES_DOC, 1),
            (
                "OS-Image",
                "string",
                "",
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
                1,
            ),
            (
                "Kernel-Version",
                "string",
                "",
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
                1,
            ),
            (
                "Container-Runtime",
                "string",
                "",
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
                1,
            ),
        ],
        Kind::Pods => vec![
            name,
            (
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            (
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            (
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0,
            ),
            age,
            (
                "IP",
                "string",
                "",
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                1,
            ),
            (
                "Node",
                "string",
                "",
                "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
                1,
            ),
            (
                "Nominated Node",
                "string",
                "",
                "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
                1,
            ),
            (
                "Readiness Gates",
                "string",
                "",
                "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
                1,
            ),
        ],
        Kind::Namespaces => vec![name, ("Status", "string", "", "The status of the namespace", 0), age],
        Kind::ConfigMaps => vec![
            name,
            (
                "Data",
                "string",
                "",
                "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
                0,
            ),
            age,
        ],
    }
}

/// The Table's `columnDefinitions`.
pub fn column_definitions(kind: Kind) -> Value {
    let columns = columns(kind).into_iter().map(|(name, ty, format, description, priority)| {
        json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
    });
    Value::Array(columns.collect())
}

/// Position of the Age column in a row.
fn age_column(kind: Kind) -> usize {
    match kind {
        Kind::Nodes => 3,
        Kind::Pods => 4,
        Kind::Namespaces | Kind::ConfigMaps => 2,
    }
}

/// Cells after Name for one object, with the Age column left out (it is computed per request).
pub fn cells(kind: Kind, object: &Value) -> Vec<Value> {
    match kind {
        Kind::Nodes => printers::node_cells(object),
        Kind::Pods => printers::pod_cells(object),
        Kind::Namespaces => vec![Value::String(
            object["status"]["phase"].as_str().unwrap_or_default().to_string(),
        )],
        Kind::ConfigMaps => {
            let count = |v: &Value| v.as_object().map_or(0, |m| m.len());
            vec![json!(count(&object["data"]) + count(&object["binaryData"]))]
        }
    }
}

/// apimachinery `duration.HumanDuration`: `45s`, `2m10s`, `15m`, `3h12m`, `20h`, `5d3h`, `30d`,
/// `2y14d`, `9y`. Up to two seconds in the future counts as now; further is `<invalid>`.
pub fn human_duration(ms: i64) -> String {
    let seconds = ms / 1000;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = ms / 60_000;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = ms / 3_600_000;
    if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// The Age cell: `<unknown>` without a creation timestamp.
pub fn age(created_ms: Option<i64>, now_ms: i64) -> String {
    created_ms.map_or_else(|| "<unknown>".to_string(), |t| human_duration(now_ms - t))
}

/// Renders a stored cell: the restarts cell with a last restart becomes `3 (5m ago)`.
pub(super) fn render_cell(cell: &Value, now_ms: i64) -> Value {
    match (cell["restarts"].as_i64(), cell["lastRestartMs"].as_i64()) {
        (Some(n), Some(t)) => Value::String(format!("{n} ({} ago)", human_duration(now_ms - t))),
        _ => cell.clone(),
    }
}

/// Appends one row, `{"cells":[...],"object":...}`, to `out`.
pub fn write_row(out: &mut Vec<u8>, kind: Kind, stored: &Stored, now_ms: i64, include: IncludeObject) {
    let mut row = Vec::with_capacity(stored.cells.len() + 2);
    row.push(Value::String(stored.key.1.clone()));
    let split = (age_column(kind) - 1).min(stored.cells.len());
    row.extend(stored.cells[..split].iter().map(|c| render_cell(c, now_ms)));
    row.push(Value::String(age(stored.created_ms, now_ms)));
    row.extend(stored.cells[split..].iter().map(|c| render_cell(c, now_ms)));
    out.extend_from_slice(b"{\"cells\":");
    serde_json::to_writer(&mut *out, &row).expect("writing to a Vec cannot fail");
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            out.extend_from_slice(b",\"object\":");
            out.extend_from_slice(&stored.meta_json);
        }
        IncludeObject::Object => {
            out.extend_from_slice(b",\"object\":");
            out.extend_from_slice(&stored.json);
        }
    }
    out.push(b'}');
}

/// A whole `meta.k8s.io/v1` Table of `items`, in their order.
pub fn table(kind: Kind, items: &[Arc<Stored>], meta: &TableMeta, now_ms: i64, include: IncludeObject) -> Vec<u8> {
    let per_row = 64 + if include == IncludeObject::None { 0 } else { 400 };
    let mut out = Vec::with_capacity(4096 + items.len() * per_row);
    let mut metadata = json!({"resourceVersion": meta.resource_version.to_string()});
    if let Some(token) = &meta.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = meta.remaining_item_count {
        metadata["remainingItemCount"] = json!(remaining);
    }
    out.extend_from_slice(b"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":");
    serde_json::to_writer(&mut out, &metadata).expect("writing to a Vec cannot fail");
    out.extend_from_slice(b",\"columnDefinitions\":");
    serde_json::to_writer(&mut out, &column_definitions(kind)).expect("writing to a Vec cannot fail");
    out.extend_from_slice(b",\"rows\":[");
    for (i, stored) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_row(&mut out, kind, stored, now_ms, include);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_apimachinery() {
        let s = 1000;
        let (m, h, d) = (60 * s, 3600 * s, 86_400 * s);
        let cases = [
            (-3 * s, "<invalid>"),
            (-1500, "0s"),
            (0, "0s"),
            (45 * s, "45s"),
            (119 * s, "119s"),
            (2 * m, "2m"),
            (2 * m + 10 * s, "2m10s"),
            (9 * m + 59 * s, "9m59s"),
            (10 * m + 30 * s, "10m"),
            (179 * m, "179m"),
            (3 * h, "3h"),
            (3 * h + 12 * m, "3h12m"),
            (8 * h + 5 * m, "8h"),
            (47 * h, "47h"),
            (2 * d, "2d"),
            (5 * d + 3 * h, "5d3h"),
            (8 * d + 3 * h, "8d"),
            (729 * d, "729d"),
            (730 * d, "2y"),
            (744 * d, "2y14d"),
            (8 * 365 * d + 40 * d, "8y"),
        ];
        for (ms, want) in cases {
            assert_eq!(human_duration(ms), want, "{ms} ms");
        }
        assert_eq!(age(None, 0), "<unknown>");
        assert_eq!(age(Some(1_000), 6_000), "5s");
    }

    #[test]
    fn namespace_and_configmap_cells() {
        assert_eq!(
            cells(Kind::Namespaces, &json!({"status": {"phase": "Active"}})),
            vec![json!("Active")]
        );
        let cm = json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(cells(Kind::ConfigMaps, &cm), vec![json!(3)]);
    }

    #[test]
    fn table_rows_put_age_in_place() {
        let created = "2025-01-01T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let stored = Arc::new(Stored {
            key: ("default".into(), "web-0".into()),
            resource_version: 7,
            labels: Default::default(),
            fields: vec![],
            json: bytes::Bytes::from_static(b"{}"),
            meta_json: bytes::Bytes::from_static(b"{\"kind\":\"PartialObjectMetadata\"}"),
            cells: vec![json!("1/1"), json!("Running"), json!("0"), json!("10.1.0.5")],
            created_ms: Some(created),
        });
        let meta = TableMeta {
            resource_version: 9,
            continue_token: Some("tok".into()),
            remaining_item_count: Some(3),
        };
        let body = table(
            Kind::Pods,
            &[stored],
            &meta,
            created + 3 * 3_600_000,
            IncludeObject::Metadata,
        );
        let table: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            table["metadata"],
            json!({"resourceVersion": "9", "continue": "tok", "remainingItemCount": 3})
        );
        let names: Vec<_> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(
            names[..5],
            [
                json!("Name"),
                json!("Ready"),
                json!("Status"),
                json!("Restarts"),
                json!("Age")
            ]
        );
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["web-0", "1/1", "Running", "0", "3h", "10.1.0.5"])
        );
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        for column in table["columnDefinitions"].as_array().unwrap() {
            for field in ["name", "type", "format", "description", "priority"] {
                assert!(!column[field].is_null(), "{column} lacks {field}");
            }
        }
    }
}
