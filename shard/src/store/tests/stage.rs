//! Staging and replay (`stage.rs`, `ops.rs`): an applied insert is exactly what inserting
//! gives, a withheld one changes nothing but renews, and a standby replaying a writer's ops in
//! order (on its own clock) holds and serves what the writer does.

use super::*;

fn scrape<'a>(node: Option<MetricsPoint>, pods: &'a [PodScrape<'a>]) -> NodeScrape<'a> {
    NodeScrape { node, pods }
}

/// An insert of `node` with pods of namespace `ns` (`(name, containers)`), stored at `now`.
fn insert(node: &str, point: Option<MetricsPoint>, pods: &[(&str, &[(&str, MetricsPoint)])], now: Nanos) -> Op {
    let pods: Vec<PodScrape> = pods
        .iter()
        .map(|(name, containers)| PodScrape {
            namespace: "ns",
            name,
            containers,
        })
        .collect();
    Op::Insert {
        node: node.into(),
        scrape: encode_scrape(scrape(point, &pods)),
        now,
    }
}

#[test]
fn an_applied_insert_is_what_inserting_gives() {
    let mut replayed = Store::new(secs(15));
    let mut reference = replayed.clone();
    for t in [0, 15] {
        let c = [("app", point(at(-3600), at(t), (t as u64 + 1) * CORE_SECOND, MIB))];
        let node = Some(point(0, at(t), (t as u64 + 5) * CORE_SECOND, MIB));
        replayed.apply(&insert("n1", node, &[("p", &c)], at(t))).unwrap();
        store_scrape(&mut reference, "n1", node, &[("p", &c)], at(t));
    }
    assert!(reference.pod("ns", "p").is_some());
    assert_eq!(replayed.pod("ns", "p"), reference.pod("ns", "p"));
    assert_eq!(replayed.node("n1"), reference.node("n1"));
    assert_eq!(replayed.snapshot(), reference.snapshot());
}

#[test]
fn pending_counts_staged_ops_that_renew_until_they_end() {
    let mut live = Store::new(secs(15));
    live.stage_begin();
    live.stage_begin();
    assert_eq!(live.pending(), 2);
    live.stage_end();
    live.stage_end();
    live.stage_end();
    assert_eq!(live.pending(), 0, "never below zero");
    assert!(insert("n1", None, &[], at(0)).renews());
    assert!(
        !Op::Expire {
            now: at(0),
            max_age: secs(30)
        }
        .renews()
    );
    assert!(!Op::Forget { nodes: vec![] }.renews());
}

#[test]
fn a_withheld_insert_keeps_the_served_points_and_renews_them_against_expiry() {
    let mut live = Store::new(secs(15));
    let c0 = [("app", point(at(-3600), at(0), 1_000, MIB))];
    let c15 = [("app", point(at(-3600), at(15), 2_000_000_000, MIB))];
    store_scrape(&mut live, "n1", Some(point(0, at(0), 5, MIB)), &[("p", &c0)], at(0));
    store_scrape(
        &mut live,
        "n1",
        Some(point(0, at(15), 9_000_000_000, MIB)),
        &[("p", &c15)],
        at(15),
    );
    let served = (live.pod("ns", "p"), live.node("n1"));
    assert!(served.0.is_some() && served.1.is_some());

    // The next scrape, at 30 s: no standby takes it, so it is not served, but the kubelet
    // answered, so what is served stays past the age at which it would have expired.
    let c30 = [("app", point(at(-3600), at(30), 4_000_000_000, MIB))];
    let op = insert(
        "n1",
        Some(point(0, at(30), 12_000_000_000, MIB)),
        &[("p", &c30)],
        at(30),
    );
    live.withhold(&op);
    assert_eq!(
        (live.pod("ns", "p"), live.node("n1")),
        served,
        "the withheld scrape is not served"
    );
    live.expire(at(50), secs(30));
    assert_eq!(
        (live.pod("ns", "p"), live.node("n1")),
        served,
        "received 15 s ago by the store, renewed at 30 s: kept"
    );
    live.expire(at(61), secs(30));
    assert_eq!(live.node("n1"), None, "renewed, not kept for good");
}

/// The ops of a writer over a few intervals: two nodes, a pod moving between them, a node
/// whose kubelet fails long enough for expiry, a node no longer scraped.
fn history() -> Vec<Op> {
    let c = |t: i64, cpu: u64| [("app", point(at(-3600), at(t), cpu * CORE_SECOND, MIB))];
    let node = |t: i64| Some(point(0, at(t), (t as u64 + 1) * CORE_SECOND, MIB));
    let max_age = secs(30);
    let mut ops = Vec::new();
    for t in [0, 15, 30] {
        ops.push(insert(
            "n1",
            node(t),
            &[("a", &c(t, t as u64)), ("moving", &c(t, 1 + t as u64))],
            at(t),
        ));
        ops.push(insert("n2", node(t), &[("b", &c(t, 2 * t as u64))], at(t)));
        ops.push(insert("n3", node(t), &[("c", &c(t, 3 * t as u64))], at(t)));
        ops.push(Op::Expire { now: at(t), max_age });
    }
    // n2's kubelet stops answering; `moving` is re-created on n3.
    for t in [45, 60, 75] {
        ops.push(insert("n1", node(t), &[("a", &c(t, t as u64))], at(t)));
        ops.push(insert(
            "n3",
            node(t),
            &[("c", &c(t, 3 * t as u64)), ("moving", &c(t, 2))],
            at(t),
        ));
        ops.push(Op::Expire { now: at(t), max_age });
    }
    ops.push(Op::Forget {
        nodes: vec!["n1".into()],
    });
    ops.push(insert("n2", node(90), &[("b", &c(90, 180))], at(90)));
    ops
}

#[test]
fn a_standby_replaying_the_writers_ops_on_its_own_clock_serves_what_the_writer_serves() {
    let shift = secs(7) + 123;
    let mut writer = Store::new(secs(15));
    let mut standby = Store::new(secs(15));
    for (i, op) in history().into_iter().enumerate() {
        writer.apply(&op).unwrap();
        let mut shifted = op.clone();
        shifted.shift(shift);
        standby.apply(&shifted).unwrap();
        // Sorted: each store's maps iterate in their own random order.
        let served = |s: &Store| {
            let mut pods: Vec<_> = s
                .pods()
                .map(|(ns, name, m)| (ns.to_string(), name.to_string(), m))
                .collect();
            let mut nodes: Vec<_> = s.nodes().map(|(n, m)| (n.to_string(), m)).collect();
            pods.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            nodes.sort_by(|a, b| a.0.cmp(&b.0));
            (pods, nodes)
        };
        assert_eq!(served(&standby), served(&writer), "after op {i}: {op:?}");
    }
    let mut expected = writer.snapshot();
    expected.shift_received(shift);
    let mut got = standby.snapshot();
    expected.nodes.sort_by(|a, b| a.0.cmp(&b.0));
    got.nodes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, expected, "the same copy, received times on the standby's clock");
    assert!(
        writer.pod("ns", "b").is_none(),
        "n2 expired before its kubelet came back"
    );
    assert!(writer.pod("ns", "a").is_none(), "n1 is no longer scraped");
}

#[test]
fn a_restore_takes_only_a_copy_that_is_still_newer_when_applied() {
    let mut holder = Store::new(secs(15));
    store_scrape(&mut holder, "n1", Some(point(0, at(30), 5, MIB)), &[], at(30));
    let copy = holder.snapshot_node("n1").unwrap();
    let mut writer = Store::new(secs(15));
    store_scrape(&mut writer, "n1", Some(point(0, at(15), 4, MIB)), &[], at(15));
    let op = Op::Restore {
        node: "n1".into(),
        copy,
    };
    assert!(op.renews());
    let mut newer = writer.clone();
    store_scrape(&mut newer, "n1", Some(point(0, at(45), 6, MIB)), &[], at(45));
    writer.apply(&op).unwrap();
    assert_eq!(
        writer.snapshot_node("n1").and_then(|n| n.last).map(|p| p.timestamp),
        Some(at(30))
    );
    newer.apply(&op).unwrap();
    assert_eq!(
        newer.snapshot_node("n1").and_then(|n| n.last).map(|p| p.timestamp),
        Some(at(45)),
        "its own scrape got there first"
    );
}

#[test]
fn an_undecodable_insert_is_refused_and_changes_nothing() {
    let mut s = Store::new(secs(15));
    store_scrape(&mut s, "n1", Some(point(0, at(0), 5, MIB)), &[], at(0));
    let before = s.snapshot();
    let bad = Op::Insert {
        node: "n1".into(),
        scrape: bytes::Bytes::from_static(&[0xff; 7]),
        now: at(15),
    };
    assert!(bad.validate().is_err());
    assert!(s.apply(&bad).is_err());
    assert_eq!(s.snapshot(), before);
}

#[test]
fn shifting_received_moves_every_time() {
    let mut s = Store::new(secs(15));
    let pod = [("app", point(at(-3600), at(0), 5, MIB))];
    store_scrape(&mut s, "n1", None, &[("p", &pod)], at(100));
    let mut copy = s.snapshot();
    copy.shift_received(-40);
    let node = &copy.nodes[0].1;
    assert_eq!(node.received, at(100) - 40);
    assert_eq!(node.pods[0].received, at(100) - 40);
}

#[test]
fn a_stale_node_is_not_served_until_its_next_scrape_and_travels_with_copies() {
    let mut s = Store::new(secs(15));
    let pod = |t: i64| [("app", point(at(-3600), at(t), (t as u64 + 1) * CORE_SECOND, MIB))];
    for t in [0, 15] {
        store_scrape(
            &mut s,
            "n1",
            Some(point(0, at(t), (t as u64 + 1) * CORE_SECOND, MIB)),
            &[("p", &pod(t))],
            at(t),
        );
        store_scrape(
            &mut s,
            "n2",
            Some(point(0, at(t), (t as u64 + 1) * CORE_SECOND, MIB)),
            &[("q", &pod(t))],
            at(t),
        );
    }
    assert!(s.pod("ns", "p").is_some() && s.node("n1").is_some());
    s.mark_stale(["n1"]);
    assert_eq!(s.pod("ns", "p"), None, "the stale node's pods are not served");
    assert_eq!(s.node("n1"), None);
    assert_eq!(s.pods().count(), 1);
    assert_eq!(s.nodes().count(), 1);
    assert!(s.pod("ns", "q").is_some(), "other nodes are untouched");

    let mut copy = Store::new(secs(15));
    copy.replace_from(s.snapshot(), Missing::Forget);
    assert_eq!(copy.pod("ns", "p"), None, "the mark travels with a whole copy");
    assert!(copy.pod("ns", "q").is_some());

    store_scrape(
        &mut s,
        "n1",
        Some(point(0, at(30), 31 * CORE_SECOND, MIB)),
        &[("p", &pod(30))],
        at(30),
    );
    assert!(!s.has_stale());
    assert_eq!(
        s.pod("ns", "p").map(|p| p.timestamp),
        Some(at(30)),
        "the next scrape renews it"
    );
}
