//! The PID file at its default place, for an unprivileged user on bare metal (the tests
//! run the agent as an unprivileged uid): no warning, and `interrupt` finds it.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

/// A running agent, killed if the test ends before it exits.
struct Running(Option<Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    fn wait(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The agent without `--pid-path` / `VSC_PID_PATH`, its temp dir `tmp` in the sandbox.
fn without_pid_path(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut command = sandbox.agent(args);
    command
        .env_remove("VSC_PID_PATH")
        .env("TMPDIR", sandbox.path("tmp"));
    command
}

fn private_dir(sandbox: &Sandbox, name: &str, mode: u32) -> PathBuf {
    let dir = sandbox.path(name);
    fs::create_dir_all(&dir).expect("mkdir");
    give_to_agent(&dir);
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).expect("chmod");
    dir
}

/// Starts a scheduled upload with `configure`d environment, waits for its PID file at
/// `expected`, then stops it with `interrupt` run the same way (no `--pid-path` either).
fn a_scheduled_agent_is_interrupted_through(
    sandbox: &Sandbox,
    expected: &Path,
    configure: impl Fn(&mut Command),
) {
    let mut agent = without_pid_path(
        sandbox,
        &[
            "sync-to-remote",
            "--schedule",
            "@every 1h",
            "-s",
            "src",
            "-d",
            "bkt/app",
        ],
    );
    configure(&mut agent);
    let agent = Running(Some(
        agent
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the agent"),
    ));
    assert!(
        eventually(Duration::from_secs(15), || fs::read_to_string(expected)
            .is_ok_and(|pid| pid.trim() == agent.id().to_string())),
        "no PID file of the agent at {}",
        expected.display()
    );

    let mut interrupt = without_pid_path(sandbox, &["interrupt", "--timeout", "60s"]);
    configure(&mut interrupt);
    let output = interrupt.output().expect("run interrupt");
    assert_exit(&output, 0);

    let output = agent.wait();
    assert_exit(&output, 0);
    assert_not_logged(&output, "PID file");
    assert_no_error_or_warning(&output);
    assert!(!expected.exists(), "the PID file is removed at exit");
}

#[test]
fn without_xdg_runtime_dir_the_pid_file_is_in_a_private_per_user_temp_dir() {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "A")]);
    private_dir(&sandbox, "tmp", 0o1777);
    let dir = sandbox.path(&format!("tmp/volume-syncing-controller-{}", agent_uid()));

    a_scheduled_agent_is_interrupted_through(&sandbox, &dir.join("agent.pid"), |_| {});

    let meta = fs::metadata(&dir).expect("the per-user directory");
    assert_eq!(meta.uid(), agent_uid());
    assert_eq!(meta.mode() & 0o777, 0o700);
}

#[test]
fn a_usable_xdg_runtime_dir_holds_the_pid_file() {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "A")]);
    private_dir(&sandbox, "tmp", 0o1777);
    let runtime = private_dir(&sandbox, "run-user", 0o700);

    a_scheduled_agent_is_interrupted_through(
        &sandbox,
        &runtime.join("volume-syncing-controller.pid"),
        |command| {
            command.env("XDG_RUNTIME_DIR", &runtime);
        },
    );
}

#[test]
fn a_one_shot_run_as_a_user_warns_about_nothing() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "A")]);
    private_dir(&sandbox, "tmp", 0o1777);
    let output = without_pid_path(&sandbox, &["sync-to-remote", "-s", "src", "-d", "bkt/app"])
        .output()
        .expect("run");
    assert_exit(&output, 0);
    assert_no_error_or_warning(&output);
    assert_eq!(stored_data(&bucket.join("app")), owned(&[("a.txt", "A")]));
}

#[test]
fn a_per_user_dir_open_to_others_is_not_trusted() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "A")]);
    private_dir(&sandbox, "tmp", 0o1777);
    // Planted before the agent's first run: anyone could write a PID file into it.
    let planted = private_dir(
        &sandbox,
        &format!("tmp/volume-syncing-controller-{}", agent_uid()),
        0o777,
    );

    let output = without_pid_path(&sandbox, &["sync-to-remote", "-s", "src", "-d", "bkt/app"])
        .output()
        .expect("run");
    assert_exit(&output, 0);
    assert_logged(&output, &["running without a PID file", "0700"]);
    assert!(!planted.join("agent.pid").exists());
    assert_eq!(stored_data(&bucket.join("app")), owned(&[("a.txt", "A")]));

    let output = without_pid_path(&sandbox, &["interrupt"])
        .output()
        .expect("run interrupt");
    assert_exit(&output, 2);
    assert_logged(&output, &["0700"]);
}

/// A process of the agent's user that is not an agent, killed when the test ends.
struct Bystander(Child);

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn interrupt_leaves_alone_a_process_that_took_a_stale_pid_files_pid() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "A")]);
    // The agent is gone and its PID now belongs to something else of the same user, which
    // SIGTERM would stop.
    let sleep = Bystander(
        sandbox
            .shell(".", "exec sleep 30")
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = sleep.0.id();
    assert!(
        eventually(Duration::from_secs(5), || fs::read(format!(
            "/proc/{pid}/cmdline"
        ))
        .is_ok_and(|cmdline| cmdline.starts_with(b"sleep"))),
        "sleep did not start"
    );
    fs::write(sandbox.pid_path(), format!("{pid}\n")).expect("write the PID file");
    give_to_agent(&sandbox.pid_path());

    let output = sandbox.run(&["interrupt", "--timeout", "10s"]);
    assert_exit(&output, 5);
    assert_logged(&output, &["stale", &pid.to_string(), "sleep 30"]);
    let state = fs::read_to_string(format!("/proc/{pid}/stat")).expect("sleep still exists");
    assert!(!state.contains(") Z"), "sleep was signalled: {state}");
    assert!(sandbox.pid_path().exists(), "interrupt removes nothing");

    // A new agent takes such a file over, so that `interrupt` reaches it.
    let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", "bkt/app"]);
    assert_exit(&output, 0);
    assert_not_logged(&output, "another agent holds the PID file");
    assert_eq!(stored_data(&bucket.join("app")), owned(&[("a.txt", "A")]));
}
