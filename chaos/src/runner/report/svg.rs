//! The run as an SVG timeline, written by hand: one lane per replica (running, frozen, down;
//! a gold bar while it leads), a lane of faults, a lane of pod absences and a lane of failed
//! requests, on one time axis.

use super::Report;
use std::fmt::Write;

const WIDTH: f64 = 1400.0;
const LEFT: f64 = 110.0;
const LANE: f64 = 26.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn render(r: &Report) -> String {
    let end = r.run_ms.max(1) as f64;
    let x = |t: i64| LEFT + (t.max(0) as f64 / end) * (WIDTH - LEFT - 10.0);
    let replicas = r.replicas + 1;
    let lanes = replicas + 3;
    let height = 40.0 + lanes as f64 * LANE + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "seed {} - {} - {} faults",
        r.seed,
        if r.passed { "passed" } else { "FAILED" },
        r.timeline.faults.len()
    );
    let _ = writeln!(s, r#"<text x="10" y="16" font-size="13">{}</text>"#, esc(&title));
    let lane_y = |i: usize| 30.0 + i as f64 * LANE;
    for i in 0..replicas {
        let y = lane_y(i);
        let _ = writeln!(s, r#"<text x="10" y="{}">r{i}</text>"#, y + 15.0);
        for span in r.timeline.replicas.iter().filter(|sp| sp.replica == i) {
            let color = match span.state.as_str() {
                "running" => "#7cc47c",
                "running (fresh)" => "#b5e0a8",
                "frozen" => "#6fa8dc",
                _ => "#dddddd",
            };
            let (a, b) = (x(span.start), x(span.end.unwrap_or(r.run_ms)));
            let _ = writeln!(
                s,
                r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="14" fill="{color}"><title>{}</title></rect>"#,
                y + 4.0,
                (b - a).max(1.0),
                esc(&span.state)
            );
        }
        for (a, b) in leader_spans(r, i) {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{y}" width="{:.1}" height="4" fill="#d4a017"><title>leader</title></rect>"##,
                x(a),
                (x(b) - x(a)).max(2.0)
            );
        }
    }
    let fy = lane_y(replicas);
    let _ = writeln!(s, r#"<text x="10" y="{}">faults</text>"#, fy + 15.0);
    for (n, f) in r.timeline.faults.iter().enumerate() {
        let (a, b) = (x(f.start), x(f.end.unwrap_or(r.run_ms)));
        let _ = writeln!(
            s,
            r##"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="14" fill="#e69138" opacity="0.8"><title>{} {}</title></rect>"##,
            fy + 4.0,
            (b - a).max(2.0),
            esc(&f.kind),
            esc(&f.target)
        );
        let _ = writeln!(
            s,
            r#"<text x="{a:.1}" y="{:.1}" font-size="9">{}</text>"#,
            fy + 4.0 + if n % 2 == 0 { 22.0 } else { 30.0 },
            esc(&f.kind)
        );
    }
    let gy = lane_y(replicas + 1) + 12.0;
    let _ = writeln!(s, r#"<text x="10" y="{}">absences</text>"#, gy + 15.0);
    let mut absences: std::collections::BTreeMap<(i64, i64), usize> = Default::default();
    for span in &r.absences {
        *absences.entry(*span).or_default() += 1;
    }
    for ((a, b), pods) in absences {
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="12" fill="#cc0000" opacity="0.35"><title>{pods} pods absent {} ms</title></rect>"##,
            x(a),
            gy + 4.0,
            (x(b) - x(a)).max(1.0),
            b - a
        );
    }
    let ey = lane_y(replicas + 2) + 12.0;
    let _ = writeln!(s, r#"<text x="10" y="{}">errors</text>"#, ey + 15.0);
    for t in &r.errors {
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="2" height="14" fill="black"/>"#,
            x(*t),
            ey + 4.0
        );
    }
    let ay = height - 12.0;
    let step = if end > 300_000.0 { 60_000 } else { 10_000 };
    for t in (0..=r.run_ms).step_by(step) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{ay}" font-size="9">{}s</text>"#,
            x(t),
            t / 1000
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Contiguous stretches (samples at most a second apart) in which replica `i` said it leads.
fn leader_spans(r: &Report, i: usize) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for p in r.samples.iter().filter(|p| p.replica == i && p.leader) {
        match spans.last_mut() {
            Some(last) if p.at - last.1 <= 1_000 => last.1 = p.at,
            _ => spans.push((p.at, p.at)),
        }
    }
    spans
}
