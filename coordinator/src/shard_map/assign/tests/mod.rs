//! Tests of the assignment: examples here, properties over random membership histories in
//! `props.rs`. `World` plays a membership history the way `ShardMap::apply` would.

use super::*;

mod examples;
mod props;

/// One step of a membership history.
#[derive(Debug, Clone)]
enum Op {
    /// A new member joins, Up.
    Add,
    /// The member at this index leaves the map.
    Remove(usize),
    /// The member at this index goes Down.
    Down(usize),
    /// The member at this index comes back Up.
    Up(usize),
}

/// What a step did to the set of Up members.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    /// This Up member is gone (Down or removed).
    Lost(MemberId),
    /// This member is newly Up.
    Gained(MemberId),
    /// The Up members are the same.
    Same,
}

/// Members with their Up flag and the assignment after the last step.
#[derive(Debug, Clone)]
struct World {
    shards: u32,
    rf: u8,
    members: Vec<(MemberId, bool)>,
    next_id: u64,
    assignment: Vec<Vec<MemberId>>,
}

/// At most this many members, Up or Down: `Add` beyond it does nothing.
const MAX_MEMBERS: usize = 12;

impl World {
    fn new(shards: u32, rf: u8, members: usize, id_base: u64) -> Self {
        let mut w = World {
            shards,
            rf,
            members: Vec::new(),
            next_id: id_base,
            assignment: Vec::new(),
        };
        for _ in 0..members {
            w.push_member();
        }
        w.assignment = assign(&[], &w.up(), shards, rf);
        w
    }

    fn push_member(&mut self) -> MemberId {
        let id = MemberId(self.next_id);
        self.next_id = self.next_id.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.members.push((id, true));
        id
    }

    fn up(&self) -> Vec<MemberId> {
        self.members.iter().filter(|m| m.1).map(|m| m.0).collect()
    }

    /// Applies `op` to the members and reassigns.
    fn step(&mut self, op: &Op) -> Change {
        let change = self.change_members(op);
        self.assignment = assign(&self.assignment, &self.up(), self.shards, self.rf);
        change
    }

    fn change_members(&mut self, op: &Op) -> Change {
        if self.members.is_empty() || (matches!(op, Op::Add) && self.members.len() < MAX_MEMBERS) {
            return Change::Gained(self.push_member());
        }
        match op {
            Op::Add => Change::Same,
            Op::Remove(i) => {
                let (id, up) = self.members.remove(i % self.members.len());
                if up { Change::Lost(id) } else { Change::Same }
            }
            Op::Down(i) | Op::Up(i) => {
                let want = matches!(op, Op::Up(_));
                let at = i % self.members.len();
                let m = &mut self.members[at];
                let was = std::mem::replace(&mut m.1, want);
                match (was, want) {
                    (false, true) => Change::Gained(m.0),
                    (true, false) => Change::Lost(m.0),
                    _ => Change::Same,
                }
            }
        }
    }
}

/// How many shards each member holds at `rank`, for the Up members.
fn loads(assignment: &[Vec<MemberId>], up: &[MemberId], rank: usize) -> Vec<usize> {
    up.iter()
        .map(|m| assignment.iter().filter(|o| o.get(rank) == Some(m)).count())
        .collect()
}
