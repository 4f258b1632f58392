//! Pod, container and node lifecycle events show in the kubelets' payloads and the ground
//! truth, and kubelets spread over worker processes behave like in-process ones.

mod common;

use kubesim::cluster::actions::Action;
use kubesim::sim::model::{ContainerKind, ContainerSpec};
use kubesim::sim::{PodPhase, PodSpec, Profile, SimEvent};
use std::collections::BTreeMap;

fn series(scrape: &prometheus_parse::Scrape, family: &str) -> BTreeMap<String, f64> {
    common::samples(scrape, family)
        .into_iter()
        .map(|s| (s.0, s.1))
        .collect()
}

async fn payload(cluster: &kubesim::Cluster, node: &str) -> prometheus_parse::Scrape {
    common::parse(&common::scrape(cluster, node).await.unwrap().body.unwrap())
}

fn container(name: &str, kind: ContainerKind) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        kind,
        image: format!("example/{name}:1"),
        cpu: Profile::Constant { value: 0.25 },
        memory: Profile::Constant {
            value: 64.0 * 1024.0 * 1024.0,
        },
        cpu_request_millis: 250,
        memory_request_bytes: 64 << 20,
        swap: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_and_container_lifecycle() {
    let cluster = common::cluster(2, 3, 21).await;
    let now = kubesim::kubelet::server::now_ms();

    tracing::info!("a pod with an init container and a native sidecar: the init container is never reported");
    let pod = PodSpec {
        namespace: "default".into(),
        name: "web-x".into(),
        uid: "11111111-2222-4333-a444-555555555555".into(),
        node: "node-1".into(),
        labels: BTreeMap::from([("app".into(), "web-x".into())]),
        owner: None,
        created: now,
        phase: PodPhase::Running,
        started: Some(now),
        containers: vec![
            container("init", ContainerKind::Init),
            container("app", ContainerKind::Regular),
            container("mesh", ContainerKind::Sidecar),
        ],
    };
    cluster.apply(vec![SimEvent::AddPod { pod }]).await.unwrap();
    let cpu = series(&payload(&cluster, "node-1").await, "container_cpu_usage_seconds_total");
    assert!(cpu.contains_key("default/web-x/app") && cpu.contains_key("default/web-x/mesh"));
    assert!(!cpu.contains_key("default/web-x/init"));

    tracing::info!("a container restart: new start time, counter from zero");
    // Past one stats refresh, so the sidecar's counter has moved when the app restarts.
    let refresh = kubesim::kubelet::server::STATS_REFRESH_MS as u64;
    tokio::time::sleep(std::time::Duration::from_millis(refresh + 300)).await;
    let act = |a| cluster.act(a);
    act(Action::RestartContainer {
        namespace: "default".into(),
        name: "web-x".into(),
        container: "app".into(),
    })
    .await
    .unwrap();
    let after = payload(&cluster, "node-1").await;
    let starts = series(&after, "container_start_time_seconds");
    assert!(
        starts["default/web-x/app"] > starts["default/web-x/mesh"],
        "restarted later than the sidecar"
    );
    let cpu = series(&after, "container_cpu_usage_seconds_total");
    assert!(
        cpu["default/web-x/app"] < cpu["default/web-x/mesh"],
        "counter restarted from zero"
    );
    let truth = cluster
        .pod_truth("default", "web-x", now, kubesim::kubelet::server::now_ms())
        .unwrap();
    assert_eq!(truth.containers.iter().find(|c| c.name == "app").unwrap().restarts, 1);

    tracing::info!("finished and deleted pods leave the payload");
    act(Action::FinishPod {
        namespace: "default".into(),
        name: "web-x".into(),
        failed: false,
    })
    .await
    .unwrap();
    assert!(
        !series(&payload(&cluster, "node-1").await, "container_cpu_usage_seconds_total")
            .contains_key("default/web-x/app")
    );
    act(Action::DeletePod {
        namespace: "default".into(),
        name: "web-x".into(),
    })
    .await
    .unwrap();
    assert!(cluster.pod_truth("default", "web-x", now, now).is_none());

    tracing::info!("a pending pod appears once started");
    let created = act(Action::AddPod(kubesim::cluster::actions::PodRequest {
        node: Some("node-0".into()),
        namespace: Some("team-1".into()),
        name: Some("later".into()),
        containers: Some(2),
        pending: true,
        ..Default::default()
    }))
    .await
    .unwrap();
    assert_eq!(created["name"], "later");
    assert!(
        !series(&payload(&cluster, "node-0").await, "container_cpu_usage_seconds_total")
            .keys()
            .any(|k| k.contains("/later/"))
    );
    act(Action::StartPod {
        namespace: "team-1".into(),
        name: "later".into(),
    })
    .await
    .unwrap();
    let cpu = series(&payload(&cluster, "node-0").await, "container_cpu_usage_seconds_total");
    assert_eq!(cpu.keys().filter(|k| k.contains("/later/")).count(), 2);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_lifecycle() {
    let cluster = common::cluster(2, 3, 22).await;
    let act = |a| cluster.act(a);

    tracing::info!("a reboot resets the node counter and restarts every container");
    let before = payload(&cluster, "node-0").await;
    act(Action::RebootNode { node: "node-0".into() }).await.unwrap();
    let after = payload(&cluster, "node-0").await;
    let node_cpu = |s| series(s, "node_cpu_usage_seconds_total")[""];
    assert!(node_cpu(&after) < node_cpu(&before) / 10.0);
    let now_s = kubesim::kubelet::server::now_ms() as f64 / 1000.0;
    assert!(
        series(&after, "container_start_time_seconds")
            .values()
            .all(|s| now_s - s < 5.0)
    );

    tracing::info!("a removed node's kubelet stops listening; an added node's starts");
    let addr = common::kubelet_addr(&cluster, "node-1").await;
    act(Action::RemoveNode { node: "node-1".into() }).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let added = act(Action::AddNode { swap: false }).await.unwrap();
    assert_eq!(added["node"], "node-1", "the lowest free name is reused");
    let fresh = payload(&cluster, "node-1").await;
    assert!(
        series(&fresh, "container_cpu_usage_seconds_total").is_empty(),
        "no pods yet"
    );
    assert_eq!(series(&fresh, "node_memory_working_set_bytes").len(), 1);
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelets_in_worker_processes() {
    common::init_tracing();
    let config = kubesim::ClusterConfig {
        nodes: 5,
        pods_per_node: 2,
        seed: 23,
        kubelets_per_process: 2,
        kubesim_bin: Some(env!("CARGO_BIN_EXE_kubesim").into()),
        ..Default::default()
    };
    let cluster = kubesim::Cluster::start(config).await.unwrap();
    tracing::info!("five nodes over three worker processes all answer with ground truth");
    for i in 0..5 {
        let node = format!("node-{i}");
        let scrape = payload(&cluster, &node).await;
        let cpu = common::samples(&scrape, "node_cpu_usage_seconds_total")[0].clone();
        let truth = cluster.node_truth(&node, cpu.2, cpu.2).unwrap();
        assert!((truth.cpu_seconds - cpu.1).abs() <= 1e-9 * cpu.1);
    }
    let children = std::fs::read_dir("/proc").unwrap().filter_map(|e| {
        let stat = std::fs::read_to_string(e.ok()?.path().join("stat")).ok()?;
        let ppid: u32 = stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == std::process::id() && stat.contains("(kubesim)")).then_some(())
    });
    assert_eq!(children.count(), 3);

    tracing::info!("faults and events reach kubelets in workers");
    cluster
        .set_fault("node-3", Some(kubesim::kubelet::Fault::Http500))
        .await
        .unwrap();
    assert_eq!(common::scrape(&cluster, "node-3").await.unwrap().status, 500);
    cluster.set_fault("node-3", None).await.unwrap();
    cluster.act(Action::RebootNode { node: "node-3".into() }).await.unwrap();
    let stats = cluster.kubelet_stats().await;
    assert_eq!(stats.len(), 5);
    assert!(stats["node-3"].scrapes >= 2);
    cluster.shutdown();
}
