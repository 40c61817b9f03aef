//! What a step attempt is given ([`Ctx`]) and what it comes to ([`Outcome`] or [`Failure`]).
//!
//! Its own module so the actions, the engine and the test actions all depend on it and it on
//! none of them. Blocking work goes through [`Ctx::blocking`] ([`BlockingGate`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use futures::future::LocalBoxFuture;

pub use super::blocking::{BlockingFailed, BlockingGate};
use super::model::approval::Approval;
use super::model::output::{FailureKind, Intent, StepOutput};
use super::options::RunOptions;
use crate::checks::{self, Category, CheckResult, Owner};
use crate::cloud::{Cloud, CloudError, CloudErrorKind};
use crate::spec::Spec;

/// What a step tells the engine while it runs.
pub trait StepRecorder {
    /// Journals (fsync'd) a change the step is about to make, before it makes it.
    fn intent<'a>(&'a self, intent: &'a Intent) -> LocalBoxFuture<'a, Result<(), Failure>>;
    /// Tells the operator how the step is going (e.g. a cluster still CREATING).
    fn progress(&self, message: &str);
    /// Test builds: the crash tests may kill the process here (`STEP:at:LABEL`).
    fn kill_point(&self, label: &str);
}

/// What an apply step left in earlier runs: the inventory of its last output, and every object
/// its intents announced (over all runs).
#[derive(Debug, Default)]
pub struct Applied<'a> {
    /// The last inventory.
    pub inventory: Option<&'a crate::platform::plan::Inventory>,
    /// Objects announced by intents.
    pub announced: Vec<crate::platform::ObjectRef>,
}

/// The one message for a cloud action in a run without a cloud provider.
pub const NO_CLOUD_PROVIDER: &str = "needs a cloud provider for the realm's cloud, and this run has none (not in this build, or not configured)";

/// A step's parameters, as written in the playbook.
pub type Params = BTreeMap<String, serde_json::Value>;

/// Everything a step attempt may use.
pub struct Ctx<'a> {
    /// The realm spec.
    pub spec: &'a Spec,
    /// What this step applied in earlier runs, as the journal holds it.
    pub history: Applied<'a>,
    /// What the journal says the realm holds, and the approved destroy plan (`destroy`).
    pub realm: &'a super::model::teardown::RealmFacts,
    /// The step id.
    pub step: &'a str,
    /// Its parameters (checked against the action's definition when the playbook loaded).
    pub params: &'a Params,
    /// Its phase.
    pub phase: u8,
    /// Digest of its inputs.
    pub input_digest: &'a str,
    /// The run number.
    pub run: u32,
    /// An approval of this phase that covers this step's inputs, if one is recorded.
    pub approval: Option<&'a Approval>,
    /// Every approval recorded so far (a step that builds a cluster finds the approval of the
    /// definition it is about to send).
    pub approvals: &'a [Approval],
    /// Run options.
    pub opts: &'a RunOptions,
    /// When this attempt must be done by.
    pub deadline: Instant,
    /// Check progress.
    pub checks: &'a dyn checks::Observer,
    /// Where blocking work runs.
    pub blocking: &'a BlockingGate,
    /// Intents, progress and kill points.
    pub record: &'a dyn StepRecorder,
    /// The realm's cloud, when this run has a provider for it.
    pub cloud: Option<&'a dyn Cloud>,
    /// The state folder (for files a step writes there, like the kubeconfig); `None` when
    /// the state is in a database.
    pub state_dir: Option<&'a Path>,
}

impl<'a> Ctx<'a> {
    /// A text parameter.
    pub fn text_param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(|v| v.as_str())
    }

    /// A count parameter.
    pub fn count_param(&self, name: &str) -> Option<u64> {
        self.params.get(name).and_then(|v| v.as_u64())
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The realm's cloud; a run without one cannot carry out this step.
    pub fn cloud(&self) -> Result<&'a dyn Cloud, Failure> {
        self.cloud.ok_or_else(|| Failure {
            kind: FailureKind::Unavailable,
            message: format!("step {}: {}", self.step, NO_CLOUD_PROVIDER),
            output: None,
        })
    }
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
        owner: Owner,
        /// What they must do.
        reason: String,
        /// What an approval must cover to let it pass, when not its inputs: the digest of
        /// exactly what someone was asked to do (the VPN's customer part, with the address
        /// the cloud gave).
        covers: Option<String>,
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
    pub output: Option<Box<StepOutput>>,
}

impl Failure {
    /// A failure that another attempt would not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Permanent,
            message: message.into(),
            output: None,
        }
    }

    /// A failure another attempt may not have.
    pub fn retryable(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Retryable,
            message: message.into(),
            output: None,
        }
    }

    /// [`Failure::retryable`] when `retryable` (as the error that caused it says), else
    /// [`Failure::permanent`].
    pub fn judged(retryable: bool, message: impl Into<String>) -> Self {
        if retryable {
            Failure::retryable(message)
        } else {
            Failure::permanent(message)
        }
    }
}

impl From<BlockingFailed> for Failure {
    fn from(e: BlockingFailed) -> Self {
        Failure::permanent(e.to_string())
    }
}

impl From<CloudError> for Failure {
    /// A cloud error: retryable when its kind is; the error is also evidence, owned by the
    /// customer when the customer must fix it (a permission, a quota) and by Digibee otherwise.
    fn from(e: CloudError) -> Self {
        let owner = match e.kind {
            CloudErrorKind::AccessDenied | CloudErrorKind::QuotaExceeded => Owner::Customer,
            _ => Owner::Digibee,
        };
        let fix = e
            .kind
            .help()
            .unwrap_or("see the message; run the step again once it is fixed");
        let evidence = CheckResult::fail(
            format!("cloud.{}", e.operation),
            Category::Access,
            e.operation.clone(),
            e.to_string(),
            fix,
        )
        .owned_by(owner);
        Failure {
            kind: if e.kind == CloudErrorKind::Unsupported {
                FailureKind::Unavailable
            } else if e.kind.retryable() {
                FailureKind::Retryable
            } else {
                FailureKind::Permanent
            },
            message: e.to_string(),
            output: Some(Box::new(StepOutput {
                summary: format!("{} ({})", e.operation, e.kind),
                checks: vec![evidence],
                ..StepOutput::default()
            })),
        }
    }
}
