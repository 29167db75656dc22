//! `kubectl pfss verify`: the agent's `verify` in each selected Pod's sidecar, through
//! `kubectl exec` (the sidecar's env names the local and remote paths and the keys).

use std::io::Write;

use anyhow::{Context as _, Result, bail};
use tokio::process::Command;
use vsc_types::contract::{AGENT_BINARY_PATH, SIDECAR_CONTAINER_NAME};

use crate::cli::VerifyArgs;
use crate::resources::{self, full_name};
use crate::workloads;

pub async fn run(args: VerifyArgs, out: &mut impl Write) -> Result<()> {
    let (client, namespace) = resources::connect(args.target.namespace.as_deref()).await?;
    let pfss = resources::get(&client, &namespace, &args.name).await?;
    let pods: Vec<String> = resources::selected_pods(&client, &pfss)
        .await?
        .iter()
        .filter(|pod| workloads::has_sidecar(pod))
        .map(kube::ResourceExt::name_any)
        .collect();
    if pods.is_empty() {
        bail!(
            "no Pod of {} runs the sidecar {SIDECAR_CONTAINER_NAME}: nothing to verify",
            full_name(&pfss)
        );
    }
    let mut differing = Vec::new();
    for pod in &pods {
        let (ok, text) = verify_in(&args.kubectl, &namespace, pod).await?;
        writeln!(
            out,
            "Pod {pod}: {}",
            if ok {
                "in sync"
            } else {
                "DIFFERS (or verify failed)"
            }
        )?;
        for line in text.lines() {
            writeln!(out, "  {line}")?;
        }
        if !ok {
            differing.push(pod.clone());
        }
    }
    if differing.is_empty() {
        Ok(())
    } else {
        bail!("verify failed in {}", differing.join(", "))
    }
}

/// Whether the agent's verify succeeded in `pod`, with what it printed.
async fn verify_in(kubectl: &str, namespace: &str, pod: &str) -> Result<(bool, String)> {
    let output = Command::new(kubectl)
        .args([
            "exec",
            "-n",
            namespace,
            pod,
            "-c",
            SIDECAR_CONTAINER_NAME,
            "--",
            AGENT_BINARY_PATH,
            "verify",
        ])
        .output()
        .await
        .with_context(|| format!("cannot run {kubectl} (--kubectl names it)"))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let mut text = text.trim_end().to_string();
    if !output.status.success() {
        // kubectl's own failures can be silent (a lost exec stream): say what ended.
        text.push_str(&format!("\n({kubectl} exec: {})", output.status));
    }
    Ok((output.status.success(), text.trim_start().to_string()))
}
