//! Security against kubesim (scriptable TokenReview and SubjectAccessReview) and real server
//! processes: delegated authentication and authorization with caching, forged and
//! not-allowed front-proxy identities, request-header CA rotation without a restart, TLS 1.1
//! and plain HTTP refused, serving-certificate reload, the peer port closed to clients without
//! a peer certificate, and malformed input of every class with healthy nodes still correct.

mod support;

#[path = "t60_security/liar.rs"]
mod liar;
#[path = "t60_security/wire.rs"]
mod wire;

use kubesim::apiserver::auth::{Policy, Rule, UserInfo};
use kubesim::apiserver::store::Kind;
use kubesim::pki::{Ca, Leaf, LeafSpec};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;
use wire::get;

const PODS: &str = "/apis/metrics.k8s.io/v1beta1/pods";
const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
const MASTERS: [(&str, &str); 2] = [("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")];

async fn cluster(nodes: u32, seed: u64) -> kubesim::Cluster {
    init_tracing();
    kubesim::Cluster::start(kubesim::ClusterConfig {
        nodes,
        pods_per_node: 5,
        seed,
        https: true,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn front_proxy(cluster: &kubesim::Cluster) -> Leaf {
    Leaf::load(cluster.dir(), "front-proxy-client").unwrap()
}

fn client_leaf(ca: &Ca, cn: &str, orgs: &[&str]) -> Leaf {
    ca.issue(&LeafSpec {
        common_name: cn.into(),
        organizations: orgs.iter().map(|o| o.to_string()).collect(),
        client: true,
        ..Default::default()
    })
    .unwrap()
}

async fn wait_ready(cluster: &kubesim::Cluster, port: u16) {
    eventually(Duration::from_secs(60), "readyz", async || {
        direct_get(cluster, port, "/readyz").await.is_ok_and(|(c, _)| c == 200)
    })
    .await;
}

fn rule(users: &[&str], groups: &[&str], verbs: &[&str], resources: &[&str], namespaces: &[&str]) -> Rule {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    Rule {
        users: s(users),
        groups: s(groups),
        verbs: s(verbs),
        api_groups: vec!["metrics.k8s.io".into()],
        resources: s(resources),
        namespaces: s(namespaces),
        ..Default::default()
    }
}

/// Two namespaces with running pods.
fn two_namespaces(cluster: &kubesim::Cluster) -> (String, String) {
    let names: BTreeSet<String> = cluster.with_world(|w| w.pods.values().map(|p| p.spec.namespace.clone()).collect());
    let mut it = names.into_iter();
    (it.next().unwrap(), it.next().expect("two namespaces"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn reviews(cluster: &kubesim::Cluster) -> (u64, u64) {
    let a = cluster.authority();
    (
        a.token_reviews.load(Ordering::Relaxed),
        a.access_reviews.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_authentication_and_authorization() {
    let cluster = cluster(4, 601).await;
    let (ns1, ns2) = two_namespaces(&cluster);
    let mut policy: Policy = cluster.authority().policy();
    let user = |name: &str, groups: &[&str]| UserInfo {
        username: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    };
    policy.tokens.insert("alice-token".into(), user("alice", &["team"]));
    policy.tokens.insert("carol-token".into(), user("carol", &[]));
    policy
        .rules
        .push(rule(&["alice"], &[], &["get", "list"], &["pods"], &[&ns1]));
    policy.rules.push(rule(
        &["carol"],
        &[],
        &["get", "list", "watch"],
        &["pods", "nodes"],
        &[],
    ));
    policy.rules.push(rule(&[], &["ops"], &["list"], &["nodes"], &[]));
    cluster.set_policy(policy);
    let server = start_server(&cluster, &["--authorization-webhook-cache-authorized-ttl=2s"]).await;
    let port = server.port;
    wait_ready(&cluster, port).await;
    let alice = bearer("alice-token");
    let alice_h = [("Authorization", alice.as_str())];
    let ns1_pods = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns1}/pods");
    let ns2_pods = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns2}/pods");

    tracing::info!("a token allowed by SubjectAccessReview for one namespace: 200 there, 403 in another");
    eventually(Duration::from_secs(30), "alice sees pods in ns1", async || {
        get(None, port, &ns1_pods, &alice_h)
            .await
            .is_ok_and(|(c, v)| c == 200 && v["items"].as_array().is_some_and(|i| !i.is_empty()))
    })
    .await;
    let (code, status) = get(None, port, &ns2_pods, &alice_h).await.unwrap();
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"].as_str().unwrap(),
        format!(
            "pods.metrics.k8s.io is forbidden: User \"alice\" cannot list resource \"pods\" in API group \
             \"metrics.k8s.io\" in the namespace \"{ns2}\""
        )
    );

    tracing::info!("an unknown token: 401 Status; no credentials: 401");
    let (code, status) = get(None, port, NODES, &[("Authorization", "Bearer nope")])
        .await
        .unwrap();
    assert_eq!(
        (code, status["reason"].as_str()),
        (401, Some("Unauthorized")),
        "{status}"
    );
    assert_eq!(get(None, port, NODES, &[]).await.unwrap().0, 401);

    tracing::info!("forged X-Remote-* without a front-proxy certificate are ignored");
    assert_eq!(get(None, port, NODES, &MASTERS).await.unwrap().0, 401);
    let forged = [alice_h[0], MASTERS[0], MASTERS[1]];
    let (code, status) = get(None, port, &ns2_pods, &forged).await.unwrap();
    assert_eq!(code, 403);
    assert!(
        status["message"].as_str().unwrap().contains("User \"alice\""),
        "{status}"
    );

    tracing::info!("client certificates from the client CA (read from the ConfigMap): CN user, O groups");
    let cluster_ca = Ca::load(cluster.dir(), "ca", kubesim::cluster::CLUSTER_CA_NAME).unwrap();
    let carl = client_leaf(&cluster_ca, "carl", &["ops"]);
    assert_eq!(get(Some(&carl), port, NODES, &MASTERS).await.unwrap().0, 200);
    let (code, status) = get(Some(&carl), port, PODS, &MASTERS).await.unwrap();
    assert_eq!(code, 403, "headers on a client-CA certificate are ignored too");
    assert!(
        status["message"].as_str().unwrap().contains("User \"carl\""),
        "{status}"
    );

    tracing::info!("a front-proxy certificate whose CN is not allowed is refused");
    let fp_ca = Ca::load(
        cluster.dir(),
        "front-proxy-ca",
        kubesim::cluster::files::FRONT_PROXY_CA_NAME,
    )
    .unwrap();
    let intruder = client_leaf(&fp_ca, "intruder", &[]);
    assert_eq!(get(Some(&intruder), port, NODES, &MASTERS).await.unwrap().0, 401);
    let stranger = client_leaf(&Ca::new("stranger-ca").unwrap(), "front-proxy-client", &[]);
    assert!(
        get(Some(&stranger), port, NODES, &MASTERS).await.is_err(),
        "a certificate from an unknown CA fails the handshake"
    );

    tracing::info!("kubectl through the aggregator as alice: allowed in ns1, Forbidden in ns2");
    let kubeconfig = cluster.dir().join("alice.kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubesim::cluster::files::kubeconfig(&cluster.api_url(), Some(&cluster.paths().ca()), "alice-token", &ns1),
    )
    .unwrap();
    let kubectl_as_alice = async |path: &str| {
        tokio::process::Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "--raw", path])
            .output()
            .await
            .unwrap()
    };
    let allowed = kubectl_as_alice(&ns1_pods).await;
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    let denied = kubectl_as_alice(&ns2_pods).await;
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success() && stderr.contains("Forbidden"),
        "{:?} {stderr} {}",
        denied.status,
        String::from_utf8_lossy(&denied.stdout)
    );

    tracing::info!("decisions are cached: repeated requests cause one TokenReview and one SubjectAccessReview");
    let carol = bearer("carol-token");
    let carol_h = [("Authorization", carol.as_str())];
    let (tr0, sar0) = reviews(&cluster);
    for _ in 0..5 {
        assert_eq!(get(None, port, NODES, &carol_h).await.unwrap().0, 200);
    }
    assert_eq!(reviews(&cluster), (tr0 + 1, sar0 + 1));
    for _ in 0..3 {
        assert_eq!(get(None, port, &ns2_pods, &alice_h).await.unwrap().0, 403);
    }
    assert_eq!(reviews(&cluster).1, sar0 + 1, "the denial is cached too");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(get(None, port, NODES, &carol_h).await.unwrap().0, 200);
    assert_eq!(
        reviews(&cluster).1,
        sar0 + 2,
        "an expired allowed decision is asked again"
    );
    let before = reviews(&cluster).1;
    assert_eq!(direct_get(&cluster, port, NODES).await.unwrap().0, 200);
    assert_eq!(reviews(&cluster).1, before, "system:masters needs no review");

    tracing::info!("watch is authorised as watch: allowed gets 405, denied gets 403");
    let (code, status) = get(None, port, &format!("{NODES}?watch=true"), &carol_h).await.unwrap();
    assert_eq!(
        (code, status["reason"].as_str()),
        (405, Some("MethodNotAllowed")),
        "{status}"
    );
    let (code, status) = get(None, port, &format!("{ns1_pods}?watch=true"), &alice_h)
        .await
        .unwrap();
    assert_eq!(code, 403);
    assert!(status["message"].as_str().unwrap().contains("cannot watch"), "{status}");
    cluster.shutdown();
}

/// Starts a server whose request-header settings come only from the ConfigMap: the launcher's
/// flags without its `--requestheader-*` ones.
fn spawn_from_configmap(cluster: &kubesim::Cluster, port: u16) -> Server {
    let launch = kubesim::launch::ReplicaArgs {
        cert_dir: cluster.dir().join(format!("certs-{port}")),
        ..launch_args(cluster, port)
    };
    let mut args = launch.args();
    args.retain(|a| !a.starts_with("--requestheader-"));
    args.push("--v=2".into());
    spawn_with(cluster, port, args)
}

fn publish_request_header_ca(cluster: &kubesim::Cluster, bundle: &str) {
    let client_ca = std::fs::read_to_string(cluster.paths().ca()).unwrap();
    let cm = kubesim::apiserver::objects::authentication_configmap(&client_ca, bundle, &["front-proxy-client"], 0);
    cluster.store().upsert(Kind::ConfigMaps, cm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_header_ca_rotates_without_restart() {
    let cluster = cluster(2, 602).await;
    let mut server = spawn_from_configmap(&cluster, free_port());
    let port = server.port;
    wait_ready(&cluster, port).await;
    let old = front_proxy(&cluster);
    let new_ca = Ca::new("rotated-front-proxy-ca").unwrap();
    let new = client_leaf(&new_ca, "front-proxy-client", &[]);
    let ok = async |leaf: &Leaf| {
        get(Some(leaf), port, NODES, &MASTERS)
            .await
            .is_ok_and(|(c, _)| c == 200)
    };

    tracing::info!("before rotation: the old front-proxy certificate works, one from the new CA does not");
    assert!(ok(&old).await);
    assert!(!ok(&new).await);

    tracing::info!("the ConfigMap gains the new CA: both work, without a restart");
    let old_pem = std::fs::read_to_string(cluster.paths().front_proxy_ca()).unwrap();
    publish_request_header_ca(&cluster, &format!("{old_pem}{}", new_ca.cert_pem));
    eventually(Duration::from_secs(10), "the new CA is trusted", async || {
        ok(&new).await
    })
    .await;
    assert!(ok(&old).await);

    tracing::info!("the old CA is removed: the old certificate is refused");
    publish_request_header_ca(&cluster, &new_ca.cert_pem);
    eventually(Duration::from_secs(10), "the old CA is dropped", async || {
        !ok(&old).await
    })
    .await;
    assert!(ok(&new).await);
    assert!(server.child.try_wait().unwrap().is_none(), "same process throughout");
    cluster.shutdown();
}

fn write_serving(cluster: &kubesim::Cluster, ca: &Ca, cn: &str) {
    let leaf = ca
        .issue(&LeafSpec {
            common_name: cn.into(),
            ips: vec!["127.0.0.1".parse().unwrap()],
            dns: vec!["localhost".into()],
            server: true,
            ..Default::default()
        })
        .unwrap();
    for (name, text) in [("serving.key", &leaf.key_pem), ("serving.crt", &leaf.cert_pem)] {
        let tmp = cluster.dir().join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, cluster.dir().join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_tls_and_plain_http_are_refused_and_the_serving_certificate_reloads() {
    let cluster = cluster(1, 603).await;
    let ca = Ca::load(cluster.dir(), "ca", kubesim::cluster::CLUSTER_CA_NAME).unwrap();
    write_serving(&cluster, &ca, "serving-1");
    let (cert, key) = (cluster.dir().join("serving.crt"), cluster.dir().join("serving.key"));
    let server = spawn_server(
        &cluster,
        free_port(),
        &[
            &format!("--tls-cert-file={}", cert.display()),
            &format!("--tls-private-key-file={}", key.display()),
        ],
    );
    let port = server.port;
    wait_ready(&cluster, port).await;

    tracing::info!("a TLS 1.1 ClientHello gets a fatal alert, never a ServerHello");
    let answer = wire::exchange(port, &wire::tls11_client_hello()).await;
    assert!(answer.first() != Some(&0x16), "no handshake record: {answer:?}");
    // A fatal alert: handshake_failure (what rustls sends) or protocol_version.
    let fatal = answer.len() == 7 && answer[0] == 0x15 && answer[5] == 2 && matches!(answer[6], 40 | 70);
    assert!(fatal, "a TLS 1.1 hello must get a fatal alert, got {answer:?}");

    tracing::info!("plain HTTP on the TLS port gets no HTTP answer");
    let answer = wire::exchange(port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));

    tracing::info!("replacing the certificate files changes the served certificate without a restart");
    assert_eq!(wire::serving_cn(port).await, "serving-1");
    write_serving(&cluster, &ca, "serving-2");
    eventually(Duration::from_secs(10), "the new serving certificate", async || {
        wire::serving_cn(port).await == "serving-2"
    })
    .await;
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_port_needs_a_peer_certificate() {
    let cluster = cluster(2, 604).await;
    let mut replicas = replicas::Replicas::new(&cluster, 1, 1, &[]);
    replicas.start(&cluster, 0, true);
    let (port, peer_port) = (replicas.replicas[0].port, replicas.replicas[0].peer_port);
    wait_ready(&cluster, port).await;
    let info = ha_metrics_server::peer::wire::path::INFO;
    let body = ha_metrics_server::peer::transport::codec::encode(
        &ha_metrics_server::peer::wire::InfoRequest::default(),
        ha_metrics_server::peer::transport::MAX_PEER_REQUEST_BYTES,
    )
    .unwrap();
    let post =
        async |leaf: Option<&Leaf>| wire::request_with_body("POST", leaf, peer_port, info, &[], body.clone()).await;

    tracing::info!("a replica's peer certificate reaches the peer port");
    assert_eq!(
        post(Some(&Leaf::load(cluster.dir(), "peer").unwrap()))
            .await
            .map(|r| r.0),
        Ok(200)
    );
    tracing::info!("no certificate, or one from another CA: the connection fails before any handler");
    let no_cert = post(None).await;
    assert!(no_cert.is_err(), "{no_cert:?}");
    let other = post(Some(&front_proxy(&cluster))).await;
    assert!(other.is_err(), "{other:?}");
    cluster.shutdown();
}

#[path = "t60_security/bad_input.rs"]
mod bad_input;
