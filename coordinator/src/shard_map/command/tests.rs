//! `apply` for each command, its errors, and the epoch rule over random command sequences.

use proptest::prelude::*;

use super::*;

fn member(id: u64) -> Member {
    Member {
        id: MemberId(id),
        name: format!("ha-metrics-server-{id}"),
        peer_address: format!("10.0.0.{id}:10251"),
        state: MemberState::Up,
        voter: id <= 3,
    }
}

fn init(shards: u32, members: u64) -> Command {
    Command::Init {
        shard_count: shards,
        replication_factor: 2,
        members: (1..=members).map(member).collect(),
        epoch_floor: 0,
        term_floor: 0,
    }
}

fn formed(shards: u32, members: u64) -> ShardMap {
    let mut map = ShardMap::default();
    map.apply(init(shards, members)).unwrap();
    map
}

fn set_state(id: u64, state: MemberState) -> Command {
    Command::SetState {
        member: MemberId(id),
        state,
    }
}

/// Applies a command that must fail and checks the map did not change.
fn rejected(map: &mut ShardMap, command: Command) -> ApplyError {
    let before = map.clone();
    let err = map.apply(command).unwrap_err();
    assert_eq!(*map, before, "a rejected command changed the map");
    err
}

#[test]
fn init_forms_the_map_at_epoch_1() {
    let mut map = ShardMap::default();
    assert_eq!(
        map.apply(init(64, 3)),
        Ok(Response {
            epoch: 1,
            changed: true
        })
    );
    assert_eq!((map.shard_count, map.replication_factor, map.members.len()), (64, 2, 3));
    assert!(map.assignment.iter().all(|o| o.len() == 2));
}

#[test]
fn init_is_validated() {
    let mut map = ShardMap::default();
    let bad = |shard_count, replication_factor, members| Command::Init {
        shard_count,
        replication_factor,
        members,
        epoch_floor: 0,
        term_floor: 0,
    };
    assert_eq!(rejected(&mut map, bad(0, 2, vec![])), ApplyError::InvalidShardCount(0));
    assert_eq!(
        rejected(&mut map, bad(MAX_SHARDS + 1, 2, vec![])),
        ApplyError::InvalidShardCount(MAX_SHARDS + 1)
    );
    assert_eq!(
        rejected(&mut map, bad(8, 0, vec![])),
        ApplyError::InvalidReplicationFactor
    );
    let twice = vec![member(1), member(2), member(1)];
    assert_eq!(
        rejected(&mut map, bad(8, 2, twice)),
        ApplyError::DuplicateMember(MemberId(1))
    );
}

#[test]
fn init_twice_is_rejected() {
    let mut map = formed(8, 2);
    assert_eq!(
        rejected(&mut map, init(8, 2)),
        ApplyError::AlreadyInitialized { epoch: 1 }
    );
}

#[test]
fn init_without_members_owns_nothing_until_one_joins() {
    let mut map = formed(8, 0);
    assert!(map.assignment.iter().all(Vec::is_empty));
    assert_eq!(
        map.apply(Command::AddMember(member(1))),
        Ok(Response {
            epoch: 2,
            changed: true
        })
    );
    assert!(map.assignment.iter().all(|o| o == &[MemberId(1)]));
}

#[test]
fn commands_before_init_are_rejected() {
    let mut map = ShardMap::default();
    for command in [
        Command::AddMember(member(1)),
        Command::RemoveMember(MemberId(1)),
        Command::Rebalance,
    ] {
        assert_eq!(rejected(&mut map, command), ApplyError::NotInitialized);
    }
}

#[test]
fn add_member_bumps_epoch_once_and_gives_it_shards() {
    let mut map = formed(64, 2);
    assert_eq!(
        map.apply(Command::AddMember(member(3))),
        Ok(Response {
            epoch: 2,
            changed: true
        })
    );
    let (primaries, standbys) = map.shards_of(MemberId(3));
    assert!((21..=22).contains(&primaries.len()), "{primaries:?}");
    assert!(!standbys.is_empty());
}

#[test]
fn adding_a_member_twice_is_rejected() {
    let mut map = formed(8, 2);
    assert_eq!(
        rejected(&mut map, Command::AddMember(member(2))),
        ApplyError::DuplicateMember(MemberId(2))
    );
}

#[test]
fn adding_a_down_member_changes_membership_but_not_assignment() {
    let mut map = formed(8, 2);
    let before = map.assignment.clone();
    let down = Member {
        state: MemberState::Down,
        ..member(3)
    };
    assert_eq!(
        map.apply(Command::AddMember(down)),
        Ok(Response {
            epoch: 2,
            changed: true
        })
    );
    assert_eq!(map.assignment, before);
}

#[test]
fn remove_member_moves_its_shards() {
    let mut map = formed(8, 3);
    assert_eq!(
        map.apply(Command::RemoveMember(MemberId(2))),
        Ok(Response {
            epoch: 2,
            changed: true
        })
    );
    assert!(!map.members.contains_key(&MemberId(2)));
    assert!(map.assignment.iter().all(|o| o.len() == 2 && !o.contains(&MemberId(2))));
    assert_eq!(
        rejected(&mut map, Command::RemoveMember(MemberId(2))),
        ApplyError::UnknownMember(MemberId(2))
    );
}

#[test]
fn set_state_down_fails_over_to_standbys() {
    let mut map = formed(16, 3);
    let before = map.clone();
    assert_eq!(
        map.apply(set_state(1, MemberState::Down)),
        Ok(Response {
            epoch: 2,
            changed: true
        })
    );
    for (b, a) in before.assignment.iter().zip(&map.assignment) {
        if b[0] == MemberId(1) {
            assert_eq!(a[0], b[1], "the standby takes over");
        }
    }
    assert_eq!(map.shards_of(MemberId(1)), (vec![], vec![]));
}

#[test]
fn primary_since_marks_where_each_primary_s_unbroken_term_began() {
    let mut map = formed(16, 3);
    assert!(
        map.primary_since.iter().all(|&e| e == 1),
        "every term starts with the map"
    );
    let before = map.clone();
    map.apply(set_state(1, MemberState::Down)).unwrap();
    map.apply(set_state(1, MemberState::Up)).unwrap();
    map.apply(Command::Rebalance).unwrap();
    let mut regained = 0;
    for shard in 0..16 {
        let (was, now) = (before.primary(shard), map.primary(shard));
        if was == Some(&MemberId(1)) && now == was {
            regained += 1;
            assert!(
                map.primary_since(shard) > 2,
                "shard {shard}: member 1 lost it at epoch 2 and got it back later: a new term"
            );
        } else if was != Some(&MemberId(1)) && now == was && map.primary_since(shard) == 1 {
            // Untouched by member 1's absence: its primary's term goes on.
        } else {
            assert!(
                map.primary_since(shard) > 1,
                "shard {shard} changed primary: a new term"
            );
        }
    }
    assert!(regained > 0, "member 1 got some of its shards back");
}

#[test]
fn set_state_to_the_same_state_is_a_no_op() {
    let mut map = formed(16, 3);
    assert_eq!(
        map.apply(set_state(1, MemberState::Up)),
        Ok(Response {
            epoch: 1,
            changed: false
        })
    );
    assert_eq!(map, formed(16, 3));
    let err = rejected(&mut map, set_state(9, MemberState::Down));
    assert_eq!(err, ApplyError::UnknownMember(MemberId(9)));
}

#[test]
fn all_members_down_leaves_shards_unowned_until_one_is_back() {
    let mut map = formed(8, 2);
    map.apply(set_state(1, MemberState::Down)).unwrap();
    map.apply(set_state(2, MemberState::Down)).unwrap();
    assert!(map.assignment.iter().all(Vec::is_empty));
    assert_eq!(map.owner_for_node("node-1"), None);
    map.apply(set_state(2, MemberState::Up)).unwrap();
    assert!(map.assignment.iter().all(|o| o == &[MemberId(2)]));
    assert_eq!(map.epoch, 4);
}

#[test]
fn rebalance_of_a_settled_map_changes_nothing() {
    let mut map = formed(256, 3);
    map.apply(Command::AddMember(member(4))).unwrap();
    assert!(map.is_settled());
    let before = map.clone();
    assert_eq!(
        map.apply(Command::Rebalance),
        Ok(Response {
            epoch: 2,
            changed: false
        })
    );
    assert_eq!(map, before);
}

#[test]
fn rebalance_gives_a_member_the_share_a_failover_left_it_without() {
    // 4 shards over 5 members: one member holds no primary. A failover moves only the failed
    // member's shards, so with 4 members left that one still holds none until a rebalance.
    let mut map = formed(4, 5);
    let empty = map
        .up_members()
        .into_iter()
        .find(|m| map.shards_of(*m).0.is_empty())
        .unwrap();
    let failed = map.primary(0).copied().unwrap();
    map.apply(Command::SetState {
        member: failed,
        state: MemberState::Down,
    })
    .unwrap();
    assert!(map.shards_of(empty).0.is_empty());
    assert!(!map.is_settled());
    assert_eq!(
        map.apply(set_state(empty.0, MemberState::Up)),
        Ok(Response {
            epoch: 2,
            changed: false
        })
    );
    assert_eq!(
        map.apply(Command::Rebalance),
        Ok(Response {
            epoch: 3,
            changed: true
        })
    );
    assert_eq!(map.shards_of(empty).0.len(), 1);
    assert!(map.is_settled());
}

#[derive(Debug, Clone)]
enum Step {
    Init(u32, u8),
    Add(u64, bool),
    Remove(u64),
    Set(u64, bool),
    Rebalance,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0u32..80, 0u8..4).prop_map(|(s, r)| Step::Init(s, r)),
        3 => (1u64..10, any::<bool>()).prop_map(|(id, up)| Step::Add(id, up)),
        2 => (1u64..10).prop_map(Step::Remove),
        4 => (1u64..10, any::<bool>()).prop_map(|(id, up)| Step::Set(id, up)),
        1 => Just(Step::Rebalance),
    ]
}

fn command(step: &Step) -> Command {
    let state = |up: bool| if up { MemberState::Up } else { MemberState::Down };
    match *step {
        Step::Init(shards, rf) => Command::Init {
            shard_count: shards,
            replication_factor: rf,
            members: vec![member(1)],
            epoch_floor: 0,
            term_floor: 0,
        },
        Step::Add(id, up) => Command::AddMember(Member {
            state: state(up),
            ..member(id)
        }),
        Step::Remove(id) => Command::RemoveMember(MemberId(id)),
        Step::Set(id, up) => set_state(id, state(up)),
        Step::Rebalance => Command::Rebalance,
    }
}

proptest! {
    /// (f) The epoch never falls and rises by exactly one for each command that changes
    /// members or assignment; rejected commands change nothing.
    #[test]
    fn epoch_counts_effective_changes(steps in prop::collection::vec(step(), 1..40)) {
        let mut map = ShardMap::default();
        for step in &steps {
            let before = map.clone();
            match map.apply(command(step)) {
                Ok(r) => {
                    let changed = before.members != map.members || before.assignment != map.assignment;
                    prop_assert_eq!(r.changed, changed || !before.is_initialized());
                    prop_assert_eq!(map.epoch, before.epoch + u64::from(r.changed));
                    prop_assert_eq!(r.epoch, map.epoch);
                    for shard in 0..map.shard_count {
                        let since = map.primary_since(shard);
                        prop_assert!(since <= map.epoch);
                        if before.primary(shard) == map.primary(shard) && before.is_initialized() {
                            prop_assert_eq!(since, before.primary_since(shard), "same primary, same term");
                        } else {
                            prop_assert_eq!(since, map.epoch, "a new primary's term starts now");
                        }
                    }
                }
                Err(_) => prop_assert_eq!(&map, &before),
            }
            prop_assert_eq!(map.assignment.len(), map.shard_count as usize);
        }
    }
}

#[test]
fn a_set_formed_to_replace_a_lost_one_starts_above_its_epoch() {
    let mut map = ShardMap::default();
    let response = map
        .apply(Command::Init {
            shard_count: 4,
            replication_factor: 2,
            members: (1..=2).map(member).collect(),
            epoch_floor: 41,
            term_floor: 0,
        })
        .unwrap();
    assert_eq!(response.epoch, 42, "above the lost set's 41");
    assert_eq!(formed(4, 2).epoch, 1, "a first formation starts at 1");
}

#[test]
fn set_voter_follows_the_membership_and_moves_no_shard() {
    let mut map = formed(8, 4);
    let before = map.clone();
    let response = map
        .apply(Command::SetVoter {
            member: MemberId(4),
            voter: true,
        })
        .unwrap();
    assert!(response.changed && map.members[&MemberId(4)].voter);
    assert_eq!(map.assignment, before.assignment, "who votes does not decide who owns");
    let again = map
        .apply(Command::SetVoter {
            member: MemberId(4),
            voter: true,
        })
        .unwrap();
    assert!(!again.changed, "the same flag again changes nothing");
    assert_eq!(
        rejected(
            &mut map,
            Command::SetVoter {
                member: MemberId(9),
                voter: true
            }
        ),
        ApplyError::UnknownMember(MemberId(9))
    );
}
