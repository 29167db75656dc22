//! `kubectl pfss restore --as-of` on the real node: the Deployment's rollout replaces its Pod
//! with one whose init container restores the tree of that time; with `writers: one` it
//! waits for the old Pod (which uploads what it wrote at SIGTERM), then takes over and
//! uploads the restored tree, the later versions kept in the trash. Removing the annotation
//! rolls out once more, and that Pod continues from the restored tree.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libtest_mimic::Failed;
use vsc_e2e::real_node::{LocalCluster, poll};

use super::plugin::{kubectl_pfss, text};
use super::{Network, app_namespace, check, deployment, files_under, logs, ready_pod, world};

const NAMESPACE: &str = "restore";
const APP: &str = "history";
const TRASH_DIR: &str = ".volume-syncing-controller.trash";

fn run_in_app(cluster: &LocalCluster, pod: &str, script: &str) -> Result<(), Failed> {
    let exec = ["exec", "-n", NAMESPACE, pod, "-c", "app", "--", "sh", "-c"];
    cluster.kubectl(&[&exec[..], &[script]].concat(), None)?;
    Ok(())
}

fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Waits until the remote's user files (the trash and the agent's record left out) pass
/// `expected`, and returns them.
fn remote_until(
    remote: &Path,
    what: &str,
    expected: impl Fn(&[(String, Vec<u8>)]) -> bool,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let user_files = || -> Vec<(String, Vec<u8>)> {
        files_under(remote)
            .into_iter()
            .filter(|(name, _)| !name.starts_with(".volume-syncing-controller"))
            .collect()
    };
    poll(Duration::from_secs(120), what, || {
        let files = user_files();
        expected(&files).then_some(files)
    })
    .map_err(|e| format!("{e}; the remote holds {:?}", names(&user_files())))
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(name, _)| name.as_str()).collect()
}

fn holds(files: &[(String, Vec<u8>)], name: &str, contents: &str) -> bool {
    files
        .iter()
        .any(|(file, held)| file == name && held == contents.as_bytes())
}

fn has(files: &[(String, Vec<u8>)], name_part: &str) -> bool {
    files.iter().any(|(file, _)| file.contains(name_part))
}

/// Waits until only `pod` is left of the app (the rollout's old Pod has stopped).
fn only_pod_left(cluster: &LocalCluster, pod: &str) -> Result<(), Failed> {
    poll(Duration::from_secs(120), "the old Pod to be gone", || {
        let pods = cluster.get_json(&["pods", "-n", NAMESPACE, "-l", &format!("app={APP}")])?;
        let items = pods["items"].as_array()?;
        (items.len() == 1 && items[0]["metadata"]["name"] == pod).then_some(())
    })
    .map_err(Failed::from)
}

fn setup(cluster: &LocalCluster, s3_endpoint: &str) -> Result<(), Failed> {
    app_namespace(cluster, NAMESPACE)?;
    cluster.kubectl(
        &["apply", "-n", NAMESPACE, "-f", "-"],
        Some(&format!(
            r#"apiVersion: riotkit.org/v1alpha1
kind: PodFilesystemSync
metadata: {{name: {APP}}}
spec:
  podSelector: {{matchLabels: {{app: {APP}}}}}
  localPath: /data
  remotePath: /restore-bucket/app
  syncOptions:
    schedule: "@every 2s"
    permissions: {{uid: "1001", gid: "1001"}}
    trash: {{enabled: true}}
  env:
    REMOTE_TYPE: s3
    REMOTE_PROVIDER: Minio
    REMOTE_ENDPOINT: {s3_endpoint}
  envFromSecrets: [{{name: cloud-press-secret-envs}}]
"#
        )),
    )?;
    cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&deployment(NAMESPACE, APP, "/data", Network::Pod, None)),
    )?;
    Ok(())
}

/// Two versions at the remote, and a time between them.
fn two_versions(cluster: &LocalCluster, remote: &Path, pod: &str) -> Result<String, Failed> {
    run_in_app(cluster, pod, "echo one > /data/notes.txt")?;
    remote_until(remote, "the first version at the remote", |files| {
        holds(files, "notes.txt", "one\n")
    })?;
    // The upload that sent it has finished by now (its stamp is before the file appeared).
    std::thread::sleep(Duration::from_secs(2));
    let as_of = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_secs(1));
    run_in_app(
        cluster,
        pod,
        "echo two > /data/notes.txt; echo later > /data/added-later.txt",
    )?;
    remote_until(remote, "the second version at the remote", |files| {
        holds(files, "notes.txt", "two\n") && has(files, "added-later.txt")
    })?;
    Ok(as_of)
}

pub(super) fn rollout_restores_and_uploads_that_time() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    setup(cluster, &s3.pod_endpoint)?;
    let remote: PathBuf = s3.bucket("restore-bucket").join("app");
    let first = ready_pod(cluster, NAMESPACE, APP, None)?;
    let as_of = two_versions(cluster, &remote, &first)?;

    let restore = ["restore", "-n", NAMESPACE, APP, "--as-of", &as_of, "--yes"];
    let output = kubectl_pfss(&cluster.kubeconfig, &restore)?;
    check(
        output.status.success() && text(&output).contains("Deployment history: annotated"),
        || {
            format!(
                "restore --as-of --yes did not annotate the Deployment:\n{}",
                text(&output)
            )
        },
    )?;
    let second = ready_pod(cluster, NAMESPACE, APP, Some(&first))?;
    only_pod_left(cluster, &second)?;
    let listing = logs(cluster, NAMESPACE, &second, "app");
    check(
        listing.contains("notes.txt") && !listing.contains("added-later.txt"),
        || format!("the new Pod's app did not start on the tree of {as_of}:\n{listing}"),
    )?;
    let restored = remote_until(
        remote.as_path(),
        "the restored tree at the remote",
        |files| {
            holds(files, "notes.txt", "one\n")
                && !has(files, "added-later.txt")
                && has(files, &format!("written-while-running-{second}"))
        },
    )
    .map_err(|e| {
        format!(
            "{e}\nthe new Pod's sidecar:\n{}",
            logs(cluster, NAMESPACE, &second, "volume-syncing-sidecar")
        )
    })?;
    check(
        !has(&restored, &format!("written-at-sigterm-{first}")),
        || {
            format!(
                "the old Pod's file of after {as_of} is still at the remote: {:?}",
                names(&restored)
            )
        },
    )?;
    let trash = files_under(&remote.join(TRASH_DIR));
    check(
        trash
            .iter()
            .any(|(name, held)| name.ends_with("/notes.txt") && held == b"two\n")
            && has(&trash, "added-later.txt")
            && has(&trash, &format!("written-at-sigterm-{first}")),
        || {
            format!(
                "the trash does not keep what the restore replaced: {:?}",
                names(&trash)
            )
        },
    )?;
    annotation_removed_rolls_out_from_the_restored_tree(cluster, &remote, &second)
}

/// The command the plugin prints, run: the next Pod restores the latest upload (the
/// restored tree), takes over once the old Pod's final sync landed, and its uploads continue
/// the restore's history. (What its app wrote while it held its uploads is discarded by the
/// takeover, as documented, so the test writes after it.)
fn annotation_removed_rolls_out_from_the_restored_tree(
    cluster: &LocalCluster,
    remote: &Path,
    second: &str,
) -> Result<(), Failed> {
    let removal = r#"[{"op":"remove","path":"/spec/template/metadata/annotations/riotkit.org~1restore-as-of"}]"#;
    let patch = [
        "patch",
        "deployment",
        APP,
        "-n",
        NAMESPACE,
        "--type=json",
        "-p",
        removal,
    ];
    cluster.kubectl(&patch, None)?;
    let third = ready_pod(cluster, NAMESPACE, APP, Some(second))?;
    only_pod_left(cluster, &third)?;
    synced_as_primary(cluster, &third)?;
    run_in_app(cluster, &third, "echo three > /data/after-the-restore.txt")?;
    remote_until(
        remote,
        "the restored tree, the old Pod's last upload, and the new Pod's change",
        |files| {
            holds(files, "notes.txt", "one\n")
                && has(files, &format!("written-at-sigterm-{second}"))
                && holds(files, "after-the-restore.txt", "three\n")
        },
    )
    .map_err(|e| {
        format!(
            "{e}\nthe third Pod's sidecar:\n{}",
            logs(cluster, NAMESPACE, &third, "volume-syncing-sidecar")
        )
    })?;
    let record = read(&remote.join(".volume-syncing-controller.json")).unwrap_or_default();
    check(
        record.contains("\"restored_as_of\"") && record.contains(&third),
        || format!("the third Pod's upload does not continue the restore's history: {record}"),
    )
}

/// Waits until `pod`'s sidecar is the primary writer and has finished a sync as such (its
/// takeover catch-up).
fn synced_as_primary(cluster: &LocalCluster, pod: &str) -> Result<(), Failed> {
    poll(
        Duration::from_secs(120),
        "the new Pod to sync as the primary",
        || {
            let log = logs(cluster, NAMESPACE, pod, "volume-syncing-sidecar");
            let (_, as_primary) = log.split_once("this Pod is the primary writer: uploading")?;
            as_primary.contains("sync finished").then_some(())
        },
    )
    .map_err(Failed::from)
}
