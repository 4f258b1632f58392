//! One run from start to report: cluster, replicas, clients, monitor and checker up; warm-up;
//! the scheduled faults; recovery once they stop; teardown; report files.

use super::checker::{self, CheckerInput};
use super::clients::{self, Clients, HpaTarget, Periods};
use super::journal::{Target, Timeline};
use super::monitor::{self, Watched};
use super::partition::Partitioner;
use super::replicas::{ReplicaFlags, ReplicaSet, State};
use super::report::{self, Recovery, Report};
use super::{RunConfig, Runner, schedule};
use kubesim::cluster::{Cluster, ClusterConfig};
use kubesim::pki::Leaf;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The replicas' readiness probe in a run: a fast StatefulSet `readinessProbe` (period 1 s,
/// timeout 1 s, 2 failures), so a frozen replica leaves the proxy's endpoints within 3 s. The
/// manifests' probe (10 s x 3, metrics-server's) would keep it there up to 31 s.
pub const PROBE: kubesim::apiserver::proxy::ProbeConfig = kubesim::apiserver::proxy::ProbeConfig {
    period: Duration::from_secs(1),
    timeout: Duration::from_secs(1),
    failure_threshold: 2,
};

/// After the faults, the replica set must be whole again within this long.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

pub async fn run(config: RunConfig) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&config.out_dir)?;
    let dir = config.out_dir.join("cluster");
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = Cluster::start(ClusterConfig {
        nodes: config.nodes,
        pods_per_node: config.pods_per_node,
        seed: config.seed,
        dir: Some(dir.clone()),
        probe: PROBE,
        ..Default::default()
    })
    .await?;
    let (t0, epoch_unix_ms) = (Instant::now(), kubesim::kubelet::server::now_ms());
    let res_ms = config.resolution_ms();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let clients = Clients::new(
        &cluster.api_url(),
        &Leaf::load(&dir, "front-proxy-client")?,
        t0,
        tx.clone(),
    )?;
    let total = config.replicas + 1;
    let set = ReplicaSet::new(&dir, total, config.replicas, flags(&config));
    let peer_ports = set.replicas.iter().map(|r| r.peer_port).collect();
    let (partitioner, partitions_off) = if config.partitions {
        match Partitioner::detect(&std::process::id().to_string(), peer_ports) {
            Ok(p) => (Some(p), None),
            Err(why) => (None, Some(why)),
        }
    } else {
        (None, Some("disabled (--no-partitions)".to_string()))
    };
    if let Some(why) = &partitions_off {
        tracing::warn!("network partitions off: {why}");
    }
    let (pod_nodes, nodes, hpas) = world_facts(&cluster, config.hpas);
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let watched = Arc::new(Mutex::new(
        set.replicas
            .iter()
            .map(|r| Watched {
                port: r.port,
                incarnation: 0,
                running: false,
            })
            .collect(),
    ));
    let serving = Arc::new(Mutex::new(vec![None; total]));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let input = CheckerInput {
        timeline: timeline.clone(),
        resolution_ms: res_ms,
        poll_ms: res_ms / 4,
        epoch_unix_ms,
        pod_nodes: pod_nodes.clone(),
        cluster: cluster.clone(),
        shards: config.shards,
    };
    let checker = checker::spawn(input, rx, stop_rx);
    let mut tasks = vec![
        monitor::spawn_replicas(clients.clone(), watched.clone(), serving.clone(), tx.clone()),
        monitor::spawn_scrapes(cluster.clone(), clients.clone(), config.resolution, tx.clone()),
    ];
    drop(tx);
    let mut runner = Runner {
        config: config.clone(),
        cluster: cluster.clone(),
        set,
        partitioner,
        partitions_off: partitions_off.clone(),
        timeline: timeline.clone(),
        watched,
        serving: serving.clone(),
        clients: clients.clone(),
        nodes,
    };
    let outcome = drive(&mut runner, &mut tasks, hpas, pod_nodes.len()).await;
    let end = clients.now();
    for t in &tasks {
        t.abort();
    }
    let _ = stop_tx.send(end);
    let checked = checker.await?;
    runner.set.shutdown().await;
    if let Some(p) = &runner.partitioner {
        p.cleanup();
    }
    cluster.shutdown();
    let timeline = timeline.lock().expect("timeline lock").clone();
    let report = report::build(&config, partitions_off, timeline, checked, outcome, end);
    report::write(&report, &config.out_dir)?;
    Ok(report)
}

/// Replicas up, clients on, warm-up, faults, recovery. Errors end the run early (reported).
async fn drive(
    runner: &mut Runner,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    hpas: Vec<HpaTarget>,
    pods: usize,
) -> Result<Recovery, String> {
    let config = runner.config.clone();
    let res = config.resolution;
    for i in 0..config.replicas {
        runner.start(i, true).map_err(|e| e.to_string())?;
    }
    for i in 0..config.replicas {
        runner.wait_serving(i).await.map_err(|e| e.to_string())?;
    }
    whole(runner, pods, Duration::from_secs(60)).await?;
    let periods = Periods {
        hpa: res,
        vpa: res * 4,
        top: res / 4,
        direct: res,
    };
    tasks.extend(clients::spawn(&runner.clients, hpas, periods, runner.serving.clone()));
    tokio::time::sleep(res * 2).await;
    let start = runner.clients.now();
    let steps = schedule::plan(
        config.seed,
        config.duration.as_millis() as i64,
        config.resolution_ms(),
        runner.partitioner.is_some(),
        config.settle,
        &config.only,
    );
    tracing::info!(steps = steps.len(), seed = config.seed, "fault schedule");
    for step in &steps {
        let wait = start + step.at_ms - runner.clients.now();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        unexpected_exits(runner)?;
        runner
            .inject(step)
            .await
            .map_err(|e| format!("{}: {e}", step.kind.name()))?;
    }
    unexpected_exits(runner)?;
    let wait = start + config.duration.as_millis() as i64 - runner.clients.now();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let began = Instant::now();
    let recovered = whole(runner, pods, RECOVERY_LIMIT).await;
    let recovery = Recovery {
        ok: recovered.is_ok(),
        millis: began.elapsed().as_millis() as i64,
        detail: recovered.err(),
    };
    tokio::time::sleep(res * 2).await;
    Ok(recovery)
}

/// Stops the run if a replica exited without the runner killing it (a crash, or a signal from
/// outside the run): what follows would be judged against a replica set that is not there.
fn unexpected_exits(runner: &mut Runner) -> Result<(), String> {
    let gone = runner.set.exited();
    if gone.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = gone.iter().map(|(i, how)| format!("r{i} ({how})")).collect();
    Err(format!(
        "replicas exited without the runner stopping them: {}",
        list.join(", ")
    ))
}

/// Waits until exactly one leader, one epoch, nobody degraded, and every pod through the proxy.
async fn whole(runner: &Runner, pods: usize, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < limit {
        match check_whole(runner, pods).await {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("not whole after {limit:?}: {last}"))
}

async fn check_whole(runner: &Runner, pods: usize) -> Result<(), String> {
    let (mut leaders, mut epochs) = (0, BTreeSet::new());
    for i in runner.set.in_state(State::Running) {
        let port = runner.set.replicas[i].port;
        let body = runner.clients.get(Target::Replica(i), port, "/metrics").await?;
        let text = String::from_utf8_lossy(&body);
        leaders += text
            .lines()
            .filter(|l| *l == "ha_metrics_server_coordinator_is_leader 1")
            .count();
        if text.lines().any(|l| l == "ha_metrics_server_degraded 1") {
            return Err(format!("r{i} degraded"));
        }
        epochs.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("ha_metrics_server_shard_map_epoch "))
                .map(str::to_string),
        );
    }
    if leaders != 1 || epochs.len() != 1 {
        return Err(format!("{leaders} leaders, epochs {epochs:?}"));
    }
    let body = runner.clients.get(Target::Proxy, 0, clients::PODS).await?;
    let served = clients::parse::pod_list(&body)?.len();
    if served == pods {
        Ok(())
    } else {
        Err(format!("{served} of {pods} pods served"))
    }
}

fn flags(config: &RunConfig) -> ReplicaFlags {
    let res = config.resolution_ms();
    ReplicaFlags {
        server_bin: config.server_bin.clone(),
        resolution: format!("{res}ms"),
        extra: vec![
            format!("--shards={}", config.shards),
            format!("--kubelet-request-timeout={}ms", res / 2),
            format!("--member-down-after={}ms", res),
            format!("--quorum-loss-timeout={}ms", super::QUORUM_LOSS_RESOLUTIONS * res),
            format!("--replication-factor={}", super::REPLICATION_FACTOR),
            format!("--fanout-timeout={}ms", res),
        ],
    }
}

type PodNodes = BTreeMap<(String, String), String>;

/// Running pods and their nodes, node names, and `hpas` HPA targets spread over deployments.
fn world_facts(cluster: &Cluster, hpas: usize) -> (PodNodes, Vec<String>, Vec<HpaTarget>) {
    cluster.with_world(|w| {
        let running = w.pods.values().filter(|p| p.phase == kubesim::sim::PodPhase::Running);
        let pod_nodes: PodNodes = running
            .map(|p| ((p.spec.namespace.clone(), p.spec.name.clone()), p.spec.node.clone()))
            .collect();
        let apps: BTreeSet<(String, String)> = w
            .pods
            .values()
            .filter_map(|p| Some((p.spec.namespace.clone(), p.spec.labels.get("app")?.clone())))
            .collect();
        let apps: Vec<_> = apps.into_iter().collect();
        let targets = (0..hpas.min(apps.len()))
            .map(|i| {
                let (namespace, app) = apps[i * apps.len() / hpas.min(apps.len()).max(1)].clone();
                HpaTarget { namespace, app }
            })
            .collect();
        (pod_nodes, w.nodes.keys().cloned().collect(), targets)
    })
}
