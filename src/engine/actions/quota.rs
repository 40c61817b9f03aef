//! `quota.seed`, after `platform.apply` in phase 6: writes the realm's subscription config into
//! the enforcement core: by default the realm's own core in its cluster (through the API
//! server's service proxy, with the admin token kept there), or a local ledger, or a running
//! core over HTTPS with an admin token. Seeding the same config twice has the same effect, so
//! a resumed run may seed again.

use std::time::Duration;

use super::cluster_api::{ClusterConn, failure};
use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::StepOutput;
use crate::platform::core::{Core, CoreError, Role};
use crate::quota::model::RealmConfig;
use crate::quota::seed::{SEEDED_FACT, SeedError, Target};
use crate::quota::{self, seed};

/// `quota.seed`.
pub const SEED: ActionDef = ActionDef {
    name: "quota.seed",
    summary: "seeds the realm's subscription config into the enforcement core (by default the realm's own, in its cluster)",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 3,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Subscription),
        Input::QuotaTarget,
        // The realm's own core is found through the approved cluster.
        Input::Definition,
    ],
    run: run_fn!(run),
};

/// Seeds the realm's own core: its admin token from the cluster, the config through the
/// service proxy.
async fn in_realm(ctx: &Ctx<'_>, config: &RealmConfig) -> Result<Result<(), SeedError>, Failure> {
    let (def, _) = super::cloud::approved_definition(ctx)?;
    let mut conn = ClusterConn::open(ctx, def.name()).await?;
    let api = conn.api().await?;
    let core = Core::connect(api.as_ref(), Role::Admin)
        .await
        .map_err(core_failure)?;
    core.seed(&ctx.spec.name, config)
        .await
        .map_err(core_failure)
}

/// A failure to reach the core as a step failure.
pub(super) fn core_failure(e: CoreError) -> Failure {
    match e {
        CoreError::Kube(k) => failure(k),
        CoreError::Answer { status, .. } if status >= 500 => Failure::retryable(e.to_string()),
        other => Failure::permanent(other.to_string()),
    }
}

async fn run(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let target = ctx.opts.quota_target.clone();
    let realm = ctx.spec.name.clone();
    let config = quota::config_from_spec(&ctx.spec.subscription);
    let actor = format!("realmctl install (operator {})", ctx.opts.operator);
    let where_ = target.describe();
    let seeded = target.seeded();
    // The blocking call gets the attempt's remaining time, so it ends by the step's deadline.
    let limit = ctx.remaining();
    let result = match target {
        Target::InRealm => in_realm(ctx, &config).await?,
        target => {
            ctx.blocking
                .run(move || seed::seed(&target, &realm, config, &actor, limit))
                .await?
        }
    };
    match result {
        Ok(()) => Ok(Outcome::Done(StepOutput {
            // Where the realm lives in the enforcement core: `destroy.retire` retires it there.
            facts: Some(serde_json::json!({ SEEDED_FACT: seeded })),
            ..StepOutput::summary(format!(
                "quota config seeded into the {where_}: {} pipeline subscriptions, {} extra Test RTUs, {} extra Prod RTUs",
                config.pipeline_subscriptions, config.extra_test_rtus, config.extra_prod_rtus
            ))
        })),
        Err(e) => Err(Failure::judged(e.retryable(), e.to_string())),
    }
}
