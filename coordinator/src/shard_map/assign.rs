//! Which Up members own each shard: bounded-load rendezvous (HRW) hashing with minimal movement.
//!
//! Called by [`ShardMap::apply`](super::ShardMap::apply) after every membership or state
//! change, with the previous assignment. With `n` Up members and `S` shards, the ranks are
//! chosen one after the other (all primaries, then all first standbys, ...); for each rank:
//!
//! 1. **Keep**: a shard keeps its previous member for the rank if it is still Up. If that
//!    member is gone, the next Up previous owner from a later rank moves up: a shard whose
//!    primary went Down is taken over by its standby, which already holds the data (failover).
//!    A primary that lost its place stays on as standby.
//! 2. **Shed**: a member holding more than `hi = ceil(S / n) + 1` shards of the rank gives up
//!    the excess: shards that move anyway first (promotions), then those with its lowest
//!    rendezvous score. In the first-standby rank, a member that backs up more than
//!    `ceil(P / (n - 1)) + 1` of one primary's `P` shards also gives up the excess when others
//!    have room, so that a failed primary's shards are promoted onto many members.
//! 3. **Place**: a shard without a member goes to the least-loaded member that does not
//!    already own it, preferring those within the standby share and below `hi`; ties go to the
//!    highest rendezvous score [`score`]`(shard, member)`, then the lowest id.
//! 4. **Fill**: a member below `lo = floor(S / n)` takes shards from the most loaded members:
//!    shards placed in this call, standbys that changed rank, and, for a member that held
//!    nothing in the rank (new, or back from Down) and only when no previous owner is gone,
//!    any shard. So a failover moves nothing but the failed member's shards, and a new member
//!    takes its share from the others.
//!
//! Greedy placement can leave a member above a bound; then steps 2 to 4 run again (a few
//! rounds at most).
//!
//! What holds (property-tested in `tests/props.rs`): every shard has `min(rf, n)` distinct Up
//! owners; no member holds more than `ceil(S / n) + 1` primaries or first standbys; a lost
//! member moves only the shards it owned, and each of its primaries goes to its standby unless
//! that standby already holds `ceil(S / n) + 1`; a new member is the only one primaries move
//! to, at most `ceil(S / n) + 1` of them; the result does not depend on the order of `up`; and
//! assigning the result again changes nothing, unless a failover left a member without its
//! share (the next assignment gives it that share).
//!
//! Later standby ranks (`rf >= 3`) are balanced by the same steps but without a guaranteed
//! bound: with few members their choice is forced.

use super::MemberId;

mod column;
mod pairs;
#[cfg(test)]
mod tests;

use column::Column;

/// The owners of every shard, `[primary, standby, ...]`: `min(replication_factor, up)` distinct
/// members of `up` each, or none when `up` is empty. `previous` is the current assignment
/// (indexed by shard, may be empty or name members that are no longer Up).
pub fn assign(
    previous: &[Vec<MemberId>],
    up: &[MemberId],
    shard_count: u32,
    replication_factor: u8,
) -> Vec<Vec<MemberId>> {
    let input = Input::new(previous, up, shard_count as usize);
    let ranks = usize::from(replication_factor).min(input.members.len());
    let mut owners: Vec<Vec<usize>> = vec![Vec::with_capacity(ranks); shard_count as usize];
    for rank in 0..ranks {
        let picks = Column::new(rank, &input, &owners).solve();
        owners.iter_mut().zip(picks).for_each(|(o, m)| o.push(m));
    }
    owners
        .into_iter()
        .map(|o| o.into_iter().map(|i| input.members[i]).collect())
        .collect()
}

/// The most shards of one rank (primaries, or first standbys) a member holds: `ceil(S/n) + 1`.
pub fn max_load(shard_count: u32, up: usize) -> usize {
    Bounds::new(shard_count as usize, up).hi
}

/// Rendezvous score of `member` for `shard`: splitmix64 of both. Part of the map's meaning
/// (every replica computes the same assignment from the same log), so it must never change.
pub fn score(shard: u32, member: MemberId) -> u64 {
    splitmix64(splitmix64(member.0) ^ u64::from(shard))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Load limits per member for one rank.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Below this a member takes shards from others, as far as it may: `floor(S / n)`.
    lo: usize,
    /// Above this a member gives shards up.
    hi: usize,
}

impl Bounds {
    fn new(shards: usize, members: usize) -> Self {
        let members = members.max(1);
        Bounds {
            lo: shards / members,
            hi: shards.div_ceil(members) + 1,
        }
    }
}

/// What every rank is chosen from.
struct Input {
    /// The Up members, sorted and distinct; elsewhere members are indices into this.
    members: Vec<MemberId>,
    /// The previous owners per shard, `None` where a member is no longer Up. Positions are
    /// kept, since they are the ranks.
    previous: Vec<Vec<Option<usize>>>,
    /// Whether a previous owner is gone: then only the shards it owned may move.
    failover: bool,
}

impl Input {
    fn new(previous: &[Vec<MemberId>], up: &[MemberId], shards: usize) -> Self {
        let mut members = up.to_vec();
        members.sort_unstable();
        members.dedup();
        let previous: Vec<Vec<Option<usize>>> = (0..shards)
            .map(|shard| {
                let owners = previous.get(shard).map_or(&[][..], Vec::as_slice);
                owners.iter().map(|m| members.binary_search(m).ok()).collect()
            })
            .collect();
        let failover = previous.iter().flatten().any(Option::is_none);
        Input {
            members,
            previous,
            failover,
        }
    }
}
