//! Fencing and agreement between replicas, driven over the real peer channel: a replica
//! started with another `--shards` adopts the replica set's count; a push or pull under an
//! older map, or from a replica that does not own the shard, is refused; a standby's copy is
//! kept on the standby's own clock, so a sender whose clock runs an hour ahead cannot make it
//! immortal.

mod support;

use ha_metrics_server::peer::transport::PeerClient;
use ha_metrics_server::peer::wire::{
    Info, PullRequest, PullResponse, PushAck, PushBody, QueryRequest, QueryResponse, QueryTarget, ShardPush, path,
};
use shard::point::{MetricsPoint, NANOS_PER_SECOND, now_nanos};
use shard::store::{NodeSnapshot, ShardSnapshot};
use std::time::{Duration, Instant};
use support::replicas::{Replicas, peer_client};
use support::*;

/// The term of the pushes this test sends as the shard's primary.
const TERM: u64 = 7;
const SHARDS: u32 = 12;
const CALL: Duration = Duration::from_secs(3);

/// Two owners per shard, so that some member owns nothing of a shard (the outsider below).
fn flags() -> Vec<&'static str> {
    vec![
        "--replication-factor=2",
        "--member-down-after=2s",
        "--quorum-loss-timeout=4s",
        "--fanout-timeout=2s",
    ]
}

/// One push to the standby at `address`, as writers send them (a batch of one).
async fn replicate(client: &PeerClient, address: &str, push: ShardPush) -> PushAck {
    let acks: Vec<PushAck> = client.call(address, path::REPLICATE, &vec![push], CALL).await.unwrap();
    assert_eq!(acks.len(), 1, "one ack per push");
    acks[0]
}

async fn info(client: &PeerClient, peer_port: u16) -> Option<Info> {
    support::replicas::peer_info(client, peer_port).await
}

/// A node's copy with two points a resolution apart, stored (`received`) at `received`.
fn ghost_copy(received: i64) -> NodeSnapshot {
    let now = now_nanos();
    let point = |t: i64, cpu: u64| MetricsPoint {
        start_time: 0,
        timestamp: t,
        cumulative_cpu: cpu,
        memory: 1 << 20,
        swap: None,
    };
    NodeSnapshot {
        received,
        last: Some(point(now, 4 * NANOS_PER_SECOND as u64)),
        prev: Some(point(now - 2 * NANOS_PER_SECOND, 2 * NANOS_PER_SECOND as u64)),
        pods: vec![],
    }
}

async fn nodes_of(client: &PeerClient, peer_port: u16, shard: u32, epoch: u64) -> Vec<String> {
    let request = QueryRequest {
        epoch,
        shards: vec![shard],
        target: QueryTarget::Nodes,
    };
    let answer: QueryResponse = client
        .call(&format!("127.0.0.1:{peer_port}"), path::QUERY, &request, CALL)
        .await
        .expect("the standby answers");
    answer.nodes.into_iter().map(|n| n.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_adopts_the_sets_shard_count_and_stale_owners_and_skewed_clocks_are_fenced() {
    init_tracing();
    let cluster = cluster(4, 3, 551).await;
    let mut replicas = Replicas::new(&cluster, 3, 3, &flags());
    let shards_flag = format!("--shards={SHARDS}");
    replicas.start_with(&cluster, 0, true, &[&shards_flag]);
    replicas.start_with(&cluster, 1, true, &[&shards_flag]);
    let client = peer_client(&cluster);
    let (p0, p1, p2) = (
        replicas.replicas[0].peer_port,
        replicas.replicas[1].peer_port,
        replicas.replicas[2].peer_port,
    );

    tracing::info!("r0 and r1 form the set with 12 shards");
    eventually(Duration::from_secs(40), "a formed map owned by r0 and r1", async || {
        let (Some(a), Some(b)) = (info(&client, p0).await, info(&client, p1).await) else {
            return false;
        };
        a.map.epoch == b.map.epoch && a.map.shard_count == SHARDS && a.primaries + b.primaries == SHARDS
    })
    .await;

    tracing::info!("r2 starts with --shards=7: it adopts 12 and serves every pod");
    let port2 = replicas.replicas[2].port;
    let knocking = Knocker::start(&[port2, p2]);
    replicas.start_with(&cluster, 2, true, &["--shards=7"]);
    let want = running_pods(&cluster);
    eventually(Duration::from_secs(60), "r2 serves every pod", async || {
        let Ok((200, body)) = direct_get(&cluster, port2, "/apis/metrics.k8s.io/v1beta1/pods").await else {
            return false;
        };
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let served: std::collections::BTreeSet<(String, String)> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let meta = &p["metadata"];
                (
                    meta["namespace"].as_str().unwrap_or_default().into(),
                    meta["name"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        served == want
    })
    .await;
    let log = std::fs::read_to_string(&replicas.replicas[2].process.as_ref().unwrap().log).unwrap();
    assert!(
        log.contains("restarting with the set's"),
        "r2 says why it restarted:\n{log}"
    );
    let r2 = info(&client, p2).await.expect("r2 answers");
    assert_eq!(r2.map.shard_count, SHARDS);
    let (connected, refused) = knocking.stop();
    assert!(connected > 0, "the knocker reached r2");
    assert_eq!(
        refused, 0,
        "r2's restart in place kept its listening sockets: no connection refused after its first bind"
    );

    tracing::info!("pushes and pulls under an older map, or from a non-owner, are refused");
    let now = info(&client, p0).await.unwrap();
    let map = &now.map;
    let nodes: Vec<String> = cluster.with_world(|w| w.nodes.keys().cloned().collect());
    let empty_shard = (0..SHARDS)
        .find(|&s| {
            let owners = map.owners(s);
            owners.len() == 2 && !nodes.iter().any(|n| shard::hash::shard_of(n, SHARDS) == s)
        })
        .expect("a shard with two owners and no node (4 nodes, 12 shards)");
    let owners = map.owners(empty_shard).to_vec();
    let (primary, standby) = (owners[0], owners[1]);
    let standby_port = |m| {
        let address = &map.members[&m].peer_address;
        address.rsplit(':').next().unwrap().parse::<u16>().unwrap()
    };
    let push = |from: u64, epoch: u64, body: PushBody, taken_at: i64| ShardPush {
        from,
        epoch,
        shard: empty_shard,
        term: TERM,
        seq: 1,
        taken_at,
        body,
    };
    let at = |m| format!("127.0.0.1:{}", standby_port(m));
    let outsider = map
        .members
        .keys()
        .copied()
        .find(|m| !owners.contains(m))
        .expect("a third member");
    let stale: PushAck = replicate(
        &client,
        &at(standby),
        push(outsider.0, 0, PushBody::Full(ShardSnapshot::default()), now_nanos()),
    )
    .await;
    assert_eq!(
        stale,
        PushAck::Stale { epoch: map.epoch },
        "a push under an older map from a replica that owns nothing of the shard now"
    );
    let not_owner: PushAck = replicate(
        &client,
        &at(standby),
        push(
            standby.0 ^ 1,
            map.epoch,
            PushBody::Full(ShardSnapshot::default()),
            now_nanos(),
        ),
    )
    .await;
    assert_eq!(
        not_owner,
        PushAck::Stale { epoch: map.epoch },
        "a push from a replica that is not the primary"
    );
    let pull = PullRequest {
        from: standby.0,
        epoch: 0,
        shards: vec![empty_shard],
    };
    let refused: PullResponse = client.call(&at(primary), path::PULL, &pull, CALL).await.unwrap();
    assert_eq!(
        refused.refused,
        [empty_shard],
        "a takeover under an older map is not yielded to"
    );

    tracing::info!("a copy from a sender an hour ahead expires on the standby's clock");
    let ahead = now_nanos() + 3600 * NANOS_PER_SECOND;
    let copy = ShardSnapshot {
        nodes: vec![("ghost".into(), ghost_copy(ahead))],
        ..Default::default()
    };
    let accepted: PushAck = replicate(
        &client,
        &at(standby),
        push(primary.0, map.epoch, PushBody::Full(copy), ahead),
    )
    .await;
    assert_eq!(accepted, PushAck::Accepted, "the primary's push under the current map");
    // Staged until the writer says it applied the push too.
    let commit = push(primary.0, map.epoch, PushBody::Commit, now_nanos());
    assert_eq!(replicate(&client, &at(standby), commit).await, PushAck::Accepted);
    let held = nodes_of(&client, standby_port(standby), empty_shard, map.epoch).await;
    assert_eq!(held, ["ghost"], "the standby holds and serves the copy");
    let sent = Instant::now();
    eventually(Duration::from_secs(30), "the ghost node expired", async || {
        nodes_of(&client, standby_port(standby), empty_shard, map.epoch)
            .await
            .is_empty()
    })
    .await;
    tracing::info!(after = ?sent.elapsed(), "expired");

    tracing::info!("an update is taken only within the term whose whole copy the standby holds");
    let update = |term| ShardPush {
        term,
        ..push(primary.0, map.epoch, PushBody::Update { ops: Vec::new() }, now_nanos())
    };
    assert_eq!(
        replicate(&client, &at(standby), update(TERM)).await,
        PushAck::Accepted,
        "push 1 of the same term again: late, nothing to apply"
    );
    assert_eq!(
        replicate(&client, &at(standby), update(TERM + 1)).await,
        PushAck::OutOfSync,
        "push 1 of a new term is not a late push of the old one: the new term's whole copy is due"
    );
    cluster.shutdown();
}

/// Connects to ports over and over from a thread, for `KNOCK_FOR` (r2 restarts within seconds
/// of its start; every connection leaves a socket in TIME_WAIT, so not for ever); counts
/// connections made and, once a port accepted one, connections it refused.
const KNOCK_FOR: Duration = Duration::from_secs(15);

struct Knocker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl Knocker {
    fn start(ports: &[u16]) -> Knocker {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ports = ports.to_vec();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut connected, mut refused) = (0, 0);
            let mut open = vec![false; ports.len()];
            let until = std::time::Instant::now() + KNOCK_FOR;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < until {
                for (i, port) in ports.iter().enumerate() {
                    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
                    match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                        Ok(_) => {
                            connected += 1;
                            open[i] = true;
                        }
                        Err(e) if open[i] && e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                        Err(_) => {}
                    }
                }
                std::thread::sleep(Duration::from_millis(4));
            }
            (connected, refused)
        });
        Knocker { stop, thread }
    }

    fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("knocker thread")
    }
}
