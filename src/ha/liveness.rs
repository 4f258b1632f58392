//! Who answered our pings, and when. Every replica pings every member of the map each control
//! interval: the leader turns the table into Up/Down decisions, every replica uses it to route
//! fan-out queries and to notice quorum loss.

use coordinator::shard_map::MemberId;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Liveness {
    /// Last successful ping per member.
    last_ok: Mutex<HashMap<MemberId, Instant>>,
    /// When this replica first saw each member in the map (grace before calling it Down).
    first_seen: Mutex<HashMap<MemberId, Instant>>,
    /// Members whose last answer said they are settling after a freeze.
    settling: Mutex<HashSet<MemberId>>,
}

impl Liveness {
    pub fn record_ok(&self, member: MemberId, settling: bool) {
        self.last_ok
            .lock()
            .expect("liveness lock")
            .insert(member, Instant::now());
        let mut set = self.settling.lock().expect("liveness lock");
        if settling {
            set.insert(member);
        } else {
            set.remove(&member);
        }
    }

    /// Whether `member`'s last answer said it is settling after a freeze.
    pub fn settling(&self, member: MemberId) -> bool {
        self.settling.lock().expect("liveness lock").contains(&member)
    }

    /// Remembers when `member` was first seen; returns how long ago that was.
    pub fn known_for(&self, member: MemberId) -> Duration {
        let mut seen = self.first_seen.lock().expect("liveness lock");
        seen.entry(member).or_insert_with(Instant::now).elapsed()
    }

    /// Whether `member` answered within `window`.
    pub fn recently(&self, member: MemberId, window: Duration) -> bool {
        let last = self.last_ok.lock().expect("liveness lock").get(&member).copied();
        last.is_some_and(|t| t.elapsed() <= window)
    }

    /// Forgets members no longer in the map.
    pub fn retain(&self, keep: impl Fn(MemberId) -> bool) {
        self.last_ok.lock().expect("liveness lock").retain(|m, _| keep(*m));
        self.first_seen.lock().expect("liveness lock").retain(|m, _| keep(*m));
        self.settling.lock().expect("liveness lock").retain(|m| keep(*m));
    }
}
