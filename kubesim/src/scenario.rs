//! YAML scenarios: a cluster's shape and a timeline of actions (faults, lifecycle events)
//! played against a running cluster.

use crate::cluster::Cluster;
use crate::cluster::actions::Action;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub nodes: Option<u32>,
    #[serde(default)]
    pub pods_per_node: Option<u32>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub timeline: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Offset from the start, as `500ms`, `30s`, `2m` or `1h`.
    pub at: String,
    pub action: Action,
}

impl Scenario {
    pub fn parse(yaml: &str) -> anyhow::Result<Scenario> {
        let scenario: Scenario = serde_saphyr::from_str(yaml).map_err(|e| anyhow::anyhow!("invalid scenario: {e}"))?;
        for step in &scenario.timeline {
            parse_duration(&step.at)?;
        }
        Ok(scenario)
    }

    /// Plays the timeline; a failed action is logged and the timeline goes on.
    pub async fn play(&self, cluster: &Cluster) {
        let start = tokio::time::Instant::now();
        let mut steps: Vec<_> = self
            .timeline
            .iter()
            .map(|s| (parse_duration(&s.at).unwrap_or_default(), s))
            .collect();
        steps.sort_by_key(|(at, _)| *at);
        for (at, step) in steps {
            tokio::time::sleep_until(start + at).await;
            match cluster.act(step.action.clone()).await {
                Ok(result) => {
                    tracing::info!(at = %step.at, action = ?step.action, %result, "scenario step")
                }
                Err(e) => {
                    tracing::warn!(at = %step.at, action = ?step.action, error = %e, "scenario step failed")
                }
            }
        }
    }
}

/// Parses a Go duration (`250ms`, `15s`, `2m`, `1h30m`, `1.5s`) with the workspace's one codec.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    apimachinery::duration::parse(text).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn parses_a_timeline() {
        let yaml = r#"
nodes: 4
podsPerNode: 3
timeline:
  - at: 10s
    action:
      fault: {node: node-1, fault: {kind: http500}}
  - at: 20s
    action:
      restartContainer: {namespace: default, name: web-1, container: web}
  - at: 30s
    action:
      addPod: {node: node-2, containers: 2}
"#;
        let s = Scenario::parse(yaml).unwrap();
        assert_eq!(s.nodes, Some(4));
        assert_eq!(s.timeline.len(), 3);
        assert_eq!(
            s.timeline[0].action,
            Action::Fault {
                node: "node-1".into(),
                fault: crate::kubelet::Fault::Http500
            }
        );
        assert!(Scenario::parse("timeline:\n  - at: 1s\n    action: {explode: {}}\n").is_err());
    }
}
