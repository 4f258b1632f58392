//! Core objects rendered from the simulated world as the real apiserver serves them, with every
//! field that k8s-openapi and the official Python client require.

use crate::sim::model::{ContainerKind, ContainerState, Millis, NodeState, PodState};
use crate::sim::{PodPhase, World};
use serde_json::{Value, json};

/// The Kubernetes version the simulator claims to be.
pub const KUBE_VERSION: &str = "v1.32.0";

/// RFC 3339 with second precision, as `metav1.Time` serialises.
pub fn timestamp(ms: Millis) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A stable UID-shaped string derived from a name.
pub fn uid_for(kind: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain(name.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = crate::sim::rng::Rng::new(h);
    crate::sim::generate::uid(&mut rng)
}

pub fn node(node: &NodeState) -> Value {
    let spec = &node.spec;
    let created = timestamp(spec.created);
    let mem_ki = spec.memory_capacity_bytes / 1024;
    let ready = if node.ready { "True" } else { "Unknown" };
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": timestamp(node.boot), "lastTransitionTime": timestamp(node.boot)})
    };
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": spec.name,
            "uid": uid_for("node", &spec.name),
            "creationTimestamp": created,
            "labels": spec.labels,
            "annotations": spec.annotations,
        },
        "spec": {"providerID": format!("kubesim://{}", spec.name)},
        "status": {
            "capacity": {"cpu": format!("{}m", spec.cpu_capacity_millis), "memory": format!("{mem_ki}Ki"),
                         "pods": spec.max_pods.to_string(), "ephemeral-storage": "102400000Ki"},
            "allocatable": {"cpu": format!("{}m", spec.cpu_capacity_millis.saturating_sub(100)),
                            "memory": format!("{}Ki", mem_ki.saturating_sub(100 * 1024)),
                            "pods": spec.max_pods.to_string(), "ephemeral-storage": "94371840Ki"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", ready, if node.ready { "KubeletReady" } else { "NodeStatusUnknown" },
                          if node.ready { "kubelet is posting ready status" } else { "Kubelet stopped posting node status." }),
            ],
            "addresses": [
                {"type": "InternalIP", "address": spec.ip.to_string()},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.kubelet_port}},
            "nodeInfo": {
                "machineID": uid_for("machine", &spec.name).replace('-', ""),
                "systemUUID": uid_for("system", &spec.name),
                "bootID": uid_for("boot", &format!("{}/{}", spec.name, node.boot)),
                "kernelVersion": "6.1.0-kubesim",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": KUBE_VERSION,
                "kubeProxyVersion": KUBE_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

pub fn pod(world: &World, pod: &PodState) -> Value {
    let spec = &pod.spec;
    let host_ip = world
        .nodes
        .get(&spec.node)
        .map(|n| n.spec.ip.to_string())
        .unwrap_or_default();
    let mut metadata = json!({
        "name": spec.name,
        "namespace": spec.namespace,
        "uid": spec.uid,
        "creationTimestamp": timestamp(spec.created),
        "labels": spec.labels,
    });
    if let Some(owner) = &spec.owner {
        metadata["generateName"] = json!(format!("{owner}-"));
        metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
            "uid": uid_for("replicaset", owner), "controller": true, "blockOwnerDeletion": true}]);
    }
    let (init, regular): (Vec<_>, Vec<_>) = pod
        .containers
        .iter()
        .partition(|c| c.spec.kind != ContainerKind::Regular);
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {
            "nodeName": spec.node,
            "containers": regular.iter().map(|c| container_spec(c)).collect::<Vec<_>>(),
            "initContainers": init.iter().map(|c| container_spec(c)).collect::<Vec<_>>(),
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
        },
        "status": pod_status(pod, &host_ip, &regular, &init),
    })
}

fn container_spec(c: &ContainerState) -> Value {
    let mut v = json!({
        "name": c.spec.name,
        "image": c.spec.image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": format!("{}m", c.spec.cpu_request_millis),
                                   "memory": c.spec.memory_request_bytes.to_string()}},
    });
    if c.spec.kind == ContainerKind::Sidecar {
        v["restartPolicy"] = json!("Always");
    }
    v
}

fn pod_status(pod: &PodState, host_ip: &str, regular: &[&ContainerState], init: &[&ContainerState]) -> Value {
    let running = pod.phase == PodPhase::Running;
    let ready = if running { "True" } else { "False" };
    let since = timestamp(pod.started.unwrap_or(pod.spec.created));
    let condition = |kind: &str, status: &str| json!({"type": kind, "status": status, "lastTransitionTime": since});
    let pod_ip = format!(
        "10.{}.{}.{}",
        pod.spec.uid.len(),
        pod.spec.uid.as_bytes()[0],
        pod.spec.uid.as_bytes()[1]
    );
    let mut status = json!({
        "phase": pod.phase.as_str(),
        "conditions": [condition("PodScheduled", "True"), condition("Initialized", if pod.started.is_some() { "True" } else { "False" }),
                       condition("ContainersReady", ready), condition("Ready", ready)],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "qosClass": "Burstable",
        "containerStatuses": regular.iter().map(|c| container_status(pod, c)).collect::<Vec<_>>(),
        "initContainerStatuses": init.iter().map(|c| container_status(pod, c)).collect::<Vec<_>>(),
    });
    if let Some(started) = pod.started {
        status["startTime"] = json!(timestamp(started));
        status["podIP"] = json!(pod_ip);
        status["podIPs"] = json!([{"ip": pod_ip}]);
    }
    status
}

fn container_status(pod: &PodState, c: &ContainerState) -> Value {
    let state = match (pod.phase, c.spec.kind, c.current()) {
        (PodPhase::Running, ContainerKind::Init, _) => terminated(0, "Completed", pod.started),
        (PodPhase::Running, _, Some(inc)) => {
            json!({"running": {"startedAt": timestamp(inc.start)}})
        }
        (PodPhase::Pending, _, _) => json!({"waiting": {"reason": "ContainerCreating"}}),
        (PodPhase::Succeeded, _, _) => terminated(0, "Completed", pod.finished),
        _ => terminated(1, "Error", pod.finished),
    };
    let running = state.get("running").is_some();
    json!({
        "name": c.spec.name,
        "image": c.spec.image,
        "imageID": format!("{}@sha256:{}", c.spec.image, "0".repeat(64)),
        "containerID": format!("containerd://{}", uid_for(&c.spec.name, &pod.spec.uid).replace('-', "")),
        "ready": running,
        "started": running,
        "restartCount": c.restarts,
        "state": state,
    })
}

fn terminated(code: i32, reason: &str, at: Option<Millis>) -> Value {
    let at = timestamp(at.unwrap_or(0));
    json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": at, "finishedAt": at}})
}

pub fn namespace(name: &str, created: Millis) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "uid": uid_for("namespace", name), "creationTimestamp": timestamp(created),
                     "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// `kube-system/extension-apiserver-authentication`, as kube-apiserver publishes it for
/// aggregated API servers.
pub fn authentication_configmap(
    client_ca: &str,
    request_header_ca: &str,
    allowed_names: &[&str],
    created: Millis,
) -> Value {
    json!({
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system",
                     "uid": uid_for("configmap", "extension-apiserver-authentication"),
                     "creationTimestamp": timestamp(created)},
        "data": {
            "client-ca-file": client_ca,
            "requestheader-client-ca-file": request_header_ca,
            "requestheader-allowed-names": serde_json::to_string(allowed_names).expect("strings serialise"),
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
        },
    })
}
