//! One writer per remote path (`syncOptions.writers: one`, the default): three Pods of one
//! resource share a remote path; their sidecars (real agents, run from the webhook's patched
//! Pods) ask the operator for the writer lease on the real API server. Only the primary
//! uploads; when it stops, or dies without a word, another Pod takes over, restores what the
//! old primary uploaded last, and only then uploads: a stale view never overwrites it.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::{app_pod, create_namespace, create_pfss, create_pod, wait_ready};
use vsc_e2e::kubelet::{Kubelet, RunningPod, chown_tree};
use vsc_e2e::operator::{OperatorProcess, install_crd, register_webhook, report_flags};
use vsc_test_support::{S3Server, read_tree, write_tree};
use vsc_types::crd::PodFilesystemSync;

const APP_UID: u32 = 1001;
/// What a sidecar logs when it is not the primary.
const HOLDING: &str = "another Pod is the primary writer: holding uploads";
/// What a sidecar logs for each upload it starts.
const UPLOADING: &str = "sync starting";

struct Replica {
    name: String,
    volume: PathBuf,
    running: Option<RunningPod>,
}

impl Replica {
    fn write(&self, files: &[(&str, &str)]) {
        write_tree(&self.volume, files);
        chown_tree(&self.volume, APP_UID, APP_UID);
    }

    fn log(&self) -> String {
        let sidecars = self.running.as_ref().map_or(&[][..], |r| &r.sidecars[..]);
        sidecars
            .iter()
            .map(vsc_e2e::kubelet::ContainerProcess::log_text)
            .collect()
    }
}

async fn start_replica(client: &kube::Client, kubelet: &Kubelet, name: &str) -> Replica {
    let pod = app_pod(name, json!({"app": "web"}), json!({}), "/srv/data");
    let stored = create_pod(client, "web", &pod).await.expect("admitted");
    let volume = kubelet.empty_dir("data");
    let volumes = BTreeMap::from([
        ("data".to_string(), volume.clone()),
        ("volume-syncing-tmp".to_string(), kubelet.empty_dir("tmp")),
    ]);
    let running = Some(kubelet.start(&stored, &volumes).await);
    Replica {
        name: name.into(),
        volume,
        running,
    }
}

/// The primary the status names, once it is `wanted` (any Pod when None) and not `old`.
async fn wait_primary(client: &kube::Client, old: Option<&str>, limit: Duration) -> String {
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "web");
    let deadline = Instant::now() + limit;
    loop {
        let status = api.get("web-data").await.expect("resource").status;
        let primaries = status.map(|s| s.primaries).unwrap_or_default();
        if let [primary] = &primaries[..]
            && Some(primary.pod.as_str()) != old
        {
            return primary.pod.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no new primary (old {old:?}) within {limit:?}: {primaries:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_remote(remote: &Path, wanted: &[(String, String)], why: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_data(remote) != wanted {
        assert!(
            Instant::now() < deadline,
            "{why}: the remote holds {:?}, not {wanted:?}",
            read_data(remote)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The data files (the completion record aside).
fn read_data(dir: &Path) -> Vec<(String, String)> {
    let mut files = read_tree(dir);
    files.retain(|(name, _)| !name.starts_with(".volume-syncing-controller"));
    files
}

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    vsc_test_support::owned(list)
}

#[tokio::test]
async fn only_the_primary_uploads_and_a_takeover_restores_the_old_primarys_data_first() {
    let s3 = S3Server::start();
    let bucket = s3.bucket("apps");
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    install_crd(&client).await;
    let flags = report_flags();
    let operator_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let operator = OperatorProcess::start(&plane, &operator_args).await;
    register_webhook(&client, &operator).await;
    create_namespace(&client, "web").await;
    let mut env: BTreeMap<String, String> = s3.remote_env().into_iter().collect();
    env.insert("RCLONE_RETRIES".into(), "1".into());
    create_pfss(
        &client,
        "web",
        "web-data",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "localPath": "/srv/data",
            "remotePath": "/apps/web",
            "syncOptions": {
                "schedule": "@every 1s",
                "permissions": {"uid": APP_UID, "gid": APP_UID},
            },
            "env": env,
        }),
    )
    .await;
    wait_ready(&client, "web", "web-data", "True").await;
    let remote = bucket.join("web");
    let kubelet = Kubelet::new(client.clone());
    let mut replicas = Vec::new();
    for name in ["web-0", "web-1", "web-2"] {
        replicas.push(start_replica(&client, &kubelet, name).await);
    }

    // Each Pod writes its own view (of its own size: rclone compares size and time, and
    // these are written within a millisecond); only the primary's reaches the remote.
    let view = |name: &str| name.repeat(usize::from(name.as_bytes()[4] - b'0') + 1);
    for replica in &replicas {
        replica.write(&[("who.txt", &view(&replica.name))]);
    }
    let first = wait_primary(&client, None, Duration::from_secs(30)).await;
    let first_view = view(&first);
    let first = first.as_str();
    wait_remote(
        &remote,
        &files(&[("who.txt", &first_view)]),
        "the primary's view",
    )
    .await;
    // Long enough for every replica to have asked and held (they ask every 10 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(read_data(&remote), files(&[("who.txt", &first_view)]));
    for replica in replicas.iter().filter(|r| r.name != first) {
        let log = replica.log();
        assert!(
            log.contains(HOLDING),
            "{} did not hold:\n{log}",
            replica.name
        );
        assert!(
            !log.contains(UPLOADING),
            "{} uploaded as a replica:\n{log}",
            replica.name
        );
    }

    // The primary writes once more and stops: its final sync uploads, it releases the lease,
    // and another Pod takes over with that data, not its own stale view.
    let index = replicas
        .iter()
        .position(|r| r.name == first)
        .expect("primary");
    let mut old = replicas.remove(index);
    old.write(&[("late.txt", "written at shutdown")]);
    let results = kubelet.stop(old.running.take().expect("running")).await;
    for (name, code, log) in &results {
        assert_eq!(*code, Some(0), "{name} exited {code:?}:\n{log}");
    }
    let last_of_first = files(&[
        ("late.txt", "written at shutdown"),
        ("who.txt", &first_view),
    ]);
    assert_eq!(read_data(&remote), last_of_first, "the final sync");
    let second = wait_primary(&client, Some(first), Duration::from_secs(30)).await;
    let next = replicas
        .iter()
        .position(|r| r.name == second)
        .expect("replica");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        read_data(&remote),
        last_of_first,
        "a stale view overwrote the old primary's"
    );
    assert_eq!(
        read_data(&replicas[next].volume),
        last_of_first,
        "the takeover did not restore"
    );

    // The new primary's node dies mid-run (no final sync, no release): the last replica takes
    // over only when the lease expires, again from what the remote holds.
    replicas[next].write(&[("second.txt", "by the second primary")]);
    let expected = files(&[
        ("late.txt", "written at shutdown"),
        ("second.txt", "by the second primary"),
        ("who.txt", &first_view),
    ]);
    wait_remote(&remote, &expected, "the second primary's upload").await;
    let mut dead = replicas.remove(next);
    let killed_at = Instant::now();
    kubelet.kill(dead.running.take().expect("running")).await;
    let third = wait_primary(&client, Some(&second), Duration::from_secs(60)).await;
    let waited = killed_at.elapsed();
    let survivor = &replicas[0];
    assert_eq!(third, survivor.name);
    assert!(
        waited >= Duration::from_secs(15),
        "the lease of a silent primary was given away after {waited:?}, before it expired"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        read_data(&remote),
        expected,
        "a stale view overwrote the dead primary's"
    );
    assert_eq!(
        read_data(&survivor.volume),
        expected,
        "the takeover did not restore"
    );
    // And it uploads as the primary now.
    survivor.write(&[("third.txt", "by the third primary")]);
    let expected = files(&[
        ("late.txt", "written at shutdown"),
        ("second.txt", "by the second primary"),
        ("third.txt", "by the third primary"),
        ("who.txt", &first_view),
    ]);
    wait_remote(&remote, &expected, "the third primary's upload").await;

    // The operator (so the API server) is cut off: the primary's grant runs out unrenewed and
    // it stops uploading; once the operator is back it is granted the lease again and uploads.
    let mut operator = operator;
    operator.terminate().await;
    tokio::time::sleep(Duration::from_secs(21)).await;
    survivor.write(&[("cut.txt", "written while cut off")]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(read_data(&remote), expected, "uploaded without a lease");
    let log = survivor.log();
    assert!(
        log.contains("ran out unrenewed"),
        "no word of the lost lease:\n{log}"
    );
    let operator = OperatorProcess::start(&plane, &operator_args).await;
    let expected = files(&[
        ("cut.txt", "written while cut off"),
        ("late.txt", "written at shutdown"),
        ("second.txt", "by the second primary"),
        ("third.txt", "by the third primary"),
        ("who.txt", &first_view),
    ]);
    wait_remote(&remote, &expected, "the upload once the lease is back").await;
    let mut last = replicas.remove(0);
    kubelet.stop(last.running.take().expect("running")).await;
    the_lease_goes_with_its_resource(&client, &plane, operator, &operator_args).await;
}

/// Deleting the resource deletes its writer Lease (swept at the operator's start and every
/// few minutes); the Lease of a resource that is still there stays.
async fn the_lease_goes_with_its_resource(
    client: &kube::Client,
    plane: &ControlPlane,
    mut operator: OperatorProcess,
    operator_args: &[&str],
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    create_pfss(
        client,
        "web",
        "kept",
        json!({
            "podSelector": {"matchLabels": {"app": "kept"}},
            "localPath": "/srv/data",
            "remotePath": "/apps/kept",
            "env": {"REMOTE_TYPE": "local"},
        }),
    )
    .await;
    let kept: Lease = serde_json::from_value(json!({
        "metadata": {"name": "vsc-writer-kept", "labels": {
            "riotkit.org/podfilesystemsync": "kept",
            "riotkit.org/podfilesystemsync-namespace": "web",
        }},
        "spec": {"holderIdentity": "kept-0"},
    }))
    .expect("a Lease");
    leases
        .create(&PostParams::default(), &kept)
        .await
        .expect("create a Lease");
    let writer_leases = ListParams::default().labels("riotkit.org/podfilesystemsync=web-data");
    let listed = leases.list(&writer_leases).await.expect("list").items;
    assert_eq!(
        listed.len(),
        1,
        "one writer Lease for the one remote path: {listed:?}"
    );
    let resources: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "web");
    resources
        .delete("web-data", &DeleteParams::default())
        .await
        .expect("delete the resource");
    operator.terminate().await;
    let operator = OperatorProcess::start(plane, operator_args).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leases
        .list(&writer_leases)
        .await
        .expect("list")
        .items
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the deleted resource's writer Lease is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        leases
            .get_opt("vsc-writer-kept")
            .await
            .expect("get")
            .is_some(),
        "the sweep deleted the writer Lease of a resource that is still there"
    );
    drop(operator);
}
