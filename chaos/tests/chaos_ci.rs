//! The CI chaos scenarios: the `chaos` binary with three fixed seeds against debug builds of the
//! server — three replicas (and one for scale-out), 20 nodes x 10 pods, resolution 2 s, 150 s of
//! faults each — must keep every invariant and recover. Together the three schedules hold every
//! fault kind (with partitions: seed 11 both partitions, freezes, a rolling restart, scale-out
//! and kill-all-but-one-fresh; seed 22 kill-leader(-fresh), kill-all-but-one, the kubelet faults
//! and watch drops; seed 25 kill-follower(-fresh), partition-leader and lying kubelets). Where
//! partitions can run (root with iptables, as in CI) a run without them fails: a schedule that
//! silently skipped its partitions would prove nothing about them.
//!
//! Reports land in `target/tmp/chaos-ci-<seed>/` (report.json, summary.txt, timeline.svg,
//! replica logs in cluster/). Reproduce by hand:
//! `./target/debug/chaos --reproduce 22 --duration 150s --out /tmp/chaos-22`.

use std::path::PathBuf;
use std::process::Command;

/// Length of each CI scenario's fault phase.
const DURATION: &str = "150s";

fn server_bin() -> PathBuf {
    if let Ok(path) = std::env::var("HA_METRICS_SERVER_BIN") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_BIN_EXE_chaos")).with_file_name("ha-metrics-server")
}

/// Whether this machine can cut replicas apart: root, with iptables and unshare.
fn partitions_expected() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    });
    let runs = |cmd: &str, arg: &str| Command::new(cmd).arg(arg).output().is_ok_and(|o| o.status.success());
    root && runs("iptables", "--version") && runs("unshare", "--version")
}

fn scenario(seed: &str) {
    let server = server_bin();
    assert!(
        server.is_file(),
        "{} missing: build the workspace (cargo build --workspace --bins)",
        server.display()
    );
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("chaos-ci-{seed}"));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["--seed", seed, "--duration", DURATION, "--log", "warn"])
        .arg("--out")
        .arg(&out)
        .arg("--server")
        .arg(&server)
        .output()
        .expect("the chaos binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("report.json"))
            .unwrap_or_else(|e| panic!("no report ({e}); stderr: {}", String::from_utf8_lossy(&run.stderr))),
    )
    .unwrap();
    let failed: Vec<String> = report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["violations"].as_u64() != Some(0))
        .map(|v| format!("{} {}", v["name"], v["byFault"]))
        .collect();
    assert!(
        report["runError"].is_null(),
        "the run stopped early: {}",
        report["runError"]
    );
    assert_eq!(report["recovery"]["ok"], true, "no recovery: {}", report["recovery"]);
    assert!(
        failed.is_empty(),
        "invariants failed: {failed:?}; see {}",
        out.join("summary.txt").display()
    );
    let faults = report["timeline"]["faults"].as_array().unwrap();
    assert!(faults.len() >= 7, "too few faults ran: {}", faults.len());
    if partitions_expected() {
        assert!(
            report["partitions"].as_str().is_some_and(|p| p.starts_with("on")),
            "root with iptables, yet partitions did not run: {}",
            report["partitions"]
        );
        assert!(
            faults
                .iter()
                .any(|f| f["kind"].as_str().is_some_and(|k| k.starts_with("partition"))),
            "the schedule holds a partition, but none ran"
        );
    }
    assert!(run.status.success(), "chaos exited with {}", run.status);
}

#[test]
fn ci_scenario_seed_11_keeps_every_invariant() {
    scenario("11");
}

#[test]
fn ci_scenario_seed_22_keeps_every_invariant() {
    scenario("22");
}

#[test]
fn ci_scenario_seed_25_keeps_every_invariant() {
    scenario("25");
}
