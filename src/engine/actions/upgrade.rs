//! The upgrade actions (issue #20, `realmctl upgrade`, the embedded `playbooks/upgrade.yaml`):
//!
//! - `upgrade.plan`: checks the identity holds the install's permissions (the identity that
//!   installs the realm maintains it), surveys the cluster ([`crate::engine::upgrade::survey`])
//!   and runs the pre-checks ([`crate::engine::model::upgrade::judge`]); the plan and the
//!   target definition are its output, so the gate after it binds the customer's approval to
//!   the definition's digest. Any failed check stops here, before anything changes;
//! - `upgrade.control_plane`: the approved definition only; described again first — already
//!   at the target: nothing to do; one minor below: an intent journaled, the cloud asked, then
//!   waited for until active at the target; anything else (moved since the plan, a downgrade)
//!   refuses;
//! - `upgrade.node_pools`: each pool of the definition in turn, the same way, only once the
//!   control plane runs the target (a pool never leads its control plane).
//!
//! SIGKILL anywhere, then `upgrade` again, carries on from what the cloud reports: a call
//! already made is waited for, never made twice.

use std::time::Duration;

use serde_json::json;

use super::cloud::{Polled, approved_definition, poll};
use super::{ActionDef, Input, Needs, SpecPart, Workflow, run_fn};
use crate::checks::Status as CheckStatus;
use crate::cloud::definition::{ClusterDefinition, PoolDefinition};
use crate::cloud::facts::Status;
use crate::cloud::poll::{Wait, wait_on};
use crate::cloud::{CloudError, access};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{FailureKind, Intent, StepOutput};
use crate::engine::model::upgrade::{self, minor};
use crate::requirements::ForWorkflow;
use crate::text::one_line;

const INPUTS: &[Input] = &[
    Input::Part(SpecPart::Name),
    Input::Part(SpecPart::Cloud),
    Input::Part(SpecPart::Subscription),
    Input::Definition,
];

/// `upgrade.plan`.
pub const PLAN: ActionDef = ActionDef {
    name: "upgrade.plan",
    summary: "checks the upgrade before anything changes (one minor up, offered, version skew, only the version differs, no removed API in use, no PodDisruptionBudget blocking a drain) and records the plan for approval",
    needs: Needs::Cloud,
    workflow: Workflow::Upgrade,
    timeout: Duration::from_secs(10 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(plan),
};

/// `upgrade.control_plane`.
pub const CONTROL_PLANE: ActionDef = ActionDef {
    name: "upgrade.control_plane",
    summary: "upgrades the control plane one minor to the approved definition's version and waits until it is active",
    needs: Needs::Cloud,
    workflow: Workflow::Upgrade,
    timeout: Duration::from_secs(60 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(control_plane),
};

/// `upgrade.node_pools`.
pub const NODE_POOLS: ActionDef = ActionDef {
    name: "upgrade.node_pools",
    summary: "upgrades each node pool, in turn, to the control plane's version and waits until it is active",
    needs: Needs::Cloud,
    workflow: Workflow::Upgrade,
    timeout: Duration::from_secs(3 * 60 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(node_pools),
};

async fn plan(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    // The identity that installs the realm maintains it: the install's permissions.
    super::cloud::require_permissions(
        ctx,
        ForWorkflow::Install,
        "upgrade",
        "the install's phase-5 roles document shows",
    )
    .await?;
    let def = access::definition(ctx.spec);
    let facts = crate::engine::upgrade::survey(cloud, &def, ctx.opts.kube.clone())
        .await?
        .ok_or_else(|| crate::engine::upgrade::no_cluster(def.name()))?;
    let (plan, checks) = upgrade::judge(&def, &facts);
    let Some(plan) = plan else {
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| format!("{}: {}", c.id, one_line(&c.message)))
            .collect();
        return Err(Failure {
            kind: FailureKind::Permanent,
            message: format!(
                "the upgrade of cluster {} to Kubernetes {} is refused before any change: {}",
                def.name(),
                def.cluster.kubernetes_version,
                failed.join("; ")
            ),
            output: Some(Box::new(StepOutput {
                summary: format!("{} pre-check(s) failed", failed.len()),
                checks,
                ..StepOutput::default()
            })),
        });
    };
    let summary = if plan.is_empty() {
        format!(
            "cluster {} and every pool already run Kubernetes {}: nothing to upgrade",
            plan.cluster, plan.to
        )
    } else {
        let pools: Vec<String> = plan
            .pools
            .iter()
            .map(|p| format!("{} ({} → {})", p.name, p.from, plan.to))
            .collect();
        format!(
            "cluster {}: {}; then node pools {}; definition {}",
            plan.cluster,
            if plan.control_plane {
                format!("control plane {} → {}", plan.from, plan.to)
            } else {
                format!("control plane already at {}", plan.to)
            },
            if pools.is_empty() {
                "none".to_owned()
            } else {
                pools.join(", ")
            },
            def.digest()
        )
    };
    Ok(Outcome::Done(StepOutput {
        summary,
        facts: Some(json!({ "upgradePlan": plan })),
        checks,
        definition: Some(Box::new(def)),
        ..StepOutput::default()
    }))
}

/// Where a resource stands against the target, decided from what the cloud describes (pure).
#[derive(Debug, PartialEq, Eq)]
enum Stand {
    /// At the target (and active when `ready`).
    Done { ready: bool },
    /// One minor below: to be asked for (when active) or waited for.
    Below { ready: bool },
    /// Anything else: refused, and why.
    Refuse(String),
}

fn stand(what: &str, now: &str, status: &Status, target: &str) -> Stand {
    let ready = matches!(wait_on(status), Wait::Ready);
    match (minor(now), minor(target)) {
        (Some(n), Some(t)) if n == t => Stand::Done { ready },
        (Some(n), Some(t)) if n.0 == t.0 && n.1 + 1 == t.1 => Stand::Below { ready },
        (Some(n), Some(t)) if n > t => Stand::Refuse(format!(
            "{what} runs {now}, newer than the approved {target}: it moved since the plan, and nothing is ever downgraded"
        )),
        _ => Stand::Refuse(format!(
            "{what} runs {now}, not one minor below the approved {target}: it moved since the plan; plan the upgrade again"
        )),
    }
}

/// Asks the cloud once (intent first) and waits until `describe` reports the target, active.
async fn upgrade_one(
    ctx: &Ctx<'_>,
    what: &str,
    label: &str,
    intent: Intent,
    target: &str,
    describe: impl AsyncFn() -> Result<Option<(String, Status)>, CloudError>,
    call: impl AsyncFnOnce() -> Result<(), CloudError>,
) -> Result<bool, Failure> {
    let Some((now, status)) = describe().await? else {
        return Err(Failure::permanent(format!("{what} does not exist")));
    };
    let asked = match stand(what, &now, &status, target) {
        Stand::Refuse(why) => return Err(Failure::permanent(why)),
        Stand::Done { ready: true } => return Ok(false),
        Stand::Done { ready: false } => false,
        Stand::Below { ready: true } => {
            ctx.record.intent(&intent).await?;
            ctx.record.kill_point(&format!("intent-{label}"));
            call().await?;
            ctx.record.kill_point(&format!("asked-{label}"));
            true
        }
        // Being changed already: a call made before a crash, waited for.
        Stand::Below { ready: false } => false,
    };
    poll(ctx, what, &format!("active at {target}"), async || {
        let Some((now, status)) = describe().await? else {
            return Ok(Polled::Stop(Failure::permanent(format!(
                "{what} does not exist (deleted during the upgrade?)"
            ))));
        };
        Ok(
            match (stand(what, &now, &status, target), wait_on(&status)) {
                (Stand::Done { ready: true }, _) => Polled::Done(()),
                (Stand::Refuse(why), _) => Polled::Stop(Failure::permanent(why)),
                (_, Wait::Stop(why)) => Polled::Stop(Failure::permanent(format!(
                    "{what} will not finish its upgrade: {why}"
                ))),
                (_, Wait::Poll(s)) => Polled::Wait(format!("{s} (runs {now})")),
                (_, Wait::Ready) => Polled::Wait(format!("active, still at {now}")),
            },
        )
    })
    .await?;
    Ok(asked)
}

async fn control_plane(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let (def, by) = approved_definition(ctx)?;
    let target = def.cluster.kubernetes_version.clone();
    let name = def.name().to_owned();
    let asked = upgrade_one(
        ctx,
        &format!("the control plane of cluster {name}"),
        "cluster",
        Intent::Upgrade {
            cluster: name.clone(),
            pool: None,
            to: target.clone(),
        },
        &target,
        async || {
            Ok(cloud
                .cluster(&name)
                .await?
                .map(|c| (c.described.kubernetes_version, c.status)))
        },
        async || cloud.upgrade_cluster(&def).await,
    )
    .await?;
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "control plane of cluster {name} {} Kubernetes {target}; definition {} approved by {by}",
            if asked { "upgraded to" } else { "already at" },
            def.digest()
        ),
        facts: Some(json!({"cluster": name, "to": target, "upgraded": asked})),
        ..StepOutput::default()
    }))
}

async fn node_pools(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let (def, by) = approved_definition(ctx)?;
    let target = def.cluster.kubernetes_version.clone();
    let name = def.name().to_owned();
    // A pool never leads its control plane.
    let cp = cloud
        .cluster(&name)
        .await?
        .ok_or_else(|| Failure::permanent(format!("cluster {name} does not exist")))?;
    if minor(&cp.described.kubernetes_version) != minor(&target) {
        return Err(Failure::permanent(format!(
            "the control plane of cluster {name} runs {}, not the approved {target}: the pools wait for it",
            cp.described.kubernetes_version
        )));
    }
    let mut done = Vec::new();
    for pool in &def.pools {
        let asked = upgrade_pool(ctx, &def, pool, &target).await?;
        done.push(json!({"name": pool.nodes.name, "upgraded": asked}));
    }
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "node pools of cluster {name} at Kubernetes {target} ({}); definition {} approved by {by}",
            def.pools
                .iter()
                .map(|p| p.nodes.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            def.digest()
        ),
        facts: Some(json!({"cluster": name, "to": target, "nodePools": done})),
        ..StepOutput::default()
    }))
}

async fn upgrade_pool(
    ctx: &Ctx<'_>,
    def: &ClusterDefinition,
    pool: &PoolDefinition,
    target: &str,
) -> Result<bool, Failure> {
    let cloud = ctx.cloud()?;
    let name = def.name();
    upgrade_one(
        ctx,
        &format!("node pool {} of cluster {name}", pool.nodes.name),
        "pool",
        Intent::Upgrade {
            cluster: name.to_owned(),
            pool: Some(pool.nodes.name.clone()),
            to: target.to_owned(),
        },
        target,
        async || {
            Ok(cloud
                .node_pool(name, &pool.nodes.name)
                .await?
                .map(|p| (p.version, p.status)))
        },
        async || cloud.upgrade_node_pool(def, pool).await,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_asked_once_waited_for_and_never_moved_down_or_past_a_minor() {
        let a = Status::Active;
        let u = Status::Updating;
        assert_eq!(stand("x", "1.34", &a, "1.35"), Stand::Below { ready: true });
        assert_eq!(
            stand("x", "1.34", &u, "1.35"),
            Stand::Below { ready: false }
        );
        assert_eq!(stand("x", "1.35", &u, "1.35"), Stand::Done { ready: false });
        assert_eq!(
            stand("x", "1.35.2", &a, "1.35"),
            Stand::Done { ready: true }
        );
        assert!(
            matches!(stand("x", "1.36", &a, "1.35"), Stand::Refuse(w) if w.contains("downgraded"))
        );
        assert!(
            matches!(stand("x", "1.33", &a, "1.35"), Stand::Refuse(w) if w.contains("plan the upgrade again"))
        );
    }
}
