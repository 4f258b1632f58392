//! Pushes to one standby travel together. Every shard has its own push in flight (see
//! `replicate.rs`), and a writer of thousands of nodes stages hundreds of pushes a second; one
//! mutual-TLS HTTP exchange each made the peer channel's per-request cost (records, syscalls,
//! wake-ups on both sides) the largest part of replication. A push to a standby waits here at
//! most [`PUSH_LINGER`] for others to the same standby, and they go as one request, answered by
//! one list of acks in the same order. A batch is sent early once it holds [`PUSH_BATCH_BYTES`].

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

/// The batch being gathered for one standby.
#[derive(Default)]
struct Gathering {
    pushes: Vec<ShardPush>,
    answers: Vec<Answer>,
    bytes: usize,
    /// A task sends the batch when the linger ends.
    scheduled: bool,
}

/// The batches being gathered, per standby.
#[derive(Default)]
pub struct Couriers {
    gathering: Mutex<HashMap<MemberId, Gathering>>,
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
            SendNow(Gathering),
            SendAfterLinger,
            Wait,
        }
        let next = {
            let mut gathering = self.gathering.lock().expect("courier lock");
            let batch = gathering.entry(standby).or_default();
            batch.pushes.push(push);
            batch.answers.push(answer);
            batch.bytes += size;
            if now || batch.bytes >= PUSH_BATCH_BYTES {
                // A task already waiting out the linger finds an empty batch and sends nothing.
                Next::SendNow(std::mem::take(batch))
            } else if !batch.scheduled {
                batch.scheduled = true;
                Next::SendAfterLinger
            } else {
                Next::Wait
            }
        };
        let client = client.clone();
        let address = address.to_string();
        match next {
            Next::SendNow(batch) => {
                tokio::spawn(send(client, address, batch));
            }
            Next::SendAfterLinger => {
                let couriers = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(PUSH_LINGER).await;
                    let batch = couriers
                        .gathering
                        .lock()
                        .expect("courier lock")
                        .remove(&standby)
                        .unwrap_or_default();
                    send(client, address, batch).await;
                });
            }
            Next::Wait => {}
        }
        ack.await.unwrap_or_else(|_| Err("the batch was dropped".into()))
    }
}

/// Sends one batch and hands each push its ack (or the batch's error).
async fn send(client: PeerClient, address: String, batch: Gathering) {
    if batch.pushes.is_empty() {
        return;
    }
    let timeout = super::replicate::PUSH_TIMEOUT;
    let acks: Result<Vec<PushAck>, _> = client.call(&address, path::REPLICATE, &batch.pushes, timeout).await;
    match acks {
        Ok(acks) if acks.len() == batch.answers.len() => {
            for (answer, ack) in batch.answers.into_iter().zip(acks) {
                let _ = answer.send(Ok(ack));
            }
        }
        Ok(acks) => {
            let error = format!("{} acks for {} pushes", acks.len(), batch.answers.len());
            for answer in batch.answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
        Err(e) => {
            let error = e.to_string();
            for answer in batch.answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
    }
}
