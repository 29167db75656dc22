//! `kubectl pfss restore --as-of`: the workloads of the selected Pods get the Pod annotation
//! `riotkit.org/restore-as-of` in their template, so their rollout replaces each Pod with one
//! whose init container restores the tree of that time (from the trash), and whose sidecar
//! then uploads it. Bare Pods (no controller to recreate them) are listed, not touched.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;
use vsc_types::contract::RESTORE_AS_OF_ANNOTATION;
use vsc_types::crd::PodFilesystemSync;
use vsc_types::report::sent_at_text;

use crate::cli::RestoreArgs;
use crate::resources::{self, full_name};
use crate::workloads::{self, Workload};

/// What the restore would do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Each workload with its Pods and their remote paths.
    pub workloads: BTreeMap<Workload, Vec<(String, String)>>,
    /// Pods without a workload to roll out.
    pub left_out: Vec<String>,
}

pub async fn run(args: RestoreArgs, out: &mut impl Write, input: &mut impl BufRead) -> Result<()> {
    let (client, namespace) = resources::connect(args.target.namespace.as_deref()).await?;
    let pfss = resources::get(&client, &namespace, &args.name).await?;
    check(&pfss, args.as_of, Utc::now())?;
    let plan = plan(&client, &pfss).await?;
    describe(out, &pfss, &plan, args.as_of)?;
    if plan.workloads.is_empty() {
        bail!(
            "no workload of {} to roll out: nothing changed",
            full_name(&pfss)
        );
    }
    if !args.yes && !confirmed(out, input)? {
        bail!("not confirmed: nothing changed");
    }
    for workload in plan.workloads.keys() {
        annotate(&client, &namespace, workload, args.as_of).await?;
        writeln!(
            out,
            "{workload}: annotated {RESTORE_AS_OF_ANNOTATION}={}; its rollout restores",
            sent_at_text(args.as_of)
        )?;
    }
    writeln!(
        out,
        "After the rollout, remove the annotation (later Pods would restore that time again, over what was uploaded since):"
    )?;
    for workload in plan.workloads.keys() {
        writeln!(out, "  {}", removal(&namespace, workload))?;
    }
    Ok(())
}

/// A restore needs the trash, and a time already past.
pub fn check(pfss: &PodFilesystemSync, as_of: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    if !pfss.spec.sync_options.trash.enabled {
        bail!(
            "--as-of: {} keeps no version history (spec.syncOptions.trash.enabled is false), so no earlier tree can be restored",
            full_name(pfss)
        );
    }
    if as_of > now {
        bail!("--as-of {} is in the future", sent_at_text(as_of));
    }
    Ok(())
}

async fn plan(client: &Client, pfss: &PodFilesystemSync) -> Result<Plan> {
    let mut plan = Plan::default();
    for pod in resources::selected_pods(client, pfss).await? {
        let remote = workloads::remote_path(&pod).unwrap_or_else(|| "(not injected)".into());
        match workloads::owner(client, &pod).await? {
            Some(workload) => plan
                .workloads
                .entry(workload)
                .or_default()
                .push((pod.name_any(), remote)),
            None => plan.left_out.push(pod.name_any()),
        }
    }
    Ok(plan)
}

fn describe(
    out: &mut impl Write,
    pfss: &PodFilesystemSync,
    plan: &Plan,
    as_of: DateTime<Utc>,
) -> Result<()> {
    let trash = &pfss.spec.sync_options.trash;
    writeln!(
        out,
        "Restore {} as of {} (from its trash: retentionDays {}, keep {}):",
        full_name(pfss),
        sent_at_text(as_of),
        trash.retention_days,
        trash.keep
    )?;
    for (workload, pods) in &plan.workloads {
        writeln!(
            out,
            "  {workload}: rolled out; each new Pod restores, then uploads, that tree"
        )?;
        for (pod, remote) in pods {
            writeln!(out, "    Pod {pod} now, remote path {remote}")?;
        }
    }
    for pod in &plan.left_out {
        writeln!(
            out,
            "  Pod {pod}: no Deployment, StatefulSet, DaemonSet or ReplicaSet recreates it: not restored (recreate it with the annotation {RESTORE_AS_OF_ANNOTATION})"
        )?;
    }
    writeln!(
        out,
        "What was uploaded after that time is replaced at the remote (kept in the trash). A time before the history starts makes the restore fail and the Pods not start: the log of their init container says why."
    )?;
    Ok(())
}

fn confirmed(out: &mut impl Write, input: &mut impl BufRead) -> Result<bool> {
    write!(out, "Restore? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    input
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn api_resource(kind: &str) -> Option<ApiResource> {
    Some(match kind {
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "DaemonSet" => ApiResource::erase::<DaemonSet>(&()),
        "ReplicaSet" => ApiResource::erase::<ReplicaSet>(&()),
        _ => return None,
    })
}

async fn annotate(
    client: &Client,
    namespace: &str,
    workload: &Workload,
    as_of: DateTime<Utc>,
) -> Result<()> {
    let Some(resource) = api_resource(&workload.kind) else {
        bail!("{workload}: cannot roll out this kind");
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTORE_AS_OF_ANNOTATION: sent_at_text(as_of)}}}}});
    api.patch(
        &workload.name,
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .with_context(|| format!("cannot annotate the Pod template of {workload}"))?;
    Ok(())
}

/// The command that takes the annotation off the template again.
fn removal(namespace: &str, workload: &Workload) -> String {
    let path = RESTORE_AS_OF_ANNOTATION.replace('/', "~1");
    format!(
        "kubectl patch {} {} -n {namespace} --type=json -p '[{{\"op\":\"remove\",\"path\":\"/spec/template/metadata/annotations/{path}\"}}]'",
        workload.kind.to_lowercase(),
        workload.name
    )
}
