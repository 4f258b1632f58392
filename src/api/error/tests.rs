use super::*;

fn body(error: &ApiError) -> String {
    String::from_utf8(error.to_status_json()).unwrap()
}

#[test]
fn node_not_found_in_the_cache_is_the_listers_error() {
    let error = ApiError::NodeNotFound { name: "node-9".into() };
    assert_eq!(error.status_code(), 404);
    assert_eq!(
        body(&error),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"node \"node-9\" not found","reason":"NotFound","#,
            r#""details":{"name":"node-9","kind":"node"},"code":404}"#,
            "\n"
        )
    );
}

#[test]
fn node_without_metrics_is_nodemetrics_not_found() {
    let error = ApiError::NodeMetricsNotFound { name: "node-2".into() };
    assert_eq!(
        body(&error),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"nodemetrics.metrics.k8s.io \"node-2\" not found","reason":"NotFound","#,
            r#""details":{"name":"node-2","group":"metrics.k8s.io","kind":"nodemetrics"},"code":404}"#,
            "\n"
        )
    );
}

#[test]
fn pod_not_found_texts() {
    let missing = ApiError::PodNotFound {
        namespace: "default".into(),
        name: "nope".into(),
    };
    assert_eq!(missing.to_string(), r#"pods "nope" not found"#);
    assert!(body(&missing).contains(r#""details":{"name":"nope","kind":"pods"},"code":404}"#));
    let no_metrics = ApiError::PodMetricsNotFound {
        namespace: "default".into(),
        name: "web-1".into(),
    };
    assert_eq!(
        no_metrics.to_string(),
        r#"podmetrics.metrics.k8s.io "default/web-1" not found"#
    );
    assert!(
        body(&no_metrics)
            .contains(r#""details":{"name":"default/web-1","group":"metrics.k8s.io","kind":"podmetrics"},"code":404}"#)
    );
}

#[test]
fn bad_requests_have_no_details() {
    let error = ApiError::unknown_field_selector("spec.nodeName", MetricsResource::Nodes);
    assert_eq!(error.status_code(), 400);
    assert_eq!(
        body(&error),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"","#,
            r#""reason":"BadRequest","code":400}"#,
            "\n"
        )
    );
    let include = ApiError::unrecognized_include_object("All");
    assert_eq!(include.to_string(), r#"unrecognized includeObject value: "All""#);
}

#[test]
fn watch_is_method_not_allowed() {
    let error = ApiError::watch_not_supported(MetricsResource::Pods);
    assert_eq!(error.status_code(), 405);
    assert_eq!(
        body(&error),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"watch is not supported on resources of kind \"pods.metrics.k8s.io\"","#,
            r#""reason":"MethodNotAllowed","details":{"group":"metrics.k8s.io","kind":"pods"},"code":405}"#,
            "\n"
        )
    );
}

fn forbidden(verb: &str, namespace: &str, name: &str, reason: &str) -> ApiError {
    ApiError::Forbidden(Box::new(Forbidden {
        user: "system:serviceaccount:default:reader".into(),
        verb: verb.into(),
        target: ForbiddenTarget::Resource {
            group: "metrics.k8s.io".into(),
            resource: "pods".into(),
            subresource: String::new(),
            namespace: namespace.into(),
            name: name.into(),
        },
        reason: reason.into(),
    }))
}

#[test]
fn forbidden_uses_the_apiserver_wording() {
    let list = forbidden("list", "x", "", "");
    assert_eq!(list.status_code(), 403);
    assert_eq!(
        body(&list),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"pods.metrics.k8s.io is forbidden: User \"system:serviceaccount:default:reader\" "#,
            r#"cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"x\"","#,
            r#""reason":"Forbidden","details":{"group":"metrics.k8s.io","kind":"pods"},"code":403}"#,
            "\n"
        )
    );
    let get = forbidden("get", "", "web-1", "RBAC: no rule");
    assert_eq!(
        get.to_string(),
        "pods.metrics.k8s.io \"web-1\" is forbidden: User \"system:serviceaccount:default:reader\" \
         cannot get resource \"pods\" in API group \"metrics.k8s.io\" at the cluster scope: RBAC: no rule"
    );
    assert!(body(&get).contains(r#""details":{"name":"web-1","group":"metrics.k8s.io","kind":"pods"}"#));
}

#[test]
fn forbidden_non_resource_paths_have_empty_details() {
    let error = ApiError::Forbidden(Box::new(Forbidden {
        user: "<bob>".into(),
        verb: "get".into(),
        target: ForbiddenTarget::NonResource {
            path: "/metrics".into(),
        },
        reason: String::new(),
    }));
    assert_eq!(
        error.to_string(),
        r#"forbidden: User "&lt;bob&gt;" cannot get path "/metrics""#
    );
    assert_eq!(
        body(&error),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
            r#""message":"forbidden: User \"\u0026lt;bob\u0026gt;\" cannot get path \"/metrics\"","#,
            r#""reason":"Forbidden","details":{},"code":403}"#,
            "\n"
        )
    );
}

#[test]
fn other_errors_match_apimachinery_constructors() {
    let cases = [
        (
            ApiError::Unauthorized,
            401,
            r#""message":"Unauthorized","reason":"Unauthorized","code":401}"#,
        ),
        (
            ApiError::TooManyRequests { retry_after_seconds: 1 },
            429,
            r#""message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#,
        ),
        (
            ApiError::RequestEntityTooLarge {
                message: "limit is 3145728".into(),
            },
            413,
            r#""message":"Request entity too large: limit is 3145728","reason":"RequestEntityTooLarge","code":413}"#,
        ),
        (
            ApiError::RequestUriTooLong {
                message: "limit is 16384 bytes".into(),
            },
            414,
            r#""message":"Request-URI Too Long: limit is 16384 bytes","code":414}"#,
        ),
        (
            ApiError::Timeout {
                message: "request did not complete within 1m0s".into(),
                retry_after_seconds: 0,
            },
            504,
            r#""message":"Timeout: request did not complete within 1m0s","reason":"Timeout","details":{},"code":504}"#,
        ),
        (
            ApiError::Internal {
                message: "failed listing nodes: boom".into(),
            },
            500,
            r#""message":"Internal error occurred: failed listing nodes: boom","reason":"InternalError","details":{"causes":[{"message":"failed listing nodes: boom"}]},"code":500}"#,
        ),
        (
            ApiError::ServiceUnavailable {
                message: "shutting down".into(),
            },
            503,
            r#""message":"shutting down","reason":"ServiceUnavailable","code":503}"#,
        ),
    ];
    for (error, code, tail) in cases {
        assert_eq!(error.status_code(), code);
        let json = body(&error);
        let prefix = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#;
        assert_eq!(json, format!("{prefix}{tail}\n"));
    }
    assert_eq!(
        ApiError::TooManyRequests { retry_after_seconds: 1 }.retry_after_seconds(),
        Some(1)
    );
    assert_eq!(ApiError::Unauthorized.retry_after_seconds(), None);
}

#[test]
fn go_quote_escapes_like_strconv_quote() {
    assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
    assert_eq!(go_quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
    assert_eq!(go_quote("héllo"), "\"héllo\"");
}
