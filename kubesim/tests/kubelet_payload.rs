//! A fake kubelet's `/metrics/resource` parses as Prometheus text (with an independent parser),
//! is laid out as the kubelet lays it out, and carries the simulator's ground truth.

mod common;

use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_parses_and_matches_ground_truth() {
    let cluster = common::cluster(3, 6, 11).await;
    for node in ["node-0", "node-1", "node-2"] {
        tracing::info!(node, "scrape and compare every series with ground truth");
        let scraped = common::scrape(&cluster, node).await.unwrap();
        assert_eq!(scraped.status, 200);
        let body = scraped.body.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        let scrape = common::parse(&body);

        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut sorted = families.clone();
        sorted.sort();
        assert_eq!(families, sorted, "families sorted by name");
        for f in [
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "container_start_time_seconds",
            "node_cpu_usage_seconds_total",
            "node_memory_working_set_bytes",
            "pod_cpu_usage_seconds_total",
            "pod_memory_working_set_bytes",
            "resource_scrape_error",
        ] {
            assert!(families.contains(&f), "{f} present");
            assert!(scrape.docs.contains_key(f), "{f} has HELP");
        }
        for f in [
            "container_swap_usage_bytes",
            "node_swap_usage_bytes",
            "pod_swap_usage_bytes",
        ] {
            assert!(!families.contains(&f), "{f}: a node without swap statistics has none");
        }

        let cpu = common::samples(&scrape, "container_cpu_usage_seconds_total");
        let mem = common::samples(&scrape, "container_memory_working_set_bytes");
        let starts = common::samples(&scrape, "container_start_time_seconds");
        let expected: BTreeSet<String> = cluster.with_world(|w| {
            let n = &w.nodes[node];
            w.running_pods(n)
                .flat_map(|p| {
                    p.reported_containers()
                        .map(move |c| format!("{}/{}/{}", p.spec.namespace, p.spec.name, c.spec.name))
                })
                .collect()
        });
        assert!(!expected.is_empty());
        assert_eq!(
            cpu.iter().map(|s| s.0.clone()).collect::<BTreeSet<_>>(),
            expected,
            "one series per running container"
        );
        let mut keys: Vec<_> = cpu.iter().map(|s| s.0.clone()).collect();
        let unsorted = keys.clone();
        keys.sort_by_key(|k| {
            let p: Vec<&str> = k.split('/').collect();
            (p[2].to_string(), p[0].to_string(), p[1].to_string())
        });
        assert_eq!(keys, unsorted, "series sorted by container, namespace, pod labels");

        for ((key, cpu_s, ts), (key2, mem_b, ts2)) in cpu.iter().zip(&mem) {
            assert_eq!((key, ts), (key2, ts2));
            let p: Vec<&str> = key.split('/').collect();
            let truth = cluster.pod_truth(p[0], p[1], *ts, *ts).unwrap();
            let c = truth.containers.iter().find(|c| c.name == p[2]).unwrap();
            assert!(
                (c.usage.cpu_seconds - cpu_s).abs() <= 1e-9 * cpu_s.max(1.0),
                "{key}: {cpu_s} vs {}",
                c.usage.cpu_seconds
            );
            assert_eq!(c.usage.memory_bytes, *mem_b, "{key} memory");
            assert_eq!(mem_b.fract(), 0.0, "memory is whole bytes");
            let start = starts.iter().find(|s| &s.0 == key).unwrap().1;
            assert!((start * 1000.0 - c.started as f64).abs() < 1.0, "{key} start time");
        }

        let node_cpu = common::samples(&scrape, "node_cpu_usage_seconds_total")[0].clone();
        let node_mem = common::samples(&scrape, "node_memory_working_set_bytes")[0].clone();
        let truth = cluster.node_truth(node, node_cpu.2, node_cpu.2).unwrap();
        assert!((truth.cpu_seconds - node_cpu.1).abs() <= 1e-9 * node_cpu.1);
        assert_eq!(truth.memory_bytes, node_mem.1);
        let pod_mem: f64 = common::samples(&scrape, "pod_memory_working_set_bytes")
            .iter()
            .map(|s| s.1)
            .sum();
        assert!(node_mem.1 > pod_mem, "node memory includes system usage");
    }

    tracing::info!("two scrapes a second apart give the mean rate over the window");
    let first = common::parse(&common::scrape(&cluster, "node-1").await.unwrap().body.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let second = common::parse(&common::scrape(&cluster, "node-1").await.unwrap().body.unwrap());
    let (a, b) = (
        common::samples(&first, "container_cpu_usage_seconds_total"),
        common::samples(&second, "container_cpu_usage_seconds_total"),
    );
    for ((key, c1, t1), (_, c2, t2)) in a.iter().zip(&b) {
        let p: Vec<&str> = key.split('/').collect();
        let rate = (c2 - c1) / ((t2 - t1) as f64 / 1000.0);
        let truth = cluster.pod_truth(p[0], p[1], *t1, *t2).unwrap();
        let expected = truth
            .containers
            .iter()
            .find(|c| c.name == p[2])
            .unwrap()
            .usage
            .cpu_cores;
        assert!((rate - expected).abs() < 1e-6, "{key}: rate {rate} vs truth {expected}");
    }
    cluster.shutdown();
}

/// A node whose kubelet has swap statistics reports every container's swap, the pods' sums and
/// the node's total, as the ground truth has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_node_reports_the_swap_families() {
    use kubesim::cluster::actions::{Action, PodRequest};
    let cluster = common::cluster(1, 1, 5).await;
    let added = cluster.act(Action::AddNode { swap: true }).await.unwrap();
    let node = added["node"].as_str().unwrap().to_string();
    for (name, swap) in [("swapper", 3_866_624.0), ("nonswapper", 0.0)] {
        let request = PodRequest {
            node: Some(node.clone()),
            name: Some(name.into()),
            containers: Some(2),
            swap_bytes: Some(swap),
            ..Default::default()
        };
        cluster.act(Action::AddPod(request)).await.unwrap();
    }
    let scrape = common::parse(&common::scrape(&cluster, &node).await.unwrap().body.unwrap());
    let swaps = common::samples(&scrape, "container_swap_usage_bytes");
    assert_eq!(swaps.len(), 4, "{swaps:?}");
    for (key, value, ts) in &swaps {
        let p: Vec<&str> = key.split('/').collect();
        let truth = cluster.pod_truth(p[0], p[1], *ts, *ts).unwrap();
        let c = truth.containers.iter().find(|c| c.name == p[2]).unwrap();
        assert_eq!(c.usage.swap_bytes, Some(*value), "{key}");
        let expected = if p[1] == "swapper" { 3_866_624.0 } else { 0.0 };
        assert_eq!(*value, expected, "{key}");
    }
    let pods = common::samples(&scrape, "pod_swap_usage_bytes");
    assert!(
        pods.iter()
            .any(|(k, v, _)| k.ends_with("swapper") && *v == 2.0 * 3_866_624.0),
        "{pods:?}"
    );
    let node_swap = common::samples(&scrape, "node_swap_usage_bytes")[0].clone();
    assert_eq!(node_swap.1, 2.0 * 3_866_624.0);
    // The node booted just now, so its truth is asked for now (the swap use is constant).
    let now = kubesim::kubelet::server::now_ms();
    let truth = cluster.node_truth(&node, now, now).unwrap();
    assert_eq!(truth.swap_bytes, Some(node_swap.1));
    assert_eq!(cluster.node_truth("node-0", now, now).unwrap().swap_bytes, None);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_requires_credentials() {
    let cluster = common::cluster(1, 2, 3).await;
    let addr = common::kubelet_addr(&cluster, "node-0").await;
    tracing::info!("no token and a wrong token get 401");
    let none = common::get(&cluster, addr, "/metrics/resource", None, None)
        .await
        .unwrap();
    assert_eq!(none.status, 401);
    let wrong = common::get(&cluster, addr, "/metrics/resource", Some("not-the-token"), None)
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    tracing::info!("a client certificate from the cluster CA is accepted");
    let ca = kubesim::pki::Ca::load(cluster.dir(), "ca", kubesim::cluster::CLUSTER_CA_NAME).unwrap();
    let cert = ca
        .issue(&kubesim::pki::LeafSpec {
            common_name: "metrics-server".into(),
            client: true,
            ..Default::default()
        })
        .unwrap();
    let with_cert = common::get(&cluster, addr, "/metrics/resource", None, Some(&cert))
        .await
        .unwrap();
    assert_eq!(with_cert.status, 200);
    tracing::info!("other paths are 404");
    let other = common::get(
        &cluster,
        addr,
        "/stats/summary",
        Some(cluster.metrics_server_token().as_str()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(other.status, 404);
    let stats = cluster.kubelet_stats().await;
    assert_eq!(stats["node-0"].unauthorized, 2);
    assert_eq!(stats["node-0"].scrapes, 1);
    cluster.shutdown();
}
