use std::collections::BTreeSet;

use super::*;

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                out.push(target.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn check_document(doc: &Value, prefix: &str, schemas: &Map<String, Value>) {
    let mut found = Vec::new();
    refs(doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let name = target
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{target} outside {prefix}"));
        assert!(schemas.contains_key(name), "dangling {target}");
    }
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let get = &item["get"];
        assert!(
            operation_ids.insert(get["operationId"].as_str().unwrap().to_string()),
            "duplicate id at {path}"
        );
        let path_params: BTreeSet<_> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        let template: BTreeSet<_> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect();
        assert_eq!(path_params, template, "{path}");
    }
    let versions = doc["paths"].as_object().unwrap().len() / 6;
    assert_eq!(operation_ids.len(), 6 * versions);
}

#[test]
fn v2_is_a_consistent_swagger_document() {
    let doc = parse(openapi_v2_json());
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["info"]["title"], "Kubernetes metrics-server");
    assert_eq!(doc["info"]["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    let definitions = doc["definitions"].as_object().unwrap();
    check_document(&doc, "#/definitions/", definitions);
    assert_eq!(doc["paths"].as_object().unwrap().len(), 12, "both versions");
    for version in ApiVersion::ALL {
        let v = version.version();
        let node = &definitions[&definition(version, NODE_METRICS)];
        assert_eq!(
            node["x-kubernetes-group-version-kind"],
            json!([{"group": "metrics.k8s.io", "kind": "NodeMetrics", "version": v}])
        );
        assert_eq!(node["required"], json!(["timestamp", "window", "usage"]));
        assert_eq!(
            definitions[&definition(version, POD_METRICS)]["properties"]["containers"]["x-kubernetes-list-type"],
            "atomic"
        );
        let list = &doc["paths"][format!("/apis/metrics.k8s.io/{v}/pods")]["get"];
        assert_eq!(list["x-kubernetes-action"], "list");
        assert_eq!(
            list["responses"]["200"]["schema"]["$ref"],
            format!("#/definitions/{}", definition(version, POD_METRICS_LIST))
        );
        assert_eq!(list["x-kubernetes-group-version-kind"]["kind"], "PodMetrics");
        assert_eq!(list["x-kubernetes-group-version-kind"]["version"], v);
    }
    let v1_list = &doc["paths"]["/apis/metrics.k8s.io/v1/pods"]["get"];
    assert_eq!(v1_list["operationId"], "listMetricsV1PodMetricsForAllNamespaces");
    assert_eq!(v1_list["tags"], json!(["metrics_v1"]));
}

#[test]
fn v3_is_a_consistent_openapi_document() {
    for version in ApiVersion::ALL {
        let doc = parse(openapi_v3_group_version_json(version));
        assert_eq!(doc["openapi"], "3.0.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        check_document(&doc, "#/components/schemas/", schemas);
        assert_eq!(doc["paths"].as_object().unwrap().len(), 6, "one version per document");
        for kind in [NODE_METRICS, NODE_METRICS_LIST, POD_METRICS, POD_METRICS_LIST] {
            let d = definition(version, kind);
            assert!(schemas[&d]["x-kubernetes-group-version-kind"].is_array(), "{d}");
        }
        let metadata = &schemas[&definition(version, NODE_METRICS)]["properties"]["metadata"];
        assert_eq!(
            metadata["allOf"][0]["$ref"],
            format!("#/components/schemas/{OBJECT_META}")
        );
        let path = format!(
            "/apis/{}/namespaces/{{namespace}}/pods/{{name}}",
            version.group_version()
        );
        let get = &doc["paths"][path]["get"];
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{}", definition(version, POD_METRICS))
        );
        assert_eq!(get["parameters"][0]["schema"]["type"], "string");
    }
}

#[test]
fn v3_index_points_at_the_hashed_document() {
    let index = parse(openapi_v3_index_json());
    for version in ApiVersion::ALL {
        let key = format!("apis/{}", version.group_version());
        let url = index["paths"][&key]["serverRelativeURL"].as_str().unwrap();
        assert_eq!(url, format!("/openapi/v3/{key}?hash={}", openapi_v3_hash(version)));
        assert_eq!(openapi_v3_hash(version).len(), 16);
    }
    assert_eq!(index["paths"].as_object().unwrap().len(), 2);
    assert_ne!(openapi_v3_hash(ApiVersion::V1), openapi_v3_hash(ApiVersion::V1beta1));
}

#[test]
fn content_hash_is_stable_fnv1a() {
    assert_eq!(content_hash(b""), "CBF29CE484222325");
    assert_eq!(content_hash(b"a"), "AF63DC4C8601EC8C");
}
