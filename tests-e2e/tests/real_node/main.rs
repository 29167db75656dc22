//! The user's journey on a real node: images built from this workspace, the chart installed
//! with `helm`, and real Pods run by a real kubelet (scripts/local-cluster.sh). These cover
//! what only a kubelet decides: Pod start and init order, native sidecars, probes, grace
//! periods, volume ownership, envFrom Secrets. The faster tests/pod_lifecycle.rs keeps the
//! kubelet stand-in for the many agent-argument cases a real node adds nothing to.
//!
//! One cluster for the whole binary (it takes ~40 s to start): the cases run in order, each
//! in a namespace of its own; the cluster is stopped at the end and the host checked.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};

mod plugin;
mod replicas;
mod restore;
mod storage_and_health;
use vsc_e2e::helm::{chart_dir, helm};
use vsc_e2e::real_node::{LocalCluster, NodeS3, build_images, missing_prerequisite, poll};

const RELEASE: &str = "volume-syncing-controller";
const OPERATOR_NAMESPACE: &str = "volume-syncing-controller";
/// The node has no DNS for Services, but kube-proxy routes ClusterIPs: the operator's
/// Service gets a fixed one, and the agents report to it (the chart's two values for that).
const NODE_VALUES: [&str; 4] = [
    "--set",
    "service.clusterIP=10.96.0.90",
    "--set",
    "reports.url=http://10.96.0.90:8080/report",
];
const APP_IMAGE: &str = "localhost/vsc/busybox:local";
/// The app container's `env`: its Pod's name, from the downward API.
const APP_POD_NAME_ENV: &str =
    "env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]";

struct World {
    cluster: LocalCluster,
    s3: NodeS3,
}

static WORLD: OnceLock<Result<std::sync::Mutex<World>, String>> = OnceLock::new();

fn world() -> Result<std::sync::MutexGuard<'static, World>, Failed> {
    let world = WORLD.get_or_init(|| start_world().map(std::sync::Mutex::new));
    match world {
        Ok(world) => Ok(world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)),
        Err(e) => Err(e.clone().into()),
    }
}

fn start_world() -> Result<World, String> {
    if let Some(missing) = missing_prerequisite() {
        return Err(missing);
    }
    let images = build_images()?;
    let cluster = LocalCluster::up(&images.archives)?;
    let s3 = NodeS3::start(&cluster.node_ip)?;
    Ok(World { cluster, s3 })
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

fn main() {
    let mut arguments = Arguments::from_args();
    // One cluster, cases in order: each builds on the chart the first one installed.
    arguments.test_threads = Some(1);
    let trials = vec![
        Trial::test(
            "the_chart_installs_and_its_operator_runs_as_a_pod",
            chart_installs,
        ),
        Trial::test(
            "the_seed_example_restores_syncs_and_keeps_what_the_app_wrote_at_sigterm",
            seed_example_encrypted,
        ),
        Trial::test(
            "a_deployment_restores_syncs_on_schedule_and_a_replacement_pod_restores_it_all",
            plain_deployment,
        ),
        Trial::test(
            "a_statefulset_on_a_root_owned_volume_restarts_and_keeps_every_file",
            || {
                then_remove_namespace(
                    storage_and_health::statefulset_on_root_owned_volume,
                    "stateful",
                )
            },
        ),
        Trial::test(
            "what_the_app_wrote_while_s3_was_down_survives_the_statefulsets_restart",
            || {
                then_remove_namespace(
                    storage_and_health::what_was_written_while_s3_was_down_survives_the_restart,
                    "stateful-outage",
                )
            },
        ),
        Trial::test(
            "the_sidecar_is_restarted_while_s3_is_down_and_healthy_again_after",
            || then_remove_namespace(storage_and_health::health_follows_the_remote, "health"),
        ),
        Trial::test(
            "two_host_network_pods_with_health_checks_share_the_node",
            || {
                then_remove_namespace(
                    storage_and_health::host_network_pods_share_the_node,
                    "host-network",
                )
            },
        ),
        Trial::test(
            "a_sandbox_restart_runs_the_restore_again_and_the_pod_starts",
            || {
                then_remove_namespace(
                    storage_and_health::sandbox_restart_reruns_the_restore,
                    "sandbox",
                )
            },
        ),
        Trial::test(
            "an_app_writing_files_the_agent_cannot_read_is_refused_before_the_remote_is_touched",
            || {
                then_remove_namespace(
                    storage_and_health::unreadable_app_files_refuse_the_upload,
                    "app-as-root",
                )
            },
        ),
        Trial::test(
            "the_seed_manual_sync_command_works_through_kubectl_exec",
            manual_sync,
        ),
        Trial::test(
            "kubectl_pfss_verify_reports_each_pod_in_sync_or_differing",
            plugin::verify_reports_each_pod,
        ),
        Trial::test(
            "kubectl_pfss_restore_as_of_rolls_out_pods_that_restore_and_upload_that_time",
            || then_remove_namespace(restore::rollout_restores_and_uploads_that_time, "restore"),
        ),
        Trial::test(
            "three_replicas_upload_one_at_a_time_through_a_kill_a_cut_and_scaling",
            || then_remove_namespace(replicas::one_writer_among_three_replicas, "replicas"),
        ),
        Trial::test(
            "the_operator_down_denies_labelled_pods_only_and_recovers",
            operator_down,
        ),
        Trial::test(
            "helm_upgrade_and_uninstall_keep_crds_and_encryption_secrets",
            upgrade_and_uninstall,
        ),
    ];
    let conclusion = libtest_mimic::run(&arguments, trials);
    let down = stop_world();
    if let Err(e) = &down {
        eprintln!("the local cluster did not leave the host as it found it:\n{e}");
    }
    if conclusion.has_failed() || down.is_err() {
        std::process::exit(101);
    }
}

/// Runs a case, then deletes its namespace: its sidecars stop syncing every few seconds
/// (a dozen of them keep the one S3 server of the node busy and slow the later cases).
fn then_remove_namespace(case: fn() -> Result<(), Failed>, namespace: &str) -> Result<(), Failed> {
    let result = case();
    if let Ok(world) = world() {
        let _ = world
            .cluster
            .kubectl(&["delete", "namespace", namespace, "--wait=false"], None);
    }
    result
}

/// Stops the cluster after killing its kubelet and containerd with SIGKILL, as a crash
/// would: `down` must still stop everything and restore the host.
fn stop_world() -> Result<(), String> {
    let Some(Ok(world)) = WORLD.get() else {
        return Ok(());
    };
    let mut world = world
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for name in ["kubelet", "containerd"] {
        let pid_file = world.cluster.state.join(format!("pids/{name}.pid"));
        if let Ok(pid) = fs::read_to_string(&pid_file) {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
        }
    }
    world.s3.pause();
    let down = world.cluster.down();
    // The world is a static: its temp dirs are never dropped.
    let _ = fs::remove_dir_all(world.s3.root.path());
    down
}

/// `helm install|upgrade` of the chart as the release, with `extra` arguments, waiting for
/// it; a failure names the operator namespace's state.
fn helm_release(cluster: &LocalCluster, verb: &str, extra: &[&str]) -> Result<(), Failed> {
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let chart = chart_dir().display().to_string();
    let release = [verb, RELEASE, &chart, "--kubeconfig", &kubeconfig];
    let namespace = ["--namespace", OPERATOR_NAMESPACE];
    let wait = ["--wait", "--timeout", "180s"];
    match helm(&[&release[..], &namespace, extra, &wait].concat()) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("helm {verb}: {e}\n{}", cluster.describe(OPERATOR_NAMESPACE)).into()),
    }
}

// ---- 1. helm install ----------------------------------------------------------------------

fn chart_installs() -> Result<(), Failed> {
    let world = world()?;
    let cluster = &world.cluster;
    let install = [
        "--create-namespace",
        NODE_VALUES[0],
        NODE_VALUES[1],
        NODE_VALUES[2],
        NODE_VALUES[3],
    ];
    helm_release(cluster, "install", &install)?;
    wait_for_webhook_ca(cluster)?;
    let listed = cluster.kubectl(&["get", "pfss", "--all-namespaces"], None)?;
    check(
        listed.trim().is_empty() || listed.contains("NAMESPACE"),
        || format!("kubectl get pfss: {listed}"),
    )
}

/// The self-managed certificate's CA reaches the webhook configuration.
fn wait_for_webhook_ca(cluster: &LocalCluster) -> Result<(), Failed> {
    poll(Duration::from_secs(60), "the webhook's caBundle", || {
        let configs = cluster.get_json(&["mutatingwebhookconfigurations"])?;
        let bundle = configs["items"].as_array()?.iter().find_map(|c| {
            c["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .map(str::to_string)
        })?;
        (!bundle.is_empty()).then_some(())
    })
    .map_err(Failed::from)
}

// ---- 2. the seed example, and a plain Deployment --------------------------------------------

/// A namespace the webhook serves, with the Secret the seed example names.
fn app_namespace(cluster: &LocalCluster, namespace: &str) -> Result<(), Failed> {
    cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"apiVersion: v1
kind: Namespace
metadata:
  name: {namespace}
  labels: {{riotkit.org/volume-syncing-controller: "true"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: cloud-press-secret-envs, namespace: {namespace}}}
stringData:
  REMOTE_ACCESS_KEY_ID: {access}
  REMOTE_SECRET_ACCESS_KEY: {secret}
"#,
            access = vsc_test_support::ACCESS_KEY,
            secret = vsc_test_support::SECRET_KEY,
        )),
    )?;
    Ok(())
}

/// The seed README's PodFilesystemSync, as written there.
fn seed_pfss() -> Result<String, Failed> {
    let readme = fs::read_to_string(vsc_e2e::helm::repo_root().join("README.md"))
        .map_err(|e| e.to_string())?;
    let start = readme
        .find("kind: PodFilesystemSync\nmetadata:\n    name: cloud-press")
        .ok_or("README.md has no cloud-press PodFilesystemSync example")?;
    let fence = readme[..start]
        .rfind("```yaml\n")
        .ok_or("the example is not in a yaml block")?;
    let block = &readme[fence + "```yaml\n".len()..];
    Ok(block[..block.find("```").ok_or("unterminated yaml block")?].to_string())
}

/// The app of the tests: shows what its volume held at its first instruction, writes a file
/// while it runs, and another one 3 s into its SIGTERM handler (an app flushing on stop).
/// Files are named after the Pod ([`APP_POD_NAME_ENV`]: with hostNetwork the hostname is the
/// node's).
fn app_script(dir: &str) -> String {
    format!(
        "echo FIRST-LISTING; ls -lnR {dir}; echo END-LISTING; \
         trap 'sleep 3; echo flushed-at-stop > {dir}/written-at-sigterm-$POD_NAME.txt; exit 0' TERM; \
         echo running > {dir}/written-while-running-$POD_NAME.txt; \
         while true; do sleep 1 & wait $!; done"
    )
}

/// How the app's Pod is networked.
enum Network {
    /// Its own network namespace on the CNI bridge.
    Pod,
    /// The node's network, with a `hostAliases` entry naming the S3 server on it.
    HostWithS3At(&'static str),
}

impl Network {
    fn spec_lines(&self) -> String {
        match self {
            Network::Pod => "      hostNetwork: false\n".to_string(),
            Network::HostWithS3At(name) => format!(
                "      hostNetwork: true\n      hostAliases: [{{ip: 127.0.0.1, hostnames: [{name}]}}]\n"
            ),
        }
    }
}

fn deployment(
    namespace: &str,
    name: &str,
    dir: &str,
    network: Network,
    init_container: Option<&str>,
) -> String {
    let containers = app_containers(dir);
    // The seed example places the restore before an init container of the app's own: that
    // one shows what it found, so its log proves the order.
    let init = init_container.map_or(String::new(), |init| {
        format!(
            r"      initContainers:
      - name: {init}
        image: {APP_IMAGE}
        imagePullPolicy: Never
        command: [ls, -1R, {dir}]
        volumeMounts: [{{name: data, mountPath: {dir}}}]
"
        )
    });
    let network = network.spec_lines();
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}, my-pod-label: test, riotkit.org/volume-syncing-controller: "true"}}
      # The README's example renders its remotePath from this annotation.
      annotations: {{subdir: {name}}}
    spec:
{network}      terminationGracePeriodSeconds: 60
      securityContext: {{runAsUser: 1001, runAsGroup: 1001}}
{init}{containers}      volumes: [{{name: data, emptyDir: {{}}}}]
"#
    )
}

/// The `containers:` of a Pod template (6 spaces in) running [`app_script`] on `dir`.
fn app_containers(dir: &str) -> String {
    // A YAML single-quoted scalar: a quote inside is written twice.
    let script = app_script(dir).replace('\'', "''");
    format!(
        r"      containers:
      - name: app
        image: {APP_IMAGE}
        imagePullPolicy: Never
        command: [sh, -c, '{script}']
        {APP_POD_NAME_ENV}
        volumeMounts: [{{name: data, mountPath: {dir}}}]
"
    )
}

/// The one running Pod of `app` (not terminating), once Ready.
fn ready_pod(
    cluster: &LocalCluster,
    namespace: &str,
    app: &str,
    not: Option<&str>,
) -> Result<String, Failed> {
    poll(
        Duration::from_secs(180),
        &format!("a Ready Pod of {app}"),
        || {
            let pods = cluster.get_json(&["pods", "-n", namespace, "-l", &format!("app={app}")])?;
            pods["items"].as_array()?.iter().find_map(|pod| {
                let name = pod["metadata"]["name"].as_str()?;
                let ready = pod["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                (ready && pod["metadata"]["deletionTimestamp"].is_null() && Some(name) != not)
                    .then(|| name.to_string())
            })
        },
    )
    .map_err(|e| format!("{e}\n{}", cluster.describe(namespace)).into())
}

fn logs(cluster: &LocalCluster, namespace: &str, pod: &str, container: &str) -> String {
    cluster
        .kubectl(&["logs", "-n", namespace, pod, "-c", container], None)
        .unwrap_or_else(|e| e)
}

/// Every file under `dir` (relative name -> contents).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let (Ok(relative), Ok(contents)) = (path.strip_prefix(dir), fs::read(&path)) {
                found.push((relative.display().to_string(), contents));
            }
        }
    }
    found.sort();
    found
}

fn remote_has(s3: &NodeS3, bucket_path: &str, name_part: &str) -> bool {
    files_under(&s3.root.path().join(bucket_path))
        .iter()
        .any(|(name, _)| name.contains(name_part))
}

/// Stops the Deployment's Pod (the kubelet sends SIGTERM as for `kubectl delete pod`) and
/// waits until it is gone, then starts a new one. Not `kubectl delete pod` itself: a
/// Deployment starts the replacement at once, and it would restore before the old Pod's
/// final sync (one writer per remote path is the replica feature's job).
fn stop_and_start_again(cluster: &LocalCluster, namespace: &str, app: &str) -> Result<(), Failed> {
    cluster.kubectl(
        &["scale", "deployment", "-n", namespace, app, "--replicas=0"],
        None,
    )?;
    poll(
        Duration::from_secs(120),
        &format!("the Pods of {app} to be gone"),
        || {
            let pods = cluster.get_json(&["pods", "-n", namespace, "-l", &format!("app={app}")])?;
            pods["items"].as_array()?.is_empty().then_some(())
        },
    )?;
    cluster.kubectl(
        &["scale", "deployment", "-n", namespace, app, "--replicas=1"],
        None,
    )?;
    Ok(())
}

fn seed_example_encrypted() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let namespace = "seed-example";
    let dir = "/var/www/riotkit/wp-content";
    app_namespace(cluster, namespace)?;
    s3.bucket("example-org-bucket");
    cluster.kubectl(&["apply", "-n", namespace, "-f", "-"], Some(&seed_pfss()?))?;
    // The README's endpoint is http://minio.storage:9000: a name on the node's network here
    // (the kubelet writes hostAliases into /etc/hosts); hostNetwork is a case of its own.
    cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&deployment(
            namespace,
            "press",
            dir,
            Network::HostWithS3At("minio.storage"),
            Some("some-container-name"),
        )),
    )?;
    let first = ready_pod(cluster, namespace, "press", None)?;
    stop_and_start_again(cluster, namespace, "press")?;
    let stored = files_under(&s3.root.path().join("example-org-bucket"));
    check(stored.len() >= 2, || {
        format!("the remote holds {stored:?} after the Pod stopped")
    })?;
    check(
        stored.iter().all(|(name, contents)| {
            !name.contains("written")
                && !String::from_utf8_lossy(contents).contains("flushed-at-stop")
        }),
        || format!("plaintext names or contents at the remote: {stored:?}"),
    )?;
    let second = ready_pod(cluster, namespace, "press", Some(&first))?;
    let listing = logs(cluster, namespace, &second, "some-container-name");
    check(
        listing.contains(&format!("written-at-sigterm-{first}.txt"))
            && listing.contains(&format!("written-while-running-{first}.txt")),
        || {
            format!(
                "the replacement Pod's app did not see the first Pod's files at its start:\n{listing}"
            )
        },
    )
}

fn plain_deployment() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let namespace = "plain-deployment";
    let dir = "/data";
    app_namespace(cluster, namespace)?;
    let seeded = s3.bucket("plain-bucket").join("app");
    fs::create_dir_all(&seeded).map_err(|e| e.to_string())?;
    fs::write(seeded.join("seeded-before-start.txt"), "from the remote")
        .map_err(|e| e.to_string())?;
    cluster.kubectl(
        &["apply", "-n", namespace, "-f", "-"],
        Some(&format!(
            r#"apiVersion: riotkit.org/v1alpha1
kind: PodFilesystemSync
metadata: {{name: plain}}
spec:
  podSelector: {{matchLabels: {{app: plain}}}}
  localPath: {dir}
  remotePath: /plain-bucket/app
  syncOptions:
    schedule: "@every 3s"
    permissions: {{uid: "1001", gid: "1001"}}
  env:
    REMOTE_TYPE: s3
    REMOTE_PROVIDER: Minio
    REMOTE_ENDPOINT: {endpoint}
  envFromSecrets: [{{name: cloud-press-secret-envs}}]
"#,
            endpoint = s3.pod_endpoint
        )),
    )?;
    cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&deployment(namespace, "plain", dir, Network::Pod, None)),
    )?;
    let first = ready_pod(cluster, namespace, "plain", None)?;
    let listing = logs(cluster, namespace, &first, "app");
    check(
        listing.contains("seeded-before-start.txt") && listing.contains(" 1001 "),
        || {
            format!(
                "the app's first instruction did not see the remote's file owned by 1001:\n{listing}"
            )
        },
    )?;
    poll(
        Duration::from_secs(60),
        "the running app's file at the remote (schedule @every 3s)",
        || {
            remote_has(
                s3,
                "plain-bucket/app",
                &format!("written-while-running-{first}"),
            )
            .then_some(())
        },
    )?;
    reported_in_status(cluster, namespace, "plain", &first)?;
    stop_and_start_again(cluster, namespace, "plain")?;
    check(
        remote_has(
            s3,
            "plain-bucket/app",
            &format!("written-at-sigterm-{first}"),
        ),
        || {
            format!(
                "what the app wrote in its SIGTERM handler never reached the remote; sidecar log:\n{}",
                logs(cluster, namespace, &first, "volume-syncing-sidecar")
            )
        },
    )?;
    let events = cluster.kubectl(&["get", "events", "-n", namespace], None)?;
    check(!events.contains("FailedPreStopHook"), || {
        format!("a preStop hook failed while the Pod stopped:\n{events}")
    })?;
    let second = ready_pod(cluster, namespace, "plain", Some(&first))?;
    let listing = logs(cluster, namespace, &second, "app");
    check(
        listing.contains(&format!("written-at-sigterm-{first}.txt"))
            && listing
                .lines()
                .filter(|l| l.contains(".txt"))
                .all(|l| l.contains(" 1001 ") && l.contains(" 1001 ")),
        || format!("the replacement Pod did not restore everything owned by 1001:1001:\n{listing}"),
    )
}

/// The Pod's sidecar reported its syncs with its own token: the resource lists the Pod
/// with a success, `Synced` is True, and `kubectl get pfss` shows it.
fn reported_in_status(
    cluster: &LocalCluster,
    namespace: &str,
    name: &str,
    pod: &str,
) -> Result<(), Failed> {
    poll(
        Duration::from_secs(60),
        "the sidecar's reports in the PodFilesystemSync's status",
        || {
            let pfss = cluster.get_json(&["pfss", "-n", namespace, name])?;
            let status = &pfss["status"];
            let entry = status["pods"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == pod)?;
            let synced = status["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Synced" && c["status"] == "True");
            (entry["lastSuccessTime"].is_string() && synced).then_some(())
        },
    )
    .map_err(|e| {
        let sidecar = logs(cluster, namespace, pod, "volume-syncing-sidecar");
        let operator = cluster
            .kubectl(
                &[
                    "logs",
                    "-n",
                    OPERATOR_NAMESPACE,
                    "deployment/volume-syncing-controller",
                ],
                None,
            )
            .unwrap_or_default();
        format!("{e}\nsidecar:\n{sidecar}\noperator:\n{operator}")
    })?;
    let table = cluster.kubectl(&["get", "pfss", "-n", namespace, name], None)?;
    check(table.contains("SYNCED") && table.contains(" True "), || {
        format!("kubectl get pfss does not show SYNCED True:\n{table}")
    })
}

// ---- 5. the seed's manual sync --------------------------------------------------------------

fn manual_sync() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let namespace = "plain-deployment";
    let pod = ready_pod(cluster, namespace, "plain", None)?;
    cluster.kubectl(
        &[
            "exec",
            "-n",
            namespace,
            &pod,
            "-c",
            "app",
            "--",
            "sh",
            "-c",
            "echo manual > /data/manual-sync.txt",
        ],
        None,
    )?;
    // The seed README's command, as written there (the path is the volume's).
    let seed_command = [
        "exec",
        "-n",
        namespace,
        &pod,
        "-c",
        "volume-syncing-sidecar",
        "--",
        "/usr/bin/volume-syncing-controller",
        "sync-to-remote",
        "-s",
        "/data",
        "-c",
        "/etc/volume-syncing-controller/rclone.conf",
    ];
    cluster
        .kubectl(&seed_command, None)
        .map_err(|e| format!("the seed's manual sync failed: {e}"))?;
    check(
        remote_has(s3, "plain-bucket/app", "manual-sync.txt"),
        || "the manual sync exited 0 but the file is not at the remote".into(),
    )
}

/// Scales the chart's operator Deployment to `replicas`.
fn scale_operator(cluster: &LocalCluster, replicas: u32) -> Result<(), Failed> {
    let replicas = format!("--replicas={replicas}");
    let scale = [
        "scale",
        "deployment",
        "-n",
        OPERATOR_NAMESPACE,
        RELEASE,
        &replicas,
    ];
    cluster.kubectl(&scale, None)?;
    Ok(())
}

// ---- 6. the operator down -------------------------------------------------------------------

fn operator_down() -> Result<(), Failed> {
    let world = world()?;
    let cluster = &world.cluster;
    scale_operator(cluster, 0)?;
    poll(
        Duration::from_secs(60),
        "the operator Pods to be gone",
        || {
            let pods = cluster.get_json(&["pods", "-n", OPERATOR_NAMESPACE])?;
            pods["items"].as_array()?.is_empty().then_some(())
        },
    )?;
    let namespace = "plain-deployment";
    let labelled = cluster.kubectl(&["apply", "-f", "-"], Some(&labelled_pod(namespace)));
    let unlabelled = cluster.kubectl(
        &[
            "run",
            "unlabelled",
            "-n",
            namespace,
            "--image",
            APP_IMAGE,
            "--image-pull-policy=Never",
            "--",
            "sleep",
            "3600",
        ],
        None,
    );
    scale_operator(cluster, 1)?;
    check(labelled.is_err(), || {
        format!("a labelled Pod was admitted without the webhook: {labelled:?}")
    })?;
    check(unlabelled.is_ok(), || {
        format!("an unlabelled Pod was refused: {unlabelled:?}")
    })?;
    cluster.kubectl(
        &[
            "wait",
            "-n",
            OPERATOR_NAMESPACE,
            "--for=condition=Available",
            "deployment",
            RELEASE,
            "--timeout=120s",
        ],
        None,
    )?;
    let mut last_refusal = String::new();
    poll(
        Duration::from_secs(60),
        "a labelled Pod admitted again",
        || {
            cluster
                .kubectl(&["apply", "-f", "-"], Some(&labelled_pod(namespace)))
                .map_err(|e| last_refusal = e)
                .ok()
        },
    )
    .map_err(|e| format!("{e}; the last refusal: {last_refusal}"))?;
    let pod = cluster
        .get_json(&["pod", "-n", namespace, "labelled"])
        .ok_or("the admitted Pod is gone")?;
    let injected = pod["spec"]["initContainers"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["name"] == "init-volume-restore"));
    cluster.kubectl(
        &[
            "delete",
            "pod",
            "-n",
            namespace,
            "labelled",
            "unlabelled",
            "--wait=false",
        ],
        None,
    )?;
    check(injected, || {
        format!("the Pod admitted after recovery was not injected: {pod}")
    })
}

/// A Pod the `plain` PodFilesystemSync selects, with the volume its localPath needs.
fn labelled_pod(namespace: &str) -> String {
    sleeping_pod(namespace, "labelled", "plain", "")
}

/// A labelled Pod of `app` whose app only sleeps (it writes nothing), with /data;
/// `spec_lines` are more fields of its spec (2 spaces in).
fn sleeping_pod(namespace: &str, name: &str, app: &str, spec_lines: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{app: {app}, riotkit.org/volume-syncing-controller: "true"}}
spec:
{spec_lines}  securityContext: {{runAsUser: 1001, runAsGroup: 1001}}
  containers:
  - name: app
    image: {APP_IMAGE}
    imagePullPolicy: Never
    command: [sleep, "3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
"#
    )
}

// ---- 7. upgrade and uninstall ---------------------------------------------------------------

fn upgrade_and_uninstall() -> Result<(), Failed> {
    let world = world()?;
    let cluster = &world.cluster;
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let upgrade = ["--reuse-values", "--set", "agent.logFormat=json"];
    helm_release(cluster, "upgrade", &upgrade)?;
    let args = cluster.kubectl_ok(
        &[
            "get",
            "deployment",
            "-n",
            OPERATOR_NAMESPACE,
            RELEASE,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ],
        None,
    );
    check(args.contains("json"), || {
        format!("helm upgrade did not reach the operator's arguments: {args}")
    })?;
    helm(&[
        "uninstall",
        RELEASE,
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        OPERATOR_NAMESPACE,
        "--wait",
    ])?;
    let crd = cluster.kubectl(&["get", "crd", "podfilesystemsyncs.riotkit.org"], None);
    check(crd.is_ok(), || {
        format!("helm uninstall removed the CRD: {crd:?}")
    })?;
    let secret = cluster.kubectl(
        &[
            "get",
            "secret",
            "-n",
            "seed-example",
            "cloud-press-remote-sync",
        ],
        None,
    );
    check(secret.is_ok(), || {
        format!("helm uninstall removed the encryption Secret: {secret:?}")
    })?;
    let hooks = cluster.kubectl_ok(
        &["get", "mutatingwebhookconfigurations", "-o", "name"],
        None,
    );
    check(!hooks.contains(RELEASE), || {
        format!("the webhook outlived the release: {hooks}")
    })
}
