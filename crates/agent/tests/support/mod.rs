//! Real parts for the agent's integration tests: the built binary, a real `rclone`, and a
//! real S3 server (`rclone serve s3`) on 127.0.0.1 with real keys.
#![allow(dead_code)] // each test binary uses its own part of this module

pub use vsc_test_support::*;

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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

/// The agent and rclone as the unprivileged agent user can execute them, wherever the
/// checkout and the tool cache live. As root these are links in a directory under the temp
/// dir, held by each test thread that uses them (libtest runs every test on a thread of its
/// own and joins it): the last test to end removes it, passed or not.
fn runnable_binaries() -> &'static (PathBuf, PathBuf) {
    static BINARIES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    thread_local! {
        static HELD: std::cell::RefCell<Option<WorldExecutables>> =
            const { std::cell::RefCell::new(None) };
    }
    if current_uid() != 0 {
        return BINARIES.get_or_init(|| (agent_binary(), rclone_binary()));
    }
    let paths = HELD.with(|held| {
        held.borrow_mut()
            .get_or_insert_with(|| WorldExecutables::new(&[agent_binary(), rclone_binary()]))
            .paths()
            .to_vec()
    });
    BINARIES.get_or_init(|| (paths[0].clone(), paths[1].clone()))
}

/// The rclone binary as the agent user can execute it.
pub fn runnable_rclone() -> PathBuf {
    runnable_binaries().1.clone()
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

/// The S3 `provider` a test configures: the seed's documented `Minio`, and `Other`. rclone
/// behaves differently for each (bucket checks, error quirks), and the agent must work with
/// both wherever plain `rclone sync` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Minio,
    Other,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Minio => "Minio",
            Provider::Other => "Other",
        }
    }
}

/// Turns each listed `fn name(provider: Provider)` into the tests `minio::name` and
/// `other::name`, one per [`Provider`].
#[allow(unused_macros)] // each test binary uses its own part of this module
macro_rules! for_each_provider {
    ($($test:ident),+ $(,)?) => {
        mod minio {
            $(#[test]
            fn $test() {
                super::$test($crate::support::Provider::Minio)
            })+
        }
        mod other {
            $(#[test]
            fn $test() {
                super::$test($crate::support::Provider::Other)
            })+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_provider;

/// `program` as the agent user: as root, dropped to it the way a container runtime would
/// (setpriv execs, so the child's PID is the program's).
fn as_agent_user(program: &Path) -> Command {
    if current_uid() == 0 {
        let mut setpriv = Command::new("setpriv");
        setpriv
            .arg(format!("--reuid={AGENT_UID_WHEN_ROOT}"))
            .arg(format!("--regid={AGENT_UID_WHEN_ROOT}"))
            .arg("--clear-groups")
            .arg(program);
        setpriv
    } else {
        Command::new(program)
    }
}

/// A test's sandbox: working directory, PID file, and the agent command builder.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Sandbox {
    /// A sandbox whose environment configures `server` with provider `Other`.
    pub fn new(server: &S3Server) -> Sandbox {
        Sandbox::with_provider(server, Provider::Other)
    }

    /// A sandbox whose environment configures `server` with `provider`.
    pub fn with_provider(server: &S3Server, provider: Provider) -> Sandbox {
        let dir = tempfile::tempdir().expect("sandbox");
        give_to_agent(dir.path());
        Sandbox {
            dir,
            env: server.remote_env_for(provider.name()),
        }
    }

    /// A sandbox whose remote is a plain directory (`REMOTE_TYPE=local`): no server.
    pub fn local() -> Sandbox {
        let dir = tempfile::tempdir().expect("sandbox");
        give_to_agent(dir.path());
        Sandbox {
            dir,
            env: vec![("REMOTE_TYPE".into(), "local".into())],
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
        let mut command = as_agent_user(agent);
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

    /// `bash -c script` as the agent user in the sandbox directory `cwd`, as a user types
    /// it: no environment but `PATH` (with `volume-syncing-controller` and `rclone` first)
    /// and `HOME`.
    pub fn shell(&self, cwd: &str, script: &str) -> Command {
        let (agent, rclone) = runnable_binaries();
        let bin = fs::canonicalize(self.path(".test-bin")).unwrap_or_else(|_| {
            let bin = self.path(".test-bin");
            fs::create_dir_all(&bin).expect("bin dir");
            std::os::unix::fs::symlink(agent, bin.join("volume-syncing-controller"))
                .expect("link the agent");
            std::os::unix::fs::symlink(rclone, bin.join("rclone")).expect("link rclone");
            give_to_agent(&bin);
            bin
        });
        let mut path = std::ffi::OsString::from(bin.as_os_str());
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let mut command = as_agent_user(Path::new("bash"));
        command
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .current_dir(self.path(cwd))
            .args(["-euo", "pipefail", "-c", script]);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.agent(args).output().expect("run the agent")
    }

    /// `sync-to-remote -s <src> -d <dst>`, which must succeed.
    #[track_caller]
    pub fn upload(&self, src: &str, dst: &str) {
        assert_exit(&self.run(&["sync-to-remote", "-s", src, "-d", dst]), 0);
    }

    /// `remote-to-local-sync <flags> -s <remote> -d <dir>`, which must succeed; returns the
    /// restored tree.
    #[track_caller]
    pub fn restore(&self, flags: &[&str], remote: &str, dir: &str) -> Vec<(String, String)> {
        let mut args = vec!["remote-to-local-sync"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-s", remote, "-d", dir]);
        assert_exit(&self.run(&args), 0);
        read_tree(&self.path(dir))
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The agent's log (stderr) holds each of `needles`.
#[track_caller]
pub fn assert_logged(output: &Output, needles: &[&str]) {
    let log = stderr(output);
    for needle in needles {
        assert!(log.contains(needle), "no '{needle}' in the log:\n{log}");
    }
}

/// The agent's log (stderr) holds no line at ERROR or WARN level.
#[track_caller]
pub fn assert_no_error_or_warning(output: &Output) {
    let log = stderr(output);
    let bad: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" ERROR ") || line.contains(" WARN "))
        .collect();
    assert!(bad.is_empty(), "ERROR/WARN in the log:\n{log}");
}

/// The agent's log (stderr) does not mention `needle`.
#[track_caller]
pub fn assert_not_logged(output: &Output, needle: &str) {
    let log = stderr(output);
    assert!(!log.contains(needle), "'{needle}' in the log:\n{log}");
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

/// The agent's completion record at the top of a remote path.
pub const RECORD_NAME: &str = ".volume-syncing-controller.json";
/// The agent's trash at the top of a remote path (`--trash`).
pub const TRASH_DIR: &str = ".volume-syncing-controller.trash";

/// The user's files stored under `dir` on the S3 server's disk: [`read_tree`] without the
/// agent's completion record and trash.
pub fn stored_data(dir: &Path) -> Vec<(String, String)> {
    let stored = read_every_file(dir);
    assert!(
        !stored
            .iter()
            .any(|(path, _)| path.ends_with(LOCAL_RECORD_NAME)),
        "the local record was uploaded: {stored:?}"
    );
    stored
        .into_iter()
        .filter(|(path, _)| path != RECORD_NAME && !path.starts_with(&format!("{TRASH_DIR}/")))
        .collect()
}

/// The completion record under `dir` on the S3 server's disk (plain remotes only).
pub fn stored_record(dir: &Path) -> serde_json::Value {
    let text = fs::read_to_string(dir.join(RECORD_NAME))
        .unwrap_or_else(|e| panic!("no completion record in {}: {e}", dir.display()));
    serde_json::from_str(&text).expect("the completion record is JSON")
}

/// Every byte stored by the server under `dir`, names and contents, as one string: what
/// must hold no plaintext when the remote is encrypted.
pub fn everything_stored(dir: &Path) -> String {
    read_every_file(dir)
        .into_iter()
        .map(|(name, body)| format!("{name}\n{body}\n"))
        .collect()
}

/// SIGKILL for the agent and the rclone it started (its own process group), as a container
/// runtime kills every process of a Pod.
pub fn kill_with_children(agent: std::process::Child) {
    let pid = agent.id();
    // Children of every thread: rclone may be started from any runtime thread.
    let mut pids: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
                .flat_map(|children| {
                    children
                        .split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .unwrap_or_default();
    pids.push(pid.to_string());
    let status = Command::new("kill")
        .arg("-KILL")
        .args(&pids)
        .status()
        .expect("kill");
    assert!(status.success(), "kill {pids:?}");
    let mut agent = agent;
    let _ = agent.wait();
}

/// `plain` as `rclone obscure` (the real rclone) makes it.
pub fn obscure(plain: &str) -> String {
    let output = Command::new(rclone_binary())
        .args(["obscure", plain])
        .output()
        .expect("rclone obscure");
    String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}
