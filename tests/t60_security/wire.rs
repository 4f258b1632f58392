//! Raw-socket and TLS helpers for the security tests: a TLS 1.1-only ClientHello, plain HTTP
//! on the TLS port, HTTPS requests with chosen client certificates and headers.

use http_body_util::BodyExt;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A ClientHello that offers only TLS 1.1 (no supported_versions extension) and two suites.
pub fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend([7u8; 32]); // random
    hello.push(0); // session id
    hello.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, RSA-AES128-SHA
    hello.extend([0x01, 0x00]); // compression: null
    let mut handshake = vec![0x01, 0x00, (hello.len() >> 8) as u8, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, (handshake.len() >> 8) as u8, handshake.len() as u8];
    record.extend(handshake);
    record
}

/// Sends `bytes` to `port` and returns what comes back within two seconds (until EOF).
pub async fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    out
}

/// An HTTPS client presenting `identity` (none: no client certificate), not verifying the server.
pub fn client(
    identity: Option<&kubesim::pki::Leaf>,
) -> hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    kubesim::http::Body,
> {
    kubesim::tls::https_client(kubesim::tls::insecure_client(identity).unwrap())
}

/// GET `https://127.0.0.1:port{path}` with `headers` and an optional client certificate: the
/// status and the body as JSON (or a string), or the connection error.
pub async fn get(
    identity: Option<&kubesim::pki::Leaf>,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    request("GET", identity, port, path, headers).await
}

pub async fn request(
    method: &str,
    identity: Option<&kubesim::pki::Leaf>,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    request_with_body(method, identity, port, path, headers, Vec::new()).await
}

pub async fn request_with_body(
    method: &str,
    identity: Option<&kubesim::pki::Leaf>,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, Value), String> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://127.0.0.1:{port}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(kubesim::http::full(body)).unwrap();
    let resp = client(identity).request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    Ok((status, value))
}

/// The subject common name of the serving certificate on `port`.
pub async fn serving_cn(port: u16) -> String {
    let config = std::sync::Arc::new(kubesim::tls::insecure_client(None).unwrap());
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}
