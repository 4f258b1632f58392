use std::collections::BTreeMap;

use prost::Message;

use super::messages::{self, Unknown};
use super::*;
use crate::api::error::{ApiError, MetricsResource};
use crate::api::types::{ContainerUsage, Labels, PodUsage};

const NOW: i64 = 1_754_301_603_500_000_000; // 2025-08-04T10:00:03.5Z

/// The envelope's type and raw message.
fn open(body: &[u8]) -> (String, String, Vec<u8>) {
    assert_eq!(&body[..4], MAGIC);
    let unknown = Unknown::decode(&body[4..]).unwrap();
    let type_meta = unknown.type_meta.unwrap();
    assert_eq!(unknown.content_encoding.as_deref(), Some(""));
    assert_eq!(unknown.content_type.as_deref(), Some(""));
    (
        type_meta.api_version.unwrap(),
        type_meta.kind.unwrap(),
        unknown.raw.unwrap(),
    )
}

fn quantity(s: &str) -> messages::Quantity {
    messages::Quantity {
        string: Some(s.to_string()),
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_string(), "web".to_string()),
        ("tier".to_string(), "".to_string()),
    ])
}

fn pod<'a>(name: &'a str, labels: &'a BTreeMap<String, String>, containers: Vec<ContainerUsage<'a>>) -> PodUsage<'a> {
    PodUsage {
        namespace: "team-1",
        name,
        labels: Labels::Map(labels),
        timestamp_ns: NOW - 4_700_000_000,
        window_ns: 14_998_000_000,
        containers: containers.into(),
    }
}

fn web_containers() -> Vec<ContainerUsage<'static>> {
    vec![
        ContainerUsage {
            name: "app",
            cpu_nanocores: 1_723_946,
            memory_bytes: 12240 * 1024,
            swap_bytes: Some(3 * 1024 * 1024),
        },
        ContainerUsage {
            name: "sidecar",
            cpu_nanocores: 500_000_000,
            memory_bytes: 999,
            swap_bytes: None,
        },
    ]
}

#[test]
fn a_pod_list_decodes_to_the_values_of_its_json() {
    let labels = labels();
    let pods = [pod("web-0", &labels, web_containers()), pod("web-1", &labels, vec![])];
    let meta = ListMeta {
        continue_token: Some("abc"),
    };
    let body = pod_list(&pods, ApiVersion::V1, meta, NOW);
    let (api_version, kind, raw) = open(&body);
    assert_eq!(
        (api_version.as_str(), kind.as_str()),
        ("metrics.k8s.io/v1", "PodMetricsList")
    );
    let list = messages::PodMetricsList::decode(&raw[..]).unwrap();
    assert_eq!(list.metadata.unwrap().r#continue.as_deref(), Some("abc"));
    assert_eq!(list.items.len(), 2);
    let first = &list.items[0];
    let meta = first.metadata.as_ref().unwrap();
    assert_eq!(
        (meta.name.as_deref(), meta.namespace.as_deref()),
        (Some("web-0"), Some("team-1"))
    );
    assert_eq!(meta.labels, labels);
    assert_eq!(
        meta.creation_timestamp.as_ref().unwrap().seconds,
        Some(NOW / 1_000_000_000)
    );
    let timestamp = first.timestamp.as_ref().unwrap();
    assert_eq!((timestamp.seconds, timestamp.nanos), (Some(1_754_301_598), Some(0)));
    assert_eq!(first.window.as_ref().unwrap().duration, Some(14_998_000_000));
    let app = &first.containers[0];
    assert_eq!(app.name.as_deref(), Some("app"));
    assert_eq!(
        app.usage,
        BTreeMap::from([
            ("cpu".into(), quantity("1723946n")),
            ("memory".into(), quantity("12240Ki")),
            ("swap".into(), quantity("3Mi")),
        ])
    );
    assert_eq!(first.containers[1].usage["cpu"], quantity("500m"));
    assert!(!first.containers[1].usage.contains_key("swap"));
    let empty = &list.items[1];
    assert!(empty.containers.is_empty());
    assert_eq!(
        empty.timestamp,
        Some(messages::Time::default()),
        "Go's zero time: an empty Time"
    );
    assert_eq!(empty.window.as_ref().unwrap().duration, Some(0));
}

#[test]
fn nodes_and_single_objects_carry_their_kind_and_version() {
    let labels = labels();
    let node = NodeUsage {
        name: "node-1",
        labels: Labels::Map(&labels),
        timestamp_ns: NOW - 5_000_000_000,
        window_ns: 15_012_000_000,
        cpu_nanocores: 487_558_164,
        memory_bytes: 732_212 * 1024,
        swap_bytes: Some(0),
    };
    let (v, kind, raw) = open(&node_metrics(&node, ApiVersion::V1beta1, NOW));
    assert_eq!((v.as_str(), kind.as_str()), ("metrics.k8s.io/v1beta1", "NodeMetrics"));
    let decoded = messages::NodeMetrics::decode(&raw[..]).unwrap();
    assert_eq!(decoded.usage["cpu"], quantity("487558164n"));
    assert_eq!(decoded.usage["memory"], quantity("732212Ki"));
    assert_eq!(decoded.usage["swap"], quantity("0"));
    let (_, kind, raw) = open(&node_list(&[node, node], ApiVersion::V1, ListMeta::default(), NOW));
    assert_eq!(kind, "NodeMetricsList");
    let list = messages::NodeMetricsList::decode(&raw[..]).unwrap();
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.metadata.unwrap().r#continue.as_deref(), Some(""));
    let one = pod("web-0", &labels, web_containers());
    let (_, kind, raw) = open(&pod_metrics(&one, ApiVersion::V1, NOW));
    assert_eq!(kind, "PodMetrics");
    assert_eq!(messages::PodMetrics::decode(&raw[..]).unwrap().containers.len(), 2);
}

#[test]
fn a_large_list_has_long_length_prefixes_that_decode() {
    let labels: BTreeMap<String, String> = (0..40).map(|i| (format!("label-{i}"), "v".repeat(i))).collect();
    let names: Vec<String> = (0..3000).map(|i| format!("pod-{i:05}")).collect();
    let pods: Vec<_> = names.iter().map(|n| pod(n, &labels, web_containers())).collect();
    let body = pod_list(&pods, ApiVersion::V1beta1, ListMeta::default(), NOW);
    let (_, _, raw) = open(&body);
    let list = messages::PodMetricsList::decode(&raw[..]).unwrap();
    assert_eq!(list.items.len(), 3000);
    assert_eq!(list.items[2999].metadata.as_ref().unwrap().labels, labels);
}

#[test]
fn status_errors_decode_with_message_reason_details_and_code() {
    let error = ApiError::PodMetricsNotFound {
        namespace: "default".into(),
        name: "web-1".into(),
    };
    let (v, kind, raw) = open(&error.to_status_protobuf());
    assert_eq!((v.as_str(), kind.as_str()), ("v1", "Status"));
    let status = messages::Status::decode(&raw[..]).unwrap();
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.message.as_deref(), Some(error.to_string().as_str()));
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(status.code, Some(404));
    let details = status.details.unwrap();
    assert_eq!(
        (
            details.name.as_deref(),
            details.group.as_deref(),
            details.kind.as_deref()
        ),
        (Some("default/web-1"), Some("metrics.k8s.io"), Some("podmetrics"))
    );
    let bad = ApiError::unknown_field_selector("status.phase", MetricsResource::Pods);
    let status = messages::Status::decode(&open(&bad.to_status_protobuf()).2[..]).unwrap();
    assert_eq!((status.code, status.details), (Some(400), None));
    let expired = ApiError::ContinueExpired {
        continue_token: "next".into(),
    };
    let status = messages::Status::decode(&open(&expired.to_status_protobuf()).2[..]).unwrap();
    assert_eq!((status.code, status.reason.as_deref()), (Some(410), Some("Expired")));
    assert_eq!(status.metadata.unwrap().r#continue.as_deref(), Some("next"));
}
