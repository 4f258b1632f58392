//! The Metrics API port speaks HTTP/2 and HTTP/1.1 (ALPN), as kube-aggregator expects, with
//! metrics-server's `--disable-http2-serving` and `--http2-max-streams-per-connection`; and the
//! aggregator-aware shutdown: after a real SIGTERM, readyz fails while every request is still
//! served for `--shutdown-delay-duration`, then HTTP/2 clients get GOAWAY and the process exits.
//! Real server processes, real hyper and h2 clients, real kubectl.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";

/// TLS as the aggregator connects: the front-proxy client certificate, no server verification
/// (self-signed serving certificate), and these ALPN protocols.
async fn connect(
    cluster: &kubesim::Cluster,
    port: u16,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let identity = kubesim::pki::Leaf::load(cluster.dir(), "front-proxy-client").unwrap();
    let mut config = kubesim::tls::insecure_client(Some(&identity)).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()), tcp)
        .await
}

fn get(port: u16, path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("https://127.0.0.1:{port}{path}"))
        .header("X-Remote-User", "admin")
        .header("X-Remote-Group", "system:masters")
        .body(Empty::new())
        .unwrap()
}

/// A hyper HTTP/2 client connection and the task driving it (it ends when the server closes).
async fn h2_client(
    cluster: &kubesim::Cluster,
    port: u16,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let tls = connect(cluster, port, &[b"h2"]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the server chose h2");
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .unwrap();
    (sender, tokio::spawn(conn))
}

async fn send<B>(
    sender: &mut hyper::client::conn::http2::SendRequest<B>,
    req: http::Request<B>,
) -> (http::Version, u16, String)
where
    B: hyper::body::Body + 'static,
{
    let resp = sender.send_request(req).await.unwrap();
    let (version, status) = (resp.version(), resp.status().as_u16());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (version, status, String::from_utf8_lossy(&body).into_owned())
}

/// One HTTP/1.1 request on a new connection that offered `alpn`.
async fn http1_get(
    cluster: &kubesim::Cluster,
    port: u16,
    alpn: &[&[u8]],
    path: &str,
) -> Result<(http::Version, u16), String> {
    let tls = connect(cluster, port, alpn).await.map_err(|e| e.to_string())?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = get(port, path);
    req.headers_mut()
        .insert(http::header::HOST, format!("127.0.0.1:{port}").parse().unwrap());
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let version = resp.version();
    let _ = resp.into_body().collect().await;
    Ok((version, status))
}

/// The SETTINGS_MAX_CONCURRENT_STREAMS the server announced, read with the h2 crate.
async fn announced_max_streams(cluster: &kubesim::Cluster, port: u16) -> usize {
    let tls = connect(cluster, port, &[b"h2"]).await.unwrap();
    let (mut client, mut conn) = h2::client::handshake(tls).await.unwrap();
    let mut req = http::Request::get(format!("https://127.0.0.1:{port}/livez"))
        .body(())
        .unwrap();
    *req.version_mut() = http::Version::HTTP_2;
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = tokio::select! {
        r = resp => r.unwrap(),
        r = &mut conn => panic!("connection ended before the answer: {r:?}"),
    };
    assert_eq!(resp.status(), 200);
    conn.max_concurrent_send_streams()
}

/// What the server sent on a raw HTTP/2 connection before it ended: the GOAWAY frames' error
/// codes, read frame by frame (no HTTP/2 library, so a plain EOF cannot pass for a GOAWAY).
struct RawFrames {
    goaway_codes: Vec<u32>,
}

/// Opens an HTTP/2 connection by hand (preface and an empty SETTINGS frame), then reads frames
/// until the server ends it, acknowledging SETTINGS and PING as a client must.
async fn raw_h2_watch(cluster: &kubesim::Cluster, port: u16) -> tokio::task::JoinHandle<RawFrames> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SETTINGS: u8 = 0x4;
    const PING: u8 = 0x6;
    const GOAWAY: u8 = 0x7;
    const ACK: u8 = 0x1;
    let mut tls = connect(cluster, port, &[b"h2"]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let frame = |kind: u8, flags: u8, payload: &[u8]| {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    };
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    tls.write_all(&frame(SETTINGS, 0, &[])).await.unwrap();
    tls.flush().await.unwrap();
    tokio::spawn(async move {
        let mut seen = RawFrames {
            goaway_codes: Vec::new(),
        };
        loop {
            let mut header = [0u8; 9];
            if tls.read_exact(&mut header).await.is_err() {
                return seen;
            }
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; len];
            if tls.read_exact(&mut payload).await.is_err() {
                return seen;
            }
            let (kind, flags) = (header[3], header[4]);
            let answer = match kind {
                SETTINGS if flags & ACK == 0 => Some(frame(SETTINGS, ACK, &[])),
                PING if flags & ACK == 0 => Some(frame(PING, ACK, &payload)),
                GOAWAY => {
                    seen.goaway_codes
                        .push(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
                    None
                }
                _ => None,
            };
            if let Some(answer) = answer {
                let _ = tls.write_all(&answer).await;
                let _ = tls.flush().await;
            }
        }
    })
}

async fn wait_ready(cluster: &kubesim::Cluster, port: u16) {
    eventually(Duration::from_secs(60), "readyz 200", async || {
        direct_get(cluster, port, "/readyz").await.is_ok_and(|(c, _)| c == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_http2_and_http1_by_alpn() {
    let cluster = cluster(2, 3, 251).await;
    let server = start_server(&cluster, &["--http2-max-streams-per-connection=3"]).await;
    let port = server.port;
    wait_ready(&cluster, port).await;
    eventually(Duration::from_secs(30), "both nodes served", async || {
        direct_get(&cluster, port, NODES)
            .await
            .is_ok_and(|(_, body)| body.matches("\"name\":\"node-").count() == 2)
    })
    .await;

    tracing::info!("HTTP/2: many requests on one connection, the front proxy's identity is seen");
    let (mut h2, _conn) = h2_client(&cluster, port).await;
    for _ in 0..5 {
        let (version, status, body) = send(&mut h2, get(port, NODES)).await;
        assert_eq!((version, status), (http::Version::HTTP_2, 200), "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(list["kind"], "NodeMetricsList");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
    }
    tracing::info!("the stream limit of --http2-max-streams-per-connection is announced");
    assert_eq!(announced_max_streams(&cluster, port).await, 3);
    tracing::info!("ten requests at once on one connection still all succeed (the client queues)");
    let answers = futures::future::join_all((0..10).map(|_| {
        let mut sender = h2.clone();
        async move { send(&mut sender, get(port, NODES)).await.1 }
    }))
    .await;
    assert!(answers.iter().all(|&s| s == 200), "{answers:?}");

    tracing::info!("HTTP/1.1 when the client offers only that");
    assert_eq!(
        http1_get(&cluster, port, &[b"http/1.1"], NODES).await.unwrap(),
        (http::Version::HTTP_11, 200)
    );

    tracing::info!("kubectl through the aggregation proxy still works");
    // The proxy learns the replica is ready from its own probe, up to a probe period after
    // /readyz turned 200 above.
    eventually(
        Duration::from_secs(10),
        "kubectl top node through the proxy",
        async || {
            let out = kubectl(&cluster, &["top", "node"]).await;
            let text = String::from_utf8_lossy(&out.stdout);
            out.status.success() && text.contains("node-0") && text.contains("node-1")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_can_be_disabled_and_defaults_to_go_limits() {
    let cluster = cluster(1, 2, 252).await;
    let default = spawn_server(&cluster, free_port(), &[]);
    let disabled = spawn_server(&cluster, free_port(), &["--disable-http2-serving"]);
    wait_ready(&cluster, default.port).await;
    wait_ready(&cluster, disabled.port).await;

    tracing::info!("by default the stream limit is Go's default, 250");
    assert_eq!(announced_max_streams(&cluster, default.port).await, 250);

    tracing::info!("--disable-http2-serving: a client offering h2 and http/1.1 gets HTTP/1.1");
    assert_eq!(
        http1_get(&cluster, disabled.port, &[b"h2", b"http/1.1"], NODES)
            .await
            .unwrap(),
        (http::Version::HTTP_11, 200)
    );
    tracing::info!("and a client offering only h2 is refused in the handshake (no common protocol)");
    assert!(connect(&cluster, disabled.port, &[b"h2"]).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_serves_through_the_delay_then_goaway_and_exit() {
    const DELAY: Duration = Duration::from_secs(4);
    let cluster = cluster(1, 2, 253).await;
    let mut server = start_server(&cluster, &["--shutdown-delay-duration=4s"]).await;
    let port = server.port;
    wait_ready(&cluster, port).await;
    let (mut h2, conn) = h2_client(&cluster, port).await;
    assert_eq!(send(&mut h2, get(port, NODES)).await.1, 200);
    let raw = raw_h2_watch(&cluster, port).await;

    tracing::info!("SIGTERM: readyz fails at once, every request is still served during the delay");
    let pid = server.child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let signalled = Instant::now();
    let mut served = 0;
    let mut readyz_500 = false;
    while signalled.elapsed() < DELAY - Duration::from_millis(800) {
        let (_, status, body) = send(&mut h2, get(port, NODES)).await;
        assert_eq!(status, 200, "on the open HTTP/2 connection during the delay: {body}");
        let fresh = http1_get(&cluster, port, &[b"http/1.1"], NODES).await;
        assert_eq!(
            fresh,
            Ok((http::Version::HTTP_11, 200)),
            "on a new connection during the delay"
        );
        let (_, ready, _) = send(&mut h2, get(port, "/readyz")).await;
        readyz_500 |= ready == 500;
        if signalled.elapsed() > Duration::from_millis(500) {
            assert_eq!(ready, 500, "readyz fails during the delay");
        }
        served += 2;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(readyz_500 && served >= 10, "served {served}");

    tracing::info!("after the delay: GOAWAY ends the HTTP/2 connection cleanly, then the process exits");
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    let at = signalled.elapsed();
    let result = ended.expect("the HTTP/2 connection ends after the delay").unwrap();
    assert!(result.is_ok(), "closed with GOAWAY, not reset: {result:?}");
    assert!(at >= DELAY - Duration::from_millis(300), "not before the delay: {at:?}");
    let frames = tokio::time::timeout(Duration::from_secs(10), raw)
        .await
        .expect("the raw HTTP/2 connection ends too")
        .unwrap();
    // A graceful HTTP/2 shutdown may send two: the first announcing it, the second naming the
    // last stream processed once a PING round trip has flushed the ones in flight.
    assert!(
        !frames.goaway_codes.is_empty() && frames.goaway_codes.iter().all(|&code| code == 0),
        "GOAWAY with NO_ERROR before the connection ended: {:?}",
        frames.goaway_codes
    );
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("the process exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        http1_get(&cluster, port, &[b"http/1.1"], NODES).await.is_err(),
        "nothing listens any more"
    );
}
