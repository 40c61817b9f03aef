//! Phase-1 actions about the spec itself: `spec.validate` re-reads and validates the spec file;
//! `node_image.acceptance` passes for the default node image, or for a custom one whose
//! acceptance by the customer is recorded (in the spec, or by `realmctl approve --phase 1`),
//! and otherwise waits on the customer.

use std::time::Duration;

use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::checks::{Category, CheckResult, Owner, Status};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::StepOutput;

/// `spec.validate`.
pub const VALIDATE: ActionDef = ActionDef {
    name: "spec.validate",
    summary: "re-reads and validates the spec file",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[],
    inputs: &[Input::Spec],
    run: run_fn!(validate),
};

/// `node_image.acceptance`.
pub const NODE_IMAGE: ActionDef = ActionDef {
    name: "node_image.acceptance",
    summary: "a custom node image needs the customer's recorded acceptance",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[],
    inputs: &[Input::Part(SpecPart::NodeImage)],
    run: run_fn!(node_image),
};

async fn validate(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    // The spec was validated when the run started; read it again so the journal proves the
    // file on disk was valid when this step ran.
    let path = ctx.spec.path.clone();
    let again = ctx
        .blocking
        .run(move || crate::spec::load(&path))
        .await?
        .map_err(|e| {
            Failure::permanent(format!(
                "the spec changed on disk during the run and is no longer valid:\n{e}"
            ))
        })?;
    let problems = crate::cloud::access::definition_problems(&again);
    if !problems.is_empty() {
        return Err(Failure::permanent(format!(
            "the {} cluster definition of this spec would be refused by the cloud: {}",
            again.cloud.provider,
            problems.join("; ")
        )));
    }
    Ok(Outcome::Done(StepOutput::summary(format!(
        "spec valid: realm {} on {} {}, {} required names, {} outbound targets",
        again.name,
        again.cloud.provider,
        again.cloud.region,
        again.domains.required_names().len(),
        again.outbound.targets.len()
    ))))
}

async fn node_image(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let results = super::checks::run_category(ctx, Category::Spec).await;
    let done = |summary: String, checks| {
        Ok(Outcome::Done(StepOutput {
            summary,
            checks,
            ..StepOutput::default()
        }))
    };
    if results.iter().all(|r| r.status != Status::Fail) {
        let summary = results
            .first()
            .map(|r| r.message.clone())
            .unwrap_or_default();
        return done(summary, results);
    }
    if let Some(a) = ctx.approval {
        let results = results
            .into_iter()
            .map(|r| {
                CheckResult::pass(
                    r.id,
                    r.category,
                    r.subject,
                    format!(
                        "custom node image; responsibility accepted by {} at {} (journal record {})",
                        a.by, a.at, a.seq
                    ),
                )
            })
            .collect();
        return done(
            format!("custom node image accepted by {} at {}", a.by, a.at),
            results,
        );
    }
    Ok(Outcome::Waiting {
        owner: Owner::Customer,
        reason: format!(
            "a custom node image is the customer's responsibility and no acceptance is recorded; the customer accepts it with `realmctl approve --phase {} --by NAME --note \"we maintain the custom node image\"` (or sets nodeImage.acceptedBy/acceptedAt in the spec)",
            ctx.phase
        ),
        covers: None,
    })
}
