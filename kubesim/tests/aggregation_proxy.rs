//! The aggregation proxy forwards `/apis/metrics.k8s.io/*` as kube-aggregator with
//! `--enable-aggregator-routing=true` does: to a random ready replica, over HTTP/2 when offered,
//! with the front-proxy client certificate and identity headers; a request whose replica fails
//! gets 503 (no retry elsewhere); readiness comes from a kubelet-like probe of `/readyz`; with no
//! ready replica it answers kube-aggregator's `503 service unavailable`.
//!
//! The replica here is a small TLS echo server (HTTP/2 and HTTP/1.1 by ALPN) that echoes what it
//! received and whether the client presented a certificate from the front-proxy CA.

mod common;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use kubesim::pki::Ca;
use rustls::server::WebPkiClientVerifier;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Starts the echo replica; returns its address and the task (abort it to kill the replica).
async fn echo_replica(dir: &std::path::Path, name: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let front_proxy = Ca::load(dir, "front-proxy-ca", kubesim::cluster::files::FRONT_PROXY_CA_NAME).unwrap();
    let serving = front_proxy
        .issue(&kubesim::pki::LeafSpec {
            common_name: "replica".into(),
            server: true,
            ..Default::default()
        })
        .unwrap();
    // Probes come without a certificate, as the kubelet's do.
    let verifier = WebPkiClientVerifier::builder(Arc::new(kubesim::pki::roots(&front_proxy.cert_der)))
        .allow_unauthenticated()
        .build()
        .unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![serving.cert_der.clone()], serving.key_der())
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        // Connections live in this set, so aborting the task drops them all, as a killed process would.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            connections.spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let has_cert = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let service = hyper::service::service_fn(move |req| async move {
                        Ok::<_, std::convert::Infallible>(echo(req, has_cert, name))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                } else {
                    kubesim::http::serve_connection(tls, move |req| async move { echo(req, has_cert, name) }).await;
                }
            });
        }
    });
    (addr, task)
}

fn echo(req: kubesim::http::Request, client_cert: bool, name: &str) -> Response<kubesim::http::Body> {
    if req.uri().path() == "/readyz" {
        // The kubelet's prober: no client certificate, no identity headers.
        assert!(!client_cert && req.headers().get("x-remote-user").is_none());
        return kubesim::http::text(StatusCode::OK, "ok");
    }
    let header = |name: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let body = json!({
        "path": req.uri().path(), "query": req.uri().query(), "accept": header("accept"),
        "user": header("x-remote-user"), "groups": header("x-remote-group"),
        "authorization": header("authorization"), "clientCert": client_cert,
        "version": format!("{:?}", req.version()), "replica": name,
    });
    kubesim::http::json_response(StatusCode::OK, &body)
}

/// GET on the apiserver with optional token and Accept; returns status, content type, body.
async fn api_get(url: &str, token: Option<&str>, accept: &str) -> (StatusCode, String, Bytes) {
    let client: hyper_util::client::legacy::Client<_, Empty<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let mut req = http::Request::get(url).header("Accept", accept);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req.body(Empty::new()).unwrap()))
        .await
        .unwrap()
        .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status(), ct, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn wait_ready(cluster: &kubesim::Cluster, want: usize) {
    // The probe needs up to 3 periods of 1 s to take a replica out.
    for _ in 0..200 {
        let n = chaos_ready(cluster).await;
        if n == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("replicas never became ready");
}

async fn chaos_ready(cluster: &kubesim::Cluster) -> usize {
    let (_, _, body) = api_get(
        &format!("{}/kubesim/v1/replicas", cluster.api_url()),
        None,
        "application/json",
    )
    .await;
    let list: Vec<Value> = serde_json::from_slice(&body).unwrap();
    list.iter().filter(|r| r["ready"] == true).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwards_like_kube_aggregator_without_retries() {
    let cluster = common::cluster(1, 1, 31).await;
    let metrics = format!("{}/apis/metrics.k8s.io/v1beta1/nodes", cluster.api_url());

    tracing::info!("no replica: 503 text/plain service unavailable, as kube-aggregator answers");
    let (status, ct, body) = api_get(&metrics, None, "application/json").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ct.starts_with("text/plain"));
    assert_eq!(&body[..], b"service unavailable\n");

    tracing::info!("one replica: forwarded over HTTP/2 with path, query, Accept and front-proxy identity");
    let (a, task_a) = echo_replica(cluster.dir(), "a").await;
    cluster.set_replicas(std::slice::from_ref(&a));
    wait_ready(&cluster, 1).await;
    let url = format!(
        "{}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb",
        cluster.api_url()
    );
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (status, _, body) = api_get(&url, None, table).await;
    assert_eq!(status, StatusCode::OK);
    let echoed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        echoed["version"], "HTTP/2.0",
        "the proxy speaks HTTP/2 to a replica offering it"
    );
    assert_eq!(echoed["path"], "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods");
    assert_eq!(echoed["query"], "labelSelector=app%3Dweb");
    assert_eq!(echoed["accept"], json!([table]));
    assert_eq!(echoed["clientCert"], true);
    assert_eq!(echoed["user"], json!(["kubesim-admin"]));
    assert_eq!(echoed["groups"], json!(["system:masters", "system:authenticated"]));

    tracing::info!("metrics.k8s.io/v1 is discovered (preferred) and forwarded like v1beta1, protobuf Accept kept");
    let (_, _, body) = api_get(
        &format!("{}/apis/metrics.k8s.io", cluster.api_url()),
        None,
        "application/json",
    )
    .await;
    let group: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(group["preferredVersion"]["version"], "v1");
    let versions: Vec<&str> = group["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1", "v1beta1"]);
    let protobuf = "application/vnd.kubernetes.protobuf, */*";
    let v1 = format!(
        "{}/apis/metrics.k8s.io/v1/nodes?fieldSelector=metadata.name%3Dx",
        cluster.api_url()
    );
    let (status, _, body) = api_get(&v1, None, protobuf).await;
    assert_eq!(status, StatusCode::OK);
    let echoed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed["path"], "/apis/metrics.k8s.io/v1/nodes");
    assert_eq!(echoed["accept"], json!([protobuf]));

    tracing::info!("a bearer token becomes the token's user; the token itself is not forwarded");
    let (_, _, body) = api_get(
        &metrics,
        Some(cluster.metrics_server_token().as_str()),
        "application/json",
    )
    .await;
    let echoed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed["user"], json!([kubesim::cluster::METRICS_SERVER_USER]));
    assert_eq!(echoed["authorization"], json!([]));
    let (status, _, _) = api_get(&metrics, Some("bogus"), "application/json").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    tracing::info!("two ready replicas: each request goes to one picked at random, both get some");
    let (b, task_b) = echo_replica(cluster.dir(), "b").await;
    cluster.set_replicas(&[a.clone(), b.clone()]);
    wait_ready(&cluster, 2).await;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..40 {
        let (status, _, body) = api_get(&metrics, None, "application/json").await;
        assert_eq!(status, StatusCode::OK);
        let echoed: Value = serde_json::from_slice(&body).unwrap();
        *seen.entry(echoed["replica"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert!(
        seen.len() == 2 && seen.values().all(|&n| n >= 5),
        "random spread: {seen:?}"
    );

    tracing::info!("one dies: requests sent to it get 503 (no retry) until its probe fails");
    task_a.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..20 {
        let (status, ct, body) = api_get(&metrics, None, "application/json").await;
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(ct.starts_with("text/plain"));
                assert!(String::from_utf8_lossy(&body).contains("error trying to reach service"));
                failed += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        ok > 0 && failed > 0,
        "some to the live replica, some 503 from the dead: {ok} ok, {failed} failed"
    );
    wait_ready(&cluster, 1).await;
    for _ in 0..10 {
        let (status, _, _) = api_get(&metrics, None, "application/json").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "after the probe took it out, only the live one is used"
        );
    }

    tracing::info!("both gone: 503 again");
    task_b.abort();
    wait_ready(&cluster, 0).await;
    let (status, _, body) = api_get(&metrics, None, "application/json").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::SERVICE_UNAVAILABLE, &b"service unavailable\n"[..])
    );
    cluster.shutdown();
}
