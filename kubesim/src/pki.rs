//! The simulator's certificate authorities and the certificates it issues: the cluster CA
//! (kubelet serving certificates, the HTTPS apiserver, client certificates), the front-proxy CA
//! (the aggregation proxy's client certificate) and the peer CA (for replicas' mutual TLS).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::IpAddr;
use std::path::Path;

/// Why a certificate could not be made or read. Not worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing PEM in {0}")]
    Pem(String),
}

/// A certificate authority that can issue leaves.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// An issued certificate and its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_pem: String,
    key_der: Vec<u8>,
}

impl Leaf {
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Default)]
pub struct LeafSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    pub server: bool,
    pub client: bool,
}

impl Ca {
    /// A new self-signed CA.
    pub fn new(common_name: &str) -> Result<Ca, PkiError> {
        let params = ca_params(common_name);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its PEM certificate and key (as written by [`Ca::write`]) and the common name it
    /// was made with: the issuer is rebuilt from the same subject and key, so what it issues
    /// chains to the written certificate.
    pub fn from_pem(common_name: &str, cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| PkiError::Pem("CA".into()))?;
        let issuer = Issuer::new(ca_params(common_name), key);
        Ok(Ca {
            issuer,
            cert_pem: cert_pem.to_string(),
            cert_der,
            key_pem: key_pem.to_string(),
        })
    }

    /// Reads `<stem>.crt` and `<stem>.key` from `dir`.
    pub fn load(dir: &Path, stem: &str, common_name: &str) -> Result<Ca, PkiError> {
        let read = |ext: &str| {
            let path = dir.join(format!("{stem}.{ext}"));
            std::fs::read_to_string(&path).map_err(|source| PkiError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        Ca::from_pem(common_name, &read("crt")?, &read("key")?)
    }

    /// Writes `<stem>.crt` and `<stem>.key` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        std::fs::write(dir.join(format!("{stem}.crt")), &self.cert_pem)?;
        std::fs::write(dir.join(format!("{stem}.key")), &self.key_pem)
    }

    /// Issues a leaf with a fresh key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Leaf, PkiError> {
        self.issue_with_key(spec, &KeyPair::generate()?)
    }

    /// Issues a leaf for an existing key (kubelets of one process share a key: issuing is then
    /// one signature, which matters at thousands of nodes).
    pub fn issue_with_key(&self, spec: &LeafSpec, key: &KeyPair) -> Result<Leaf, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        for org in &spec.organizations {
            params.distinguished_name.push(DnType::OrganizationName, org.as_str());
        }
        params.subject_alt_names = spec.ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        for name in &spec.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.as_str().try_into()?));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        if spec.server {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(key, &self.issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        })
    }
}

impl Leaf {
    /// Reads `<stem>.crt` and `<stem>.key` (PKCS#8) from `dir`.
    pub fn load(dir: &Path, stem: &str) -> Result<Leaf, PkiError> {
        let read = |ext: &str| {
            let path = dir.join(format!("{stem}.{ext}"));
            std::fs::read_to_string(&path).map_err(|source| PkiError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let (cert_pem, key_pem) = (read("crt")?, read("key")?);
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| PkiError::Pem(stem.into()))?;
        let key_der = KeyPair::from_pem(&key_pem)?.serialize_der();
        Ok(Leaf {
            cert_pem,
            cert_der,
            key_pem,
            key_der,
        })
    }

    /// Writes `<stem>.crt` and `<stem>.key` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        std::fs::write(dir.join(format!("{stem}.crt")), &self.cert_pem)?;
        std::fs::write(dir.join(format!("{stem}.key")), &self.key_pem)
    }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A root store holding one CA.
pub fn roots(ca: &CertificateDer<'static>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("a CA we generated parses");
    roots
}

/// The process-wide rustls provider (ring). Safe to call many times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
