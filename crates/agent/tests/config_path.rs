//! `-c/--config-path`: the agent writes its rclone config there and removes it on exit, but
//! never overwrites or removes a file it did not write.

mod support;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

const HAND_WRITTEN: &str = "# my own remote, keep\n[remote]\ntype = local\n";

/// The config at `path` as a file of the agent user, the way they would have written it.
fn write_as_agent_user(sandbox: &Sandbox, path: &std::path::Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, text).expect("write the config");
    give_to_agent(sandbox.dir.path());
}

/// A local sandbox with `src`, and an agent syncing it every hour to `remote` with
/// `-c etc/rclone.conf`, once its first upload is there; its stderr goes to `stderr`.
fn scheduled_agent_with_config(
    stderr: Stdio,
) -> (Sandbox, Child, std::path::PathBuf, std::path::PathBuf) {
    let sandbox = Sandbox::local();
    sandbox.write("src", &[("a.txt", "1")]);
    let config = sandbox.path("etc/rclone.conf");
    fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
    give_to_agent(sandbox.dir.path());
    let remote = sandbox.path("remote");
    let remote_arg = remote.display().to_string();
    let config_arg = config.display().to_string();
    let agent = sandbox
        .agent(&[
            "sync-to-remote",
            "--schedule",
            "@every 1h",
            "-c",
            &config_arg,
            "-s",
            "src",
            "-d",
            &remote_arg,
        ])
        .stderr(stderr)
        .spawn()
        .expect("spawn the agent");
    assert!(eventually(Duration::from_secs(15), || remote
        .join("a.txt")
        .exists()));
    (sandbox, agent, config, remote)
}

#[test]
fn a_hand_written_config_at_config_path_is_refused_and_left_as_it_is() {
    let sandbox = Sandbox::local();
    sandbox.write("src", &[("a.txt", "1")]);
    let config = sandbox.path("etc/rclone.conf");
    write_as_agent_user(&sandbox, &config, HAND_WRITTEN);
    let remote = sandbox.path("remote");
    let remote_arg = remote.display().to_string();
    let config_arg = config.display().to_string();

    let output = sandbox.run(&[
        "sync-to-remote",
        "-c",
        &config_arg,
        "-s",
        "src",
        "-d",
        &remote_arg,
    ]);

    assert_exit(&output, 2);
    assert_logged(
        &output,
        &[&config_arg, "--no-template", "another --config-path"],
    );
    assert_eq!(fs::read_to_string(&config).expect("kept"), HAND_WRITTEN);
    assert!(!remote.exists(), "nothing may be uploaded");

    // The same file with --no-template is what the message offers, and it works.
    let mut bare = sandbox.agent(&[
        "sync-to-remote",
        "--no-template",
        "-c",
        &config_arg,
        "-s",
        "src",
        "-d",
        &remote_arg,
    ]);
    bare.env_remove("REMOTE_TYPE");
    assert_exit(&bare.output().expect("run"), 0);
    assert_eq!(stored_data(&remote), owned(&[("a.txt", "1")]));
    assert_eq!(fs::read_to_string(&config).expect("kept"), HAND_WRITTEN);
}

#[test]
fn the_config_of_a_run_killed_with_sigkill_is_replaced_and_removed_by_the_next_run() {
    let (sandbox, mut killed, config, remote) = scheduled_agent_with_config(Stdio::null());
    let (remote_arg, config_arg) = (remote.display().to_string(), config.display().to_string());
    killed.kill().expect("SIGKILL");
    killed.wait().expect("reap");
    let left = fs::read_to_string(&config).expect("a killed run leaves its config");
    assert!(
        left.starts_with("# written by volume-syncing-controller (pid "),
        "{left}"
    );

    // Different settings than the killed run: its file is replaced all the same.
    sandbox.write("src", &[("b.txt", "2")]);
    let output = sandbox.run(&[
        "sync-to-remote",
        "-p",
        "no_check_updated=true",
        "-c",
        &config_arg,
        "-s",
        "src",
        "-d",
        &remote_arg,
    ]);
    assert_exit(&output, 0);
    assert!(remote.join("b.txt").exists());
    assert!(
        !config.exists(),
        "the replaced config holds credentials and must be removed on exit"
    );
}

#[test]
fn a_running_agents_config_for_other_settings_is_refused_naming_its_pid() {
    let (sandbox, mut sidecar, config, remote) = scheduled_agent_with_config(Stdio::null());
    let (remote_arg, config_arg) = (remote.display().to_string(), config.display().to_string());
    let sidecars_config = fs::read_to_string(&config).expect("the sidecar's config");

    let mut other = sandbox.agent(&[
        "sync-to-remote",
        "-p",
        "no_check_updated=true",
        "-c",
        &config_arg,
        "-s",
        "src",
        "-d",
        &remote_arg,
    ]);
    // Its own PID file: the sidecar holds the sandbox's.
    other.env("VSC_PID_PATH", sandbox.path("other.pid"));
    let output = other.output().expect("run");

    sidecar.kill().expect("stop the sidecar");
    sidecar.wait().expect("reap");
    assert_exit(&output, 2);
    assert_logged(&output, &[&config_arg, &format!("pid {}", sidecar.id())]);
    assert_eq!(
        fs::read_to_string(&config).expect("kept"),
        sidecars_config,
        "the running agent's config must be left as it is"
    );
}

#[test]
fn an_applications_own_config_path_variable_is_not_the_agents() {
    let mut sandbox = Sandbox::local();
    sandbox.write("src", &[("a.txt", "1")]);
    let app_config = sandbox.path("app/config.yaml");
    write_as_agent_user(&sandbox, &app_config, "listen: 8080\n");
    sandbox.set_env("CONFIG_PATH", &app_config.display().to_string());
    let remote = sandbox.path("remote");

    let output = sandbox.run(&[
        "sync-to-remote",
        "-s",
        "src",
        "-d",
        &remote.display().to_string(),
    ]);

    assert_exit(&output, 0);
    assert_eq!(stored_data(&remote), owned(&[("a.txt", "1")]));
    assert_eq!(
        fs::read_to_string(&app_config).expect("the application's config is kept"),
        "listen: 8080\n"
    );
}

#[test]
fn a_file_put_at_config_path_while_the_agent_runs_is_not_removed_when_it_exits() {
    let (sandbox, agent, config, _) = scheduled_agent_with_config(Stdio::piped());
    // Someone puts their own file there (replacing, not editing, the agent's).
    let replacement = sandbox.path("etc/replacement.conf");
    write_as_agent_user(&sandbox, &replacement, HAND_WRITTEN);
    fs::rename(&replacement, &config).expect("replace the config");

    let status = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = agent.wait_with_output().expect("wait");

    assert_exit(&output, 0);
    assert_logged(&output, &["left the file at --config-path in place"]);
    assert_eq!(fs::read_to_string(&config).expect("kept"), HAND_WRITTEN);
}

#[test]
fn the_next_run_removes_the_private_config_a_killed_run_left() {
    let mut sandbox = Sandbox::local();
    sandbox.write("src", &[("a.txt", "1")]);
    let temp = sandbox.path("tmp");
    sandbox.set_env("TMPDIR", &temp.display().to_string());
    // A process that has exited, and one that runs: the writers of two configs.
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let gone_pid = gone.id();
    gone.wait().expect("wait");
    let mut running = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let header = |pid: u32| {
        format!(
            "# written by volume-syncing-controller (pid {pid}); removed when that run exits\n[remote]\ntype = s3\nsecret_access_key = leaked\n"
        )
    };
    let killed = temp.join("volume-syncing-controller-Killed");
    let live = temp.join("volume-syncing-controller-Live");
    let pid_dir = temp.join("volume-syncing-controller-4242");
    for (dir, text) in [
        (&killed, Some(header(gone_pid))),
        (&live, Some(header(running.id()))),
        (&pid_dir, None),
    ] {
        fs::create_dir_all(dir).expect("mkdir");
        match text {
            Some(text) => fs::write(dir.join("rclone.conf"), text).expect("write"),
            None => fs::write(dir.join("agent.pid"), "1").expect("write"),
        }
    }
    give_to_agent(sandbox.dir.path());

    let remote = sandbox.path("remote").display().to_string();
    let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", &remote]);
    let _ = running.kill();
    let _ = running.wait();
    assert_exit(&output, 0);
    assert_logged(
        &output,
        &["removed the rclone config (with credentials) that a killed run left"],
    );
    assert!(!killed.exists(), "the killed run's config is still there");
    assert!(
        live.join("rclone.conf").exists(),
        "a running agent's config was removed"
    );
    assert!(
        pid_dir.join("agent.pid").exists(),
        "a directory without a config was removed"
    );
    // The run's own private directory is gone too.
    let left: Vec<_> = fs::read_dir(&temp)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}
