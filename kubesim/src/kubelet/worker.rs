//! Kubelet worker processes. One process can hold about 19,000 open files, so a large cluster's
//! kubelets are spread over `kubesim kubelet-worker` child processes. The parent sends JSON
//! lines on the child's stdin; the child answers each with one JSON line on stdout.

use super::faults::Fault;
use super::host::{HostConfig, KubeletHost, KubeletStats};
use crate::sim::SimEvent;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

/// A request to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum WorkerRequest {
    Apply {
        events: Vec<SimEvent>,
    },
    Fault {
        node: String,
        fault: Option<Fault>,
    },
    /// Accept only this bearer token from now on.
    Token {
        token: String,
    },
    Stats,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    id: u64,
    request: WorkerRequest,
}

/// A worker's answer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WorkerReply {
    pub id: u64,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub stats: Option<BTreeMap<String, KubeletStats>>,
}

/// The child side: serve requests from stdin until it closes (the parent went away).
pub async fn run_worker(dir: &Path) -> anyhow::Result<()> {
    let ca = crate::pki::Ca::load(dir, "ca", crate::cluster::files::CLUSTER_CA_NAME)?;
    let token = std::fs::read_to_string(dir.join("metrics-server.token"))?
        .trim()
        .to_string();
    let host = KubeletHost::new(HostConfig {
        ca: Arc::new(ca),
        token,
    })?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        let envelope: Envelope = serde_json::from_str(&line)?;
        let mut reply = WorkerReply {
            id: envelope.id,
            ..Default::default()
        };
        match envelope.request {
            WorkerRequest::Apply { events } => {
                reply.errors = host.apply(&events).await;
                drop(events);
                crate::trim_heap();
            }
            WorkerRequest::Fault { node, fault } => reply.errors.extend(host.set_fault(&node, fault).err()),
            WorkerRequest::Token { token } => host.set_token(&token),
            WorkerRequest::Stats => reply.stats = Some(host.stats()),
        }
        let mut out = serde_json::to_vec(&reply)?;
        out.push(b'\n');
        stdout.write_all(&out).await?;
        stdout.flush().await?;
    }
    host.shutdown();
    Ok(())
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<WorkerReply>>>>;

/// The parent side of one worker process.
pub struct Worker {
    child: Mutex<Option<Child>>,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
}

impl Worker {
    /// Starts `<exe> kubelet-worker --dir <dir>`.
    pub async fn spawn(exe: &Path, dir: &Path) -> anyhow::Result<Worker> {
        let mut child = Command::new(exe)
            .arg("kubelet-worker")
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting kubelet worker {}: {e}", exe.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let pending: Pending = Arc::default();
        let readers = pending.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<WorkerReply>(&line) {
                    Ok(reply) => {
                        let tx = readers.lock().expect("pending lock").remove(&reply.id);
                        tx.map(|tx| tx.send(reply));
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable kubelet worker reply"),
                }
            }
            readers.lock().expect("pending lock").clear();
        });
        Ok(Worker {
            child: Mutex::new(Some(child)),
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
        })
    }

    /// Sends one request and waits for its reply.
    pub async fn call(&self, request: WorkerRequest) -> anyhow::Result<WorkerReply> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let mut line = serde_json::to_vec(&Envelope { id, request })?;
        line.push(b'\n');
        {
            let mut stdin = self.stdin.lock().await;
            stdin.write_all(&line).await?;
            stdin.flush().await?;
        }
        rx.await.map_err(|_| anyhow::anyhow!("kubelet worker exited"))
    }

    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("child lock").take() {
            let _ = child.start_kill();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}
