//! Properties of `assign` over random membership histories: valid owners, bounded load, minimal
//! movement on every change, determinism and idempotence.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Add),
        1 => any::<usize>().prop_map(Op::Remove),
        3 => any::<usize>().prop_map(Op::Down),
        3 => any::<usize>().prop_map(Op::Up),
    ]
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::sample::select(vec![1u32, 7, 64, 256]),
        1u8..=3,
        1usize..9,
        any::<u64>(),
    )
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
        prop_assert_eq!(
            owners.iter().collect::<BTreeSet<_>>().len(),
            owners.len(),
            "repeated: {:?}",
            owners
        );
    }
    let max = max_load(w.shards, up.len());
    for rank in 0..want.min(2) {
        let loads = loads(&w.assignment, &up, rank);
        prop_assert!(
            loads.iter().all(|l| *l <= max),
            "rank {} loads {:?} max {}",
            rank,
            loads,
            max
        );
    }
    Ok(())
}

/// Up members holding no shard in some rank of `assignment`: the only ones that may take
/// shards that no change touched (a newcomer, or a member a failover left without its share).
fn empty_handed(w: &World, assignment: &[Vec<MemberId>]) -> BTreeSet<MemberId> {
    let up = w.up();
    let ranks = usize::from(w.rf).min(up.len());
    let mut empty = BTreeSet::new();
    for rank in 0..ranks {
        let loads = loads(assignment, &up, rank);
        empty.extend(up.iter().zip(loads).filter(|(_, l)| *l == 0).map(|(m, _)| *m));
    }
    empty
}

/// Shards that did not involve `involved` keep their owners, unless an empty-handed member
/// takes a place in them (the primary's, if the primary changes).
fn check_untouched(
    w: &World,
    before: &[Vec<MemberId>],
    after: &[Vec<MemberId>],
    involved: Option<MemberId>,
) -> Result<(), TestCaseError> {
    let empty = empty_handed(w, before);
    for (shard, (b, a)) in before.iter().zip(after).enumerate() {
        if involved.is_some_and(|m| b.contains(&m)) || a == b {
            continue;
        }
        let taken = a
            .iter()
            .enumerate()
            .any(|(r, m)| b.get(r) != Some(m) && empty.contains(m));
        prop_assert!(taken, "shard {} moved: {:?}", shard, diff(before, after));
        prop_assert!(
            a.first() == b.first() || a.first().is_some_and(|m| empty.contains(m)),
            "shard {}: {:?} -> {:?}",
            shard,
            b,
            a
        );
    }
    Ok(())
}

/// (d) A lost member moves only the shards it owned, and its primaries go to their standbys
/// unless a standby would exceed its bound.
fn check_lost(w: &World, before: &[Vec<MemberId>], lost: MemberId) -> Result<(), TestCaseError> {
    check_untouched(w, before, &w.assignment, Some(lost))?;
    let (up, max) = (w.up(), max_load(w.shards, w.up().len()));
    let primaries = loads(&w.assignment, &up, 0);
    let full = |m: &MemberId| up.iter().position(|u| u == m).is_some_and(|i| primaries[i] == max);
    for (shard, (b, a)) in before.iter().zip(&w.assignment).enumerate() {
        if b[0] == lost && b.len() > 1 && a[0] != b[1] {
            prop_assert!(full(&b[1]), "shard {}: {:?} -> {:?}, standby not promoted", shard, b, a);
        }
    }
    Ok(())
}

/// (d) Primaries move only to members that held none: the gained member (or another member a
/// failover left empty), at most the bound each.
fn check_gained(w: &World, before: &[Vec<MemberId>], gained: MemberId) -> Result<(), TestCaseError> {
    let held_none = |m: &MemberId| before.iter().all(|o| o.first() != Some(m));
    let moved: Vec<_> = before
        .iter()
        .zip(&w.assignment)
        .filter(|(b, a)| b.first() != a.first())
        .collect();
    let receivers: BTreeSet<_> = moved.iter().map(|(_, a)| a[0]).collect();
    prop_assert!(
        receivers.iter().all(held_none),
        "primaries moved to {:?}, gained {}",
        receivers,
        gained
    );
    prop_assert!(
        moved.len() <= max_load(w.shards, w.up().len()) * receivers.len(),
        "{} moved",
        moved.len()
    );
    Ok(())
}

/// The shards whose owners differ, with both owner lists.
fn diff(a: &[Vec<MemberId>], b: &[Vec<MemberId>]) -> Vec<(usize, Vec<u64>, Vec<u64>)> {
    let ids = |o: &Vec<MemberId>| o.iter().map(|m| m.0 % 1000).collect();
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(s, (x, y))| (s, ids(x), ids(y)))
        .collect()
}

proptest! {
    #[test]
    fn every_history_stays_valid_and_moves_minimally(mut w in world(), ops in prop::collection::vec(op(), 1..32)) {
        check_valid(&w)?;
        for op in &ops {
            let before = w.assignment.clone();
            match w.step(op) {
                Change::Lost(id) => check_lost(&w, &before, id)?,
                Change::Gained(id) => check_gained(&w, &before, id)?,
                Change::Same => check_untouched(&w, &before, &w.assignment, None)?,
            }
            check_valid(&w)?;
            let again = assign(&w.assignment, &w.up(), w.shards, w.rf);
            check_untouched(&w, &w.assignment, &again, None)?;
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
