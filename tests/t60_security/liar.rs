//! A kubelet that lies: an HTTPS `/metrics/resource` endpoint (certificate from the cluster CA)
//! whose every scrape carries another class of bad numbers — NaN, negative, infinite, absurdly
//! large, timestamps far in the future or past, duplicate series — registered as Node `liar-0`
//! with a Running pod `liar-ns/liar-pod`.

use kubesim::apiserver::store::Kind;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const NODE: &str = "liar-0";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The body of scrape number `n`.
pub fn body(n: usize) -> String {
    let ts = now_ms();
    let (cpu, mem, t) = match n % 7 {
        0 => ("NaN".to_string(), "1e9".to_string(), ts),
        1 => ("-5".into(), "-1".into(), ts),
        2 => ("+Inf".into(), "+Inf".into(), ts),
        3 => ("1e300".into(), "1e300".into(), ts),
        4 => (format!("{}", n * 10), "1e9".into(), ts + 100 * 365 * 86_400_000),
        5 => (format!("{}", n * 10), "1e9".into(), 1),
        _ => (format!("{}", n * 10), "1e9".into(), ts),
    };
    let c = r#"{container="c",namespace="liar-ns",pod="liar-pod"}"#;
    let mut out = format!(
        "node_cpu_usage_seconds_total {cpu} {t}\nnode_memory_working_set_bytes {mem} {t}\n\
         container_cpu_usage_seconds_total{c} {cpu} {t}\ncontainer_memory_working_set_bytes{c} {mem} {t}\n\
         container_start_time_seconds{c} 1.7e9 {t}\n"
    );
    if n % 7 == 6 {
        // The same series again with other values, and a NaN repeat.
        out.push_str(&format!(
            "node_cpu_usage_seconds_total 3 {t}\nnode_cpu_usage_seconds_total NaN {t}\n"
        ));
        out.push_str(&format!("container_memory_working_set_bytes{c} 5 {t}\n"));
    }
    out
}

/// Starts the liar and registers its Node and Pod; returns how many scrapes it answered.
pub async fn start(cluster: &kubesim::Cluster) -> Arc<AtomicUsize> {
    let ca = kubesim::pki::Ca::load(cluster.dir(), "ca", kubesim::cluster::CLUSTER_CA_NAME).unwrap();
    let leaf = ca
        .issue(&kubesim::pki::LeafSpec {
            common_name: NODE.into(),
            ips: vec!["127.0.0.1".parse().unwrap()],
            server: true,
            ..Default::default()
        })
        .unwrap();
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.cert_der.clone()], leaf.key_der())
        .unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let scrapes = Arc::new(AtomicUsize::new(0));
    let counter = scrapes.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let body = body(counter.fetch_add(1, Ordering::Relaxed));
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if tls.write_all(head.as_bytes()).await.is_err() || tls.write_all(body.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    register(cluster, port);
    scrapes
}

fn register(cluster: &kubesim::Cluster, port: u16) {
    let created = "2024-01-01T00:00:00Z";
    let node = json!({"kind": "Node", "apiVersion": "v1",
        "metadata": {"name": NODE, "uid": "liar-node-uid", "creationTimestamp": created, "labels": {}},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
    cluster.store().upsert(Kind::Nodes, node);
    let ns = json!({"kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": "liar-ns", "uid": "liar-ns-uid", "creationTimestamp": created}});
    cluster.store().upsert(Kind::Namespaces, ns);
    let pod = json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "liar-pod", "namespace": "liar-ns", "uid": "liar-pod-uid", "creationTimestamp": created},
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running"}});
    cluster.store().upsert(Kind::Pods, pod);
}
