//! rustls client configurations the simulator uses: one that presents a client certificate
//! and skips server verification (the aggregator talks to replicas' self-signed certificates,
//! as an APIService with `insecureSkipTLSVerify` does), and one that verifies against a CA.

use crate::pki::Leaf;
use rustls::pki_types::CertificateDer;
use shard::scrape::tls::{Trust, client_config};

fn identity(leaf: Option<&Leaf>) -> Option<(Vec<CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>)> {
    leaf.map(|l| (vec![l.cert_der.clone()], l.key_der()))
}

/// A client that presents `identity` (if any) and does not verify the server.
pub fn insecure_client(leaf: Option<&Leaf>) -> Result<rustls::ClientConfig, rustls::Error> {
    client_config(Trust::Insecure, identity(leaf))
}

/// A client that verifies the server against `ca` and presents `identity` (if any).
pub fn verified_client(
    ca: &CertificateDer<'static>,
    leaf: Option<&Leaf>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    client_config(Trust::Roots(vec![ca.clone()]), identity(leaf))
}

/// An HTTPS client (hyper, keep-alive pool) over a rustls configuration without ALPN set
/// (the connector sets it).
pub fn https_client(
    config: rustls::ClientConfig,
) -> hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    crate::http::Body,
> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(crate::http::CLIENT_IDLE_TIMEOUT)
        .build(connector)
}
