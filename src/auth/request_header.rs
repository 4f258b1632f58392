//! The request-header authenticator: who the aggregation layer says is calling. The
//! kube-apiserver authenticates the user, then proxies with its front-proxy client certificate
//! and `X-Remote-User` / `X-Remote-Group` / `X-Remote-Extra-*` headers. The headers count only
//! on a connection whose certificate chains to the request-header CA (checked by the caller,
//! see [`super::verifier`]) and whose common name is in the allowed names (empty: any).

use super::user::User;
use std::collections::BTreeMap;

/// The request-header settings (flags or the authentication ConfigMap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_prefixes: Vec<String>,
}

impl Default for RequestHeader {
    fn default() -> Self {
        RequestHeader {
            allowed_names: Vec::new(),
            username_headers: vec!["X-Remote-User".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_prefixes: vec!["X-Remote-Extra-".into()],
        }
    }
}

/// Why a verified front-proxy certificate gives no identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("front-proxy certificate common name {0:?} is not in the allowed names")]
pub struct NotAllowed(pub String);

/// The subject common name and organizations of a DER certificate.
pub fn subject(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    let orgs = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Some((cn, orgs))
}

impl RequestHeader {
    /// The user behind a request whose connection carries a verified front-proxy certificate
    /// with common name `cn`. `headers()` yields every (name, value) pair. `Ok(None)` when no
    /// user header is set.
    pub fn authenticate<'a, F, I>(&self, cn: &str, headers: F) -> Result<Option<User>, NotAllowed>
    where
        F: Fn() -> I,
        I: Iterator<Item = (&'a str, &'a str)>,
    {
        if !self.allowed_names.is_empty() && !self.allowed_names.iter().any(|n| n == cn) {
            return Err(NotAllowed(cn.to_string()));
        }
        let named = |wanted: &str| {
            headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case(wanted))
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        let Some(name) = self
            .username_headers
            .iter()
            .find_map(|h| named(h).into_iter().find(|v| !v.is_empty()))
        else {
            return Ok(None);
        };
        let groups = self
            .group_headers
            .iter()
            .flat_map(|h| named(h))
            .map(String::from)
            .collect();
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (header, value) in headers() {
            let key = self
                .extra_prefixes
                .iter()
                .find_map(|p| strip_prefix_ignore_case(header, p));
            if let Some(key) = key.filter(|k| !k.is_empty()) {
                let key = percent_encoding::percent_decode_str(key)
                    .decode_utf8_lossy()
                    .to_lowercase();
                extra.entry(key).or_default().push(value.to_string());
            }
        }
        Ok(Some(User {
            name: name.to_string(),
            uid: String::new(),
            groups,
            extra,
        }))
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rh(allowed: &[&str]) -> RequestHeader {
        RequestHeader {
            allowed_names: allowed.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    const HEADERS: [(&str, &str); 5] = [
        ("x-remote-user", "alice"),
        ("x-remote-group", "dev"),
        ("x-remote-group", "system:authenticated"),
        ("x-remote-extra-scopes%2Fa", "s1"),
        ("accept", "application/json"),
    ];

    #[test]
    fn identity_needs_an_allowed_name_and_a_user_header() {
        let user = rh(&["front-proxy-client"])
            .authenticate("front-proxy-client", || HEADERS.iter().copied())
            .unwrap()
            .unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["dev", "system:authenticated"]);
        assert_eq!(user.extra["scopes/a"], ["s1"]);
        assert!(
            rh(&[])
                .authenticate("anyone", || HEADERS.iter().copied())
                .unwrap()
                .is_some()
        );
        assert_eq!(
            rh(&["other"]).authenticate("front-proxy-client", || HEADERS.iter().copied()),
            Err(NotAllowed("front-proxy-client".into()))
        );
        assert_eq!(rh(&[]).authenticate("x", || HEADERS[1..].iter().copied()), Ok(None));
    }

    #[test]
    fn subject_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "jane");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "ops");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject(cert.der()), Some(("jane".into(), vec!["ops".into()])));
        assert_eq!(subject(b"not der"), None);
    }
}
