//! Credentials that rotate while the server runs: the kubelet bearer token file (an in-cluster
//! projected service-account token) and the peer certificate files (a cert-manager Secret).
//! Real processes against kubesim; after each rotation kubesim accepts only the new credential.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;

/// Unix ms now.
fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The newest pod timestamp the server serves (straight from the replica), if any.
async fn newest_pod_timestamp(cluster: &kubesim::Cluster, port: u16) -> Option<i64> {
    let (code, body) = direct_get(cluster, port, "/apis/metrics.k8s.io/v1beta1/pods")
        .await
        .ok()?;
    if code != 200 {
        return None;
    }
    let list: Value = serde_json::from_str(&body).ok()?;
    list["items"]
        .as_array()?
        .iter()
        .filter_map(|p| Some(millis(p["timestamp"].as_str()?)))
        .max()
}

async fn unauthorized_scrapes(cluster: &kubesim::Cluster) -> u64 {
    cluster.kubelet_stats().await.values().map(|s| s.unauthorized).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_token_changed_on_disk_is_picked_up() {
    let cluster = cluster(3, 3, 121).await;
    let kubeconfig = std::fs::read_to_string(cluster.paths().metrics_server_kubeconfig()).unwrap();
    assert!(
        kubeconfig.contains("tokenFile:"),
        "the server reads its token from a file, as in a pod:\n{kubeconfig}"
    );
    let server = start_server(&cluster, &[]).await;
    eventually(Duration::from_secs(60), "pod metrics served", async || {
        newest_pod_timestamp(&cluster, server.port).await.is_some()
    })
    .await;
    assert_eq!(unauthorized_scrapes(&cluster).await, 0, "the first token is accepted");

    tracing::info!("rotate: kubesim writes a new token file and accepts only the new token");
    cluster.rotate_metrics_server_token().await.unwrap();
    let rotated_at = now_ms();
    tracing::info!("the server re-reads the file and scrapes with the new token: fresh samples again");
    eventually(Duration::from_secs(30), "samples newer than the rotation", async || {
        newest_pod_timestamp(&cluster, server.port)
            .await
            .is_some_and(|ts| ts > rotated_at + 1000)
    })
    .await;
    let refused = unauthorized_scrapes(&cluster).await;
    tracing::info!(refused, "scrapes refused between the rotation and the re-read");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        unauthorized_scrapes(&cluster).await,
        refused,
        "once re-read, no scrape is refused any more"
    );
    let stats = cluster.kubelet_stats().await;
    assert!(
        stats.values().all(|s| s.last_scrape_ms > rotated_at),
        "every kubelet was scraped with the new token: {stats:?}"
    );
}
