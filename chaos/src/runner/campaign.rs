//! Campaigns: one scenario after another, one table row per seed. A row says which invariants
//! failed, the worst pod absence per fault kind, how many timestamps went back, how long the set
//! took to be whole again, and for a failed seed the command that repeats it. Pure: the binary
//! runs the scenarios and prints what this module formats.

use super::report::Report;
use std::fmt::Write;

/// One seed's row.
#[derive(Debug, Clone)]
pub struct Row {
    pub seed: u64,
    pub passed: bool,
    pub faults: usize,
    /// Invariants that failed, with their violation counts (plus `recovery` or `run` when the
    /// set was not whole again or the run stopped early).
    pub failed: Vec<(String, u64)>,
    /// The longest pod absence per fault kind (ms), longest first, at most three.
    pub worst_gaps: Vec<(String, i64)>,
    /// Timestamps that went back (monotonic-timestamps' `backwards`).
    pub backwards: u64,
    pub recovery_ms: Option<i64>,
    pub reproduce: String,
}

impl Row {
    pub fn of(report: &Report) -> Row {
        let mut failed: Vec<(String, u64)> = report
            .invariants
            .iter()
            .filter(|v| !v.passed())
            .map(|v| (v.name.clone(), v.violations))
            .collect();
        if report.run_error.is_some() {
            failed.push(("run".into(), 1));
        }
        if report.recovery.as_ref().is_some_and(|r| !r.ok) {
            failed.push(("recovery".into(), 1));
        }
        let stat = |name: &str, key: &str| {
            report
                .invariants
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.stats[key].clone())
                .unwrap_or_default()
        };
        let mut worst_gaps: Vec<(String, i64)> = stat("no-long-gaps", "longestGapMsPerFault")
            .as_object()
            .map(|gaps| gaps.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect())
            .unwrap_or_default();
        worst_gaps.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        worst_gaps.truncate(3);
        Row {
            seed: report.seed,
            passed: report.passed,
            faults: report.timeline.faults.len(),
            failed,
            worst_gaps,
            backwards: stat("monotonic-timestamps", "backwards").as_u64().unwrap_or(0),
            recovery_ms: report.recovery.as_ref().map(|r| r.millis),
            reproduce: report.reproduce.clone(),
        }
    }
}

/// The table's header (Markdown, so docs can hold it as printed).
pub fn header() -> String {
    "| seed | faults | result | failed invariants | worst absence per fault kind (ms) | timestamps back | recovery (ms) |\n\
     |---|---|---|---|---|---|---|"
        .to_string()
}

/// One row of the table; a failed seed gets a second line with its reproduce command.
pub fn line(row: &Row) -> String {
    let failed = if row.failed.is_empty() {
        "-".to_string()
    } else {
        row.failed
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gaps = if row.worst_gaps.is_empty() {
        "-".to_string()
    } else {
        row.worst_gaps
            .iter()
            .map(|(kind, ms)| format!("{kind} {ms}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let recovery = row.recovery_ms.map_or("-".into(), |ms| ms.to_string());
    let mut out = format!(
        "| {} | {} | {} | {failed} | {gaps} | {} | {recovery} |",
        row.seed,
        row.faults,
        if row.passed { "pass" } else { "FAIL" },
        row.backwards
    );
    if !row.passed {
        let _ = write!(out, "\n|   | reproduce: `{}` | | | | | |", row.reproduce);
    }
    out
}

/// The campaign's closing line: how many seeds passed.
pub fn verdict(rows: &[Row]) -> String {
    let passed = rows.iter().filter(|r| r.passed).count();
    format!(
        "campaign: {passed} of {} seeds passed{}",
        rows.len(),
        if passed == rows.len() { "" } else { " (FAILED)" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(passed: bool) -> Row {
        Row {
            seed: 42,
            passed,
            faults: 17,
            failed: if passed {
                vec![]
            } else {
                vec![("monotonic-timestamps".into(), 3)]
            },
            worst_gaps: vec![("kill-all-but-one".into(), 8500), ("kubelet-failing".into(), 2000)],
            backwards: if passed { 0 } else { 3 },
            recovery_ms: Some(12),
            reproduce: "chaos --reproduce 42 --duration 300s".into(),
        }
    }

    #[test]
    fn a_failed_row_names_its_invariants_and_how_to_repeat_it() {
        let failed = line(&row(false));
        assert!(failed.starts_with(
            "| 42 | 17 | FAIL | monotonic-timestamps (3) | kill-all-but-one 8500, kubelet-failing 2000 | 3 | 12 |"
        ));
        assert!(failed.contains("reproduce: `chaos --reproduce 42 --duration 300s`"));
        assert!(!line(&row(true)).contains("reproduce"));
        assert_eq!(
            verdict(&[row(true), row(false)]),
            "campaign: 1 of 2 seeds passed (FAILED)"
        );
        assert_eq!(verdict(&[row(true)]), "campaign: 1 of 1 seeds passed");
    }
}
