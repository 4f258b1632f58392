//! Client certificates on the serving port. The handshake accepts a connection without a
//! certificate (health probes, bearer tokens) or with one that chains to the client CA or the
//! request-header CA *as they are now* ([`DynamicVerifier`] reads the live [`Snapshot`]). Each
//! request then asks its connection's [`ClientChain`] which CA the chain belongs to; the answer
//! is remembered per connection until the settings change.

use super::cas::{DynamicAuthn, Snapshot};
use super::request_header::subject;
use super::user::User;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The serving port's client-certificate verifier over the live settings.
#[derive(Debug)]
pub struct DynamicVerifier {
    dynamic: Arc<DynamicAuthn>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for DynamicAuthn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicAuthn").finish_non_exhaustive()
    }
}

impl DynamicVerifier {
    pub fn new(dynamic: Arc<DynamicAuthn>) -> Self {
        DynamicVerifier {
            dynamic,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for DynamicVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: the CAs change, and clients send their certificate anyway.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match &self.dynamic.load().handshake {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Which CA a connection's certificate chains to, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The request-header CA: the headers may name the user if `cn` is allowed.
    FrontProxy { cn: String },
    /// The client CA: CN is the user, O the groups.
    Client(Arc<User>),
    /// Neither (any more), or no usable subject.
    Untrusted,
}

/// A connection's client certificate chain (leaf first), set when the connection opens.
#[derive(Debug, Default)]
pub struct ClientChain {
    chain: Vec<CertificateDer<'static>>,
    memo: Mutex<Option<(u64, Verdict)>>,
}

impl ClientChain {
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Self {
        ClientChain {
            chain,
            memo: Mutex::new(None),
        }
    }

    /// The verdict under `snapshot`, computed once per connection and settings generation.
    pub fn verdict(&self, snapshot: &Snapshot) -> Verdict {
        let mut memo = self.memo.lock().expect("verdict lock");
        if let Some((generation, verdict)) = &*memo
            && *generation == snapshot.generation
        {
            return verdict.clone();
        }
        let verdict = self.classify(snapshot);
        *memo = Some((snapshot.generation, verdict.clone()));
        verdict
    }

    fn classify(&self, snapshot: &Snapshot) -> Verdict {
        let Some((leaf, intermediates)) = self.chain.split_first() else {
            return Verdict::Untrusted;
        };
        let chains_to =
            |v: &Arc<dyn ClientCertVerifier>| v.verify_client_cert(leaf, intermediates, UnixTime::now()).is_ok();
        let Some((cn, orgs)) = subject(leaf) else {
            return Verdict::Untrusted;
        };
        if snapshot.request_header.as_ref().is_some_and(|(v, _)| chains_to(v)) {
            return Verdict::FrontProxy { cn };
        }
        if snapshot.client_ca.as_ref().is_some_and(chains_to) && !cn.is_empty() {
            let user = User {
                name: cn,
                groups: orgs,
                ..Default::default()
            };
            return Verdict::Client(Arc::new(user.authenticated()));
        }
        Verdict::Untrusted
    }
}
