//! Queries on a formed map and the map's wire form.

use super::*;

fn member(id: u64, state: MemberState) -> Member {
    Member {
        id: MemberId(id),
        name: format!("r{id}"),
        peer_address: format!("r{id}:10251"),
        state,
        voter: true,
    }
}

fn formed() -> ShardMap {
    let members = vec![
        member(1, MemberState::Up),
        member(2, MemberState::Up),
        member(3, MemberState::Down),
    ];
    let mut map = ShardMap::default();
    map.apply(Command::Init {
        shard_count: 16,
        replication_factor: 2,
        members,
        epoch_floor: 0,
        term_floor: 0,
    })
    .unwrap();
    map
}

#[test]
fn queries_agree_with_the_assignment() {
    let map = formed();
    assert_eq!(map.up_members(), vec![MemberId(1), MemberId(2)]);
    for shard in 0..16 {
        let owners = map.owners(shard);
        assert_eq!(owners.len(), 2);
        assert_eq!(map.primary(shard), owners.first());
    }
    let (p1, s1) = map.shards_of(MemberId(1));
    let (p2, s2) = map.shards_of(MemberId(2));
    assert_eq!(
        (p1.len() + p2.len(), p1, p2),
        (16, s2, s1),
        "two members back each other up"
    );
    assert_eq!(map.shards_of(MemberId(3)), (vec![], vec![]));
}

#[test]
fn unknown_shards_have_no_owners() {
    let map = formed();
    assert!(map.owners(16).is_empty());
    assert_eq!(map.primary(u32::MAX), None);
}

#[test]
fn a_node_is_owned_by_the_primary_of_its_shard() {
    let map = formed();
    for node in ["node-0", "node-1", "ip-10-0-0-1.ec2.internal"] {
        let shard = node_owner::hash::shard_of(node, 16);
        assert_eq!(map.owner_for_node(node), map.primary(shard));
        assert!(map.owner_for_node(node).is_some());
    }
    assert_eq!(ShardMap::default().owner_for_node("node-0"), None);
}

#[test]
fn bincode_round_trip() {
    let map = formed();
    let bytes = bincode::serialize(&map).unwrap();
    assert_eq!(bincode::deserialize::<ShardMap>(&bytes).unwrap(), map);
    let command = Command::SetState {
        member: MemberId(3),
        state: MemberState::Up,
    };
    assert_eq!(
        bincode::deserialize::<Command>(&bincode::serialize(&command).unwrap()).unwrap(),
        command
    );
    let result: Result<Response, ApplyError> = Err(ApplyError::UnknownMember(MemberId(7)));
    assert_eq!(
        bincode::deserialize::<Result<Response, ApplyError>>(&bincode::serialize(&result).unwrap()).unwrap(),
        result
    );
}
