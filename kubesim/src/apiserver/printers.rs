//! The Table cells of nodes and pods, ported from the apiserver's printers
//! (`pkg/printers/internalversion/printers.go`: `printNode`, `printPod`), computed from the
//! object's JSON once at upsert time. Name and Age are added per request by [`super::table`].
//!
//! A pod's Restarts cell with a last restart is kept as `{"restarts":N,"lastRestartMs":T}` and
//! rendered per request as `N (5m ago)`.

use serde_json::{Value, json};

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn or_placeholder(s: &str, placeholder: &str) -> Value {
    Value::String(if s.is_empty() { placeholder } else { s }.to_string())
}

/// `printNode`: Status, Roles, Version, then the wide columns.
pub fn node_cells(node: &Value) -> Vec<Value> {
    let status = &node["status"];
    let ready = items(&status["conditions"])
        .iter()
        .find(|c| text(&c["type"]) == "Ready");
    let mut state = match ready {
        Some(c) if text(&c["status"]) == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        state.push_str(",SchedulingDisabled");
    }
    let mut roles = std::collections::BTreeSet::new();
    for (key, value) in node["metadata"]["labels"].as_object().into_iter().flatten() {
        if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == "kubernetes.io/role" && !text(value).is_empty() {
            roles.insert(text(value).to_string());
        }
    }
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");
    let address = |ty: &str| {
        let found = items(&status["addresses"]).iter().find(|a| text(&a["type"]) == ty);
        or_placeholder(found.map_or("", |a| text(&a["address"])), "<none>")
    };
    let info = &status["nodeInfo"];
    vec![
        Value::String(state),
        or_placeholder(&roles, "<none>"),
        Value::String(text(&info["kubeletVersion"]).to_string()),
        address("InternalIP"),
        address("ExternalIP"),
        or_placeholder(text(&info["osImage"]), "<unknown>"),
        or_placeholder(text(&info["kernelVersion"]), "<unknown>"),
        or_placeholder(text(&info["containerRuntimeVersion"]), "<unknown>"),
    ]
}

/// Unix ms of an RFC 3339 timestamp.
fn timestamp_ms(v: &Value) -> Option<i64> {
    v.as_str()?.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

/// The newest `lastState.terminated.finishedAt` of some container statuses.
fn last_restart_ms<'a>(statuses: impl Iterator<Item = &'a Value>) -> Option<i64> {
    statuses
        .filter_map(|s| timestamp_ms(&s["lastState"]["terminated"]["finishedAt"]))
        .max()
}

fn restart_count(status: &Value) -> i64 {
    status["restartCount"].as_i64().unwrap_or(0)
}

fn condition_true(status: &Value, condition: &str) -> bool {
    items(&status["conditions"])
        .iter()
        .any(|c| text(&c["type"]) == condition && text(&c["status"]) == "True")
}

/// Why a terminated container stopped: its reason, else `Signal:N` or `ExitCode:N`.
fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    if !text(&terminated["reason"]).is_empty() {
        return format!("{prefix}{}", text(&terminated["reason"]));
    }
    match terminated["signal"].as_i64().unwrap_or(0) {
        0 => format!("{prefix}ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0)),
        signal => format!("{prefix}Signal:{signal}"),
    }
}

/// `printPod`: Ready, Status, Restarts, then the wide columns.
pub fn pod_cells(pod: &Value) -> Vec<Value> {
    let (spec, status) = (&pod["spec"], &pod["status"]);
    let init_specs = items(&spec["initContainers"]);
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(&c["name"]) == name && text(&c["restartPolicy"]) == "Always")
    };
    let mut total = items(&spec["containers"]).len();
    total += init_specs
        .iter()
        .filter(|c| text(&c["restartPolicy"]) == "Always")
        .count();
    let mut ready = 0;
    let mut reason = text(&status["phase"]).to_string();
    if !text(&status["reason"]).is_empty() {
        reason = text(&status["reason"]).to_string();
    }
    let gated = items(&status["conditions"])
        .iter()
        .any(|c| text(&c["type"]) == "PodScheduled" && text(&c["reason"]) == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_string();
    }

    let init_statuses = items(&status["initContainerStatuses"]);
    let (mut restarts, mut last_restart) = (0, None);
    let (mut sidecar_restarts, mut sidecar_last_restart) = (0, None);
    let mut initializing = false;
    for (i, container) in init_statuses.iter().enumerate() {
        restarts += restart_count(container);
        last_restart = last_restart.max(last_restart_ms(std::iter::once(container)));
        if restartable(text(&container["name"])) {
            sidecar_restarts += restart_count(container);
            sidecar_last_restart = sidecar_last_restart.max(last_restart_ms(std::iter::once(container)));
        }
        let state = &container["state"];
        let terminated = &state["terminated"];
        if terminated.is_object() && terminated["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if restartable(text(&container["name"])) && container["started"].as_bool() == Some(true) {
            ready += usize::from(container["ready"].as_bool() == Some(true));
            continue;
        }
        let waiting = text(&state["waiting"]["reason"]);
        reason = if terminated.is_object() {
            terminated_reason(terminated, "Init:")
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(status, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        let statuses = items(&status["containerStatuses"]);
        for container in statuses.iter().rev() {
            restarts += restart_count(container);
            let state = &container["state"];
            let (waiting, terminated) = (text(&state["waiting"]["reason"]), &state["terminated"]);
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if terminated.is_object() {
                reason = terminated_reason(terminated, "");
            } else if container["ready"].as_bool() == Some(true) && state["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        last_restart = last_restart.max(last_restart_ms(statuses.iter()));
        if reason == "Completed" && has_running {
            reason = if condition_true(status, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let phase = text(&status["phase"]);
    if pod["metadata"]["deletionTimestamp"].is_string() {
        if text(&status["reason"]) == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(ms) if restarts != 0 => json!({"restarts": restarts, "lastRestartMs": ms}),
        _ => Value::String(restarts.to_string()),
    };
    let ip = items(&status["podIPs"]).first().map_or("", |p| text(&p["ip"]));
    let ip = if ip.is_empty() { text(&status["podIP"]) } else { ip };
    let gates = items(&spec["readinessGates"]);
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passed = gates
            .iter()
            .filter(|g| {
                let first = items(&status["conditions"])
                    .iter()
                    .find(|c| c["type"] == g["conditionType"]);
                first.is_some_and(|c| text(&c["status"]) == "True")
            })
            .count();
        format!("{passed}/{}", gates.len())
    };
    vec![
        Value::String(format!("{ready}/{total}")),
        Value::String(reason),
        restarts_cell,
        or_placeholder(ip, "<none>"),
        or_placeholder(text(&spec["nodeName"]), "<none>"),
        or_placeholder(text(&status["nominatedNodeName"]), "<none>"),
        Value::String(gates),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::store::Kind;
    use crate::apiserver::table::{cells, render_cell};

    fn node(labels: Value, ready: &str, unschedulable: bool) -> Value {
        json!({
            "metadata": {"name": "n1", "labels": labels},
            "spec": {"unschedulable": unschedulable},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}],
                "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)"}
            }
        })
    }

    #[test]
    fn node_cells_follow_print_node() {
        let labels = json!({"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "gpu", "node-role.kubernetes.io/": "x"});
        let got = cells(Kind::Nodes, &node(labels, "True", false));
        let want = json!([
            "Ready",
            "control-plane,gpu,worker",
            "v1.33.1",
            "10.0.0.1",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "<unknown>",
            "<unknown>"
        ]);
        assert_eq!(Value::Array(got), want);
        let got = cells(Kind::Nodes, &node(json!({}), "Unknown", true));
        assert_eq!(got[0], "NotReady,SchedulingDisabled");
        assert_eq!(got[1], "<none>");
        assert_eq!(cells(Kind::Nodes, &json!({"metadata": {"name": "bare"}}))[0], "Unknown");
    }

    fn running(name: &str, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}})
    }

    #[test]
    fn pod_cells_follow_print_pod() {
        let pod = json!({
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.1.0.5", "containerStatuses": [running("a", true, 1), running("b", false, 2)]}
        });
        let want = json!(["1/2", "Running", "3", "10.1.0.5", "node-1", "<none>", "<none>"]);
        assert_eq!(Value::Array(cells(Kind::Pods, &pod)), want);

        let crash = json!({
            "metadata": {"name": "c"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "a", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-01T00:00:00Z"}}
            }]}
        });
        let got = cells(Kind::Pods, &crash);
        assert_eq!(got[0], "0/1");
        assert_eq!(got[1], "CrashLoopBackOff");
        let finished = "2025-01-01T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        assert_eq!(render_cell(&got[2], finished + 5 * 60_000), "4 (5m ago)");

        let pending =
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}});
        assert_eq!(cells(Kind::Pods, &pending)[1], "Pending");
        let evicted = json!({"metadata": {"name": "e"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed", "reason": "Evicted"}});
        assert_eq!(cells(Kind::Pods, &evicted)[1], "Evicted");
        let terminating = json!({"metadata": {"name": "t", "deletionTimestamp": "2025-01-01T00:00:00Z"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running"}});
        assert_eq!(cells(Kind::Pods, &terminating)[1], "Terminating");
        let init = json!({
            "metadata": {"name": "i"},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "setup", "restartCount": 0, "state": {"running": {}}}]}
        });
        assert_eq!(cells(Kind::Pods, &init)[1], "Init:0/1");
        let completed = json!({
            "metadata": {"name": "j"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        });
        assert_eq!(cells(Kind::Pods, &completed)[1], "Completed");
    }
}
