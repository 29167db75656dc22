//! Real parts for the agent's integration tests: the built binary, a real `rclone`, and a
//! real S3 server (`rclone serve s3`) on 127.0.0.1 with real keys.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "AKIAVSCTESTKEY000001";
pub const SECRET_KEY: &str = "vscTestSecretKey/0123456789abcdefghijklmn";
const INSTALL_HINT: &str = "rclone is required for these tests: run `bash tools/install-test-tools.sh` and put its bin/ directory on PATH (or set VSC_RCLONE_BINARY)";

/// The rclone binary the tests (and the agent under test) use.
pub fn rclone_binary() -> PathBuf {
    if let Ok(path) = std::env::var("VSC_RCLONE_BINARY") {
        return PathBuf::from(path);
    }
    let candidates = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("rclone"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cache = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/volume-syncing-controller/bin/rclone"));
    candidates
        .into_iter()
        .chain(cache)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

pub fn agent_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_volume-syncing-controller"))
}

/// The uid the agent runs as in these tests. As in a Pod, the agent is not root: when the
/// tests run as root, the agent runs as this unprivileged uid.
pub const AGENT_UID_WHEN_ROOT: u32 = 4242;

fn current_uid() -> u32 {
    fs::metadata("/proc/self").expect("stat /proc/self").uid()
}

pub fn agent_uid() -> u32 {
    if current_uid() == 0 {
        AGENT_UID_WHEN_ROOT
    } else {
        current_uid()
    }
}

/// Copies of the agent and rclone that the unprivileged agent user can execute, wherever
/// the checkout and the tool cache live.
fn runnable_binaries() -> &'static (PathBuf, PathBuf) {
    static BINARIES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINARIES.get_or_init(|| {
        if current_uid() != 0 {
            return (agent_binary(), rclone_binary());
        }
        let dir = std::env::temp_dir().join(format!("vsc-test-bin-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("binary dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let copy = |source: PathBuf, name: &str| {
            let target = dir.join(name);
            fs::copy(&source, &target).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).expect("chmod");
            target
        };
        (
            copy(agent_binary(), "volume-syncing-controller"),
            copy(rclone_binary(), "rclone"),
        )
    })
}

/// Gives `path` and everything below it to the agent user.
pub fn give_to_agent(path: &Path) {
    give_to(path, agent_uid());
}

pub fn give_to(path: &Path, uid: u32) {
    if current_uid() != 0 {
        return;
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path).expect("read_dir").flatten() {
            give_to(&entry.path(), uid);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// `rclone serve s3` over a temporary directory; each top-level directory is a bucket.
pub struct S3Server {
    pub root: tempfile::TempDir,
    pub endpoint: String,
    child: Child,
}

impl S3Server {
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("tempdir for the S3 server");
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(rclone_binary())
                .args(["serve", "s3", "--addr"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--auth-key")
                .arg(format!("{ACCESS_KEY},{SECRET_KEY}"))
                .arg(root.path())
                .env("RCLONE_CONFIG", "/dev/null")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{INSTALL_HINT}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return S3Server {
                        endpoint: format!("http://127.0.0.1:{port}"),
                        root,
                        child,
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // port taken between probe and bind: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        panic!("rclone serve s3 did not start");
    }

    /// Creates a bucket and returns its directory on the server's disk.
    pub fn bucket(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        fs::create_dir_all(&dir).expect("bucket dir");
        dir
    }

    /// The `REMOTE_*` environment a user would set for this server.
    pub fn remote_env(&self) -> Vec<(String, String)> {
        vec![
            ("REMOTE_TYPE".into(), "s3".into()),
            ("REMOTE_PROVIDER".into(), "Other".into()),
            ("REMOTE_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("REMOTE_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
            ("REMOTE_ENDPOINT".into(), self.endpoint.clone()),
            ("REMOTE_ACL".into(), "private".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's sandbox: working directory, PID file, and the agent command builder.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new(server: &S3Server) -> Sandbox {
        let dir = tempfile::tempdir().expect("sandbox");
        give_to_agent(dir.path());
        Sandbox {
            dir,
            env: server.remote_env(),
        }
    }

    /// Writes files under `relative` as the agent user's own.
    pub fn write(&self, relative: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.path(relative);
        write_tree(&root, files);
        give_to_agent(self.dir.path());
        root
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn pid_path(&self) -> PathBuf {
        self.path("agent.pid")
    }

    /// The agent with only this sandbox's environment (no REMOTE_* leaking in from outside).
    pub fn agent(&self, args: &[&str]) -> Command {
        let (agent, rclone) = runnable_binaries();
        // As root, drop to the agent user the way a container runtime would (setpriv
        // execs, so the child's PID is the agent's).
        let mut command = if current_uid() == 0 {
            let mut setpriv = Command::new("setpriv");
            setpriv
                .arg(format!("--reuid={AGENT_UID_WHEN_ROOT}"))
                .arg(format!("--regid={AGENT_UID_WHEN_ROOT}"))
                .arg("--clear-groups")
                .arg(agent);
            setpriv
        } else {
            Command::new(agent)
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("VSC_RCLONE_BINARY", rclone)
            .env("VSC_PID_PATH", self.pid_path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .args(args);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.agent(args).output().expect("run the agent")
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit {code}; stderr:\n{}",
        stderr(output)
    );
}

/// Writes `files` (relative path -> contents) under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (relative, contents) in files {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, contents).expect("write");
    }
}

/// Every file under `root` as (relative path, contents), sorted.
pub fn read_tree(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    collect(root, root, &mut files);
    files.sort();
    files
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            let contents = String::from_utf8_lossy(&fs::read(&path).expect("read")).into_owned();
            files.push((relative, contents));
        }
    }
}

/// Waits until `condition` holds, up to `limit`.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

pub fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}
