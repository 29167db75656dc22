//! A kubelet stand-in: runs the injected containers of a stored Pod as local processes, with
//! the command, args, env, envFrom Secrets, volume mounts and user of the Pod spec. There is
//! no container engine here; what the agent does with the patched spec is what is tested.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::Api;
use vsc_test_support::{WorldExecutables, rclone_binary, running_as_root};
use vsc_types::contract::AGENT_BINARY_PATH;

use crate::fixtures::projected_tokens;
use crate::operator::workspace_binary;

/// Host directories standing for a Pod's volumes, by volume name.
pub type Volumes = BTreeMap<String, PathBuf>;

pub struct Kubelet {
    client: kube::Client,
    agent: PathBuf,
    rclone: PathBuf,
    scratch: tempfile::TempDir,
    /// Keeps `agent` and `rclone` runnable by the agent user (as root); removed with the last.
    _runnable: Option<WorldExecutables>,
}

/// A container process started from a Pod spec.
pub struct ContainerProcess {
    pub name: String,
    child: Child,
    log: PathBuf,
    prestop: Option<Command>,
}

impl ContainerProcess {
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub struct RunningPod {
    pub sidecars: Vec<ContainerProcess>,
}

impl Kubelet {
    pub fn new(client: kube::Client) -> Kubelet {
        let agent = workspace_binary("volume-syncing-controller");
        let (agent, rclone, runnable) = if running_as_root() {
            let runnable = WorldExecutables::new(&[agent, rclone_binary()]);
            let paths = runnable.paths().to_vec();
            (paths[0].clone(), paths[1].clone(), Some(runnable))
        } else {
            (agent, rclone_binary(), None)
        };
        Kubelet {
            client,
            agent,
            rclone,
            scratch: tempfile::tempdir().expect("kubelet dir"),
            _runnable: runnable,
        }
    }

    /// A fresh directory for a volume, as kubelet makes an emptyDir (root-owned, mode 0777).
    pub fn empty_dir(&self, name: &str) -> PathBuf {
        let dir = self
            .scratch
            .path()
            .join(format!("vol-{name}-{}", vsc_test_support::free_port()));
        fs::create_dir_all(&dir).expect("volume dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        dir
    }

    /// Runs the Pod's agent init containers in order (each must exit 0) and starts its agent
    /// sidecars: native ones (`restartPolicy: Always` init containers) and classic ones.
    /// `volumes` maps volumes the agent containers mount to a host directory; an emptyDir
    /// of the Pod that it does not name gets a fresh directory, as kubelet would make it.
    pub async fn start(&self, pod: &Pod, volumes: &Volumes) -> RunningPod {
        let spec = pod.spec.as_ref().expect("pod spec");
        let mut volumes = volumes.clone();
        for volume in spec.volumes.iter().flatten() {
            if volumes.contains_key(&volume.name) {
                continue;
            }
            if volume.empty_dir.is_some() {
                volumes.insert(volume.name.clone(), self.empty_dir(&volume.name));
            }
            if volume.projected.is_some() {
                let dir = self.empty_dir(&volume.name);
                for (path, token) in projected_tokens(&self.client, pod, &volume.name).await {
                    fs::write(dir.join(path), token).expect("projected token");
                }
                volumes.insert(volume.name.clone(), dir);
            }
        }
        let volumes = &volumes;
        let mut sidecars = Vec::new();
        for container in spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| is_agent(c))
        {
            let mut process = self.spawn(container, pod, volumes).await;
            if container.restart_policy.as_deref() == Some("Always") {
                sidecars.push(process);
                continue;
            }
            let status = wait_timeout(&mut process.child, Duration::from_secs(120)).await;
            assert_eq!(
                status,
                Some(0),
                "init container {} failed:\n{}",
                container.name,
                process.log_text()
            );
        }
        for container in spec.containers.iter().filter(|c| is_agent(c)) {
            sidecars.push(self.spawn(container, pod, volumes).await);
        }
        RunningPod { sidecars }
    }

    /// Stops the Pod as kubelet does: each sidecar's preStop hook runs first, then the
    /// process is sent SIGTERM. Returns each sidecar's exit code and log.
    pub async fn stop(&self, pod: RunningPod) -> Vec<(String, Option<i32>, String)> {
        let mut results = Vec::new();
        for mut sidecar in pod.sidecars {
            if let Some(mut prestop) = sidecar.prestop.take() {
                let output = prestop.output().expect("run the preStop hook");
                assert!(
                    output.status.success(),
                    "preStop of {} failed: {}",
                    sidecar.name,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let _ = Command::new("kill")
                .args(["-TERM", &sidecar.child.id().to_string()])
                .status();
            let code = wait_timeout(&mut sidecar.child, Duration::from_secs(120)).await;
            results.push((sidecar.name.clone(), code, sidecar.log_text()));
        }
        results
    }

    /// The Pod's node dies: each sidecar is killed (SIGKILL) with no final sync, no preStop.
    pub async fn kill(&self, pod: RunningPod) -> Vec<(String, String)> {
        let mut logs = Vec::new();
        for mut sidecar in pod.sidecars {
            let _ = sidecar.child.kill();
            let _ = wait_timeout(&mut sidecar.child, Duration::from_secs(10)).await;
            logs.push((sidecar.name.clone(), sidecar.log_text()));
        }
        logs
    }

    async fn spawn(&self, container: &Container, pod: &Pod, volumes: &Volumes) -> ContainerProcess {
        let mounts: Vec<(String, PathBuf)> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|mount| {
                let host = volumes.get(&mount.name).unwrap_or_else(|| {
                    panic!(
                        "no host directory for volume {} of {}",
                        mount.name, container.name
                    )
                });
                let host = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
                    Some(sub) => host.join(sub),
                    None => host.clone(),
                };
                (mount.mount_path.clone(), host)
            })
            .collect();
        let translate = |value: &str| translate_path(value, &mounts);
        let env = self.environment(container, pod, &translate).await;
        let user = container
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_user.zip(s.run_as_group));
        let build = |argv: &[String]| -> Command {
            let program = if argv.first().map(String::as_str) == Some(AGENT_BINARY_PATH) {
                self.agent.clone()
            } else {
                panic!("{} runs {:?}, not the agent", container.name, argv.first())
            };
            let mut command = match user {
                Some((uid, gid)) if running_as_root() => {
                    let mut setpriv = Command::new("setpriv");
                    setpriv
                        .arg(format!("--reuid={uid}"))
                        .arg(format!("--regid={gid}"))
                        .arg("--clear-groups")
                        .arg(program);
                    setpriv
                }
                _ => Command::new(program),
            };
            command
                .args(argv[1..].iter().map(|a| translate(a)))
                .env_clear()
                .envs(env.iter())
                .current_dir("/");
            command
        };
        let mut argv: Vec<String> = container.command.clone().unwrap_or_default();
        argv.extend(container.args.clone().unwrap_or_default());
        let log = self.scratch.path().join(format!(
            "{}-{}.log",
            container.name,
            vsc_test_support::free_port()
        ));
        let log_file = fs::File::create(&log).expect("log");
        let child = build(&argv)
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", container.name));
        let prestop = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.exec.as_ref())
            .and_then(|exec| exec.command.clone())
            .map(|hook| build(&hook));
        ContainerProcess {
            name: container.name.clone(),
            child,
            log,
            prestop,
        }
    }

    /// The container's env: plain values and the Pod's name and namespace (downward API),
    /// then every key of each envFrom Secret, with paths inside mounts translated to the
    /// host. The image's own settings (rclone's path, and TMPDIR for the /tmp volume) are
    /// added as the image would have them.
    async fn environment(
        &self,
        container: &Container,
        pod: &Pod,
        translate: &dyn Fn(&str) -> String,
    ) -> BTreeMap<String, String> {
        let namespace = pod
            .metadata
            .namespace
            .as_deref()
            .expect("stored Pods have a namespace");
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
        env.insert(
            "VSC_RCLONE_BINARY".to_string(),
            self.rclone.display().to_string(),
        );
        env.insert("TMPDIR".to_string(), translate("/tmp"));
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        for source in container.env_from.iter().flatten() {
            let reference = source
                .secret_ref
                .as_ref()
                .expect("only secretRef envFrom is injected");
            let secret = secrets
                .get(&reference.name)
                .await
                .unwrap_or_else(|e| panic!("Secret {}: {e}", reference.name));
            for (key, value) in secret.data.unwrap_or_default() {
                env.insert(key, String::from_utf8(value.0).expect("utf8 secret"));
            }
        }
        for variable in container.env.iter().flatten() {
            let value = variable
                .value
                .clone()
                .or_else(|| pod_field(pod, variable))
                .unwrap_or_else(|| {
                    panic!(
                        "env {} uses a valueFrom this harness does not resolve",
                        variable.name
                    )
                });
            env.insert(variable.name.clone(), translate(&value));
        }
        env
    }
}

/// The value of a downward API `fieldRef` to the Pod's name or namespace.
fn pod_field(pod: &Pod, variable: &k8s_openapi::api::core::v1::EnvVar) -> Option<String> {
    let field = variable.value_from.as_ref()?.field_ref.as_ref()?;
    match field.field_path.as_str() {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        _ => None,
    }
}

fn is_agent(container: &Container) -> bool {
    container
        .command
        .as_ref()
        .and_then(|c| c.first())
        .map(String::as_str)
        == Some(AGENT_BINARY_PATH)
}

/// `value` with a container path under one of `mounts` (the deepest) replaced by its host path.
fn translate_path(value: &str, mounts: &[(String, PathBuf)]) -> String {
    mounts
        .iter()
        .filter(|(mount, _)| {
            value == mount || value.starts_with(&format!("{}/", mount.trim_end_matches('/')))
        })
        .max_by_key(|(mount, _)| mount.len())
        .map_or_else(
            || value.to_string(),
            |(mount, host)| {
                let rest = value[mount.len()..].trim_start_matches('/');
                if rest.is_empty() {
                    host.display().to_string()
                } else {
                    host.join(rest).display().to_string()
                }
            },
        )
}

async fn wait_timeout(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Gives the app's files to the Pod's user, as if the app (running as that user) wrote them.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    if !running_as_root() {
        return;
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read_dir").flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_map_to_the_deepest_mount() {
        let mounts = vec![
            ("/var/www".to_string(), PathBuf::from("/h/www")),
            ("/var/www/data".to_string(), PathBuf::from("/h/data")),
        ];
        assert_eq!(translate_path("/var/www/data/x", &mounts), "/h/data/x");
        assert_eq!(translate_path("/var/www/index", &mounts), "/h/www/index");
        assert_eq!(translate_path("/var/wwwx", &mounts), "/var/wwwx");
        assert_eq!(translate_path("/var/www", &mounts), "/h/www");
    }
}
