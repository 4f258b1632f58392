use super::*;

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

const KUBECTL_131: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
    application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
const KUBECTL_127: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

#[test]
fn negotiates_like_the_apiserver() {
    use DiscoveryFormat::*;
    let cases = [
        (Some(KUBECTL_131), AggregatedV2),
        (Some(KUBECTL_127), Legacy),
        (Some("application/json, */*"), Legacy),
        (
            Some("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            Legacy,
        ),
        (
            Some(
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            ),
            AggregatedV2,
        ),
        (Some("application/json;as=APIGroupDiscoveryList"), Legacy),
        (
            Some("application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            AggregatedV2,
        ),
        (None, Legacy),
    ];
    for (accept, want) in cases {
        assert_eq!(negotiate_discovery(accept), want, "{accept:?}");
    }
    assert_eq!(
        AggregatedV2.content_type(),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(Legacy.content_type(), "application/json");
}

#[test]
fn legacy_bodies_are_exact() {
    let group = concat!(
        r#"{"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1","version":"v1"},"#,
        r#"{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],"#,
        r#""preferredVersion":{"groupVersion":"metrics.k8s.io/v1","version":"v1"}}"#
    );
    assert_eq!(
        text(api_group_list_json()),
        format!("{{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{group}]}}\n")
    );
    assert_eq!(
        text(api_group_json()),
        format!("{{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",{}\n", &group[1..])
    );
    assert_eq!(text(DiscoveryFormat::Legacy.apis_body()), text(api_group_list_json()));
    for version in ApiVersion::ALL {
        assert_eq!(
            text(api_resource_list_json(version)),
            format!(
                "{}{}{}{}\n",
                r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"#,
                format_args!("\"{}\",\"resources\":[", version.group_version()),
                r#"{"name":"nodes","singularName":"","namespaced":false,"kind":"NodeMetrics","verbs":["get","list"]},"#,
                r#"{"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics","verbs":["get","list"]}]}"#,
            )
        );
    }
}

#[test]
fn aggregated_body_is_exact() {
    let resources = concat!(
        r#""resources":[{"resource":"nodes","responseKind":{"group":"","version":"","kind":"NodeMetrics"},"#,
        r#""scope":"Cluster","singularResource":"","verbs":["get","list"]},"#,
        r#"{"resource":"pods","responseKind":{"group":"","version":"","kind":"PodMetrics"},"scope":"Namespaced","#,
        r#""singularResource":"","verbs":["get","list"]}],"freshness":"Current""#
    );
    assert_eq!(
        text(aggregated_discovery_json()),
        format!(
            "{}{}{{\"version\":\"v1\",{resources}}},{{\"version\":\"v1beta1\",{resources}}}]}}]}}\n",
            r#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":["#,
            r#"{"metadata":{"name":"metrics.k8s.io"},"versions":["#,
        )
    );
    let etag = aggregated_discovery_etag();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2);
}

#[test]
fn version_is_pretty_printed() {
    let info = VersionInfo::current();
    assert_eq!(info.git_version, format!("v{}", env!("CARGO_PKG_VERSION")));
    let body = String::from_utf8(version_json(&info)).unwrap();
    assert!(body.starts_with("{\n  \"major\": \""), "{body}");
    assert!(
        body.contains(&format!("\n  \"gitVersion\": \"v{}\",\n", env!("CARGO_PKG_VERSION"))),
        "{body}"
    );
    assert!(body.contains("\n  \"compiler\": \"rustc\",\n"), "{body}");
    assert!(body.ends_with('}'));
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 9);
}
