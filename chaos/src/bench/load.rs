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
        self.get_within(url, accept, CLIENT_TIMEOUT).await
    }

    /// GET `url`, failing unless a 2xx body has fully arrived within `limit`.
    async fn get_within(&self, url: String, accept: &str, limit: Duration) -> anyhow::Result<Bytes> {
        let req = http::Request::get(&url)
            .header("Accept", accept)
            .header("X-Remote-User", "bench")
            .header("X-Remote-Group", "system:masters")
            .body(kubesim::http::empty())?;
        let answer = async {
            let resp = self.client.request(req).await?;
            anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
            Ok(resp.into_body().collect().await?.to_bytes())
        };
        tokio::time::timeout(limit, answer).await?
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

/// How long a load client waits for an answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The kubelet's default probe timeout (`timeoutSeconds: 1`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often each replica is probed: more often than the manifests' probes, so that a stall
/// the kubelet could see is seen here.
pub const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// Latencies (seconds) and failures of one client kind.
#[derive(Debug, Default)]
pub struct Record {
    pub times: Vec<f64>,
    pub errors: u64,
    /// How far behind its schedule the client's last request started (HPA workers).
    pub late: Duration,
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

/// The records of the load clients.
#[derive(Default)]
pub struct Records {
    pub hpa: Shared,
    pub top: Shared,
    pub vpa: Shared,
    /// Kubelet-like `/readyz` and `/livez` probes of every replica.
    pub probes: Shared,
}

/// Starts the HPA controller's LISTs (see [`hpa_workers`]), a top-like client every
/// `top_period` and a VPA-like one every `vpa_period` (none if zero), all through the proxy, and
/// probes of every replica's `/readyz` and `/livez` straight at it (as the kubelet probes).
pub fn spawn(
    http: &Http,
    hpas: &[(String, String)],
    hpa: HpaLoad,
    top_period: Duration,
    vpa_period: Duration,
    ports: &[u16],
) -> (Vec<tokio::task::JoinHandle<()>>, Records) {
    let records = Records::default();
    let paths: Arc<[String]> = hpas.iter().map(|(ns, app)| selector_path(ns, app)).collect();
    let mut handles = hpa_workers(http, paths, hpa, records.hpa.clone());
    for (period, phase, rec) in [
        (top_period, Duration::ZERO, &records.top),
        (vpa_period, vpa_period / 2, &records.vpa),
    ] {
        if !period.is_zero() {
            handles.push(every(http.clone(), ALL_PODS.to_string(), period, phase, rec.clone()));
        }
    }
    for &port in ports {
        for path in ["/readyz", "/livez"] {
            handles.push(probe(http.clone(), port, path, records.probes.clone()));
        }
    }
    (handles, records)
}

/// The HPA controller's reads: each of the LISTs falls due once per `period`, their phases spread
/// evenly over it, and `workers` take them in due order, one at a time each, as the controller's
/// work queue and its `--concurrent-horizontal-pod-autoscaler-syncs` workers (5) do. When the
/// server is slower than the load needs, the controller falls behind (`Record::late`) instead of
/// having more requests in flight.
#[derive(Debug, Clone, Copy)]
pub struct HpaLoad {
    pub period: Duration,
    pub workers: usize,
}

fn hpa_workers(http: &Http, paths: Arc<[String]>, load: HpaLoad, rec: Shared) -> Vec<tokio::task::JoinHandle<()>> {
    if paths.is_empty() {
        return Vec::new();
    }
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let step = load.period.div_f64(paths.len() as f64);
    (0..load.workers.max(1))
        .map(|_| {
            let (http, paths, next, rec) = (http.clone(), paths.clone(), next.clone(), rec.clone());
            tokio::spawn(async move {
                loop {
                    let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let due = start + step.mul_f64(j as f64);
                    tokio::time::sleep_until(due).await;
                    let started = Instant::now();
                    let late = tokio::time::Instant::now().saturating_duration_since(due);
                    let ok = http.get_proxy(&paths[j as usize % paths.len()]).await.is_ok();
                    let mut r = rec.lock().expect("record lock");
                    r.add(ok, started);
                    r.late = late;
                }
            })
        })
        .collect()
}

fn probe(http: Http, port: u16, path: &'static str, rec: Shared) -> tokio::task::JoinHandle<()> {
    crate::runner::clients::every(PROBE_PERIOD, Duration::ZERO, move || {
        let (http, rec) = (http.clone(), rec.clone());
        async move {
            let started = Instant::now();
            let url = format!("https://127.0.0.1:{port}{path}");
            let ok = http.get_within(url, "*/*", PROBE_TIMEOUT).await.is_ok();
            rec.lock().expect("record lock").add(ok, started);
        }
    })
}

impl Record {
    fn add(&mut self, ok: bool, started: Instant) {
        if ok {
            self.times.push(started.elapsed().as_secs_f64())
        } else {
            self.errors += 1
        }
    }
}

fn every(http: Http, path: String, period: Duration, phase: Duration, rec: Shared) -> tokio::task::JoinHandle<()> {
    let path: std::sync::Arc<str> = path.into();
    crate::runner::clients::every(period, phase, move || {
        let (http, path, rec) = (http.clone(), path.clone(), rec.clone());
        async move {
            let started = Instant::now();
            let ok = http.get_proxy(&path).await.is_ok();
            rec.lock().expect("record lock").add(ok, started);
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
