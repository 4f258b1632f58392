//! The shard side of ha-metrics-server: the kubelet client, the `/metrics/resource` parser, the
//! sample store, the shard actors, which shard a node belongs to ([`hash`]) and the point type
//! with the server's clock ([`point`]). The label and field selectors live in `apimachinery`.

pub mod actor;
pub mod hash;
pub mod parse;
pub mod point;
pub mod scrape;
pub mod store;

pub use point::{MetricsPoint, Nanos};
