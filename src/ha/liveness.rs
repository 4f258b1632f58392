//! Who answered our pings (or a Raft exchange), and when. Every replica pings every member of the
//! map each ping interval: the leader turns the table into Up/Down decisions, every replica uses
//! it to route fan-out queries and to notice quorum loss.

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
    /// Members that said they are leaving (SIGTERM): not alive for the leader's Up/Down
    /// decisions, whatever they answered before.
    leaving: Mutex<HashSet<MemberId>>,
    /// When a connection to each member was last refused: a process that is gone refuses at
    /// once, and waiting out the reachable window for it would leave readers waiting on it.
    refused: Mutex<HashMap<MemberId, Instant>>,
    /// The shards each member said it writes in its last ping answer.
    writing: Mutex<HashMap<MemberId, HashSet<u32>>>,
}

impl Liveness {
    pub fn record_ok(&self, member: MemberId, settling: bool) {
        self.last_ok
            .lock()
            .expect("liveness lock")
            .insert(member, Instant::now());
        self.leaving.lock().expect("liveness lock").remove(&member);
        let mut set = self.settling.lock().expect("liveness lock");
        if settling {
            set.insert(member);
        } else {
            set.remove(&member);
        }
    }

    /// Notes that `member` answered something else than a ping (a Raft exchange): it is there,
    /// whatever it said of itself in its last ping answer.
    pub fn heard_from(&self, member: MemberId) {
        self.last_ok
            .lock()
            .expect("liveness lock")
            .insert(member, Instant::now());
    }

    /// Notes that `member` is leaving (it answered a ping so, or asked the leader to mark it
    /// Down): until it answers as staying, it is not [`alive`](Self::alive). Without this the
    /// leader, which marks a leaving member Down at once, found it alive by its earlier answers
    /// and marked it Up again, every control round for the member-down time: its shards went
    /// back and forth, and nodes that moved were absent for a resolution (campaign seed 478983,
    /// scale-out-in).
    pub fn record_leaving(&self, member: MemberId) {
        self.leaving.lock().expect("liveness lock").insert(member);
    }

    /// Whether `member` answered within `window` and has not said it is leaving.
    pub fn alive(&self, member: MemberId, window: Duration) -> bool {
        self.recently(member, window) && !self.leaving.lock().expect("liveness lock").contains(&member)
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

    /// Notes the shards `member` said it writes (a ping answer).
    pub fn record_writing(&self, member: MemberId, shards: Vec<u32>) {
        self.writing
            .lock()
            .expect("liveness lock")
            .insert(member, shards.into_iter().collect());
    }

    /// Whether `member`'s last ping answer said it writes `shard`.
    pub fn writes(&self, member: MemberId, shard: u32) -> bool {
        self.writing
            .lock()
            .expect("liveness lock")
            .get(&member)
            .is_some_and(|s| s.contains(&shard))
    }

    /// Notes that a connection to `member` was refused (nothing listens at its address).
    pub fn record_refused(&self, member: MemberId) {
        self.refused
            .lock()
            .expect("liveness lock")
            .insert(member, Instant::now());
    }

    /// Whether `member` answered within `window` and no connection to it was refused since.
    pub fn reachable(&self, member: MemberId, window: Duration) -> bool {
        let last = self.last_ok.lock().expect("liveness lock").get(&member).copied();
        let refused = self.refused.lock().expect("liveness lock").get(&member).copied();
        last.is_some_and(|t| t.elapsed() <= window && refused.is_none_or(|r| r < t))
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
        self.leaving.lock().expect("liveness lock").retain(|m| keep(*m));
        self.refused.lock().expect("liveness lock").retain(|m, _| keep(*m));
        self.writing.lock().expect("liveness lock").retain(|m, _| keep(*m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_that_said_it_is_leaving_is_not_alive_until_it_answers_as_staying() {
        let liveness = Liveness::default();
        let member = MemberId(7);
        let window = Duration::from_secs(2);
        liveness.record_ok(member, false);
        assert!(liveness.alive(member, window));
        liveness.record_leaving(member);
        assert!(
            !liveness.alive(member, window),
            "its earlier answers do not make it Up again"
        );
        assert!(
            liveness.recently(member, window),
            "still reachable: its copies can be pulled"
        );
        liveness.record_ok(member, false);
        assert!(liveness.alive(member, window), "answering as staying again");
    }

    #[test]
    fn a_refused_connection_makes_a_member_unreachable_until_it_answers_again() {
        let liveness = Liveness::default();
        let member = MemberId(7);
        let window = Duration::from_secs(2);
        liveness.record_ok(member, false);
        assert!(liveness.reachable(member, window));
        liveness.record_refused(member);
        assert!(!liveness.reachable(member, window), "gone: refused at once");
        assert!(liveness.alive(member, window), "Down only after the member-down time");
        std::thread::sleep(Duration::from_millis(2));
        liveness.heard_from(member);
        assert!(liveness.reachable(member, window), "back");
    }
}
