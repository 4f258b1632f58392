//! The API beyond metrics-server's, end to end, one replica behind kubesim's aggregation proxy: `metrics.k8s.io/v1`
//! beside `v1beta1` with kubectl 1.27 to 1.33, protobuf bodies decoded by an independent
//! implementation (Python `protobuf` with `tests/proto/k8s_metrics.proto`), `spec.nodeName`
//! field selectors, `limit`/`continue` pages and their expiry (in JSON and in protobuf), swap, a
//! kubelet without `node_*` series, and the discovery and OpenAPI documents the kube-aggregator
//! reads from the replica (`/apis` legacy and aggregated, `/openapi/v2`, `/openapi/v3`), asked of
//! the replica over HTTPS as the aggregator does (kubesim proxies only
//! `/apis/metrics.k8s.io/{version}/...` and serves `/apis` from its own table).

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// What kubectl `top` sends.
const KUBECTL_TOP_ACCEPT: &str = "application/vnd.kubernetes.protobuf, */*";
const KUBECTL_VERSIONS: [&str; 7] = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"];

/// GET through kubesim's apiserver (its aggregation proxy for metrics paths) with `accept`.
async fn api_get(cluster: &kubesim::Cluster, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let req = http::Request::get(format!("{}{path}", cluster.api_url()))
        .header("Accept", accept)
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    answer(resp).await
}

/// An answer's status, Content-Type and body.
async fn answer(resp: http::Response<hyper::body::Incoming>) -> (u16, String, Vec<u8>) {
    use http_body_util::BodyExt;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, content_type, body)
}

/// GET straight at the replica on `port` with `accept`, as the kube-aggregator asks its
/// APIService's backend (front-proxy client certificate, user headers): status, Content-Type,
/// body.
async fn replica_get(cluster: &kubesim::Cluster, port: u16, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let identity = kubesim::pki::Leaf::load(cluster.dir(), "front-proxy-client").unwrap();
    let client = kubesim::tls::https_client(kubesim::tls::insecure_client(Some(&identity)).unwrap());
    let req = http::Request::get(format!("https://127.0.0.1:{port}{path}"))
        .header("Accept", accept)
        .header("X-Remote-User", "admin")
        .header("X-Remote-Group", "system:masters")
        .body(kubesim::http::empty())
        .unwrap();
    let resp = client.request(req).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    answer(resp).await
}

/// [`replica_get`] of a JSON document: asserts 200 and a JSON Content-Type, parses the body.
async fn replica_json(cluster: &kubesim::Cluster, port: u16, path: &str) -> Value {
    let (status, content_type, body) = replica_get(cluster, port, path, "application/json").await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    assert!(content_type.starts_with("application/json"), "{path}: {content_type}");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                out.push(target.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Asserts that every `$ref` of `doc` points at one of its `schemas` (under `prefix`); a client
/// that resolves a kind's fields (kubectl explain) follows them.
fn refs_resolve(what: &str, doc: &Value, prefix: &str, schemas: &serde_json::Map<String, Value>) {
    let mut found = Vec::new();
    refs(doc, &mut found);
    assert!(!found.is_empty(), "{what}: no $ref");
    for target in found {
        let name = target
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{what}: {target} outside {prefix}"));
        assert!(schemas.contains_key(name), "{what}: dangling {target}");
    }
}

/// The definition names of the metrics kinds in `version`, as kube-openapi names Go types.
fn metrics_definition(version: &str, kind: &str) -> String {
    format!("io.k8s.metrics.pkg.apis.metrics.{version}.{kind}")
}

/// What clients read from the metrics schemas of `version` in `schemas`: the kinds, each tagged
/// with its group/version/kind (how kubectl explain finds a kind's schema), PodMetrics and
/// NodeMetrics with their fields, the containers pointing at ContainerMetrics of the same
/// version; and no other definition carrying one of those group/version/kinds.
fn check_metrics_schemas(what: &str, schemas: &serde_json::Map<String, Value>, version: &str, prefix: &str) {
    for kind in ["NodeMetrics", "PodMetrics", "NodeMetricsList", "PodMetricsList"] {
        let gvk = json!([{"group": "metrics.k8s.io", "version": version, "kind": kind}]);
        let tagged: Vec<&String> = schemas
            .iter()
            .filter(|(_, s)| s["x-kubernetes-group-version-kind"] == gvk)
            .map(|(name, _)| name)
            .collect();
        assert_eq!(tagged, [&metrics_definition(version, kind)], "{what}: {kind} {version}");
    }
    let node = &schemas[&metrics_definition(version, "NodeMetrics")];
    let pod = &schemas[&metrics_definition(version, "PodMetrics")];
    for (schema, fields) in [
        (node, ["metadata", "timestamp", "window", "usage"]),
        (pod, ["metadata", "timestamp", "window", "containers"]),
    ] {
        for field in fields {
            assert!(
                schema["properties"].get(field).is_some(),
                "{what} {version}: {field} in {schema}"
            );
        }
    }
    assert_eq!(
        pod["properties"]["containers"]["items"]["$ref"],
        format!("{prefix}{}", metrics_definition(version, "ContainerMetrics")),
        "{what} {version}"
    );
    assert_eq!(
        schemas[&metrics_definition(version, "PodMetricsList")]["properties"]["items"]["items"]["$ref"],
        format!("{prefix}{}", metrics_definition(version, "PodMetrics")),
        "{what} {version}"
    );
}

/// The GET paths of one version, with the kind each answers.
fn metrics_paths(version: &str) -> Vec<(String, &'static str)> {
    [
        ("/pods", "PodMetricsList"),
        ("/namespaces/{namespace}/pods", "PodMetricsList"),
        ("/namespaces/{namespace}/pods/{name}", "PodMetrics"),
        ("/nodes", "NodeMetricsList"),
        ("/nodes/{name}", "NodeMetrics"),
    ]
    .into_iter()
    .map(|(suffix, kind)| (format!("/apis/metrics.k8s.io/{version}{suffix}"), kind))
    .collect()
}

/// `(namespace, name)` of the items of a decoded protobuf list.
fn decoded_names(decoded: &Value) -> Vec<(String, String)> {
    decoded["object"]["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let meta = &i["metadata"];
            (
                meta["namespace"].as_str().unwrap_or("").to_string(),
                meta["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The continue token of a decoded protobuf list (ListMeta field 3), if not empty.
fn decoded_continue(decoded: &Value) -> Option<String> {
    decoded["object"]["metadata"]["continue"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(String::from)
}

/// A protobuf body decoded by `tests/proto/decode.py`: `{"apiVersion", "kind", "object"}`.
fn python_decode(cluster: &kubesim::Cluster, body: &[u8]) -> Value {
    let file = cluster.dir().join(format!("body-{}.pb", free_port()));
    std::fs::write(&file, body).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/proto/decode.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "decode.py failed (.ci/run installs protobuf and grpcio-tools): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// kubectl of one minor version, fresh cache.
async fn kubectl_version(cluster: &kubesim::Cluster, version: &str, args: &[&str]) -> std::process::Output {
    kubectl_bin(
        cluster,
        &format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}"),
        args,
    )
    .await
}

fn names(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let ns = i["metadata"]["namespace"].as_str().unwrap_or("").to_string();
            (ns, i["metadata"]["name"].as_str().unwrap().to_string())
        })
        .collect()
}

async fn wait_pods(cluster: &kubesim::Cluster, want: usize) {
    eventually(Duration::from_secs(60), "every pod served", async || {
        let out = kubectl(cluster, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods"]).await;
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout)
                .is_ok_and(|v| v["items"].as_array().map_or(0, Vec::len) == want)
    })
    .await;
}

/// A JSON list and its protobuf twin from the same moment: fetched JSON, protobuf, JSON until
/// the two JSON answers agree (no scrape landed in between).
async fn same_moment(cluster: &kubesim::Cluster, path: &str) -> (Value, Vec<u8>) {
    for _ in 0..20 {
        let strip = |mut v: Value| {
            for item in v["items"].as_array_mut().into_iter().flatten() {
                item["metadata"]["creationTimestamp"] = Value::Null;
            }
            v
        };
        let (_, _, a) = api_get(cluster, path, "application/json").await;
        let (status, content_type, pb) = api_get(cluster, path, KUBECTL_TOP_ACCEPT).await;
        let (_, _, b) = api_get(cluster, path, "application/json").await;
        assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
        let (a, b) = (
            strip(serde_json::from_slice(&a).unwrap()),
            strip(serde_json::from_slice(&b).unwrap()),
        );
        if a == b {
            return (a, pb);
        }
    }
    panic!("the answers never held still");
}

/// The protobuf decoding of a metrics list, in JSON's terms (times as RFC 3339 seconds, windows
/// as Go durations), to compare with the JSON answer.
fn as_json_list(decoded: &Value) -> Value {
    let seconds = |t: &Value| t["seconds"].as_str().and_then(|s| s.parse::<i64>().ok());
    let rfc3339 = |s: i64| {
        jiff::Timestamp::from_second(s)
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let items: Vec<Value> = decoded["object"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let usage = |u: &Value| -> Value {
                u.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, q)| (k.clone(), q["string"].clone()))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            };
            let mut meta = json!({"name": i["metadata"]["name"], "creationTimestamp": null});
            if let Some(ns) = i["metadata"]["namespace"].as_str().filter(|ns| !ns.is_empty()) {
                meta["namespace"] = json!(ns);
            }
            if let Some(labels) = i["metadata"].get("labels") {
                meta["labels"] = labels.clone();
            }
            let window_ns = i["window"]["duration"].as_str().unwrap_or("0").parse::<i64>().unwrap();
            let mut out = json!({
                "metadata": meta,
                "timestamp": seconds(&i["timestamp"]).map(rfc3339),
                "window": format!("{}", chaos_duration(window_ns)),
            });
            match i.get("containers") {
                Some(cs) => {
                    let cs: Vec<Value> = cs
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| json!({"name": c["name"], "usage": usage(&c["usage"])}))
                        .collect();
                    out["containers"] = json!(cs);
                }
                None if i.get("usage").is_some() => out["usage"] = usage(&i["usage"]),
                None => out["containers"] = json!([]),
            }
            out
        })
        .collect();
    json!(items)
}

/// A Go duration string of `ns` nanoseconds (the windows served are seconds with milliseconds).
fn chaos_duration(ns: i64) -> String {
    let ms = ns / 1_000_000;
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    }
}

/// JSON items as `as_json_list` writes them (key order does not matter to `Value`).
fn json_items(list: &Value) -> Value {
    list["items"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_protobuf_node_name_and_swap_through_kubectl() {
    let cluster = cluster(3, 4, 131).await;
    tracing::info!("a node whose kubelet has swap statistics, with two pods using swap in namespace swappy");
    let added = cluster
        .act(kubesim::cluster::actions::Action::AddNode { swap: true })
        .await
        .unwrap();
    let swap_node = added["node"].as_str().unwrap().to_string();
    for name in ["swapper-a", "swapper-b"] {
        let request = kubesim::cluster::actions::PodRequest {
            node: Some(swap_node.clone()),
            namespace: Some("swappy".into()),
            name: Some(name.into()),
            containers: Some(2),
            swap_bytes: Some(3_866_624.0),
            ..Default::default()
        };
        cluster
            .act(kubesim::cluster::actions::Action::AddPod(request))
            .await
            .unwrap();
    }
    let _server = start_server(&cluster, &[]).await;
    let all = running_pods(&cluster);
    wait_pods(&cluster, all.len()).await;

    tracing::info!("v1 and v1beta1 serve the same objects under their own apiVersion");
    for version in ["v1", "v1beta1"] {
        let nodes = raw(&cluster, &format!("/apis/metrics.k8s.io/{version}/nodes")).await;
        assert_eq!(nodes["apiVersion"], format!("metrics.k8s.io/{version}"));
        assert_eq!(names(&nodes).len(), 4);
        let pods = raw(&cluster, &format!("/apis/metrics.k8s.io/{version}/pods")).await;
        assert_eq!(names(&pods).into_iter().collect::<BTreeSet<_>>(), all);
        let group = raw(&cluster, &format!("/apis/metrics.k8s.io/{version}")).await;
        assert_eq!(group["groupVersion"], format!("metrics.k8s.io/{version}"));
    }
    let one = raw(&cluster, "/apis/metrics.k8s.io/v1/namespaces/swappy/pods/swapper-a").await;
    assert_eq!(
        (one["kind"].as_str(), one["apiVersion"].as_str()),
        (Some("PodMetrics"), Some("metrics.k8s.io/v1"))
    );

    tracing::info!("kubectl 1.27 to 1.33: top node, top pod -A, get podmetrics (v1 by discovery)");
    for version in KUBECTL_VERSIONS {
        let top = kubectl_version(&cluster, version, &["top", "node"]).await;
        let text = stdout(&top);
        assert!(
            text.contains("node-0") && text.contains(&swap_node),
            "{version}: {text}"
        );
        let pods = stdout(&kubectl_version(&cluster, version, &["top", "pod", "-A"]).await);
        assert_eq!(pods.lines().count(), all.len() + 1, "{version}: {pods}");
        let get = stdout(&kubectl_version(&cluster, version, &["get", "podmetrics", "-n", "swappy"]).await);
        assert!(
            get.contains("swapper-a") && get.contains("swapper-b"),
            "{version}: {get}"
        );
    }
    let verbose = kubectl(&cluster, &["top", "pod", "-A", "-v=8"]).await;
    let log = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        log.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl top was answered in protobuf"
    );
    let verbose = kubectl(&cluster, &["get", "podmetrics", "-A", "-v=6"]).await;
    assert!(
        String::from_utf8_lossy(&verbose.stderr).contains("/apis/metrics.k8s.io/v1/pods"),
        "get prefers v1"
    );

    tracing::info!("protobuf lists decode (Python protobuf, our .proto) to the JSON answer's values");
    for path in ["/apis/metrics.k8s.io/v1beta1/pods", "/apis/metrics.k8s.io/v1/nodes"] {
        let (json_list, pb) = same_moment(&cluster, path).await;
        let decoded = python_decode(&cluster, &pb);
        assert_eq!(decoded["apiVersion"], json_list["apiVersion"], "{path}");
        assert_eq!(decoded["kind"], json_list["kind"], "{path}");
        assert_eq!(as_json_list(&decoded), json_items(&json_list), "{path}");
    }
    let (status, content_type, body) = api_get(
        &cluster,
        "/apis/metrics.k8s.io/v1/namespaces/swappy/pods/nope",
        KUBECTL_TOP_ACCEPT,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (404, PROTOBUF));
    let status = python_decode(&cluster, &body);
    assert_eq!(
        (status["apiVersion"].as_str(), status["kind"].as_str()),
        (Some("v1"), Some("Status"))
    );
    assert_eq!(status["object"]["code"], 404);
    assert_eq!(status["object"]["reason"], "NotFound");
    assert_eq!(status["object"]["message"], "pods \"nope\" not found");
    let (status, _, body) = api_get(
        &cluster,
        "/apis/metrics.k8s.io/v1/pods?fieldSelector=status.phase%3DRunning",
        PROTOBUF,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(python_decode(&cluster, &body)["object"]["reason"], "BadRequest");

    tracing::info!("spec.nodeName: the pods that node's kubelet reports, through kubectl top too");
    let on_node = |node: &str| -> BTreeSet<(String, String)> {
        cluster.with_world(|w| {
            w.running_pods(&w.nodes[node])
                .map(|p| (p.spec.namespace.clone(), p.spec.name.clone()))
                .collect()
        })
    };
    for node in ["node-1", swap_node.as_str()] {
        let list = raw(
            &cluster,
            &format!("/apis/metrics.k8s.io/v1/pods?fieldSelector=spec.nodeName%3D{node}"),
        )
        .await;
        assert_eq!(
            names(&list).into_iter().collect::<BTreeSet<_>>(),
            on_node(node),
            "{node}"
        );
        let top = stdout(
            &kubectl(
                &cluster,
                &["top", "pod", "-A", "--field-selector", &format!("spec.nodeName={node}")],
            )
            .await,
        );
        let shown: BTreeSet<(String, String)> = top
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].to_string(), f[1].to_string())
            })
            .collect();
        assert_eq!(
            shown,
            on_node(node),
            "kubectl top --field-selector spec.nodeName={node}"
        );
    }
    let not_on = raw(
        &cluster,
        "/apis/metrics.k8s.io/v1/pods?fieldSelector=spec.nodeName!%3Dnode-1",
    )
    .await;
    assert_eq!(names(&not_on).len(), all.len() - on_node("node-1").len());
    let out = kubectl(
        &cluster,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1/nodes?fieldSelector=spec.nodeName%3Dx",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a known field selector"));

    tracing::info!("swap: the kubelet's values for the swap node's containers and the node, absent elsewhere");
    let pods = raw(&cluster, "/apis/metrics.k8s.io/v1/pods").await;
    for item in pods["items"].as_array().unwrap() {
        let ns = item["metadata"]["namespace"].as_str().unwrap();
        for c in item["containers"].as_array().unwrap() {
            match ns {
                "swappy" => assert_eq!(c["usage"]["swap"], "3776Ki", "{item}"),
                _ => assert!(c["usage"].get("swap").is_none(), "{item}"),
            }
        }
    }
    let node = raw(&cluster, &format!("/apis/metrics.k8s.io/v1/nodes/{swap_node}")).await;
    let now = kubesim::kubelet::server::now_ms();
    let truth = cluster.node_truth(&swap_node, now, now).unwrap().swap_bytes.unwrap();
    assert_eq!(bytes(node["usage"]["swap"].as_str().unwrap()), truth);
    assert_eq!(truth, 4.0 * 3_866_624.0);
    assert!(
        raw(&cluster, "/apis/metrics.k8s.io/v1/nodes/node-0").await["usage"]
            .get("swap")
            .is_none()
    );
    let table = stdout(&kubectl(&cluster, &["get", "podmetrics", "-n", "swappy"]).await);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "CPU", "MEMORY", "SWAP", "WINDOW"]);
    assert!(
        table.lines().skip(1).all(|l| l.contains("7552Ki")),
        "two containers' swap summed: {table}"
    );
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_continue_tokens_and_expire() {
    let cluster = cluster(3, 5, 137).await;
    let _server = start_server(&cluster, &["--continue-token-lifetime=3s"]).await;
    let all = running_pods(&cluster);
    wait_pods(&cluster, all.len()).await;

    tracing::info!("limit=4 pages: every pod once, in order, the last page without a token");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("/apis/metrics.k8s.io/v1/pods?limit=4&continue={t}"),
            None => "/apis/metrics.k8s.io/v1/pods?limit=4".to_string(),
        };
        let page = raw(&cluster, &path).await;
        let items = names(&page);
        assert!(items.len() <= 4);
        seen.extend(items);
        pages += 1;
        match page["metadata"]["continue"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, all.len().div_ceil(4));
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages follow the list order");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);

    tracing::info!("the same pages in protobuf: ListMeta.continue, decoded by Python protobuf");
    let mut pb_seen = Vec::new();
    let mut token: Option<String> = None;
    let mut first_pb_token = None;
    let mut pb_pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("/apis/metrics.k8s.io/v1/pods?limit=4&continue={t}"),
            None => "/apis/metrics.k8s.io/v1/pods?limit=4".to_string(),
        };
        let (status, content_type, body) = api_get(&cluster, &path, PROTOBUF).await;
        assert_eq!((status, content_type.as_str()), (200, PROTOBUF), "{path}");
        let decoded = python_decode(&cluster, &body);
        assert_eq!(
            (decoded["apiVersion"].as_str(), decoded["kind"].as_str()),
            (Some("metrics.k8s.io/v1"), Some("PodMetricsList"))
        );
        let items = decoded_names(&decoded);
        assert!(!items.is_empty() && items.len() <= 4, "{path}: {items:?}");
        pb_seen.extend(items);
        pb_pages += 1;
        match decoded_continue(&decoded) {
            Some(t) => {
                first_pb_token.get_or_insert(t.clone());
                token = Some(t)
            }
            None => break,
        }
    }
    assert_eq!(pb_pages, pages, "as many protobuf pages as JSON pages");
    assert_eq!(pb_seen, seen, "the protobuf pages hold the JSON pages' pods, in order");
    let first_pb_token = first_pb_token.expect("more than one page");
    let json_next = raw(
        &cluster,
        &format!("/apis/metrics.k8s.io/v1/pods?limit=4&continue={first_pb_token}"),
    )
    .await;
    assert_eq!(
        names(&json_next),
        seen[4..8],
        "a protobuf page's token continues a JSON list"
    );

    tracing::info!("kubectl get pages with --chunk-size and shows every pod; nodes page too");
    let table = stdout(&kubectl(&cluster, &["get", "podmetrics", "-A", "--chunk-size=3"]).await);
    assert_eq!(table.lines().count(), all.len() + 1, "{table}");
    let nodes = raw(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes?limit=2").await;
    assert_eq!(names(&nodes).len(), 2);
    let next = nodes["metadata"]["continue"].as_str().unwrap();
    let rest = raw(
        &cluster,
        &format!("/apis/metrics.k8s.io/v1beta1/nodes?limit=2&continue={next}"),
    )
    .await;
    assert_eq!(
        names(&rest).iter().map(|n| n.1.as_str()).collect::<Vec<_>>(),
        ["node-2"]
    );
    assert!(rest["metadata"].get("continue").is_none());

    tracing::info!("a token older than --continue-token-lifetime: 410 Expired, with a fresh token that works");
    let first = raw(&cluster, "/apis/metrics.k8s.io/v1/pods?limit=5").await;
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let (status, _, body) = api_get(&cluster, "/apis/metrics.k8s.io/v1/pods?limit=5", PROTOBUF).await;
    assert_eq!(status, 200);
    let pb_token = decoded_continue(&python_decode(&cluster, &body)).expect("a protobuf continue token");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let path = format!("/apis/metrics.k8s.io/v1/pods?limit=5&continue={token}");
    let (status, _, body) = api_get(&cluster, &path, "application/json").await;
    assert_eq!(status, 410);
    let expired: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (expired["reason"].as_str(), expired["code"].as_i64()),
        (Some("Expired"), Some(410))
    );
    assert!(
        expired["message"]
            .as_str()
            .unwrap()
            .starts_with("The provided continue parameter is too old")
    );
    let fresh = expired["metadata"]["continue"].as_str().unwrap();
    let resumed = raw(
        &cluster,
        &format!("/apis/metrics.k8s.io/v1/pods?limit=5&continue={fresh}"),
    )
    .await;
    assert_eq!(
        names(&resumed)[0],
        names(&raw(&cluster, "/apis/metrics.k8s.io/v1/pods?limit=6").await)[5]
    );
    let out = kubectl(&cluster, &["get", "--raw", &path]).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Expired"),
        "kubectl names the reason"
    );

    tracing::info!("the expired protobuf token: a protobuf Status 410 whose ListMeta holds a fresh token");
    let path = format!("/apis/metrics.k8s.io/v1/pods?limit=5&continue={pb_token}");
    let (status, content_type, body) = api_get(&cluster, &path, PROTOBUF).await;
    assert_eq!((status, content_type.as_str()), (410, PROTOBUF));
    let expired = python_decode(&cluster, &body);
    assert_eq!(
        (expired["apiVersion"].as_str(), expired["kind"].as_str()),
        (Some("v1"), Some("Status"))
    );
    let object = &expired["object"];
    assert_eq!(
        (
            object["code"].as_i64(),
            object["reason"].as_str(),
            object["status"].as_str()
        ),
        (Some(410), Some("Expired"), Some("Failure")),
        "{object}"
    );
    assert!(
        object["message"]
            .as_str()
            .unwrap()
            .starts_with("The provided continue parameter is too old"),
        "{object}"
    );
    let fresh = object["metadata"]["continue"]
        .as_str()
        .filter(|t| !t.is_empty())
        .expect("a fresh token in Status.metadata");
    let (status, _, body) = api_get(
        &cluster,
        &format!("/apis/metrics.k8s.io/v1/pods?limit=5&continue={fresh}"),
        PROTOBUF,
    )
    .await;
    assert_eq!(status, 200);
    let resumed = decoded_names(&python_decode(&cluster, &body));
    assert_eq!(resumed.len(), 5);
    assert_eq!(resumed[0], seen[5], "the fresh token resumes after the expired page");
    let (status, _, body) = api_get(
        &cluster,
        "/apis/metrics.k8s.io/v1/pods?limit=5&continue=garbage",
        "application/json",
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    cluster.shutdown();
}

/// k3s#14554: kubelets that report pods but no `node_*` series. The pods are served, the replica
/// is ready (metrics-server v0.9 stays unready and takes the API down), nodes have no metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelets_without_node_series_leave_pods_served_and_readiness_green() {
    use kubesim::kubelet::faults::{Family, Fault};
    let cluster = cluster(2, 3, 139).await;
    for node in ["node-0", "node-1"] {
        let families = vec![Family::NodeCpuUsageSecondsTotal, Family::NodeMemoryWorkingSetBytes];
        cluster
            .set_fault(node, Some(Fault::MissingSeries { families }))
            .await
            .unwrap();
    }
    let server = start_server(&cluster, &[]).await;
    let all = running_pods(&cluster);
    wait_pods(&cluster, all.len()).await;
    let (code, body) = direct_get(&cluster, server.port, "/readyz?verbose").await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("[+]metric-storage-ready ok"), "{body}");
    let top = stdout(&kubectl(&cluster, &["top", "pod", "-A"]).await);
    assert_eq!(top.lines().count(), all.len() + 1);
    let out = kubectl(&cluster, &["get", "--raw", "/apis/metrics.k8s.io/v1/nodes/node-0"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
    cluster.shutdown();
}

/// The documents the kube-aggregator and clients read before the Metrics API, from the replica
/// itself: `/apis` in legacy and aggregated (`apidiscovery.k8s.io/v2`) form with
/// `metrics.k8s.io` `v1` first then `v1beta1`, and the OpenAPI v2 and v3 documents with the
/// PodMetrics and NodeMetrics schemas of each version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_openapi_are_served_for_both_versions() {
    let cluster = cluster(1, 1, 143).await;
    let server = start_server(&cluster, &[]).await;
    let port = server.port;
    eventually(Duration::from_secs(30), "the replica listens", async || {
        direct_get(&cluster, port, "/apis")
            .await
            .is_ok_and(|(code, _)| code == 200)
    })
    .await;
    let versions = ["v1", "v1beta1"];

    tracing::info!("/apis, legacy: APIGroupList with v1 preferred");
    for accept in [
        "application/json",
        // A client that knows only v2beta1 (kubectl 1.27): not served, so legacy, labelled so.
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
    ] {
        let (status, content_type, body) = replica_get(&cluster, port, "/apis", accept).await;
        assert_eq!((status, content_type.as_str()), (200, "application/json"), "{accept}");
        let list: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(list["kind"], "APIGroupList", "{accept}");
        let groups = list["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{list}");
        assert_eq!(groups[0]["name"], "metrics.k8s.io");
        let served: Vec<&str> = groups[0]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["groupVersion"].as_str().unwrap())
            .collect();
        assert_eq!(served, ["metrics.k8s.io/v1", "metrics.k8s.io/v1beta1"], "{accept}");
        assert_eq!(groups[0]["preferredVersion"]["version"], "v1", "{accept}");
    }

    tracing::info!("/apis, aggregated v2: APIGroupDiscoveryList, v1 first, both with nodes and pods");
    const V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    for accept in [
        V2.to_string(),
        // What kubectl 1.30+ and client-go send: v2, then v2beta1, then legacy.
        format!("{V2},application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"),
    ] {
        let (status, content_type, body) = replica_get(&cluster, port, "/apis", &accept).await;
        assert_eq!(status, 200, "{accept}");
        // client-go decides how to decode by this Content-Type (it must name v2).
        assert_eq!(content_type.replace(' ', ""), V2, "{accept}");
        let list: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (list["apiVersion"].as_str(), list["kind"].as_str()),
            (Some("apidiscovery.k8s.io/v2"), Some("APIGroupDiscoveryList"))
        );
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["metadata"]["name"], "metrics.k8s.io");
        let group_versions = items[0]["versions"].as_array().unwrap();
        let names: Vec<&str> = group_versions.iter().map(|v| v["version"].as_str().unwrap()).collect();
        assert_eq!(names, versions, "v1 first: the order is the preference");
        for version in group_versions {
            assert_eq!(version["freshness"], "Current", "{version}");
            let resources: BTreeSet<(String, String, String, Vec<String>)> = version["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let verbs = r["verbs"].as_array().unwrap().iter();
                    (
                        r["resource"].as_str().unwrap().to_string(),
                        r["scope"].as_str().unwrap().to_string(),
                        r["responseKind"]["kind"].as_str().unwrap().to_string(),
                        verbs.map(|v| v.as_str().unwrap().to_string()).collect(),
                    )
                })
                .collect();
            let want: BTreeSet<(String, String, String, Vec<String>)> = [
                ("nodes", "Cluster", "NodeMetrics"),
                ("pods", "Namespaced", "PodMetrics"),
            ]
            .into_iter()
            .map(|(r, s, k)| (r.into(), s.into(), k.into(), vec!["get".into(), "list".into()]))
            .collect();
            assert_eq!(resources, want, "{version}");
        }
    }

    tracing::info!("/openapi/v2: one Swagger document with both versions' paths and schemas");
    let v2 = replica_json(&cluster, port, "/openapi/v2").await;
    assert_eq!(v2["swagger"], "2.0");
    let definitions = v2["definitions"].as_object().unwrap();
    refs_resolve("/openapi/v2", &v2, "#/definitions/", definitions);
    for version in versions {
        check_metrics_schemas("/openapi/v2", definitions, version, "#/definitions/");
        for (path, kind) in metrics_paths(version) {
            let get = &v2["paths"][&path]["get"];
            assert_eq!(
                get["responses"]["200"]["schema"]["$ref"],
                format!("#/definitions/{}", metrics_definition(version, kind)),
                "/openapi/v2 {path}"
            );
        }
    }

    tracing::info!("/openapi/v3: the index names both group versions; each document has its own");
    let index = replica_json(&cluster, port, "/openapi/v3").await;
    let listed: BTreeSet<&str> = index["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        listed,
        BTreeSet::from(["apis/metrics.k8s.io/v1", "apis/metrics.k8s.io/v1beta1"])
    );
    let mut hashes = BTreeSet::new();
    for version in versions {
        let url = index["paths"][format!("apis/metrics.k8s.io/{version}")]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .to_string();
        let plain = format!("/openapi/v3/apis/metrics.k8s.io/{version}");
        let hash = url
            .strip_prefix(&format!("{plain}?hash="))
            .unwrap_or_else(|| panic!("{url}"));
        assert!(!hash.is_empty());
        hashes.insert(hash.to_string());
        // client-go fetches serverRelativeURL as given; a plain GET is the same document.
        let doc = replica_json(&cluster, port, &url).await;
        assert_eq!(replica_json(&cluster, port, &plain).await, doc, "{plain}");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{plain}");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        refs_resolve(&plain, &doc, "#/components/schemas/", schemas);
        check_metrics_schemas(&plain, schemas, version, "#/components/schemas/");
        let other = if version == "v1" { "v1beta1" } else { "v1" };
        assert!(
            !schemas.contains_key(&metrics_definition(other, "PodMetrics")),
            "{plain} holds only {version}"
        );
        let paths: BTreeSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            paths
                .iter()
                .all(|p| p.starts_with(&format!("/apis/metrics.k8s.io/{version}/"))),
            "{plain}: {paths:?}"
        );
        for (path, kind) in metrics_paths(version) {
            let get = &doc["paths"][&path]["get"];
            assert_eq!(
                get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{}", metrics_definition(version, kind)),
                "{plain} {path}"
            );
        }
    }
    assert_eq!(
        hashes.len(),
        2,
        "each document has its own hash (a client caches by it)"
    );
    cluster.shutdown();
}
