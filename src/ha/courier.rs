//! Pushes to one standby travel together. Every shard has its own push in flight (see
//! `replicate.rs`), and a writer of thousands of nodes stages hundreds of pushes a second; one
//! mutual-TLS HTTP exchange each made the peer channel's per-request cost (records, syscalls,
//! wake-ups on both sides) the largest part of replication. Pushes to a standby go as one
//! request, answered by one list of acks in the same order, and at most one such request is in
//! flight per standby: what comes meanwhile waits for it and goes in the next. A push waits at
//! most [`PUSH_LINGER`] for others before a request starts; a commit (which readers of the
//! standby may be waiting for) starts one at once. A batch is sent early once it holds
//! [`PUSH_BATCH_BYTES`]. One request at a time also keeps the peer client's idle connections
//! enough for replication: bursts of concurrent requests opened new connections (a TLS
//! handshake each) and closed them again.

use crate::peer::transport::PeerClient;
use crate::peer::wire::{PushAck, PushBody, ShardPush, path};
use coordinator::shard_map::MemberId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a push waits for others to the same standby.
pub const PUSH_LINGER: Duration = Duration::from_millis(20);
/// A batch this large (estimated bincode bytes) is sent without waiting out the linger; well
/// under the peer request cap.
pub const PUSH_BATCH_BYTES: usize = 4 * 1024 * 1024;

type Answer = oneshot::Sender<Result<PushAck, String>>;

/// What is on its way to one standby.
#[derive(Default)]
struct Lane {
    pushes: Vec<ShardPush>,
    answers: Vec<Answer>,
    bytes: usize,
    /// A request to the standby is in flight; its sender sends what gathered meanwhile next.
    in_flight: bool,
    /// A task waits out the linger to start a request.
    lingering: bool,
}

impl Lane {
    /// Takes what gathered, as the next request.
    fn take(&mut self) -> (Vec<ShardPush>, Vec<Answer>) {
        self.bytes = 0;
        (std::mem::take(&mut self.pushes), std::mem::take(&mut self.answers))
    }
}

/// The lanes, per standby.
#[derive(Default)]
pub struct Couriers {
    lanes: Mutex<HashMap<MemberId, Lane>>,
}

/// About how many bytes a push takes in bincode: its scrapes for an update (the rest is small),
/// the encoder's own count for a whole shard (rare: a standby out of sync).
fn size_of(push: &ShardPush) -> usize {
    match &push.body {
        PushBody::Update { ops } => ops.iter().map(|op| 64 + op_bytes(op)).sum(),
        PushBody::Full(copy) => bincode::serialized_size(copy).map_or(PUSH_BATCH_BYTES, |n| n as usize),
        PushBody::Commit | PushBody::Abort => 64,
    }
}

fn op_bytes(op: &shard::store::Op) -> usize {
    match op {
        shard::store::Op::Insert { scrape, .. } => scrape.len(),
        shard::store::Op::Forget { nodes } => nodes.iter().map(String::len).sum(),
        shard::store::Op::Restore { copy, .. } => bincode::serialized_size(copy).map_or(0, |n| n as usize),
        shard::store::Op::Expire { .. } => 0,
    }
}

impl Couriers {
    /// Sends `push` to `standby` (at `address`) with whatever else is on its way there; the
    /// standby's ack, or why none came within [`super::replicate::PUSH_TIMEOUT`] of sending.
    pub(super) async fn deliver(
        self: &Arc<Self>,
        client: &PeerClient,
        standby: MemberId,
        address: &str,
        push: ShardPush,
    ) -> Result<PushAck, String> {
        self.enqueue(client, standby, address, push, false).await
    }

    /// [`Couriers::deliver`] without lingering: the batch goes now (a commit, which readers
    /// of the standby may be waiting for, takes whatever is gathered along).
    pub(super) async fn deliver_now(
        self: &Arc<Self>,
        client: &PeerClient,
        standby: MemberId,
        address: &str,
        push: ShardPush,
    ) -> Result<PushAck, String> {
        self.enqueue(client, standby, address, push, true).await
    }

    async fn enqueue(
        self: &Arc<Self>,
        client: &PeerClient,
        standby: MemberId,
        address: &str,
        push: ShardPush,
        now: bool,
    ) -> Result<PushAck, String> {
        let (answer, ack) = oneshot::channel();
        let size = size_of(&push);
        enum Next {
            Send,
            Linger,
            Wait,
        }
        let next = {
            let mut lanes = self.lanes.lock().expect("courier lock");
            let lane = lanes.entry(standby).or_default();
            lane.pushes.push(push);
            lane.answers.push(answer);
            lane.bytes += size;
            if lane.in_flight {
                Next::Wait
            } else if now || lane.bytes >= PUSH_BATCH_BYTES {
                lane.in_flight = true;
                Next::Send
            } else if !lane.lingering {
                lane.lingering = true;
                Next::Linger
            } else {
                Next::Wait
            }
        };
        let (couriers, client, address) = (self.clone(), client.clone(), address.to_string());
        match next {
            Next::Send => {
                tokio::spawn(async move { couriers.run(&client, standby, &address).await });
            }
            Next::Linger => {
                tokio::spawn(async move {
                    tokio::time::sleep(PUSH_LINGER).await;
                    let start = {
                        let mut lanes = couriers.lanes.lock().expect("courier lock");
                        let lane = lanes.entry(standby).or_default();
                        lane.lingering = false;
                        let start = !lane.in_flight && !lane.pushes.is_empty();
                        lane.in_flight |= start;
                        start
                    };
                    if start {
                        couriers.run(&client, standby, &address).await;
                    }
                });
            }
            Next::Wait => {}
        }
        ack.await.unwrap_or_else(|_| Err("the batch was dropped".into()))
    }

    /// Sends the lane's batches one after the other until nothing is left (the caller set
    /// `in_flight`; this clears it).
    async fn run(&self, client: &PeerClient, standby: MemberId, address: &str) {
        loop {
            let (pushes, answers) = {
                let mut lanes = self.lanes.lock().expect("courier lock");
                let lane = lanes.entry(standby).or_default();
                if lane.pushes.is_empty() {
                    lane.in_flight = false;
                    return;
                }
                lane.take()
            };
            send(client, address, pushes, answers).await;
        }
    }
}

/// Sends one batch and hands each push its ack (or the batch's error).
async fn send(client: &PeerClient, address: &str, pushes: Vec<ShardPush>, answers: Vec<Answer>) {
    let timeout = super::replicate::PUSH_TIMEOUT;
    let acks: Result<Vec<PushAck>, _> = client.call(address, path::REPLICATE, &pushes, timeout).await;
    match acks {
        Ok(acks) if acks.len() == answers.len() => {
            for (answer, ack) in answers.into_iter().zip(acks) {
                let _ = answer.send(Ok(ack));
            }
        }
        Ok(acks) => {
            let error = format!("{} acks for {} pushes", acks.len(), answers.len());
            for answer in answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
        Err(e) => {
            let error = e.to_string();
            for answer in answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
    }
}
