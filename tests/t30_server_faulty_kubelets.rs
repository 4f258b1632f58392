//! Faulty kubelets — one refusing connections, one hanging, one sending garbage — do not disturb
//! the other nodes; the API keeps answering within a second; a failed node's last good points
//! are served until they are older than two resolutions, then dropped.

mod support;

use http_body_util::BodyExt;
use kubesim::kubelet::Fault;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

/// GET through the aggregation proxy (plain HTTP, anonymous admin), bounded by one second.
async fn timed_get(cluster: &kubesim::Cluster, path: &str) -> (Duration, Value) {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("{}{path}", cluster.api_url()).parse().unwrap();
    let started = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(1), async {
        client
            .get(uri)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
    })
    .await
    .expect("the API answers within 1 s");
    // Not JSON (the proxy's 503 text while no replica is ready): `Null`, which lists nothing.
    (started.elapsed(), serde_json::from_slice(&resp).unwrap_or_default())
}

fn node_names(list: &Value) -> BTreeSet<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_kubelets_do_not_disturb_the_rest() {
    init_tracing();
    let cluster = kubesim::Cluster::start(kubesim::ClusterConfig {
        nodes: 5,
        pods_per_node: 3,
        seed: 103,
        ..Default::default()
    })
    .await
    .unwrap();
    let _server = start_server(&cluster, &[]).await;
    eventually(Duration::from_secs(30), "all five nodes served", async || {
        let out = kubectl(&cluster, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"]).await;
        out.status.success() && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| node_names(&v).len() == 5)
    })
    .await;

    tracing::info!("node-0 refuses connections, node-1 hangs, node-2 sends garbage");
    // Taken before the faults start: a node's last good scrape is at most this old then, and it
    // is dropped only at the third tick after it (points older than two resolutions), so the
    // node is served for at least two resolutions from here.
    let faulted = Instant::now();
    cluster
        .set_fault("node-0", Some(Fault::ConnectionRefused))
        .await
        .unwrap();
    cluster.set_fault("node-1", Some(Fault::Hang)).await.unwrap();
    cluster.set_fault("node-2", Some(Fault::Garbage)).await.unwrap();

    tracing::info!("within two resolutions the failed nodes' points are still served (last good points)");
    let (took, nodes) = timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await;
    tracing::info!(?took, "node list");
    let two_resolutions = 2 * kubesim::scenario::parse_duration(RESOLUTION).unwrap();
    assert!(
        faulted.elapsed() < two_resolutions,
        "the list must be taken within two resolutions of the faults (it took {:?})",
        faulted.elapsed()
    );
    assert_eq!(node_names(&nodes).len(), 5, "one failed scrape does not hide a node");

    tracing::info!("then they are dropped, and the healthy nodes and their pods stay served, fast");
    eventually(Duration::from_secs(20), "failed nodes dropped", async || {
        let (_, nodes) = timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await;
        node_names(&nodes) == BTreeSet::from(["node-3".to_string(), "node-4".to_string()])
    })
    .await;
    let healthy_pods: BTreeSet<String> = cluster.with_world(|w| {
        w.pods
            .values()
            .filter(|p| p.spec.node == "node-3" || p.spec.node == "node-4")
            .map(|p| p.spec.name.clone())
            .collect()
    });
    for _ in 0..5 {
        let (took, pods) = timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/pods").await;
        let served: BTreeSet<String> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(served, healthy_pods, "exactly the healthy nodes' pods");
        assert!(took < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    tracing::info!("faults cleared: every node comes back");
    for node in ["node-0", "node-1", "node-2"] {
        cluster.set_fault(node, None).await.unwrap();
    }
    eventually(Duration::from_secs(30), "all nodes back", async || {
        let (_, nodes) = timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await;
        node_names(&nodes).len() == 5
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_whose_clock_runs_ahead_is_not_served_and_no_served_timestamp_is_in_the_future() {
    init_tracing();
    let cluster = kubesim::Cluster::start(kubesim::ClusterConfig {
        nodes: 3,
        pods_per_node: 2,
        seed: 104,
        ..Default::default()
    })
    .await
    .unwrap();
    let _server = start_server(&cluster, &[]).await;
    let all = |list: &Value| node_names(list).len() == 3;
    eventually(Duration::from_secs(30), "three nodes served", async || {
        all(&timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await.1)
    })
    .await;

    tracing::info!("node-0's kubelet stamps its stats ten minutes ahead");
    cluster
        .set_fault("node-0", Some(Fault::TimestampsAhead { by_ms: 600_000 }))
        .await
        .unwrap();
    let on_node_0: BTreeSet<String> = cluster.with_world(|w| {
        w.pods
            .values()
            .filter(|p| p.spec.node == "node-0")
            .map(|p| p.spec.name.clone())
            .collect()
    });
    eventually(Duration::from_secs(30), "node-0 and its pods dropped", async || {
        let nodes = timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await.1;
        let pods = timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/pods").await.1;
        let served = node_names(&pods);
        nodes["items"].is_array() && !node_names(&nodes).contains("node-0") && served.is_disjoint(&on_node_0)
    })
    .await;

    tracing::info!("no timestamp served by any list is in the future, then node-0 comes back");
    let check_times = |list: &Value| {
        let now_ms = shard::point::now_nanos() / 1_000_000;
        for item in list["items"].as_array().unwrap() {
            let ts = millis(item["timestamp"].as_str().unwrap());
            assert!(
                ts <= now_ms + 1_000,
                "a served timestamp {ts} is ahead of now {now_ms}: {item}"
            );
        }
    };
    check_times(&timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await.1);
    check_times(&timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/pods").await.1);
    cluster.set_fault("node-0", None).await.unwrap();
    eventually(Duration::from_secs(30), "node-0 served again", async || {
        let nodes = timed_get(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await.1;
        check_times(&nodes);
        node_names(&nodes).contains("node-0")
    })
    .await;
}
