//! Where to scrape a node: metrics-server's address resolution (`--kubelet-preferred-address-types`,
//! `--kubelet-port`, `--kubelet-use-node-status-port`) and the per-node path annotation.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The annotation that overrides a node's metrics path.
pub const METRICS_PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";
pub const DEFAULT_METRICS_PATH: &str = "/metrics/resource";

/// What the scraper needs to know of a Node object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub name: Arc<str>,
    pub labels: BTreeMap<String, String>,
    /// `status.addresses` in order: (type, address).
    pub addresses: Vec<(String, String)>,
    /// `status.daemonEndpoints.kubeletEndpoint.Port` (0 when unset).
    pub kubelet_port: u16,
    /// The `metrics.k8s.io/resource-metrics-path` annotation.
    pub metrics_path: Option<String>,
    /// The Ready condition is True.
    pub ready: bool,
}

/// How kubelets are addressed (the flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Address types in order of preference (`Hostname`, `InternalIP`, ...).
    pub preferred_types: Vec<String>,
    pub port: u16,
    pub use_node_status_port: bool,
}

/// A resolved scrape target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub node: Arc<str>,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Not worth retrying until the Node object changes.
    #[error("node {node:?}: no address matched types {types:?}")]
    NoAddress { node: String, types: Vec<String> },
}

impl AddressPolicy {
    /// The URL to scrape `node` at: the first address of the earliest preferred type.
    pub fn resolve(&self, node: &NodeInfo) -> Result<ScrapeTarget, ResolveError> {
        let address = self
            .preferred_types
            .iter()
            .find_map(|t| {
                node.addresses
                    .iter()
                    .find(|(kind, _)| kind == t)
                    .map(|(_, a)| a.as_str())
            })
            .ok_or_else(|| ResolveError::NoAddress {
                node: node.name.to_string(),
                types: self.preferred_types.clone(),
            })?;
        let port = match (self.use_node_status_port, node.kubelet_port) {
            (true, p) if p != 0 => p,
            _ => self.port,
        };
        let host = match address.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => address.to_string(),
        };
        let path = node.metrics_path.as_deref().unwrap_or(DEFAULT_METRICS_PATH);
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Ok(ScrapeTarget {
            node: node.name.clone(),
            url: format!("https://{host}:{port}{path}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            addresses: vec![
                ("Hostname".into(), "n1".into()),
                ("InternalIP".into(), "10.0.0.5".into()),
            ],
            kubelet_port: 10255,
            ..Default::default()
        }
    }

    fn policy(types: &[&str], status_port: bool) -> AddressPolicy {
        AddressPolicy {
            preferred_types: types.iter().map(|t| t.to_string()).collect(),
            port: 10250,
            use_node_status_port: status_port,
        }
    }

    #[test]
    fn first_preferred_type_wins_and_port_follows_flags() {
        let t = policy(&["InternalIP", "Hostname"], false).resolve(&node()).unwrap();
        assert_eq!(t.url, "https://10.0.0.5:10250/metrics/resource");
        let t = policy(&["Hostname", "InternalIP"], true).resolve(&node()).unwrap();
        assert_eq!(t.url, "https://n1:10255/metrics/resource");
    }

    #[test]
    fn status_port_zero_falls_back_and_path_annotation_applies() {
        let mut n = node();
        n.kubelet_port = 0;
        n.metrics_path = Some("/custom/metrics".into());
        let t = policy(&["InternalIP"], true).resolve(&n).unwrap();
        assert_eq!(t.url, "https://10.0.0.5:10250/custom/metrics");
    }

    #[test]
    fn ipv6_is_bracketed_and_no_match_is_an_error() {
        let mut n = node();
        n.addresses = vec![("InternalIP".into(), "fd00::5".into())];
        assert_eq!(
            policy(&["InternalIP"], false).resolve(&n).unwrap().url,
            "https://[fd00::5]:10250/metrics/resource"
        );
        assert!(matches!(
            policy(&["ExternalIP"], false).resolve(&n),
            Err(ResolveError::NoAddress { .. })
        ));
    }
}
