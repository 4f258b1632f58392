//! How many of one primary's shards each member backs up as first standby.
//!
//! Spreading a primary's standbys over all other members means that when the primary fails,
//! the promotions spread too, and no survivor is pushed past its primary bound.

/// Counts of `(primary, member)` pairs in the first standby rank and a share per primary.
/// Inactive for the other ranks, where every check passes: only first standbys are promoted
/// when a primary fails.
pub(super) struct Pairs {
    members: usize,
    count: Vec<usize>,
    share: Vec<usize>,
}

impl Pairs {
    /// Shares for rank `rank` given the primaries in `owners`: a primary's shards split evenly
    /// over the `members - 1` others.
    pub(super) fn new(members: usize, rank: usize, owners: &[Vec<usize>]) -> Self {
        if rank != 1 {
            return Pairs {
                members,
                count: Vec::new(),
                share: Vec::new(),
            };
        }
        let mut primaries = vec![0; members];
        owners.iter().for_each(|o| primaries[o[0]] += 1);
        let share = primaries.iter().map(|p: &usize| p.div_ceil(members - 1)).collect();
        Pairs {
            members,
            count: vec![0; members * members],
            share,
        }
    }

    fn active(&self) -> bool {
        !self.count.is_empty()
    }

    /// Counts `member` backing up a shard of `primary` (`+1`) or no longer (`-1`).
    pub(super) fn add(&mut self, primary: Option<usize>, member: usize, delta: isize) {
        if let Some(p) = primary.filter(|_| self.active()) {
            let c = &mut self.count[p * self.members + member];
            *c = c.checked_add_signed(delta).expect("pair count never goes negative");
        }
    }

    /// Whether one more such pair stays within the primary's share plus `slack`.
    pub(super) fn room(&self, primary: Option<usize>, member: usize, slack: usize) -> bool {
        primary
            .filter(|_| self.active())
            .is_none_or(|p| self.count[p * self.members + member] < self.share[p] + slack)
    }

    /// How many more such pairs fit within the primary's share plus `slack`.
    pub(super) fn room_left(&self, primary: usize, member: usize, slack: usize) -> usize {
        if !self.active() {
            return usize::MAX;
        }
        (self.share[primary] + slack).saturating_sub(self.count[primary * self.members + member])
    }

    /// By how much the pair exceeds the primary's share plus `slack`.
    pub(super) fn excess(&self, primary: Option<usize>, member: usize, slack: usize) -> usize {
        primary.filter(|_| self.active()).map_or(0, |p| {
            self.count[p * self.members + member].saturating_sub(self.share[p] + slack)
        })
    }
}
