//! Fuzzes `shard::parse::decode` with libFuzzer: no input may panic, and every batch it
//! returns keeps the invariants below. The property tests in `shard/src/parse/proptests.rs`
//! check the same on stable Rust.
//!
//! Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). From `shard/`:
//!
//! ```sh
//! cargo +nightly fuzz run decode fuzz/corpus/decode fuzz/seeds -- \
//!     -dict=fuzz/decode.dict -max_len=8192 -max_total_time=900
//! ```
//!
//! New inputs go to `fuzz/corpus/decode` (ignored by git); a crash is written to
//! `fuzz/artifacts/decode/` and replays with `cargo +nightly fuzz run decode <file>`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shard::parse::{Limits, decode};

fuzz_target!(|data: &[u8]| {
    let (limits, body) = limits(data);
    let Ok(batch) = decode(body, 1, &limits) else { return };
    if let Some(node) = batch.node {
        assert!(node.timestamp != 0 && node.cumulative_cpu != 0 && node.memory != 0);
    }
    for pod in &batch.pods {
        assert!(!pod.containers.is_empty() && !pod.name.is_empty() && !pod.namespace.is_empty());
        for c in &pod.containers {
            assert!(c.point.cumulative_cpu != 0 && c.point.memory != 0 && !c.name.is_empty());
        }
    }
    let stats = &batch.stats;
    assert!(stats.samples + stats.malformed_lines + stats.invalid_values <= stats.lines);
    assert_eq!(stats.node_incomplete, batch.node.is_none());
});

/// A first byte of `0xff` picks small limits from the second byte, so the bounds get fuzzed
/// too; any other input is a body decoded with the default limits.
fn limits(data: &[u8]) -> (Limits, &[u8]) {
    match data {
        [0xff, b, body @ ..] => {
            let max_series = usize::from(b & 0x0f);
            let max_label_len = usize::from(b >> 4) * 2;
            (
                Limits {
                    max_series,
                    max_label_len,
                },
                body,
            )
        }
        _ => (Limits::default(), data),
    }
}
