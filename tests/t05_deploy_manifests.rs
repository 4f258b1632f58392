//! The deployment manifests under `deploy/`: the kustomize base (one replica) and HA overlay (three replicas)
//! render with real `kubectl kustomize`, every object parses into its typed Kubernetes struct without losing a
//! field (so a misspelt or misplaced field fails here, not at `kubectl apply`), the facts users rely on hold,
//! and every container argument is accepted by the server's own flag parser. The Helm chart's Chart.yaml and
//! values.yaml parse and agree with the kustomize manifests (Helm itself is not available to render it).

use clap::Parser;
use ha_metrics_server::config::Config;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
const NAMESPACE: &str = "kube-system";
const NAME: &str = "ha-metrics-server";
const IMAGE: &str = "ghcr.io/ha-metrics-server/ha-metrics-server:v0.1.0";
const PEER_SECRET: &str = "ha-metrics-server-peer-tls";
const PEER_MOUNT: &str = "/etc/ha-metrics-server/peer";

/// Every object of one `kubectl kustomize` output.
#[derive(Default, Debug)]
struct Rendered {
    service_accounts: Vec<ServiceAccount>,
    services: Vec<Service>,
    secrets: Vec<Secret>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    role_bindings: Vec<RoleBinding>,
    stateful_sets: Vec<StatefulSet>,
    pdbs: Vec<PodDisruptionBudget>,
    network_policies: Vec<NetworkPolicy>,
    api_services: Vec<APIService>,
    /// (kind, namespace, name) of every object, in output order.
    ids: Vec<(String, Option<String>, String)>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kustomize(dir: &str) -> String {
    let path = repo().join(dir);
    let out = std::process::Command::new(KUBECTL)
        .arg("kustomize")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {KUBECTL}: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize output is UTF-8")
}

/// Splits a multi-document YAML stream on `---` lines, dropping empty documents.
fn documents(yaml: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().unwrap();
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Parses `doc` into `T` with serde-saphyr and checks nothing was dropped on the way: the typed struct,
/// serialised again, must equal the document read as plain data. k8s-openapi ignores unknown fields, so
/// without this a typo such as `readOnlyRootFilesytem` would pass silently.
fn typed<T: DeserializeOwned + Serialize>(doc: &str, raw: &Value, what: &str) -> T {
    let object: T = serde_saphyr::from_str(doc).unwrap_or_expect(what);
    let back = serde_json::to_value(&object).unwrap();
    if &back != raw {
        panic!(
            "{what}: fields lost or changed when parsed as {}:\n{}",
            std::any::type_name::<T>(),
            json_diff(raw, &back, "")
        );
    }
    object
}

trait UnwrapOrExpect<T> {
    fn unwrap_or_expect(self, what: &str) -> T;
}

impl<T, E: std::fmt::Display> UnwrapOrExpect<T> for Result<T, E> {
    fn unwrap_or_expect(self, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}

/// Paths where two JSON values differ, one per line.
fn json_diff(want: &Value, got: &Value, path: &str) -> String {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .map(|k| {
                    json_diff(
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                        &format!("{path}.{k}"),
                    )
                })
                .collect()
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .map(|(i, (x, y))| json_diff(x, y, &format!("{path}[{i}]")))
            .collect(),
        _ if want == got => String::new(),
        _ => format!("  {path}: manifest has {want}, typed struct has {got}\n"),
    }
}

fn parse(yaml: &str) -> Rendered {
    let mut r = Rendered::default();
    for (i, doc) in documents(yaml).iter().enumerate() {
        let raw: Value = serde_saphyr::from_str(doc).unwrap_or_expect(&format!("document {i}"));
        let api_version = raw["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = raw["kind"].as_str().unwrap_or_default().to_string();
        let name = raw["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let namespace = raw["metadata"]["namespace"].as_str().map(str::to_string);
        let what = format!("{api_version} {kind} {name}");
        assert!(!name.is_empty(), "{what}: no metadata.name");
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "ServiceAccount") => r.service_accounts.push(typed(doc, &raw, &what)),
            ("v1", "Service") => r.services.push(typed(doc, &raw, &what)),
            ("v1", "Secret") => r.secrets.push(typed(doc, &raw, &what)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => r.cluster_roles.push(typed(doc, &raw, &what)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                r.cluster_role_bindings.push(typed(doc, &raw, &what))
            }
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => r.role_bindings.push(typed(doc, &raw, &what)),
            ("apps/v1", "StatefulSet") => r.stateful_sets.push(typed(doc, &raw, &what)),
            ("policy/v1", "PodDisruptionBudget") => r.pdbs.push(typed(doc, &raw, &what)),
            ("networking.k8s.io/v1", "NetworkPolicy") => r.network_policies.push(typed(doc, &raw, &what)),
            ("apiregistration.k8s.io/v1", "APIService") => r.api_services.push(typed(doc, &raw, &what)),
            _ => panic!("document {i}: unexpected object {what}; add its typed parse to this test"),
        }
        r.ids.push((kind, namespace, name));
    }
    let unique: BTreeSet<_> = r.ids.iter().collect();
    assert_eq!(unique.len(), r.ids.len(), "duplicate objects: {:?}", r.ids);
    r
}

/// Whether `selector` selects an object with `labels` (matchLabels and matchExpressions).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            op => panic!("unknown selector operator {op}"),
        }
    });
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|m| m.is_empty());
    !empty && match_labels && expressions
}

fn map_selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn one<'a, T>(items: &'a [T], what: &str) -> &'a T {
    assert_eq!(items.len(), 1, "expected exactly one {what}");
    &items[0]
}

fn named<'a, T: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>>(
    items: &'a [T],
    name: &str,
) -> &'a T {
    items
        .iter()
        .find(|o| o.metadata().name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no object named {name}"))
}

fn server_container(sts: &StatefulSet) -> &Container {
    let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.containers.len(), 1, "one container");
    &pod.containers[0]
}

fn args(c: &Container) -> Vec<String> {
    c.args.clone().unwrap_or_default()
}

/// The value of `--flag=value` in `args` (the manifests always use the `=` form).
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    let mut found = args.iter().filter_map(|a| a.strip_prefix(&prefix));
    let value = found.next();
    assert!(found.next().is_none(), "{flag} given twice");
    value
}

fn container_port(c: &Container, name: &str) -> i32 {
    c.ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("container has no port named {name}"))
        .container_port
}

/// Parses the container's arguments as the server would, after the kubelet's `$(POD_NAME)` expansion.
fn parse_flags(args: &[String], pod_name: &str) -> Config {
    let argv: Vec<String> = std::iter::once("ha-metrics-server".to_string())
        .chain(args.iter().map(|a| a.replace("$(POD_NAME)", pod_name)))
        .collect();
    let config = Config::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?} rejected by Config:\n{e}"));
    if let Err(errors) = config.validate() {
        panic!("{argv:?} fails validation: {errors:?}");
    }
    config
}

/// Whether a rule of `role` grants `verb` on `resource` in API group `group`.
fn grants(role: &ClusterRole, group: &str, resource: &str, verb: &str) -> bool {
    role.rules.iter().flatten().any(|r| {
        r.api_groups.iter().flatten().any(|g| g == group || g == "*")
            && r.resources.iter().flatten().any(|x| x == resource || x == "*")
            && r.verbs.iter().any(|v| v == verb || v == "*")
    })
}

fn binds_service_account(subjects: &Option<Vec<Subject>>, sa: &ServiceAccount) -> bool {
    subjects.iter().flatten().any(|s| {
        s.kind == "ServiceAccount" && Some(&s.name) == sa.metadata.name.as_ref() && s.namespace == sa.metadata.namespace
    })
}

/// Checks shared by the base and the HA overlay; returns the StatefulSet.
fn check_common(r: &Rendered, replicas: i32) -> &StatefulSet {
    for (kind, namespace, name) in &r.ids {
        let cluster_scoped = matches!(kind.as_str(), "ClusterRole" | "ClusterRoleBinding" | "APIService");
        if cluster_scoped {
            assert_eq!(namespace, &None, "{kind} {name} is cluster-scoped");
        } else {
            assert_eq!(namespace.as_deref(), Some(NAMESPACE), "{kind} {name} namespace");
        }
    }
    assert!(r.secrets.is_empty(), "no Secret (keys) in the manifests");

    // StatefulSet and its pod template.
    let sts = one(&r.stateful_sets, "StatefulSet");
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(sts.metadata.name.as_deref(), Some(NAME));
    assert_eq!(spec.replicas, Some(replicas), "replicas");
    assert_eq!(spec.service_name.as_deref(), Some("ha-metrics-server-peers"));
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap_or_default();
    assert!(
        selects(&spec.selector, &pod_labels),
        "StatefulSet selector matches its pod template"
    );
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-cluster-critical"));
    assert_eq!(
        pod.node_selector.clone().unwrap_or_default(),
        BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())])
    );
    let sa = one(&r.service_accounts, "ServiceAccount");
    assert_eq!(
        pod.service_account_name, sa.metadata.name,
        "pods run as the ServiceAccount"
    );

    let c = server_container(sts);
    assert_eq!(c.image.as_deref(), Some(IMAGE));
    assert_eq!(c.command.clone().unwrap_or_default(), ["/ha-metrics-server"]);
    let a = args(c);
    assert_eq!(flag(&a, "--cert-dir"), Some("/tmp"));
    assert_eq!(flag(&a, "--metric-resolution"), Some("15s"));
    assert_eq!(
        flag(&a, "--kubelet-preferred-address-types"),
        Some("InternalIP,ExternalIP,Hostname")
    );
    assert!(a.iter().any(|x| x == "--kubelet-use-node-status-port"));
    let secure_port: i32 = flag(&a, "--secure-port").expect("--secure-port").parse().unwrap();
    assert_eq!(container_port(c, "https"), secure_port, "port https is the secure port");

    let pod_name = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POD_NAME")
        .and_then(|e| e.value_from.as_ref()?.field_ref.as_ref())
        .expect("env POD_NAME from a fieldRef");
    assert_eq!(pod_name.field_path, "metadata.name");

    // Probes: metrics-server's paths, ports and timings.
    let live = c.liveness_probe.as_ref().expect("livenessProbe");
    let ready = c.readiness_probe.as_ref().expect("readinessProbe");
    for (probe, path) in [(live, "/livez"), (ready, "/readyz")] {
        let get = probe.http_get.as_ref().expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("https".into()));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        assert_eq!(
            (probe.period_seconds, probe.failure_threshold),
            (Some(10), Some(3)),
            "{path}"
        );
    }
    assert_eq!(ready.initial_delay_seconds, Some(20));

    // Resources and hardening.
    let requests = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .expect("resource requests");
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(requests["memory"].0, "200Mi");
    let sc = c.security_context.as_ref().expect("container securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true), "readOnlyRootFilesystem");
    assert_eq!(sc.run_as_non_root, Some(true), "runAsNonRoot");
    assert_eq!(sc.run_as_user, Some(1000));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );

    // Volumes: every mount has a volume; /tmp and the data dir are writable emptyDirs.
    let volumes = pod.volumes.clone().unwrap_or_default();
    let mounts = c.volume_mounts.clone().unwrap_or_default();
    for m in &mounts {
        assert!(
            volumes.iter().any(|v| v.name == m.name),
            "mount {} has a volume",
            m.name
        );
    }
    let data_dir = flag(&a, "--data-dir").expect("--data-dir");
    for path in ["/tmp", data_dir] {
        let m = mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("{path} mounted"));
        let v = volumes.iter().find(|v| v.name == m.name).unwrap();
        assert!(v.empty_dir.is_some(), "{path} is an emptyDir");
        assert_ne!(m.read_only, Some(true), "{path} writable");
    }

    // The Service reaches the pods' https port; the APIService points at the Service.
    let svc = named(&r.services, NAME);
    let svc_spec = svc.spec.as_ref().unwrap();
    assert!(
        map_selects(svc_spec.selector.as_ref().expect("Service selector"), &pod_labels),
        "Service selector matches the pod template labels"
    );
    let svc_port = svc_spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.port == 443)
        .expect("Service port 443");
    assert_eq!(svc_port.target_port, Some(IntOrString::String("https".into())));

    // Both versions are registered, v1 preferred (higher versionPriority), at the same Service.
    let mut versions: Vec<(String, i32)> = Vec::new();
    for api in &r.api_services {
        let api_spec = api.spec.as_ref().unwrap();
        let version = api_spec.version.clone().unwrap();
        assert_eq!(
            api.metadata.name.as_deref(),
            Some(format!("{version}.metrics.k8s.io").as_str())
        );
        assert_eq!(api_spec.group.as_deref(), Some("metrics.k8s.io"));
        assert_eq!(api_spec.insecure_skip_tls_verify, Some(true));
        assert_eq!(api_spec.group_priority_minimum, 100);
        let target = api_spec.service.as_ref().expect("APIService service");
        assert_eq!(target.name, svc.metadata.name, "APIService points to the Service");
        assert_eq!(target.namespace, svc.metadata.namespace);
        assert_eq!(target.port.unwrap_or(443), svc_port.port);
        versions.push((version, api_spec.version_priority));
    }
    versions.sort();
    assert_eq!(versions, [("v1".to_string(), 200), ("v1beta1".to_string(), 100)]);

    // RBAC.
    let server_role = named(&r.cluster_roles, "system:ha-metrics-server");
    assert!(
        grants(server_role, "", "nodes/metrics", "get"),
        "RBAC grants nodes/metrics get"
    );
    for resource in ["pods", "nodes"] {
        for verb in ["get", "list", "watch"] {
            assert!(grants(server_role, "", resource, verb), "{resource} {verb}");
        }
    }
    let reader = named(&r.cluster_roles, "system:aggregated-metrics-reader");
    for resource in ["pods", "nodes"] {
        for verb in ["get", "list", "watch"] {
            assert!(
                grants(reader, "metrics.k8s.io", resource, verb),
                "metrics.k8s.io {resource} {verb}"
            );
        }
    }
    let reader_labels = reader.metadata.labels.clone().unwrap_or_default();
    for to in ["view", "edit", "admin"] {
        let key = format!("rbac.authorization.k8s.io/aggregate-to-{to}");
        assert_eq!(reader_labels.get(&key).map(String::as_str), Some("true"), "{key}");
    }
    for role in ["system:ha-metrics-server", "system:auth-delegator"] {
        assert!(
            r.cluster_role_bindings.iter().any(|b| b.role_ref.kind == "ClusterRole"
                && b.role_ref.name == role
                && binds_service_account(&b.subjects, sa)),
            "ClusterRole {role} bound to the ServiceAccount"
        );
    }
    assert!(
        r.role_bindings.iter().any(|b| {
            b.metadata.namespace.as_deref() == Some("kube-system")
                && b.role_ref.kind == "Role"
                && b.role_ref.name == "extension-apiserver-authentication-reader"
                && binds_service_account(&b.subjects, sa)
        }),
        "extension-apiserver-authentication-reader bound in kube-system"
    );
    sts
}

#[test]
fn base_is_one_metrics_server_like_replica() {
    let r = parse(&kustomize("deploy/kustomize/base"));
    let kinds: BTreeSet<&str> = r.ids.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "APIService",
            "ClusterRole",
            "ClusterRoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "StatefulSet"
        ])
    );
    let sts = check_common(&r, 1);
    assert_eq!(r.services.len(), 1, "no peer Service in the base");
    let a = args(server_container(sts));
    for ha_only in ["--peers", "--replica-id", "--peer-port", "--replication-factor"] {
        assert!(flag(&a, ha_only).is_none(), "{ha_only} is HA-only");
    }
    let config = parse_flags(&a, "ha-metrics-server-0");
    assert_eq!(config.secure_port, 10250);
    assert_eq!(config.metric_resolution, std::time::Duration::from_secs(15));
    assert!(config.kubelet_use_node_status_port);
    assert!(!config.ha.enabled(), "the base runs one replica without peers");
}

#[test]
fn ha_overlay_is_three_sharded_replicas() {
    let r = parse(&kustomize("deploy/kustomize/ha"));
    let sts = check_common(&r, 3);
    let replicas = 3;
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap_or_default();
    let pod = spec.template.spec.as_ref().unwrap();
    let c = server_container(sts);
    let a = args(c);

    // One replica per node, required.
    let anti = pod
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.clone())
        .expect("required podAntiAffinity");
    assert!(
        anti.iter().any(|t| t.topology_key == "kubernetes.io/hostname"
            && t.label_selector.as_ref().is_some_and(|s| selects(s, &pod_labels))),
        "required anti-affinity on kubernetes.io/hostname against the replicas' own labels"
    );

    // Peer TLS: the Secret mounted read-only, the flags point into the mount.
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(PEER_SECRET))
        .expect("peer TLS Secret volume");
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume.name)
        .expect("peer TLS Secret mounted");
    assert_eq!(mount.mount_path, PEER_MOUNT);
    assert_eq!(mount.read_only, Some(true), "peer TLS mounted read-only");
    for (f, key) in [
        ("--peer-cert-file", "tls.crt"),
        ("--peer-key-file", "tls.key"),
        ("--peer-ca-file", "ca.crt"),
    ] {
        assert_eq!(flag(&a, f), Some(format!("{PEER_MOUNT}/{key}").as_str()), "{f}");
    }
    let security = pod.security_context.as_ref().expect("pod securityContext");
    let mode = volume.secret.as_ref().unwrap().default_mode.unwrap_or(0o644);
    assert!(
        mode & 0o004 != 0 || (mode & 0o040 != 0 && security.fs_group == Some(1000)),
        "the key (mode {mode:o}) is readable by uid 1000"
    );

    // The peer port: container, headless Service and flag agree.
    let peer_port: i32 = flag(&a, "--peer-port").expect("--peer-port").parse().unwrap();
    assert_eq!(container_port(c, "peer"), peer_port);
    let peers_svc_name = spec.service_name.clone().unwrap();
    let peers_svc = named(&r.services, &peers_svc_name);
    let ps = peers_svc.spec.as_ref().unwrap();
    assert_eq!(ps.cluster_ip.as_deref(), Some("None"), "headless");
    assert_eq!(ps.publish_not_ready_addresses, Some(true));
    assert!(
        map_selects(ps.selector.as_ref().unwrap(), &pod_labels),
        "peer Service selects the replicas"
    );
    let p = ps
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("peer"))
        .expect("peer port");
    assert_eq!(p.port, peer_port);
    assert_eq!(p.target_port, Some(IntOrString::String("peer".into())));

    // --peers names every replica exactly once, at its stable DNS name.
    let peers = flag(&a, "--peers").expect("--peers");
    let mut seen = BTreeSet::new();
    for entry in peers.split(',') {
        let (id, address) = entry
            .split_once('=')
            .unwrap_or_else(|| panic!("peer entry {entry} is id=host:port"));
        let ordinal: i32 = id
            .strip_prefix("ha-metrics-server-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("peer {id} is not a replica name"));
        assert!(
            (0..replicas).contains(&ordinal),
            "peer {id} exists (replicas {replicas})"
        );
        assert_eq!(id, format!("{NAME}-{ordinal}"), "canonical ordinal in {id}");
        assert_eq!(
            address,
            format!("{id}.{peers_svc_name}.{NAMESPACE}.svc:{peer_port}"),
            "address of {id}"
        );
        assert!(seen.insert(ordinal), "peer {id} listed twice");
    }
    assert_eq!(seen.len(), replicas as usize, "every replica is a peer");
    assert_eq!(flag(&a, "--replica-id"), Some("$(POD_NAME)"));
    let rf: i32 = flag(&a, "--replication-factor")
        .expect("--replication-factor")
        .parse()
        .unwrap();
    assert!(
        (1..=replicas).contains(&rf),
        "replication factor {rf} fits {replicas} replicas"
    );

    // Disruptions: one replica at a time.
    let pdb = one(&r.pdbs, "PodDisruptionBudget");
    let pdb_spec = pdb.spec.as_ref().unwrap();
    assert_eq!(pdb_spec.max_unavailable, Some(IntOrString::Int(1)));
    assert!(
        selects(pdb_spec.selector.as_ref().unwrap(), &pod_labels),
        "PDB selects the replicas"
    );

    // NetworkPolicy: peer port only from replicas, secure port from anywhere.
    let np = one(&r.network_policies, "NetworkPolicy");
    let np_spec = np.spec.as_ref().unwrap();
    assert!(
        selects(np_spec.pod_selector.as_ref().expect("podSelector"), &pod_labels),
        "policy applies to the replicas"
    );
    assert!(np_spec.policy_types.iter().flatten().any(|t| t == "Ingress"));
    let secure_port: i32 = flag(&a, "--secure-port").unwrap().parse().unwrap();
    let rules = np_spec.ingress.clone().unwrap_or_default();
    let opens = |rule: &k8s_openapi::api::networking::v1::NetworkPolicyIngressRule, port: i32| {
        rule.ports.as_ref().is_none_or(|ports| {
            ports.is_empty()
                || ports.iter().any(|p| {
                    p.port.is_none() || p.port == Some(IntOrString::Int(port)) || {
                        let named = if port == peer_port { "peer" } else { "https" };
                        p.port == Some(IntOrString::String(named.into()))
                    }
                })
        })
    };
    let peer_rules: Vec<_> = rules.iter().filter(|r| opens(r, peer_port)).collect();
    assert!(!peer_rules.is_empty(), "a rule opens the peer port");
    for rule in &peer_rules {
        let from = rule.from.clone().unwrap_or_default();
        assert!(!from.is_empty(), "the peer port is not open to everyone");
        for peer in &from {
            assert!(
                peer.ip_block.is_none() && peer.namespace_selector.is_none(),
                "peer port only from pods"
            );
            assert!(
                peer.pod_selector.as_ref().is_some_and(|s| selects(s, &pod_labels)),
                "the peer-port rule selects the StatefulSet's pod labels"
            );
        }
    }
    assert!(
        rules
            .iter()
            .any(|r| opens(r, secure_port) && r.from.as_ref().is_none_or(|f| f.is_empty())),
        "the secure port is open to everyone (the kube-apiserver must reach it)"
    );

    // Every argument is accepted by the server.
    let config = parse_flags(&a, "ha-metrics-server-1");
    assert_eq!(config.secure_port, 10250);
    assert!(config.ha.enabled());
    assert_eq!(
        config.ha.replica_name(),
        "ha-metrics-server-1",
        "--replica-id from $(POD_NAME)"
    );
    assert_eq!(config.ha.peer_list().expect("--peers parses").len(), replicas as usize);
    assert_eq!(config.ha.peer_port as i32, peer_port);
    assert_eq!(config.ha.data_dir, Path::new(flag(&a, "--data-dir").unwrap()));
}

/// Chart.yaml fields (Helm's full schema; an unknown one is a typo).
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Chart {
    api_version: String,
    name: String,
    version: String,
    kube_version: Option<String>,
    description: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    keywords: Option<Vec<String>>,
    home: Option<String>,
    sources: Option<Vec<String>>,
    dependencies: Option<Vec<Value>>,
    maintainers: Option<Vec<Value>>,
    icon: Option<String>,
    app_version: Option<String>,
    deprecated: Option<bool>,
    annotations: Option<BTreeMap<String, String>>,
}

#[test]
fn helm_chart_parses_and_agrees_with_kustomize() {
    let chart_dir = repo().join("deploy/helm/ha-metrics-server");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let chart: Chart = serde_saphyr::from_str(&read(&chart_dir.join("Chart.yaml"))).unwrap_or_expect("Chart.yaml");
    assert_eq!(chart.api_version, "v2");
    assert_eq!(chart.name, NAME);
    assert_eq!(chart.type_.as_deref(), Some("application"));
    let (repository, tag) = IMAGE.rsplit_once(':').unwrap();
    assert_eq!(
        chart.app_version.as_deref(),
        Some(tag),
        "appVersion is the image tag of the manifests"
    );

    let values: Value = serde_saphyr::from_str(&read(&chart_dir.join("values.yaml"))).unwrap_or_expect("values.yaml");
    assert_eq!(values["replicas"], 1, "the chart installs one replica by default");
    assert_eq!(values["image"]["repository"], repository);
    assert!(
        values["image"]["tag"]
            .as_str()
            .is_some_and(|t| t.is_empty() || t == tag)
    );
    assert_eq!(values["peerTLS"]["secretName"], PEER_SECRET);
    assert_eq!(values["metricResolution"], "15s");
    assert_eq!(values["podDisruptionBudget"]["maxUnavailable"], 1);

    // Resources, hardening and probes are the kustomize base's.
    let base = parse(&kustomize("deploy/kustomize/base"));
    let c = server_container(one(&base.stateful_sets, "StatefulSet"));
    assert_eq!(
        values["resources"],
        serde_json::to_value(&c.resources).unwrap(),
        "resources"
    );
    assert_eq!(
        values["securityContext"],
        serde_json::to_value(&c.security_context).unwrap(),
        "securityContext"
    );
    assert_eq!(
        values["livenessProbe"],
        serde_json::to_value(&c.liveness_probe).unwrap(),
        "livenessProbe"
    );
    assert_eq!(
        values["readinessProbe"],
        serde_json::to_value(&c.readiness_probe).unwrap(),
        "readinessProbe"
    );

    // The default and extra arguments, with the ones the templates add, are accepted by the server.
    let mut chart_args: Vec<String> = values["defaultArgs"]
        .as_array()
        .expect("defaultArgs")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    chart_args.extend(
        values["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    chart_args.push(format!("--secure-port={}", values["securePort"]));
    chart_args.push(format!(
        "--metric-resolution={}",
        values["metricResolution"].as_str().unwrap()
    ));
    chart_args.push(format!("--data-dir={}", values["dataDir"].as_str().unwrap()));
    parse_flags(&chart_args, "ha-metrics-server-0");

    // Templates: every action is closed, every block ends.
    let templates = chart_dir.join("templates");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&templates)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for required in [
        "statefulset.yaml",
        "service.yaml",
        "apiservice.yaml",
        "rbac.yaml",
        "pdb.yaml",
        "networkpolicy.yaml",
    ] {
        assert!(names.contains(&templates.join(required)), "template {required}");
    }
    for path in names {
        check_template(&path.display().to_string(), &read(&path));
    }
}

/// A cheap structural check of a Go template (Helm is not available here to render it): `{{`/`}}` pair up,
/// and `if`/`range`/`with`/`define` blocks are closed by `end`.
fn check_template(name: &str, text: &str) {
    let mut depth = 0i32;
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").unwrap_or_else(|| panic!("{name}: unclosed {{{{"));
        let action = after[..end].trim_start_matches('-').trim_end_matches('-').trim();
        assert!(!action.contains("{{"), "{name}: nested {{{{ in {action}");
        let word = action.split_whitespace().next().unwrap_or_default();
        match word {
            "if" | "range" | "with" | "define" | "block" => depth += 1,
            "end" => {
                depth -= 1;
                assert!(depth >= 0, "{name}: {{{{ end }}}} without a block");
            }
            _ => {}
        }
        rest = &after[end + 2..];
    }
    assert!(!rest.contains("}}"), "{name}: stray }}}}");
    assert_eq!(depth, 0, "{name}: unclosed block");
}
