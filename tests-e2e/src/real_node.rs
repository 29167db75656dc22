//! A real single-node cluster (scripts/local-cluster.sh: kubelet, containerd, runc, CNI,
//! kube-proxy, scheduler, controller-manager) running images built from this workspace
//! (scripts/build-images.sh), for the tests where the kubelet decides: Pod start, init
//! order, native sidecars, probes, grace periods, volume ownership, envFrom Secrets.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helm::{kubectl, repo_root};

/// The images scripts/build-images.sh made: OCI archives and the names they import as.
pub struct Images {
    pub archives: Vec<PathBuf>,
    pub agent: String,
    pub operator: String,
}

/// Output of a script: stdout, or an error with everything it printed.
fn script(path: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let output = Command::new("bash")
        .arg(repo_root().join(path))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run {path}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "{path} {} failed ({}):\n{stderr}{stdout}",
            args.join(" "),
            output.status
        ))
    }
}

/// Builds (or reuses, when the workspace did not change) the agent and operator images.
pub fn build_images() -> Result<Images, String> {
    script("scripts/build-images.sh", &[], &[])?;
    let dir = images_dir();
    let manifest = std::fs::read_to_string(dir.join("images.json")).map_err(|e| {
        format!(
            "scripts/build-images.sh wrote no {}/images.json: {e}",
            dir.display()
        )
    })?;
    let listed: Value = serde_json::from_str(&manifest).map_err(|e| format!("images.json: {e}"))?;
    let field = |which: &str, key: &str| -> Result<String, String> {
        listed["images"][which][key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("images.json has no images.{which}.{key}: {listed}"))
    };
    Ok(Images {
        archives: vec![
            dir.join(field("agent", "archive")?),
            dir.join(field("operator", "archive")?),
        ],
        agent: field("agent", "name")?,
        operator: field("operator", "name")?,
    })
}

fn images_dir() -> PathBuf {
    std::env::var_os("VSC_IMAGES_DIR")
        .map_or_else(|| repo_root().join(".build/images"), PathBuf::from)
}

/// A running local cluster; `down` (or drop) stops it and checks the host is as it was.
pub struct LocalCluster {
    pub state: PathBuf,
    pub kubeconfig: PathBuf,
    pub node: String,
    pub node_ip: String,
    running: bool,
}

impl LocalCluster {
    /// `scripts/local-cluster.sh up` in a state directory of its own, importing `images`.
    pub fn up(images: &[PathBuf]) -> Result<LocalCluster, String> {
        let state = std::env::temp_dir().join(format!("vsc-cluster-{}", std::process::id()));
        let state_text = state.to_str().ok_or("temp dir is not UTF-8")?.to_string();
        let archives = images
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let mut cluster = LocalCluster {
            kubeconfig: state.join("admin.kubeconfig"),
            state,
            node: String::new(),
            node_ip: String::new(),
            running: true,
        };
        script(
            "scripts/local-cluster.sh",
            &["up"],
            &[
                ("VSC_CLUSTER_DIR", &state_text),
                ("VSC_CLUSTER_IMAGES", &archives),
            ],
        )?;
        let env = std::fs::read_to_string(cluster.state.join("env"))
            .map_err(|e| format!("local-cluster.sh wrote no env file: {e}"))?;
        cluster.node = env_value(&env, "VSC_CLUSTER_NODE")?;
        cluster.node_ip = env_value(&env, "VSC_CLUSTER_NODE_IP")?;
        Ok(cluster)
    }

    /// Stops everything; Err names what the host kept of the run.
    pub fn down(&mut self) -> Result<(), String> {
        if !std::mem::take(&mut self.running) {
            return Ok(());
        }
        let state = self.state.display().to_string();
        script(
            "scripts/local-cluster.sh",
            &["down"],
            &[("VSC_CLUSTER_DIR", &state)],
        )
        .map(drop)
    }

    /// `kubectl` against this cluster: Ok(stdout) or Err(stderr + stdout).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        kubectl(&self.kubeconfig, args, stdin)
    }

    /// [`LocalCluster::kubectl`], panicking with its message.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.kubectl(args, stdin)
            .unwrap_or_else(|e| panic!("kubectl {}:\n{e}", args.join(" ")))
    }

    /// `kubectl get -o json`, None when it does not exist.
    pub fn get_json(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        match self.kubectl(&all, None) {
            Ok(json) => serde_json::from_str(&json).ok(),
            Err(e) if e.contains("NotFound") || e.contains("not found") => None,
            Err(e) => panic!("kubectl {}: {e}", all.join(" ")),
        }
    }

    /// What a user looks at when a wait fails: Pods, their events, the container logs.
    pub fn describe(&self, namespace: &str) -> String {
        let pods = self
            .kubectl(&["get", "pods", "-o", "wide", "-n", namespace], None)
            .unwrap_or_else(|e| e);
        let events = self
            .kubectl(
                &["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"],
                None,
            )
            .unwrap_or_else(|e| e);
        format!("{pods}\n{events}")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            eprintln!("local cluster down: {e}");
        }
    }
}

fn env_value(env: &str, key: &str) -> Result<String, String> {
    env.lines()
        .find_map(|line| line.strip_prefix(&format!("export {key}=")))
        .map(str::to_string)
        .ok_or_else(|| format!("local-cluster.sh env file has no {key}"))
}

/// Polls `check` every 500 ms for up to `limit`; Err(what) when it never held.
pub fn poll<T>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The processes (PID, command name) of the Pod with this UID, its pause process too: their
/// cgroup path names the UID, with dashes or, under the systemd driver, underscores.
pub fn pod_processes(pod_uid: &str) -> Vec<(String, String)> {
    let underscored = pod_uid.replace('-', "_");
    let entries = fs::read_dir("/proc").into_iter().flatten().flatten();
    entries
        .filter_map(|entry| {
            let dir = entry.path();
            let comm = fs::read_to_string(dir.join("comm")).ok()?;
            let cgroup = fs::read_to_string(dir.join("cgroup")).ok()?;
            (cgroup.contains(pod_uid) || cgroup.contains(&underscored)).then(|| {
                let pid = entry.file_name().to_string_lossy().into_owned();
                (pid, comm.trim().to_string())
            })
        })
        .collect()
}

/// Why the local cluster cannot run here, in words naming the missing part.
pub fn missing_prerequisite() -> Option<String> {
    if !vsc_test_support::running_as_root() {
        return Some(
            "the real-node tests need root (containerd, runc and the kubelet make namespaces, mounts and cgroups): run `sudo bash scripts/test.sh`".into(),
        );
    }
    let cgroups = Path::new("/sys/fs/cgroup");
    if !cgroups.join("cgroup.controllers").exists() && !cgroups.join("memory").is_dir() {
        return Some(
            "no usable cgroup hierarchy under /sys/fs/cgroup: the kubelet cannot run Pods".into(),
        );
    }
    None
}

/// `rclone serve s3` for Pods: on 127.0.0.1:9000 (the seed example's endpoint, for
/// hostNetwork Pods) and on the node's address (for Pods on the bridge network).
pub struct NodeS3 {
    pub root: tempfile::TempDir,
    pub pod_endpoint: String,
    addresses: Vec<String>,
    child: Option<std::process::Child>,
}

/// The seed example's endpoint: `REMOTE_ENDPOINT: http://localhost:9000`.
pub const SEED_S3_PORT: u16 = 9000;

impl NodeS3 {
    pub fn start(node_ip: &str) -> Result<NodeS3, String> {
        let root = tempfile::Builder::new()
            .prefix("vsc-node-s3-")
            .tempdir()
            .map_err(|e| format!("temp dir for the S3 server: {e}"))?;
        let addresses = vec![
            format!("127.0.0.1:{SEED_S3_PORT}"),
            format!("{node_ip}:{SEED_S3_PORT}"),
        ];
        let mut server = NodeS3 {
            root,
            pod_endpoint: format!("http://{node_ip}:{SEED_S3_PORT}"),
            addresses,
            child: None,
        };
        server.resume()?;
        Ok(server)
    }

    /// Deletes one object (`bucket/key`) through the server's S3 API, as another client
    /// would (the server caches its directory listing: a file removed on its disk stays
    /// listed for minutes).
    pub fn delete_object(&self, path: &str) {
        let env = [
            ("REMOTE_TYPE", "s3"),
            ("REMOTE_PROVIDER", "Other"),
            ("REMOTE_ACCESS_KEY_ID", vsc_test_support::ACCESS_KEY),
            ("REMOTE_SECRET_ACCESS_KEY", vsc_test_support::SECRET_KEY),
            (
                "REMOTE_ENDPOINT",
                &format!("http://127.0.0.1:{SEED_S3_PORT}"),
            ),
        ]
        .map(|(key, value)| (key.to_string(), value.to_string()));
        vsc_test_support::delete_object_with(&env, path);
    }

    /// (Re)starts the server over the same directory: the remote comes back.
    pub fn resume(&mut self) -> Result<(), String> {
        for address in &self.addresses {
            if std::net::TcpStream::connect(address).is_ok() {
                return Err(format!(
                    "{address} is taken by another program: the seed example's S3 endpoint is port {SEED_S3_PORT}"
                ));
            }
        }
        let mut command = Command::new(vsc_test_support::rclone_binary());
        // The tests seed buckets on the server's disk before Pods start: a short directory
        // cache, so seeds are seen (the 5 min default hid them) and a dozen sidecars stay cheap.
        command.args(["serve", "s3", "--dir-cache-time", "1s"]);
        for address in &self.addresses {
            command.args(["--addr", address]);
        }
        let child = command
            .arg("--auth-key")
            .arg(format!(
                "{},{}",
                vsc_test_support::ACCESS_KEY,
                vsc_test_support::SECRET_KEY
            ))
            .arg(self.root.path())
            .env("RCLONE_CONFIG", "/dev/null")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start rclone serve s3: {e}"))?;
        self.child = Some(child);
        let addresses = self.addresses.clone();
        poll(Duration::from_secs(10), "rclone serve s3 to listen", || {
            addresses
                .iter()
                .all(|a| std::net::TcpStream::connect(a).is_ok())
                .then_some(())
        })
    }

    /// Stops the server: the remote goes away.
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The bucket's directory on the server's disk.
    pub fn bucket(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}

impl Drop for NodeS3 {
    fn drop(&mut self) {
        self.pause();
    }
}
