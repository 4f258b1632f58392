//! `ha-metrics-server status`: the replica set as operators want to see it — replicas, leader,
//! term, epoch, shards and nodes per replica, degraded replicas — asked over the peer channel
//! (so it needs a peer certificate, like a replica).

use crate::peer::transport::{PeerClient, PeerTls};
use crate::peer::wire::{Info, InfoRequest, path};
use clap::Parser;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Parser, Debug)]
#[command(
    name = "ha-metrics-server status",
    about = "Show the replica set, asked through one replica"
)]
pub struct StatusArgs {
    /// Peer address (`host:port`) of any replica.
    #[arg(long)]
    pub server: String,
    #[arg(long)]
    pub peer_cert_file: PathBuf,
    #[arg(long)]
    pub peer_key_file: PathBuf,
    #[arg(long)]
    pub peer_ca_file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
}

/// Asks `--server` for the map, then every member for its own view; prints the result.
pub async fn run(args: StatusArgs) -> anyhow::Result<String> {
    let tls = PeerTls::load(&args.peer_cert_file, &args.peer_key_file, &args.peer_ca_file)?;
    let client = PeerClient::new(&tls);
    let first: Info = client
        .call(&args.server, path::INFO, &InfoRequest::default(), STATUS_TIMEOUT)
        .await?;
    let mut rows: Vec<(String, Option<Info>)> = Vec::new();
    for member in first.map.members.values() {
        let info = client
            .call::<_, Info>(
                &member.peer_address,
                path::INFO,
                &InfoRequest::default(),
                STATUS_TIMEOUT,
            )
            .await
            .ok()
            .filter(|i| i.member == member.id.0);
        rows.push((member.name.clone(), info));
    }
    if args.output == "json" {
        let replicas: Vec<serde_json::Value> = first
            .map
            .members
            .values()
            .zip(&rows)
            .map(|(m, (_, info))| {
                serde_json::json!({
                    "name": m.name, "member": m.id.0, "address": m.peer_address,
                    "state": format!("{:?}", m.state), "voter": first.voters.contains(&m.id.0), "reachable": info.is_some(),
                    "leader": info.as_ref().is_some_and(|i| i.leader.as_ref().is_some_and(|l| l.0 == m.id.0)),
                    "term": info.as_ref().map(|i| i.term), "epoch": info.as_ref().map(|i| i.epoch),
                    "degraded": info.as_ref().map(|i| i.degraded),
                    "primaryShards": first.map.shards_of(m.id).0.len(),
                    "standbyShards": first.map.shards_of(m.id).1.len(),
                    "nodes": info.as_ref().map(|i| i.nodes),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "leader": first.leader.as_ref().map(|l| l.0), "term": first.term, "epoch": first.map.epoch,
            "shards": first.map.shard_count, "replicationFactor": first.map.replication_factor,
            "replicas": replicas,
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    Ok(table(&first, &rows))
}

fn table(first: &Info, rows: &[(String, Option<Info>)]) -> String {
    let map = &first.map;
    let leader = first.leader.as_ref().map(|l| l.0);
    let mut out = String::new();
    let leader_name = map
        .members
        .values()
        .find(|m| Some(m.id.0) == leader)
        .map_or("none", |m| m.name.as_str());
    let _ = writeln!(
        out,
        "LEADER: {leader_name}   TERM: {}   EPOCH: {}   SHARDS: {}   REPLICATION: {}",
        first.term, map.epoch, map.shard_count, map.replication_factor
    );
    let _ = writeln!(
        out,
        "{:<28} {:<20} {:<6} {:<7} {:<9} {:>8} {:>8} {:>6} {:<8}",
        "REPLICA", "MEMBER", "STATE", "ROLE", "REACHABLE", "PRIMARY", "STANDBY", "NODES", "DEGRADED"
    );
    for (member, (_, info)) in map.members.values().zip(rows) {
        let (primaries, standbys) = map.shards_of(member.id);
        let role = match (Some(member.id.0) == leader, first.voters.contains(&member.id.0)) {
            (true, _) => "leader",
            (false, true) => "voter",
            (false, false) => "learner",
        };
        let _ = writeln!(
            out,
            "{:<28} {:<20} {:<6} {:<7} {:<9} {:>8} {:>8} {:>6} {:<8}",
            member.name,
            member.id.0,
            format!("{:?}", member.state),
            role,
            if info.is_some() { "yes" } else { "no" },
            primaries.len(),
            standbys.len(),
            info.as_ref().map_or("-".into(), |i| i.nodes.to_string()),
            info.as_ref().map_or("-", |i| if i.degraded { "yes" } else { "no" }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coordinator::shard_map::{Member, MemberId, MemberState, ShardMap};

    #[test]
    fn a_voter_is_shown_as_one_even_before_the_map_says_so() {
        let mut map = ShardMap::default();
        for (id, name) in [(1, "r0"), (2, "r1")] {
            let member = Member {
                id: MemberId(id),
                name: name.into(),
                peer_address: String::new(),
                state: MemberState::Up,
                // The map lags: r1 was swapped in for an old voter, its flag not yet proposed.
                voter: id == 1,
            };
            map.members.insert(MemberId(id), member);
        }
        let first = Info {
            name: "r0".into(),
            member: 1,
            address: String::new(),
            initialized: true,
            leader: Some((1, String::new())),
            term: 3,
            epoch: 4,
            degraded: false,
            quorum: true,
            primaries: 0,
            standbys: 0,
            nodes: 0,
            map,
            voters: vec![1, 2],
        };
        let out = table(&first, &[("r0".into(), None), ("r1".into(), None)]);
        let r1 = out.lines().find(|l| l.starts_with("r1")).expect("a row for r1");
        assert!(r1.contains(" voter "), "{out}");
        assert!(!out.contains("learner"), "{out}");
    }
}
