use super::*;

fn parse(args: &[&str]) -> Config {
    let mut argv = vec!["ha-metrics-server"];
    argv.extend_from_slice(args);
    Config::try_parse_from(argv).expect("flags parse")
}

#[test]
fn defaults_match_metrics_server() {
    let c = parse(&[]);
    assert_eq!(c.secure_port, 10250);
    assert_eq!(c.metric_resolution, Duration::from_secs(15));
    assert_eq!(c.kubelet_request_timeout, Duration::from_secs(10));
    assert_eq!(
        c.kubelet_preferred_address_types,
        ["Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP"]
    );
    assert_eq!(c.authorization_always_allow_paths, ["/healthz", "/readyz", "/livez"]);
    assert_eq!(c.requestheader_username_headers, ["X-Remote-User"]);
    assert!(!c.kubelet_insecure_tls);
    assert_eq!(c.validate(), Ok(vec![]));
}

#[test]
fn go_style_flags_parse() {
    let c = parse(&[
        "--kubelet-insecure-tls",
        "--metric-resolution=1m30s",
        "--kubelet-use-node-status-port=true",
        "--v=4",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "-l",
        "role!=skip",
    ]);
    assert!(c.kubelet_insecure_tls && c.kubelet_use_node_status_port);
    assert_eq!(c.metric_resolution, Duration::from_secs(90));
    assert_eq!(c.verbosity, 4);
    assert_eq!(c.kubelet_preferred_address_types, ["InternalIP", "Hostname"]);
    assert_eq!(c.node_selector, "role!=skip");
    let off = parse(&["--kubelet-insecure-tls=false"]);
    assert!(!off.kubelet_insecure_tls);
}

#[test]
fn unknown_flags_are_refused() {
    assert!(Config::try_parse_from(["ha-metrics-server", "--no-such-flag"]).is_err());
    assert!(Config::try_parse_from(["ha-metrics-server", "--metric-resolution=15"]).is_err());
}

#[test]
fn every_problem_is_reported_at_once() {
    let c = parse(&[
        "--metric-resolution=5s",
        "--kubelet-insecure-tls",
        "--kubelet-certificate-authority=/ca.crt",
        "--kubelet-client-key=/k",
        "--tls-cert-file=/c",
        "--node-selector=a in (",
        "--tls-min-version=SSL3",
    ]);
    let errors = c.validate().unwrap_err();
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("0.9 x --metric-resolution")));
    assert!(errors.iter().any(|e| e.contains("--kubelet-insecure-tls")));
    assert!(errors.iter().any(|e| e.contains("--kubelet-client-certificate")));
    assert!(errors.iter().any(|e| e.contains("--tls-cert-file")));
    assert!(errors.iter().any(|e| e.contains("--node-selector")));
    assert!(errors.iter().any(|e| e.contains("--tls-min-version")));
}

#[test]
fn low_resolution_warns_and_old_tls_is_raised() {
    let c = parse(&[
        "--metric-resolution=2s",
        "--kubelet-request-timeout=1s",
        "--tls-min-version=VersionTLS11",
    ]);
    let warnings = c.validate().unwrap();
    assert_eq!(warnings.len(), 2);
    assert!(
        parse(&["--metric-resolution=500ms", "--kubelet-request-timeout=100ms"])
            .validate()
            .is_err()
    );
}

#[test]
fn cipher_suite_names() {
    assert_eq!(
        cipher_suites(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()])
            .unwrap()
            .len(),
        1
    );
    assert!(cipher_suites(&["TLS_RSA_WITH_RC4_128_SHA".into()]).is_err());
}
