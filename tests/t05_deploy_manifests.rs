//! The deployment manifests under `deploy/`: the kustomize base (one replica) and HA overlay (three replicas)
//! render with real `kubectl kustomize`, every object parses into its typed Kubernetes struct without losing a
//! field (so a misspelt or misplaced field fails here, not at `kubectl apply`), the facts users rely on hold,
//! and every container argument is accepted by the server's own flag parser. The cert-manager overlay wires
//! cert-manager's serving certificate and CA injection. The Helm chart is rendered by Helm's own template engine
//! (helm-python-sdk: Helm's Go SDK as a library; `.ci/run` installs it into `target/tools/helm-venv`) for one,
//! three and five replicas, and the same checks hold, plus its generated CA and serving certificate.

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
    /// cert-manager objects (no typed structs here), as plain data.
    cert_manager: Vec<Value>,
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
            ("cert-manager.io/v1", "Issuer" | "Certificate") => r.cert_manager.push(raw.clone()),
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

/// How the aggregator trusts the Metrics API's serving certificate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Serving {
    /// The server makes a self-signed certificate; the APIService skips verification.
    SelfSigned,
    /// A Secret in the manifests holds a CA and a certificate; the APIService's caBundle is the CA.
    CaBundle,
    /// cert-manager issues the Secret and injects the CA into the APIService.
    Injected,
}

const SERVING_MOUNT: &str = "/etc/ha-metrics-server/serving";

/// Checks shared by every install; returns the StatefulSet.
fn check_common(r: &Rendered, replicas: i32, serving: Serving) -> &StatefulSet {
    for (kind, namespace, name) in &r.ids {
        let cluster_scoped = matches!(kind.as_str(), "ClusterRole" | "ClusterRoleBinding" | "APIService");
        if cluster_scoped {
            assert_eq!(namespace, &None, "{kind} {name} is cluster-scoped");
        } else {
            assert_eq!(namespace.as_deref(), Some(NAMESPACE), "{kind} {name} namespace");
        }
    }
    if serving != Serving::CaBundle {
        assert!(r.secrets.is_empty(), "no Secret (keys) in the manifests");
    }

    // StatefulSet and its pod template.
    let sts = one(&r.stateful_sets, "StatefulSet");
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(sts.metadata.name.as_deref(), Some(NAME));
    assert_eq!(spec.replicas, Some(replicas), "replicas");
    if let Some(governing) = &spec.service_name {
        assert!(
            r.services.iter().any(|s| s.metadata.name.as_ref() == Some(governing)),
            "serviceName {governing} is a Service of this install"
        );
    }
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
    assert_eq!(sc.run_as_user, Some(65534), "the image's own user");
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

    // Both versions are registered, v1 preferred (higher versionPriority), at the same Service,
    // verified or not as `serving` says.
    let mut versions: Vec<(String, i32)> = Vec::new();
    for api in &r.api_services {
        let api_spec = api.spec.as_ref().unwrap();
        let version = api_spec.version.clone().unwrap();
        assert_eq!(
            api.metadata.name.as_deref(),
            Some(format!("{version}.metrics.k8s.io").as_str())
        );
        assert_eq!(api_spec.group.as_deref(), Some("metrics.k8s.io"));
        check_serving(r, sts, api, serving);
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

/// The serving certificate: mounted and passed to the server, and trusted by the APIService as `serving` says.
fn check_serving(r: &Rendered, sts: &StatefulSet, api: &APIService, serving: Serving) {
    let api_spec = api.spec.as_ref().unwrap();
    let c = server_container(sts);
    let a = args(c);
    if serving == Serving::SelfSigned {
        assert_eq!(api_spec.insecure_skip_tls_verify, Some(true));
        assert!(flag(&a, "--tls-cert-file").is_none(), "self-signed: no --tls-cert-file");
        return;
    }
    assert_ne!(api_spec.insecure_skip_tls_verify, Some(true), "verified, not skipped");
    assert_eq!(
        flag(&a, "--tls-cert-file"),
        Some(format!("{SERVING_MOUNT}/tls.crt").as_str())
    );
    assert_eq!(
        flag(&a, "--tls-private-key-file"),
        Some(format!("{SERVING_MOUNT}/tls.key").as_str())
    );
    let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == SERVING_MOUNT)
        .expect("serving certificate mounted");
    assert_eq!(mount.read_only, Some(true));
    let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
    let secret = volume.secret.as_ref().expect("a Secret volume");
    let secret_name = secret.secret_name.clone().expect("secretName");
    let mode = secret.default_mode.unwrap_or(0o644);
    let user = c.security_context.as_ref().and_then(|s| s.run_as_user);
    let group = pod.security_context.as_ref().and_then(|s| s.fs_group);
    assert!(
        mode & 0o004 != 0 || (mode & 0o040 != 0 && group.is_some() && group == user),
        "the key (mode {mode:o}) is readable by the container's user {user:?} (fsGroup {group:?})"
    );
    let service = format!("{NAME}.{NAMESPACE}.svc");
    match serving {
        Serving::CaBundle => {
            let secret = named(&r.secrets, &secret_name);
            assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
            let data = secret.data.clone().expect("Secret data");
            let ca = &data["ca.crt"].0;
            let bundle = api_spec.ca_bundle.as_ref().expect("APIService caBundle");
            assert_eq!(&bundle.0, ca, "caBundle is the Secret's CA");
            verify_serving_cert(&data["tls.crt"].0, &data["tls.key"].0, ca, &service);
        }
        Serving::Injected => {
            let annotations = api.metadata.annotations.clone().unwrap_or_default();
            let from = annotations
                .get("cert-manager.io/inject-ca-from")
                .expect("cert-manager CA injection annotation");
            let (ns, cert_name) = from.split_once('/').unwrap();
            assert_eq!(ns, NAMESPACE);
            let cert = r
                .cert_manager
                .iter()
                .find(|o| o["kind"] == "Certificate" && o["metadata"]["name"] == cert_name)
                .unwrap_or_else(|| panic!("Certificate {cert_name} in the install"));
            assert_eq!(
                cert["spec"]["secretName"],
                secret_name.as_str(),
                "the Certificate's Secret is mounted"
            );
            let names = cert["spec"]["dnsNames"].as_array().expect("dnsNames");
            assert!(names.iter().any(|n| n == service.as_str()), "{service} in {names:?}");
            let issuer = cert["spec"]["issuerRef"]["name"].as_str().unwrap();
            let ca_issuer = r
                .cert_manager
                .iter()
                .find(|o| o["kind"] == "Issuer" && o["metadata"]["name"] == issuer)
                .expect("the Certificate's Issuer");
            assert!(
                ca_issuer["spec"]["ca"]["secretName"].is_string(),
                "issued by a CA Issuer"
            );
        }
        Serving::SelfSigned => unreachable!(),
    }
}

/// The certificate chains to the CA for `name` (as the aggregator checks it), and the key is its key.
fn verify_serving_cert(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8], name: &str) {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let ca = CertificateDer::from_pem_slice(ca_pem).expect("ca.crt is a PEM certificate");
    let cert = CertificateDer::from_pem_slice(cert_pem).expect("tls.crt is a PEM certificate");
    let key = PrivateKeyDer::from_pem_slice(key_pem).expect("tls.key is a PEM key");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider.clone())
        .build()
        .unwrap();
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    verifier
        .verify_server_cert(&cert, &[], &server_name, &[], UnixTime::now())
        .unwrap_or_else(|e| panic!("the serving certificate does not verify for {name}: {e}"));
    rustls::sign::CertifiedKey::from_der(vec![cert], key, &provider).expect("tls.key matches tls.crt");
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
    let sts = check_common(&r, 1, Serving::SelfSigned);
    assert_eq!(r.services.len(), 1, "no peer Service in the base");
    assert_eq!(
        sts.spec.as_ref().unwrap().service_name,
        None,
        "the base names no governing Service (only the ha overlay creates one)"
    );
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
fn cert_manager_overlay_verifies_the_serving_certificate() {
    let r = parse(&kustomize("deploy/kustomize/cert-manager"));
    let sts = check_common(&r, 1, Serving::Injected);
    let config = parse_flags(&args(server_container(sts)), "ha-metrics-server-0");
    assert!(config.tls_cert_file.is_some() && !config.ha.enabled());
}

#[test]
fn ha_overlay_is_three_sharded_replicas() {
    let r = parse(&kustomize("deploy/kustomize/ha"));
    let sts = check_common(&r, 3, Serving::SelfSigned);
    check_ha(&r, sts, 3);
}

/// The highly available install: peers, peer TLS, anti-affinity, PDB, NetworkPolicy, and args that parse.
fn check_ha(r: &Rendered, sts: &StatefulSet, replicas: i32) {
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
    let user = c.security_context.as_ref().and_then(|s| s.run_as_user);
    assert!(
        mode & 0o004 != 0 || (mode & 0o040 != 0 && security.fs_group.is_some() && security.fs_group == user),
        "the key (mode {mode:o}) is readable by the container's user {user:?}"
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
}

/// The Python that has helm-python-sdk (Helm's template engine): `$HELM_PYTHON`, else the venv `.ci/run` makes.
fn helm_python() -> Option<PathBuf> {
    let python = std::env::var_os("HELM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/tools/helm-venv/bin/python"));
    let works = std::process::Command::new(&python)
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    // CI installs it (.ci/run); a developer without it is told how, and the Helm checks are skipped.
    if std::env::var_os("CI").is_some() {
        panic!("{} cannot import helm_python (see .ci/run)", python.display())
    }
    eprintln!(
        "SKIPPED: Helm rendering needs helm-python-sdk: python3 -m venv target/tools/helm-venv && \
         target/tools/helm-venv/bin/pip install helm-python-sdk==0.2.2 (or set HELM_PYTHON)"
    );
    None
}

/// `helm template` of the chart as release `ha-metrics-server` in kube-system with `values`: the manifests, or
/// Helm's error.
fn helm_template(python: &Path, values: Value) -> Result<String, String> {
    let out = std::process::Command::new(python)
        .arg(repo().join("tests/helm_render.py"))
        .arg(repo().join("deploy/helm/ha-metrics-server"))
        .args([NAME, NAMESPACE])
        .arg(values.to_string())
        .output()
        .expect("python runs");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn helm_chart_renders_one_and_three_and_five_replicas_that_parse() {
    let Some(python) = helm_python() else { return };
    for replicas in [1, 3, 5] {
        let yaml = helm_template(&python, serde_json::json!({ "replicas": replicas }))
            .unwrap_or_else(|e| panic!("helm template --set replicas={replicas}: {e}"));
        let r = parse(&yaml);
        let sts = check_common(&r, replicas, Serving::CaBundle);
        let a = args(server_container(sts));
        for ordinal in 0..replicas {
            let config = parse_flags(&a, &format!("{NAME}-{ordinal}"));
            assert_eq!(config.ha.enabled(), replicas > 1, "{replicas} replicas");
            assert_eq!(
                config.tls_cert_file.as_deref(),
                Some(Path::new(&format!("{SERVING_MOUNT}/tls.crt")))
            );
        }
        match replicas {
            1 => {
                assert!(
                    sts.spec.as_ref().unwrap().service_name.is_none(),
                    "no peers Service, none named"
                );
                assert!(r.pdbs.is_empty() && r.network_policies.is_empty());
            }
            n => check_ha(&r, sts, n),
        }
    }
}

#[test]
fn helm_chart_skips_verification_only_when_asked() {
    let Some(python) = helm_python() else { return };
    let opt_in = serde_json::json!({
        "servingTLS": {"mode": "selfSigned"},
        "apiService": {"insecureSkipTLSVerify": true},
    });
    let r = parse(&helm_template(&python, opt_in).unwrap());
    let sts = check_common(&r, 1, Serving::SelfSigned);
    parse_flags(&args(server_container(sts)), "ha-metrics-server-0");

    let unverifiable = helm_template(&python, serde_json::json!({"servingTLS": {"mode": "selfSigned"}})).unwrap_err();
    assert!(unverifiable.contains("the APIService needs a CA"), "{unverifiable}");
    let bad_mode = helm_template(&python, serde_json::json!({"servingTLS": {"mode": "sometimes"}})).unwrap_err();
    assert!(bad_mode.contains("servingTLS.mode must be"), "{bad_mode}");

    tracing::info!("an existing Secret with cert-manager injection: mounted, no Secret rendered");
    let cert_manager = serde_json::json!({
        "servingTLS": {"mode": "existingSecret", "secretName": "my-serving-tls"},
        "apiService": {"annotations": {"cert-manager.io/inject-ca-from": "kube-system/my-serving-tls"}},
    });
    let r = parse(&helm_template(&python, cert_manager).unwrap());
    assert!(r.secrets.is_empty());
    let sts = one(&r.stateful_sets, "StatefulSet");
    let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert!(
        pod.volumes
            .iter()
            .flatten()
            .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("my-serving-tls"))
    );
    assert_eq!(r.api_services.len(), 2, "v1 and v1beta1");
    for api in &r.api_services {
        let api = api.spec.as_ref().unwrap();
        assert!(api.ca_bundle.is_none() && api.insecure_skip_tls_verify != Some(true));
    }
}
