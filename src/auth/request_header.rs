//! Who is calling, as the aggregation layer tells it: a front-proxy client certificate (chain
//! verified by rustls against `--requestheader-client-ca-file`, common name checked against
//! `--requestheader-allowed-names`) and the `X-Remote-User` / `X-Remote-Group` /
//! `X-Remote-Extra-*` headers. Without such a certificate the headers are ignored, never trusted.

use std::collections::BTreeMap;

/// Set per connection from its TLS session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The leaf's subject common name, when the client presented a certificate rustls verified.
    pub common_name: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The request-header settings (flags).
#[derive(Debug, Clone)]
pub struct RequestHeader {
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_prefixes: Vec<String>,
}

/// The subject CN of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}

impl RequestHeader {
    /// The user behind a request, if its connection carries an allowed front-proxy certificate
    /// and a user header. `header(name)` returns every value of a header.
    pub fn authenticate<'a>(&self, peer: &PeerCertificate, header: impl Fn(&str) -> Vec<&'a str>) -> Option<User> {
        let cn = peer.common_name.as_deref()?;
        if !self.allowed_names.is_empty() && !self.allowed_names.iter().any(|n| n == cn) {
            return None;
        }
        let name = self
            .username_headers
            .iter()
            .find_map(|h| header(h).into_iter().find(|v| !v.is_empty()))?;
        let groups = self
            .group_headers
            .iter()
            .flat_map(|h| header(h))
            .map(String::from)
            .collect();
        Some(User {
            name: name.to_string(),
            groups,
            extra: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rh(allowed: &[&str]) -> RequestHeader {
        RequestHeader {
            allowed_names: allowed.iter().map(|s| s.to_string()).collect(),
            username_headers: vec!["X-Remote-User".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_prefixes: vec!["X-Remote-Extra-".into()],
        }
    }

    fn headers(name: &str) -> Vec<&'static str> {
        match name {
            "X-Remote-User" => vec!["alice"],
            "X-Remote-Group" => vec!["dev", "system:authenticated"],
            _ => vec![],
        }
    }

    #[test]
    fn identity_needs_an_allowed_certificate() {
        let cert = PeerCertificate {
            common_name: Some("front-proxy-client".into()),
        };
        let user = rh(&["front-proxy-client"]).authenticate(&cert, headers).unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["dev", "system:authenticated"]);
        assert!(
            rh(&[]).authenticate(&cert, headers).is_some(),
            "empty allowed names accept any verified CN"
        );
        assert!(rh(&["other"]).authenticate(&cert, headers).is_none());
        assert!(
            rh(&[]).authenticate(&PeerCertificate::default(), headers).is_none(),
            "headers without a certificate are ignored"
        );
        assert!(
            rh(&[]).authenticate(&cert, |_| vec![]).is_none(),
            "no user header, no identity"
        );
    }

    #[test]
    fn common_name_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "front-proxy-client");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()), Some("front-proxy-client".into()));
        assert_eq!(common_name(b"not der"), None);
    }
}
