//! `quota.seed`, the last step of phase 6: writes the realm's subscription config into the
//! enforcement core (a local ledger, or a running core over HTTPS with an admin token). Seeding
//! the same config twice has the same effect, so a resumed run may seed again.

use std::time::Duration;

use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{FailureKind, StepOutput};
use crate::quota::{self, seed};

/// `quota.seed`.
pub const SEED: ActionDef = ActionDef {
    name: "quota.seed",
    summary: "seeds the realm's subscription config into the enforcement core",
    needs: Needs::Nothing,
    timeout: Duration::from_secs(5 * 60),
    retries: 3,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Subscription),
        Input::QuotaTarget,
    ],
    run: run_fn!(run),
};

async fn run(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let target = ctx.opts.quota_target.clone();
    let realm = ctx.spec.name.clone();
    let config = quota::config_from_spec(&ctx.spec.subscription);
    let actor = format!("realmctl install (operator {})", ctx.opts.operator);
    let where_ = target.describe();
    // The blocking call gets the attempt's remaining time, so it ends by the step's deadline.
    let limit = ctx.remaining();
    let result = ctx
        .blocking
        .run(move || seed::seed(&target, &realm, config, &actor, limit))
        .await?;
    match result {
        Ok(()) => Ok(Outcome::Done(StepOutput::summary(format!(
            "quota config seeded into the {where_}: {} pipeline subscriptions, {} extra Test RTUs, {} extra Prod RTUs",
            config.pipeline_subscriptions, config.extra_test_rtus, config.extra_prod_rtus
        )))),
        Err(e) => Err(Failure {
            kind: if e.retryable() {
                FailureKind::Retryable
            } else {
                FailureKind::Permanent
            },
            message: e.to_string(),
            output: None,
        }),
    }
}
