//! A standby's side of replication. A push from the shard's writer (its ops, or the whole shard
//! when this standby is out of sync) is *staged*: checked, acknowledged, and kept aside; the
//! store changes only when the writer says it applied the push too (a `Commit`, or the
//! committed sequence number a read lease carries, `lease.rs`). So no standby ever serves a point
//! its writer has not published, and since the writer publishes only once every standby that may
//! answer reads alone holds the push, whichever replica a reader asks next has it staged at least:
//! a read of a shard with something staged waits for the commit (docs/architecture.md, "The
//! serving rule"). An `Abort` (the writer withheld or dropped the push) drops it, and the standby
//! is out of sync until the writer's next whole copy.
//!
//! A staged push that never gets its commit (the writer died between applying it and saying so)
//! is applied when this standby takes the shard over, answers a pull, or finds the writer
//! unreachable: it is newer than anything the writer served.

use super::Ha;
use super::copies::{Claim, Following, Role, Stream, yields};
use crate::peer::wire::{PushAck, PushBody, ShardPush};
use coordinator::shard_map::MemberId;
use shard::point::now_nanos;
use shard::store::{Missing, Op, ShardSnapshot};

/// A push held back until its commit.
#[derive(Debug)]
enum Held {
    Ops(Vec<Op>),
    Full(ShardSnapshot),
}

/// One shard's staged pushes, all from one writer's term, in sequence order.
#[derive(Debug, Default)]
pub struct Inbox {
    stream: Option<Stream>,
    staged: Vec<(u64, Held)>,
}

impl Ha {
    /// A standby's side of a push (see the module docs).
    pub fn receive_push(&self, mut push: ShardPush) -> PushAck {
        let map = self.current_map();
        let stale = PushAck::Stale { epoch: map.epoch };
        if push.shard >= self.shards.shards {
            return stale;
        }
        let sender = MemberId(push.from);
        let sender_is_primary = map.primary(push.shard) == Some(&sender);
        if push.epoch <= map.epoch && !sender_is_primary {
            return stale;
        }
        if sender_is_primary && push.epoch < map.primary_since(push.shard) {
            // From the primary's previous term (it lost the shard and got it back): until it
            // takes the shard over again, its copy may be older than what was served meanwhile.
            return PushAck::OutOfSync;
        }
        let shift = now_nanos() - push.taken_at;
        self.metrics.ha.replication_lag.set(shift.max(0) as f64 / 1e9);
        let mut copies = self.copies.lock().expect("copies lock");
        let copy = &mut copies[push.shard as usize];
        if matches!(copy.role, Role::Writer { .. } | Role::Taking { .. }) {
            let me_primary = map.primary(push.shard) == Some(&self.me());
            if !yields(push.epoch, map.epoch, sender_is_primary, me_primary) {
                return stale;
            }
            // A quorum-loss writer reached by the shard's primary, or a writer whose map is
            // behind: stop, and follow once the control loop has stopped the actor.
            copy.claim = Some(Claim {
                by: sender,
                epoch: push.epoch,
            });
            return PushAck::OutOfSync;
        }
        let following = match copy.role {
            Role::Follower(f) if f.writer == sender => f,
            _ => Following::of(sender),
        };
        let shard = push.shard;
        let stream = Stream {
            writer: sender,
            term: push.term,
        };
        let (ack, following) = match push.body {
            PushBody::Commit => {
                self.apply_staged(shard, Some((stream, push.seq)));
                (PushAck::Accepted, following)
            }
            PushBody::Abort => {
                self.drop_staged(shard, stream, push.seq);
                let following = Following {
                    in_sync: false,
                    ..following
                };
                (PushAck::Accepted, following)
            }
            PushBody::Update { .. } if late_update(following, push.term, push.seq) => {
                // Sent before what this standby already staged, and overtaken by it on another
                // connection (the writer gave up on it and sent the next): nothing to apply,
                // and no gap.
                (PushAck::Accepted, following)
            }
            PushBody::Full(ref mut snapshot) => {
                snapshot.shift_received(shift);
                self.hold(shard, stream, push.seq, Held::Full(std::mem::take(snapshot)));
                let following = Following {
                    term: push.term,
                    seq: push.seq,
                    in_sync: true,
                    shift,
                    ..following
                };
                (PushAck::Accepted, following)
            }
            PushBody::Update { mut ops }
                if following.in_sync
                    && push.term == following.term
                    && push.seq == following.seq + 1
                    && ops.iter().all(|op| op.validate().is_ok()) =>
            {
                for op in &mut ops {
                    // The writer's clock, moved by the offset fixed at the whole copy: expiry
                    // decides here exactly as it did there.
                    op.shift(following.shift);
                }
                self.hold(shard, stream, push.seq, Held::Ops(ops));
                let following = Following {
                    seq: push.seq,
                    ..following
                };
                (PushAck::Accepted, following)
            }
            PushBody::Update { .. } => {
                let following = Following {
                    in_sync: false,
                    ..following
                };
                (PushAck::OutOfSync, following)
            }
        };
        copy.role = Role::Follower(following);
        tracing::trace!(shard, from = %sender, seq = push.seq, ?ack, "push");
        ack
    }

    /// Keeps a push of `stream` until its commit; counted as pending in the store, so reads
    /// of the shard wait for it. Whatever an earlier writer or term left staged is applied
    /// first.
    fn hold(&self, shard: u32, stream: Stream, seq: u64, held: Held) {
        let mut inbox = self.inboxes[shard as usize].lock().expect("inbox lock");
        if inbox.stream != Some(stream) {
            let earlier = std::mem::take(&mut inbox.staged);
            self.conclude_staged(shard, earlier, true);
            inbox.stream = Some(stream);
        }
        self.shards.stores[shard as usize]
            .write()
            .expect("store lock")
            .stage_begin();
        inbox.staged.push((seq, held));
    }

    /// Applies what is staged for `shard`: up to push `seq` of a stream, or everything with
    /// `None` (the writer is gone or this replica is about to write or hand the shard over).
    pub(super) fn apply_staged(&self, shard: u32, upto: Option<(Stream, u64)>) {
        let mut inbox = self.inboxes[shard as usize].lock().expect("inbox lock");
        let due = match upto {
            Some((stream, _)) if inbox.stream != Some(stream) => return,
            Some((_, seq)) => {
                let keep = inbox
                    .staged
                    .iter()
                    .position(|(s, _)| *s > seq)
                    .unwrap_or(inbox.staged.len());
                inbox.staged.drain(..keep).collect()
            }
            None => std::mem::take(&mut inbox.staged),
        };
        self.conclude_staged(shard, due, true);
    }

    /// Drops what `stream` staged from push `seq` on (the writer aborted it).
    fn drop_staged(&self, shard: u32, stream: Stream, seq: u64) {
        let mut inbox = self.inboxes[shard as usize].lock().expect("inbox lock");
        if inbox.stream != Some(stream) {
            return;
        }
        let from = inbox
            .staged
            .iter()
            .position(|(s, _)| *s >= seq)
            .unwrap_or(inbox.staged.len());
        let dropped = inbox.staged.split_off(from);
        self.conclude_staged(shard, dropped, false);
    }

    /// Forgets everything staged for `shard` (its copy is being cleared).
    pub(super) fn drop_all_staged(&self, shard: u32) {
        let mut inbox = self.inboxes[shard as usize].lock().expect("inbox lock");
        let dropped = std::mem::take(&mut inbox.staged);
        inbox.stream = None;
        self.conclude_staged(shard, dropped, false);
    }

    /// Applies (or drops) staged pushes in order and ends their pending count.
    fn conclude_staged(&self, shard: u32, pushes: Vec<(u64, Held)>, apply: bool) {
        if pushes.is_empty() {
            return;
        }
        {
            let mut store = self.shards.stores[shard as usize].write().expect("store lock");
            for (seq, held) in pushes {
                let what = match &held {
                    Held::Full(copy) => format!("whole shard ({} nodes)", copy.nodes.len()),
                    Held::Ops(ops) => format!("{} ops", ops.len()),
                };
                tracing::debug!(shard, seq, apply, %what, "staged push concluded");
                if apply {
                    match held {
                        Held::Full(snapshot) => {
                            store.replace_from(snapshot, Missing::Forget);
                        }
                        Held::Ops(ops) => {
                            for op in &ops {
                                let _ = store.apply(op);
                            }
                        }
                    }
                }
                store.stage_end();
            }
        }
        self.shards.notify_published(shard);
    }

    /// Whether something is staged for `shard`.
    pub(super) fn has_staged(&self, shard: u32) -> bool {
        !self.inboxes[shard as usize]
            .lock()
            .expect("inbox lock")
            .staged
            .is_empty()
    }
}

/// Whether an update numbered `seq` in term `term` of the writer this standby follows was
/// overtaken by a later push it already staged. A writer whose push timed out sends the next
/// one on another connection, so the late one can arrive second; taking it for a gap made the
/// standby out of sync (not authoritative) until the writer's next push, and a writer frozen in
/// between left the shard without any authoritative copy (campaign seed 198010: 20 pods absent
/// 3.1 s during freeze-follower).
///
/// Only within one term: a writer that takes the shard over again numbers its pushes from 1
/// again. Taking a new term's updates for late ones of the old term acknowledged them unapplied,
/// so the writer counted the standby in sync and leased it the shard while its copy stayed
/// where the old term left it (chaos seed 22, partition-follower: two replicas served 8 s old
/// points until they expired). An update of another term is a gap: the standby waits for the
/// term's whole copy.
fn late_update(following: Following, term: u64, seq: u64) -> bool {
    following.in_sync && term == following.term && seq <= following.seq
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: u64 = 40;

    fn following(seq: u64, in_sync: bool) -> Following {
        Following {
            term: TERM,
            seq,
            in_sync,
            ..Following::of(MemberId(1))
        }
    }

    #[test]
    fn an_update_overtaken_by_a_later_push_is_no_gap() {
        assert!(
            late_update(following(7, true), TERM, 6),
            "sent before the push staged last"
        );
        assert!(late_update(following(7, true), TERM, 7), "the same push twice");
        assert!(!late_update(following(7, true), TERM, 8), "the next one is staged");
        assert!(!late_update(following(7, true), TERM, 9), "a real gap stays a gap");
        assert!(
            !late_update(following(7, false), TERM, 6),
            "out of sync: only a whole shard helps"
        );
    }

    #[test]
    fn a_new_terms_updates_are_never_taken_for_late_ones() {
        // Seed 22: the standby had staged push 43 of the writer's old term; the new term's
        // pushes 1, 2, ... were acknowledged as late and never applied.
        assert!(
            !late_update(following(43, true), TERM + 1, 1),
            "a new term numbers from 1"
        );
        assert!(!late_update(following(43, true), TERM - 1, 1), "nor an older term");
    }
}
