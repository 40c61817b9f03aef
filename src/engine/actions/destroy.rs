//! The destroy actions (issue #20, `realmctl destroy`, the embedded `playbooks/destroy.yaml`):
//!
//! - `destroy.plan`: surveys the realm ([`crate::engine::teardown::survey`]) and records the
//!   destroy plan — every resource to delete, every one kept and why — as its output; the gate
//!   after it binds the customer's approval to that output's digest;
//! - `destroy.node_pools`, `destroy.cluster`: delete the node pools, then the clusters, of the
//!   approved plan, each described again and judged again first (still there, still tagged for
//!   the realm, still created by it), an intent journaled before each delete call, then waited
//!   for until the cloud reports it gone; a resource already being deleted is only waited for,
//!   so a resumed destroy never deletes twice;
//! - `destroy.vpn`: deletes the realm VPN's parts of the approved plan, last built first (the
//!   routes through its instance, the instance, its address, firewall, identity and key
//!   secret), each described and judged again, an intent before each delete, waiting until each
//!   is gone (a part still held by another answers "in use" and is waited for);
//! - `destroy.sweep`: find → delete → find over the leftovers carrying the approved plan's
//!   ownership marks (load balancers first, then network interfaces, volumes when the plan says
//!   so, security groups), until none is left or the step's deadline nears; a resource still in
//!   use is tried again next round, and what remains at the end is named with why.
//!
//! Nothing outside the approved plan's resources and marks is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;

use super::cloud::Polled;
use super::{ActionDef, Input, Needs, SpecPart, Workflow, run_fn};
use crate::cloud::facts::Status;
use crate::cloud::profile;
use crate::cloud::teardown::{Created, Fate, Found, ResourceKind, judge_leftover, judge_owned};
use crate::cloud::vpn::VpnPart;
use crate::cloud::{CloudError, CloudErrorKind};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{Intent, StepOutput};
use crate::engine::model::teardown::DestroyPlan;
use crate::engine::teardown as survey;
use crate::requirements::ForWorkflow;

const INPUTS: &[Input] = &[
    Input::Part(SpecPart::Name),
    Input::Part(SpecPart::Cloud),
    Input::Teardown,
];

/// `destroy.plan`.
pub const PLAN: ActionDef = ActionDef {
    name: "destroy.plan",
    summary: "records what destroy deletes (the journal's inventory of what the realm created, and the leftovers carrying its clusters' ownership tags) and what it keeps, and why",
    needs: Needs::Cloud,
    workflow: Workflow::Destroy,
    timeout: Duration::from_secs(10 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(plan),
};

/// `destroy.node_pools`.
pub const NODE_POOLS: ActionDef = ActionDef {
    name: "destroy.node_pools",
    summary: "deletes the node pools of the approved destroy plan and waits until they are gone",
    needs: Needs::Cloud,
    workflow: Workflow::Destroy,
    timeout: Duration::from_secs(40 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(node_pools),
};

/// `destroy.cluster`.
pub const CLUSTER: ActionDef = ActionDef {
    name: "destroy.cluster",
    summary: "deletes the clusters of the approved destroy plan and waits until they are gone",
    needs: Needs::Cloud,
    workflow: Workflow::Destroy,
    timeout: Duration::from_secs(40 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(cluster),
};

/// `destroy.vpn`.
pub const VPN: ActionDef = ActionDef {
    name: "destroy.vpn",
    summary: "deletes the realm VPN's parts of the approved destroy plan, last built first: the routes through its instance, the instance, its address, firewall, identity and key secret",
    needs: Needs::Cloud,
    workflow: Workflow::Destroy,
    timeout: Duration::from_secs(30 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(vpn),
};

/// `destroy.sweep`.
pub const SWEEP: ActionDef = ActionDef {
    name: "destroy.sweep",
    summary: "deletes what controllers left carrying the approved plan's ownership tags (load balancers, network interfaces, volumes when asked, security groups), find → delete → find until nothing is left",
    needs: Needs::Cloud,
    workflow: Workflow::Destroy,
    timeout: Duration::from_secs(30 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(sweep),
};

async fn plan(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    // Nothing is recorded for approval that the identity could not carry out.
    let checks = super::cloud::require_permissions(
        ctx,
        ForWorkflow::Destroy,
        "destroy",
        "`realmctl destroy --policy -f <spec>` prints",
    )
    .await?;
    let p = survey::survey(cloud, ctx.spec, ctx.realm, ctx.opts.teardown).await?;
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "{} to delete, {} kept, {} already gone; {}",
            p.delete.len(),
            p.keep.len(),
            p.gone.len(),
            checks
                .first()
                .map_or("no permission to check", |c| c.message.as_str())
        ),
        facts: Some(json!({ "destroyPlan": p })),
        ..StepOutput::default()
    }))
}

/// The destroy plan the customer approved: the output of this run's playbook's `destroy.plan`
/// step (the gate after it passed, or this step would not run).
pub(super) fn approved_plan(ctx: &Ctx<'_>) -> Result<DestroyPlan, Failure> {
    ctx.realm.approved.clone().ok_or_else(|| {
        Failure::permanent(
            "no destroy plan is recorded: the destroy playbook's destroy.plan step must run, and its gate be approved, before anything is deleted",
        )
    })
}

/// Deletes the approved plan's resources of `kind` (node pools or clusters), each judged again.
async fn delete_owned(ctx: &Ctx<'_>, kind: ResourceKind) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let approved = approved_plan(ctx)?;
    let key = profile::of(ctx.spec).tag_keys().realm;
    let inventory = &ctx.realm.inventory;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for want in approved.delete.iter().filter(|f| f.kind == kind) {
        let Some(owned) = inventory
            .iter()
            .find(|o| o.kind == kind && o.id() == want.id)
        else {
            kept.push(format!("{want}: no longer in the journal's inventory"));
            continue;
        };
        let Some((now, status)) = survey::describe(cloud, owned).await? else {
            continue;
        };
        if let Fate::Keep { why } = judge_owned(&now, owned.created.into(), key, &ctx.spec.name) {
            kept.push(format!("{now}: {why}"));
            continue;
        }
        if status != Status::Deleting {
            if kind == ResourceKind::Cluster {
                volumes_allow_deleting(ctx, &approved).await?;
            }
            ctx.record
                .intent(&Intent::Delete {
                    resource: now.clone(),
                })
                .await?;
            ctx.record
                .kill_point(&format!("intent-delete-{}", label(kind)));
            cloud.delete(&now).await?;
            ctx.record.kill_point(&format!("deleted-{}", label(kind)));
        }
        until_gone(ctx, &now.to_string(), async || {
            Ok(survey::describe(cloud, owned).await?.map(|(_, s)| s))
        })
        .await?;
        deleted.push(now.to_string());
    }
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "deleted {} {}(s){}",
            deleted.len(),
            kind,
            if kept.is_empty() {
                String::new()
            } else {
                format!("; kept {}", kept.len())
            }
        ),
        facts: Some(json!({ "deleted": deleted, "kept": kept })),
        ..StepOutput::default()
    }))
}

/// On a cloud whose cluster takes the disks of its persistent volumes with it (AKS's node
/// resource group), a destroy that keeps volumes stops before the cluster, naming them.
async fn volumes_allow_deleting(ctx: &Ctx<'_>, approved: &DestroyPlan) -> Result<(), Failure> {
    if approved.options.delete_volumes || !profile::of(ctx.spec).volumes_go_with_cluster() {
        return Ok(());
    }
    let found = survey::leftovers(ctx.cloud()?, &approved.swept_clusters, &approved.marks).await?;
    let held: Vec<String> = found
        .iter()
        .filter(|f| f.kind == ResourceKind::Volume && f.within.is_some())
        .map(ToString::to_string)
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    Err(Failure::permanent(format!(
        "deleting the cluster would delete {} persistent volume disk(s) with it, and the destroy plan keeps volumes: {}\n  help: snapshot or move the disks out of the cluster's resource group to keep their data, or run `realmctl destroy --delete-volumes` (a new plan to approve)",
        held.len(),
        held.join(", ")
    )))
}

async fn node_pools(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    delete_owned(ctx, ResourceKind::NodePool).await
}

async fn cluster(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    delete_owned(ctx, ResourceKind::Cluster).await
}

/// Polls `describe` until the resource is gone ([`super::cloud::poll`]); a failed deletion
/// stops at once.
async fn until_gone(
    ctx: &Ctx<'_>,
    what: &str,
    mut describe: impl AsyncFnMut() -> Result<Option<Status>, CloudError>,
) -> Result<(), Failure> {
    super::cloud::poll(ctx, what, "gone", async || {
        Ok(match describe().await? {
            None => Polled::Done(()),
            Some(Status::Failed(why)) => Polled::Stop(Failure::permanent(format!(
                "{what} could not be deleted: {why}"
            ))),
            Some(s) => Polled::Wait(format!("{s:?}").to_lowercase()),
        })
    })
    .await
}

async fn vpn(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let approved = approved_plan(ctx)?;
    let wanted: BTreeSet<VpnPart> = approved
        .delete
        .iter()
        .filter_map(|f| match f.kind {
            ResourceKind::Vpn(p) => Some(p),
            _ => None,
        })
        .collect();
    let Some((def, created)) = ctx.realm.vpn.clone().filter(|_| !wanted.is_empty()) else {
        return Ok(Outcome::Skipped(
            "the approved destroy plan deletes no VPN part".into(),
        ));
    };
    let key = profile::of(ctx.spec).tag_keys().realm;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for part in VpnPart::ORDER.into_iter().rev() {
        if !wanted.contains(&part) {
            continue;
        }
        let what = format!("VPN {part} {}", def.name);
        let mut requested = false;
        let mut n = 0;
        loop {
            n += 1;
            let built = survey::vpn_parts(cloud, &def).await?;
            let Some((facts, now)) = built
                .get(&part)
                .and_then(|f| survey::found_of(&def, part, f).map(|now| (f, now)))
            else {
                if requested {
                    deleted.push(what.clone());
                }
                break;
            };
            let created = if created.contains(&part) {
                Created::ByThisRealm
            } else {
                Created::Adopted
            };
            if part != VpnPart::Routes
                && let Fate::Keep { why } = judge_owned(&now, created, key, &ctx.spec.name)
            {
                kept.push(format!("{what}: {why}"));
                break;
            }
            let mut busy = None;
            if !requested {
                ctx.record
                    .intent(&Intent::Delete {
                        resource: now.clone(),
                    })
                    .await?;
                ctx.record
                    .kill_point(&format!("intent-delete-{}", label(now.kind)));
                match cloud.delete_vpn_part(&def, part, facts).await {
                    Ok(()) => requested = true,
                    Err(e) if e.kind.retryable() => busy = Some(e.to_string()),
                    Err(e) => return Err(e.into()),
                }
                ctx.record
                    .kill_point(&format!("deleted-{}", label(now.kind)));
            }
            let left = ctx.remaining().saturating_sub(REPORT_MARGIN);
            let Some(delay) = ctx.opts.poll.next(n, false, left) else {
                return Err(Failure::retryable(format!(
                    "{what} was not gone within the step's timeout{}\n  help: run destroy again once what holds it is gone",
                    busy.map(|b| format!(": {b}")).unwrap_or_default()
                )));
            };
            ctx.record.progress(&format!(
                "{what}: {}",
                busy.as_deref().unwrap_or("being deleted")
            ));
            tokio::time::sleep(delay).await;
        }
    }
    Ok(Outcome::Done(StepOutput {
        summary: format!("deleted {} VPN part(s); kept {}", deleted.len(), kept.len()),
        facts: Some(json!({ "deleted": deleted, "kept": kept })),
        ..StepOutput::default()
    }))
}

/// How long before the step's deadline the sweep stops to report what remains.
pub(super) const REPORT_MARGIN: Duration = Duration::from_secs(2);

async fn sweep(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let approved = approved_plan(ctx)?;
    let clusters = &approved.swept_clusters;
    let mut deleted: Vec<String> = Vec::new();
    let mut requested: BTreeSet<String> = BTreeSet::new();
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    let (mut rounds, mut waits) = (0u32, 0u32);
    loop {
        rounds += 1;
        let found = survey::leftovers(cloud, clusters, &approved.marks).await?;
        // What still stands in the way: in use, or still listed after its delete.
        let mut waiting: BTreeMap<String, String> = BTreeMap::new();
        for f in &found {
            match judge_leftover(f, &approved.marks, approved.options) {
                Fate::Keep { why } => {
                    kept.insert(f.to_string(), why);
                }
                Fate::Delete if requested.contains(&f.id) => {
                    waiting.insert(f.to_string(), "still listed after its delete".into());
                }
                Fate::Delete => match delete_leftover(ctx, f).await {
                    Ok(()) => {
                        requested.insert(f.id.clone());
                        deleted.push(f.to_string());
                    }
                    Err(e) if e.kind.retryable() => {
                        waiting.insert(f.to_string(), e.to_string());
                    }
                    Err(e) => return Err(e.into()),
                },
            }
        }
        ctx.record.kill_point(&format!("round-{rounds}"));
        let pending = found.iter().any(|f| !kept.contains_key(&f.to_string()));
        if !pending {
            break;
        }
        if waiting.is_empty() && ctx.remaining() > REPORT_MARGIN {
            // Everything found was deleted just now: list again at once.
            continue;
        }
        if waiting.is_empty() {
            for f in found.iter().filter(|f| !kept.contains_key(&f.to_string())) {
                waiting.insert(f.to_string(), "found again in the last round".into());
            }
        }
        waits += 1;
        let left = ctx.remaining().saturating_sub(REPORT_MARGIN);
        let Some(delay) = ctx.opts.poll.next(waits, false, left) else {
            return Err(remains(&waiting));
        };
        ctx.record.progress(&format!(
            "sweep round {rounds}: {} deleted so far, {} waiting",
            deleted.len(),
            waiting.len()
        ));
        tokio::time::sleep(delay).await;
    }
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "swept {} leftover(s) in {rounds} round(s); kept {}",
            deleted.len(),
            kept.len()
        ),
        facts: Some(json!({ "deleted": deleted, "kept": kept })),
        ..StepOutput::default()
    }))
}

/// The kill-point label of a kind (`security-group`).
fn label(kind: ResourceKind) -> String {
    kind.as_str().replace(' ', "-")
}

/// One leftover: an intent, then the delete.
async fn delete_leftover(ctx: &Ctx<'_>, f: &Found) -> Result<(), CloudError> {
    ctx.record
        .intent(&Intent::Delete {
            resource: f.clone(),
        })
        .await
        .map_err(|e| CloudError::new(CloudErrorKind::Invalid, "journal", e.message))?;
    ctx.record
        .kill_point(&format!("intent-delete-{}", label(f.kind)));
    ctx.cloud()
        .map_err(|e| CloudError::new(CloudErrorKind::Unsupported, "cloud", e.message))?
        .delete(f)
        .await?;
    ctx.record.kill_point(&format!("deleted-{}", label(f.kind)));
    Ok(())
}

/// The sweep ran out of time: what remains and why, retryable (a later `destroy` goes on).
fn remains(waiting: &BTreeMap<String, String>) -> Failure {
    let lines: Vec<String> = waiting
        .iter()
        .map(|(what, why)| format!("  {what}: {why}"))
        .collect();
    Failure::retryable(format!(
        "the sweep ran out of time with {} leftover(s) remaining:\n{}\n  help: run destroy again once what holds them is gone",
        lines.len(),
        lines.join("\n")
    ))
}
