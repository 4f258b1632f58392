//! The benchmark's clients: HPA-like namespace LISTs with a label selector and `kubectl top
//! pods -A`-like all-namespace LISTs through kubesim's aggregation proxy, on their periods,
//! with their latencies kept; and sequential LISTs straight at the replicas for percentiles.

use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    kubesim::http::Body,
>;

/// One HTTP(S) client for kubesim and the replicas (as the front proxy).
#[derive(Clone)]
pub struct Http {
    client: Client,
    api: String,
}

impl Http {
    pub fn new(dir: &std::path::Path, api: &str) -> anyhow::Result<Http> {
        let leaf = kubesim::pki::Leaf::load(dir, "front-proxy-client")?;
        let client = kubesim::tls::https_client(kubesim::tls::insecure_client(Some(&leaf))?);
        Ok(Http {
            client,
            api: api.trim_end_matches('/').to_string(),
        })
    }

    async fn get(&self, url: String) -> anyhow::Result<Bytes> {
        self.get_as(url, "application/json").await
    }

    async fn get_as(&self, url: String, accept: &str) -> anyhow::Result<Bytes> {
        let req = http::Request::get(&url)
            .header("Accept", accept)
            .header("X-Remote-User", "bench")
            .header("X-Remote-Group", "system:masters")
            .body(kubesim::http::empty())?;
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req)).await??;
        anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
        Ok(resp.into_body().collect().await?.to_bytes())
    }

    pub async fn get_plain(&self, url: &str) -> anyhow::Result<Bytes> {
        self.get(url.to_string()).await
    }

    pub async fn get_replica(&self, port: u16, path: &str) -> anyhow::Result<Bytes> {
        self.get(format!("https://127.0.0.1:{port}{path}")).await
    }

    /// GET straight at a replica with an `Accept` header (JSON or protobuf).
    pub async fn get_replica_as(&self, port: u16, path: &str, accept: &str) -> anyhow::Result<Bytes> {
        self.get_as(format!("https://127.0.0.1:{port}{path}"), accept).await
    }

    pub async fn get_proxy(&self, path: &str) -> anyhow::Result<Bytes> {
        self.get(format!("{}{path}", self.api)).await
    }
}

/// Latencies (seconds) and failures of one client kind.
#[derive(Debug, Default)]
pub struct Record {
    pub times: Vec<f64>,
    pub errors: u64,
}

pub type Shared = Arc<Mutex<Record>>;

/// HPA targets: `(namespace, app)` of `count` deployments, spread over the pods served.
pub fn hpa_targets(pods: &serde_json::Value, count: usize) -> Vec<(String, String)> {
    let mut apps: Vec<(String, String)> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let m = &p["metadata"];
            Some((
                m["namespace"].as_str()?.to_string(),
                m["labels"]["app"].as_str()?.to_string(),
            ))
        })
        .collect();
    apps.sort();
    apps.dedup();
    let n = count.min(apps.len());
    (0..n).map(|i| apps[i * apps.len() / n.max(1)].clone()).collect()
}

pub fn selector_path(ns: &str, app: &str) -> String {
    format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector=app%3D{app}")
}

pub const ALL_PODS: &str = "/apis/metrics.k8s.io/v1beta1/pods";

/// Starts the HPA-like clients (spread over `hpa_period`) and a top-like client every
/// `top_period` (none if zero), through the proxy.
pub fn spawn(
    http: &Http,
    hpas: &[(String, String)],
    hpa_period: Duration,
    top_period: Duration,
) -> (Vec<tokio::task::JoinHandle<()>>, Shared, Shared) {
    let (hpa_rec, top_rec): (Shared, Shared) = Default::default();
    let mut handles = Vec::new();
    for (i, (ns, app)) in hpas.iter().enumerate() {
        let phase = hpa_period.mul_f64(i as f64 / hpas.len() as f64);
        handles.push(every(
            http.clone(),
            selector_path(ns, app),
            hpa_period,
            phase,
            hpa_rec.clone(),
        ));
    }
    if !top_period.is_zero() {
        handles.push(every(
            http.clone(),
            ALL_PODS.to_string(),
            top_period,
            Duration::ZERO,
            top_rec.clone(),
        ));
    }
    (handles, hpa_rec, top_rec)
}

fn every(http: Http, path: String, period: Duration, phase: Duration, rec: Shared) -> tokio::task::JoinHandle<()> {
    let path: std::sync::Arc<str> = path.into();
    crate::runner::clients::every(period, phase, move || {
        let (http, path, rec) = (http.clone(), path.clone(), rec.clone());
        async move {
            let started = Instant::now();
            let ok = http.get_proxy(&path).await.is_ok();
            let mut r = rec.lock().expect("record lock");
            if ok {
                r.times.push(started.elapsed().as_secs_f64())
            } else {
                r.errors += 1
            }
        }
    })
}

/// `n` sequential GETs of `path`, round-robin over the replicas; latencies in seconds and the
/// item count of the last answer.
pub async fn sequential(http: &Http, ports: &[u16], path: &str, n: usize) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut times = Vec::with_capacity(n);
    let mut items = 0;
    for i in 0..n {
        let started = Instant::now();
        let body = http.get_replica(ports[i % ports.len()], path).await?;
        times.push(started.elapsed().as_secs_f64());
        if i + 1 == n {
            items = serde_json::from_slice::<serde_json::Value>(&body)?["items"]
                .as_array()
                .map_or(0, Vec::len);
        }
    }
    Ok((times, items))
}

/// One all-namespace LIST format measured on its own: latencies (seconds), the replicas' CPU per
/// LIST (ms, from `/proc`) and the body size.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatCost {
    pub p50: f64,
    pub p99: f64,
    pub cpu_ms_per_list: f64,
    pub bytes: usize,
}

/// `n` sequential LISTs of `path` with `accept`, round-robin over the replicas `pids` serve.
pub async fn format_cost(
    http: &Http,
    ports: &[u16],
    pids: &[u32],
    path: &str,
    accept: &str,
    n: usize,
) -> anyhow::Result<FormatCost> {
    let ticks = || -> u64 {
        pids.iter()
            .filter_map(|&p| kubesim::procstat::process(p))
            .map(|u| u.cpu_ticks)
            .sum()
    };
    let before = ticks();
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n {
        let started = Instant::now();
        bytes = http.get_replica_as(ports[i % ports.len()], path, accept).await?.len();
        times.push(started.elapsed().as_secs_f64());
    }
    let cpu_ms = (ticks() - before) as f64 * 1000.0 / kubesim::procstat::TICKS_PER_SECOND;
    let (p50, p99) = super::measure::percentiles(times);
    Ok(FormatCost {
        p50,
        p99,
        cpu_ms_per_list: cpu_ms / n as f64,
        bytes,
    })
}
