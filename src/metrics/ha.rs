//! The replica set's self-metrics (`ha_metrics_server_*`): leadership, term, map epoch, shards
//! held, quorum-loss mode, fan-out partial answers and duration, standby replication lag.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabel {
    pub member: String,
}

pub struct HaMetrics {
    /// 1, labelled with this incarnation's Raft member id (changes when the data dir is lost).
    pub member_info: Family<MemberLabel, Gauge>,
    pub is_leader: Gauge,
    pub term: Gauge,
    pub epoch: Gauge,
    pub shards: Family<RoleLabel, Gauge>,
    pub degraded: Gauge,
    pub fanout_partial: Counter,
    pub fanout_duration: Histogram,
    pub replication_lag: Gauge<f64, AtomicU64>,
    /// Pushes to a standby that failed or timed out (the standby is out of sync until the next).
    pub push_failures: Counter,
    /// Reads that found a shard's staged copies still unpublished after the wait (answered as
    /// stale for that shard).
    pub publish_waits_timed_out: Counter,
}

impl HaMetrics {
    pub fn register(registry: &mut Registry) -> HaMetrics {
        let m = HaMetrics {
            member_info: Family::default(),
            is_leader: Gauge::default(),
            term: Gauge::default(),
            epoch: Gauge::default(),
            shards: Family::default(),
            degraded: Gauge::default(),
            fanout_partial: Counter::default(),
            fanout_duration: Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            replication_lag: Gauge::default(),
            push_failures: Counter::default(),
            publish_waits_timed_out: Counter::default(),
        };
        registry.register(
            "ha_metrics_server_member_info",
            "1, labelled with this replica incarnation's Raft member id.",
            m.member_info.clone(),
        );
        registry.register(
            "ha_metrics_server_coordinator_is_leader",
            "1 on the Raft leader, else 0.",
            m.is_leader.clone(),
        );
        registry.register(
            "ha_metrics_server_coordinator_term",
            "Current Raft term, counted across replica sets (a set formed to replace a lost one starts above its terms).",
            m.term.clone(),
        );
        registry.register(
            "ha_metrics_server_shard_map_epoch",
            "Epoch of the applied shard map.",
            m.epoch.clone(),
        );
        registry.register(
            "ha_metrics_server_shards",
            "Shards this replica holds, by role.",
            m.shards.clone(),
        );
        registry.register(
            "ha_metrics_server_degraded",
            "1 while no Raft quorum is reachable and this replica scrapes orphaned shards.",
            m.degraded.clone(),
        );
        registry.register(
            "ha_metrics_server_fanout_partial",
            "Reads answered without some shards because no owner answered in time.",
            m.fanout_partial.clone(),
        );
        registry.register(
            "ha_metrics_server_fanout_duration_seconds",
            "Duration of fan-out reads to the shards' owners.",
            m.fanout_duration.clone(),
        );
        registry.register(
            "ha_metrics_server_replication_lag_seconds",
            "Age of the last standby copy received from a primary.",
            m.replication_lag.clone(),
        );
        registry.register(
            "ha_metrics_server_replication_push_failures",
            "Pushes to a standby that failed or timed out; the standby is out of sync until the writer's next push brings it the whole shard.",
            m.push_failures.clone(),
        );
        registry.register(
            "ha_metrics_server_publish_waits_timed_out",
            "Reads of a shard whose staged copies were still unpublished after the wait; the shard was answered as stale.",
            m.publish_waits_timed_out.clone(),
        );
        m.set_shards(0, 0);
        m
    }

    pub fn set_shards(&self, primaries: i64, standbys: i64) {
        for (role, n) in [("primary", primaries), ("standby", standbys)] {
            self.shards.get_or_create(&RoleLabel { role: role.into() }).set(n);
        }
    }
}
