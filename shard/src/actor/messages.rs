//! Messages between the shard supervisor, shard actors and their scrape tasks.

use crate::scrape::{ScrapeError, ScrapeTarget, Scraped};
use crate::store::ShardSnapshot;
use actix::Message;
use std::sync::Arc;
use std::time::Duration;

/// The nodes a shard scrapes from now on (replaces the previous set).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SetTargets(pub Vec<ScrapeTarget>);

/// One kubelet request finished.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ScrapeDone {
    pub node: Arc<str>,
    pub result: Result<Scraped, ScrapeError>,
    pub took: Duration,
}

/// A staged change of the node was applied, withheld or dropped: the node is no longer in flight.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Published {
    pub node: Arc<str>,
}

/// Another holder's copy of the shard: its newer nodes are staged and published like scrapes
/// (resolves once they are).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Merge(pub ShardSnapshot);

/// The shard left this replica's scraping: the actor stops (its store is kept).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Stop;
