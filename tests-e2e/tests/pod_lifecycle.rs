//! The whole path a user's data takes: PodFilesystemSync -> webhook -> restore -> the app
//! writes -> the sidecar syncs -> SIGTERM final sync -> a second Pod restores the same files.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::Api;
use serde_json::json;
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::{app_pod, create_namespace, create_pfss, create_pod, wait_ready};
use vsc_e2e::kubelet::{Kubelet, chown_tree};
use vsc_e2e::operator::webhook_operator;
use vsc_test_support::{S3Server, eventually, owned, read_tree, write_tree};
use vsc_types::crd::PodFilesystemSync;

const APP_UID: u32 = 1001;
/// Each completed upload leaves one completion record beside the data (encrypted with it).
const COMPLETION_RECORD: usize = 1;

async fn round_trip(encrypted: bool) {
    let s3 = S3Server::start();
    let bucket = s3.bucket("apps");
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    // Agents report each sync to the operator's admin port, which records it in the status.
    let operator = webhook_operator(&plane, &client, true).await;
    create_namespace(&client, "shop").await;

    let mut env: BTreeMap<String, String> = s3.remote_env().into_iter().collect();
    env.insert("RCLONE_RETRIES".into(), "2".into());
    create_pfss(
        &client,
        "shop",
        "shop-data",
        json!({
            "podSelector": {"matchLabels": {"app": "shop"}},
            "localPath": "/var/lib/shop",
            "remotePath": "/apps/{{ pod.metadata.labels.app }}/{{ pod.ObjectMeta.Annotations[\"tenant\"] }}",
            "syncOptions": {
                "schedule": "@every 1s",
                "permissions": {"uid": APP_UID, "gid": APP_UID},
            },
            "env": env,
            "automaticEncryption": {"enabled": encrypted, "secretName": "shop-data-key"},
        }),
    )
    .await;
    wait_ready(&client, "shop", "shop-data", "True").await;

    // First Pod: nothing to restore yet; the app writes; the sidecar syncs.
    let pod = app_pod(
        "shop-1",
        json!({"app": "shop"}),
        json!({"tenant": "acme"}),
        "/var/lib/shop",
    );
    let stored = create_pod(&client, "shop", &pod)
        .await
        .expect("the webhook admits the Pod");
    let kubelet = Kubelet::new(client.clone());
    let volume = kubelet.empty_dir("data");
    let volumes = BTreeMap::from([
        ("data".to_string(), volume.clone()),
        ("volume-syncing-tmp".to_string(), kubelet.empty_dir("tmp")),
    ]);
    let running = kubelet.start(&stored, &volumes).await;

    let written = [
        ("orders.db", "order 1, order 2"),
        ("uploads/logo.png", "png bytes"),
    ];
    write_tree(&volume, &written);
    chown_tree(&volume, APP_UID, APP_UID);
    let remote_dir = bucket.join("shop/acme");
    let synced = eventually(Duration::from_secs(30), || {
        read_tree(&remote_dir).len() == written.len() + COMPLETION_RECORD
    });
    assert!(
        synced,
        "the sidecar did not sync the app's files: {:?}",
        read_tree(&remote_dir)
            .into_iter()
            .map(|(name, _)| name)
            .collect::<Vec<_>>()
    );

    // Written just before the Pod stops: only the final sync carries it.
    write_tree(&volume, &[("late.txt", "written at shutdown")]);
    chown_tree(&volume, APP_UID, APP_UID);
    let results = kubelet.stop(running).await;
    for (name, code, log) in &results {
        assert_eq!(*code, Some(0), "{name} exited {code:?}:\n{log}");
        assert!(
            log.contains("reason=\"final\""),
            "{name} ran no final sync:\n{log}"
        );
    }
    assert_eq!(
        read_tree(&remote_dir).len(),
        3 + COMPLETION_RECORD,
        "the final sync did not upload late.txt"
    );
    let resources: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "shop");
    let status = resources
        .get("shop-data")
        .await
        .expect("resource")
        .status
        .expect("status");
    assert!(
        status.last_sync_time.is_some(),
        "no sync was reported: {status:?}\n{results:?}\n{}",
        operator.log_text()
    );
    let report = status.last_report.expect("last report");
    assert!(
        report.success && report.direction == "to-remote",
        "{report:?}"
    );

    let stored_text: String = read_tree(&remote_dir)
        .into_iter()
        .map(|(n, c)| format!("{n}{c}"))
        .collect();
    if encrypted {
        for plain in [
            "orders.db",
            "order 1",
            "logo.png",
            "late.txt",
            "written at shutdown",
        ] {
            assert!(
                !stored_text.contains(plain),
                "'{plain}' reached the server unencrypted"
            );
        }
    } else {
        assert!(stored_text.contains("order 1, order 2"));
    }

    // A second Pod, on a fresh empty volume, gets the same files back before its app starts.
    let pod = app_pod(
        "shop-2",
        json!({"app": "shop"}),
        json!({"tenant": "acme"}),
        "/var/lib/shop",
    );
    let stored = create_pod(&client, "shop", &pod).await.expect("admitted");
    let volume = kubelet.empty_dir("data");
    let volumes = BTreeMap::from([
        ("data".to_string(), volume.clone()),
        ("volume-syncing-tmp".to_string(), kubelet.empty_dir("tmp")),
    ]);
    let running = kubelet.start(&stored, &volumes).await;
    assert_eq!(
        read_tree(&volume),
        owned(&[
            ("late.txt", "written at shutdown"),
            ("orders.db", "order 1, order 2"),
            ("uploads/logo.png", "png bytes")
        ])
    );
    if vsc_test_support::running_as_root() {
        use std::os::unix::fs::MetadataExt as _;
        let owner = std::fs::metadata(volume.join("orders.db"))
            .expect("restored")
            .uid();
        assert_eq!(owner, APP_UID, "restored files belong to the Pod's user");
    }
    kubelet.stop(running).await;
}

#[tokio::test]
async fn plain_volume_round_trips_through_two_pods() {
    Box::pin(round_trip(false)).await;
}

#[tokio::test]
async fn encrypted_volume_round_trips_and_the_server_sees_no_plaintext() {
    Box::pin(round_trip(true)).await;
}
