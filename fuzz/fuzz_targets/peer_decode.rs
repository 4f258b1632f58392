//! Fuzzes peer-channel decoding (`peer::transport::codec::decode`) for every message a replica
//! accepts: no input may panic or allocate beyond what the body holds (bincode limit = body
//! length), and a decoded message encodes again. From the repository root:
//!
//! ```sh
//! cargo +nightly fuzz run --fuzz-dir fuzz peer_decode -- -max_len=65536 -max_total_time=300
//! ```

#![no_main]

use ha_metrics_server::peer::transport::codec::{decode, encode};
use ha_metrics_server::peer::wire::{Info, JoinRequest, Ping, QueryRequest, QueryResponse, ShardPush};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn check<T: DeserializeOwned + Serialize>(body: &[u8]) {
    if let Ok(value) = decode::<T>(body) {
        // Not byte-identical in general: maps decode duplicate or unsorted keys.
        encode(&value, usize::MAX).expect("a decoded message encodes");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 6 {
        0 => check::<Info>(body),
        1 => check::<Ping>(body),
        2 => check::<JoinRequest>(body),
        3 => check::<QueryRequest>(body),
        4 => check::<QueryResponse>(body),
        _ => check::<ShardPush>(body),
    }
});
