//! Long-running agent: the schedule, SIGTERM's final sync, and `interrupt` through the PID file.

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use support::*;

fn spawn(sandbox: &Sandbox, args: &[&str]) -> Child {
    sandbox
        .agent(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the agent")
}

/// `sync-to-remote <options> -s src -d <destination>`.
fn sync_src(sandbox: &Sandbox, options: &[&str], destination: &str) -> Child {
    let paths = ["-s", "src", "-d", destination];
    spawn(
        sandbox,
        &[&["sync-to-remote"], options, &paths[..]].concat(),
    )
}

/// Whether `path` appears in the bucket within 15 s.
fn uploaded(bucket: &Path, path: &str) -> bool {
    eventually(Duration::from_secs(15), || bucket.join(path).exists())
}

fn wait_with_stderr(child: Child) -> (Option<i32>, String) {
    let output = child.wait_with_output().expect("wait");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn the_schedule_syncs_at_start_and_on_every_tick() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let src = sandbox.write("src", &[("first.txt", "1")]);
    let agent = sync_src(&sandbox, &["--schedule", "@every 1s"], "bkt/live");

    assert!(uploaded(&bucket, "live/first.txt"), "no sync at start");
    sandbox.write("src", &[("second.txt", "2")]);
    assert!(uploaded(&bucket, "live/second.txt"), "no sync on a tick");
    std::fs::remove_file(src.join("first.txt")).expect("rm");
    assert!(
        eventually(Duration::from_secs(15), || !bucket
            .join("live/first.txt")
            .exists()),
        "deletion not mirrored"
    );

    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("reason=\"schedule\""), "{log}");
}

#[test]
fn cron_with_seconds_is_accepted_and_runs() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "1")]);
    let agent = sync_src(&sandbox, &["--schedule", "* * * * * *"], "bkt/cron");
    assert!(uploaded(&bucket, "cron/a.txt"));
    sandbox.write("src", &[("b.txt", "2")]);
    assert!(
        uploaded(&bucket, "cron/b.txt"),
        "the every-second cron did not tick"
    );
    sigterm(&agent);
    assert_eq!(wait_with_stderr(agent).0, Some(0));
}

#[test]
fn sigterm_runs_a_final_sync_that_carries_files_written_after_start() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("early.txt", "1")]);
    let agent = sync_src(&sandbox, &["--schedule", "@every 1h"], "bkt/app");
    assert!(uploaded(&bucket, "app/early.txt"));

    sandbox.write(
        "src",
        &[("late.txt", "written after the last scheduled sync")],
    );
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("reason=\"final\""), "{log}");
    assert_eq!(
        stored_data(&bucket.join("app")),
        owned(&[
            ("early.txt", "1"),
            ("late.txt", "written after the last scheduled sync")
        ])
    );
    assert!(
        !sandbox.pid_path().exists(),
        "the PID file is removed on exit"
    );
}

#[test]
fn a_failed_final_sync_exits_non_zero() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env("RCLONE_RETRIES", "1");
    sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    sandbox.write("src", &[("a.txt", "1")]);
    let agent = sync_src(&sandbox, &["--schedule", "@every 1h"], "bkt/app");
    assert!(uploaded(&bucket, "app/a.txt"));
    drop(server); // the remote goes away before the final sync
    sandbox.write("src", &[("b.txt", "for the final sync")]);
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(4), "{log}");
}

#[test]
fn interrupt_signals_the_agent_through_its_pid_file_and_waits_for_it() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("early.txt", "1")]);
    let mut agent = sync_src(&sandbox, &["--schedule", "@every 1h"], "bkt/app");
    assert!(uploaded(&bucket, "app/early.txt"));
    let pid_text = std::fs::read_to_string(sandbox.pid_path())
        .expect("the PID file exists while the agent runs");
    assert_eq!(pid_text.trim(), agent.id().to_string());

    sandbox.write("src", &[("late.txt", "2")]);
    let output = sandbox.run(&["interrupt"]);
    assert_exit(&output, 0);
    // `interrupt` returned only after the agent had exited: a preStop hook covers the final sync.
    assert!(
        agent.try_wait().expect("try_wait").is_some(),
        "interrupt returned before the agent exited"
    );
    assert!(bucket.join("app/late.txt").exists());

    let output = sandbox.run(&["interrupt"]);
    assert_exit(&output, 5);
    assert!(
        stderr(&output).contains("no PID file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_one_shot_run_finishes_its_sync_despite_sigterm() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    // Slow the transfer down so the signal lands mid-sync.
    sandbox.set_env("RCLONE_BWLIMIT", "200k");
    let big = "x".repeat(400 * 1024);
    sandbox.write("src", &[("big.bin", big.as_str())]);
    let agent = sync_src(&sandbox, &[], "bkt/one");
    std::thread::sleep(Duration::from_millis(700));
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        std::fs::metadata(bucket.join("one/big.bin"))
            .expect("uploaded")
            .len(),
        400 * 1024
    );
}

#[test]
fn watch_syncs_changes_soon_after_they_settle() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "1")]);
    let agent = sync_src(&sandbox, &["--watch"], "bkt/w");
    assert!(uploaded(&bucket, "w/a.txt"));
    // One write (as root, readable by the agent; no chown to add events of its own).
    std::fs::write(sandbox.path("src/new.txt"), "2").expect("write");
    assert!(
        uploaded(&bucket, "w/new.txt"),
        "a file change was not synced"
    );
    // Quiet now: the upload's own write of its local record is not a change to sync.
    std::thread::sleep(Duration::from_secs(4));
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        log.matches("sync starting reason=\"change\"").count(),
        1,
        "one change, one sync:\n{log}"
    );
}

#[test]
fn watch_min_interval_holds_changes_until_it_passes_or_the_agent_stops() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "1")]);
    let agent = sync_src(
        &sandbox,
        &["--watch", "--watch-min-interval", "1h"],
        "bkt/w",
    );
    assert!(uploaded(&bucket, "w/a.txt"));
    sandbox.write("src", &[("b.txt", "2")]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !bucket.join("w/b.txt").exists(),
        "synced before the minimum interval"
    );
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        bucket.join("w/b.txt").exists(),
        "the final sync must carry held changes"
    );
}

#[test]
fn health_turns_unhealthy_after_n_failed_syncs_and_metrics_count_them() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a.txt", "1")]);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let healthy = sync_src(
        &sandbox,
        &[
            "--schedule",
            "@every 1h",
            "--status-addr",
            &addr,
            "--unhealthy-after-failures",
            "2",
        ],
        "bkt/h",
    );
    assert!(uploaded(&bucket, "h/a.txt"));
    assert!(eventually(Duration::from_secs(5), || http_get(
        port, "/metrics"
    )
    .1
    .contains("result=\"success\"} 1")));
    assert!(eventually(Duration::from_secs(5), || http_get(
        port, "/healthz"
    )
    .0 == 200));
    assert!(eventually(Duration::from_secs(5), || http_get(
        port, "/nope"
    )
    .0 == 404));
    sigterm(&healthy);
    assert_eq!(wait_with_stderr(healthy).0, Some(0));

    let mut broken = Sandbox::new(&server);
    broken.set_env("REMOTE_ENDPOINT", "http://127.0.0.1:9");
    broken.set_env("RCLONE_RETRIES", "1");
    broken.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    broken.write("src", &[("a.txt", "1")]);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let agent = sync_src(
        &broken,
        &[
            "--schedule",
            "@every 1s",
            "--status-addr",
            &addr,
            "--unhealthy-after-failures",
            "2",
        ],
        "bkt/h",
    );
    assert!(
        eventually(Duration::from_secs(20), || http_get(port, "/healthz").0
            == 503),
        "healthz never failed"
    );
    let (_, body) = http_get(port, "/healthz");
    assert!(body.contains("in a row failed"), "{body}");
    let (_, metrics) = http_get(port, "/metrics");
    assert!(
        metrics.contains("volume_syncing_consecutive_failures{direction=\"to-remote\"}"),
        "{metrics}"
    );
    sigterm(&agent);
    assert_eq!(wait_with_stderr(agent).0, Some(4));
}

/// `sync-to-remote --schedule '@every 1s'` of `src` to `bkt/app` with health checks that
/// fail after one failed sync; returns the agent and its status port.
fn spawn_health_checked(sandbox: &Sandbox) -> (Child, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let agent = sync_src(
        sandbox,
        &[
            "--schedule",
            "@every 1s",
            "--status-addr",
            &addr,
            "--unhealthy-after-failures",
            "1",
        ],
        "bkt/app",
    );
    (agent, port)
}

#[test]
fn a_new_empty_volume_waiting_for_its_first_data_stays_healthy() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let src = sandbox.path("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    give_to_agent(&src);
    let (agent, port) = spawn_health_checked(&sandbox);
    assert!(eventually(Duration::from_secs(10), || http_get(
        port, "/metrics"
    )
    .1
    .contains("result=\"success\"} 3")));
    assert_eq!(http_get(port, "/healthz").0, 200, "waiting is not failing");
    // The first data arrives and is uploaded.
    sandbox.write("src", &[("first.txt", "1")]);
    assert!(eventually(Duration::from_secs(10), || bucket
        .join("app/first.txt")
        .exists()));
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("nothing to upload yet"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn an_empty_volume_over_a_remote_with_data_is_refused_and_unhealthy() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(&bucket.join("app"), &[("kept.txt", "remote")]);
    let sandbox = Sandbox::new(&server);
    let src = sandbox.path("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    give_to_agent(&src);
    let (agent, port) = spawn_health_checked(&sandbox);
    assert!(
        eventually(Duration::from_secs(10), || http_get(port, "/healthz").0
            == 503),
        "an empty source over a remote with data is a failure"
    );
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(3), "{log}");
    assert_eq!(
        read_tree(&bucket.join("app")),
        owned(&[("kept.txt", "remote")])
    );
}

#[test]
fn an_unreachable_remote_is_named_as_the_cause() {
    let server = S3Server::start();
    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env(
        "REMOTE_ENDPOINT",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    sandbox.set_env("RCLONE_RETRIES", "1");
    sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    sandbox.write("src", &[("a.txt", "1")]);
    for args in [
        ["sync-to-remote", "-s", "src", "-d", "bkt/app"],
        ["remote-to-local-sync", "-d", "dst", "-s", "bkt/app"],
    ] {
        let output = sandbox.run(&args);
        assert_exit(&output, 4);
        assert_logged(&output, &["connection refused"]);
        assert_not_logged(&output, "can't limit to single files");
    }
}

/// The seed README's manual sync, run beside a sidecar as `kubectl exec` runs it: the
/// sidecar's environment, its config at `-c /etc/volume-syncing-controller/rclone.conf`
/// (here a directory the agent cannot write, like a read-only root), the seed's long form
/// and the short form. Both use the sidecar's config and leave it in place.
#[test]
fn a_manual_sync_beside_the_sidecar_uses_its_config_and_keeps_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    let src = sandbox.write("src", &[("a.txt", "1")]);
    let config_dir = sandbox.path("etc/volume-syncing-controller");
    let config = config_dir.join("rclone.conf");
    for (key, value) in [
        ("VSC_LOCAL_PATH", src.display().to_string()),
        ("VSC_REMOTE_PATH", "bkt/app".to_string()),
        ("VSC_CONFIG_PATH", config.display().to_string()),
    ] {
        sandbox.set_env(key, &value);
    }
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    give_to_agent(&sandbox.path("etc"));
    let sidecar = spawn(&sandbox, &["sync-to-remote", "--schedule", "@every 1h"]);
    assert!(uploaded(&bucket, "app/a.txt"));
    std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");

    let src_arg = src.display().to_string();
    let config_arg = config.display().to_string();
    let long_form = ["sync-to-remote", "-s", &src_arg, "-c", &config_arg];
    let short_form = ["sync-to-remote"];
    for (i, args) in [&long_form[..], &short_form[..]].into_iter().enumerate() {
        let name = format!("manual-{i}.txt");
        sandbox.write("src", &[(name.as_str(), "m")]);
        assert_exit(&sandbox.run(args), 0);
        assert!(bucket.join("app").join(&name).exists(), "{args:?}");
        assert!(config.exists(), "{args:?} removed the sidecar's config");
    }
    sigterm(&sidecar);
    let (code, log) = wait_with_stderr(sidecar);
    assert_eq!(code, Some(0), "{log}");
}

/// A hostNetwork Pod's sidecar: a free loopback port, written to a file that the exec
/// liveness probe (`health`) reads; healthy while syncs succeed, unhealthy after failures.
#[test]
fn health_probes_an_agent_on_a_port_chosen_at_start() {
    let server = S3Server::start();
    let mut sandbox = Sandbox::new(&server);
    server.bucket("bkt");
    sandbox.write("src", &[("a.txt", "1")]);
    let addr_file = sandbox.path("status-addr").display().to_string();
    let probe = ["health", "--status-addr-file", &addr_file];
    assert_exit(&sandbox.run(&probe), 1);
    for (endpoint, healthy) in [
        (server.endpoint.clone(), true),
        (format!("http://127.0.0.1:{}", free_port()), false),
    ] {
        sandbox.set_env("REMOTE_ENDPOINT", &endpoint);
        sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
        // A change to upload: an idle tick makes no request, so it cannot fail.
        sandbox.write("src", &[(&format!("for-{healthy}.txt"), "new")]);
        let agent = sync_src(
            &sandbox,
            &[
                "--schedule",
                "@every 1s",
                "--status-addr",
                "127.0.0.1:0",
                "--status-addr-file",
                &addr_file,
                "--unhealthy-after-failures",
                "1",
            ],
            "bkt/app",
        );
        let want = i32::from(!healthy);
        let reached = eventually(Duration::from_secs(15), || {
            sandbox.run(&probe).status.code() == Some(want)
        });
        sigterm(&agent);
        let (_, log) = wait_with_stderr(agent);
        assert!(reached, "health never exited {want}:\n{log}");
        let _ = std::fs::remove_file(&addr_file);
    }
}

/// The rclone processes that `parent` started (by their parent PID in /proc).
fn rclone_children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // `<pid> (<name>) <state> <parent pid> ...`; the name may hold spaces and ')'.
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let name = head.split_once(" (").map_or("", |(_, name)| name);
            name == "rclone" && rest.split_whitespace().nth(1) == Some(parent.to_string().as_str())
        })
        .collect()
}

/// Whether `pid` runs (a zombie has exited: only its parent has not reaped it yet).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Processes the test must not leave behind, whatever it asserts.
struct Reaped(Vec<u32>);

impl Drop for Reaped {
    fn drop(&mut self) {
        for pid in &self.0 {
            if running(*pid) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// A throttled upload whose rclone is transferring; returns the agent and its rclone.
fn agent_uploading_slowly(sandbox: &mut Sandbox, extra_args: &[&str]) -> (Child, Reaped) {
    // 4 MiB at 64 KiB/s: a minute of uploading, far longer than the test waits.
    sandbox.set_env("RCLONE_BWLIMIT", "64k");
    let big = "x".repeat(4 * 1024 * 1024);
    sandbox.write("src", &[("big.bin", big.as_str())]);
    let mut args = vec!["sync-to-remote", "-s", "src", "-d", "bkt/slow"];
    args.extend_from_slice(extra_args);
    let agent = spawn(sandbox, &args);
    let agent_pid = agent.id();
    let mut children = Vec::new();
    let uploading = eventually(Duration::from_secs(20), || {
        children = rclone_children(agent_pid)
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == b"sync"))
            })
            .collect();
        !children.is_empty()
    });
    let reaped = Reaped(children);
    assert!(uploading, "the agent never started rclone sync");
    (agent, reaped)
}

#[track_caller]
fn assert_gone_soon(rclone: &Reaped) {
    assert!(
        eventually(Duration::from_secs(5), || !rclone
            .0
            .iter()
            .copied()
            .any(running)),
        "rclone {:?} kept running after the agent died",
        rclone.0
    );
}

#[test]
fn rclone_dies_with_a_killed_agent() {
    let server = S3Server::start();
    server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    let (mut agent, rclone) = agent_uploading_slowly(&mut sandbox, &[]);

    agent.kill().expect("SIGKILL the agent");
    let _ = agent.wait();

    assert_gone_soon(&rclone);
}

#[test]
fn rclone_dies_with_an_agent_aborted_by_a_second_signal() {
    let server = S3Server::start();
    server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    let config = sandbox.path("rclone.conf");
    let config_arg = config.display().to_string();
    let (agent, rclone) = agent_uploading_slowly(&mut sandbox, &["-c", &config_arg]);
    assert!(config.exists(), "the agent writes its rclone config there");
    assert!(sandbox.pid_path().exists());

    sigterm(&agent);
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&agent);
    let (code, log) = wait_with_stderr(agent);
    assert_eq!(code, Some(130), "{log}");
    assert!(log.contains("aborted by a second signal"), "{log}");

    assert_gone_soon(&rclone);
    // An abort still cleans up: the config holds the remote's secrets.
    assert!(!config.exists(), "the rclone config was left behind");
    assert!(!sandbox.pid_path().exists(), "the PID file was left behind");
}
