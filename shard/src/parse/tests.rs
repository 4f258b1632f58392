//! Unit tests of [`decode`] on hand-written kubelet bodies, one rule per test.

use super::*;
use crate::point::{NANOS_PER_MILLI, NANOS_PER_SECOND};

/// The time the request was sent, for samples without a timestamp.
const SENT: Nanos = 1_633_253_800_000 * NANOS_PER_MILLI;

fn ms(millis: i64) -> Nanos {
    millis * NANOS_PER_MILLI
}

fn decode_ok(body: &str) -> ScrapeBatch<'_> {
    decode(body.as_bytes(), SENT, &Limits::default()).expect("decodes")
}

/// A `/metrics/resource` body as kubelet 1.22 writes it: families sorted by name, series by
/// label text, HELP and TYPE lines, pod and swap families, the scrape-error gauge.
const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 0.967393 1633253812125
container_cpu_usage_seconds_total{container="etcd",namespace="kube-system",pod="etcd-kind-control-plane"} 10.291387 1633253811011
container_cpu_usage_seconds_total{container="sidecar",namespace="default",pod="web-0"} 1.5e-05 1633253810200
container_cpu_usage_seconds_total{container="web",namespace="default",pod="web-0"} 3.014 1633253810200
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.2537856e+07 1633253812126
container_memory_working_set_bytes{container="etcd",namespace="kube-system",pod="etcd-kind-control-plane"} 3.0396416e+07 1633253811012
container_memory_working_set_bytes{container="sidecar",namespace="default",pod="web-0"} 4096 1633253810201
container_memory_working_set_bytes{container="web",namespace="default",pod="web-0"} 2.097152e+06 1633253810201
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.6332537177200942e+09
container_start_time_seconds{container="etcd",namespace="kube-system",pod="etcd-kind-control-plane"} 1.633253700e+09
container_start_time_seconds{container="sidecar",namespace="default",pod="web-0"} 1.6332537e+09
container_start_time_seconds{container="web",namespace="default",pod="web-0"} 1.6332537e+09
# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems
# TYPE container_swap_usage_bytes gauge
container_swap_usage_bytes{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 0 1633253812125
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1633253809720
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.137475584e+09 1633253809721
# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems
# TYPE node_swap_usage_bytes gauge
node_swap_usage_bytes 0 1633253809720
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.012 1633253812125
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.3e+07 1633253812125
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
"#;

/// `(namespace, pod, [(container, point)])`.
type PodView<'b> = (&'b str, &'b str, Vec<(&'b str, MetricsPoint)>);

/// The pods of a batch, for whole-batch comparisons.
fn pods<'b>(batch: &'b ScrapeBatch<'_>) -> Vec<PodView<'b>> {
    let containers = |p: &'b PodBatch<'_>| p.containers.iter().map(|c| (&*c.name, c.point)).collect();
    batch
        .pods
        .iter()
        .map(|p| (&*p.namespace, &*p.name, containers(p)))
        .collect()
}

fn pod_names<'b>(batch: &'b ScrapeBatch<'_>) -> Vec<&'b str> {
    batch.pods.iter().map(|p| &*p.name).collect()
}

fn point(start_ns: Nanos, timestamp: Nanos, cpu: u64, memory: u64) -> MetricsPoint {
    MetricsPoint {
        start_time: start_ns,
        timestamp,
        cumulative_cpu: cpu,
        memory,
        swap: None,
    }
}

/// Container lines for `container="c",namespace="ns",pod=<pod>` with the given values.
fn container(pod: &str, cpu: &str, memory: &str) -> String {
    let labels = format!(r#"{{container="c",namespace="ns",pod="{pod}"}}"#);
    format!(
        "container_cpu_usage_seconds_total{labels} {cpu} 1000\n\
         container_memory_working_set_bytes{labels} {memory} 2000\n"
    )
}

const NODE: &str = "node_cpu_usage_seconds_total 1 3000\nnode_memory_working_set_bytes 2 4000\n";

#[test]
fn real_kubelet_body() {
    let batch = decode_ok(KUBELET);
    let coredns = MetricsPoint {
        swap: Some(0),
        ..point(1_633_253_717_720_094_208, ms(1633253812126), 967_393_000, 12_537_856)
    };
    let etcd = point(
        1_633_253_700 * NANOS_PER_SECOND,
        ms(1633253811012),
        10_291_387_000,
        30_396_416,
    );
    let web_start = 1_633_253_700 * NANOS_PER_SECOND;
    let expected = vec![
        ("kube-system", "coredns-558bd4d5db-4dpjz", vec![("coredns", coredns)]),
        ("kube-system", "etcd-kind-control-plane", vec![("etcd", etcd)]),
        (
            "default",
            "web-0",
            vec![
                ("sidecar", point(web_start, ms(1633253810201), 15_000, 4096)),
                ("web", point(web_start, ms(1633253810201), 3_014_000_000, 2_097_152)),
            ],
        ),
    ];
    assert_eq!(pods(&batch), expected);
    let node = MetricsPoint {
        swap: Some(0),
        ..point(0, ms(1633253809721), 357_354_910_000, 1_137_475_584)
    };
    assert_eq!(batch.node, Some(node));
    let stats = &batch.stats;
    assert_eq!((stats.lines, stats.samples), (KUBELET.lines().count() as u32, 16));
    assert_eq!(
        (stats.malformed_lines, stats.invalid_values, stats.dropped_pods),
        (0, 0, 0)
    );
    assert!(!stats.node_incomplete && !stats.series_limit_hit && stats.first_malformed.is_none());
}

#[test]
fn names_borrow_from_the_body() {
    let batch = decode_ok(KUBELET);
    let pod = &batch.pods[0];
    assert!(matches!(pod.namespace, Cow::Borrowed(_)));
    assert!(matches!(pod.name, Cow::Borrowed(_)));
    assert!(matches!(pod.containers[0].name, Cow::Borrowed(_)));
}

#[test]
fn memory_timestamp_wins_over_cpu_timestamp() {
    // CPU at 1000 ms, memory at 2000 ms: the later line sets the point's time.
    let body = container("p", "1", "1");
    let batch = decode_ok(&body);
    assert_eq!(batch.pods[0].containers[0].point.timestamp, ms(2000));
    let reversed = "container_memory_working_set_bytes{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 2000\n\
                    container_cpu_usage_seconds_total{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 1000\n";
    assert_eq!(decode_ok(reversed).pods[0].containers[0].point.timestamp, ms(1000));
}

#[test]
fn missing_timestamp_uses_the_default() {
    let body = "container_cpu_usage_seconds_total{container=\"c\",namespace=\"ns\",pod=\"p\"} 1\n\
                container_memory_working_set_bytes{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 \n\
                node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 1\t\n";
    let batch = decode_ok(body);
    assert_eq!(batch.pods[0].containers[0].point.timestamp, SENT);
    assert_eq!(batch.node.unwrap().timestamp, SENT);
}

#[test]
fn node_is_dropped_without_cpu_memory_or_timestamp() {
    let cases = [
        ("node_memory_working_set_bytes 2 4000\n", SENT),
        ("node_cpu_usage_seconds_total 1 3000\n", SENT),
        (
            "node_cpu_usage_seconds_total 0 3000\nnode_memory_working_set_bytes 2 4000\n",
            SENT,
        ),
        (
            "node_cpu_usage_seconds_total 1 3000\nnode_memory_working_set_bytes 0 4000\n",
            SENT,
        ),
        ("node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 2\n", 0),
        (
            "node_cpu_usage_seconds_total 1 0\nnode_memory_working_set_bytes 2 0\n",
            SENT,
        ),
        ("", SENT),
    ];
    for (body, sent) in cases {
        let batch = decode(body.as_bytes(), sent, &Limits::default()).unwrap();
        assert_eq!(batch.node, None, "{body:?}");
        assert!(batch.stats.node_incomplete, "{body:?}");
    }
    let batch = decode_ok(NODE);
    assert_eq!(batch.node, Some(point(0, ms(4000), NANOS_PER_SECOND as u64, 2)));
    assert!(!batch.stats.node_incomplete);
}

#[test]
fn incomplete_container_drops_its_whole_pod() {
    let second = |pod: &str, series: &str| format!("{series}{{container=\"x\",namespace=\"ns\",pod=\"{pod}\"}} 1 1\n");
    let body = [
        container("ok", "1", "1"),
        container("zero-cpu", "0", "1"),
        container("zero-memory", "1", "0"),
        container("cpu-only", "1", "1"),
        second("cpu-only", "container_cpu_usage_seconds_total"),
        container("memory-only", "1", "1"),
        second("memory-only", "container_memory_working_set_bytes"),
        container("start-only", "1", "1"),
        second("start-only", "container_start_time_seconds"),
        NODE.to_owned(),
    ]
    .concat();
    let batch = decode_ok(&body);
    assert_eq!(pod_names(&batch), ["ok"]);
    assert_eq!(batch.stats.dropped_pods, 5);
    assert!(batch.node.is_some(), "pods never affect the node");
}

#[test]
fn duplicate_series_last_line_wins() {
    let body = [container("p", "1", "5"), container("p", "2", "6")].concat();
    let batch = decode_ok(&body);
    assert_eq!(batch.pods.len(), 1);
    assert_eq!(batch.pods[0].containers.len(), 1);
    let got = batch.pods[0].containers[0].point;
    assert_eq!((got.cumulative_cpu, got.memory), (2 * NANOS_PER_SECOND as u64, 6));
}

#[test]
fn pods_and_containers_keep_first_seen_order() {
    let body = [container("b", "1", "1"), container("a", "1", "1")].concat();
    let two = body.replace(
        "container=\"c\",namespace=\"ns\",pod=\"b\"",
        "container=\"d\",namespace=\"ns\",pod=\"a\"",
    );
    let body = [body, two].concat();
    let batch = decode_ok(&body);
    assert_eq!(pod_names(&batch), ["b", "a"]);
    let names: Vec<_> = batch.pods[1].containers.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["c", "d"]);
}

#[test]
fn same_pod_name_in_two_namespaces_is_two_pods() {
    let body = [
        container("p", "1", "1"),
        container("p", "1", "1").replace("\"ns\"", "\"other\""),
    ]
    .concat();
    let batch = decode_ok(&body);
    let keys: Vec<_> = batch.pods.iter().map(|p| (&*p.namespace, &*p.name)).collect();
    assert_eq!(keys, [("ns", "p"), ("other", "p")]);
}

#[test]
fn label_order_and_extra_labels_do_not_matter() {
    let orders = [
        r#"{container="c",namespace="ns",pod="p"}"#,
        r#"{pod="p",namespace="ns",container="c"}"#,
        r#"{namespace="ns",container="c",pod="p"}"#,
        r#"{id="/kubepods/x",namespace="ns",image="a\"b",pod="p",container="c",}"#,
        r#"{ container = "c" , namespace="ns",	pod="p" }"#,
    ];
    for labels in orders {
        let body = format!(
            "container_cpu_usage_seconds_total{labels} 1 1\n\
             container_memory_working_set_bytes {labels} 2 2\n"
        );
        let batch = decode_ok(&body);
        assert_eq!(
            pods(&batch),
            [("ns", "p", vec![("c", point(0, ms(2), 1_000_000_000, 2))])],
            "{labels}"
        );
    }
}

#[test]
fn escaped_label_values_are_unescaped_and_owned() {
    let labels = r#"{container="a\"b\\c\nd\te",namespace="ns",pod="p\\"}"#;
    let body =
        format!("container_cpu_usage_seconds_total{labels} 1 1\ncontainer_memory_working_set_bytes{labels} 1 1\n");
    let batch = decode_ok(&body);
    let pod = &batch.pods[0];
    assert_eq!(pod.name, "p\\");
    assert!(matches!(pod.name, Cow::Owned(_)));
    assert!(matches!(pod.namespace, Cow::Borrowed(_)));
    // Unknown escapes (`\t`) are kept as written, as Prometheus' textparse does.
    assert_eq!(pod.containers[0].name, "a\"b\\c\nd\\te");
    assert_eq!(pod.containers.len(), 1);
}

#[test]
fn unicode_label_values() {
    let body = container("pöd-ünïcode-名前", "1", "1");
    assert_eq!(pod_names(&decode_ok(&body)), ["pöd-ünïcode-名前"]);
}

#[test]
fn crlf_and_blank_lines_and_no_final_newline() {
    let body = format!(
        "\r\n\n{}\r\n{}",
        container("p", "1", "1").replace('\n', "\r\n"),
        NODE.trim_end()
    );
    let batch = decode_ok(&body);
    assert_eq!(pod_names(&batch), ["p"]);
    assert_eq!(batch.node, Some(point(0, ms(4000), NANOS_PER_SECOND as u64, 2)));
    assert_eq!(batch.stats.malformed_lines, 0);
}

#[test]
fn names_match_exactly_not_by_prefix() {
    let body = "container_cpu_usage_seconds_total_extra{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 1\n\
                container_memory_working_set_bytesx{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 1\n\
                node_cpu_usage_seconds_totals 1 1\nnode_memory_working_set_bytes_total 1 1\n\
                container_start_time_seconds_total{container=\"c\",namespace=\"ns\",pod=\"p\"} 1\n\
                pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"p\"} 1 1\n\
                container_swap_usage_bytes_total{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 1\n\
                container_swap_limit_bytes{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 1\n\
                node_swap_usage_bytesx 1 1\nscrape_error 0\nresource_scrape_error 0\n\
                xcontainer_cpu_usage_seconds_total{container=\"c\",namespace=\"ns\",pod=\"p\"} 1 1\n";
    let batch = decode_ok(body);
    assert!(batch.pods.is_empty() && batch.node.is_none());
    assert_eq!((batch.stats.samples, batch.stats.malformed_lines), (0, 0));
}

/// Each malformed line drops its own series only: the pod or node it belongs to becomes
/// incomplete, everything else stays.
#[test]
fn malformed_lines_drop_only_their_series() {
    let labels = r#"{container="c",namespace="ns",pod="bad"}"#;
    let cpu = "container_cpu_usage_seconds_total";
    let cases: &[(&str, LineError)] = &[
        (&format!("{cpu}{labels}"), LineError::Value),
        (&format!("{cpu}{labels} "), LineError::Value),
        (&format!("{cpu}{labels} abc 1"), LineError::Value),
        (&format!("{cpu}{labels} 1.2.3 1"), LineError::Value),
        (&format!("{cpu}{labels} 0x1p3 1"), LineError::Value),
        (&format!("{cpu}{labels} 1 -5"), LineError::Timestamp),
        (&format!("{cpu}{labels} 1 1.5"), LineError::Timestamp),
        (&format!("{cpu}{labels} 1 +5"), LineError::Timestamp),
        (&format!("{cpu}{labels} 1 99999999999999999999"), LineError::Timestamp),
        (&format!("{cpu}{labels} 1 9223372036854776"), LineError::Timestamp),
        (&format!("{cpu}{labels} 1 1 extra"), LineError::TrailingText),
        (
            &format!("{cpu}{{container=\"c\",namespace=\"ns\",pod=\"bad\" 1 1"),
            LineError::Labels,
        ),
        (
            &format!("{cpu}{{container=\"c\" namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::Labels,
        ),
        (
            &format!("{cpu}{{container=c,namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::Labels,
        ),
        (
            &format!("{cpu}{{container=\"c,namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::Labels,
        ),
        (
            &format!("{cpu}{{container=\"c\\\",namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::Labels,
        ),
        (
            &format!("{cpu}{{1container=\"c\",namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::Labels,
        ),
        (&format!("{cpu}{{,}} 1 1"), LineError::Labels),
        (
            &format!("{cpu}{{container=\"c\",container=\"d\",namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::DuplicateLabel,
        ),
        (
            &format!("{cpu}{{namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::MissingLabel,
        ),
        (
            &format!("{cpu}{{container=\"\",namespace=\"ns\",pod=\"bad\"}} 1 1"),
            LineError::MissingLabel,
        ),
        (&format!("{cpu} 1 1"), LineError::MissingLabel),
    ];
    for (line, reason) in cases {
        let body = [
            container("good", "1", "1"),
            container("bad", "1", "1"),
            format!("{line}\n"),
            NODE.to_owned(),
        ]
        .concat();
        let batch = decode_ok(&body);
        let names = pod_names(&batch);
        let stats = &batch.stats;
        assert!(names.contains(&"good") && batch.node.is_some(), "{line}: {names:?}");
        assert_eq!(stats.malformed_lines, 1, "{line}");
        assert_eq!(
            stats.first_malformed,
            Some(Malformed {
                line: 5,
                reason: *reason
            }),
            "{line}"
        );
        // The series is dropped where the line still names it.
        let named = !matches!(
            reason,
            LineError::Labels | LineError::DuplicateLabel | LineError::MissingLabel
        );
        assert_eq!(names.contains(&"bad"), !named, "{line}: {names:?}");
    }
}

#[test]
fn malformed_node_lines_drop_the_node_only() {
    for bad in [
        "node_cpu_usage_seconds_total 1 1 1",
        "node_cpu_usage_seconds_total{ 1 1",
        "node_cpu_usage_seconds_total",
    ] {
        let body = [container("p", "1", "1"), NODE.to_owned(), format!("{bad}\n")].concat();
        let batch = decode_ok(&body);
        assert_eq!((batch.node, pod_names(&batch)), (None, vec!["p"]), "{bad}");
        assert_eq!(batch.stats.malformed_lines, 1);
    }
    // Labels on node series are parsed and ignored.
    let labelled = NODE
        .replace(" 1 3000", "{} 1 3000")
        .replace(" 2 4000", "{a=\"b\"} 2 4000");
    assert!(decode_ok(&labelled).node.is_some());
}

#[test]
fn invalid_values_drop_their_series() {
    for bad in [
        "NaN",
        "-1",
        "+Inf",
        "-Inf",
        "inf",
        "1e300",
        "18446744073.709553",
        "-0.3",
    ] {
        let body = [
            container("good", "1", "1"),
            container("bad", bad, "1"),
            NODE.replace(" 1 3000", &format!(" {bad} 3000")),
        ]
        .concat();
        let batch = decode_ok(&body);
        assert_eq!(pod_names(&batch), ["good"], "{bad}");
        assert_eq!(batch.node, None, "{bad}");
        assert_eq!(
            (batch.stats.invalid_values, batch.stats.malformed_lines),
            (2, 0),
            "{bad}"
        );
    }
    // A later invalid duplicate drops the series too: never an old or wrong number.
    let body = [container("p", "1", "1"), container("p", "NaN", "1")].concat();
    assert!(decode_ok(&body).pods.is_empty());
}

#[test]
fn large_values_in_range() {
    let body = container("p", "1.8446744073709e+10", "9.2233720368547e+18");
    let got = decode_ok(&body).pods[0].containers[0].point;
    assert_eq!(got.cumulative_cpu, 18_446_744_073_708_998_656); // the nearest f64
    assert_eq!(got.memory, 9_223_372_036_854_700_032);
}

/// A byte count at or past 2^63 is a `uint64` that wrapped below zero in the kubelet: bad
/// data, dropped like a negative value (real payload 011: `node_swap_usage_bytes
/// 1.8446743709127774e+19`).
#[test]
fn wrapped_byte_counts_are_invalid() {
    let body = container("p", "1", "1.8446743709127774e+19");
    let batch = decode_ok(&body);
    assert!(batch.pods.is_empty());
    assert_eq!(batch.stats.invalid_values, 1);
    let wrapped = format!("{}node_swap_usage_bytes 1.8446743709127774e+19 3000\n", NODE);
    let batch = decode_ok(&wrapped);
    assert_eq!(batch.node.unwrap().swap, None, "the node is served, without swap");
    assert_eq!(batch.stats.invalid_values, 1);
}

#[test]
fn swap_is_read_for_containers_and_nodes_without_deciding_completeness() {
    let labels = r#"{container="c",namespace="ns",pod="p"}"#;
    let swap = format!("container_swap_usage_bytes{labels} 3.866624e+06 9000\n");
    let body = [
        container("p", "1", "1"),
        swap.clone(),
        NODE.to_string(),
        "node_swap_usage_bytes 0 9000\n".into(),
    ]
    .concat();
    let batch = decode_ok(&body);
    let point = batch.pods[0].containers[0].point;
    assert_eq!(point.swap, Some(3_866_624));
    assert_eq!(point.timestamp, ms(2000), "swap lines leave the timestamp alone");
    assert_eq!(batch.node.unwrap().swap, Some(0));
    assert_eq!(
        decode_ok(&container("p", "1", "1")).pods[0].containers[0].point.swap,
        None
    );
    let only_swap = decode_ok(&swap);
    assert!(only_swap.pods.is_empty(), "swap alone is no sample of a container");
    assert_eq!(only_swap.stats.dropped_pods, 1);
}

/// The kubelet's own failure (only the scrape-error gauges, set to 1) is a failed scrape, so
/// the last good points stay; a 0, or samples beside a 1, are data (real payload 024).
#[test]
fn a_kubelet_scrape_error_is_a_failed_scrape() {
    let error = "# HELP resource_scrape_error [STABLE] 1 if there was an error\n\
                 # TYPE resource_scrape_error gauge\nresource_scrape_error 1\nscrape_error 1\n";
    assert_eq!(
        decode(error.as_bytes(), SENT, &Limits::default()),
        Err(DecodeError::KubeletError)
    );
    assert!(decode_ok("resource_scrape_error 0\n").pods.is_empty());
    let with_data = format!("{}resource_scrape_error 1\n", container("p", "1", "1"));
    assert_eq!(decode_ok(&with_data).pods.len(), 1);
}

#[test]
fn start_time_is_nanoseconds_and_optional() {
    let start = "container_start_time_seconds{container=\"c\",namespace=\"ns\",pod=\"p\"} 1.5\n";
    let body = [container("p", "1", "1"), start.to_owned(), container("q", "1", "1")].concat();
    let batch = decode_ok(&body);
    assert_eq!(batch.pods[0].containers[0].point.start_time, 1_500_000_000);
    assert_eq!(batch.pods[1].containers[0].point.start_time, 0);
    for bad in ["NaN", "-1", "1e10"] {
        let body = [container("p", "1", "1"), start.replace("1.5", bad)].concat();
        let batch = decode_ok(&body);
        assert_eq!(batch.pods[0].containers[0].point.start_time, 0, "{bad}");
        assert_eq!(batch.stats.invalid_values, 1, "{bad}");
    }
}

#[test]
fn too_many_container_series_stops_reading_them() {
    let body = [container("a", "1", "1"), container("b", "1", "1"), NODE.to_owned()].concat();
    let limits = Limits {
        max_series: 3,
        ..Limits::default()
    };
    let batch = decode(body.as_bytes(), SENT, &limits).unwrap();
    // The fourth container line (b's memory) is not read: b is incomplete; the node stays.
    assert_eq!(pod_names(&batch), ["a"]);
    assert!(batch.node.is_some());
    assert!(batch.stats.series_limit_hit);
    assert_eq!(batch.stats.dropped_pods, 1);
    let limits = Limits {
        max_series: 4,
        ..Limits::default()
    };
    let batch = decode(body.as_bytes(), SENT, &limits).unwrap();
    assert!(!batch.stats.series_limit_hit && batch.pods.len() == 2);
}

#[test]
fn over_long_label_value_makes_the_line_malformed() {
    let limits = Limits {
        max_label_len: 8,
        ..Limits::default()
    };
    let body = [container("12345678", "1", "1"), container("123456789", "1", "1")].concat();
    let batch = decode(body.as_bytes(), SENT, &limits).unwrap();
    assert_eq!(pod_names(&batch), ["12345678"]);
    assert_eq!(batch.stats.malformed_lines, 2);
    assert_eq!(batch.stats.first_malformed.unwrap().reason, LineError::LabelTooLong);
    // Other labels count too.
    let body = container("p", "1", "1").replace("pod=", "id=\"/kubepods/burstable\",pod=");
    assert!(decode(body.as_bytes(), SENT, &limits).unwrap().pods.is_empty());
}

#[test]
fn label_values_must_be_utf8() {
    let mut body = container("p", "1", "1").into_bytes();
    let at = body.windows(5).position(|w| w == b"pod=\"").unwrap();
    body[at + 5] = 0xff;
    let batch = decode(&body, SENT, &Limits::default()).unwrap();
    assert_eq!(batch.stats.first_malformed.unwrap().reason, LineError::LabelNotUtf8);
}

#[test]
fn a_body_that_is_not_metrics_text_is_an_error() {
    let html = "<html><body>502 Bad Gateway</body></html>\n";
    let err = decode(html.as_bytes(), SENT, &Limits::default()).unwrap_err();
    assert_eq!(err, DecodeError::NotMetricsText { lines: 1 });
    assert!(decode(&[0, 159, 146, 150], SENT, &Limits::default()).is_err());
    // Text with only comments, other series or blank lines is metrics text without data.
    for body in [
        "",
        "\n\n",
        "# HELP x\n",
        "resource_scrape_error 0\n",
        "pod_x{a=\"b\"} 1\n<html>\n",
    ] {
        let batch = decode(body.as_bytes(), SENT, &Limits::default()).unwrap();
        assert!(batch.pods.is_empty() && batch.node.is_none(), "{body:?}");
    }
    // A malformed line of our own series shows it is metrics text.
    assert!(decode(b"node_cpu_usage_seconds_total x\n", SENT, &Limits::default()).is_ok());
}

#[test]
fn samples_stamped_far_after_the_request_are_dropped() {
    let ahead = (SENT + MAX_TIMESTAMP_AHEAD) / NANOS_PER_MILLI + 1;
    let at_limit = (SENT + MAX_TIMESTAMP_AHEAD) / NANOS_PER_MILLI;
    let body = format!(
        "container_cpu_usage_seconds_total{{container=\"c\",namespace=\"ns\",pod=\"p\"}} 1 {at_limit}\n\
         container_memory_working_set_bytes{{container=\"c\",namespace=\"ns\",pod=\"p\"}} 10 {at_limit}\n\
         container_cpu_usage_seconds_total{{container=\"c\",namespace=\"ns\",pod=\"late\"}} 1 {ahead}\n\
         container_memory_working_set_bytes{{container=\"c\",namespace=\"ns\",pod=\"late\"}} 10 {at_limit}\n\
         node_cpu_usage_seconds_total 5 {ahead}\n\
         node_memory_working_set_bytes 100 {ahead}\n"
    );
    let batch = decode(body.as_bytes(), SENT, &Limits::default()).expect("decodes");
    assert_eq!(
        pod_names(&batch),
        ["p"],
        "the pod with a CPU sample too far ahead is left out"
    );
    assert_eq!(batch.pods[0].containers[0].point.timestamp, ms(at_limit));
    assert_eq!(batch.node, None, "the node's samples are too far ahead");
    assert_eq!(batch.stats.malformed_lines, 3);
    assert_eq!(
        batch.stats.first_malformed.map(|m| m.reason),
        Some(LineError::TimestampAhead)
    );
}

/// Lines indented with blanks and tabs (as in kubelet unit-test expectations, payloads 024-026)
/// are read like any others.
#[test]
fn indented_lines_are_read() {
    let body = container("p", "1", "2")
        .lines()
        .map(|l| format!("\t\t  \t{l}\n"))
        .collect::<String>();
    let batch = decode_ok(&body);
    assert_eq!(
        batch.pods[0].containers[0].point,
        point(0, ms(2000), NANOS_PER_SECOND as u64, 2)
    );
    assert_eq!(
        decode(b"\t\tresource_scrape_error 1\n", SENT, &Limits::default()),
        Err(DecodeError::KubeletError)
    );
}
