//! rustls client configurations the simulator uses: one that presents a client certificate
//! and skips server verification (the aggregator talks to replicas' self-signed certificates,
//! as an APIService with `insecureSkipTLSVerify` does), and one that verifies against a CA.

use crate::pki::Leaf;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;

/// Accepts any server certificate. Only for talking to servers whose certificates are
/// self-signed on purpose.
#[derive(Debug)]
pub struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that presents `identity` (if any) and does not verify the server.
pub fn insecure_client(identity: Option<&Leaf>) -> Result<rustls::ClientConfig, rustls::Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification(provider())));
    let config = match identity {
        Some(leaf) => builder.with_client_auth_cert(vec![leaf.cert_der.clone()], leaf.key_der())?,
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// A client that verifies the server against `ca` and presents `identity` (if any).
pub fn verified_client(
    ca: &CertificateDer<'static>,
    identity: Option<&Leaf>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(crate::pki::roots(ca));
    let config = match identity {
        Some(leaf) => builder.with_client_auth_cert(vec![leaf.cert_der.clone()], leaf.key_der())?,
        None => builder.with_no_client_auth(),
    };
    Ok(config)
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
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector)
}
