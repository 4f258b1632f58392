//! `--tls-min-version` and `--tls-cipher-suites` with Go's names, mapped to rustls.

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as suites;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Parses a Go name; TLS 1.0 and 1.1 (which rustls does not speak) are raised to 1.2 with
    /// a warning.
    pub fn parse(name: &str) -> Result<(TlsVersion, Option<String>), String> {
        match name {
            "" | "VersionTLS12" => Ok((TlsVersion::Tls12, None)),
            "VersionTLS13" => Ok((TlsVersion::Tls13, None)),
            "VersionTLS10" | "VersionTLS11" => Ok((
                TlsVersion::Tls12,
                Some(format!(
                    "--tls-min-version={name} raised to VersionTLS12: TLS 1.0 and 1.1 are not supported"
                )),
            )),
            other => Err(format!(
                "--tls-min-version: unknown version {other:?} (VersionTLS12, VersionTLS13)"
            )),
        }
    }
}

/// Maps Go cipher suite names to rustls suites; an empty list means rustls' defaults.
pub fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let suite = match name {
            "TLS_AES_128_GCM_SHA256" => suites::TLS13_AES_128_GCM_SHA256,
            "TLS_AES_256_GCM_SHA384" => suites::TLS13_AES_256_GCM_SHA384,
            "TLS_CHACHA20_POLY1305_SHA256" => suites::TLS13_CHACHA20_POLY1305_SHA256,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            }
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            }
            other => {
                return Err(format!(
                    "--tls-cipher-suites: {other:?} is unknown or insecure (CBC, RC4 and 3DES suites are not offered)"
                ));
            }
        };
        out.push(suite);
    }
    Ok(out)
}
