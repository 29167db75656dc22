//! Journey steps 3 and 4: a StatefulSet on a root-owned persistent volume, and the
//! sidecar's health while the S3 server is down and after it is back.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use libtest_mimic::Failed;
use serde_json::Value;
use vsc_e2e::real_node::{LocalCluster, pod_processes, poll};

use super::{
    Network, World, app_containers, app_namespace, check, deployment, files_under, logs, ready_pod,
    sleeping_pod, world,
};

const SIDECAR: &str = "volume-syncing-sidecar";

/// The status of container `name` of a Pod, native sidecar (an init container) or not.
fn container_status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|list| pod["status"][list].as_array())
        .flatten()
        .find(|status| status["name"] == name)
}

fn restarts(pod: &Value, name: &str) -> i64 {
    container_status(pod, name).map_or(0, |s| s["restartCount"].as_i64().unwrap_or(0))
}

fn pod_json(cluster: &LocalCluster, namespace: &str, name: &str) -> Result<Value, Failed> {
    cluster
        .get_json(&["pod", "-n", namespace, name])
        .ok_or_else(|| format!("pod {namespace}/{name} is gone").into())
}

pub(super) fn ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn wait_ready(cluster: &LocalCluster, namespace: &str, name: &str) -> Result<Value, Failed> {
    poll(
        Duration::from_secs(180),
        &format!("pod {namespace}/{name} Ready"),
        || {
            let pod = cluster.get_json(&["pod", "-n", namespace, name])?;
            ready(&pod).then_some(pod)
        },
    )
    .map_err(|e| format!("{e}\n{}", cluster.describe(namespace)).into())
}

// ---- 3. a StatefulSet on a root-owned persistent volume -------------------------------------

/// A hostPath PersistentVolume whose root is owned by root and writable by all, as a
/// local-volume provisioner makes it, and a StatefulSet that claims it.
fn statefulset(namespace: &str, volume_root: &str, dir: &str) -> String {
    let containers = app_containers(dir);
    format!(
        r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: vsc-{namespace}-pv}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: vsc-manual
  persistentVolumeReclaimPolicy: Retain
  hostPath: {{path: {volume_root}, type: Directory}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: stateful, namespace: {namespace}}}
spec:
  serviceName: stateful
  replicas: 1
  selector: {{matchLabels: {{app: stateful}}}}
  template:
    metadata:
      labels: {{app: stateful, riotkit.org/volume-syncing-controller: "true"}}
    spec:
      terminationGracePeriodSeconds: 60
      securityContext: {{runAsUser: 1001, runAsGroup: 1001}}
{containers}  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: vsc-manual
      resources: {{requests: {{storage: 1Gi}}}}
"#
    )
}

/// A PodFilesystemSync syncing every 2 s; `extra` ends its `env` map and may open more of
/// `spec`.
pub(super) fn pfss(name: &str, dir: &str, remote: &str, endpoint: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: riotkit.org/v1alpha1
kind: PodFilesystemSync
metadata: {{name: {name}}}
spec:
  podSelector: {{matchLabels: {{app: {name}}}}}
  localPath: {dir}
  remotePath: {remote}
  envFromSecrets: [{{name: cloud-press-secret-envs}}]
  syncOptions:
    schedule: "@every 2s"
    permissions: {{uid: "1001", gid: "1001"}}
  env:
    REMOTE_TYPE: s3
    REMOTE_PROVIDER: Minio
    REMOTE_ENDPOINT: {endpoint}
{extra}"#
    )
}

pub fn statefulset_on_root_owned_volume() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let namespace = "stateful";
    let volume_root = stateful_volume(&world, namespace, "stateful-bucket")?;
    let pod = "stateful-0";
    let first_uid = pod_json(cluster, namespace, pod)?["metadata"]["uid"].clone();
    // A StatefulSet starts the replacement only after the old Pod is gone.
    cluster.kubectl(&["delete", "pod", "-n", namespace, pod], None)?;
    let second = replacement(cluster, namespace, pod, &first_uid)?;
    check(restarts(&second, "init-volume-restore") == 0, || {
        format!(
            "the restore over the root-owned volume was retried:\n{}",
            logs(cluster, namespace, pod, "init-volume-restore")
        )
    })?;
    let local = files_under(&volume_root);
    let remote = files_under(&s3.root.path().join("stateful-bucket/app"));
    let names = |files: &[(String, Vec<u8>)]| -> Vec<String> {
        files
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| name.starts_with("written-"))
            .collect()
    };
    check(
        names(&local)
            .iter()
            .any(|n| n.starts_with("written-at-sigterm"))
            && names(&local) == names(&remote),
        || {
            format!(
                "after the restart the volume holds {:?}, the remote {:?}",
                names(&local),
                names(&remote)
            )
        },
    )
}

/// The Pod named `pod` once it is another one than `first_uid` and Ready (a StatefulSet
/// starts the replacement only after the old Pod is gone).
fn replacement(
    cluster: &LocalCluster,
    namespace: &str,
    pod: &str,
    first_uid: &Value,
) -> Result<Value, Failed> {
    poll(
        Duration::from_secs(180),
        &format!("the replacement {pod}"),
        || {
            let json = cluster.get_json(&["pod", "-n", namespace, pod])?;
            (json["metadata"]["uid"] != *first_uid && ready(&json)).then_some(json)
        },
    )
    .map_err(|e| format!("{e}\n{}", cluster.describe(namespace)).into())
}

/// The StatefulSet's volume on the node, its PodFilesystemSync applied; the first Pod Ready
/// and its running file at the remote.
fn stateful_volume(world: &World, namespace: &str, bucket: &str) -> Result<PathBuf, Failed> {
    let (cluster, s3) = (&world.cluster, &world.s3);
    let dir = "/var/lib/app";
    app_namespace(cluster, namespace)?;
    s3.bucket(bucket);
    // Under the S3 server's temp root, so it goes when the run ends; root-owned, mode 0777.
    let volume_root = s3.root.path().join(format!("{namespace}-volume"));
    fs::create_dir_all(&volume_root).map_err(|e| e.to_string())?;
    fs::set_permissions(&volume_root, fs::Permissions::from_mode(0o777))
        .map_err(|e| e.to_string())?;
    let remote = format!("/{bucket}/app");
    let manifests = [
        pfss("stateful", dir, &remote, &s3.pod_endpoint, ""),
        statefulset(namespace, &volume_root.display().to_string(), dir),
    ];
    for manifest in manifests {
        cluster.kubectl(&["apply", "-n", namespace, "-f", "-"], Some(&manifest))?;
    }
    wait_ready(cluster, namespace, "stateful-0")?;
    poll(
        Duration::from_secs(60),
        "the running app's file at the remote",
        || {
            files_under(&s3.root.path().join(format!("{bucket}/app")))
                .iter()
                .any(|(name, _)| name.starts_with("written-while-running"))
                .then_some(())
        },
    )?;
    Ok(volume_root)
}

/// S3 is down when the Pod stops: the final sync fails, and what the app wrote since the
/// last upload is only on the volume. The replacement's restore finds those local changes
/// and a remote unchanged since the last upload: it keeps them (a mirror of the older remote
/// would delete them), and its sidecar uploads them once S3 is back.
pub fn what_was_written_while_s3_was_down_survives_the_restart() -> Result<(), Failed> {
    let mut world = world()?;
    let namespace = "stateful-outage";
    let bucket = "outage-bucket";
    let volume_root = stateful_volume(&world, namespace, bucket)?;
    let pod = "stateful-0";
    let first_uid = pod_json(&world.cluster, namespace, pod)?["metadata"]["uid"].clone();
    world.s3.pause();
    let script = "echo only-on-the-volume > /var/lib/app/written-during-the-outage.txt";
    let stopped = world
        .cluster
        .kubectl(
            &[
                "exec", "-n", namespace, pod, "-c", "app", "--", "sh", "-c", script,
            ],
            None,
        )
        // `kubectl delete` returns once the Pod is gone: its final sync has failed by then.
        .and_then(|_| {
            world
                .cluster
                .kubectl(&["delete", "pod", "-n", namespace, pod], None)
        });
    world.s3.resume()?;
    stopped?;
    let cluster = &world.cluster;
    let second = replacement(cluster, namespace, pod, &first_uid)?;
    let restore_log = logs(cluster, namespace, pod, "init-volume-restore");
    let kept = files_under(&volume_root)
        .iter()
        .any(|(name, _)| name == "written-during-the-outage.txt");
    check(
        kept && restore_log.contains("the local files are kept"),
        || {
            format!(
                "the restore did not keep the file written while S3 was down (restarts {}):\n{restore_log}",
                restarts(&second, "init-volume-restore")
            )
        },
    )?;
    let remote = world.s3.root.path().join(format!("{bucket}/app"));
    poll(
        Duration::from_secs(60),
        "the file written during the outage at the remote",
        || {
            files_under(&remote)
                .iter()
                .any(|(name, _)| name == "written-during-the-outage.txt")
                .then_some(())
        },
    )
    .map_err(|e| {
        format!(
            "{e}\nthe sidecar's log:\n{}",
            logs(&world.cluster, namespace, pod, SIDECAR)
        )
        .into()
    })
}

// ---- 4. health: S3 down, S3 back; an empty volume is not failing ----------------------------

pub fn health_follows_the_remote() -> Result<(), Failed> {
    let mut world = world()?;
    let namespace = "health";
    app_namespace(&world.cluster, namespace)?;
    world.s3.bucket("health-bucket");
    // rclone's own retries would make one failed sync take minutes (README, "Health").
    let health = "    RCLONE_LOW_LEVEL_RETRIES: \"1\"\n    RCLONE_RETRIES: \"1\"\n  healthCheck: {unhealthyAfterFailures: 2}\n";
    let manifests = [
        pfss(
            "health",
            "/data",
            "/health-bucket/app",
            &world.s3.pod_endpoint,
            health,
        ),
        sleeping_pod(namespace, "health", "health", ""),
    ];
    for manifest in manifests {
        world
            .cluster
            .kubectl(&["apply", "-n", namespace, "-f", "-"], Some(&manifest))?;
    }
    wait_ready(&world.cluster, namespace, "health")?;
    // An empty volume over an empty remote: many syncs and at least one probe (every 30 s).
    std::thread::sleep(Duration::from_secs(35));
    let pod = pod_json(&world.cluster, namespace, "health")?;
    check(restarts(&pod, SIDECAR) == 0, || {
        format!(
            "the sidecar of an empty volume was restarted:\n{}",
            logs(&world.cluster, namespace, "health", SIDECAR)
        )
    })?;
    world.s3.pause();
    // A change to upload: a sync with nothing to do may make no request at all.
    app_writes(&world.cluster, "written-during-the-outage.txt")?;
    let restarted = poll(
        Duration::from_secs(120),
        "the kubelet to restart the sidecar while S3 is down",
        || {
            let pod = world
                .cluster
                .get_json(&["pod", "-n", namespace, "health"])?;
            (restarts(&pod, SIDECAR) > 0).then_some(pod)
        },
    );
    world.s3.resume()?;
    let restarted = restarted.map_err(|e| {
        format!(
            "{e}\n{}\nthe sidecar's log:\n{}",
            world.cluster.describe(namespace),
            logs(&world.cluster, namespace, "health", SIDECAR)
        )
    })?;
    check(restarts(&restarted, "app") == 0, || {
        "the app container was restarted because the remote was down".into()
    })?;
    back_to_healthy(
        &world.cluster,
        &world.s3.root.path().join("health-bucket/app"),
    )
}

fn app_writes(cluster: &LocalCluster, file: &str) -> Result<(), Failed> {
    let script = format!("echo data > /data/{file}");
    cluster.kubectl(
        &[
            "exec", "-n", "health", "health", "-c", "app", "--", "sh", "-c", &script,
        ],
        None,
    )?;
    Ok(())
}

/// With the S3 server back, what the app wrote during the outage reaches the remote and
/// the sidecar stays up.
fn back_to_healthy(cluster: &LocalCluster, remote: &std::path::Path) -> Result<(), Failed> {
    let namespace = "health";
    poll(
        Duration::from_secs(120),
        "the file written during the outage at the remote, the sidecar running",
        || {
            let pod = cluster.get_json(&["pod", "-n", namespace, "health"])?;
            let running = container_status(&pod, SIDECAR)?["state"]["running"].is_object();
            let uploaded = files_under(remote)
                .iter()
                .any(|(name, _)| name == "written-during-the-outage.txt");
            (running && uploaded).then_some(())
        },
    )
    .map_err(|e| format!("{e}\n{}", cluster.describe(namespace)).into())
}

// ---- hostNetwork: the status endpoint must not become a host port -------------------------

/// Two Pods on the node's network, each with a health-checked sidecar: a declared status
/// port would be a host port the second Pod cannot get. Each sidecar binds a free loopback
/// port instead, and the probe's own command finds it.
pub fn host_network_pods_share_the_node() -> Result<(), Failed> {
    let world = world()?;
    let cluster = &world.cluster;
    let namespace = "host-network";
    app_namespace(cluster, namespace)?;
    world.s3.bucket("host-bucket");
    let endpoint = format!("http://127.0.0.1:{}", vsc_e2e::real_node::SEED_S3_PORT);
    let health = "  healthCheck: {unhealthyAfterFailures: 2}\n";
    let remote = "/host-bucket/{{ pod.metadata.name }}";
    let mut manifests = vec![pfss("hostnet", "/data", remote, &endpoint, health)];
    for name in ["hostnet-a", "hostnet-b"] {
        manifests.push(sleeping_pod(
            namespace,
            name,
            "hostnet",
            "  hostNetwork: true\n",
        ));
    }
    for manifest in manifests {
        cluster.kubectl(&["apply", "-n", namespace, "-f", "-"], Some(&manifest))?;
    }
    for name in ["hostnet-a", "hostnet-b"] {
        let pod = wait_ready(cluster, namespace, name)?;
        let declared = pod["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| !c["ports"].is_null());
        check(!declared, || format!("{name} declares a port: {pod}"))?;
        // What the liveness probe runs.
        let probe = pod["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == SIDECAR)
            .and_then(|c| c["livenessProbe"]["exec"]["command"].as_array())
            .map(|args| args.iter().filter_map(|a| a.as_str()).collect::<Vec<_>>())
            .ok_or_else(|| format!("{name}'s sidecar has no exec liveness probe"))?;
        let mut exec = vec!["exec", "-n", namespace, name, "-c", SIDECAR, "--"];
        exec.extend(probe);
        cluster
            .kubectl(&exec, None)
            .map_err(|e| format!("{name}'s health command failed: {e}"))?;
    }
    Ok(())
}

// ---- a sandbox restart runs the init containers again -------------------------------------

/// The PID of the pause process of the Pod with this UID.
pub(super) fn pause_process(pod_uid: &str) -> Option<String> {
    pod_processes(pod_uid)
        .into_iter()
        .find_map(|(pid, comm)| (comm == "pause").then_some(pid))
}

/// The kubelet makes a new sandbox when the old one dies (`SandboxChanged`) and runs every
/// init container again: the restore then meets its own earlier work in the volume, whose
/// root the kubelet owns, and must go through. The agent runs as the Pod annotation's uid.
pub fn sandbox_restart_reruns_the_restore() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let namespace = "sandbox";
    app_namespace(cluster, namespace)?;
    let seeded = s3.bucket("sandbox-bucket").join("app");
    fs::create_dir_all(&seeded).map_err(|e| e.to_string())?;
    fs::write(seeded.join("seeded.txt"), "from the remote").map_err(|e| e.to_string())?;
    let manifests = [
        pfss(
            "sandbox",
            "/data",
            "/sandbox-bucket/app",
            &s3.pod_endpoint,
            "",
        ),
        // The Pod annotation overrides permissions.uid (1001) for the agent.
        deployment(namespace, "sandbox", "/data", Network::Pod, None).replace(
            "annotations: {subdir: sandbox}",
            "annotations: {subdir: sandbox, riotkit.org/volume-user-id: \"1002\"}",
        ),
    ];
    for manifest in manifests {
        cluster.kubectl(&["apply", "-n", namespace, "-f", "-"], Some(&manifest))?;
    }
    let name = ready_pod(cluster, namespace, "sandbox", None)?;
    let listing = logs(cluster, namespace, &name, "app");
    check(
        listing
            .lines()
            .any(|l| l.contains("seeded.txt") && l.contains(" 1002 ")),
        || format!("the restore did not run as the annotation's uid 1002:\n{listing}"),
    )?;
    let first = pod_json(cluster, namespace, &name)?;
    let uid = first["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pause = pause_process(&uid).ok_or("no pause process found for the Pod")?;
    std::process::Command::new("kill")
        .args(["-9", &pause])
        .status()
        .map_err(|e| e.to_string())?;
    let again = poll(
        Duration::from_secs(180),
        "the Pod Ready in a new sandbox",
        || {
            let pod = cluster.get_json(&["pod", "-n", namespace, &name])?;
            (ready(&pod) && restarts(&pod, "app") > 0).then_some(pod)
        },
    )
    .map_err(|e| format!("{e}\n{}", cluster.describe(namespace)))?;
    let restore = container_status(&again, "init-volume-restore")
        .ok_or("the Pod has no restore container status")?;
    check(restore["state"]["terminated"]["exitCode"] == 0, || {
        format!("the restore did not succeed again: {restore}")
    })?;
    let listing = logs(cluster, namespace, &name, "app");
    check(
        listing.contains("seeded.txt")
            && listing.contains(&format!("written-while-running-{name}")),
        || format!("the app in the new sandbox did not find the volume's files:\n{listing}"),
    )
}

// ---- an app that writes as another user --------------------------------------------------

/// The app runs as root and writes a 0600 file; the agent runs as 1001 (no fsGroup): every
/// upload is refused, naming the file, and the remote is never written to, so nothing is
/// left "in progress" for the next Pod's restore to refuse.
pub fn unreadable_app_files_refuse_the_upload() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let namespace = "app-as-root";
    app_namespace(cluster, namespace)?;
    let remote = s3.bucket("root-bucket");
    let pod = sleeping_pod(namespace, "as-root", "as-root", "").replace(
        "    command: [sleep, \"3600\"]\n",
        "    command: [sh, -c, 'umask 077; echo private > /data/secret.db; exec sleep 3600']\n    securityContext: {runAsUser: 0}\n",
    );
    let manifests = [
        pfss("as-root", "/data", "/root-bucket/app", &s3.pod_endpoint, ""),
        pod,
    ];
    for manifest in manifests {
        cluster.kubectl(&["apply", "-n", namespace, "-f", "-"], Some(&manifest))?;
    }
    wait_ready(cluster, namespace, "as-root")?;
    let refused = poll(
        Duration::from_secs(60),
        "the sidecar to refuse the upload",
        || {
            let log = logs(cluster, namespace, "as-root", SIDECAR);
            (log.contains("secret.db") && log.contains("cannot be read by uid 1001")).then_some(log)
        },
    )
    .map_err(|e| format!("{e}\n{}", logs(cluster, namespace, "as-root", SIDECAR)))?;
    check(files_under(&remote).is_empty(), || {
        format!(
            "the remote was written to: {:?}\n{refused}",
            files_under(&remote)
        )
    })
}
