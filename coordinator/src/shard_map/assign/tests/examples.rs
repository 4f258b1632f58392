//! Small, readable cases of `assign`, and the distribution of 256 shards over 3 members.

use super::*;

fn ids(n: u64) -> Vec<MemberId> {
    (1..=n).map(MemberId).collect()
}

#[test]
fn score_never_changes() {
    // The assignment is part of the replicated state's meaning: pin the hash.
    assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    assert_eq!(score(0, MemberId(1)), splitmix64(splitmix64(1)));
    assert_eq!(score(7, MemberId(42)), splitmix64(splitmix64(42) ^ 7));
    assert_ne!(score(0, MemberId(1)), score(1, MemberId(1)));
}

#[test]
fn no_member_up_means_no_owners() {
    let a = assign(&[], &[], 4, 2);
    assert_eq!(a, vec![Vec::<MemberId>::new(); 4]);
}

#[test]
fn one_member_is_primary_of_everything_without_standby() {
    let a = assign(&[], &ids(1), 7, 2);
    assert!(a.iter().all(|o| o == &[MemberId(1)]));
}

#[test]
fn fewer_members_than_replication_factor_gives_all_of_them() {
    let a = assign(&[], &ids(2), 64, 3);
    assert!(a.iter().all(|o| o.len() == 2 && o[0] != o[1]));
    assert_eq!(loads(&a, &ids(2), 0), vec![32, 32]);
}

#[test]
fn from_scratch_is_balanced_within_one() {
    for (shards, n) in [(256, 3), (64, 5), (7, 3), (256, 9), (1, 4)] {
        let a = assign(&[], &ids(n), shards, 2);
        for rank in 0..2 {
            let l = loads(&a, &ids(n), rank);
            assert!(
                l.iter().max().unwrap() - l.iter().min().unwrap() <= 1,
                "S={shards} n={n} rank {rank}: {l:?}"
            );
        }
    }
}

#[test]
fn a_down_primary_fails_over_to_its_standby_from_a_balanced_map() {
    for (shards, n) in [(256, 3), (256, 5), (64, 4), (64, 8), (7, 3)] {
        let before = assign(&[], &ids(n), shards, 2);
        for lost in ids(n) {
            let up: Vec<_> = ids(n).into_iter().filter(|m| *m != lost).collect();
            let after = assign(&before, &up, shards, 2);
            for (b, a) in before.iter().zip(&after) {
                if b[0] == lost {
                    assert_eq!(a[0], b[1], "S={shards} n={n}: standby not promoted");
                } else if b[1] != lost {
                    assert_eq!(a, b, "S={shards} n={n}: unrelated shard moved");
                }
            }
        }
    }
}

#[test]
fn shards_return_to_balance_when_members_come_back() {
    let before = assign(&[], &ids(3), 256, 2);
    let without = assign(&before, &ids(2), 256, 2);
    let back = assign(&without, &ids(3), 256, 2);
    let l = loads(&back, &ids(3), 0);
    assert!(l.iter().all(|l| (84..=87).contains(l)), "{l:?}");
    let moved = without.iter().zip(&back).filter(|(w, b)| w[0] != b[0]).count();
    assert_eq!(moved, l[2], "only primaries for the returning member move");
}

/// Not timed: shows how 256 shards spread over 3 members, and what a fourth one changes.
#[test]
fn distribution_of_256_shards_over_3_members() {
    let three = assign(&[], &ids(3), 256, 2);
    print_distribution("3 members", &three, &ids(3));
    let four = assign(&three, &ids(4), 256, 2);
    print_distribution("a 4th joins", &four, &ids(4));
    let moved = three.iter().zip(&four).filter(|(a, b)| a[0] != b[0]).count();
    println!("primaries moved: {moved} (all to member 4)");
    let two = assign(&three, &ids(2), 256, 2);
    print_distribution("member 3 goes down", &two, &ids(2));
    assert!(loads(&three, &ids(3), 0).iter().all(|l| (85..=86).contains(l)));
}

fn print_distribution(title: &str, a: &[Vec<MemberId>], up: &[MemberId]) {
    println!(
        "{title}: primaries {:?}, standbys {:?}",
        loads(a, up, 0),
        loads(a, up, 1)
    );
    for p in up {
        let pairs: Vec<usize> = up
            .iter()
            .map(|s| a.iter().filter(|o| o[0] == *p && o.get(1) == Some(s)).count())
            .collect();
        println!("  primary {p}: standbys per member {pairs:?}");
    }
}
