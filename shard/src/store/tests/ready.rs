//! metrics-server `pkg/storage/ready_test.go` (v0.9: ready needs a node AND a pod), changed
//! as `Readiness` says: what the kubelets report must be servable, and nothing more (k3s#14554).

use super::*;

#[test]
fn ready_with_node_metrics_alone_when_no_pod_is_reported() {
    let mut s = Store::new(RESOLUTION);
    store_node(&mut s, point(START, at(10), 10 * CORE_SECOND, 2 * MIB));
    assert!(!s.ready());
    store_node(&mut s, point(START, at(20), 20 * CORE_SECOND, 3 * MIB));
    assert!(s.ready());
}

/// A kubelet that reports pods but no `node_*` series (k3s#14554) leaves the replica ready once
/// the pods are servable.
#[test]
fn ready_with_pod_metrics_alone_when_no_node_point_is_reported() {
    let mut s = Store::new(RESOLUTION);
    store_pod(&mut s, &[("container1", point(START, at(120), CORE_SECOND, 4 * MIB))]);
    assert!(!s.ready());
    store_pod(
        &mut s,
        &[("container1", point(START, at(125), 6 * CORE_SECOND, 5 * MIB))],
    );
    assert!(s.ready());
}

/// As in metrics-server v0.9: servable nodes do not make a replica ready while the pods they
/// report still wait for their second point (`kubectl top pods` would show nothing).
#[test]
fn not_ready_while_reported_pods_wait_for_a_second_point() {
    let mut s = Store::new(RESOLUTION);
    let node = |t, cpu| point(START, at(t), cpu * CORE_SECOND, 2 * MIB);
    let long_running = |t| [("c", point(START, at(t), t as u64 * CORE_SECOND, MIB))];
    store_scrape(&mut s, "node1", Some(node(10, 10)), &[], at(10));
    store_scrape(
        &mut s,
        "node1",
        Some(node(20, 20)),
        &[("pod1", &long_running(200))],
        at(20),
    );
    assert!(s.readiness().nodes_servable && !s.ready());
    store_scrape(
        &mut s,
        "node1",
        Some(node(30, 30)),
        &[("pod1", &long_running(210))],
        at(30),
    );
    assert!(s.ready());
}

#[test]
fn readiness_merges_over_stores() {
    let nodes_only_waiting = Readiness {
        node_points: true,
        ..Readiness::default()
    };
    let pods_ready = Readiness {
        pods_held: true,
        pods_servable: true,
        ..Readiness::default()
    };
    assert!(!nodes_only_waiting.ready() && pods_ready.ready());
    assert!(!nodes_only_waiting.merge(pods_ready).ready(), "a reported kind waits");
    assert!(!Readiness::default().ready(), "nothing to serve");
}

#[test]
fn ready_when_both_node_and_pod_metrics_are_stored() {
    let mut s = Store::new(RESOLUTION);
    let first = [("container1", point(START, at(120), CORE_SECOND, 4 * MIB))];
    let node = point(START, at(10), 10 * CORE_SECOND, 2 * MIB);
    store_scrape(&mut s, "node1", Some(node), &[("pod1", &first)], at(120));
    assert!(!s.ready());

    let second = [("container1", point(START, at(125), 6 * CORE_SECOND, 5 * MIB))];
    let node = point(START, at(20), 20 * CORE_SECOND, 3 * MIB);
    store_scrape(&mut s, "node1", Some(node), &[("pod1", &second)], at(125));
    assert!(s.ready());
}
