//! Tests only: which member owns a node, with the hash the replicas use (`shard::hash`, a
//! dev-dependency of this crate).

use super::{MemberId, ShardMap};

impl ShardMap {
    /// The primary of the shard that `node_name` hashes to; `None` before `Init` or when no
    /// member is Up.
    pub fn owner_for_node(&self, node_name: &str) -> Option<&MemberId> {
        if !self.is_initialized() {
            return None;
        }
        self.primary(shard::hash::shard_of(node_name, self.shard_count))
    }
}
