//! Every fault a fake kubelet can be switched into does what it says, and clearing it restores
//! correct answers.

mod common;

use kubesim::kubelet::{Family, Fault};
use std::time::{Duration, Instant};

const NODE: &str = "node-0";

async fn set(cluster: &kubesim::Cluster, fault: Option<Fault>) {
    cluster.set_fault(NODE, fault).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_faults() {
    let cluster = common::cluster(1, 3, 5).await;
    let addr = common::kubelet_addr(&cluster, NODE).await;

    tracing::info!("connection refused: nothing listens");
    set(&cluster, Some(Fault::ConnectionRefused)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    set(&cluster, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        common::scrape(&cluster, NODE).await.unwrap().status,
        200,
        "listens again after clearing"
    );

    tracing::info!("hang: TCP accepted, nothing ever answered");
    set(&cluster, Some(Fault::Hang)).await;
    let stream = tokio::net::TcpStream::connect(addr).await.expect("accepted");
    let err = common::scrape(&cluster, NODE).await.err().expect("times out");
    assert_eq!(err, "timed out");
    drop(stream);
    set(&cluster, None).await;

    tracing::info!("slow: answers correctly after the delay");
    set(&cluster, Some(Fault::Slow { delay_ms: 700 })).await;
    let started = Instant::now();
    let slow = common::scrape(&cluster, NODE).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(slow.status, 200);
    common::parse(&slow.body.unwrap());
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_faults() {
    let cluster = common::cluster(1, 3, 6).await;

    tracing::info!("HTTP 500");
    set(&cluster, Some(Fault::Http500)).await;
    assert_eq!(common::scrape(&cluster, NODE).await.unwrap().status, 500);

    tracing::info!("garbage: 200 with a body that is not the exposition format");
    set(&cluster, Some(Fault::Garbage)).await;
    let garbage = common::scrape(&cluster, NODE).await.unwrap();
    assert_eq!(garbage.status, 200);
    let body = garbage.body.unwrap();
    assert!(std::str::from_utf8(&body).is_err() || !body.starts_with(b"# HELP"));

    tracing::info!("truncated: the body ends before its announced length");
    set(&cluster, Some(Fault::Truncated)).await;
    let truncated = common::scrape(&cluster, NODE).await.unwrap();
    assert_eq!(truncated.status, 200);
    assert!(truncated.body.is_err(), "reading the body fails");

    tracing::info!("oversized: a valid-looking body of the requested size");
    set(&cluster, Some(Fault::Oversized { bytes: 3 * 1024 * 1024 })).await;
    let big = common::scrape(&cluster, NODE).await.unwrap().body.unwrap();
    assert!(big.len() >= 3 * 1024 * 1024, "{} bytes", big.len());
    assert!(big.starts_with(b"# HELP container_cpu_usage_seconds_total"));

    set(&cluster, None).await;
    let ok = common::scrape(&cluster, NODE).await.unwrap();
    common::parse(&ok.body.unwrap());
    cluster.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_kubelet_faults() {
    let cluster = common::cluster(1, 4, 7).await;
    let scrape = |c: &kubesim::Cluster| {
        let c = c.clone();
        async move { common::parse(&common::scrape(&c, NODE).await.unwrap().body.unwrap()) }
    };

    tracing::info!("missing series: the named families are absent, the rest present");
    set(
        &cluster,
        Some(Fault::MissingSeries {
            families: vec![Family::NodeMemoryWorkingSetBytes, Family::ContainerCpuUsageSecondsTotal],
        }),
    )
    .await;
    let s = scrape(&cluster).await;
    assert!(common::samples(&s, "node_memory_working_set_bytes").is_empty());
    assert!(common::samples(&s, "container_cpu_usage_seconds_total").is_empty());
    assert!(!common::samples(&s, "container_memory_working_set_bytes").is_empty());
    assert!(!common::samples(&s, "node_cpu_usage_seconds_total").is_empty());

    tracing::info!("zero values: every CPU and memory value is 0");
    set(&cluster, Some(Fault::ZeroValues)).await;
    let s = scrape(&cluster).await;
    for f in [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "node_cpu_usage_seconds_total",
        "node_memory_working_set_bytes",
    ] {
        assert!(common::samples(&s, f).iter().all(|x| x.1 == 0.0), "{f}");
    }

    tracing::info!("counter backwards: CPU counters drop below the previous scrape, start times unchanged");
    set(&cluster, None).await;
    let before = scrape(&cluster).await;
    set(&cluster, Some(Fault::CounterBackwards { factor: 0.5 })).await;
    let after = scrape(&cluster).await;
    let (b, a) = (
        common::samples(&before, "container_cpu_usage_seconds_total"),
        common::samples(&after, "container_cpu_usage_seconds_total"),
    );
    assert!(b.iter().zip(&a).all(|(b, a)| a.1 < b.1));
    let starts = |s| {
        common::samples(s, "container_start_time_seconds")
            .into_iter()
            .map(|x| (x.0, x.1))
            .collect::<Vec<_>>()
    };
    assert_eq!(starts(&before), starts(&after));

    tracing::info!("stale stats: repeated timestamps and values");
    set(&cluster, Some(Fault::StaleStats)).await;
    let one = common::scrape(&cluster, NODE).await.unwrap().body.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let two = common::scrape(&cluster, NODE).await.unwrap().body.unwrap();
    assert_eq!(one, two);

    tracing::info!("timestamps backwards: stats as of 30 s ago");
    set(&cluster, Some(Fault::TimestampsBackwards { by_ms: 30_000 })).await;
    let s = scrape(&cluster).await;
    let now = kubesim::kubelet::server::now_ms();
    let ts = common::samples(&s, "node_cpu_usage_seconds_total")[0].2;
    assert!((now - 30_000 - ts).abs() < 2_000, "timestamp {ts} vs now {now}");
    cluster.shutdown();
}
