//! The authentication settings that can change at run time: the client CA, the request-header
//! CA, allowed names and header names. Flags win; what they leave unset comes from
//! `kube-system/extension-apiserver-authentication` (see [`super::lookup`]). Each change builds
//! a new immutable [`Snapshot`] that readers take with one read lock and an `Arc` clone, so a
//! rotated CA applies to the next handshake and the next request without a restart.

use super::request_header::RequestHeader;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Keys of the authentication ConfigMap.
pub const CLIENT_CA_KEY: &str = "client-ca-file";
pub const REQUEST_HEADER_CA_KEY: &str = "requestheader-client-ca-file";

/// PEM bundles and request-header settings as given (flags or ConfigMap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub client_ca: Option<Vec<u8>>,
    pub request_header: Option<(Vec<u8>, RequestHeader)>,
}

impl Sources {
    /// The settings in the ConfigMap's `data`. A list key that is missing or not a JSON list
    /// keeps the default.
    pub fn from_configmap(data: &BTreeMap<String, String>) -> Sources {
        let list = |key: &str, default: Vec<String>| {
            data.get(key)
                .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
                .unwrap_or(default)
        };
        let defaults = RequestHeader::default();
        let request_header = data.get(REQUEST_HEADER_CA_KEY).map(|ca| {
            let rh = RequestHeader {
                allowed_names: list("requestheader-allowed-names", vec![]),
                username_headers: list("requestheader-username-headers", defaults.username_headers.clone()),
                group_headers: list("requestheader-group-headers", defaults.group_headers.clone()),
                extra_prefixes: list("requestheader-extra-headers-prefix", defaults.extra_prefixes.clone()),
            };
            (ca.as_bytes().to_vec(), rh)
        });
        Sources {
            client_ca: data.get(CLIENT_CA_KEY).map(|ca| ca.as_bytes().to_vec()),
            request_header,
        }
    }
}

/// One consistent view of the settings, with verifiers built from them.
pub struct Snapshot {
    /// Rises with every change; per-connection verdicts remember it (see `verifier.rs`).
    pub generation: u64,
    pub client_ca: Option<Arc<dyn ClientCertVerifier>>,
    pub request_header: Option<(Arc<dyn ClientCertVerifier>, RequestHeader)>,
    /// Both CAs: what the TLS handshake accepts (no certificate is fine too).
    pub handshake: Option<Arc<dyn ClientCertVerifier>>,
}

fn roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the CA bundle".into());
    }
    Ok(certs)
}

fn verifier(certs: &[CertificateDer<'static>]) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut store = RootCertStore::empty();
    for cert in certs {
        store
            .add(cert.clone())
            .map_err(|e| format!("invalid CA certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| e.to_string())
        .map(|v| v as Arc<dyn ClientCertVerifier>)
}

impl Snapshot {
    /// Builds verifiers; a bad bundle is an error naming which one.
    pub fn build(sources: &Sources, generation: u64) -> Result<Snapshot, String> {
        let client = sources
            .client_ca
            .as_deref()
            .map(roots)
            .transpose()
            .map_err(|e| format!("client CA: {e}"))?;
        let header = match &sources.request_header {
            Some((pem, rh)) => Some((roots(pem).map_err(|e| format!("request-header CA: {e}"))?, rh.clone())),
            None => None,
        };
        let all: Vec<_> = client
            .iter()
            .flatten()
            .chain(header.iter().flat_map(|h| &h.0))
            .cloned()
            .collect();
        Ok(Snapshot {
            generation,
            client_ca: client.as_deref().map(verifier).transpose()?,
            request_header: match header {
                Some((certs, rh)) => Some((verifier(&certs)?, rh)),
                None => None,
            },
            handshake: (!all.is_empty()).then(|| verifier(&all)).transpose()?,
        })
    }
}

/// The live settings: flags fixed at start, ConfigMap values replaced as they change.
pub struct DynamicAuthn {
    flags: Sources,
    current: RwLock<Arc<Snapshot>>,
    generation: AtomicU64,
}

impl DynamicAuthn {
    /// Starts from the flags alone.
    pub fn new(flags: Sources) -> Result<Arc<DynamicAuthn>, String> {
        let snapshot = Snapshot::build(&flags, 1)?;
        Ok(Arc::new(DynamicAuthn {
            flags,
            current: RwLock::new(Arc::new(snapshot)),
            generation: AtomicU64::new(1),
        }))
    }

    pub fn load(&self) -> Arc<Snapshot> {
        self.current.read().expect("authn settings lock").clone()
    }

    /// Applies the ConfigMap's settings under the flags. A bad bundle keeps the old settings.
    pub fn apply_configmap(&self, data: &BTreeMap<String, String>) -> Result<(), String> {
        let from_cm = Sources::from_configmap(data);
        let merged = Sources {
            client_ca: self.flags.client_ca.clone().or(from_cm.client_ca),
            request_header: self.flags.request_header.clone().or(from_cm.request_header),
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot = Snapshot::build(&merged, generation)?;
        *self.current.write().expect("authn settings lock") = Arc::new(snapshot);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn configmap_fills_what_flags_leave_unset() {
        let flag_ca = ca_pem();
        let dynamic = DynamicAuthn::new(Sources {
            client_ca: Some(flag_ca.clone().into_bytes()),
            request_header: None,
        })
        .unwrap();
        assert!(dynamic.load().request_header.is_none());
        let data = BTreeMap::from([
            (CLIENT_CA_KEY.to_string(), ca_pem()),
            (REQUEST_HEADER_CA_KEY.to_string(), ca_pem()),
            (
                "requestheader-allowed-names".to_string(),
                "[\"front-proxy-client\"]".to_string(),
            ),
        ]);
        dynamic.apply_configmap(&data).unwrap();
        let snap = dynamic.load();
        assert_eq!(snap.generation, 2);
        assert_eq!(
            snap.request_header.as_ref().unwrap().1.allowed_names,
            ["front-proxy-client"]
        );
        assert!(snap.handshake.is_some());
        let bad = BTreeMap::from([(REQUEST_HEADER_CA_KEY.to_string(), "junk".to_string())]);
        assert!(dynamic.apply_configmap(&bad).is_err());
        assert_eq!(dynamic.load().generation, 2, "a bad bundle keeps the old settings");
    }
}
