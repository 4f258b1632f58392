//! One rank of the assignment (the primaries, or the first standbys, ...): keep, shed, place and
//! fill, as described in the parent module. Members are indices into the sorted Up members.

use std::cmp::Reverse;

use super::pairs::Pairs;
use super::{Bounds, score};
use crate::shard_map::MemberId;

/// How a shard got its member in this rank. The order is the order in which shards are given
/// up: cheapest to move first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// Placed in this round: the shard moves anyway.
    Placed,
    /// A previous owner from another rank (a promoted standby): holds the data.
    Moved,
    /// The same member as before in this rank: moving it is a real move.
    Kept,
}

/// The choice of one member per shard for one rank.
pub(super) struct Column<'a> {
    rank: usize,
    members: &'a [MemberId],
    previous: &'a [Vec<Option<usize>>],
    /// Owners chosen for the lower ranks, per shard.
    owners: &'a [Vec<usize>],
    bounds: Bounds,
    pick: Vec<Option<(usize, Origin)>>,
    load: Vec<usize>,
    pairs: Pairs,
}

impl<'a> Column<'a> {
    /// A rank with nothing chosen yet; `owners` holds ranks `0..rank` for every shard.
    pub(super) fn new(
        rank: usize,
        members: &'a [MemberId],
        previous: &'a [Vec<Option<usize>>],
        owners: &'a [Vec<usize>],
    ) -> Self {
        let (shards, n) = (owners.len(), members.len());
        Column {
            rank,
            members,
            previous,
            owners,
            bounds: Bounds::new(shards, n),
            pick: vec![None; shards],
            load: vec![0; n],
            pairs: Pairs::new(n, rank, owners),
        }
    }

    /// The member of every shard for this rank.
    pub(super) fn solve(mut self) -> Vec<usize> {
        self.keep();
        self.shed_overloaded();
        self.shed_pairs();
        self.place();
        self.fill();
        self.pick.into_iter().map(|p| p.expect("every shard is placed").0).collect()
    }

    /// The previous member of the rank if Up, else the first Up previous owner of a later rank,
    /// else of an earlier one (an old primary that lost its place becomes the standby).
    fn keep(&mut self) {
        for shard in 0..self.pick.len() {
            let previous = &self.previous[shard];
            let (earlier, later) = previous.split_at(self.rank.min(previous.len()));
            let free = |m: &Option<usize>| m.filter(|m| !self.owners[shard].contains(m));
            let kept = later.first().and_then(free).map(|m| (m, Origin::Kept));
            let found = kept
                .or_else(|| later.iter().find_map(free).map(|m| (m, Origin::Moved)))
                .or_else(|| earlier.iter().find_map(free).map(|m| (m, Origin::Moved)));
            if let Some((member, origin)) = found {
                self.set(shard, member, origin);
            }
        }
    }

    /// Members above `hi` give up the excess.
    fn shed_overloaded(&mut self) {
        for member in 0..self.load.len() {
            let excess = self.load[member].saturating_sub(self.bounds.hi);
            if excess > 0 {
                let shards = self.shards_of(member, |_| true);
                self.give_up(member, shards, excess);
            }
        }
    }

    /// Standbys holding more than their share (plus one) of a primary's shards give up the excess.
    fn shed_pairs(&mut self) {
        if self.rank == 0 {
            return;
        }
        for primary in 0..self.load.len() {
            for member in 0..self.load.len() {
                let excess = self.pairs.excess(Some(primary), member, 1);
                if excess > 0 {
                    let shards = self.shards_of(member, |s| self.owners[s][0] == primary);
                    self.give_up(member, shards, excess);
                }
            }
        }
    }

    /// Gives up `count` of `shards`: cheapest to move first, then lowest score.
    fn give_up(&mut self, member: usize, mut shards: Vec<usize>, count: usize) {
        let id = self.members[member];
        shards.sort_by_key(|&s| (self.pick[s].map(|p| p.1), score(s as u32, id), s));
        shards.into_iter().take(count).for_each(|s| self.unset(s));
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
        let key = |m: &usize| (self.load[*m], Reverse(score(shard as u32, self.members[*m])), *m);
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

    /// Members below `lo` take shards, one at a time, from the most loaded members.
    fn fill(&mut self) {
        for member in 0..self.load.len() {
            while self.load[member] < self.bounds.lo {
                let Some(shard) = self.best_to_take(member) else { break };
                self.unset(shard);
                self.set(shard, member, Origin::Placed);
            }
        }
    }

    /// The shard `member` should take: one that moves anyway, from the most loaded donor,
    /// with the highest score for `member`.
    fn best_to_take(&self, member: usize) -> Option<usize> {
        let id = self.members[member];
        (0..self.pick.len()).filter(|&s| self.can_take(s, member)).min_by_key(|&s| {
            let (donor, origin) = self.pick[s].expect("can_take checked it");
            (origin, Reverse(self.load[donor]), Reverse(score(s as u32, id)), s)
        })
    }

    fn can_take(&self, shard: usize, member: usize) -> bool {
        let Some((donor, _)) = self.pick[shard] else { return false };
        donor != member
            && self.load[donor] > self.bounds.lo
            && !self.owners[shard].contains(&member)
            && self.pairs.room(self.primary(shard), member, 1)
    }

    fn shards_of(&self, member: usize, filter: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..self.pick.len()).filter(|&s| self.pick[s].is_some_and(|p| p.0 == member) && filter(s)).collect()
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
