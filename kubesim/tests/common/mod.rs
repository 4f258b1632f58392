//! Helpers shared by kubesim's integration tests: an HTTPS client for kubelets and a parser
//! check with an independent Prometheus text parser.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kubesim::pki::Leaf;
use kubesim::{Cluster, ClusterConfig};
use std::net::SocketAddr;
use std::time::Duration;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,chaos=debug")
        .with_test_writer()
        .try_init();
}

pub async fn cluster(nodes: u32, pods_per_node: u32, seed: u64) -> Cluster {
    init_tracing();
    let config = ClusterConfig {
        nodes,
        pods_per_node,
        seed,
        ..Default::default()
    };
    Cluster::start(config).await.expect("cluster starts")
}

/// The answer of one kubelet request.
pub struct Scraped {
    pub status: http::StatusCode,
    pub body: Result<Bytes, String>,
}

/// GET `https://addr/path` verifying the cluster CA, with an optional token or client cert.
pub async fn get(
    cluster: &Cluster,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    cert: Option<&Leaf>,
) -> Result<Scraped, String> {
    let ca = std::fs::read(cluster.paths().ca()).unwrap();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(&ca).unwrap();
    let tls = kubesim::tls::verified_client(&ca, cert).unwrap();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut req = http::Request::get(format!("https://{addr}{path}"));
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req.body(Empty::new()).unwrap()))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .map_err(|_| "body timed out".to_string())
        .and_then(|r| r.map(|c| c.to_bytes()).map_err(|e| format!("{e:?}")));
    Ok(Scraped { status, body })
}

/// The kubelet address of `node`.
pub async fn kubelet_addr(cluster: &Cluster, node: &str) -> SocketAddr {
    cluster.kubelet_stats().await[node].address
}

/// Scrapes `node` as the metrics server would (bearer token).
pub async fn scrape(cluster: &Cluster, node: &str) -> Result<Scraped, String> {
    let addr = kubelet_addr(cluster, node).await;
    get(
        cluster,
        addr,
        "/metrics/resource",
        Some(cluster.metrics_server_token().as_str()),
        None,
    )
    .await
}

/// Parses with the `prometheus-parse` crate (independent of kubesim's renderer).
pub fn parse(body: &[u8]) -> prometheus_parse::Scrape {
    let text = std::str::from_utf8(body).expect("utf-8");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses as Prometheus text")
}

pub fn value(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => *x,
        other => panic!("unexpected value {other:?}"),
    }
}

/// Samples of one family as (labels "ns/pod/container", value, timestamp ms).
pub fn samples(scrape: &prometheus_parse::Scrape, family: &str) -> Vec<(String, f64, i64)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == family)
        .map(|s| {
            let key = [
                s.labels.get("namespace"),
                s.labels.get("pod"),
                s.labels.get("container"),
            ]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join("/");
            (key, value(&s.value), s.timestamp.timestamp_millis())
        })
        .collect()
}
