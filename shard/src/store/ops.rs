//! Replication by replay: with standbys, a writer does not change its store directly. Every
//! change (a node's parsed scrape, the tick's expiry, nodes no longer scraped, a holder's newer
//! copy) is an [`Op`]; the writer sends its ops to the standbys in order and, once they hold
//! them, applies the same ops in the same order to its own store ([`Store::apply`]). A standby
//! in sync applies them too, so both stores go through the same states, computed by the same
//! code from the same bytes (a scrape travels as [`encode_scrape`] wrote it, not as kubelet
//! text: the standby does not depend on parser limits or versions). This replaces sending each
//! node's whole copy after every scrape, which cost a snapshot, two copies and a rebuild of the
//! node on both sides.
//!
//! Times: the `now` of an op is the writer's clock. A standby adds its constant offset from the
//! writer ([`Op::shift`], fixed when it took the writer's whole copy), so expiry compares the
//! same differences on both sides.

use super::snapshot::NodeSnapshot;
use super::{NodeScrape, PodScrape, Store};
use crate::point::{MetricsPoint, Nanos};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One change to a shard's store, in the order the writer made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A node's scrape ([`encode_scrape`]), stored at `now`: [`Store::insert_node`].
    Insert { node: String, scrape: Bytes, now: Nanos },
    /// The shard actor's tick: [`Store::expire`].
    Expire { now: Nanos, max_age: Nanos },
    /// Nodes no longer scraped by the shard: [`Store::remove_node`].
    Forget { nodes: Vec<String> },
    /// A holder's copy of a node, newer than ours when staged (a quorum-loss writer's
    /// hand-over): [`Store::restore_node`] unless ours has become newer since.
    Restore { node: String, copy: NodeSnapshot },
}

/// Why an encoded scrape could not be read: a peer that is not this version, or corruption.
#[derive(Debug, thiserror::Error)]
#[error("undecodable replicated scrape of node {node}: {error}")]
pub struct OpError {
    pub node: String,
    pub error: String,
}

/// A node's scrape as replicated: exactly what [`Store::insert_node`] takes.
#[derive(Debug, Serialize, Deserialize)]
struct WireScrape<'a> {
    node: Option<MetricsPoint>,
    #[serde(borrow)]
    pods: Vec<WirePod<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WirePod<'a> {
    #[serde(borrow)]
    namespace: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    containers: Vec<(Cow<'a, str>, MetricsPoint)>,
}

/// The bytes of [`Op::Insert`]'s scrape.
pub fn encode_scrape(scrape: NodeScrape<'_>) -> Bytes {
    let wire = WireScrape {
        node: scrape.node,
        pods: scrape
            .pods
            .iter()
            .map(|p| WirePod {
                namespace: Cow::Borrowed(p.namespace),
                name: Cow::Borrowed(p.name),
                containers: p
                    .containers
                    .iter()
                    .map(|(n, point)| (Cow::Borrowed(*n), *point))
                    .collect(),
            })
            .collect(),
    };
    Bytes::from(bincode::serialize(&wire).expect("a scrape always encodes"))
}

impl Op {
    /// Whether applying the op can make something newer servable (a reader waits for it).
    pub fn renews(&self) -> bool {
        matches!(self, Op::Insert { .. } | Op::Restore { .. })
    }

    /// The node an insert or restore is about.
    pub fn node(&self) -> Option<&str> {
        match self {
            Op::Insert { node, .. } | Op::Restore { node, .. } => Some(node),
            Op::Expire { .. } | Op::Forget { .. } => None,
        }
    }

    /// Moves the op's times onto a clock `by` ns ahead of the writer's.
    pub fn shift(&mut self, by: Nanos) {
        match self {
            Op::Insert { now, .. } | Op::Expire { now, .. } => *now = now.saturating_add(by),
            Op::Restore { copy, .. } => copy.shift_received(by),
            Op::Forget { .. } => {}
        }
    }

    /// Checks that an insert's scrape decodes, so that a standby refuses a bad push whole
    /// instead of applying part of it.
    pub fn validate(&self) -> Result<(), OpError> {
        match self {
            Op::Insert { node, scrape, .. } => decode(node, scrape).map(|_| ()),
            _ => Ok(()),
        }
    }
}

fn decode<'a>(node: &str, scrape: &'a [u8]) -> Result<WireScrape<'a>, OpError> {
    bincode::deserialize(scrape).map_err(|e| OpError {
        node: node.to_string(),
        error: e.to_string(),
    })
}

impl Store {
    /// Applies one op (see the module docs). An insert whose scrape does not decode changes
    /// nothing and is returned as an error (callers validate first).
    pub fn apply(&mut self, op: &Op) -> Result<(), OpError> {
        match op {
            Op::Insert { node, scrape, now } => {
                let wire = decode(node, scrape)?;
                let containers: Vec<Vec<(&str, MetricsPoint)>> = wire
                    .pods
                    .iter()
                    .map(|p| p.containers.iter().map(|(n, point)| (&**n, *point)).collect())
                    .collect();
                let pods: Vec<PodScrape<'_>> = wire
                    .pods
                    .iter()
                    .zip(&containers)
                    .map(|(p, c)| PodScrape {
                        namespace: &p.namespace,
                        name: &p.name,
                        containers: c,
                    })
                    .collect();
                self.insert_node(
                    node,
                    NodeScrape {
                        node: wire.node,
                        pods: &pods,
                    },
                    *now,
                );
            }
            Op::Expire { now, max_age } => self.expire(*now, *max_age),
            Op::Forget { nodes } => {
                for node in nodes {
                    self.remove_node(node);
                }
            }
            Op::Restore { node, copy } => {
                if self.takes(node, copy) {
                    self.restore_node(node, copy.clone());
                }
            }
        }
        Ok(())
    }

    /// What a writer does with an op no standby holds (withheld, see `stage.rs`): a scrape is
    /// not stored, but the node's published copy is renewed so that it does not expire; a
    /// holder's copy is not taken; expiry and forgetting happen as they would.
    pub fn withhold(&mut self, op: &Op) {
        match op {
            Op::Insert { node, now, .. } => self.withhold_node(node, *now),
            Op::Restore { .. } => {}
            Op::Expire { .. } | Op::Forget { .. } => {
                let _ = self.apply(op);
            }
        }
    }
}
