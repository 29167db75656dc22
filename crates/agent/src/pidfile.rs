//! The PID file a running agent holds, and `interrupt`, which signals through it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{AgentError, Result};

/// The PID file name inside `$XDG_RUNTIME_DIR`.
const RUNTIME_DIR_NAME: &str = "volume-syncing-controller.pid";

/// Where a PID file is kept when `--pid-path` is not given: root's in `/run`, any other
/// user's where that user can write and nobody else can, so `interrupt` run by the same user
/// finds it:
///
/// * root: `/run/volume-syncing-controller.pid`;
/// * `$XDG_RUNTIME_DIR/volume-syncing-controller.pid`, when that is an absolute path to a
///   directory owned by the user and closed to others (as systemd-logind makes it);
/// * else `<temp dir>/volume-syncing-controller-<uid>/agent.pid`, a directory of mode 0700
///   that must be owned by the user (one planted by someone else is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPidPath {
    pub path: PathBuf,
    /// The per-user directory to create (0700) and whose ownership is checked before use.
    pub private_dir: Option<PathBuf>,
}

impl DefaultPidPath {
    pub fn for_this_user() -> Self {
        let uid = nix::unistd::geteuid().as_raw();
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        DefaultPidPath::for_user(uid, runtime_dir.as_deref(), &std::env::temp_dir())
    }

    fn for_user(uid: u32, runtime_dir: Option<&Path>, temp_dir: &Path) -> Self {
        if uid == 0 {
            return DefaultPidPath {
                path: PathBuf::from(vsc_types::contract::DEFAULT_PID_PATH),
                private_dir: None,
            };
        }
        if let Some(dir) = runtime_dir.filter(|dir| is_private_dir_of(dir, uid)) {
            return DefaultPidPath {
                path: dir.join(RUNTIME_DIR_NAME),
                private_dir: None,
            };
        }
        let dir = temp_dir.join(format!("volume-syncing-controller-{uid}"));
        DefaultPidPath {
            path: dir.join("agent.pid"),
            private_dir: Some(dir),
        }
    }

    /// Creates the per-user directory (mode 0700) when missing; either way, checks that it
    /// is the running user's and closed to others.
    pub fn prepare(&self) -> Result<()> {
        let Some(dir) = &self.private_dir else {
            return Ok(());
        };
        use std::os::unix::fs::DirBuilderExt as _;
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(AgentError::io(
                    "cannot create the PID file directory",
                    dir,
                    e,
                ));
            }
        }
        self.check()
    }

    /// Checks that an existing per-user directory is the running user's and closed to
    /// others: a PID file someone else could write would let them pick what `interrupt`
    /// signals.
    pub fn check(&self) -> Result<()> {
        let Some(dir) = &self.private_dir else {
            return Ok(());
        };
        let uid = nix::unistd::geteuid().as_raw();
        match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AgentError::io(
                "cannot inspect the PID file directory",
                dir,
                e,
            )),
            Ok(_) if is_private_dir_of(dir, uid) => Ok(()),
            Ok(_) => Err(AgentError::invalid(format!(
                "the PID file directory {} is not a directory of mode 0700 owned by uid {uid}; remove it, or set --pid-path",
                dir.display()
            ))),
        }
    }
}

/// `dir` is a real directory (not a symlink), owned by `uid`, and neither group nor others
/// may write to it.
fn is_private_dir_of(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    dir.is_absolute()
        && fs::symlink_metadata(dir)
            .is_ok_and(|meta| meta.is_dir() && meta.uid() == uid && meta.mode() & 0o022 == 0)
}

/// The PID file of this process; removed on drop if it still names this process.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes this process's PID to `path`. When another live agent holds the file (a manual
    /// `kubectl exec` run beside the sidecar), this run goes on without it: `interrupt`
    /// keeps signalling the long-running agent.
    pub fn acquire(path: &Path) -> Result<Option<PidFile>> {
        let pid = std::process::id();
        if let Some(holder) = read_pid(path)?
            && holder != pid
            && is_alive(holder)
            && is_agent(holder)
        {
            tracing::info!(pid_path = %path.display(), holder, "another agent holds the PID file; `interrupt` will signal it, not this run");
            return Ok(None);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| AgentError::io("--pid-path: cannot create directory", parent, e))?;
        }
        // Write then rename, so `interrupt` never reads a half-written file.
        let temporary = path.with_extension(format!("pid.{pid}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temporary)?;
            writeln!(file, "{pid}")?;
            file.sync_all()?;
            fs::rename(&temporary, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temporary);
            AgentError::io("--pid-path: cannot write the PID file", path, e)
        })?;
        Ok(Some(PidFile {
            path: path.to_path_buf(),
            pid,
        }))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if matches!(read_pid(&self.path), Ok(Some(pid)) if pid == self.pid) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Reads the PID in `path`; `None` when there is no file.
fn read_pid(path: &Path) -> Result<Option<u32>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AgentError::io("cannot read the PID file", path, e)),
    };
    let pid = text.trim().parse::<u32>().map_err(|_| {
        AgentError::invalid(format!(
            "the PID file {} does not hold a process id (it holds '{}')",
            path.display(),
            text.trim()
        ))
    })?;
    if pid == 0 || i32::try_from(pid).is_err() {
        return Err(AgentError::invalid(format!(
            "the PID file {} holds an impossible process id {pid}",
            path.display()
        )));
    }
    Ok(Some(pid))
}

fn as_nix_pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

/// A process counts as gone once it is a zombie: it has exited, its parent has not reaped it.
pub(crate) fn is_alive(pid: u32) -> bool {
    match kill(as_nix_pid(pid), None) {
        Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Whether process `pid` runs this program, not whatever got the PID of an agent that is
/// gone: `Err` says what runs there instead.
fn agent_check(pid: u32) -> std::result::Result<(), String> {
    let ours = std::env::current_exe().ok();
    let our_name = ours.as_deref().and_then(Path::file_name);
    // The binary it runs; another user's process hides it (EACCES), its command line not.
    let theirs = match fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe) => {
            // A binary replaced since it started (an upgrade) reads as "<path> (deleted)".
            let text = exe.to_string_lossy();
            PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text))
        }
        Err(_) => fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .and_then(|cmdline| {
                let first = cmdline.split(|byte| *byte == 0).next()?.to_vec();
                (!first.is_empty()).then(|| PathBuf::from(String::from_utf8_lossy(&first).as_ref()))
            })
            .unwrap_or_default(),
    };
    if ours.as_deref() == Some(theirs.as_path())
        || (our_name.is_some() && theirs.file_name() == our_name)
    {
        return Ok(());
    }
    Err(describe_process(pid, &theirs))
}

fn is_agent(pid: u32) -> bool {
    agent_check(pid).is_ok()
}

/// `pid`'s command line (or its binary), for a message.
fn describe_process(pid: u32, binary: &Path) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = cmdline
        .split(|byte| *byte == 0)
        .filter(|word| !word.is_empty())
        .take(8)
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect();
    match (words.is_empty(), binary.as_os_str().is_empty()) {
        (false, _) => format!("'{}'", words.join(" ")),
        (true, false) => format!("'{}'", binary.display()),
        (true, true) => "a process whose program cannot be read".to_string(),
    }
}

/// How long `interrupt` waits for a PID file to appear.
const PID_FILE_GRACE: Duration = Duration::from_secs(5);

/// Sends SIGTERM to the agent named in `path`; with `wait`, returns once it has exited
/// (after its final sync), or fails after `timeout`.
pub async fn interrupt(path: &Path, wait: bool, timeout: Option<Duration>) -> Result<u32> {
    // A preStop hook can fire right after the container started, before the agent has
    // written its PID file: give it a moment.
    let started = Instant::now();
    let pid = loop {
        if let Some(pid) = read_pid(path)? {
            break pid;
        }
        if started.elapsed() >= PID_FILE_GRACE {
            return Err(AgentError::NoRunningAgent(format!(
                "no PID file at {} after {}s (is the agent running, with the same --pid-path?)",
                path.display(),
                PID_FILE_GRACE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The agent may be long gone and its PID reused (a PID file on a volume, a restarted
    // container): never signal a process that is not an agent.
    if is_alive(pid)
        && let Err(running) = agent_check(pid)
    {
        return Err(AgentError::NoRunningAgent(format!(
            "the PID file {} is stale: it names process {pid}, which is not the agent but {running}; not signalled (remove the file, or pass the right --pid-path)",
            path.display()
        )));
    }
    match kill(as_nix_pid(pid), Signal::SIGTERM) {
        Ok(()) => {}
        Err(Errno::ESRCH) => {
            return Err(AgentError::NoRunningAgent(format!(
                "the PID file {} names process {pid}, which is not running (stale file)",
                path.display()
            )));
        }
        Err(e) => {
            return Err(AgentError::Internal(format!(
                "cannot signal process {pid}: {e}"
            )));
        }
    }
    tracing::info!(pid, "sent SIGTERM to the agent");
    if !wait {
        return Ok(pid);
    }
    let started = Instant::now();
    while is_alive(pid) {
        if let Some(limit) = timeout
            && started.elapsed() >= limit
        {
            return Err(AgentError::Internal(format!(
                "the agent (pid {pid}) was still running {}s after SIGTERM",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!(
        pid,
        waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "the agent has exited"
    );
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_writes_our_pid_and_drop_removes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/agent.pid");
        let guard = PidFile::acquire(&path).expect("acquired").expect("free");
        assert_eq!(read_pid(&path).expect("read"), Some(std::process::id()));
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_pid_file_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.pid");
        fs::write(&path, "999999999\n").expect("write");
        assert!(PidFile::acquire(&path).expect("acquired").is_some());
    }

    #[test]
    fn the_default_is_per_user_and_only_in_a_directory_of_that_user() {
        use std::os::unix::fs::PermissionsExt as _;
        let uid = nix::unistd::geteuid().as_raw();
        let temp = tempfile::tempdir().expect("tempdir");
        let root = DefaultPidPath::for_user(0, Some(temp.path()), temp.path());
        assert_eq!(
            root.path,
            PathBuf::from("/run/volume-syncing-controller.pid")
        );

        let runtime = temp.path().join("runtime");
        fs::create_dir(&runtime).expect("mkdir");
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).expect("chmod");
        let user = DefaultPidPath::for_user(uid.max(1), Some(&runtime), temp.path());
        if uid != 0 {
            assert_eq!(user.path, runtime.join("volume-syncing-controller.pid"));
            assert_eq!(user.private_dir, None);
        }

        // Not this user's, open to others, or missing: the per-user temp directory.
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o777)).expect("chmod");
        for runtime_dir in [Some(runtime.as_path()), Some(Path::new("relative")), None] {
            let fallback = DefaultPidPath::for_user(uid.max(1), runtime_dir, temp.path());
            let dir = temp
                .path()
                .join(format!("volume-syncing-controller-{}", uid.max(1)));
            assert_eq!(fallback.path, dir.join("agent.pid"));
            assert_eq!(fallback.private_dir, Some(dir));
        }

        let mine = DefaultPidPath::for_user(uid, None, temp.path());
        if uid != 0 {
            mine.prepare().expect("created");
            let dir = mine.private_dir.clone().expect("dir");
            assert_eq!(
                fs::metadata(&dir).expect("stat").permissions().mode() & 0o777,
                0o700
            );
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
            let err = mine.prepare().expect_err("open to others");
            assert!(err.to_string().contains("0700"), "{err}");
        }
    }

    #[test]
    fn garbage_in_the_pid_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.pid");
        fs::write(&path, "not-a-pid").expect("write");
        let err = read_pid(&path).expect_err("garbage");
        assert!(err.to_string().contains("not-a-pid"), "{err}");
    }
}
