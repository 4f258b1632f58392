//! Fuzzes what the Metrics API reads from a request line: `ListParams::parse` (selectors,
//! percent-decoding, `watch`, `includeObject`) and the authorization attributes of a path and
//! query. No input may panic. From the repository root:
//!
//! ```sh
//! cargo +nightly fuzz run --fuzz-dir fuzz query -- -max_len=20000 -max_total_time=300
//! ```

#![no_main]

use ha_metrics_server::api::error::MetricsResource;
use ha_metrics_server::auth::attributes::Attributes;
use ha_metrics_server::query::ListParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    for resource in [MetricsResource::Nodes, MetricsResource::Pods] {
        let _ = ListParams::parse(query, resource);
    }
    for method in ["GET", "HEAD", "POST", "DELETE"] {
        let attrs = Attributes::of(method, path, query);
        assert!(!attrs.verb().is_empty(), "every known method maps to a verb");
    }
});
