//! `kubectl pfss sync-now`: sets `riotkit.org/sync-requested-at` to now. The operator hands
//! it to the sidecars when they next ask (in their writer-lease answers, or from
//! `/sync-requests` with `writers: every`); each one whose last upload started before it runs
//! one (see the README, "kubectl plugin").

use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, SubsecRound as _, Utc};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use vsc_types::contract::SYNC_REQUESTED_AT_ANNOTATION;
use vsc_types::crd::{PodFilesystemSync, PodSyncStatus};
use vsc_types::report::sent_at_text;

use crate::cli::SyncNowArgs;
use crate::resources::{self, full_name};
use crate::status;

pub async fn run(args: SyncNowArgs, out: &mut impl Write) -> Result<()> {
    let (client, namespace) = resources::connect(args.target.namespace.as_deref()).await?;
    let pfss = resources::get(&client, &namespace, &args.name).await?;
    let requested = Utc::now();
    request(&client, &pfss, requested).await?;
    writeln!(
        out,
        "podfilesystemsync {} annotated {SYNC_REQUESTED_AT_ANNOTATION}={}: its sidecars upload when they next ask the operator (within 10 s)",
        full_name(&pfss),
        sent_at_text(requested)
    )?;
    if args.wait {
        let reported = wait(&client, &pfss, requested, args.timeout).await?;
        status::write_table(out, &[status::view(&reported, Utc::now())], Utc::now())?;
        fail_on_errors(&reported, requested)?;
    }
    Ok(())
}

async fn request(client: &Client, pfss: &PodFilesystemSync, at: DateTime<Utc>) -> Result<()> {
    let api: Api<PodFilesystemSync> = Api::namespaced(
        client.clone(),
        &pfss.metadata.namespace.clone().unwrap_or_default(),
    );
    let patch =
        json!({"metadata": {"annotations": {SYNC_REQUESTED_AT_ANNOTATION: sent_at_text(at)}}});
    api.patch(
        pfss.metadata.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .with_context(|| format!("cannot annotate podfilesystemsync {}", full_name(pfss)))?;
    Ok(())
}

/// The Pods that upload: the primaries, or (none named) every Pod whose last report was an
/// upload.
fn uploaders(pfss: &PodFilesystemSync) -> Vec<String> {
    let status = pfss.status.clone().unwrap_or_default();
    if !status.primaries.is_empty() {
        return status.primaries.into_iter().map(|p| p.pod).collect();
    }
    status
        .pods
        .into_iter()
        .filter(|p| p.direction == "to-remote")
        .map(|p| p.name)
        .collect()
}

/// Whether each uploader reported an upload sent after `requested` (the agent's `sentAt`,
/// in microseconds; the operator's receipt time keeps only seconds).
fn all_reported(pfss: &PodFilesystemSync, requested: DateTime<Utc>) -> bool {
    let uploaders = uploaders(pfss);
    let pods = pfss
        .status
        .as_ref()
        .map(|s| s.pods.as_slice())
        .unwrap_or_default();
    let after = |pod: &PodSyncStatus| match &pod.last_report_sent_at {
        Some(sent) => crate::times::of_micro(sent) > requested,
        None => crate::times::of(&pod.last_report_time) > requested.trunc_subsecs(0),
    };
    !uploaders.is_empty()
        && uploaders.iter().all(|name| {
            pods.iter()
                .any(|p| &p.name == name && p.direction == "to-remote" && after(p))
        })
}

async fn wait(
    client: &Client,
    pfss: &PodFilesystemSync,
    requested: DateTime<Utc>,
    limit: Duration,
) -> Result<PodFilesystemSync> {
    let namespace = pfss.metadata.namespace.clone().unwrap_or_default();
    let name = pfss.metadata.name.clone().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let current = resources::get(client, &namespace, &name).await?;
        if all_reported(&current, requested) {
            return Ok(current);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "--timeout {}s: not every uploading Pod of {namespace}/{name} reported a sync since the request ({:?}); `kubectl pfss status -n {namespace} {name}` shows them",
                limit.as_secs(),
                uploaders(&current)
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn fail_on_errors(pfss: &PodFilesystemSync, requested: DateTime<Utc>) -> Result<()> {
    let uploaders = uploaders(pfss);
    let failed: Vec<String> = pfss
        .status
        .iter()
        .flat_map(|s| &s.pods)
        .filter(|p| uploaders.contains(&p.name) && p.consecutive_failures > 0)
        .map(|p| format!("{}: {}", p.name, p.last_error))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "the sync requested at {} failed in {}",
            sent_at_text(requested),
            failed.join("; ")
        )
    }
}
