//! A remote that accepts connections and never answers: every run fails within a bounded
//! time, says what it is waiting for while it waits, and a stop signal is not held up by it.

mod support;

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::*;

/// An S3 endpoint on 127.0.0.1 that accepts every connection and never sends a byte.
struct SilentEndpoint {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentEndpoint {
    fn start() -> SilentEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            // Bounded even if the test forgets to stop it.
            let until = Instant::now() + Duration::from_secs(300);
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentEndpoint {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A sandbox whose remote is `endpoint` (the keys of a real server that is not asked).
fn sandbox_for(server: &S3Server, endpoint: &SilentEndpoint) -> Sandbox {
    let mut sandbox = Sandbox::new(server);
    sandbox.set_env("REMOTE_ENDPOINT", &endpoint.url);
    sandbox
}

/// `command`'s output, or a failed test (the agent killed) once `limit` has passed.
#[track_caller]
fn output_within(command: &mut Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the agent");
    wait_within(child, started, limit)
}

#[track_caller]
fn wait_within(mut child: Child, started: Instant, limit: Duration) -> (Output, Duration) {
    // Read stderr while waiting, so a chatty agent never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        let _ = stderr.read_to_end(&mut log);
        log
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let log = reader.join().unwrap_or_default();
            panic!(
                "the agent still ran after {}s; its log:\n{}",
                limit.as_secs(),
                String::from_utf8_lossy(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = started.elapsed();
    let stderr = reader.join().unwrap_or_default();
    (
        Output {
            status,
            stdout: Vec::new(),
            stderr,
        },
        elapsed,
    )
}

#[test]
fn a_restore_from_an_endpoint_that_never_answers_fails_naming_it_and_says_what_it_waits_for() {
    let server = S3Server::start();
    let silent = SilentEndpoint::start();
    let sandbox = sandbox_for(&server, &silent);
    let (output, _) = output_within(
        &mut sandbox.agent(&["remote-to-local-sync", "-s", "bkt/app", "-d", "dst"]),
        Duration::from_secs(120),
    );
    assert_exit(&output, 4);
    assert_logged(
        &output,
        &[
            silent.url.as_str(),
            "timeout awaiting response headers",
            // Past 30 s the agent says what it is waiting for.
            "still waiting for rclone",
        ],
    );
    assert!(!sandbox.path("dst").exists(), "nothing was restored");
}

#[test]
fn the_users_own_rclone_timeouts_win_over_the_agents() {
    let server = S3Server::start();
    let silent = SilentEndpoint::start();
    let mut sandbox = sandbox_for(&server, &silent);
    sandbox.set_env("RCLONE_TIMEOUT", "1s");
    sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    let (output, elapsed) = output_within(
        &mut sandbox.agent(&["remote-to-local-sync", "-s", "bkt/app", "-d", "dst"]),
        Duration::from_secs(120),
    );
    assert_exit(&output, 4);
    // Two one-second tries; the agent's own 15 s timeout would take half a minute.
    assert!(
        elapsed < Duration::from_secs(15),
        "took {}s: RCLONE_TIMEOUT=1s was not used\n{}",
        elapsed.as_secs(),
        stderr(&output)
    );
}

#[test]
fn a_sidecar_stopped_while_its_endpoint_hangs_exits_after_its_final_sync_timeout() {
    let server = S3Server::start();
    let silent = SilentEndpoint::start();
    let sandbox = sandbox_for(&server, &silent);
    sandbox.write("src", &[("a.txt", "1")]);
    let started = Instant::now();
    let agent = sandbox
        .agent(&[
            "sync-to-remote",
            "--schedule",
            "@every 1h",
            "--final-sync-timeout",
            "5s",
            "-s",
            "src",
            "-d",
            "bkt/app",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the agent");
    // The sync at start is now waiting for the silent endpoint.
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (output, _) = wait_within(agent, started, Duration::from_secs(60));
    assert_exit(&output, 4);
    assert_logged(
        &output,
        &[
            "--final-sync-timeout",
            "stopped rclone before it finished",
            "in progress",
        ],
    );
}
