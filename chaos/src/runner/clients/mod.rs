//! Clients that behave like the real consumers, all recording what they see:
//! HPA-like (a namespace LIST with a label selector per HPA every sync period), VPA-like (the
//! all-namespace LIST every recommender interval) and `kubectl top pods -A`-like (all-namespace
//! LIST, polled often to time gaps), through kubesim's aggregation proxy; and one client per
//! replica sending the all-namespace LIST straight to it.

pub mod parse;

use super::journal::{ClientKind, Observation, Outcome, Request, RunMs, Target};
use bytes::Bytes;
use http_body_util::BodyExt;
use kubesim::pki::Leaf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// A request fails after this long (client-go style timeout).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
pub const PODS: &str = "/apis/metrics.k8s.io/v1beta1/pods";

type Https = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    kubesim::http::Body,
>;

/// Which replicas direct clients may ask: the Metrics API port of each replica that is
/// running and was ready, `None` otherwise.
pub type Serving = Arc<Mutex<Vec<Option<u16>>>>;

/// Shared by every client: HTTP, where to send, where to record.
#[derive(Clone)]
pub struct Clients {
    http: Https,
    api_url: String,
    pub t0: Instant,
    tx: UnboundedSender<Observation>,
}

impl Clients {
    pub fn new(api_url: &str, identity: &Leaf, t0: Instant, tx: UnboundedSender<Observation>) -> anyhow::Result<Self> {
        let http = kubesim::tls::https_client(kubesim::tls::insecure_client(Some(identity))?);
        Ok(Clients {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            t0,
            tx,
        })
    }

    pub fn now(&self) -> RunMs {
        self.t0.elapsed().as_millis() as RunMs
    }

    /// GET `path` at `target` (as the front proxy when straight at a replica).
    pub async fn get(&self, target: Target, port: u16, path: &str) -> Result<Bytes, String> {
        let url = match target {
            Target::Proxy => format!("{}{path}", self.api_url),
            Target::Replica(_) => format!("https://127.0.0.1:{port}{path}"),
        };
        let req = http::Request::get(url)
            .header("X-Remote-User", "chaos")
            .header("X-Remote-Group", "system:masters")
            .header("Accept", "application/json")
            .body(kubesim::http::empty())
            .map_err(|e| e.to_string())?;
        let call = async {
            let resp = self.http.request(req).await.map_err(|e| format!("{e:?}"))?;
            let status = resp.status();
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            }
        };
        tokio::time::timeout(CLIENT_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err("timed out".into()))
    }

    /// One recorded PodMetricsList request.
    pub async fn list(&self, client: ClientKind, target: Target, port: u16, path: &str, complete: bool) {
        let started = self.now();
        let outcome = match self.get(target, port, path).await.and_then(|b| parse::pod_list(&b)) {
            Ok(pods) => Outcome::Ok { pods, complete },
            Err(e) => Outcome::Err(e),
        };
        let ended = self.now();
        let _ = self.tx.send(Observation::Request(Request {
            client,
            target,
            started,
            ended,
            outcome,
        }));
    }
}

/// An HPA's target: its namespace and `app` label.
#[derive(Debug, Clone)]
pub struct HpaTarget {
    pub namespace: String,
    pub app: String,
}

/// Periods of each client kind.
#[derive(Debug, Clone, Copy)]
pub struct Periods {
    pub hpa: Duration,
    pub vpa: Duration,
    pub top: Duration,
    pub direct: Duration,
}

/// Spawns every client; they run until the returned handles are aborted.
pub fn spawn(
    clients: &Clients,
    hpas: Vec<HpaTarget>,
    periods: Periods,
    serving: Serving,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    let count = hpas.len().max(1) as u32;
    for (i, hpa) in hpas.into_iter().enumerate() {
        let c = clients.clone();
        let path = format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?labelSelector=app%3D{}",
            hpa.namespace, hpa.app
        );
        // HPAs are spread over the sync period, as the controller's workers are.
        let phase = periods.hpa * i as u32 / count;
        handles.push(every(periods.hpa, phase, move || {
            let (c, path) = (c.clone(), path.clone());
            async move { c.list(ClientKind::Hpa, Target::Proxy, 0, &path, false).await }
        }));
    }
    for (kind, period) in [(ClientKind::Vpa, periods.vpa), (ClientKind::Top, periods.top)] {
        let c = clients.clone();
        handles.push(every(period, Duration::ZERO, move || {
            let c = c.clone();
            async move { c.list(kind, Target::Proxy, 0, PODS, true).await }
        }));
    }
    let c = clients.clone();
    handles.push(every(periods.direct, periods.direct / 2, move || {
        let (c, serving) = (c.clone(), serving.clone());
        async move {
            let ports: Vec<(usize, u16)> = serving
                .lock()
                .expect("serving lock")
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.map(|p| (i, p)))
                .collect();
            let asks = ports
                .into_iter()
                .map(|(i, port)| c.list(ClientKind::Direct, Target::Replica(i), port, PODS, true));
            futures::future::join_all(asks).await;
        }
    }));
    handles
}

/// Runs `f` every `period` after `phase`, without overlapping itself.
pub(crate) fn every<F, Fut>(period: Duration, phase: Duration, f: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        tokio::time::sleep(phase).await;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            f().await;
        }
    })
}
