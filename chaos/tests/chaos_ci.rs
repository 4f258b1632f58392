//! The CI chaos scenario: the `chaos` binary with a fixed seed against debug builds of the
//! server — three replicas (and one for scale-out), 20 nodes x 10 pods, resolution 2 s, about
//! 100 s of faults of every kind — must keep every invariant and recover. The report lands in
//! `target/tmp/chaos-ci/` (report.json, summary.txt, timeline.svg, replica logs in cluster/).
//!
//! Reproduce by hand: `./target/debug/chaos --reproduce 11 --duration 100s --out /tmp/chaos-11`.

use std::path::PathBuf;
use std::process::Command;

/// The seed of the CI run: change it only with a reason in the commit message.
const SEED: &str = "11";
const DURATION: &str = "100s";

fn server_bin() -> PathBuf {
    if let Ok(path) = std::env::var("HA_METRICS_SERVER_BIN") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_BIN_EXE_chaos")).with_file_name("ha-metrics-server")
}

#[test]
fn ci_scenario_keeps_every_invariant() {
    let server = server_bin();
    assert!(
        server.is_file(),
        "{} missing: build the workspace (cargo build --workspace --bins)",
        server.display()
    );
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chaos-ci");
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["--seed", SEED, "--duration", DURATION, "--log", "warn"])
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
    assert!(
        report["timeline"]["faults"].as_array().unwrap().len() >= 5,
        "too few faults ran"
    );
    assert!(run.status.success(), "chaos exited with {}", run.status);
}
