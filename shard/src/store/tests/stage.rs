//! Staging (`stage.rs`): a preview publishes exactly what inserting gives, a dropped stage changes
//! nothing, a standby's update never moves a node back, received times move onto another clock.

use super::*;

fn scrape<'a>(node: Option<MetricsPoint>, pods: &'a [PodScrape<'a>]) -> NodeScrape<'a> {
    NodeScrape { node, pods }
}

#[test]
fn a_preview_is_what_inserting_gives_and_changes_nothing_until_published() {
    let mut live = Store::new(secs(15));
    let mut reference = live.clone();
    let first = [("app", point(at(-3600), at(0), 1_000, MIB))];
    store_scrape(&mut live, "n1", Some(point(0, at(0), 5, MIB)), &[("p", &first)], at(0));
    store_scrape(
        &mut reference,
        "n1",
        Some(point(0, at(0), 5, MIB)),
        &[("p", &first)],
        at(0),
    );

    let second = [("app", point(at(-3600), at(15), 2_000_000_000, MIB))];
    let pods = [PodScrape {
        namespace: "ns",
        name: "p",
        containers: &second,
    }];
    let node = Some(point(0, at(15), 9_000_000_000, MIB));
    let before = live.snapshot_node("n1");
    let staged = live.preview_node("n1", scrape(node, &pods), at(15));
    assert_eq!(live.snapshot_node("n1"), before, "a preview changes nothing");
    assert_eq!(live.pod("ns", "p"), None, "one point only until publication");
    live.stage_begin();
    assert_eq!(live.pending(), 1);
    live.publish_node("n1", Some(staged));
    assert_eq!(live.pending(), 0);

    reference.insert_node("n1", scrape(node, &pods), at(15));
    assert!(reference.pod("ns", "p").is_some());
    assert_eq!(live.pod("ns", "p"), reference.pod("ns", "p"));
    assert_eq!(live.node("n1"), reference.node("n1"));
}

#[test]
fn a_dropped_stage_leaves_the_entry_as_it_was() {
    let mut live = Store::new(secs(15));
    store_scrape(&mut live, "n1", Some(point(0, at(0), 5, MIB)), &[], at(0));
    let before = live.snapshot_node("n1");
    let staged = live.preview_node("n1", scrape(Some(point(0, at(15), 9, MIB)), &[]), at(15));
    live.stage_begin();
    live.publish_node("n1", None);
    assert_ne!(Some(staged), before);
    assert_eq!(live.snapshot_node("n1"), before);
    assert_eq!(live.pending(), 0);
}

#[test]
fn a_withheld_stage_keeps_the_served_points_and_renews_them_against_expiry() {
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
    let pods = [PodScrape {
        namespace: "ns",
        name: "p",
        containers: &c30,
    }];
    let staged = live.preview_node("n1", scrape(Some(point(0, at(30), 12_000_000_000, MIB)), &pods), at(30));
    live.stage_begin();
    live.withhold_node("n1", staged.received);
    assert_eq!(live.pending(), 0);
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

#[test]
fn an_update_never_replaces_a_newer_copy_and_forgets_what_the_writer_forgot() {
    let mut standby = Store::new(secs(15));
    store_scrape(&mut standby, "n1", Some(point(0, at(30), 5, MIB)), &[], at(30));
    store_scrape(&mut standby, "n2", Some(point(0, at(30), 5, MIB)), &[], at(30));
    let mut writer = Store::new(secs(15));
    store_scrape(&mut writer, "n1", Some(point(0, at(15), 5, MIB)), &[], at(15));
    let old = writer.snapshot_node("n1").unwrap();
    standby.apply_update(vec![("n1".into(), old)], &["n2".into()]);
    assert_eq!(
        standby.snapshot_node("n1").and_then(|n| n.last).map(|p| p.timestamp),
        Some(at(30)),
        "the newer copy stays"
    );
    assert!(standby.snapshot_node("n2").is_none());
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
