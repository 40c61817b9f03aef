//! Carrying out one step: the action implementations.
//!
//! Each action gathers facts or makes one change and returns what happened as a value; the
//! engine journals it. Actions must tolerate being run again after a crash (create or adopt):
//! checks are read-only, rendering is deterministic and stores under a fresh run folder, and
//! seeding writes the same config twice to the same effect.

use super::EngineObserver;
use super::action::Action;
use super::artifacts;
use super::event::{FailureKind, StepOutput};
use super::playbook::StepDef;
use super::state::State;
use super::store::Store;
use crate::checks::{Category, CheckResult, Status};
use crate::preflight;
use crate::quota::{self, seed};
use crate::spec::Spec;

/// Everything a step may use.
pub struct Ctx<'a> {
    /// The realm spec.
    pub spec: &'a Spec,
    /// The step.
    pub step: &'a StepDef,
    /// Its phase.
    pub phase: u8,
    /// Digest of its inputs.
    pub input_digest: &'a str,
    /// The run number.
    pub run: u32,
    /// The journal's state before the step (approvals).
    pub state: &'a State,
    /// Run options.
    pub opts: &'a super::RunOptions,
    /// The artifact store.
    pub store: &'a Store,
    /// Progress.
    pub observer: &'a dyn EngineObserver,
}

/// What a step attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// Done.
    Done(StepOutput),
    /// Nothing to do.
    Skipped(String),
    /// Waits for someone.
    Waiting {
        /// Who must act.
        owner: &'static str,
        /// What they must do.
        reason: String,
    },
}

/// A failed attempt.
#[derive(Debug)]
pub struct Failure {
    /// How it failed.
    pub kind: FailureKind,
    /// What went wrong, with the fix.
    pub message: String,
    /// Evidence gathered before failing.
    pub output: Option<StepOutput>,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Permanent,
            message: message.into(),
            output: None,
        }
    }
}

/// Runs one attempt of the step in `ctx`.
pub async fn run(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    match ctx.step.action {
        Action::SpecValidate => spec_validate(ctx),
        Action::VpnPrerequisites if !ctx.spec.vpn.enabled => Ok(Outcome::Skipped(
            "the realm has no VPN (vpn.enabled: false)".into(),
        )),
        Action::VpnPrerequisites => checks(ctx, Category::Vpn, FailureKind::Permanent).await,
        Action::NodeImageAcceptance => node_image(ctx).await,
        Action::ChecksCertificate => {
            checks(ctx, Category::Certificate, FailureKind::Permanent).await
        }
        // Names not yet propagated and flaky resolvers are the usual DNS failures.
        Action::ChecksDns => checks(ctx, Category::Dns, FailureKind::Retryable).await,
        Action::ChecksOutbound => checks(ctx, Category::Outbound, FailureKind::Retryable).await,
        Action::ArtifactsRender => {
            let files = artifacts::install_artifacts(ctx.spec)
                .map_err(|e| Failure::permanent(e.to_string()))?;
            store_all(ctx, files, "install artifacts").await
        }
        Action::RolesRender => {
            let doc = artifacts::roles_document(ctx.spec)
                .map_err(|e| Failure::permanent(e.to_string()))?;
            store_all(ctx, vec![doc], "roles-and-resources document").await
        }
        Action::QuotaSeed => quota_seed(ctx).await,
        Action::CloudAccount
        | Action::CloudCredentials
        | Action::CloudPermissions
        | Action::ClusterApply
        | Action::ClusterWait => Err(Failure {
            kind: FailureKind::Unavailable,
            message: format!(
                "action {} needs cloud provider support, which is not in this build",
                ctx.step.action
            ),
            output: None,
        }),
        #[cfg(feature = "test-actions")]
        Action::TestEffect | Action::TestFlaky | Action::TestNoop => super::testing::run(ctx).await,
    }
}

fn spec_validate(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    // The spec was validated when the run started; read it again so the journal proves the
    // file on disk was valid when this step ran.
    let again = crate::spec::load(&ctx.spec.path).map_err(|e| {
        Failure::permanent(format!(
            "the spec changed on disk during the run and is no longer valid:\n{e}"
        ))
    })?;
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "spec valid: realm {} on {} {}, {} required names, {} outbound targets",
            again.name,
            again.cloud.provider,
            again.cloud.region,
            again.domains.required_names().len(),
            again.outbound.targets.len()
        ),
        ..StepOutput::default()
    }))
}

async fn run_category(ctx: &Ctx<'_>, category: Category) -> Vec<CheckResult> {
    let o = &ctx.opts.checks;
    let opts = preflight::Options {
        only: Some(vec![category]),
        concurrency: o.concurrency,
        proxy_auth: o.proxy_auth.clone(),
        now: o.now,
        public_roots: o.public_roots.clone(),
    };
    match preflight::run(ctx.spec, &opts, ctx.observer).await {
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

async fn checks(
    ctx: &Ctx<'_>,
    category: Category,
    on_fail: FailureKind,
) -> Result<Outcome, Failure> {
    let results = run_category(ctx, category).await;
    let summary = summarise(&results, &format!("{} checks", category.title()));
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| format!("  {}: {}", r.subject, r.message))
        .collect();
    let output = StepOutput {
        summary: summary.clone(),
        checks: results,
        artifacts: Vec::new(),
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
            output: Some(output),
        })
    }
}

async fn node_image(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let results = run_category(ctx, Category::Spec).await;
    let done = |summary: String, results| {
        Ok(Outcome::Done(StepOutput {
            summary,
            checks: results,
            artifacts: Vec::new(),
        }))
    };
    if results.iter().all(|r| r.status != Status::Fail) {
        return done(
            results
                .first()
                .map(|r| r.message.clone())
                .unwrap_or_default(),
            results,
        );
    }
    if let Some(a) = ctx.state.approval_for(ctx.phase, ctx.input_digest) {
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
        owner: "customer",
        reason: format!(
            "a custom node image is the customer's responsibility and no acceptance is recorded; the customer accepts it with `realmctl approve --phase {} --by NAME --note \"we maintain the custom node image\"` (or sets nodeImage.acceptedBy/acceptedAt in the spec)",
            ctx.phase
        ),
    })
}

async fn store_all(
    ctx: &Ctx<'_>,
    files: Vec<artifacts::Rendered>,
    what: &str,
) -> Result<Outcome, Failure> {
    let mut refs = Vec::new();
    for f in &files {
        let r = ctx
            .store
            .put(&ctx.spec.name, ctx.run, f)
            .await
            .map_err(|e| Failure {
                kind: if e.retryable() {
                    FailureKind::Retryable
                } else {
                    FailureKind::Permanent
                },
                message: e.to_string(),
                output: None,
            })?;
        refs.push(r);
    }
    Ok(Outcome::Done(StepOutput {
        summary: format!("{} {what} stored", refs.len()),
        checks: Vec::new(),
        artifacts: refs,
    }))
}

async fn quota_seed(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let target = ctx.opts.quota_target.clone();
    let realm = ctx.spec.name.clone();
    let config = quota::config_from_spec(&ctx.spec.subscription);
    let actor = format!("realmctl install (operator {})", ctx.opts.operator);
    let where_ = match &target {
        seed::Target::Local { db } => format!("local ledger {}", db.display()),
        seed::Target::Remote { url, .. } => format!("quota service {url}"),
    };
    let result =
        tokio::task::spawn_blocking(move || seed::seed(&target, &realm, config, &actor)).await;
    match result {
        Ok(Ok(())) => Ok(Outcome::Done(StepOutput {
            summary: format!(
                "quota config seeded into the {where_}: {} pipeline subscriptions, {} extra Test RTUs, {} extra Prod RTUs",
                config.pipeline_subscriptions, config.extra_test_rtus, config.extra_prod_rtus
            ),
            ..StepOutput::default()
        })),
        Ok(Err(e)) => {
            let kind = match &e {
                seed::SeedError::Unreachable { .. } => FailureKind::Retryable,
                seed::SeedError::Rejected { status, .. } if *status >= 500 => {
                    FailureKind::Retryable
                }
                _ => FailureKind::Permanent,
            };
            Err(Failure {
                kind,
                message: e.to_string(),
                output: None,
            })
        }
        Err(join) => Err(Failure::permanent(format!(
            "quota seeding panicked: {join}"
        ))),
    }
}
