//! The run's report: `report.json` (everything), `summary.txt` (what a person reads first:
//! verdicts, faults, availability, longest gaps per fault, election times, the client-visible
//! error window per fault kind, scrape load, the reproduce command) and `timeline.svg`.

pub mod svg;
pub mod unavailability;

use super::RunConfig;
use super::checker::Checked;
use super::invariants::Verdict;
use super::journal::{FaultSpan, ReplicaSample, RunMs, Timeline};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// Whether the replica set was whole again after the faults stopped.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub ok: bool,
    pub millis: i64,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Election {
    pub fault: String,
    pub at: RunMs,
    /// From the fault to the first sample of another replica leading; `None` if none did.
    pub new_leader_after_ms: Option<RunMs>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub seed: u64,
    pub reproduce: String,
    pub passed: bool,
    pub nodes: u32,
    pub pods: u32,
    pub replicas: usize,
    pub resolution_ms: i64,
    pub run_ms: RunMs,
    pub partitions: String,
    /// Set if the run stopped early (a replica never became ready, a fault failed to apply).
    pub run_error: Option<String>,
    pub recovery: Option<Recovery>,
    pub invariants: Vec<Verdict>,
    pub elections: Vec<Election>,
    /// What clients of the APIService saw during each fault (failed requests, their window).
    pub unavailability: unavailability::Unavailability,
    pub requests: std::collections::BTreeMap<String, u64>,
    pub timeline: Timeline,
    #[serde(skip)]
    pub samples: Vec<ReplicaSample>,
    #[serde(skip)]
    pub errors: Vec<RunMs>,
    #[serde(skip)]
    pub absences: Vec<(RunMs, RunMs)>,
}

pub fn build(
    config: &RunConfig,
    partitions_off: Option<String>,
    timeline: Timeline,
    checked: Checked,
    outcome: Result<Recovery, String>,
    end: RunMs,
) -> Report {
    let (recovery, run_error) = match outcome {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    let passed =
        run_error.is_none() && recovery.as_ref().is_some_and(|r| r.ok) && checked.verdicts.iter().all(Verdict::passed);
    let mut verdicts = checked.verdicts;
    for v in &mut verdicts {
        for &t in &v.times {
            let kind = timeline
                .fault_before(t)
                .map_or("before any fault".to_string(), |f| f.kind.clone());
            *v.by_fault.entry(kind).or_default() += 1;
        }
    }
    let elections = timeline
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind.contains("leader") || f.kind.starts_with("kill-all"))
        .map(|(i, f)| {
            // An election after the next fault began belongs to that fault.
            let until = timeline.faults.get(i + 1).map_or(RunMs::MAX, |next| next.start);
            election(f, &checked.samples, until)
        })
        .collect();
    let unavailability = unavailability::measure(&timeline, &checked.proxy_failures);
    Report {
        seed: config.seed,
        reproduce: config.reproduce(),
        passed,
        nodes: config.nodes,
        pods: config.nodes * config.pods_per_node,
        replicas: config.replicas,
        resolution_ms: config.resolution_ms(),
        run_ms: end,
        partitions: partitions_off.map_or("on (iptables cgroup match in a private netns)".into(), |w| {
            format!("off: {w}")
        }),
        run_error,
        recovery,
        invariants: verdicts,
        elections,
        unavailability,
        requests: checked.requests,
        timeline,
        samples: checked.samples,
        errors: checked.errors.iter().map(|e| e.0).collect(),
        absences: checked.absences,
    }
}

/// When a leader other than the one before `fault` first showed, if before `until`.
fn election(fault: &FaultSpan, samples: &[ReplicaSample], until: RunMs) -> Election {
    let old: Option<usize> = fault
        .target
        .strip_prefix('r')
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok());
    // The old leadership as (term, member); a replica set formed anew (its voters' data dirs
    // lost) starts again at term 1, so a leader counts as new by either.
    let old_leadership = samples
        .iter()
        .filter(|s| s.at <= fault.start && s.leader)
        .map(|s| (s.term, s.member))
        .max()
        .unwrap_or_default();
    let new_leader_after_ms = samples
        .iter()
        .find(|s| {
            let (term, member) = old_leadership;
            // The target coming back as the same incarnation (unfrozen, or restarted with its
            // data) does not count; a fresh incarnation of it leads a new term legitimately.
            let returned = Some(s.replica) == old && s.member == member;
            s.at > fault.start && s.at < until && s.leader && (s.term > term || s.member != member) && !returned
        })
        .map(|s| s.at - fault.start);
    Election {
        fault: fault.kind.clone(),
        at: fault.start,
        new_leader_after_ms,
    }
}

/// Writes `report.json`, `summary.txt` and `timeline.svg` into `dir`.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(report)?)?;
    std::fs::write(dir.join("summary.txt"), summary(report))?;
    std::fs::write(dir.join("timeline.svg"), svg::render(report))?;
    Ok(())
}

pub fn summary(r: &Report) -> String {
    let mut out = String::new();
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(
        out,
        "chaos run {verdict}: seed {} ({} nodes, {} pods, {} replicas, resolution {} ms, {:.0} s)",
        r.seed,
        r.nodes,
        r.pods,
        r.replicas,
        r.resolution_ms,
        r.run_ms as f64 / 1000.0
    );
    let _ = writeln!(out, "partitions: {}", r.partitions);
    if let Some(e) = &r.run_error {
        let _ = writeln!(out, "RUN STOPPED EARLY: {e}");
    }
    if let Some(rec) = &r.recovery {
        let _ = writeln!(
            out,
            "recovery after the faults: {} in {} ms{}",
            if rec.ok { "whole" } else { "NOT whole" },
            rec.millis,
            rec.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\ninvariants:");
    for v in &r.invariants {
        let _ = writeln!(
            out,
            "  {:<5} {:<24} checked {:>7}, excused {:>5}, violations {:>4}  {}",
            if v.passed() { "ok" } else { "FAIL" },
            v.name,
            v.checked,
            v.excused,
            v.violations,
            v.stats
        );
        if !v.by_fault.is_empty() {
            let _ = writeln!(out, "          violations after each fault kind: {:?}", v.by_fault);
        }
        for e in &v.examples {
            let _ = writeln!(out, "          {e}");
        }
    }
    let _ = writeln!(out, "\nfaults ({}):", r.timeline.faults.len());
    for f in &r.timeline.faults {
        let end = f.end.map_or("-".into(), |e| format!("{:.1}", e as f64 / 1000.0));
        let _ = writeln!(
            out,
            "  {:>6.1}s .. {:>6}s  {:<22} {}",
            f.start as f64 / 1000.0,
            end,
            f.kind,
            f.target
        );
    }
    let _ = writeln!(out, "\nnew leader after leader faults:");
    for e in &r.elections {
        let ms = e
            .new_leader_after_ms
            .map_or("none (old leader kept or returned)".into(), |m| format!("{m} ms"));
        let _ = writeln!(out, "  {:>6.1}s {:<22} {ms}", e.at as f64 / 1000.0, e.fault);
    }
    let _ = writeln!(out, "\n{}", unavailability::summary(&r.unavailability).trim_end());
    let _ = writeln!(out, "\nrequests by client: {:?}", r.requests);
    let _ = writeln!(out, "\nreproduce: {}", r.reproduce);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: &str, target: &str) -> FaultSpan {
        FaultSpan {
            kind: kind.into(),
            target: target.into(),
            start: 1_000,
            end: Some(5_000),
            disrupted: vec![],
            nodes: vec![],
            lying: false,
            gap_budget_ms: None,
            split_views: false,
        }
    }

    fn leader(replica: usize, member: u64, term: u64, at: RunMs) -> ReplicaSample {
        ReplicaSample {
            replica,
            incarnation: 0,
            member,
            at,
            leader: true,
            term,
            epoch: 1,
            primaries: 0,
            standbys: 0,
            degraded: false,
        }
    }

    #[test]
    fn a_fresh_incarnation_of_the_target_counts_as_a_new_leader() {
        let samples = [leader(0, 10, 5, 500), leader(0, 99, 1, 3_000), leader(1, 11, 2, 9_000)];
        let e = election(&fault("kill-all-but-one-fresh", "r0,r2"), &samples, RunMs::MAX);
        assert_eq!(e.new_leader_after_ms, Some(2_000));
    }

    #[test]
    fn the_old_leader_coming_back_does_not_count() {
        let samples = [leader(0, 10, 5, 500), leader(0, 10, 5, 3_000), leader(1, 11, 6, 4_000)];
        let e = election(&fault("freeze-leader", "r0"), &samples, RunMs::MAX);
        assert_eq!(e.new_leader_after_ms, Some(3_000));
        let e = election(&fault("freeze-leader", "r0"), &samples, 3_500);
        assert_eq!(
            e.new_leader_after_ms, None,
            "the next fault's election is not this one's"
        );
    }
}
