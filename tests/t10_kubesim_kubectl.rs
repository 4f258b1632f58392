//! Real `kubectl` 1.32 against kubesim: discovery, Table output, label and field selectors, raw
//! gets, and the aggregation layer's "unable to handle the request" when no replica serves
//! metrics.k8s.io.

mod support;

use std::collections::BTreeSet;
use support::{KUBECTL, init_tracing, kubectl, stdout};

async fn cluster() -> kubesim::Cluster {
    init_tracing();
    kubesim::Cluster::start(kubesim::ClusterConfig {
        nodes: 3,
        pods_per_node: 6,
        seed: 41,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_nodes_and_selected_pods() {
    let cluster = cluster().await;

    tracing::info!("get nodes prints the apiserver's Table: every node Ready with the kubelet version");
    let nodes = stdout(&kubectl(&cluster, &["get", "nodes"]).await);
    let mut lines = nodes.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["node-0", "node-1", "node-2"]
    );
    assert!(rows.iter().all(|r| r[1] == "Ready" && r[4] == "v1.32.0"));

    tracing::info!("get pods -A -l app=<deployment> lists exactly that deployment's pods");
    let (app, expected) = cluster.with_world(|w| {
        let app = w.pods.values().next().unwrap().spec.labels["app"].clone();
        let pods: BTreeSet<(String, String)> = w
            .pods
            .values()
            .filter(|p| p.spec.labels["app"] == app)
            .map(|p| (p.spec.namespace.clone(), p.spec.name.clone()))
            .collect();
        (app, pods)
    });
    let out = stdout(
        &kubectl(
            &cluster,
            &["get", "pods", "-A", "-l", &format!("app={app}"), "--no-headers"],
        )
        .await,
    );
    let got: BTreeSet<(String, String)> = out
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols[3], "Running", "{l}");
            (cols[0].to_string(), cols[1].to_string())
        })
        .collect();
    assert_eq!(got, expected);

    tracing::info!("set-based selector and field selector, as JSON");
    let out = stdout(
        &kubectl(
            &cluster,
            &[
                "get",
                "pods",
                "-A",
                "-l",
                "tier in (frontend,backend)",
                "--field-selector",
                "spec.nodeName=node-1",
                "-o",
                "json",
            ],
        )
        .await,
    );
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: BTreeSet<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = cluster.with_world(|w| {
        w.pods
            .values()
            .filter(|p| p.spec.node == "node-1" && p.spec.labels["tier"] != "batch")
            .map(|p| p.spec.name.clone())
            .collect()
    });
    assert_eq!(got, expected);

    tracing::info!("a raw get of one node carries what metrics servers need to reach its kubelet");
    let node: serde_json::Value = serde_json::from_str(&stdout(
        &kubectl(&cluster, &["get", "--raw", "/api/v1/nodes/node-2"]).await,
    ))
    .unwrap();
    let ip = cluster.with_world(|w| w.nodes["node-2"].spec.ip.to_string());
    assert_eq!(
        node["status"]["addresses"][0],
        serde_json::json!({"type": "InternalIP", "address": ip})
    );
    assert_eq!(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_without_a_replica_reports_service_unavailable() {
    let cluster = cluster().await;
    let out = kubectl(&cluster, &["top", "node"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error from server (ServiceUnavailable): the server is currently unable to handle the request (get nodes.metrics.k8s.io)"),
        "{stderr}"
    );
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_over_https_sends_the_token_and_a_wrong_one_is_refused() {
    init_tracing();
    let config = kubesim::ClusterConfig {
        nodes: 2,
        pods_per_node: 2,
        seed: 42,
        https: true,
        ..Default::default()
    };
    let cluster = kubesim::Cluster::start(config).await.unwrap();
    assert!(cluster.api_url().starts_with("https://"));
    let out = stdout(&kubectl(&cluster, &["get", "nodes", "-o", "name"]).await);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["node/node-0", "node/node-1"]);

    tracing::info!("the same kubeconfig with a wrong token gets 401");
    let bad = cluster.dir().join("bad.kubeconfig");
    let text = std::fs::read_to_string(cluster.paths().kubeconfig())
        .unwrap()
        .replace(cluster.admin_token(), "wrong-token");
    std::fs::write(&bad, text).unwrap();
    let out = tokio::process::Command::new(KUBECTL)
        .args([
            "--kubeconfig",
            bad.to_str().unwrap(),
            "--cache-dir",
            cluster.dir().join("c2").to_str().unwrap(),
            "get",
            "nodes",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("You must be logged in to the server"), "{stderr}");

    tracing::info!("over HTTPS a request without credentials is not anonymous: 401");
    let ca = std::fs::read(cluster.paths().ca()).unwrap();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(&ca).unwrap();
    let client = kubesim::tls::https_client(kubesim::tls::verified_client(&ca, None).unwrap());
    let req = http::Request::get(format!("{}/api/v1/nodes", cluster.api_url()))
        .body(kubesim::http::empty())
        .unwrap();
    assert_eq!(client.request(req).await.unwrap().status(), 401);
    cluster.shutdown();
}
