//! How to run `install`: [`RunOptions`], built by [`RunOptions::new`] with defaults for
//! everything but who runs it, where artifacts go and where the quota config goes. The CLI
//! reads the environment and fills these in; the library never reads the environment.

use std::sync::Arc;
use std::time::Duration;

use ::time::OffsetDateTime;
use rustls_pki_types::TrustAnchor;

use super::io::store::Store;
use crate::checks::outbound::ProxyAuth;
use crate::cloud::Cloud;
use crate::quota::seed;
use crate::spec::Provider;

/// What a run can offer the actions (decides which actions are available).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The cloud this run has a provider for.
    pub cloud: Option<Provider>,
}

/// A clock, injectable so reports can be snapshot-tested.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// Options of the network and certificate checks run as steps.
#[derive(Clone)]
pub struct CheckOptions {
    /// Outbound targets checked at once (`None`: all at once, bounded by the open-file limit).
    pub concurrency: Option<usize>,
    /// Proxy credentials, read by the CLI from the variable the spec names.
    pub proxy_auth: Option<ProxyAuth>,
    /// The time certificate dates are judged by.
    pub now: OffsetDateTime,
    /// Roots a served chain must verify to (default: Mozilla's).
    pub public_roots: Option<Arc<Vec<TrustAnchor<'static>>>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            concurrency: None,
            proxy_auth: None,
            now: OffsetDateTime::now_utc(),
            public_roots: None,
        }
    }
}

/// Makes the Kubernetes client for a cluster endpoint.
pub use crate::platform::session::Connector as KubeConnector;

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
    pub store: Store,
    /// First retry back-off (doubles each attempt, up to a minute).
    pub retry_base: Duration,
    /// The clock.
    pub clock: Clock,
    /// The realm's cloud (`None`: the cloud steps cannot run, and `plan` says so).
    pub cloud: Option<Arc<dyn Cloud>>,
    /// How the cluster steps poll (default: [`crate::cloud::poll::WAIT`]).
    pub poll: crate::cloud::poll::Backoff,
    /// Signs every journal record of the run (`None`: unsigned records).
    pub signing_key: Option<Arc<crate::signing::SigningKey>>,
    /// `platform.apply` takes fields another field manager owns instead of stopping on the
    /// conflict (the operator's explicit `--force-conflicts`).
    pub force_conflicts: bool,
    /// How the in-cluster steps reach a cluster's API (default: kube-rs, [`crate::platform::session::kube_rs`]).
    pub kube: KubeConnector,
    /// What `destroy` deletes beyond the default (`--delete-volumes`): an input of the destroy
    /// plan, so a change needs a new approval.
    pub teardown: crate::cloud::teardown::SweepOptions,
    /// The port `realm.live` reaches the ingress address on (default 443; a test's edge
    /// listens elsewhere on loopback).
    pub ingress_port: u16,
    /// Test builds: kill the process at this point.
    #[cfg(feature = "test-actions")]
    pub kill_at: Option<KillPoint>,
}

impl RunOptions {
    /// Options for `operator`, storing artifacts in `store` and seeding `quota_target`; the
    /// rest default: no `--until`, default check options, 2 s first back-off, system clock.
    pub fn new(operator: impl Into<String>, store: Store, quota_target: seed::Target) -> Self {
        RunOptions {
            operator: operator.into(),
            until: None,
            checks: CheckOptions::default(),
            quota_target,
            store,
            retry_base: Duration::from_secs(2),
            clock: system_clock(),
            cloud: None,
            poll: crate::cloud::poll::WAIT,
            signing_key: None,
            force_conflicts: false,
            kube: crate::platform::session::kube_rs(),
            ingress_port: 443,
            teardown: crate::cloud::teardown::SweepOptions::default(),
            #[cfg(feature = "test-actions")]
            kill_at: None,
        }
    }

    /// What this run can offer the actions.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            cloud: self.cloud.as_ref().map(|c| c.provider()),
        }
    }
}

/// Where a test run kills itself with SIGKILL (test builds only).
#[cfg(feature = "test-actions")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillPoint {
    /// Right after the journal is opened, before the run's first record.
    Opened,
    /// After the step's start is journaled.
    Started(String),
    /// After the step's action returned, before its end is journaled.
    Acted(String),
    /// After the step's success is journaled.
    Succeeded(String),
    /// Inside the step, where its action says `label` (e.g. between a create call and its
    /// journal record).
    At(String, String),
    /// After a failed attempt is journaled, before its retry is.
    Failed(String),
    /// After the retry is journaled, during the back-off.
    Retried(String),
    /// At phase N's gate, after the journal was read again, before anything is written.
    GateChecked(u8),
    /// After phase N's gate-waiting record is journaled.
    GateWaiting(u8),
    /// Before the run's stop record.
    Stopping,
    /// After the run's stop record is journaled, before the lock is released.
    Stopped,
    /// `approve`: after the approval is journaled, before anything is printed.
    Approved,
}

#[cfg(feature = "test-actions")]
impl std::str::FromStr for KillPoint {
    type Err = String;
    /// `opened`, `stopping`, `stopped`, `approved`, `gate:N:checked`, `gate:N:waiting`,
    /// `STEP:started|acted|succeeded|failed|retried`, or `STEP:at:LABEL`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "opened" => return Ok(KillPoint::Opened),
            "stopping" => return Ok(KillPoint::Stopping),
            "stopped" => return Ok(KillPoint::Stopped),
            "approved" => return Ok(KillPoint::Approved),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("gate:") {
            let (n, point) = rest
                .split_once(':')
                .ok_or_else(|| format!("kill point `{s}`: write gate:N:checked|waiting"))?;
            let n: u8 = n
                .parse()
                .map_err(|_| format!("kill point `{s}`: N is a phase number"))?;
            return match point {
                "checked" => Ok(KillPoint::GateChecked(n)),
                "waiting" => Ok(KillPoint::GateWaiting(n)),
                _ => Err(format!(
                    "kill point `{s}`: the gate point is checked or waiting"
                )),
            };
        }
        if let Some((step, label)) = s.split_once(":at:") {
            return Ok(KillPoint::At(step.to_owned(), label.to_owned()));
        }
        let (step, point) = s
            .split_once(':')
            .ok_or_else(|| format!("kill point `{s}`: write opened or STEP:POINT"))?;
        let step = step.to_owned();
        match point {
            "started" => Ok(KillPoint::Started(step)),
            "acted" => Ok(KillPoint::Acted(step)),
            "succeeded" => Ok(KillPoint::Succeeded(step)),
            "failed" => Ok(KillPoint::Failed(step)),
            "retried" => Ok(KillPoint::Retried(step)),
            _ => Err(format!(
                "kill point `{s}`: the point is started, acted, succeeded, failed or retried"
            )),
        }
    }
}

/// Kills this process with SIGKILL (crash tests).
#[cfg(feature = "test-actions")]
pub fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}
