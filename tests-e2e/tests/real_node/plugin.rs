//! `kubectl pfss verify` on the real node: the agent's verify in the sidecar of a running
//! Pod (through `kubectl exec` and the kubelet), in sync, then differing after the remote
//! lost an object, then in sync again once the sidecar uploaded it again.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use libtest_mimic::Failed;
use vsc_e2e::operator::workspace_binary;

use super::{check, ready_pod, world};

/// Runs `kubectl pfss` with the cluster's kubeconfig.
pub(super) fn kubectl_pfss(kubeconfig: &Path, args: &[&str]) -> Result<Output, Failed> {
    std::process::Command::new(workspace_binary("kubectl-pfss"))
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run kubectl-pfss: {e}").into())
}

/// `kubectl pfss verify`, which execs into the sidecar through this run's kubectl.
fn verify(kubeconfig: &Path, args: &[&str]) -> Result<Output, Failed> {
    let kubectl = vsc_test_support::tool("kubectl");
    let kubectl = kubectl.to_string_lossy();
    kubectl_pfss(kubeconfig, &[args, &["--kubectl", &kubectl]].concat())
}

pub(super) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `verify` until it passes, for up to 30 s (the sidecar uploads every 3 s).
fn verify_until_in_sync(kubeconfig: &Path, args: &[&str]) -> Result<Output, Failed> {
    let mut output = verify(kubeconfig, args)?;
    for _ in 0..10 {
        if output.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
        output = verify(kubeconfig, args)?;
    }
    Ok(output)
}

/// Runs in the Deployment of `a_deployment_restores_syncs_on_schedule...` (PodFilesystemSync
/// `plain`, remote `plain-bucket/app`, `@every 3s`).
pub(super) fn verify_reports_each_pod() -> Result<(), Failed> {
    let world = world()?;
    let (cluster, s3) = (&world.cluster, &world.s3);
    let namespace = "plain-deployment";
    let pod = ready_pod(cluster, namespace, "plain", None)?;
    let verify_args = ["verify", "-n", namespace, "plain"];

    // The app writes a file at start; the sidecar's next tick uploads it.
    let in_sync = verify_until_in_sync(&cluster.kubeconfig, &verify_args)?;
    check(
        in_sync.status.success() && text(&in_sync).contains(&format!("Pod {pod}: in sync")),
        || {
            format!(
                "verify does not say the uploaded Pod is in sync:\n{}",
                text(&in_sync)
            )
        },
    )?;

    // The remote loses an object; an unchanged volume is not uploaded again until its
    // full sync, so verify is what notices.
    s3.delete_object("plain-bucket/app/seeded-before-start.txt");
    let differs = verify(&cluster.kubeconfig, &verify_args)?;
    check(
        !differs.status.success()
            && text(&differs).contains(&format!("Pod {pod}: DIFFERS"))
            && text(&differs).contains("seeded-before-start.txt"),
        || {
            format!(
                "verify does not name the Pod and the lost file:\n{}",
                text(&differs)
            )
        },
    )?;

    // Touched in the volume, the file is a change that the next tick uploads again.
    let touch = ["exec", "-n", namespace, &pod, "-c", "app", "--"];
    let touch = [&touch[..], &["touch", "/data/seeded-before-start.txt"]].concat();
    cluster.kubectl(&touch, None)?;
    let again = verify_until_in_sync(&cluster.kubeconfig, &verify_args)?;
    check(again.status.success(), || {
        format!(
            "verify failed once the file was uploaded again:\n{}",
            text(&again)
        )
    })
}
