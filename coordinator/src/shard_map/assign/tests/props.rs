//! Properties of `assign` over random membership histories: valid owners, bounded load, minimal
//! movement on every change, determinism and idempotence.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Add),
        1 => any::<prop::sample::Index>().prop_map(Op::Remove),
        3 => any::<prop::sample::Index>().prop_map(Op::Down),
        3 => any::<prop::sample::Index>().prop_map(Op::Up),
    ]
}

fn world() -> impl Strategy<Value = World> {
    (prop::sample::select(vec![1u32, 7, 64, 256]), 1u8..=3, 1usize..9, any::<u64>())
        .prop_map(|(shards, rf, members, id_base)| World::new(shards, rf, members, id_base))
}

/// (a) `min(rf, up)` distinct Up owners per shard; (b) at most `ceil(S/n) + 1` primaries and
/// first standbys per member; (c) primary and standbys distinct.
fn check_valid(w: &World) -> Result<(), TestCaseError> {
    let up = w.up();
    let want = usize::from(w.rf).min(up.len());
    prop_assert_eq!(w.assignment.len(), w.shards as usize);
    for owners in &w.assignment {
        prop_assert_eq!(owners.len(), want, "owners {:?}", owners);
        prop_assert!(owners.iter().all(|m| up.contains(m)), "not Up: {:?}", owners);
        prop_assert_eq!(owners.iter().collect::<BTreeSet<_>>().len(), owners.len(), "repeated: {:?}", owners);
    }
    let max = max_load(w.shards, up.len());
    for rank in 0..want.min(2) {
        let loads = loads(&w.assignment, &up, rank);
        prop_assert!(loads.iter().all(|l| *l <= max), "rank {} loads {:?} max {}", rank, loads, max);
    }
    Ok(())
}

/// (d) A lost member moves only the shards it owned, and its primaries go to their standbys
/// unless a standby would exceed its bound (then it stays standby).
fn check_lost(w: &World, before: &[Vec<MemberId>], lost: MemberId) -> Result<(), TestCaseError> {
    let (up, max) = (w.up(), max_load(w.shards, w.up().len()));
    let primaries = loads(&w.assignment, &up, 0);
    let full = |m: &MemberId| up.iter().position(|u| u == m).is_some_and(|i| primaries[i] == max);
    for (shard, (b, a)) in before.iter().zip(&w.assignment).enumerate() {
        if !b.contains(&lost) {
            prop_assert_eq!(b, a, "shard {} did not involve {}", shard, lost);
        } else if b[0] == lost && b.len() > 1 && a[0] != b[1] {
            prop_assert!(full(&b[1]), "shard {}: {:?} -> {:?}, standby not promoted", shard, b, a);
            prop_assert!(a.contains(&b[1]), "shard {}: {:?} -> {:?}, standby dropped", shard, b, a);
        }
    }
    Ok(())
}

/// (d) Primaries move only to members that held none: the gained member (or another member a
/// failover left empty), at most the bound each.
fn check_gained(w: &World, before: &[Vec<MemberId>], gained: MemberId) -> Result<(), TestCaseError> {
    let held_none = |m: &MemberId| before.iter().all(|o| o.first() != Some(m));
    let moved: Vec<_> = before.iter().zip(&w.assignment).filter(|(b, a)| b.first() != a.first()).collect();
    let receivers: BTreeSet<_> = moved.iter().map(|(_, a)| a[0]).collect();
    prop_assert!(receivers.iter().all(held_none), "primaries moved to {:?}, gained {}", receivers, gained);
    prop_assert!(moved.len() <= max_load(w.shards, w.up().len()) * receivers.len(), "{} moved", moved.len());
    Ok(())
}

/// Whether no member holds nothing in a rank where it should take a share: then assigning
/// again changes nothing. (A failover leaves such a member be, so that only the failed
/// member's shards move; the next assignment gives it its share.)
fn settled(w: &World) -> bool {
    let up = w.up();
    let ranks = usize::from(w.rf).min(up.len());
    up.is_empty() || w.shards as usize / up.len() == 0 || (0..ranks).all(|r| !loads(&w.assignment, &up, r).contains(&0))
}

/// The shards whose owners differ, with both owner lists.
fn diff(a: &[Vec<MemberId>], b: &[Vec<MemberId>]) -> Vec<(usize, Vec<u64>, Vec<u64>)> {
    let ids = |o: &Vec<MemberId>| o.iter().map(|m| m.0 % 1000).collect();
    a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y).map(|(s, (x, y))| (s, ids(x), ids(y))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_history_stays_valid_and_moves_minimally(mut w in world(), ops in prop::collection::vec(op(), 1..24)) {
        check_valid(&w)?;
        for op in &ops {
            let (before, was_settled) = (w.assignment.clone(), settled(&w));
            match w.step(op) {
                Change::Lost(id) => check_lost(&w, &before, id)?,
                Change::Gained(id) => check_gained(&w, &before, id)?,
                Change::Same if was_settled => prop_assert!(before == w.assignment, "{:?}", diff(&before, &w.assignment)),
                Change::Same => {}
            }
            check_valid(&w)?;
            if settled(&w) {
                let again = assign(&w.assignment, &w.up(), w.shards, w.rf);
                prop_assert!(again == w.assignment, "not idempotent: {:?}", diff(&w.assignment, &again));
            }
        }
    }

    #[test]
    fn order_of_up_members_does_not_matter(
        w in world(),
        ops in prop::collection::vec(op(), 0..8),
        seed in any::<u64>(),
    ) {
        let mut w = w;
        ops.iter().for_each(|op| { w.step(op); });
        let mut shuffled = w.up();
        shuffled.sort_by_key(|m| super::super::splitmix64(m.0 ^ seed));
        shuffled.extend(w.up().first().copied());
        let previous = w.assignment.clone();
        prop_assert_eq!(assign(&previous, &shuffled, w.shards, w.rf), assign(&previous, &w.up(), w.shards, w.rf));
    }
}
