//! The container image is self-contained: `deploy/image/build.sh` builds it (buildah, from
//! scratch), umoci unpacks it, and two replicas run from the unpacked root file system, each in
//! fresh mount and pid namespaces, chrooted as the image's user (65534) with the root file
//! system read-only (only /tmp and the data dir writable, as the manifests mount them; /proc and
//! the four /dev nodes every container runtime provides). They
//! find each other by DNS names that resolve from the container's /etc/hosts (the binary is
//! static: no libc, no NSS), and both must become ready against kubesim.
//!
//! Needs root (buildah, namespaces, chroot); skipped with a message otherwise. `.ci/run`
//! installs buildah and umoci.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use support::*;

const IMAGE: &str = "ghcr.io/ha-metrics-server/ha-metrics-server:v0.1.0";
/// The image's size goal (metrics-server's distroless image is about 20 MB).
const SIZE_GOAL_BYTES: u64 = 20 * 1000 * 1000;
const PEER_DOMAIN: &str = "peers.image.test";
const DATA_DIR: &str = "/var/lib/ha-metrics-server";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(what: &str, command: &mut std::process::Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds the image into `archive`; returns the archive's size.
fn build(archive: &Path) -> u64 {
    let log = run(
        "deploy/image/build.sh",
        std::process::Command::new(repo().join("deploy/image/build.sh"))
            .env("OUT", archive)
            .env("IMAGE", IMAGE),
    );
    tracing::info!("{log}");
    std::fs::metadata(archive).unwrap().len()
}

/// Unpacks the archive with umoci into `bundle` (rootfs/ and the runtime config.json).
fn unpack(archive: &Path, work: &Path) -> PathBuf {
    let layout = work.join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    run(
        "untar the OCI archive",
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(&layout),
    );
    let bundle = work.join("bundle");
    run(
        "umoci unpack",
        std::process::Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{IMAGE}", layout.display()))
            .arg(&bundle),
    );
    bundle
}

/// Every path in `root`, relative, sorted.
fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Peer certificate for `r0..rN` under [`PEER_DOMAIN`], from a CA of its own, into `dir`.
fn peer_pki(dir: &Path, replicas: usize) {
    let ca = kubesim::pki::Ca::new("image-test-peer-ca").unwrap();
    let leaf = ca
        .issue(&kubesim::pki::LeafSpec {
            common_name: "ha-metrics-server-peer".into(),
            dns: (0..replicas).map(|i| format!("r{i}.{PEER_DOMAIN}")).collect(),
            server: true,
            client: true,
            ..Default::default()
        })
        .unwrap();
    std::fs::write(dir.join("image-peer-ca.crt"), &ca.cert_pem).unwrap();
    std::fs::write(dir.join("image-peer.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("image-peer.key"), &leaf.key_pem).unwrap();
}

/// The shell run as pid 1 of the new namespaces: the container's mounts, then the server.
const CONTAINER: &str = r#"set -e
R="$ROOTFS"
mount --bind "$R" "$R"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=0777 tmpfs "$R$DATA_DIR"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for d in null zero random urandom; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mount --bind "$HOSTS" "$R/etc/hosts"
mkdir -p "$R$CLUSTER"
mount --bind -o ro "$CLUSTER" "$R$CLUSTER"
mount -o remount,bind,ro "$R"
exec chroot --userspec=65534:65534 "$R" /ha-metrics-server "$@"
"#;

/// One replica from the unpacked image, in fresh mount and pid namespaces. Dropping it kills
/// the namespace's init (the server): `unshare --kill-child` alone does not reach it, because
/// chroot's change of user clears the parent-death signal.
struct Container {
    unshare: tokio::process::Child,
    log: PathBuf,
}

impl Container {
    fn start(rootfs: &Path, hosts: &Path, cluster: &kubesim::Cluster, args: &[String], log: &Path) -> Container {
        let mut command = tokio::process::Command::new("unshare");
        command
            .args(["--mount", "--pid", "--fork", "--kill-child", "--propagation", "private"])
            .args(["sh", "-c", CONTAINER, "container"])
            .args(args)
            .env("ROOTFS", rootfs)
            .env("HOSTS", hosts)
            .env("CLUSTER", cluster.dir())
            .env("DATA_DIR", DATA_DIR)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true);
        // Nothing inherited past stderr: the test runner's open files (cargo's build lock among
        // them) must not stay open in a server that outlives the test.
        unsafe {
            command.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        Container {
            unshare: command.spawn().expect("unshare runs"),
            log: log.to_path_buf(),
        }
    }

    /// The host pid of the namespace's init (the server), once it runs.
    fn init_pid(&self) -> Option<i32> {
        let pid = self.unshare.id()?;
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(init) = self.init_pid() {
            unsafe { libc::kill(init, libc::SIGKILL) };
        }
        let _ = self.unshare.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_builds_and_runs_self_contained() {
    init_tracing();
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: the image test must not be skipped there"
        );
        eprintln!("SKIPPED: building and running the image needs root (buildah, mount and pid namespaces, chroot)");
        return;
    }
    for tool in ["buildah", "umoci", "unshare", "chroot", "tar"] {
        assert!(
            have(tool),
            "{tool} is required: apt-get install -y buildah umoci (.ci/run does)"
        );
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image-test");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    tracing::info!("build: deploy/image/build.sh writes an OCI archive");
    let archive = work.join("ha-metrics-server.oci.tar");
    let size = build(&archive);
    tracing::info!(size, "image archive bytes");
    println!("image archive: {size} bytes ({:.1} MB)", size as f64 / 1e6);
    assert!(
        size <= SIZE_GOAL_BYTES,
        "the image is {size} bytes, over the 20 MB goal"
    );

    tracing::info!("unpack: one file, run as 65534, no shell");
    let bundle = unpack(&archive, &work);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        files(&rootfs),
        ["ha-metrics-server"],
        "the image holds the binary and nothing else"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 65534, "{}", config["process"]);
    assert_eq!(config["process"]["user"]["gid"], 65534);
    assert_eq!(config["process"]["args"][0], "/ha-metrics-server");
    let ldd = std::process::Command::new("ldd")
        .arg(rootfs.join("ha-metrics-server"))
        .output()
        .unwrap();
    assert!(
        !ldd.status.success() || String::from_utf8_lossy(&ldd.stdout).contains("statically linked"),
        "the binary is static: {}",
        String::from_utf8_lossy(&ldd.stdout)
    );

    tracing::info!("run: two replicas from the rootfs, read-only, peers by DNS name from /etc/hosts");
    let cluster = cluster(3, 3, 901).await;
    let dir = cluster.dir().to_path_buf();
    peer_pki(&dir, 2);
    // Mount points, as a container runtime makes them in the unpacked root file system.
    // (The cluster's directory, under /tmp, is made inside the container's /tmp.)
    for d in ["tmp", "proc", "dev", "etc", &DATA_DIR[1..]] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(rootfs.join("etc/hosts"), "").unwrap();
    let hosts = work.join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost\n127.0.0.1 r0.{PEER_DOMAIN} r1.{PEER_DOMAIN}\n"),
    )
    .unwrap();
    let ports: Vec<(u16, u16)> = (0..2).map(|_| (free_port(), free_port())).collect();
    let peers = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("r{i}=r{i}.{PEER_DOMAIN}:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut containers = Vec::new();
    for (i, (port, peer_port)) in ports.iter().enumerate() {
        let d = dir.display();
        let args = vec![
            format!("--kubeconfig={d}/metrics-server.kubeconfig"),
            format!("--secure-port={port}"),
            "--bind-address=127.0.0.1".into(),
            "--cert-dir=/tmp".into(),
            format!("--metric-resolution={RESOLUTION}"),
            "--kubelet-request-timeout=1s".into(),
            "--kubelet-preferred-address-types=InternalIP".into(),
            "--kubelet-use-node-status-port".into(),
            format!("--requestheader-client-ca-file={d}/front-proxy-ca.crt"),
            "--requestheader-allowed-names=front-proxy-client".into(),
            format!("--peers={peers}"),
            "--voters=2".into(),
            format!("--replica-id=r{i}"),
            "--peer-bind-address=127.0.0.1".into(),
            format!("--peer-port={peer_port}"),
            format!("--peer-cert-file={d}/image-peer.crt"),
            format!("--peer-key-file={d}/image-peer.key"),
            format!("--peer-ca-file={d}/image-peer-ca.crt"),
            format!("--data-dir={DATA_DIR}"),
            "--v=2".into(),
        ];
        let log = work.join(format!("r{i}.log"));
        containers.push(Container::start(&rootfs, &hosts, &cluster, &args, &log));
    }
    cluster.set_replicas(&ports.iter().map(|(p, _)| format!("127.0.0.1:{p}")).collect::<Vec<_>>());
    let logs = || {
        containers
            .iter()
            .map(|c| {
                format!(
                    "--- {}:\n{}",
                    c.log.display(),
                    std::fs::read_to_string(&c.log).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (i, (port, _)) in ports.iter().enumerate() {
        let started = std::time::Instant::now();
        loop {
            if direct_get(&cluster, *port, "/readyz")
                .await
                .is_ok_and(|(c, _)| c == 200)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "r{i} not ready after 90 s:\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tracing::info!(replica = i, after = ?started.elapsed(), "ready");
    }
    tracing::info!("they found each other by name: one set with a quorum (--voters=2 needs both)");
    eventually(
        Duration::from_secs(30),
        "one leader, no replica degraded, one epoch",
        async || {
            let mut leaders = 0.0;
            let mut epochs = Vec::new();
            for (port, _) in &ports {
                let Ok((200, text)) = direct_get(&cluster, *port, "/metrics").await else {
                    return false;
                };
                if metric(&text, "ha_metrics_server_degraded") != Some(0.0) {
                    return false;
                }
                leaders += metric(&text, "ha_metrics_server_coordinator_is_leader").unwrap_or(0.0);
                epochs.push(metric(&text, "ha_metrics_server_shard_map_epoch").unwrap_or(0.0));
            }
            leaders == 1.0 && epochs[0] > 0.0 && epochs.iter().all(|&e| e == epochs[0])
        },
    )
    .await;
    tracing::info!("both serve the Metrics API, also through kubectl and the aggregation proxy");
    // The proxy takes them as endpoints after their next readiness probe (period 1 s).
    eventually(
        Duration::from_secs(20),
        "kubectl top node through the proxy",
        async || {
            let out = kubectl(&cluster, &["top", "node"]).await;
            let text = String::from_utf8_lossy(&out.stdout);
            out.status.success() && ["node-0", "node-1", "node-2"].iter().all(|n| text.contains(n))
        },
    )
    .await;
    for c in &containers {
        let text = std::fs::read_to_string(&c.log).unwrap_or_default();
        assert!(
            !text.contains("Read-only file system"),
            "wrote outside /tmp and the data dir:\n{text}"
        );
    }
    drop(containers);
    cluster.shutdown();
}

/// The value of an unlabelled sample in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
