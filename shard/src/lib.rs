//! The shard side of ha-metrics-server: the kubelet client, the `/metrics/resource` parser, the
//! sample store and the shard actors, plus the label and field selectors used to filter queries.

pub mod actor;
pub mod hash;
pub mod parse;
pub mod point;
pub mod scrape;
pub mod store;

pub use point::{MetricsPoint, Nanos};
