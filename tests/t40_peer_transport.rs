//! The peer channel's transport on loopback: mutual TLS against a throwaway peer CA, bincode
//! round trips, size caps, garbage, deadlines and unreachable peers. No cluster, no processes.

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::Bytes;
use ha_metrics_server::peer::transport::{
    Bincode, BincodeConfig, MAX_PEER_BODY_BYTES, MAX_PEER_REQUEST_BYTES, PEER_PATH_PREFIX, PEER_SERVER_KEEP_ALIVE,
    PeerClient, PeerError, PeerTls,
};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use kubesim::pki::{Ca, Leaf, LeafSpec};
use rustls::pki_types::ServerName;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(10);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

/// A peer CA with one replica certificate, written to a scratch directory, and a stranger: a
/// certificate for the same name from another CA.
struct Pki {
    dir: PathBuf,
    ca: Ca,
    replica: Leaf,
    stranger: Leaf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    fn new(test: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("t40-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = LeafSpec {
            common_name: "replica-0".into(),
            ips: vec![LOCALHOST],
            server: true,
            client: true,
            ..Default::default()
        };
        let ca = Ca::new("peer-ca").unwrap();
        let replica = ca.issue(&spec).unwrap();
        let stranger_ca = Ca::new("peer-ca").unwrap();
        let stranger = stranger_ca.issue(&spec).unwrap();
        ca.write(&dir, "peer-ca").unwrap();
        replica.write(&dir, "replica").unwrap();
        stranger_ca.write(&dir, "stranger-ca").unwrap();
        stranger.write(&dir, "stranger").unwrap();
        Pki {
            dir,
            ca,
            replica,
            stranger,
        }
    }

    fn load(&self, cert: &str, ca: &str) -> PeerTls {
        let file = |stem: &str, ext: &str| self.dir.join(format!("{stem}.{ext}"));
        PeerTls::load(&file(cert, "crt"), &file(cert, "key"), &file(ca, "crt")).unwrap()
    }

    fn replica_tls(&self) -> PeerTls {
        self.load("replica", "peer-ca")
    }

    /// A plain rustls client trusting the peer CA, presenting `identity` if any.
    fn raw_client(&self, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(kubesim::pki::roots(&self.ca.cert_der));
        Arc::new(match identity {
            Some(leaf) => builder
                .with_client_auth_cert(vec![leaf.cert_der.clone()], leaf.key_der())
                .unwrap(),
            None => builder.with_no_client_auth(),
        })
    }
}

/// A running peer server: its `host:port`, handle, and how many connections it accepted.
struct Server {
    address: String,
    handle: ServerHandle,
    connections: Arc<AtomicUsize>,
}

async fn echo(body: Bincode<Vec<u64>>) -> Bincode<Vec<u64>> {
    body
}

async fn slow(body: Bincode<Vec<u64>>) -> Bincode<Vec<u64>> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    body
}

/// A raw 200 answer one byte over the client's cap.
async fn huge_raw() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-bincode")
        .body(vec![0u8; MAX_PEER_BODY_BYTES + 1])
}

/// A `Bincode` answer over the cap: the responder refuses it with 500.
async fn huge_bincode() -> Bincode<Vec<u8>> {
    Bincode(vec![0u8; MAX_PEER_BODY_BYTES])
}

/// Calls this same server's echo route from inside an actix handler (current-thread runtime).
async fn relay(me: web::Data<(PeerClient, Arc<OnceLock<String>>)>, body: Bincode<Vec<u64>>) -> HttpResponse {
    let path = format!("{PEER_PATH_PREFIX}/echo");
    let answer: Result<Vec<u64>, _> = me.0.call(me.1.get().unwrap(), &path, &body.0, DEADLINE).await;
    match answer {
        Ok(mut values) => {
            values.push(42);
            HttpResponse::Ok()
                .content_type("application/x-bincode")
                .body(bincode::serialize(&values).unwrap())
        }
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}

fn start(tls: &PeerTls) -> Server {
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let me = web::Data::new((PeerClient::new(tls), Arc::new(OnceLock::new())));
    let own = me.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(own.clone()).service(
            web::scope(PEER_PATH_PREFIX)
                .route("/echo", web::post().to(echo))
                .route("/slow", web::post().to(slow))
                .route("/huge-raw", web::post().to(huge_raw))
                .route("/huge-bincode", web::post().to(huge_bincode))
                .route("/relay", web::post().to(relay))
                .service(
                    web::resource("/small")
                        .app_data(BincodeConfig::limit(1024))
                        .route(web::post().to(echo)),
                ),
        )
    })
    .on_connect(move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .keep_alive(PEER_SERVER_KEEP_ALIVE)
    .bind_rustls_0_23((LOCALHOST, 0), (*tls.server).clone())
    .unwrap();
    let address = server.addrs()[0].to_string();
    me.1.set(address.clone()).unwrap();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Server {
        address,
        handle,
        connections,
    }
}

/// One HTTP/1.1 POST with `hyper` over `tls`: the status and body, or why it failed.
async fn hyper_post<B>(
    address: &str,
    tls: Arc<rustls::ClientConfig>,
    path: &str,
    body: B,
) -> Result<(u16, Bytes), Box<dyn std::error::Error + Send + Sync>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::IpAddress(LOCALHOST.into()), tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header(http::header::HOST, address)
        .header(http::header::CONTENT_TYPE, "application/x-bincode")
        .body(body)?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// Speaks raw HTTP/1.1 over TLS with `tls` and returns every byte the server sent back, or the
/// first error (handshake, write or read).
async fn raw_exchange(address: &str, tls: Arc<rustls::ClientConfig>) -> std::io::Result<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::IpAddress(LOCALHOST.into()), tcp)
        .await?;
    let body = bincode::serialize(&vec![7u64]).unwrap();
    let head = format!(
        "POST {PEER_PATH_PREFIX}/echo HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.flush().await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer)
}

/// A connection without a client certificate, or with one from another CA, must not get any
/// HTTP answer: the handshake fails or the connection closes.
fn assert_refused(what: &str, outcome: std::io::Result<Vec<u8>>) {
    match outcome {
        Err(e) => tracing::info!(error = %e, "{what}: refused as expected"),
        Ok(bytes) => assert!(
            !bytes.starts_with(b"HTTP/"),
            "{what}: got an HTTP answer: {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

fn path(route: &str) -> String {
    format!("{PEER_PATH_PREFIX}/{route}")
}

#[actix_web::test]
async fn round_trips_over_mutual_tls_with_one_pooled_connection() {
    init_tracing();
    let pki = Pki::new("round-trip");
    let tls = pki.replica_tls();
    let server = start(&tls);
    let client = PeerClient::new(&tls);

    tracing::info!("three calls in a row: same values back, over one kept-alive connection");
    for n in 0..3u64 {
        let sent: Vec<u64> = (0..1000).map(|i| i * n + u64::MAX / 3).collect();
        let got: Vec<u64> = client
            .call(&server.address, &path("echo"), &sent, DEADLINE)
            .await
            .unwrap();
        assert_eq!(got, sent);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    tracing::info!("an empty value round-trips too");
    let got: Vec<u64> = client
        .call(&server.address, &path("echo"), &Vec::<u64>::new(), DEADLINE)
        .await
        .unwrap();
    assert!(got.is_empty());

    tracing::info!("the client works from inside an actix handler (current-thread runtime)");
    let got: Vec<u64> = client
        .call(&server.address, &path("relay"), &vec![1u64, 2], DEADLINE)
        .await
        .unwrap();
    assert_eq!(got, vec![1, 2, 42]);

    tracing::info!("an unknown route is a Status error carrying the code");
    let err = client
        .call::<_, Vec<u64>>(&server.address, &path("nope"), &vec![1u64], DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Status(404, _)), "{err:?}");
    server.handle.stop(false).await;
}

#[actix_web::test]
async fn only_holders_of_a_peer_ca_certificate_get_an_answer() {
    init_tracing();
    let pki = Pki::new("mtls");
    let tls = pki.replica_tls();
    let server = start(&tls);

    tracing::info!("control: a raw client with the replica certificate gets an answer");
    let answer = raw_exchange(&server.address, pki.raw_client(Some(&pki.replica)))
        .await
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );

    tracing::info!("no client certificate: no HTTP answer");
    assert_refused(
        "no certificate",
        raw_exchange(&server.address, pki.raw_client(None)).await,
    );

    tracing::info!("a certificate for the same name from another CA: no HTTP answer");
    assert_refused(
        "stranger certificate",
        raw_exchange(&server.address, pki.raw_client(Some(&pki.stranger))).await,
    );

    tracing::info!("a PeerClient of another CA is refused, and refuses our server: Tls error");
    let stranger = PeerClient::new(&pki.load("stranger", "stranger-ca"));
    let err = stranger
        .call::<_, Vec<u64>>(&server.address, &path("echo"), &vec![1u64], DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Tls(_)), "{err:?}");

    tracing::info!("a stranger certificate trusting our CA: the server refuses it, a Tls error");
    let stranger_trusting_us = PeerTls::new(
        vec![pki.stranger.cert_der.clone()],
        pki.stranger.key_der(),
        vec![pki.ca.cert_der.clone()],
    )
    .unwrap();
    let err = PeerClient::new(&stranger_trusting_us)
        .call::<_, Vec<u64>>(&server.address, &path("echo"), &vec![1u64], DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Tls(_)), "{err:?}");

    tracing::info!("the server's name is checked: its certificate has no SAN for localhost");
    let port = server.address.rsplit(':').next().unwrap();
    let err = PeerClient::new(&tls)
        .call::<_, Vec<u64>>(&format!("localhost:{port}"), &path("echo"), &vec![1u64], DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Tls(_)), "{err:?}");

    tracing::info!("the server still serves its peers after all that");
    let got: Vec<u64> = PeerClient::new(&tls)
        .call(&server.address, &path("echo"), &vec![5u64], DEADLINE)
        .await
        .unwrap();
    assert_eq!(got, vec![5]);
    server.handle.stop(false).await;
}

#[actix_web::test]
async fn caps_and_garbage_get_4xx_and_typed_errors() {
    init_tracing();
    let pki = Pki::new("caps");
    let tls = pki.replica_tls();
    let server = start(&tls);
    let raw = pki.raw_client(Some(&pki.replica));

    tracing::info!("a declared length over the default request cap: 413 with a reason");
    let body = Full::new(Bytes::from(vec![0u8; MAX_PEER_REQUEST_BYTES + 1]));
    let (status, text) = hyper_post(&server.address, raw.clone(), &path("echo"), body)
        .await
        .unwrap();
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&text).contains("larger than"), "{text:?}");

    tracing::info!("a chunked body passing a route's own cap: 413 while it streams");
    let chunks = (0..8).map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![1u8; 512]))));
    let body = StreamBody::new(futures::stream::iter(chunks));
    let (status, _) = hyper_post(&server.address, raw.clone(), &path("small"), body)
        .await
        .unwrap();
    assert_eq!(status, 413);

    tracing::info!("under the route's cap the same route answers");
    let body = Full::new(Bytes::from(bincode::serialize(&vec![3u64; 4]).unwrap()));
    let (status, text) = hyper_post(&server.address, raw.clone(), &path("small"), body)
        .await
        .unwrap();
    assert_eq!(
        (status, bincode::deserialize::<Vec<u64>>(&text).unwrap()),
        (200, vec![3; 4])
    );

    tracing::info!("garbage, an empty body and trailing bytes: 400 with a reason");
    let mut trailing = bincode::serialize(&vec![1u64]).unwrap();
    trailing.push(0);
    for garbage in [b"definitely not bincode".to_vec(), Vec::new(), trailing, vec![0xff; 8]] {
        let body = Full::new(Bytes::from(garbage.clone()));
        let (status, text) = hyper_post(&server.address, raw.clone(), &path("echo"), body)
            .await
            .unwrap();
        assert_eq!(status, 400, "{garbage:?}");
        assert!(String::from_utf8_lossy(&text).contains("bincode"), "{text:?}");
    }

    let client = PeerClient::new(&tls);
    let before = server.connections.load(Ordering::SeqCst);
    tracing::info!("the client refuses to send a request over the cap, without connecting");
    let err = client
        .call::<_, Vec<u64>>(
            &server.address,
            &path("echo"),
            &vec![0u64; MAX_PEER_REQUEST_BYTES / 8],
            DEADLINE,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::TooLarge(MAX_PEER_REQUEST_BYTES)), "{err:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), before);

    tracing::info!("an answer over the client's cap: TooLarge");
    let err = client
        .call::<_, Vec<u8>>(&server.address, &path("huge-raw"), &(), DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::TooLarge(MAX_PEER_BODY_BYTES)), "{err:?}");

    tracing::info!("a Bincode answer over the cap is refused by the server: 500");
    let err = client
        .call::<_, Vec<u8>>(&server.address, &path("huge-bincode"), &(), DEADLINE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PeerError::Status(500, text) if text.contains("larger than")),
        "{err:?}"
    );

    tracing::info!("an answer that does not decode as the expected type: Decode");
    let err = client
        .call::<_, (u64, u64, u64)>(&server.address, &path("echo"), &vec![1u64], DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Decode(_)), "{err:?}");
    server.handle.stop(false).await;
}

#[actix_web::test]
async fn deadlines_and_closed_ports_are_told_apart() {
    init_tracing();
    let pki = Pki::new("deadline");
    let tls = pki.replica_tls();
    let server = start(&tls);
    let client = PeerClient::new(&tls);

    tracing::info!("a handler that sleeps past the deadline: Timeout, on time");
    let started = Instant::now();
    let deadline = Duration::from_millis(300);
    let err = client
        .call::<_, Vec<u64>>(&server.address, &path("slow"), &vec![1u64], deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Timeout(d) if d == deadline), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    tracing::info!("a closed port: Connect");
    let closed = std::net::TcpListener::bind((LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let err = client
        .call::<_, Vec<u64>>(&closed.to_string(), &path("echo"), &vec![1u64], DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Connect(_)), "{err:?}");

    tracing::info!("the client still works after both");
    let got: Vec<u64> = client
        .call(&server.address, &path("echo"), &vec![9u64], DEADLINE)
        .await
        .unwrap();
    assert_eq!(got, vec![9]);
    server.handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_works_from_a_multi_thread_runtime() {
    init_tracing();
    let pki = Pki::new("multi-thread");
    let tls = pki.replica_tls();

    tracing::info!("the server runs in its own actix system on another thread");
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_tls = tls.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = start(&server_tls);
            tx.send(server.address.clone()).unwrap();
            let _ = stopped.await;
            server.handle.stop(false).await;
        })
    });
    let address = rx.recv().unwrap();

    tracing::info!("sixteen concurrent calls from tokio tasks");
    let client = PeerClient::new(&tls);
    let calls = (0..16u64).map(|n| {
        let (client, address) = (client.clone(), address.clone());
        tokio::spawn(async move {
            client
                .call::<_, Vec<u64>>(&address, &path("echo"), &vec![n; 100], DEADLINE)
                .await
        })
    });
    for (n, call) in futures::future::join_all(calls).await.into_iter().enumerate() {
        assert_eq!(call.unwrap().unwrap(), vec![n as u64; 100]);
    }
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
}

#[test]
fn load_reports_missing_and_empty_files() {
    let pki = Pki::new("load");
    let missing = Path::new("/nonexistent/peer.crt");
    let replica = |ext: &str| pki.dir.join(format!("replica.{ext}"));
    assert!(PeerTls::load(missing, &replica("key"), &pki.dir.join("peer-ca.crt")).is_err());
    let empty = pki.dir.join("empty.crt");
    std::fs::write(&empty, "").unwrap();
    assert!(PeerTls::load(&replica("crt"), &replica("key"), &empty).is_err());
    assert!(PeerTls::load(&empty, &replica("key"), &pki.dir.join("peer-ca.crt")).is_err());
    assert!(PeerTls::load(&replica("crt"), &replica("key"), &pki.dir.join("peer-ca.crt")).is_ok());
}

#[actix_web::test]
async fn rotated_peer_files_are_used_for_new_handshakes() {
    init_tracing();
    let pki = Pki::new("rotate");
    let live = |ext: &str| pki.dir.join(format!("live.{ext}"));
    let copy = |stem: &str, to: &str| std::fs::copy(pki.dir.join(stem), live(to)).unwrap();
    copy("replica.crt", "crt");
    copy("replica.key", "key");
    copy("peer-ca.crt", "ca");
    let tls = PeerTls::load(&live("crt"), &live("key"), &live("ca")).unwrap();
    tls.spawn_watch();
    let server = start(&tls);
    let old = PeerClient::new(&pki.replica_tls());
    let new = PeerClient::new(&pki.load("stranger", "stranger-ca"));
    let echo = |client: PeerClient| {
        let address = server.address.clone();
        async move {
            client
                .call::<_, Vec<u64>>(&address, &path("echo"), &vec![5u64], DEADLINE)
                .await
        }
    };

    tracing::info!("before: the first CA's certificate is served and trusted, the second's is not");
    assert_eq!(echo(old.clone()).await.unwrap(), vec![5]);
    assert!(matches!(echo(new.clone()).await, Err(PeerError::Tls(_))));

    tracing::info!("rotate certificate, key and CA on disk (as a renewed Secret): new handshakes use them");
    copy("stranger.crt", "crt");
    copy("stranger.key", "key");
    copy("stranger-ca.crt", "ca");
    let started = Instant::now();
    loop {
        match echo(new.clone()).await {
            Ok(v) => break assert_eq!(v, vec![5]),
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                tracing::debug!("not reloaded yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the rotated certificate is not used after 10 s: {e}"),
        }
    }
    tracing::info!(after = ?started.elapsed(), "reloaded; a new PeerClient of the old files is now refused");
    assert!(matches!(
        echo(PeerClient::new(&pki.replica_tls())).await,
        Err(PeerError::Tls(_))
    ));
    tracing::info!("the replica's own client reloaded too: it trusts the new CA and presents the new certificate");
    assert_eq!(echo(PeerClient::new(&tls)).await.unwrap(), vec![5]);

    tracing::info!("a broken key file keeps the set in use");
    std::fs::write(live("key"), "not a key").unwrap();
    tokio::time::sleep(ha_metrics_server::peer::transport::tls::RELOAD_INTERVAL * 3).await;
    assert_eq!(echo(PeerClient::new(&tls)).await.unwrap(), vec![5]);
    assert_eq!(echo(new).await.unwrap(), vec![5]);
    server.handle.stop(false).await;
}
