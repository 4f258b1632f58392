//! Behaviour metrics-server does not have: per-node updates, failed scrapes, expiry, pods that
//! move between nodes, removal, deterministic container order and in-place updates.

use super::*;

const INTERVAL: Nanos = 15 * NANOS_PER_SECOND;

/// A long-running container's point at `at(t)` (started an hour before `START`), using 0.1 core.
fn busy(t: i64) -> MetricsPoint {
    point(at(-3600), at(t), (t as u64 + 1000) * CORE_SECOND / 10, 4 * MIB)
}

/// A node point at `at(t)`, using 1 core.
fn node_at(t: i64) -> MetricsPoint {
    point(0, at(t), (t as u64 + 1000) * CORE_SECOND, 2 * MIB)
}

/// A scrape of `node` at `at(t)` with one container "c" per listed pod.
fn scrape(s: &mut Store, node: &str, t: i64, pods: &[&str]) {
    let container = [("c", busy(t))];
    let pods: Vec<(&str, &[(&str, MetricsPoint)])> = pods.iter().map(|name| (*name, &container[..])).collect();
    store_scrape(s, node, Some(node_at(t)), &pods, at(t));
}

fn held_pods(s: &Store) -> Vec<(String, String)> {
    let mut pods: Vec<_> = s
        .pods()
        .map(|(ns, name, _)| (ns.to_string(), name.to_string()))
        .collect();
    pods.sort();
    pods
}

#[test]
fn failed_scrape_keeps_serving_and_next_scrape_spans_the_gap() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod1"]);
    scrape(&mut s, "node1", 15, &["pod1"]);
    let (node, pod) = (s.node("node1").unwrap(), s.pod("ns", "pod1").unwrap());

    // One failed scrape (the store hears nothing of it): nothing is hidden at the next expiry
    // (metrics-server would hide node and pods at once).
    s.expire(at(30), 2 * INTERVAL);
    assert_eq!(s.node("node1"), Some(node));
    assert_eq!(s.pod("ns", "pod1"), Some(pod));

    // The next good scrape pairs with the last good one.
    scrape(&mut s, "node1", 45, &["pod1"]);
    assert_eq!(s.node("node1").unwrap().window, secs(30));
    let pod = s.pod("ns", "pod1").unwrap();
    assert_eq!((pod.timestamp, pod.window), (at(45), secs(30)));
    assert_eq!(pod.containers[0].1.cpu_nanocores, CORE_SECOND / 10);
}

#[test]
fn expiry_drops_points_older_than_max_age() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod1"]);
    scrape(&mut s, "node1", 15, &["pod1"]);
    scrape(&mut s, "node2", 40, &["pod2"]);

    // Exactly 2 x resolution old: still served.
    s.expire(at(45), 2 * INTERVAL);
    assert!(s.node("node1").is_some() && s.pod("ns", "pod1").is_some());

    // Older: node1 and its pod are dropped, node2 (stored later) stays.
    s.expire(at(46), 2 * INTERVAL);
    assert_eq!(s.node("node1"), None);
    assert_eq!(s.pod("ns", "pod1"), None);
    assert_eq!(s.node_of("ns", "pod1"), None);
    assert_eq!(s.snapshot_node("node1"), None);
    assert_eq!(s.held_counts(), (1, 1));
    assert_eq!(s.node_of("ns", "pod2"), Some("node2"));
}

#[test]
fn pods_absent_from_a_nodes_next_scrape_are_forgotten() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod-a", "pod-b"]);
    scrape(&mut s, "node2", 0, &["pod-c"]);
    scrape(&mut s, "node1", 15, &["pod-a", "pod-b"]);
    scrape(&mut s, "node2", 15, &["pod-c"]);
    assert_eq!(s.pods().count(), 3);

    // node1 no longer reports pod-b; node2's pod is untouched.
    scrape(&mut s, "node1", 30, &["pod-a"]);
    assert_eq!(s.node_of("ns", "pod-b"), None);
    assert_eq!(
        held_pods(&s),
        [("ns".into(), "pod-a".into()), ("ns".into(), "pod-c".into())]
    );
    assert_eq!(s.held_counts(), (2, 2));

    // pod-b reappears: a new entry that needs two scrapes again, like metrics-server.
    scrape(&mut s, "node1", 45, &["pod-a", "pod-b"]);
    assert_eq!(s.pod("ns", "pod-b"), None);
    assert!(s.pod("ns", "pod-a").is_some());
}

#[test]
fn pod_moved_to_another_node_keeps_its_points_when_the_container_rule_allows() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod1"]);
    scrape(&mut s, "node1", 15, &["pod1"]);

    // node2 reports the same container (started before its last point): last report wins and
    // the node rule pairs the new point with node1's.
    scrape(&mut s, "node2", 30, &["pod1"]);
    assert_eq!(s.node_of("ns", "pod1"), Some("node2"));
    let pod = s.pod("ns", "pod1").unwrap();
    assert_eq!((pod.timestamp, pod.window), (at(30), secs(15)));

    // node1's next scrape no longer lists it, but node2 owns it now: not forgotten.
    scrape(&mut s, "node1", 45, &[]);
    assert!(s.pod("ns", "pod1").is_some());
    assert_eq!(s.pods_on("node1").count(), 0);
    assert_eq!(
        s.pods_on("node2").map(|(_, name, _)| name).collect::<Vec<_>>(),
        ["pod1"]
    );

    // Re-created on node3 (started after the last point, 5 s old): no previous point.
    let recreated = [("c", point(at(55), at(60), CORE_SECOND, MIB))];
    store_scrape(&mut s, "node3", Some(node_at(60)), &[("pod1", &recreated)], at(60));
    assert_eq!(s.node_of("ns", "pod1"), Some("node3"));
    assert_eq!(s.pod("ns", "pod1"), None);
}

#[test]
fn start_time_going_backwards_after_a_move_skips_the_container() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod1"]);
    // Reported by node2 with an older start time (a StatefulSet pod from an old node).
    let stale = [("c", point(at(-4000), at(10), 2000 * CORE_SECOND, MIB))];
    store_scrape(&mut s, "node2", None, &[("pod1", &stale)], at(10));
    assert_eq!(s.pod("ns", "pod1"), None, "whole-pod accuracy: no container, no pod");
}

#[test]
fn duplicates_within_one_scrape_keep_the_first_report() {
    let mut s = Store::new(INTERVAL);
    let first = [("c", busy(0)), ("c", point(at(-3600), at(0), 0, 1))];
    let dup = [("c", point(at(-3600), at(0), 0, 7))];
    store_scrape(&mut s, "node1", None, &[("pod1", &first), ("pod1", &dup)], at(0));
    let second = [("c", busy(15))];
    store_scrape(&mut s, "node1", None, &[("pod1", &second)], at(15));
    let pod = s.pod("ns", "pod1").unwrap();
    assert_eq!(pod.containers.len(), 1);
    assert_eq!(pod.containers[0].1, usage(CORE_SECOND / 10, 4 * MIB));
}

#[test]
fn remove_node_forgets_its_pods_but_not_pods_another_node_reports_now() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod-a", "pod-b"]);
    scrape(&mut s, "node2", 5, &["pod-b", "pod-c"]);
    s.remove_node("node1");
    assert_eq!(s.node_of("ns", "pod-a"), None);
    assert_eq!(s.node_of("ns", "pod-b"), Some("node2"));
    assert_eq!(s.held_counts(), (1, 2));
    s.remove_node("node2");
    assert_eq!(s.held_counts(), (0, 0));
}

#[test]
fn scrape_without_node_point_forgets_the_node_but_serves_its_pods() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod1"]);
    scrape(&mut s, "node1", 15, &["pod1"]);
    let container = [("c", busy(30))];
    store_scrape(&mut s, "node1", None, &[("pod1", &container)], at(30));
    assert_eq!(s.node("node1"), None);
    assert!(s.pod("ns", "pod1").is_some());
}

#[test]
fn containers_are_sorted_by_name_and_names_are_not_reallocated() {
    let mut s = Store::new(INTERVAL);
    let order = ["zeta", "alpha", "mu"];
    let first = order.map(|name| (name, busy(0)));
    store_scrape(&mut s, "node1", None, &[("pod1", &first)], at(0));
    let second = order.map(|name| (name, busy(15)));
    store_scrape(&mut s, "node1", None, &[("pod1", &second)], at(15));
    let one = s.pod("ns", "pod1").unwrap();
    assert_eq!(names(&one), ["alpha", "mu", "zeta"]);

    let third = order.map(|name| (name, busy(30)));
    store_scrape(&mut s, "node1", None, &[("pod1", &third)], at(30));
    let two = s.pod("ns", "pod1").unwrap();
    assert!(
        one.containers
            .iter()
            .zip(&two.containers)
            .all(|((a, _), (b, _))| Arc::ptr_eq(a, b))
    );
}

#[test]
fn a_missing_container_hides_its_pod_for_one_window_then_is_forgotten() {
    let mut s = Store::new(INTERVAL);
    let both = |t| [("app", busy(t)), ("sidecar", busy(t))];
    let app = |t| [("app", busy(t))];
    store_scrape(&mut s, "node1", None, &[("pod1", &both(0))], at(0));
    store_scrape(&mut s, "node1", None, &[("pod1", &both(15))], at(15));
    assert_eq!(names(&s.pod("ns", "pod1").unwrap()), ["app", "sidecar"]);

    // This window has no sample of the sidecar: left out, not served as the app alone.
    store_scrape(&mut s, "node1", None, &[("pod1", &app(30))], at(30));
    assert_eq!(s.pod("ns", "pod1"), None);
    assert_eq!(s.servable_counts().1, 1, "the app still has its previous point");

    // Back again: its last point (15 s) pairs with the new one, over the gap.
    store_scrape(&mut s, "node1", None, &[("pod1", &both(45))], at(45));
    let pod = s.pod("ns", "pod1").unwrap();
    assert_eq!(names(&pod), ["app", "sidecar"]);
    assert_eq!((pod.timestamp, pod.window), (at(45), secs(15)));

    // Gone for good (a finished container): one window out, then the pod as it now is.
    store_scrape(&mut s, "node1", None, &[("pod1", &app(60))], at(60));
    assert_eq!(s.pod("ns", "pod1"), None);
    store_scrape(&mut s, "node1", None, &[("pod1", &app(75))], at(75));
    assert_eq!(names(&s.pod("ns", "pod1").unwrap()), ["app"]);

    // A container the pod did not have has no previous point: the whole pod waits a scrape.
    store_scrape(&mut s, "node1", None, &[("pod1", &both(90))], at(90));
    assert_eq!(s.pod("ns", "pod1"), None);
}

#[test]
fn container_without_own_prev_gets_none_on_a_repeated_point() {
    // metrics-server would pair `late` with Go's zero point here, because `fresh` has a prev.
    let mut s = Store::new(RESOLUTION);
    let first = [("fresh", point(START, at(20), CORE_SECOND, MIB)), ("late", busy(100))];
    store_scrape(&mut s, "node1", None, &[("pod1", &first)], at(100));
    store_scrape(&mut s, "node1", None, &[("pod1", &first)], at(115));
    assert_eq!(s.servable_counts(), (0, 1));
    assert_eq!(s.pod("ns", "pod1"), None);
}

#[test]
fn list_iterators_cover_namespaces_and_nodes() {
    let mut s = Store::new(INTERVAL);
    let c = |t| [("c", busy(t))];
    for t in [0, 15] {
        let pods = [
            PodScrape {
                namespace: "a",
                name: "p1",
                containers: &c(t),
            },
            PodScrape {
                namespace: "b",
                name: "p2",
                containers: &c(t),
            },
        ];
        s.insert_node(
            "node1",
            NodeScrape {
                node: Some(node_at(t)),
                pods: &pods,
            },
            at(t),
        );
        let pods = [PodScrape {
            namespace: "a",
            name: "p3",
            containers: &c(t),
        }];
        s.insert_node(
            "node2",
            NodeScrape {
                node: None,
                pods: &pods,
            },
            at(t),
        );
    }
    let mut in_a: Vec<_> = s.pods_in("a").map(|(name, _)| name).collect();
    in_a.sort();
    assert_eq!(in_a, ["p1", "p3"]);
    assert_eq!(s.pods_in("c").count(), 0);
    let mut on_1: Vec<_> = s.pods_on("node1").map(|(ns, name, _)| (ns, name)).collect();
    on_1.sort();
    assert_eq!(on_1, [("a", "p1"), ("b", "p2")]);
    assert_eq!(s.pods_on("node3").count(), 0);
    assert_eq!(s.pods().count(), 3);
    assert_eq!(s.nodes().map(|(name, _)| name).collect::<Vec<_>>(), ["node1"]);
    assert_eq!(s.servable_counts(), (1, 3));
    assert!(s.ready());
}

#[test]
fn container_names_are_shared_across_pods_and_released_by_expire() {
    let mut s = Store::new(INTERVAL);
    scrape(&mut s, "node1", 0, &["pod1", "pod2"]);
    scrape(&mut s, "node1", 15, &["pod1", "pod2"]);
    let (one, two) = (s.pod("ns", "pod1").unwrap(), s.pod("ns", "pod2").unwrap());
    assert!(Arc::ptr_eq(&one.containers[0].0, &two.containers[0].0));
    assert_eq!(s.names.len(), 1);
    drop((one, two));

    s.remove_node("node1");
    s.expire(at(15), 2 * INTERVAL);
    assert!(s.names.is_empty());
}
