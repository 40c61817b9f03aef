//! `destroy.retire` (issue #20), the first deleting step of a destroy: the realm is retired in
//! the enforcement core the approved plan names — where the install's `quota.seed` seeded it —
//! and the core's whole decision log is read back and stored as the artifact
//! `decision-log.json`, before anything that runs the core is deleted.
//!
//! Retired, the core denies every later deployment with reason `realm_retired` and refuses a new
//! config; its log is kept where it is too, but the artifact is what outlives the cluster, its
//! volume and the ledger's file: the evidence of every admission the realm ever got, next to
//! the journal of its install and of its destroy. Retiring again changes nothing (the first
//! retirement's time stands), so a resumed destroy may run the step again.
//!
//! The realm's own core is reached through its cluster, as `quota.seed` reached it; when that
//! cluster no longer exists there is no core to retire, and the step says so. A quota service
//! elsewhere needs its admin token again (`--quota-url` with `--quota-token-env`), never
//! journaled.

use std::time::Duration;

use super::cluster_api::ClusterConn;
use super::destroy::approved_plan;
use super::quota::core_failure;
use super::render::store_failure;
use super::{ActionDef, Input, Needs, SpecPart, Workflow, run_fn};
use crate::cloud::facts::Status;
use crate::cloud::teardown::ResourceKind;
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::io::store::Rendered;
use crate::engine::model::output::StepOutput;
use crate::engine::model::teardown::CreatedBy;
use crate::platform::core::{Core, Role};
use crate::quota::retire::{self, Export};
use crate::quota::seed::{SeedError, Seeded, Target};

/// `destroy.retire`.
pub const RETIRE: ActionDef = ActionDef {
    name: "destroy.retire",
    summary: "retires the realm in the enforcement core the approved destroy plan names (every later deployment denied, its config final) and stores the core's whole decision log as the artifact decision-log.json",
    needs: Needs::Cloud,
    workflow: Workflow::Destroy,
    timeout: Duration::from_secs(5 * 60),
    retries: 3,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Teardown,
    ],
    run: run_fn!(run),
};

/// The artifact the log is stored as.
pub const DECISION_LOG: &str = "decision-log.json";

/// Where to retire, given where the install seeded and the target this run was given (pure):
/// the recorded place, with this run's token when it names the same quota service.
pub fn target_for(seeded: &Seeded, given: &Target) -> Result<Target, String> {
    match (seeded, given) {
        (Seeded::InRealm, _) => Ok(Target::InRealm),
        (Seeded::Local { db }, _) => Ok(Target::Local { db: db.clone() }),
        (Seeded::Remote { url }, Target::Remote { url: u, token }) if u == url => {
            Ok(Target::Remote {
                url: url.clone(),
                token: token.clone(),
            })
        }
        (Seeded::Remote { url }, _) => Err(format!(
            "the install seeded the realm into the quota service {url}; retiring it there needs an admin token\n  help: run destroy again with --quota-url {url} --quota-token-env VAR (VAR holding a token from `realmctl quota token --admin`)"
        )),
    }
}

async fn run(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let approved = approved_plan(ctx)?;
    let Some(seeded) = approved.retire.clone() else {
        return Ok(Outcome::Skipped(
            "the install never seeded an enforcement core: there is no realm to retire".into(),
        ));
    };
    let target = target_for(&seeded, &ctx.opts.quota_target).map_err(Failure::permanent)?;
    let realm = ctx.spec.name.clone();
    let actor = format!("realmctl destroy (operator {})", ctx.opts.operator);
    let export = match target {
        Target::InRealm => match in_realm(ctx, &realm).await? {
            Some(e) => e,
            None => {
                return Ok(Outcome::Skipped(
                    "the realm's cluster, which ran its enforcement core, no longer exists: there is no core to retire (a kept volume still holds its ledger)".into(),
                ));
            }
        },
        target => {
            let limit = ctx.remaining();
            ctx.blocking
                .run(move || retire::retire(&target, &realm, &actor, limit))
                .await?
                .map_err(seed_failure)?
        }
    };
    ctx.record.kill_point("retired");
    let bytes = serde_json::to_vec_pretty(&export)
        .map_err(|e| Failure::permanent(format!("the decision log cannot be written: {e}")))?;
    let stored = ctx
        .opts
        .store
        .put(
            &ctx.spec.name,
            ctx.run,
            Rendered {
                name: DECISION_LOG.into(),
                bytes,
            },
            ctx.blocking,
        )
        .await
        .map_err(store_failure)?;
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "realm {} retired in the {} at {}{}; its decision log ({} entries) stored as {} (sha256 {})",
            export.realm,
            seeded.describe(),
            export.retirement.retired_at,
            if export.retirement.now {
                ""
            } else {
                " (already retired)"
            },
            export.decisions.len(),
            DECISION_LOG,
            stored.sha256
        ),
        artifacts: vec![stored],
        ..StepOutput::default()
    }))
}

/// Retires the realm in its own core, through the cluster it runs in; `None` when that cluster
/// no longer exists.
async fn in_realm(ctx: &Ctx<'_>, realm: &str) -> Result<Option<Export>, Failure> {
    // The realm's cluster: the one its install created, else the one it adopted.
    let mut clusters: Vec<_> = ctx
        .realm
        .inventory
        .iter()
        .filter(|o| o.kind == ResourceKind::Cluster)
        .collect();
    clusters.sort_by_key(|o| o.created != CreatedBy::ThisRealm);
    let Some(cluster) = clusters.first() else {
        return Ok(None);
    };
    match ctx.cloud()?.cluster(&cluster.cluster).await? {
        Some(c) if c.status == Status::Active => {}
        _ => return Ok(None),
    }
    let mut conn = ClusterConn::open(ctx, &cluster.cluster).await?;
    let api = conn.api().await?;
    let core = Core::connect(api.as_ref(), Role::Admin)
        .await
        .map_err(core_failure)?;
    let export = core.retire(realm).await.map_err(core_failure)?;
    export.map(Some).map_err(seed_failure)
}

fn seed_failure(e: SeedError) -> Failure {
    Failure::judged(e.retryable(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_realm_is_retired_where_it_was_seeded_with_this_runs_token() {
        let local = Target::Local {
            db: "/elsewhere.db".into(),
        };
        let seeded_local = Seeded::Local {
            db: "/state/quota.db".into(),
        };
        assert!(matches!(
            target_for(&seeded_local, &local),
            Ok(Target::Local { db }) if db == std::path::Path::new("/state/quota.db")
        ));
        assert!(matches!(
            target_for(&Seeded::InRealm, &local),
            Ok(Target::InRealm)
        ));
        let url = "https://quota.example.com";
        let remote = Target::Remote {
            url: url.into(),
            token: Secret::new("t"),
        };
        let seeded_remote = Seeded::Remote { url: url.into() };
        assert!(matches!(
            target_for(&seeded_remote, &remote),
            Ok(Target::Remote { url: u, .. }) if u == url
        ));
        for given in [
            local,
            Target::Remote {
                url: "https://other.example.com".into(),
                token: Secret::new("t"),
            },
        ] {
            let e = target_for(&seeded_remote, &given).unwrap_err();
            assert!(e.contains("--quota-url https://quota.example.com"), "{e}");
        }
    }
}
