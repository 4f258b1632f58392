//! One rank of the assignment (the primaries, or the first standbys, ...): keep, shed, place and
//! fill, as described in the parent module. Members are indices into the sorted Up members.

use std::cmp::Reverse;

use super::pairs::Pairs;
use super::{Bounds, Input, score};

/// How a shard got its member in this rank. The order is the order in which shards are given
/// up: cheapest to move first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// Placed in this round: the shard moves anyway.
    Placed,
    /// A previous owner from another rank (a promoted standby), or any previous owner in a
    /// shard whose lower ranks changed: the shard is touched by this change anyway.
    Moved,
    /// The same member as before in this rank: moving it is a real move.
    Kept,
}

/// Shed-and-place rounds before settling for what there is.
const MAX_ROUNDS: usize = 4;

/// The choice of one member per shard for one rank.
pub(super) struct Column<'a> {
    rank: usize,
    input: &'a Input,
    /// Owners chosen for the lower ranks, per shard.
    owners: &'a [Vec<usize>],
    bounds: Bounds,
    pick: Vec<Option<(usize, Origin)>>,
    load: Vec<usize>,
    /// Members that held nothing in this rank before (new or back from Down): they may take
    /// shards that would otherwise stay put.
    newcomer: Vec<bool>,
    pairs: Pairs,
}

impl<'a> Column<'a> {
    /// A rank with nothing chosen yet; `owners` holds ranks `0..rank` for every shard.
    pub(super) fn new(rank: usize, input: &'a Input, owners: &'a [Vec<usize>]) -> Self {
        let (shards, n) = (owners.len(), input.members.len());
        Column {
            rank,
            input,
            owners,
            bounds: Bounds::new(shards, n),
            pick: vec![None; shards],
            load: vec![0; n],
            newcomer: newcomers(rank, input),
            pairs: Pairs::new(n, rank, owners),
        }
    }

    /// The member of every shard for this rank. Placing is greedy in shard order, so a round
    /// can leave a member above a bound (a shard's only candidates were full); further rounds
    /// shed (cheapest shards first) and place again until nothing is above a bound.
    pub(super) fn solve(mut self) -> Vec<usize> {
        self.keep();
        self.shed();
        for round in 1.. {
            self.place();
            self.fill();
            if round == MAX_ROUNDS || self.shed() == 0 {
                break;
            }
        }
        self.pick
            .into_iter()
            .map(|p| p.expect("every shard is placed").0)
            .collect()
    }

    /// Gives up shards above the load bound and above pair shares; how many.
    fn shed(&mut self) -> usize {
        self.shed_overloaded() + self.shed_pairs()
    }

    /// The previous member of the rank if Up, else the first Up previous owner of a later rank,
    /// else of an earlier one (an old primary that lost its place becomes the standby). In a
    /// shard whose lower ranks changed, even the same member counts as moved.
    fn keep(&mut self) {
        for shard in 0..self.pick.len() {
            let previous = &self.input.previous[shard];
            let (earlier, later) = previous.split_at(self.rank.min(previous.len()));
            let free = |m: &Option<usize>| m.filter(|m| !self.owners[shard].contains(m));
            let same = if self.touched(shard) {
                Origin::Moved
            } else {
                Origin::Kept
            };
            let kept = later.first().and_then(free).map(|m| (m, same));
            let found = kept
                .or_else(|| later.iter().find_map(free).map(|m| (m, Origin::Moved)))
                .or_else(|| earlier.iter().find_map(free).map(|m| (m, Origin::Moved)));
            if let Some((member, origin)) = found {
                self.set(shard, member, origin);
            }
        }
    }

    /// Members above `hi` give up the excess.
    fn shed_overloaded(&mut self) -> usize {
        let mut shed = 0;
        for member in 0..self.load.len() {
            let excess = self.load[member].saturating_sub(self.bounds.hi);
            if excess > 0 {
                let shards = self.shards_of(member, |_| true);
                shed += self.give_up(member, shards, excess);
            }
        }
        shed
    }

    /// Standbys holding more than their share (plus one) of a primary's shards give up the
    /// excess, as far as other members have room for them (the share is a preference; the
    /// load bound is not).
    fn shed_pairs(&mut self) -> usize {
        let (mut shed, primaries) = (0, if self.rank == 1 { self.load.len() } else { 0 });
        for primary in 0..primaries {
            for member in 0..self.load.len() {
                let excess = self
                    .pairs
                    .excess(Some(primary), member, 1)
                    .min(self.room_for(primary, member));
                if excess > 0 {
                    let shards = self.shards_of(member, |s| self.owners[s][0] == primary);
                    shed += self.give_up(member, shards, excess);
                }
            }
        }
        shed
    }

    /// How many more standbys for `primary`'s shards members other than `member` can take
    /// within their pair share (plus one) and the load bound.
    fn room_for(&self, primary: usize, member: usize) -> usize {
        (0..self.load.len())
            .filter(|&x| x != primary && x != member)
            .map(|x| {
                let pair = self.pairs.room_left(primary, x, 1);
                pair.min(self.bounds.hi.saturating_sub(self.load[x]))
            })
            .sum()
    }

    /// Gives up `count` of `shards`: cheapest to move first, then lowest score; returns `count`.
    fn give_up(&mut self, member: usize, mut shards: Vec<usize>, count: usize) -> usize {
        let id = self.input.members[member];
        shards.sort_by_key(|&s| (self.pick[s].map(|p| p.1), score(s as u32, id), s));
        shards.into_iter().take(count).for_each(|s| self.unset(s));
        count
    }

    /// Shards without a member go to the least-loaded eligible member.
    fn place(&mut self) {
        for shard in 0..self.pick.len() {
            if self.pick[shard].is_none() {
                let member = self.choose(shard);
                self.set(shard, member, Origin::Placed);
            }
        }
    }

    /// The least-loaded member that is not already an owner of `shard`, preferring members
    /// within their pair share and below `hi`; ties go to the highest score, then lowest id.
    fn choose(&self, shard: usize) -> usize {
        let primary = self.primary(shard);
        let eligible = (0..self.load.len()).filter(|m| !self.owners[shard].contains(m));
        let key = |m: &usize| (self.load[*m], Reverse(score(shard as u32, self.input.members[*m])), *m);
        let tiers: [(Option<usize>, bool); 4] = [(Some(0), true), (Some(1), true), (None, true), (None, false)];
        tiers
            .iter()
            .find_map(|&(slack, below_hi)| {
                let pair_ok = |m: &usize| slack.is_none_or(|s| self.pairs.room(primary, *m, s));
                let load_ok = |m: &usize| !below_hi || self.load[*m] < self.bounds.hi;
                eligible.clone().filter(pair_ok).filter(load_ok).min_by_key(key)
            })
            .expect("rank < members, so some member is eligible")
    }

    /// Members below `lo` take shards, one at a time, from the most loaded members, until no
    /// more can (each move lowers the total shortfall, so this ends). See `may_take` for which.
    fn fill(&mut self) {
        let mut moved = true;
        while moved {
            moved = false;
            for member in 0..self.load.len() {
                while self.load[member] < self.bounds.lo {
                    let Some(shard) = self.best_to_take(member) else { break };
                    self.unset(shard);
                    self.set(shard, member, Origin::Placed);
                    moved = true;
                }
            }
        }
    }

    /// The shard `member` should take: one that moves anyway, from the most loaded donor,
    /// with the highest score for `member`.
    fn best_to_take(&self, member: usize) -> Option<usize> {
        let id = self.input.members[member];
        (0..self.pick.len())
            .filter(|&s| self.can_take(s, member))
            .min_by_key(|&s| {
                let (donor, origin) = self.pick[s].expect("can_take checked it");
                (origin, Reverse(self.load[donor]), Reverse(score(s as u32, id)), s)
            })
    }

    fn can_take(&self, shard: usize, member: usize) -> bool {
        let Some((donor, origin)) = self.pick[shard] else {
            return false;
        };
        self.may_take(origin, member)
            && donor != member
            && self.load[donor] > self.bounds.lo
            && !self.owners[shard].contains(&member)
            && self.pairs.room(self.primary(shard), member, 1)
    }

    /// Shards placed in this call move freely; so do standbys that changed rank (they belong
    /// to shards a change already touches); the rest only to newcomers, outside a failover.
    fn may_take(&self, origin: Origin, member: usize) -> bool {
        match origin {
            Origin::Placed => true,
            Origin::Moved if self.rank > 0 => true,
            _ => self.newcomer[member] && !self.input.failover,
        }
    }

    /// Whether the owners of the lower ranks differ from the previous ones.
    fn touched(&self, shard: usize) -> bool {
        let previous = &self.input.previous[shard];
        self.owners[shard]
            .iter()
            .enumerate()
            .any(|(rank, m)| previous.get(rank) != Some(&Some(*m)))
    }

    fn shards_of(&self, member: usize, filter: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..self.pick.len())
            .filter(|&s| self.pick[s].is_some_and(|p| p.0 == member) && filter(s))
            .collect()
    }

    fn primary(&self, shard: usize) -> Option<usize> {
        (self.rank > 0).then(|| self.owners[shard][0])
    }

    fn set(&mut self, shard: usize, member: usize, origin: Origin) {
        self.pick[shard] = Some((member, origin));
        self.load[member] += 1;
        self.pairs.add(self.primary(shard), member, 1);
    }

    fn unset(&mut self, shard: usize) {
        if let Some((member, _)) = self.pick[shard].take() {
            self.load[member] -= 1;
            self.pairs.add(self.primary(shard), member, -1);
        }
    }
}

/// Which members held no shard in `rank` of the previous assignment.
fn newcomers(rank: usize, input: &Input) -> Vec<bool> {
    let mut newcomer = vec![true; input.members.len()];
    input
        .previous
        .iter()
        .filter_map(|o| o.get(rank).copied().flatten())
        .for_each(|m| newcomer[m] = false);
    newcomer
}
