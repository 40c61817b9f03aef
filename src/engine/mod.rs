//! The install workflow engine: walks a realm through the six phases of a [`playbook`],
//! journaling every step in a hash-chained SQLite [`journal`] under the state folder.
//!
//! Plan, then execute: [`inputs`] digests what each step depends on, [`plan::build`] decides
//! (pure) what runs, [`run::install`] carries the plan out under the realm's [`lock`], one step
//! at a time, and resumes at the first incomplete step after any crash. [`audit`] verifies the
//! chain; [`report`] renders what happened for auditors.

pub mod action;
pub mod artifacts;
pub mod audit;
pub mod event;
mod exec;
pub mod inputs;
pub mod journal;
pub mod lock;
#[cfg(feature = "object-store")]
pub mod object;
pub mod plan;
pub mod playbook;
pub mod report;
pub mod run;
pub mod state;
pub mod store;
#[cfg(feature = "test-actions")]
mod testing;

use std::sync::Arc;
use std::time::Duration;

use ::time::OffsetDateTime;
use rustls_pki_types::TrustAnchor;

use crate::checks::outbound::ProxyAuth;
use crate::quota::seed;
use event::{FailureKind, StepOutput};
use playbook::{Phase, StepDef};

/// A clock, injectable so reports can be snapshot-tested.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// Options of the network and certificate checks run as steps.
#[derive(Clone)]
pub struct CheckOptions {
    /// Outbound targets checked at once.
    pub concurrency: usize,
    /// Proxy credentials, read by the CLI from the variable the spec names.
    pub proxy_auth: Option<ProxyAuth>,
    /// The time certificate dates are judged by.
    pub now: OffsetDateTime,
    /// Roots a served chain must verify to (default: Mozilla's).
    pub public_roots: Option<Arc<Vec<TrustAnchor<'static>>>>,
}

/// Where a run stops on purpose (test builds only): the process kills itself with SIGKILL.
#[cfg(feature = "test-actions")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillAt {
    /// Step id.
    pub step: String,
    /// `started`, `acted` or `succeeded` (or `opened` with an empty step: right after the journal opens).
    pub point: String,
}

/// How to run `install`.
#[derive(Clone)]
pub struct RunOptions {
    /// Who runs it (recorded).
    pub operator: String,
    /// Stop after this phase.
    pub until: Option<u8>,
    /// Check options.
    pub checks: CheckOptions,
    /// Where `quota.seed` writes.
    pub quota_target: seed::Target,
    /// The artifact store.
    pub store: store::Store,
    /// First retry back-off (doubles each attempt).
    pub retry_base: Duration,
    /// The clock.
    pub clock: Clock,
    /// Test builds: kill the process at this point.
    #[cfg(feature = "test-actions")]
    pub kill_at: Option<KillAt>,
}

/// How a step ended, for observers.
#[derive(Debug)]
pub enum StepEnd<'a> {
    /// Succeeded.
    Succeeded(&'a StepOutput),
    /// Nothing to do.
    Skipped(&'a str),
    /// Already done in an earlier run.
    AlreadyDone,
    /// Failed; `retry_in` when another attempt follows.
    Failed {
        /// How.
        kind: FailureKind,
        /// What went wrong.
        message: &'a str,
        /// Back-off before the next attempt.
        retry_in: Option<Duration>,
    },
    /// Waits for someone.
    Waiting {
        /// Who.
        owner: &'a str,
        /// What.
        reason: &'a str,
    },
}

/// Receives progress while the engine runs; every method defaults to doing nothing.
pub trait EngineObserver: crate::checks::Observer {
    /// A phase begins.
    fn on_phase_start(&self, _phase: &Phase) {}
    /// A step attempt begins.
    fn on_step_start(&self, _step: &StepDef, _attempt: u32) {}
    /// A step ended (or was already done).
    fn on_step_end(&self, _step: &StepDef, _end: &StepEnd<'_>) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl crate::checks::Observer for Quiet {}
impl EngineObserver for Quiet {}

/// Specs for unit tests: a spec from `realmctl init` in a temporary folder with certificate
/// files present.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::spec::{Provider, Spec};

    /// Writes the init spec for `provider` with `base` and loads it.
    pub fn spec(provider: Provider, base: &str) -> (tempfile::TempDir, Spec) {
        let dir = tempfile::tempdir().unwrap();
        let text = crate::spec::init::render(provider, "acme", base).unwrap();
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/wildcard.pem"), "cert").unwrap();
        std::fs::write(dir.path().join("certs/wildcard.key"), "key").unwrap();
        let path = dir.path().join("realm.yaml");
        std::fs::write(&path, text).unwrap();
        let spec = crate::spec::load(&path).unwrap();
        (dir, spec)
    }
}
