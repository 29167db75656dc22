//! How the operator runs in a cluster: certificates it manages itself, and several replicas
//! with one leader.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::{app_pod, create_namespace, create_pfss, create_pod, wait_ready};
use vsc_e2e::operator::{OperatorProcess, install_crd, register_webhook_url};
use vsc_test_support::free_port;

const WEBHOOK_CONFIGURATION: &str = "volume-syncing-controller-self-managed";

fn pfss_spec(app: &str) -> serde_json::Value {
    json!({
        "podSelector": {"matchLabels": {"app": app}},
        "localPath": "/data",
        "remotePath": format!("/bucket/{app}"),
        "env": {"REMOTE_TYPE": "local"},
    })
}

#[tokio::test]
async fn self_managed_certificates_are_created_trusted_and_kept_across_restarts() {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    install_crd(&client).await;
    create_namespace(&client, "vsc-system").await;
    create_namespace(&client, "apps").await;
    create_pfss(&client, "apps", "data", pfss_spec("web")).await;

    // Registered with a CA that did not sign anything the operator will serve: until the
    // operator sets its own caBundle, the API server cannot call the webhook.
    let webhook_port = free_port();
    let unrelated = vsc_operator::pki::CertificateAuthority::generate("unrelated", 1).expect("ca");
    register_webhook_url(
        &client,
        WEBHOOK_CONFIGURATION,
        &OperatorProcess::webhook_url_for(webhook_port),
        &unrelated.certified.cert_pem,
    )
    .await;

    let args = [
        "--certificate-mode=self-managed",
        "--namespace=vsc-system",
        "--certificate-extra-names=127.0.0.1",
        "--webhook-configuration-name=volume-syncing-controller-self-managed",
    ];
    let mut operator = OperatorProcess::start_on(&plane, webhook_port, &args).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "vsc-system");
    let secret = secrets
        .get("volume-syncing-controller-webhook-tls")
        .await
        .expect("certificate Secret created");
    let data = secret.data.clone().expect("data");
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(data.contains_key(key), "{key} missing");
    }
    let configurations: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let bundle = |configuration: MutatingWebhookConfiguration| {
        configuration.webhooks.unwrap_or_default()[0]
            .client_config
            .ca_bundle
            .clone()
            .expect("caBundle")
    };
    let ca_bundle = bundle(
        configurations
            .get(WEBHOOK_CONFIGURATION)
            .await
            .expect("configuration"),
    );
    assert_eq!(
        ca_bundle.0, data["ca.crt"].0,
        "caBundle is the operator's CA"
    );

    // The API server now reaches the webhook over TLS it trusts: the Pod is mutated.
    let pod = app_pod("web-1", json!({"app": "web"}), json!({}), "/data");
    let stored = create_pod(&client, "apps", &pod)
        .await
        .expect("admitted through the self-managed certificate");
    assert!(
        stored
            .spec
            .expect("spec")
            .init_containers
            .is_some_and(|c| c.iter().any(|c| c.name == "init-volume-restore"))
    );

    // A restart keeps the CA (and so every caBundle that trusts it).
    operator.terminate().await;
    drop(operator);
    let operator = OperatorProcess::start_on(&plane, webhook_port, &args).await;
    let again = secrets
        .get("volume-syncing-controller-webhook-tls")
        .await
        .expect("secret");
    assert_eq!(
        again.data.expect("data")["ca.crt"],
        data["ca.crt"],
        "the CA was regenerated"
    );
    let pod = app_pod("web-2", json!({"app": "web"}), json!({}), "/data");
    create_pod(&client, "apps", &pod)
        .await
        .expect("admitted after a restart");
    drop(operator);
}

#[tokio::test]
async fn with_leader_election_one_replica_reconciles_and_another_takes_over() {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    install_crd(&client).await;
    create_namespace(&client, "vsc-system").await;
    create_namespace(&client, "apps").await;
    let args = ["--leader-election", "--namespace=vsc-system"];
    let first = OperatorProcess::start(&plane, &args).await;
    let second = OperatorProcess::start(&plane, &args).await;

    let leases: Api<Lease> = Api::namespaced(client.clone(), "vsc-system");
    let holder = || async {
        leases
            .get_opt("volume-syncing-controller")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
    };
    let mut leader = None;
    for _ in 0..100 {
        leader = holder().await;
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = leader.expect("a replica took the lease");

    create_pfss(&client, "apps", "one", pfss_spec("one")).await;
    wait_ready(&client, "apps", "one", "True").await;

    // Stop whichever replica leads; the other one takes over and keeps reconciling.
    let first_leads = first.log_text().contains("leading=true");
    let (mut stopping, remaining) = if first_leads {
        (first, second)
    } else {
        (second, first)
    };
    stopping.terminate().await;
    let mut new_leader = None;
    for _ in 0..300 {
        new_leader = holder().await.filter(|h| *h != leader);
        if new_leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        new_leader.is_some(),
        "no takeover within 30s:\n{}",
        remaining.log_text()
    );
    create_pfss(&client, "apps", "two", pfss_spec("two")).await;
    wait_ready(&client, "apps", "two", "True").await;
    drop(remaining);
}

/// A mounted Secret as kubelet lays it out: the files are symlinks through `..data`, which
/// an update swaps atomically to a new timestamped directory.
fn mount_secret_version(
    dir: &std::path::Path,
    version: u32,
    cert: &vsc_operator::pki::CertifiedKey,
) {
    let data = dir.join(format!("..2026_11_24_{version}"));
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("tls.crt"), &cert.cert_pem).expect("cert");
    std::fs::write(data.join("tls.key"), &cert.key_pem).expect("key");
    let staged = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(data.file_name().expect("name"), &staged).expect("symlink");
    std::fs::rename(&staged, dir.join("..data")).expect("swap ..data");
    for file in ["tls.crt", "tls.key"] {
        let link = dir.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).expect("file symlink");
        }
    }
}

#[tokio::test]
async fn a_rotated_mounted_certificate_is_served_without_a_restart() {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    install_crd(&client).await;
    create_namespace(&client, "apps").await;
    create_pfss(&client, "apps", "data", pfss_spec("web")).await;

    let mount = plane.dir.path().join("mounted-secret");
    let old_ca = vsc_operator::pki::CertificateAuthority::generate("old-ca", 1).expect("ca");
    mount_secret_version(
        &mount,
        1,
        &old_ca.issue_server(&["127.0.0.1".into()], 1).expect("cert"),
    );
    let webhook_port = free_port();
    let cert_arg = format!("--tls-cert-file={}", mount.join("tls.crt").display());
    let key_arg = format!("--tls-key-file={}", mount.join("tls.key").display());
    let _operator = OperatorProcess::start_on(&plane, webhook_port, &[&cert_arg, &key_arg]).await;
    let url = OperatorProcess::webhook_url_for(webhook_port);
    register_webhook_url(
        &client,
        WEBHOOK_CONFIGURATION,
        &url,
        &old_ca.certified.cert_pem,
    )
    .await;
    create_pod(
        &client,
        "apps",
        &app_pod("before", json!({"app": "web"}), json!({}), "/data"),
    )
    .await
    .expect("admitted with the first certificate");

    // Rotate: a certificate from a new CA, swapped in the way kubelet updates a Secret
    // volume, and the webhook configuration now trusting only the new CA.
    let new_ca = vsc_operator::pki::CertificateAuthority::generate("new-ca", 1).expect("ca");
    mount_secret_version(
        &mount,
        2,
        &new_ca.issue_server(&["127.0.0.1".into()], 1).expect("cert"),
    );
    let configurations: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    configurations
        .delete(WEBHOOK_CONFIGURATION, &kube::api::DeleteParams::default())
        .await
        .expect("delete");
    register_webhook_url(
        &client,
        WEBHOOK_CONFIGURATION,
        &url,
        &new_ca.certified.cert_pem,
    )
    .await;
    let mut admitted = false;
    for attempt in 0..50 {
        let pod = app_pod(
            &format!("after-{attempt}"),
            json!({"app": "web"}),
            json!({}),
            "/data",
        );
        if create_pod(&client, "apps", &pod).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(admitted, "the operator kept serving the old certificate");
}
