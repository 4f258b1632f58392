//! Malformed input of every class: oversized headers, paths and queries, bad and oversized
//! selectors, unknown parameters and verbs, a garbage kubelet and a kubelet that lies. Each
//! gets a Status error or is dropped and counted; the server stays up and the healthy nodes'
//! values stay within 5% of the ground truth.

use super::*;

const TOLERANCE: f64 = 0.05;

/// A path, extra headers and the status code it must get.
type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16);

async fn as_admin(cluster: &kubesim::Cluster, port: u16, path: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut headers = MASTERS.to_vec();
    headers.extend_from_slice(extra);
    get(Some(&front_proxy(cluster)), port, path, &headers).await.unwrap()
}

fn healthy_node_close_to_truth(cluster: &kubesim::Cluster, n: &Value) -> bool {
    let name = n["metadata"]["name"].as_str().unwrap();
    let (ts, window) = (
        millis(n["timestamp"].as_str().unwrap()),
        window_ms(n["window"].as_str().unwrap()),
    );
    let cpu = cores(n["usage"]["cpu"].as_str().unwrap());
    let mem = bytes(n["usage"]["memory"].as_str().unwrap());
    close_to_truth(
        cpu,
        TOLERANCE,
        |t| cluster.node_truth(name, t - window, t).map(|u| u.cpu_cores),
        ts,
    ) && close_to_truth(
        mem,
        TOLERANCE,
        |t| cluster.node_truth(name, t - window, t).map(|u| u.memory_bytes),
        ts,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_refused_and_healthy_nodes_stay_correct() {
    let cluster = cluster(4, 605).await;
    cluster
        .set_fault("node-3", Some(kubesim::kubelet::Fault::Garbage))
        .await
        .unwrap();
    let scrapes = liar::start(&cluster).await;
    let server = start_server(&cluster, &[]).await;
    let port = server.port;
    wait_ready(&cluster, port).await;

    tracing::info!("requests over the caps or malformed get Status errors");
    let long_query = format!("{PODS}?labelSelector={}", "a".repeat(17 * 1024));
    let long_selector = format!("{PODS}?labelSelector={}", "a=b,".repeat(2100));
    let long_path = format!("/apis/{}", "a".repeat(5000));
    let big_header = "a".repeat(40 * 1024);
    let cases: Vec<Case> = vec![
        (long_query, vec![], 414),
        (long_path, vec![], 414),
        (NODES.into(), vec![("X-Big", big_header.as_str())], 431),
        (format!("{PODS}?labelSelector=a+in+%28"), vec![], 400),
        (long_selector, vec![], 400),
        (format!("{PODS}?labelSelector=%ff%fe%zz"), vec![], 400),
        (format!("{PODS}?fieldSelector=status.podIP%3Dx"), vec![], 400),
        (format!("{PODS}?includeObject=Everything"), vec![], 400),
        (format!("{NODES}?watch=true"), vec![], 405),
    ];
    for (path, headers, want) in &cases {
        let (code, status) = as_admin(&cluster, port, path, headers).await;
        assert_eq!(code, *want, "{}: {status}", &path[..path.len().min(80)]);
        assert_eq!(status["kind"], "Status", "{status}");
    }
    let post = wire::request("POST", Some(&front_proxy(&cluster)), port, NODES, &MASTERS)
        .await
        .unwrap();
    assert_eq!(post.0, 405);

    tracing::info!("the lying kubelet cycles through every class of bad number");
    eventually(Duration::from_secs(60), "eight liar scrapes", async || {
        scrapes.load(Ordering::Relaxed) >= 8
    })
    .await;
    let metrics = as_admin(&cluster, port, "/metrics", &[]).await.1;
    let text = metrics.as_str().unwrap();
    let dropped = text
        .lines()
        .find(|l| l.starts_with("ha_metrics_server_kubelet_dropped_series_total{") && l.contains(liar::NODE))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(dropped.is_some_and(|d| d > 0.0), "dropped series counted: {dropped:?}");

    tracing::info!("healthy nodes are served within 5% of the truth; the liar's numbers, if any, are sane");
    eventually(Duration::from_secs(30), "healthy nodes correct", async || {
        let (code, list) = as_admin(&cluster, port, NODES, &[]).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let healthy: Vec<_> = items
            .iter()
            .filter(|n| ["node-0", "node-1", "node-2"].contains(&n["metadata"]["name"].as_str().unwrap()))
            .collect();
        code == 200 && healthy.len() == 3 && healthy.iter().all(|n| healthy_node_close_to_truth(&cluster, n))
    })
    .await;
    let (_, list) = as_admin(&cluster, port, NODES, &[]).await;
    for n in list["items"].as_array().unwrap() {
        let cpu = cores(n["usage"]["cpu"].as_str().unwrap());
        let mem = bytes(n["usage"]["memory"].as_str().unwrap());
        assert!(
            cpu.is_finite() && (0.0..1e6).contains(&cpu) && mem.is_finite() && mem >= 0.0,
            "{n}"
        );
    }
    let (code, pods) = as_admin(&cluster, port, PODS, &[]).await;
    assert_eq!(code, 200);
    let healthy_pods = cluster.with_world(|w| {
        w.pods
            .values()
            .filter(|p| p.phase == kubesim::sim::PodPhase::Running && p.spec.node != "node-3")
            .count()
    });
    let served = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["namespace"] != "liar-ns")
        .count();
    assert!(served >= healthy_pods, "served {served} of {healthy_pods} healthy pods");
    assert_eq!(as_admin(&cluster, port, "/livez", &[]).await.0, 200);
    cluster.shutdown();
}
