//! One replica against kubesim, through the aggregation proxy, with real kubectl 1.32: node and
//! pod metrics within 5% of the ground truth, `kubectl top` and `get podmetrics` output,
//! selectors, 404/400/405 answers, pods leaving Running, container restarts.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const TOLERANCE: f64 = 0.05;

/// Waits until the server serves metrics for every running pod.
async fn wait_all_pods(cluster: &kubesim::Cluster) {
    let want = cluster.with_world(|w| {
        w.pods
            .values()
            .filter(|p| p.phase == kubesim::sim::PodPhase::Running)
            .count()
    });
    eventually(Duration::from_secs(60), "every pod served", async || {
        let out = kubectl(cluster, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods"]).await;
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout)
                .is_ok_and(|v| v["items"].as_array().map_or(0, Vec::len) == want)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_ground_truth_to_kubectl() {
    let cluster = cluster(4, 5, 101).await;
    let _server = start_server(&cluster, &[]).await;
    wait_all_pods(&cluster).await;

    tracing::info!("NodeMetrics: every node, values within 5% of ground truth over the served window");
    let nodes = raw(&cluster, "/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        (nodes["kind"].as_str(), nodes["apiVersion"].as_str()),
        (Some("NodeMetricsList"), Some("metrics.k8s.io/v1beta1"))
    );
    let items = nodes["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|n| n["metadata"]["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["node-0", "node-1", "node-2", "node-3"]
    );
    for n in items {
        let name = n["metadata"]["name"].as_str().unwrap();
        let (ts, window) = (
            millis(n["timestamp"].as_str().unwrap()),
            window_ms(n["window"].as_str().unwrap()),
        );
        let cpu = cores(n["usage"]["cpu"].as_str().unwrap());
        let mem = bytes(n["usage"]["memory"].as_str().unwrap());
        assert!(
            close_to_truth(
                cpu,
                TOLERANCE,
                |t| cluster.node_truth(name, t - window, t).map(|u| u.cpu_cores),
                ts
            ),
            "{name} cpu {cpu}"
        );
        assert!(
            close_to_truth(
                mem,
                TOLERANCE,
                |t| cluster.node_truth(name, t - window, t).map(|u| u.memory_bytes),
                ts
            ),
            "{name} memory {mem}"
        );
    }

    tracing::info!("PodMetrics: exactly the running pods, every container within 5%");
    let pods = raw(&cluster, "/apis/metrics.k8s.io/v1beta1/pods").await;
    let served: BTreeSet<(String, String)> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["namespace"].as_str().unwrap().to_string(),
                p["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(served, running_pods(&cluster));
    for p in pods["items"].as_array().unwrap() {
        let (ns, name) = (
            p["metadata"]["namespace"].as_str().unwrap(),
            p["metadata"]["name"].as_str().unwrap(),
        );
        let (ts, window) = (
            millis(p["timestamp"].as_str().unwrap()),
            window_ms(p["window"].as_str().unwrap()),
        );
        for c in p["containers"].as_array().unwrap() {
            let cname = c["name"].as_str().unwrap();
            let truth = |t: i64, f: fn(&kubesim::sim::truth::Usage) -> f64| {
                let pod = cluster.pod_truth(ns, name, t - window, t)?;
                pod.containers.iter().find(|x| x.name == cname).map(|x| f(&x.usage))
            };
            let cpu = cores(c["usage"]["cpu"].as_str().unwrap());
            assert!(
                close_to_truth(cpu, TOLERANCE, |t| truth(t, |u| u.cpu_cores), ts),
                "{ns}/{name}/{cname} cpu {cpu}"
            );
            let mem = bytes(c["usage"]["memory"].as_str().unwrap());
            assert!(
                close_to_truth(mem, TOLERANCE, |t| truth(t, |u| u.memory_bytes), ts),
                "{ns}/{name}/{cname} memory {mem}"
            );
        }
    }

    tracing::info!("kubectl top node: one row per node with percentages");
    let top = stdout(&kubectl(&cluster, &["top", "node"]).await);
    let mut lines = top.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    );
    assert_eq!(lines.count(), 4);

    tracing::info!("kubectl top pod -A lists every running pod");
    let top = stdout(&kubectl(&cluster, &["top", "pod", "-A", "--no-headers"]).await);
    let listed: BTreeSet<(String, String)> = top
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect();
    assert_eq!(listed, running_pods(&cluster));

    tracing::info!(
        "kubectl top pod -n NS -l app=X lists exactly the selected pods; --containers one row per container"
    );
    let (ns, app, expected) = cluster.with_world(|w| {
        let p = w.pods.values().next().unwrap();
        let (ns, app) = (p.spec.namespace.clone(), p.spec.labels["app"].clone());
        let names: BTreeSet<String> = w
            .pods
            .values()
            .filter(|q| q.spec.namespace == ns && q.spec.labels["app"] == app)
            .map(|q| q.spec.name.clone())
            .collect();
        (ns, app, names)
    });
    let top = stdout(
        &kubectl(
            &cluster,
            &["top", "pod", "-n", &ns, "-l", &format!("app={app}"), "--no-headers"],
        )
        .await,
    );
    assert_eq!(
        top.lines()
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect::<BTreeSet<_>>(),
        expected
    );
    let top = stdout(
        &kubectl(
            &cluster,
            &[
                "top",
                "pod",
                "-n",
                &ns,
                "-l",
                &format!("app={app}"),
                "--containers",
                "--no-headers",
            ],
        )
        .await,
    );
    let containers: usize = cluster.with_world(|w| {
        expected
            .iter()
            .map(|n| w.pods[&(ns.clone(), n.clone())].reported_containers().count())
            .sum()
    });
    assert_eq!(top.lines().count(), containers);

    tracing::info!("kubectl get podmetrics -A prints the server's Table");
    let table = stdout(&kubectl(&cluster, &["get", "podmetrics", "-A"]).await);
    assert_eq!(
        table.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAMESPACE", "NAME", "CPU", "MEMORY", "WINDOW"]
    );
    assert_eq!(table.lines().count() - 1, running_pods(&cluster).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_pod_phases_and_restarts() {
    let cluster = cluster(2, 4, 102).await;
    let _server = start_server(&cluster, &[]).await;
    wait_all_pods(&cluster).await;

    tracing::info!("404 for an unknown pod and node, with metrics-server's messages");
    let out = kubectl(&cluster, &["top", "pod", "nope", "-n", "default"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error from server (NotFound): pods \"nope\" not found"));
    let out = kubectl(&cluster, &["top", "node", "nope"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error from server (NotFound): node \"nope\" not found"));

    tracing::info!("400 for an unsupported field selector, 405 for watch");
    let out = kubectl(
        &cluster,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=status.podIP%3D10.0.0.1",
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a known field selector"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(
        &cluster,
        &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods?watch=true"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MethodNotAllowed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    tracing::info!("a pod field selector by name works");
    let (ns, name) = running_pods(&cluster).into_iter().next().unwrap();
    let one = raw(
        &cluster,
        &format!("/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3D{name}"),
    )
    .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);

    tracing::info!("a pod that leaves Running disappears");
    cluster
        .act(kubesim::cluster::actions::Action::FinishPod {
            namespace: ns.clone(),
            name: name.clone(),
            failed: false,
        })
        .await
        .unwrap();
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}");
    eventually(Duration::from_secs(10), "finished pod gone", async || {
        let out = kubectl(&cluster, &["get", "--raw", &path]).await;
        String::from_utf8_lossy(&out.stderr).contains("NotFound")
    })
    .await;

    tracing::info!("a restarted container is served again, its window from the restart");
    let (ns, name) = running_pods(&cluster).into_iter().next().unwrap();
    let container = cluster.with_world(|w| {
        w.pods[&(ns.clone(), name.clone())]
            .reported_containers()
            .next()
            .unwrap()
            .spec
            .name
            .clone()
    });
    let restarted_at = kubesim::kubelet::server::now_ms();
    cluster
        .act(kubesim::cluster::actions::Action::RestartContainer {
            namespace: ns.clone(),
            name: name.clone(),
            container,
        })
        .await
        .unwrap();
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}");
    eventually(
        Duration::from_secs(20),
        "restarted pod served with a post-restart window",
        async || {
            let out = kubectl(&cluster, &["get", "--raw", &path]).await;
            let Ok(pod) = serde_json::from_slice::<Value>(&out.stdout) else {
                return false;
            };
            let ts = pod["timestamp"].as_str().map(millis).unwrap_or(0);
            let window = pod["window"].as_str().map(window_ms).unwrap_or(i64::MAX);
            ts - window >= restarted_at - 1000
        },
    )
    .await;
}

/// GET straight at the replica over HTTPS (self-signed), optionally as the front proxy.
async fn direct(port: u16, path: &str, identity: Option<&kubesim::pki::Leaf>, user: Option<&str>) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = kubesim::tls::https_client(kubesim::tls::insecure_client(identity).unwrap());
    let mut req = http::Request::get(format!("https://127.0.0.1:{port}{path}"));
    if let Some(user) = user {
        req = req
            .header("X-Remote-User", user)
            .header("X-Remote-Group", "system:masters");
    }
    let resp = client.request(req.body(kubesim::http::empty()).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_identity_and_self_metrics() {
    let cluster = cluster(2, 2, 104).await;
    let server = start_server(&cluster, &[]).await;
    wait_all_pods(&cluster).await;
    let front_proxy = kubesim::pki::Leaf::load(cluster.dir(), "front-proxy-client").unwrap();

    tracing::info!("health paths need no identity and list metrics-server's checks");
    let (code, body) = direct(server.port, "/readyz?verbose", None, None).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("[+]metric-storage-ready ok") && body.ends_with("readyz check passed\n"),
        "{body}"
    );
    let (code, body) = direct(server.port, "/livez?verbose", None, None).await;
    assert!(code == 200 && body.contains("[+]metric-collection-timely ok"), "{body}");
    assert_eq!(
        direct(server.port, "/healthz", None, None).await,
        (200, "ok".to_string())
    );

    tracing::info!("metrics.k8s.io needs the front proxy's certificate; forged headers alone get 401");
    assert_eq!(
        direct(server.port, "/apis/metrics.k8s.io/v1beta1/nodes", None, Some("admin"))
            .await
            .0,
        401
    );
    assert_eq!(
        direct(
            server.port,
            "/apis/metrics.k8s.io/v1beta1/nodes",
            Some(&front_proxy),
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        direct(
            server.port,
            "/apis/metrics.k8s.io/v1beta1/nodes",
            Some(&front_proxy),
            Some("admin")
        )
        .await
        .0,
        200
    );

    tracing::info!("/metrics has metrics-server's six families with per-node series");
    let (code, text) = direct(server.port, "/metrics", Some(&front_proxy), Some("admin")).await;
    assert_eq!(code, 200);
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .filter(|f| f.starts_with("metrics_server_"))
        .collect();
    assert_eq!(families.len(), 6, "{families:?}");
    assert!(
        text.contains("metrics_server_kubelet_request_duration_seconds_count{node=\"node-1\"}"),
        "{text}"
    );
    assert!(text.contains("metrics_server_storage_points{type=\"container\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_readyz_first_then_exits_cleanly() {
    let cluster = cluster(1, 2, 105).await;
    let mut server = start_server(&cluster, &["--shutdown-delay-duration=3s"]).await;
    wait_all_pods(&cluster).await;
    let pid = server.child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    tracing::info!("during the shutdown delay readyz fails while livez and the API still answer");
    eventually(Duration::from_secs(2), "readyz failing", async || {
        direct(server.port, "/readyz", None, None).await.0 == 500
    })
    .await;
    assert_eq!(direct(server.port, "/livez", None, None).await.0, 200);
    let front_proxy = kubesim::pki::Leaf::load(cluster.dir(), "front-proxy-client").unwrap();
    let (code, body) = direct(server.port, "/readyz/shutdown", Some(&front_proxy), Some("admin")).await;
    assert_eq!(
        (code, body.as_str()),
        (500, "internal server error: process is shutting down\n")
    );
    let status = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
