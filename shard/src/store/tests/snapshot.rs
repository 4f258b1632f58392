//! Snapshots hand a node's points to another replica: the restored store must answer exactly as
//! the original, now and after further scrapes.

use super::*;

type Answers = (
    Vec<(String, NodeMetrics)>,
    Vec<(String, String, PodMetrics)>,
    (usize, usize),
    bool,
);

fn answers(s: &Store) -> Answers {
    let mut nodes: Vec<_> = s.nodes().map(|(name, m)| (name.to_string(), m)).collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut pods: Vec<_> = s
        .pods()
        .map(|(ns, name, m)| (ns.to_string(), name.to_string(), m))
        .collect();
    pods.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    (nodes, pods, s.servable_counts(), s.ready())
}

/// Scrape `round` (15 s apart) of three nodes in various states: node1 steady with a pod whose
/// CPU counter goes backwards in round 1, node2 with a fresh container and no node point in round
/// 0, node3 reporting the same point twice.
fn scrape_round(s: &mut Store, round: u64) {
    let t = 15 * round as i64;
    let cpu = |per_s: u64| (round + 10) * per_s;
    let start = at(-3600);
    let steady = [
        ("app", point(start, at(t), cpu(CORE_SECOND), MIB)),
        ("log", point(start, at(t), cpu(7), 2)),
    ];
    let backwards = [("app", point(start, at(t), if round == 1 { 0 } else { cpu(3) }, MIB))];
    let node1 = Some(point(0, at(t), cpu(4 * CORE_SECOND), 8 * MIB));
    store_scrape(
        s,
        "node1",
        node1,
        &[("steady", &steady), ("backwards", &backwards)],
        at(t),
    );

    let fresh = [("app", point(at(-20), at(t), cpu(CORE_SECOND / 2), MIB))];
    let node2 = (round > 0).then(|| point(0, at(t), cpu(CORE_SECOND), MIB));
    store_scrape(s, "node2", node2, &[("fresh", &fresh)], at(t));

    let repeated = point(0, at(0), 5, 5);
    store_scrape(s, "node3", Some(repeated), &[("steady-3", &steady)], at(t));
}

fn restored_copy(s: &Store) -> Store {
    let mut copy = Store::new(s.resolution());
    for node in ["node1", "node2", "node3"] {
        let snapshot = s.snapshot_node(node).unwrap();
        let wire = serde_json::to_string(&snapshot).unwrap();
        copy.restore_node(node, serde_json::from_str(&wire).unwrap());
    }
    copy
}

#[test]
fn restored_store_serves_identical_answers() {
    let mut original = Store::new(RESOLUTION);
    for round in 0..3 {
        scrape_round(&mut original, round);
        let copy = restored_copy(&original);
        assert_eq!(answers(&copy), answers(&original), "round {round}");
        assert_eq!(copy.held_counts(), original.held_counts());
        assert_eq!(copy.node_of("ns", "fresh"), Some("node2"));
        if round == 1 {
            assert_eq!(copy.pod("ns", "backwards"), None, "whole-pod accuracy");
        }
    }
    // Sanity: the scenario exercises served, unserved and error cases.
    let (nodes, pods, counts, ready) = answers(&original);
    assert_eq!(nodes.len(), 2);
    assert_eq!(pods.len(), 4);
    assert!(ready && counts.1 > 0);
}

#[test]
fn restored_store_continues_identically_after_more_scrapes() {
    let mut original = Store::new(RESOLUTION);
    scrape_round(&mut original, 0);
    scrape_round(&mut original, 1);
    let mut copy = restored_copy(&original);
    for round in 2..5 {
        scrape_round(&mut original, round);
        scrape_round(&mut copy, round);
        assert_eq!(answers(&copy), answers(&original), "round {round}");
    }
    copy.expire(at(60) + 1, secs(30));
    original.expire(at(60) + 1, secs(30));
    assert_eq!(answers(&copy), answers(&original));
}

#[test]
fn restore_replaces_the_nodes_entry_but_keeps_newer_reports_from_other_nodes() {
    let mut s = Store::new(RESOLUTION);
    let c = |t| [("c", point(START, at(t), 10 * CORE_SECOND + t as u64, MIB))];
    store_scrape(&mut s, "node1", None, &[("old", &c(0)), ("moved", &c(0))], at(0));
    let handed = s.snapshot_node("node1").unwrap();
    assert_eq!(handed.pods.len(), 2);

    // Meanwhile node1 reports a new pod, and node2 reports `moved` more recently.
    store_scrape(&mut s, "node1", None, &[("new", &c(10))], at(10));
    store_scrape(&mut s, "node2", None, &[("moved", &c(10))], at(10));

    s.restore_node("node1", handed);
    assert_eq!(s.node_of("ns", "new"), None);
    assert_eq!(s.node_of("ns", "old"), Some("node1"));
    assert_eq!(s.node_of("ns", "moved"), Some("node2"));
    assert_eq!(s.snapshot_node("node1").unwrap().pods.len(), 1);
    assert_eq!(s.snapshot_node("node9"), None);
}

#[test]
fn restore_tolerates_unsorted_and_duplicate_containers() {
    let mut s = Store::new(RESOLUTION);
    let c = |name: &str, cpu| ContainerSnapshot {
        name: name.into(),
        last: point(START, at(15), cpu, MIB),
        prev: Some(point(START, at(0), 0, MIB)),
    };
    let pod = PodSnapshot {
        namespace: "ns".into(),
        name: "pod1".into(),
        received: at(15),
        containers: vec![c("b", 15 * CORE_SECOND), c("a", 30 * CORE_SECOND), c("b", 0)],
    };
    s.restore_node(
        "node1",
        NodeSnapshot {
            received: at(15),
            last: None,
            prev: None,
            pods: vec![pod],
        },
    );
    let served = s.pod("ns", "pod1").unwrap();
    assert_eq!(
        served.containers,
        [
            ("a".into(), usage(2 * CORE_SECOND, MIB)),
            ("b".into(), usage(CORE_SECOND, MIB))
        ]
    );
}

/// A new primary's first scrape may land before the old primary's hand-over: the hand-over must
/// still make the pods servable at once, and a later scrape continues from it.
#[test]
fn hand_over_wins_over_a_lone_newer_first_point() {
    let mut old = Store::new(15 * NANOS_PER_SECOND);
    scrape_round(&mut old, 0);
    scrape_round(&mut old, 1);
    let mut new = Store::new(15 * NANOS_PER_SECOND);
    scrape_round(&mut new, 2);
    assert!(
        new.pod("ns", "steady").is_none() && old.pod("ns", "steady").is_some(),
        "one point is not servable"
    );
    new.replace_from(old.snapshot(), Missing::Forget);
    assert_eq!(answers(&new), answers(&old), "the hand-over is taken whole");
    scrape_round(&mut new, 2);
    scrape_round(&mut old, 2);
    assert_eq!(answers(&new), answers(&old));

    let mut newer = Store::new(15 * NANOS_PER_SECOND);
    for round in 0..4 {
        scrape_round(&mut newer, round);
    }
    let before = answers(&newer);
    newer.replace_from(old.snapshot(), Missing::Forget);
    assert_eq!(answers(&newer), before, "a servable newer copy is kept");
}

/// A replica back from a freeze scrapes once more before it learns it lost the shard, and hands
/// over a lone point newer than the new primary's servable copy: the servable copy is kept, or
/// the pods would vanish everywhere until the next scrape.
#[test]
fn a_servable_copy_is_kept_over_a_newer_lone_point() {
    let mut primary = Store::new(15 * NANOS_PER_SECOND);
    scrape_round(&mut primary, 0);
    scrape_round(&mut primary, 1);
    let mut resumed = Store::new(15 * NANOS_PER_SECOND);
    scrape_round(&mut resumed, 2);
    let before = answers(&primary);
    assert!(before.1.iter().any(|(_, name, _)| name == "steady"));
    primary.replace_from(resumed.snapshot(), Missing::Keep);
    assert_eq!(answers(&primary), before, "the lone newer point is not taken");
    scrape_round(&mut primary, 2);
    assert!(
        primary.pod("ns", "steady").is_some(),
        "the next scrape continues the window"
    );
}

/// A hand-over from a holder that never scraped one of the shard's nodes (it held the shard for
/// less than a cycle, or its node list lagged) must not wipe that node: its pods would vanish
/// until two more scrapes. The primary's regular push does forget nodes the shard lost.
#[test]
fn a_hand_over_keeps_nodes_the_sender_does_not_have_and_a_push_forgets_them() {
    let mut receiver = Store::new(15 * NANOS_PER_SECOND);
    scrape_round(&mut receiver, 0);
    scrape_round(&mut receiver, 1);
    let before = answers(&receiver);
    let empty = Store::new(15 * NANOS_PER_SECOND);
    assert!(receiver.replace_from(empty.snapshot(), Missing::Keep).is_empty());
    assert_eq!(answers(&receiver), before);
    let gone = receiver.replace_from(empty.snapshot(), Missing::Forget);
    assert!(!gone.is_empty());
    assert!(
        answers(&receiver).1.is_empty(),
        "a push from the primary is the shard's node list"
    );
}
