//! API discovery and `/version` bodies: what kubectl, the HPA's clients and the
//! kube-aggregator's availability check read before they touch the Metrics API.
//!
//! - `/apis`: legacy `APIGroupList`, or aggregated `APIGroupDiscoveryList` (`apidiscovery.k8s.io/v2`)
//!   when [`negotiate_discovery`] says the client asked for it, answered with
//!   [`AGGREGATED_DISCOVERY_V2_CONTENT_TYPE`] (kubectl ignores an aggregated body under plain
//!   `application/json`). A client that asks only for `v2beta1` (kubectl 1.27, 1.29) gets legacy
//!   JSON: apiserver 0.36, which metrics-server v0.9 builds on, no longer serves v2beta1.
//! - `/apis/metrics.k8s.io`: `APIGroup` with both served versions, `v1` first and preferred
//!   (KEP-5207: clients that know `v1` pick it from discovery; kubectl `top` 1.27-1.33 looks
//!   for `v1beta1` among the versions and still finds it);
//!   `/apis/metrics.k8s.io/{v1,v1beta1}`: `APIResourceList` with `nodes` (NodeMetrics,
//!   cluster-scoped) and `pods` (PodMetrics, namespaced), verbs get and list,
//!   `"singularName": ""`, no short names (metrics-server v0.8 `pkg/api/install.go`).
//! - `/version`: the generic apiserver's `version.Info`, pretty-printed as it is there.
//!
//! The static bodies are built once on first use and returned as `&'static [u8]`.

use std::sync::LazyLock;

use serde::Serialize;

use super::accept::parse_accept;
use super::json;
use super::types::{ApiVersion, EmptyObject, GROUP};

/// `Content-Type` of an aggregated discovery v2 answer; kubectl requires exactly this.
pub const AGGREGATED_DISCOVERY_V2_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Which `/apis` body to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryFormat {
    /// `APIGroupList`, `application/json`.
    Legacy,
    /// `APIGroupDiscoveryList` v2, [`AGGREGATED_DISCOVERY_V2_CONTENT_TYPE`].
    AggregatedV2,
}

impl DiscoveryFormat {
    /// The response `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            DiscoveryFormat::Legacy => json::CONTENT_TYPE_JSON,
            DiscoveryFormat::AggregatedV2 => AGGREGATED_DISCOVERY_V2_CONTENT_TYPE,
        }
    }

    /// The `/apis` body in this format.
    pub fn apis_body(self) -> &'static [u8] {
        match self {
            DiscoveryFormat::Legacy => api_group_list_json(),
            DiscoveryFormat::AggregatedV2 => aggregated_discovery_json(),
        }
    }
}

/// Aggregated v2 only when the best servable range is
/// `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`; plain JSON or
/// wildcards mean legacy; `v2beta1`, protobuf and anything else are skipped.
pub fn negotiate_discovery(accept: Option<&str>) -> DiscoveryFormat {
    for range in parse_accept(accept.unwrap_or("")).iter().filter(|r| r.accepts_json()) {
        if range.param("as").is_none() {
            return DiscoveryFormat::Legacy;
        }
        if range.subtype == "json" && range.is_gvk("apidiscovery.k8s.io", &["v2"], "APIGroupDiscoveryList") {
            return DiscoveryFormat::AggregatedV2;
        }
    }
    DiscoveryFormat::Legacy
}

/// `/apis`, legacy: `APIGroupList` with `metrics.k8s.io`.
pub fn api_group_list_json() -> &'static [u8] {
    static BODY: LazyLock<Vec<u8>> = LazyLock::new(|| {
        json::to_vec(&GroupListJson {
            kind: "APIGroupList",
            api_version: "v1",
            groups: [group()],
        })
    });
    &BODY
}

/// `/apis/metrics.k8s.io`: `APIGroup`.
pub fn api_group_json() -> &'static [u8] {
    static BODY: LazyLock<Vec<u8>> = LazyLock::new(|| {
        json::to_vec(&TypedGroupJson {
            kind: "APIGroup",
            api_version: "v1",
            group: group(),
        })
    });
    &BODY
}

/// `/apis/metrics.k8s.io/{version}`: `APIResourceList`.
pub fn api_resource_list_json(version: ApiVersion) -> &'static [u8] {
    fn build(version: ApiVersion) -> Vec<u8> {
        let resources = RESOURCES.map(|r| ResourceJson {
            name: r.name,
            singular_name: "",
            namespaced: r.namespaced,
            kind: r.kind,
            verbs: VERBS,
        });
        json::to_vec(&ResourceListJson {
            kind: "APIResourceList",
            api_version: "v1",
            group_version: version.group_version(),
            resources,
        })
    }
    static V1: LazyLock<Vec<u8>> = LazyLock::new(|| build(ApiVersion::V1));
    static V1BETA1: LazyLock<Vec<u8>> = LazyLock::new(|| build(ApiVersion::V1beta1));
    match version {
        ApiVersion::V1 => &V1,
        ApiVersion::V1beta1 => &V1BETA1,
    }
}

/// `/apis`, aggregated: `APIGroupDiscoveryList` v2 with the group's versions, preferred first,
/// each `Current`.
pub fn aggregated_discovery_json() -> &'static [u8] {
    static BODY: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let resources = || {
            RESOURCES.map(|r| DiscoveredResourceJson {
                resource: r.name,
                response_kind: GvkJson {
                    group: "",
                    version: "",
                    kind: r.kind,
                },
                scope: if r.namespaced { "Namespaced" } else { "Cluster" },
                singular_resource: "",
                verbs: VERBS,
            })
        };
        let versions = ApiVersion::ALL.map(|v| DiscoveredVersionJson {
            version: v.version(),
            resources: resources(),
            freshness: "Current",
        });
        let item = DiscoveredGroupJson {
            metadata: NameOnlyJson { name: GROUP },
            versions,
        };
        json::to_vec(&DiscoveryListJson {
            kind: "APIGroupDiscoveryList",
            api_version: "apidiscovery.k8s.io/v2",
            metadata: EmptyObject {},
            items: [item],
        })
    });
    &BODY
}

/// An `ETag` for the aggregated discovery body (apiserver sends one; clients may revalidate).
pub fn aggregated_discovery_etag() -> &'static str {
    static TAG: LazyLock<String> =
        LazyLock::new(|| format!("\"{}\"", super::openapi::content_hash(aggregated_discovery_json())));
    &TAG
}

/// The fields of `/version` (apimachinery `version.Info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub major: String,
    pub minor: String,
    pub git_version: String,
    pub git_commit: String,
    pub git_tree_state: String,
    pub build_date: String,
    pub go_version: String,
    pub compiler: String,
    pub platform: String,
}

impl VersionInfo {
    /// This binary: `gitVersion` = `v` + crate version, compiler `rustc`, platform in Go's
    /// `GOOS/GOARCH` spelling; the commit comes from `HA_METRICS_SERVER_GIT_COMMIT` at build
    /// time when set.
    pub fn current() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        VersionInfo {
            major: env!("CARGO_PKG_VERSION_MAJOR").to_string(),
            minor: env!("CARGO_PKG_VERSION_MINOR").to_string(),
            git_version: format!("v{}", env!("CARGO_PKG_VERSION")),
            git_commit: option_env!("HA_METRICS_SERVER_GIT_COMMIT").unwrap_or("").to_string(),
            git_tree_state: String::new(),
            build_date: String::new(),
            go_version: String::new(),
            compiler: "rustc".to_string(),
            platform: format!("{}/{arch}", std::env::consts::OS),
        }
    }
}

/// `/version`: `version.Info`, pretty-printed without a trailing newline, as apiserver's
/// `WriteRawJSON` writes it.
pub fn version_json(info: &VersionInfo) -> Vec<u8> {
    json::indent(&json::to_vec(info))
}

struct Resource {
    name: &'static str,
    kind: &'static str,
    namespaced: bool,
}

/// Sorted by name, as the generic apiserver lists them.
const RESOURCES: [Resource; 2] = [
    Resource {
        name: "nodes",
        kind: "NodeMetrics",
        namespaced: false,
    },
    Resource {
        name: "pods",
        kind: "PodMetrics",
        namespaced: true,
    },
];
const VERBS: [&str; 2] = ["get", "list"];

fn group() -> GroupJson {
    let versions = ApiVersion::ALL.map(|v| GroupVersionJson {
        group_version: v.group_version(),
        version: v.version(),
    });
    GroupJson {
        name: GROUP,
        versions,
        preferred_version: versions[0],
    }
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct GroupVersionJson {
    group_version: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupJson {
    name: &'static str,
    versions: [GroupVersionJson; 2],
    preferred_version: GroupVersionJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupListJson {
    kind: &'static str,
    api_version: &'static str,
    groups: [GroupJson; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypedGroupJson {
    kind: &'static str,
    api_version: &'static str,
    #[serde(flatten)]
    group: GroupJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceJson {
    name: &'static str,
    singular_name: &'static str,
    namespaced: bool,
    kind: &'static str,
    verbs: [&'static str; 2],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceListJson {
    kind: &'static str,
    api_version: &'static str,
    group_version: &'static str,
    resources: [ResourceJson; 2],
}

#[derive(Serialize)]
struct GvkJson {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscoveredResourceJson {
    resource: &'static str,
    response_kind: GvkJson,
    scope: &'static str,
    singular_resource: &'static str,
    verbs: [&'static str; 2],
}

#[derive(Serialize)]
struct DiscoveredVersionJson {
    version: &'static str,
    resources: [DiscoveredResourceJson; 2],
    freshness: &'static str,
}

#[derive(Serialize)]
struct NameOnlyJson {
    name: &'static str,
}

#[derive(Serialize)]
struct DiscoveredGroupJson {
    metadata: NameOnlyJson,
    versions: [DiscoveredVersionJson; 2],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscoveryListJson {
    kind: &'static str,
    api_version: &'static str,
    metadata: EmptyObject,
    items: [DiscoveredGroupJson; 1],
}

#[cfg(test)]
mod tests;
