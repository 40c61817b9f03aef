//! The check actions: the preflight categories run as steps (`vpn.prerequisites` in phase 1;
//! `checks.certificate`, `checks.dns`, `checks.outbound` in phase 3). Their evidence — every
//! check result — is kept in the journal with the step's output or failure.

use std::time::Duration;

use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::checks::{Category, CheckResult, Status};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{FailureKind, StepOutput};
use crate::preflight;

/// `vpn.prerequisites`: skipped when the realm has no VPN.
pub const VPN: ActionDef = ActionDef {
    name: "vpn.prerequisites",
    summary: "the realm VPN checks (skipped without a VPN)",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[],
    inputs: &[Input::Part(SpecPart::Vpn)],
    run: run_fn!(vpn),
};

/// `checks.certificate`.
pub const CERTIFICATE: ActionDef = ActionDef {
    name: "checks.certificate",
    summary: "the wildcard certificate checks",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Certificate),
        Input::Part(SpecPart::Domains),
        Input::CertificateFiles,
    ],
    run: run_fn!(certificate),
};

/// `checks.dns`: names not yet propagated and flaky resolvers are the usual failures, so they
/// are retried.
pub const DNS: ActionDef = ActionDef {
    name: "checks.dns",
    summary: "the DNS checks of the required names",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(10 * 60),
    retries: 2,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Certificate),
        Input::Part(SpecPart::Domains),
        Input::Part(SpecPart::NetTimeout),
        Input::CertificateFiles,
    ],
    run: run_fn!(dns),
};

/// `checks.outbound`.
pub const OUTBOUND: ActionDef = ActionDef {
    name: "checks.outbound",
    summary: "the outbound-host checks",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(10 * 60),
    retries: 1,
    params: &[],
    inputs: &[Input::Part(SpecPart::Outbound)],
    run: run_fn!(outbound),
};

async fn vpn(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    if !ctx.spec.vpn.enabled {
        return Ok(Outcome::Skipped(
            "the realm has no VPN (vpn.enabled: false)".into(),
        ));
    }
    judged(ctx, Category::Vpn, FailureKind::Permanent).await
}

async fn certificate(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    judged(ctx, Category::Certificate, FailureKind::Permanent).await
}

async fn dns(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    judged(ctx, Category::Dns, FailureKind::Retryable).await
}

async fn outbound(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    judged(ctx, Category::Outbound, FailureKind::Retryable).await
}

/// Runs one preflight category for the step's spec.
pub(super) async fn run_category(ctx: &Ctx<'_>, category: Category) -> Vec<CheckResult> {
    let o = &ctx.opts.checks;
    let opts = preflight::Options {
        only: Some(vec![category]),
        concurrency: o.concurrency,
        proxy_auth: o.proxy_auth.clone(),
        now: o.now,
        public_roots: o.public_roots.clone(),
        cloud: None,
        access_step_deadline: preflight::ACCESS_STEP_DEADLINE,
    };
    match preflight::run(ctx.spec, &opts, ctx.checks).await {
        Ok(r) => r.checks,
        Err(e) => vec![CheckResult::fail(
            format!("{category}.unavailable"),
            category,
            category.as_str(),
            e.to_string(),
            "see the message",
        )],
    }
}

fn summarise(results: &[CheckResult], what: &str) -> String {
    let count = |s| results.iter().filter(|r| r.status == s).count();
    format!(
        "{what}: {} pass, {} warn, {} fail",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    )
}

/// Runs a category and turns failing checks into a failure of kind `on_fail`, with the
/// evidence attached either way.
async fn judged(
    ctx: &Ctx<'_>,
    category: Category,
    on_fail: FailureKind,
) -> Result<Outcome, Failure> {
    let results = run_category(ctx, category).await;
    let what = format!("{} checks", category.title());
    outcome_of(results, &what, category, on_fail)
}

/// Check results as a step's end: done with the evidence, or a failure of kind `on_fail` naming
/// each failed check and pointing at `preflight --only category` for the fixes (the evidence
/// says who must fix it).
pub(super) fn outcome_of(
    results: Vec<CheckResult>,
    what: &str,
    category: Category,
    on_fail: FailureKind,
) -> Result<Outcome, Failure> {
    let summary = summarise(&results, what);
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| format!("  {}: {}", r.subject, r.message))
        .collect();
    let output = StepOutput {
        summary: summary.clone(),
        checks: results,
        ..StepOutput::default()
    };
    if failed.is_empty() {
        Ok(Outcome::Done(output))
    } else {
        Err(Failure {
            kind: on_fail,
            message: format!(
                "{summary}\n{}\n  help: `realmctl preflight --only {category} -f <spec>` shows each fix",
                failed.join("\n")
            ),
            output: Some(Box::new(output)),
        })
    }
}
