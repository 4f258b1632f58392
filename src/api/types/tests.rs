use proptest::prelude::*;

use super::*;

/// Unix nanoseconds of an RFC 3339 time.
pub(crate) fn ns(rfc3339: &str) -> i64 {
    let ts: jiff::Timestamp = rfc3339.parse().unwrap();
    i64::try_from(ts.as_nanosecond()).unwrap()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn hostname_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("kubernetes.io/hostname".to_string(), "node-1".to_string())])
}

#[test]
fn node_metrics_matches_the_reference_example() {
    let labels = hostname_labels();
    let node = NodeUsage {
        name: "node-1",
        labels: Labels::Map(&labels),
        timestamp_ns: ns("2026-08-04T09:59:58.999999999Z"),
        window_ns: 15_012_000_000,
        cpu_nanocores: 487_558_164,
        memory_bytes: 732_212 * 1024,
        swap_bytes: None,
    };
    let got = text(node_metrics_json(
        &node,
        ApiVersion::V1beta1,
        ns("2026-08-04T10:00:03.5Z"),
    ));
    let want = concat!(
        r#"{"kind":"NodeMetrics","apiVersion":"metrics.k8s.io/v1beta1","#,
        r#""metadata":{"name":"node-1","creationTimestamp":"2026-08-04T10:00:03Z","#,
        r#""labels":{"kubernetes.io/hostname":"node-1"}},"#,
        r#""timestamp":"2026-08-04T09:59:58Z","window":"15.012s","#,
        r#""usage":{"cpu":"487558164n","memory":"732212Ki"}}"#,
        "\n"
    );
    assert_eq!(got, want);
}

fn coredns_containers() -> Vec<ContainerUsage<'static>> {
    vec![ContainerUsage {
        name: "coredns",
        cpu_nanocores: 1_723_946,
        memory_bytes: 12240 * 1024,
        swap_bytes: None,
    }]
}

#[test]
fn pod_metrics_matches_the_reference_example() {
    let labels = [("k8s-app".to_string(), "kube-dns".to_string())];
    let pod = PodUsage {
        namespace: "kube-system",
        name: "coredns-558bd4d5db-4dpjz",
        labels: Labels::Pairs(&labels),
        timestamp_ns: ns("2026-08-04T09:59:57.4Z"),
        window_ns: 14_998_000_000,
        containers: coredns_containers().into(),
    };
    let got = text(pod_metrics_json(&pod, ApiVersion::V1beta1, ns("2026-08-04T10:00:03Z")));
    let want = concat!(
        r#"{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","#,
        r#""metadata":{"name":"coredns-558bd4d5db-4dpjz","namespace":"kube-system","#,
        r#""creationTimestamp":"2026-08-04T10:00:03Z","labels":{"k8s-app":"kube-dns"}},"#,
        r#""timestamp":"2026-08-04T09:59:57Z","window":"14.998s","#,
        r#""containers":[{"name":"coredns","usage":{"cpu":"1723946n","memory":"12240Ki"}}]}"#,
        "\n"
    );
    assert_eq!(got, want);
}

#[test]
fn lists_have_empty_metadata_and_untyped_items() {
    let node = NodeUsage {
        name: "n1",
        labels: Labels::None,
        timestamp_ns: ns("2026-08-04T09:59:58Z"),
        window_ns: 60_000_000_000,
        cpu_nanocores: 1_000_000_000,
        memory_bytes: 1 << 30,
        swap_bytes: None,
    };
    let got = text(node_list_json(
        &[node],
        ApiVersion::V1beta1,
        ListMeta::default(),
        ns("2026-08-04T10:00:00Z"),
    ));
    let want = concat!(
        r#"{"kind":"NodeMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":["#,
        r#"{"metadata":{"name":"n1","creationTimestamp":"2026-08-04T10:00:00Z"},"#,
        r#""timestamp":"2026-08-04T09:59:58Z","window":"1m0s","usage":{"cpu":"1","memory":"1Gi"}}]}"#,
        "\n"
    );
    assert_eq!(got, want);
    let empty = text(pod_list_json(&[], ApiVersion::V1beta1, ListMeta::default(), 0));
    assert_eq!(
        empty,
        "{\"kind\":\"PodMetricsList\",\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"metadata\":{},\"items\":[]}\n"
    );
    let empty = text(node_list_json(&[], ApiVersion::V1beta1, ListMeta::default(), 0));
    assert_eq!(
        empty,
        "{\"kind\":\"NodeMetricsList\",\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"metadata\":{},\"items\":[]}\n"
    );
}

#[test]
fn pod_list_items_carry_namespace_and_shared_labels() {
    let labels: Vec<(Arc<str>, Arc<str>)> = vec![("app".into(), "web".into()), ("tier".into(), "<front>".into())];
    let containers = [
        ContainerUsage {
            name: "a",
            cpu_nanocores: 500_000_000,
            memory_bytes: 5 << 20,
            swap_bytes: None,
        },
        ContainerUsage {
            name: "b",
            cpu_nanocores: 0,
            memory_bytes: 1000,
            swap_bytes: None,
        },
    ];
    let pod = PodUsage {
        namespace: "ns",
        name: "web-1",
        labels: Labels::Shared(&labels),
        timestamp_ns: 0,
        window_ns: 10_500_000_000,
        containers: containers[..].into(),
    };
    let got = text(pod_list_json(&[pod], ApiVersion::V1beta1, ListMeta::default(), 1));
    let want = concat!(
        r#"{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":["#,
        r#"{"metadata":{"name":"web-1","namespace":"ns","creationTimestamp":"1970-01-01T00:00:00Z","#,
        r#""labels":{"app":"web","tier":"\u003cfront\u003e"}},"#,
        r#""timestamp":"1970-01-01T00:00:00Z","window":"10.5s","containers":["#,
        r#"{"name":"a","usage":{"cpu":"500m","memory":"5Mi"}},"#,
        r#"{"name":"b","usage":{"cpu":"0","memory":"1k"}}]}]}"#,
        "\n"
    );
    assert_eq!(got, want);
}

/// metrics-server keeps a pod whose every container failed its rate, with Go's zero time.
#[test]
fn pod_without_containers_has_null_timestamp_and_zero_window() {
    let pod = PodUsage {
        namespace: "ns",
        name: "p",
        labels: Labels::None,
        timestamp_ns: ns("2026-08-04T09:59:57Z"),
        window_ns: 15_000_000_000,
        containers: Vec::new().into(),
    };
    let got = text(pod_metrics_json(&pod, ApiVersion::V1beta1, ns("2026-08-04T10:00:00Z")));
    let want = concat!(
        r#"{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","#,
        r#""metadata":{"name":"p","namespace":"ns","creationTimestamp":"2026-08-04T10:00:00Z"},"#,
        r#""timestamp":null,"window":"0s","containers":[]}"#,
        "\n"
    );
    assert_eq!(got, want);
}

#[test]
fn sorts_like_metrics_server() {
    let node = |name| NodeUsage {
        name,
        labels: Labels::None,
        timestamp_ns: 0,
        window_ns: 0,
        cpu_nanocores: 0,
        memory_bytes: 0,
        swap_bytes: None,
    };
    let mut nodes = vec![node("b"), node("a"), node("c")];
    sort_nodes(&mut nodes);
    assert_eq!(nodes.iter().map(|n| n.name).collect::<Vec<_>>(), ["a", "b", "c"]);
    let pod = |namespace, name| PodUsage {
        namespace,
        name,
        labels: Labels::None,
        timestamp_ns: 0,
        window_ns: 0,
        containers: Vec::new().into(),
    };
    let mut pods = vec![pod("b", "a"), pod("a", "z"), pod("a", "b")];
    sort_pods(&mut pods);
    let order: Vec<_> = pods.iter().map(|p| (p.namespace, p.name)).collect();
    assert_eq!(order, [("a", "b"), ("a", "z"), ("b", "a")]);
}

#[test]
fn timestamps_truncate_to_whole_seconds() {
    let cases = [
        ("2026-08-04T09:59:58.999999999Z", "2026-08-04T09:59:58Z"),
        ("2026-08-04T09:59:58Z", "2026-08-04T09:59:58Z"),
        ("2000-02-29T23:59:59.5Z", "2000-02-29T23:59:59Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59Z"),
        ("2100-03-01T00:00:00Z", "2100-03-01T00:00:00Z"),
    ];
    for (input, want) in cases {
        assert_eq!(Rfc3339Seconds(ns(input)).to_string(), want, "{input}");
    }
}

proptest! {
    #[test]
    fn timestamps_agree_with_jiff(nanos in any::<i64>()) {
        let ts = jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap();
        let want = ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        prop_assert_eq!(Rfc3339Seconds(nanos).to_string(), want);
    }
}

/// 150,000 pods must serialise quickly; this only checks the output is well-formed at size.
#[test]
fn large_pod_list_is_valid_json() {
    let names: Vec<String> = (0..2000).map(|i| format!("pod-{i:05}")).collect();
    let containers = coredns_containers();
    let pods: Vec<PodUsage<'_>> = names
        .iter()
        .map(|name| PodUsage {
            namespace: "default",
            name,
            labels: Labels::None,
            timestamp_ns: 1,
            window_ns: 15_000_000_000,
            containers: containers[..].into(),
        })
        .collect();
    let body = pod_list_json(&pods, ApiVersion::V1beta1, ListMeta::default(), 0);
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["items"].as_array().unwrap().len(), 2000);
    assert_eq!(value["items"][1999]["metadata"]["name"], "pod-01999");
}

/// Strings that exercise the escaping: plain, HTML-sensitive, quotes, control characters.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9-]{0,12}", "[a-z<>&\"\\\\\u{1}\n\u{2028}\u{2029}é µ]{0,8}",]
}

proptest! {
    #[test]
    fn direct_pod_list_matches_serde(
        pods in proptest::collection::vec(
            (
                tricky_string(),
                tricky_string(),
                proptest::collection::vec((tricky_string(), tricky_string()), 0..3),
                any::<i64>(),
                any::<i64>(),
                proptest::collection::vec((tricky_string(), any::<u64>(), any::<u64>(), any::<Option<u64>>()), 0..3),
            ),
            0..4,
        ),
        now in any::<i64>(),
        token in proptest::option::of(tricky_string()),
        v1 in any::<bool>(),
    ) {
        let containers: Vec<Vec<ContainerUsage<'_>>> = pods
            .iter()
            .map(|p| {
                p.5.iter()
                    .map(|(name, cpu, mem, swap)| ContainerUsage {
                        name,
                        cpu_nanocores: *cpu,
                        memory_bytes: *mem,
                        swap_bytes: *swap,
                    })
                    .collect()
            })
            .collect();
        let items: Vec<PodUsage<'_>> = pods
            .iter()
            .zip(&containers)
            .map(|(p, c)| PodUsage {
                namespace: &p.0,
                name: &p.1,
                labels: Labels::Pairs(&p.2),
                timestamp_ns: p.3,
                window_ns: p.4,
                containers: c[..].into(),
            })
            .collect();
        let version = if v1 { ApiVersion::V1 } else { ApiVersion::V1beta1 };
        let meta = ListMeta { continue_token: token.as_deref() };
        prop_assert_eq!(
            text(pod_list_json(&items, version, meta, now)),
            text(pod_list_json_serde(&items, version, meta, now))
        );
    }
}
