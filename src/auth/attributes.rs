//! What a request asks to do, as the apiserver's `RequestInfoFactory` reads it: resource
//! attributes under `/apis/metrics.k8s.io/{v1,v1beta1}/...` (version, namespace, resource, name,
//! verb get/list/watch), non-resource attributes (path, lower-case method) for everything else.
//! Pure and borrowing: building attributes allocates nothing.

use crate::api::types::{ApiVersion, GROUP};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attributes<'a> {
    Resource {
        verb: &'static str,
        /// `v1` or `v1beta1`.
        version: &'static str,
        namespace: &'a str,
        resource: &'a str,
        subresource: &'a str,
        name: &'a str,
    },
    NonResource {
        verb: &'static str,
        path: &'a str,
    },
}

/// Go's `strconv.ParseBool` true values.
fn go_true(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

fn resource_verb(method: &str, named: bool, query: &str) -> &'static str {
    match method {
        "GET" | "HEAD" if named => "get",
        "GET" | "HEAD" => {
            let watch = query
                .split('&')
                .any(|p| p.strip_prefix("watch=").is_some_and(go_true) || p == "watch");
            if watch { "watch" } else { "list" }
        }
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        _ => "",
    }
}

fn non_resource_verb(method: &str) -> &'static str {
    match method {
        "GET" => "get",
        "HEAD" => "head",
        "POST" => "post",
        "PUT" => "put",
        "PATCH" => "patch",
        "DELETE" => "delete",
        "OPTIONS" => "options",
        _ => "",
    }
}

impl<'a> Attributes<'a> {
    /// The attributes of `method path?query`.
    pub fn of(method: &str, path: &'a str, query: &str) -> Attributes<'a> {
        let trimmed = path.trim_matches('/');
        let rest = trimmed
            .strip_prefix("apis/")
            .and_then(|r| r.strip_prefix(GROUP))
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.split_once('/'))
            .and_then(|(version, rest)| Some((ApiVersion::parse(version)?, rest)));
        let Some((version, rest)) = rest.filter(|(_, r)| !r.is_empty()) else {
            return Attributes::NonResource {
                verb: non_resource_verb(method),
                path,
            };
        };
        let mut parts = rest.split('/');
        let mut first = parts.next().unwrap_or_default();
        let mut namespace = "";
        let mut resource_parts = (first, parts.next(), parts.next());
        if first == "namespaces"
            && let Some(ns) = resource_parts.1
        {
            namespace = ns;
            if let Some(resource) = resource_parts.2 {
                first = resource;
                resource_parts = (first, parts.next(), parts.next());
            } else {
                resource_parts = ("namespaces", Some(ns), None);
            }
        }
        let (resource, name, subresource) = resource_parts;
        let name = name.unwrap_or_default();
        Attributes::Resource {
            verb: resource_verb(method, !name.is_empty(), query),
            version: version.version(),
            namespace,
            resource,
            subresource: subresource.unwrap_or_default(),
            name,
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Attributes::Resource { verb, .. } | Attributes::NonResource { verb, .. } => verb,
        }
    }

    /// The strings that identify these attributes, for cache keys.
    pub fn parts(&self) -> [&'a str; 6] {
        match *self {
            Attributes::Resource {
                verb,
                version,
                namespace,
                resource,
                subresource,
                name,
            } => [version, verb, namespace, resource, subresource, name],
            Attributes::NonResource { verb, path } => ["n", verb, path, "", "", ""],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(
        verb: &'static str,
        namespace: &'static str,
        resource: &'static str,
        name: &'static str,
    ) -> Attributes<'static> {
        Attributes::Resource {
            verb,
            version: "v1beta1",
            namespace,
            resource,
            subresource: "",
            name,
        }
    }

    #[test]
    fn metrics_paths_are_resources() {
        let base = "/apis/metrics.k8s.io/v1beta1";
        let of = |p: &str, q: &str| Attributes::of("GET", Box::leak(format!("{base}{p}").into_boxed_str()), q);
        assert_eq!(of("/nodes", ""), r("list", "", "nodes", ""));
        assert_eq!(of("/nodes/n1", ""), r("get", "", "nodes", "n1"));
        assert_eq!(of("/nodes", "watch=true"), r("watch", "", "nodes", ""));
        assert_eq!(of("/nodes", "watch=false"), r("list", "", "nodes", ""));
        assert_eq!(of("/pods", ""), r("list", "", "pods", ""));
        assert_eq!(of("/namespaces/team-1/pods", ""), r("list", "team-1", "pods", ""));
        assert_eq!(
            of("/namespaces/team-1/pods/p", "watch=1"),
            r("get", "team-1", "pods", "p")
        );
        assert_eq!(of("/namespaces/team-1", ""), r("get", "team-1", "namespaces", "team-1"));
        assert_eq!(
            Attributes::of("DELETE", "/apis/metrics.k8s.io/v1beta1/nodes", ""),
            r("deletecollection", "", "nodes", "")
        );
        let v1 = Attributes::of("GET", "/apis/metrics.k8s.io/v1/namespaces/team-1/pods", "");
        assert_eq!(
            v1,
            Attributes::Resource {
                verb: "list",
                version: "v1",
                namespace: "team-1",
                resource: "pods",
                subresource: "",
                name: "",
            }
        );
        assert_ne!(v1.parts(), r("list", "team-1", "pods", "").parts(), "cached apart");
    }

    #[test]
    fn other_paths_are_non_resource() {
        for path in [
            "/apis/metrics.k8s.io/v1beta1",
            "/apis",
            "/metrics",
            "/openapi/v2",
            "/apis/metrics.k8s.io/v1",
            "/apis/metrics.k8s.io/v2/nodes",
        ] {
            assert_eq!(
                Attributes::of("GET", path, ""),
                Attributes::NonResource { verb: "get", path }
            );
        }
        assert_eq!(Attributes::of("HEAD", "/version", "").verb(), "head");
    }
}
