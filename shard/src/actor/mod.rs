//! Shard actors (actix): each owns the scraping of one shard's nodes and writes that shard's
//! store. Read path: kubelet -> scrape -> parse -> store, driven from here.

pub mod messages;
pub mod observer;
pub mod publish;
pub mod set;
pub mod shard;

pub use messages::{ScrapeDone, SetTargets, Stop};
pub use observer::{NoObserver, ScrapeObserver};
pub use publish::{Publisher, Verdict};
pub use set::ShardSet;
pub use shard::{ShardActor, ShardContext};
