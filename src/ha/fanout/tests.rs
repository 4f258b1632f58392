//! The fan-out's pure parts: how rows of several copies compete, and how a round's answers
//! move the plan on.

use super::*;

fn pod(shard: u32, name: &str, timestamp: i64) -> WirePod {
    WirePod {
        shard,
        namespace: "ns".into(),
        name: name.into(),
        timestamp,
        window: 1,
        containers: vec![],
    }
}

fn served(rows: &ShardRows) -> Vec<(String, i64)> {
    let mut out: Vec<_> = rows.pods.values().map(|(_, p)| (p.name.clone(), p.timestamp)).collect();
    out.sort();
    out
}

#[test]
fn the_newest_copy_of_each_pod_wins_and_a_source_lacking_a_pod_hides_nothing() {
    let mut rows = ShardRows::default();
    // The standby: both pods, from the writer's previous push.
    rows.offer(1, vec![pod(0, "a", 10), pod(0, "b", 10)], vec![]);
    // The writer: a newer scrape, but it never scraped b's node.
    rows.offer(0, vec![pod(0, "a", 12)], vec![]);
    assert_eq!(served(&rows), [("a".into(), 12), ("b".into(), 10)]);
}

#[test]
fn on_equal_timestamps_the_better_placed_source_wins() {
    let mut rows = ShardRows::default();
    let second = WirePod {
        window: 2,
        ..pod(0, "b", 10)
    };
    rows.offer(2, vec![second], vec![]);
    rows.offer(1, vec![pod(0, "b", 10)], vec![]);
    assert_eq!(rows.pods.values().next().unwrap().1.window, 1);
}

fn candidates(sources: &[Source]) -> VecDeque<Candidate> {
    sources
        .iter()
        .map(|&source| Candidate { source, prompt: true })
        .collect()
}

#[test]
fn rows_of_shards_not_asked_are_ignored_and_deferred_shards_are_asked_again() {
    let a = Source::Remote(MemberId(1));
    let b = Source::Remote(MemberId(2));
    let mut plan = Plan::new([(0, candidates(&[a, b])), (1, candidates(&[a, b]))].into_iter());
    let asks = plan.round(0, false);
    assert_eq!(asks[&a], [0, 1], "the primary alone first");
    let answer = QueryResponse {
        // Shard 7 was never asked of `a`: a peer's bug or a lie must change nothing (nor panic).
        pods: vec![pod(0, "x", 5), pod(7, "intruder", 9)],
        deferred: vec![1],
        ..Default::default()
    };
    let mut taken = Taken::default();
    taken.take(&mut plan, vec![(a, vec![0, 1], Ok(answer))]);
    assert!(!plan.pending.contains_key(&0), "shard 0 has its authoritative answer");
    let asks = plan.round(1, false);
    assert_eq!(
        asks.get(&a).map(Vec::as_slice),
        Some(&[1][..]),
        "deferred: asked of `a` again"
    );
    let (out, missed) = taken.finish(2);
    assert_eq!(out.pods.len(), 1);
    assert_eq!(out.pods[0].name, "x");
    assert_eq!(missed, 1, "shard 1 has no answer yet");
}

#[test]
fn a_stale_answer_keeps_the_shard_pending_and_its_rows_are_never_served() {
    let a = Source::Remote(MemberId(1));
    let b = Source::Remote(MemberId(2));
    let mut plan = Plan::new([(0, candidates(&[a, b]))].into_iter());
    plan.round(0, false);
    let stale = QueryResponse {
        // A peer that sends rows for a shard it names stale: they still do not count.
        pods: vec![pod(0, "x", 5)],
        cold: vec![0],
        ..Default::default()
    };
    let mut taken = Taken::default();
    taken.take(&mut plan, vec![(a, vec![0], Ok(stale))]);
    assert!(plan.pending.contains_key(&0), "a stale copy does not end the search");
    let asks = plan.round(1, false);
    assert_eq!(asks[&b], [0]);
    taken.take(&mut plan, vec![(b, vec![0], Err("timed out".into()))]);
    let (out, missed) = taken.finish(1);
    assert_eq!(
        (out.pods.len(), missed),
        (0, 1),
        "left out (a partial answer): a stale copy may be older than what was served"
    );
}
