//! PodMetricsList JSON to [`PodSample`]s: quantities, RFC 3339 timestamps, Go durations.

use crate::runner::journal::PodSample;
use serde_json::Value;

/// CPU cores of a quantity (`487558164n`, `12m`, `1`).
pub fn cores(q: &str) -> Option<f64> {
    let (num, scale) = match q.as_bytes().last()? {
        b'n' => (&q[..q.len() - 1], 1e-9),
        b'u' => (&q[..q.len() - 1], 1e-6),
        b'm' => (&q[..q.len() - 1], 1e-3),
        _ => (q, 1.0),
    };
    Some(num.parse::<f64>().ok()? * scale)
}

/// Bytes of a memory quantity (`12240Ki`, `5Mi`, `12533761`).
pub fn bytes(q: &str) -> Option<f64> {
    for (suffix, mult) in [
        ("Ki", 1024f64),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
    ] {
        if let Some(n) = q.strip_suffix(suffix) {
            return Some(n.parse::<f64>().ok()? * mult);
        }
    }
    q.parse().ok()
}

/// Milliseconds (rounded) of a Go duration (`2.003s`, `1m0s`, `500ms`), with the workspace's
/// one codec.
pub fn duration_ms(go: &str) -> Option<i64> {
    let d = apimachinery::duration::parse(go).ok()?;
    i64::try_from((d.as_nanos() + 500_000) / 1_000_000).ok()
}

/// `Ok(None)` for a pod served without usage (`"timestamp": null`, `"containers": []`, as
/// metrics-server does when every container's rate failed): present but without data.
fn sample(item: &Value) -> Option<Option<PodSample>> {
    let meta = &item["metadata"];
    if item["timestamp"].is_null() && item["containers"].as_array().is_some_and(Vec::is_empty) {
        return Some(None);
    }
    let timestamp = item["timestamp"].as_str()?.parse::<jiff::Timestamp>().ok()?;
    let (mut cpu, mut memory) = (0.0, 0.0);
    for c in item["containers"].as_array()? {
        cpu += cores(c["usage"]["cpu"].as_str()?)?;
        memory += bytes(c["usage"]["memory"].as_str()?)?;
    }
    Some(Some(PodSample {
        namespace: meta["namespace"].as_str()?.to_string(),
        name: meta["name"].as_str()?.to_string(),
        timestamp: timestamp.as_millisecond(),
        window_ms: duration_ms(item["window"].as_str()?)?,
        cpu_cores: cpu,
        memory_bytes: memory,
    }))
}

/// The pods with usage of a PodMetricsList body (pods served without usage are left out).
pub fn pod_list(body: &[u8]) -> Result<Vec<PodSample>, String> {
    let list: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let items = list["items"].as_array().ok_or("no items")?;
    let mut pods = Vec::with_capacity(items.len());
    for item in items {
        if let Some(pod) = sample(item).ok_or_else(|| format!("malformed item {item}"))? {
            pods.push(pod);
        }
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list() {
        let body = br#"{"items":[{"metadata":{"name":"p","namespace":"n"},"timestamp":"2026-01-01T00:00:01Z",
            "window":"2.003s","containers":[{"name":"c","usage":{"cpu":"5m","memory":"1Ki"}},
            {"name":"d","usage":{"cpu":"1000000n","memory":"1024"}}]}]}"#;
        let pods = pod_list(body).unwrap();
        assert_eq!(pods[0].window_ms, 2003);
        assert!((pods[0].cpu_cores - 0.006).abs() < 1e-12);
        assert_eq!(pods[0].memory_bytes, 2048.0);
        assert_eq!(duration_ms("1m0s"), Some(60_000));
        let empty =
            br#"{"items":[{"metadata":{"name":"p","namespace":"n"},"timestamp":null,"window":"0s","containers":[]}]}"#;
        assert!(pod_list(empty).unwrap().is_empty());
    }
}
