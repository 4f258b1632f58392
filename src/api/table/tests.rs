use std::collections::BTreeMap;

use super::*;

fn node_table(items: &[NodeUsage<'_>], now_ns: i64, options: TableOptions) -> Vec<u8> {
    node_table_json(items, now_ns, options, ListMeta::default())
}

fn pod_table(items: &[PodUsage<'_>], now_ns: i64, options: TableOptions) -> Vec<u8> {
    pod_table_json(items, now_ns, options, ListMeta::default())
}
use crate::api::types::{ContainerUsage, tests::ns};

const KUBECTL_GET: &str =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const COLUMNS: &str = concat!(
    r#""columnDefinitions":[{"name":"Name","type":"string","format":"name","description":"Name of the resource","priority":0},"#,
    r#"{"name":"cpu","type":"string","format":"quantity","description":"","priority":0},"#,
    r#"{"name":"memory","type":"string","format":"quantity","description":"","priority":0},"#,
    r#"{"name":"Window","type":"string","format":"duration","description":"","priority":0}]"#
);
const V1: TableOptions = TableOptions {
    version: TableVersion::V1,
    include_object: IncludeObject::Metadata,
    api: ApiVersion::V1beta1,
};

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn node(name: &str) -> NodeUsage<'_> {
    NodeUsage {
        name,
        labels: Labels::None,
        timestamp_ns: ns("2026-08-04T10:00:00Z"),
        window_ns: 10_500_000_000,
        cpu_nanocores: 1_250_000_000,
        memory_bytes: 4 << 30,
        swap_bytes: None,
    }
}

#[test]
fn node_table_matches_metrics_server() {
    let got = text(node_table(&[node("node-1")], ns("2026-08-04T10:00:03Z"), V1));
    let want = format!(
        "{}{COLUMNS},{}\n",
        r#"{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},"#,
        concat!(
            r#""rows":[{"cells":["node-1","1250m","4Gi","10.5s"],"object":{"kind":"PartialObjectMetadata","#,
            r#""apiVersion":"meta.k8s.io/v1","metadata":{"name":"node-1","creationTimestamp":"2026-08-04T10:00:03Z"}}}]}"#
        )
    );
    assert_eq!(got, want);
}

#[test]
fn empty_tables_have_no_column_definitions() {
    let want = "{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{},\"columnDefinitions\":null,\"rows\":null}\n";
    assert_eq!(text(node_table(&[], 0, V1)), want);
    assert_eq!(text(pod_table(&[], 0, V1)), want);
}

fn pod<'a>(name: &'a str, containers: &'a [ContainerUsage<'a>], labels: Labels<'a>) -> PodUsage<'a> {
    PodUsage {
        namespace: "ns",
        name,
        labels,
        timestamp_ns: ns("2026-08-04T10:00:00Z"),
        window_ns: 20_064_000_000,
        containers: containers.into(),
    }
}

const TWO: [ContainerUsage<'static>; 2] = [
    ContainerUsage {
        name: "a",
        cpu_nanocores: 250_000_000,
        memory_bytes: 5 << 20,
        swap_bytes: None,
    },
    ContainerUsage {
        name: "b",
        cpu_nanocores: 250_000_000,
        memory_bytes: 5 << 20,
        swap_bytes: None,
    },
];

#[test]
fn pod_rows_sum_containers_and_carry_the_namespace() {
    let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    let got = text(pod_table(
        &[pod("web-1", &TWO, Labels::Map(&labels))],
        ns("2026-08-04T10:00:03Z"),
        V1,
    ));
    let want = format!(
        "{}{COLUMNS},{}\n",
        r#"{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},"#,
        concat!(
            r#""rows":[{"cells":["web-1","500m","10Mi","20.064s"],"object":{"kind":"PartialObjectMetadata","#,
            r#""apiVersion":"meta.k8s.io/v1","metadata":{"name":"web-1","namespace":"ns","#,
            r#""creationTimestamp":"2026-08-04T10:00:03Z","labels":{"app":"web"}}}}]}"#
        )
    );
    assert_eq!(got, want);
}

/// Go defines the columns from the first pod with usage; earlier rows have two cells only.
#[test]
fn pods_without_containers_follow_gos_column_quirk() {
    let pods = [
        pod("p0", &[], Labels::None),
        pod("p1", &TWO, Labels::None),
        pod("p2", &[], Labels::None),
    ];
    let options = TableOptions {
        version: TableVersion::V1,
        include_object: IncludeObject::None,
        api: ApiVersion::V1beta1,
    };
    let got = text(pod_table(&pods, 0, options));
    let want = format!(
        "{}{COLUMNS},{}\n",
        r#"{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},"#,
        concat!(
            r#""rows":[{"cells":["p0","0s"],"object":null},"#,
            r#"{"cells":["p1","500m","10Mi","20.064s"],"object":null},"#,
            r#"{"cells":["p2","0","0","0s"],"object":null}]}"#
        )
    );
    assert_eq!(got, want);
    let only_empty = text(pod_table(&pods[..1], 0, options));
    assert!(only_empty.contains(concat!(
        r#""columnDefinitions":[{"name":"Name","type":"string","format":"name","description":"Name of the resource","priority":0},"#,
        r#"{"name":"Window","type":"string","format":"duration","description":"","priority":0}],"#,
        r#""rows":[{"cells":["p0","0s"],"object":null}]"#
    )));
}

#[test]
fn include_object_and_v1beta1() {
    let options = TableOptions {
        version: TableVersion::V1beta1,
        include_object: IncludeObject::Object,
        api: ApiVersion::V1beta1,
    };
    let got = text(node_table(&[node("n")], ns("2026-08-04T10:00:03Z"), options));
    assert!(
        got.starts_with(r#"{"kind":"Table","apiVersion":"meta.k8s.io/v1beta1","metadata":{},"#),
        "{got}"
    );
    assert!(
        got.ends_with(concat!(
            r#""object":{"kind":"NodeMetrics","apiVersion":"metrics.k8s.io/v1beta1","#,
            r#""metadata":{"name":"n","creationTimestamp":"2026-08-04T10:00:03Z"},"timestamp":"2026-08-04T10:00:00Z","#,
            r#""window":"10.5s","usage":{"cpu":"1250m","memory":"4Gi"}}}]}"#,
            "\n"
        )),
        "{got}"
    );
    let metadata = TableOptions {
        version: TableVersion::V1beta1,
        include_object: IncludeObject::Metadata,
        api: ApiVersion::V1beta1,
    };
    let got = text(pod_table(&[pod("p", &TWO, Labels::None)], 0, metadata));
    assert!(
        got.contains(r#""object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1beta1","#),
        "{got}"
    );
    let pods = text(pod_table(&[pod("p", &TWO, Labels::None)], 0, options));
    assert!(pods.contains(r#""object":{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"p","namespace":"ns","#), "{pods}");
}

#[test]
fn negotiates_table_or_json() {
    use ResponseFormat::*;
    let cases = [
        (Some(KUBECTL_GET), Table(TableVersion::V1)),
        (
            Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
            Table(TableVersion::V1beta1),
        ),
        (Some("application/vnd.kubernetes.protobuf, */*"), Protobuf),
        (Some("application/vnd.kubernetes.protobuf,application/json"), Protobuf),
        (
            Some("application/json;q=0.9,application/vnd.kubernetes.protobuf"),
            Protobuf,
        ),
        (Some("application/json,application/vnd.kubernetes.protobuf"), Json),
        (Some("application/json, */*"), Json),
        (Some("application/json"), Json),
        (Some(""), Json),
        (None, Json),
        (
            Some("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json"),
            Json,
        ),
        (
            Some("application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io"),
            Table(TableVersion::V1),
        ),
        (Some("application/json;as=Table;v=v1;g=other.io,application/json"), Json),
        (
            Some("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"),
            Json,
        ),
        (
            Some("application/json, application/json;as=Table;v=v1;g=meta.k8s.io"),
            Json,
        ),
        (
            Some("application/json;q=0.5, application/json;as=Table;v=v1;g=meta.k8s.io"),
            Table(TableVersion::V1),
        ),
        (Some("application/yaml"), Json),
    ];
    for (accept, want) in cases {
        assert_eq!(negotiate(accept), want, "{accept:?}");
    }
    assert_eq!(
        TableVersion::V1.content_type(),
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    );
    assert_eq!(
        TableVersion::V1beta1.content_type(),
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    );
}

#[test]
fn parses_include_object() {
    assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("Metadata")), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
    assert_eq!(IncludeObject::parse(Some("Object")), Ok(IncludeObject::Object));
    let error = IncludeObject::parse(Some("object")).unwrap_err();
    assert_eq!(error.status_code(), 400);
    assert_eq!(error.to_string(), r#"unrecognized includeObject value: "object""#);
}
