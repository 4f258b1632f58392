//! How many of one primary's shards each member backs up in a standby rank.
//!
//! Spreading a primary's standbys over all other members means that when the primary fails,
//! the promotions spread too, and no survivor is pushed past its primary bound.

/// Counts of `(primary, member)` pairs in one standby rank and a share per primary. Inactive
/// for the primary rank, where every check passes.
pub(super) struct Pairs {
    members: usize,
    count: Vec<usize>,
    share: Vec<usize>,
}

impl Pairs {
    /// Shares for rank `rank` given the owners chosen for the lower ranks: a primary's
    /// shards split evenly over the `members - rank` members that can back each one up.
    pub(super) fn new(members: usize, rank: usize, owners: &[Vec<usize>]) -> Self {
        if rank == 0 {
            return Pairs { members, count: Vec::new(), share: Vec::new() };
        }
        let mut primaries = vec![0; members];
        owners.iter().for_each(|o| primaries[o[0]] += 1);
        let share = primaries.iter().map(|p: &usize| p.div_ceil(members - rank)).collect();
        Pairs { members, count: vec![0; members * members], share }
    }

    /// Counts `member` backing up a shard of `primary` (`+1`) or no longer (`-1`).
    pub(super) fn add(&mut self, primary: Option<usize>, member: usize, delta: isize) {
        if let Some(p) = primary {
            let c = &mut self.count[p * self.members + member];
            *c = c.checked_add_signed(delta).expect("pair count never goes negative");
        }
    }

    /// Whether one more such pair stays within the primary's share plus `slack`.
    pub(super) fn room(&self, primary: Option<usize>, member: usize, slack: usize) -> bool {
        primary.is_none_or(|p| self.count[p * self.members + member] < self.share[p] + slack)
    }

    /// By how much the pair exceeds the primary's share plus `slack`.
    pub(super) fn excess(&self, primary: Option<usize>, member: usize, slack: usize) -> usize {
        primary.map_or(0, |p| self.count[p * self.members + member].saturating_sub(self.share[p] + slack))
    }
}
