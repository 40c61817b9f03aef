//! Carrying out the plan: `install` and `unlock` (`approve` is [`super::approve`]), and reading a state folder for
//! `plan`, `status` and `report`.
//!
//! `install` takes the realm's lock, replays the journal, plans, and runs each step that is not
//! done, journaling its start (buffered) and its end (fsync'd) so that after any crash the next
//! run resumes at the first incomplete step and never re-runs a succeeded one. Journal commits,
//! the lock and local artifact writes run on the blocking pool, never on the async runtime.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::actions::Availability;
use super::ctx::{BlockingGate, Ctx, Failure, Outcome, StepRecorder};
use super::io::journal::{Durability, Journal, JournalError};
use super::io::lock::{self, Holder, LockError};
use super::io::state::{Guard, GuardError, StateRef};
use super::model::chain::Checkpoint;
use super::model::event::{Event, RunSubject, StopOutcome};
use super::model::inputs;
use super::model::next::{self, Next};
use super::model::output::{FailureKind, Intent, StepOutput};
use super::model::plan::{self, Plan, StepPlan};
use super::model::playbook::{Phase, Playbook, StepDef};
use super::model::record::{Record, timestamp};
use super::model::report::{self, InstallReport};
use super::model::state::{self, ApproveError, State};
use super::{EngineObserver, RunOptions, StepEnd};
use crate::crypto::sha256_hex;
use crate::fsutil;
use crate::signing::SigningKey;
use crate::spec::Spec;

pub use super::approve::{approve, import_approval};

/// Why the engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The lock of a state folder.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The lease of a state database.
    #[error(transparent)]
    Lease(#[from] super::io::db::lease::LeaseError),
    /// The journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The state folder belongs to another realm.
    #[error(
        "the state {at} belongs to realm `{state}`, but the spec is for realm `{spec}`\n  help: use one state folder (or database realm) per realm"
    )]
    RealmMismatch {
        /// The state.
        at: String,
        /// Realm of the state.
        state: String,
        /// Realm of the spec.
        spec: String,
    },
    /// Nothing has run in this state folder yet.
    #[error(
        "no install has run in {at} yet\n  help: run `realmctl install -f realm.yaml --state {at}` first"
    )]
    NoRun {
        /// The state.
        at: String,
    },
    /// `approve` had nothing to approve.
    #[error(transparent)]
    Approve(#[from] ApproveError),
    /// A customer's offline approval was refused.
    #[error(transparent)]
    Offline(#[from] super::model::offline::OfflineError),
    /// A destroy has begun deleting this realm: an install would build on what is going away.
    #[error(
        "realm `{realm}` is being destroyed (its destroy has begun deleting); install and upgrade do not run on it\n  help: finish it with `realmctl destroy -f realm.yaml --state {at}`, or install the realm again into a new state folder"
    )]
    Destroying {
        /// The state.
        at: String,
        /// The realm.
        realm: String,
    },
    /// The playbook given is not one of this command's workflow.
    #[error("the playbook `{name}` is a `{}` playbook, and this is `{}`\n  help: use `realmctl {}` for it, or a playbook of kind {}", found.command(), wanted.command(), found.command(), wanted.kind())]
    WrongWorkflow {
        /// The playbook's name.
        name: String,
        /// Its workflow.
        found: super::actions::Workflow,
        /// The command's.
        wanted: super::actions::Workflow,
    },
    /// `destroy --plan` or `upgrade --plan` could not survey the cloud.
    #[error("could not survey the realm's cloud for the plan: {0}")]
    Cloud(#[from] crate::cloud::CloudError),
    /// `destroy --plan` and `upgrade --plan` need the realm's cloud.
    #[error(
        "this command needs a cloud provider for the realm's cloud, and this run has none\n  help: use a build with the realm's cloud and credentials for it"
    )]
    NoCloud,
}

impl From<GuardError> for EngineError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Lock(l) => EngineError::Lock(l),
            GuardError::Lease(l) => EngineError::Lease(l),
        }
    }
}

/// How `install` ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// Run number.
    pub run: u32,
    /// Outcome.
    pub outcome: StopOutcome,
    /// One line for people.
    pub message: String,
    /// Who must act next, when waiting or failed.
    pub next: Option<Next>,
    /// The plan the run started from.
    pub plan: Plan,
    /// Steps executed in this run.
    pub executed: Vec<String>,
    /// Warnings given before the run (also told to the observer).
    pub warnings: Vec<String>,
}

/// Runs blocking journal or lock work without stalling the async runtime: on a multi-thread
/// runtime in place (`block_in_place` hands this worker's other tasks to another worker, with
/// no thread switch for the work itself: a step's two journal commits cost a thread hand-off
/// each otherwise), on a current-thread runtime on the blocking pool.
async fn blocking<T: Send + 'static, E: From<JournalError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return tokio::task::block_in_place(f);
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| E::from(JournalError::Task(e.to_string())))?
}

/// Reads the journal's events and folds them.
pub fn load_state(journal: &Journal) -> Result<State, JournalError> {
    let mut state = State::default();
    journal.for_each(|r| {
        state.apply(r.seq, &r.at, &r.event()?);
        Ok(())
    })?;
    Ok(state)
}

/// The state of `dir` read without writing anything; an empty state when no journal exists.
fn read_state(dir: &StateRef) -> Result<State, EngineError> {
    match Journal::open_read_only(dir) {
        Ok(j) => Ok(load_state(&j)?),
        Err(JournalError::Missing { .. } | JournalError::NoRealm { .. }) => Ok(State::default()),
        Err(e) => Err(e.into()),
    }
}

/// The plan for `spec` against the state folder, without side effects.
pub fn plan(
    dir: &StateRef,
    spec: &Spec,
    playbook: &Playbook,
    opts: &RunOptions,
) -> Result<Plan, EngineError> {
    let state = read_state(dir)?;
    check_realm(dir, &state, spec)?;
    Ok(plan_for(spec, playbook, &state, opts))
}

/// The destroy plan of `spec`'s realm in `dir` as the cloud stands now, without side effects
/// (`destroy --plan`): the same survey the `destroy.plan` step journals.
pub async fn destroy_plan(
    dir: &StateRef,
    spec: &Spec,
    opts: &RunOptions,
) -> Result<super::model::teardown::DestroyPlan, EngineError> {
    let state = read_state(dir)?;
    check_realm(dir, &state, spec)?;
    let cloud = opts.cloud.as_deref().ok_or(EngineError::NoCloud)?;
    let realm = super::model::inventory::facts(&state);
    Ok(super::teardown::survey(cloud, spec, &realm, opts.teardown).await?)
}

/// The upgrade of `spec`'s realm in `dir` as the cloud stands now, without side effects
/// (`upgrade --plan`): the same survey and pre-checks the `upgrade.plan` step journals. The
/// plan is `Some` only when every check passed.
pub async fn upgrade_plan(
    dir: &StateRef,
    spec: &Spec,
    opts: &RunOptions,
) -> Result<UpgradeAnswer, EngineError> {
    let state = read_state(dir)?;
    check_realm(dir, &state, spec)?;
    let cloud = opts.cloud.as_deref().ok_or(EngineError::NoCloud)?;
    let def = crate::cloud::access::definition(spec);
    let facts = super::upgrade::survey(cloud, &def, opts.kube.clone())
        .await?
        .ok_or_else(|| super::upgrade::no_cluster(def.name()))?;
    let (plan, checks) = super::model::upgrade::judge(&def, &facts);
    Ok(UpgradeAnswer {
        definition: def.digest(),
        plan,
        checks,
    })
}

/// What `upgrade --plan` answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeAnswer {
    /// The digest of the target definition (what the approval binds to).
    pub definition: String,
    /// The plan, when every pre-check passed.
    pub plan: Option<super::model::upgrade::UpgradePlan>,
    /// Every pre-check.
    pub checks: Vec<crate::checks::CheckResult>,
}

/// Refuses a playbook of another workflow than `wanted`.
pub fn check_workflow(
    playbook: &Playbook,
    wanted: super::actions::Workflow,
) -> Result<(), EngineError> {
    if playbook.workflow == wanted {
        return Ok(());
    }
    Err(EngineError::WrongWorkflow {
        name: playbook.name.clone(),
        found: playbook.workflow,
        wanted,
    })
}

/// The report model of a state folder (read-only: works on a read-only copy).
pub fn report(dir: &StateRef) -> Result<InstallReport, EngineError> {
    let j = Journal::open_read_only(dir)?;
    let mut state = State::default();
    let mut signatures = report::Signatures::default();
    j.for_each(|r| {
        let event = r.event()?;
        let keep = matches!(event, Event::Approved { .. });
        signatures.add(r.seq, r.signature.as_ref().map(|s| s.key.as_str()), keep);
        state.apply(r.seq, &r.at, &event);
        Ok(())
    })?;
    let head = j.head()?.map(|(seq, hash)| Checkpoint { seq, hash });
    // A live process holding the lock is a run in progress, not an interrupted one.
    let running = dir.running();
    report::build(&state, head, signatures, running.as_deref()).ok_or_else(|| EngineError::NoRun {
        at: dir.to_string(),
    })
}

fn check_realm(dir: &StateRef, state: &State, spec: &Spec) -> Result<(), EngineError> {
    // A database names its realm: the spec must be that realm's.
    if let StateRef::Database(r) = dir
        && r.realm() != spec.name
    {
        return Err(EngineError::RealmMismatch {
            at: dir.to_string(),
            state: r.realm().to_owned(),
            spec: spec.name.clone(),
        });
    }
    if let Some(s) = &state.subject
        && s.realm != spec.name
    {
        return Err(EngineError::RealmMismatch {
            at: dir.to_string(),
            state: s.realm.clone(),
            spec: spec.name.clone(),
        });
    }
    Ok(())
}

fn plan_for(spec: &Spec, playbook: &Playbook, state: &State, opts: &RunOptions) -> Plan {
    let digests = inputs::digests(spec, playbook, &opts.quota_target, opts.teardown);
    let changes = state
        .spec
        .as_ref()
        .map(|before| plan::diff(before, &inputs::spec_json(spec)))
        .unwrap_or_default();
    let definition = crate::cloud::access::definition(spec);
    let mut plan = plan::build(
        &spec.name,
        playbook,
        state,
        &digests,
        changes,
        opts.capabilities(),
        spec.cloud.provider,
        Some(&definition),
    );
    plan.cloud = Some(plan::CloudPlan {
        provider: spec.cloud.provider,
        via: opts.cloud.as_ref().map(|c| c.describe()),
        digest: definition.digest(),
        definition,
        pool: crate::cloud::access::pool_size(spec),
        policy_kind: crate::cloud::profile::of(spec).policy().kind,
        // The policy renders from embedded data and templates (unit-tested); a failure here
        // would be a build defect, shown as no policy rather than a failed plan.
        policy: crate::cloud::permissions::policy_document(spec).ok(),
        platform: platform_plan(spec, playbook, state),
    });
    plan
}

/// What `platform.apply` would apply and prune now, from the journal's last inventory and the
/// intents of the playbook's `platform.apply` step.
fn platform_plan(spec: &Spec, playbook: &Playbook, state: &State) -> plan::PlatformPlan {
    let want = crate::platform::definition::desired(spec);
    let (previous, announced) = playbook
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| s.action == crate::engine::actions::Action::PlatformApply)
        .and_then(|s| state.step_state(&s.id))
        .map(|h| h.applied())
        .unwrap_or_default();
    let d = crate::platform::plan::decide(&want, previous, &announced);
    plan::PlatformPlan {
        apply: d
            .apply
            .iter()
            .map(|i| (want[*i].planned.stage, want[*i].planned.object.clone()))
            .collect(),
        unchanged: d.unchanged.len(),
        prune: d.prune,
        left: d.left,
    }
}

/// The engine's side of a running step: intents go to the journal (fsync'd) before the step
/// acts on them, progress goes to the observer, and test builds may die at a kill point.
struct Recorder<'a> {
    journal: Arc<Mutex<Journal>>,
    opts: &'a RunOptions,
    run: u32,
    step: &'a StepDef,
    observer: &'a dyn EngineObserver,
}

impl StepRecorder for Recorder<'_> {
    fn intent<'b>(
        &'b self,
        intent: &'b Intent,
    ) -> futures::future::LocalBoxFuture<'b, Result<(), Failure>> {
        let j = self.journal.clone();
        let at = (self.opts.clock)();
        let e = Event::StepIntent {
            run: self.run,
            step: self.step.id.clone(),
            intent: intent.clone(),
        };
        Box::pin(async move {
            blocking(move || {
                j.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&e, at, Durability::Sync)
            })
            .await
            .map(|_| ())
            .map_err(|e: JournalError| {
                Failure::permanent(format!("cannot journal the intent: {e}"))
            })
        })
    }

    fn progress(&self, message: &str) {
        self.observer.on_step_progress(self.step, message);
    }

    #[cfg(feature = "test-actions")]
    fn kill_point(&self, label: &str) {
        if self.opts.kill_at
            == Some(super::options::KillPoint::At(
                self.step.id.clone(),
                label.to_owned(),
            ))
        {
            super::options::kill_self();
        }
    }

    #[cfg(not(feature = "test-actions"))]
    fn kill_point(&self, _label: &str) {}
}

/// A kill point of the crash tests (test builds only; nothing in release builds).
macro_rules! kill_point {
    ($r:expr, $variant:ident, $step:expr) => {
        #[cfg(feature = "test-actions")]
        $r.kill_point(super::options::KillPoint::$variant($step.to_owned()));
    };
    ($r:expr, $variant:ident) => {
        #[cfg(feature = "test-actions")]
        $r.kill_point(super::options::KillPoint::$variant);
    };
}

/// The journal of a running install, shared with the blocking pool.
struct Runner<'a> {
    journal: Arc<Mutex<Journal>>,
    /// A state database's appends, sent from this runtime (the journal's own connection
    /// still serves reads and the intents steps record).
    appender: Option<super::io::db::journal::Appender>,
    state: State,
    opts: &'a RunOptions,
    run: u32,
    dir: &'a StateRef,
}

impl Runner<'_> {
    async fn append(&mut self, e: Event, d: Durability) -> Result<Record, JournalError> {
        let mut recs = self.append_all(vec![e], d).await?;
        Ok(recs.pop().expect("one record per event"))
    }

    /// Appends `events` in order, in one commit (on a state database: one round trip).
    async fn append_all(
        &mut self,
        events: Vec<Event>,
        d: Durability,
    ) -> Result<Vec<Record>, JournalError> {
        let at = (self.opts.clock)();
        let (recs, events) = if let Some(a) = &mut self.appender {
            let at = timestamp(at);
            let entries = events
                .iter()
                .map(|e| super::io::journal::entry(e, &at))
                .collect();
            (a.append_all(entries, d).await?, events)
        } else {
            let j = self.journal.clone();
            blocking(move || {
                let refs: Vec<&Event> = events.iter().collect();
                let recs = j
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append_all(&refs, at, d)?;
                Ok::<_, JournalError>((recs, events))
            })
            .await?
        };
        for (rec, e) in recs.iter().zip(&events) {
            self.state.apply(rec.seq, &rec.at, e);
        }
        Ok(recs)
    }

    /// Writes a step's success that is still pending, alone, and reports it.
    async fn settle(
        &mut self,
        pending: Option<Box<Pending<'_>>>,
        observer: &dyn EngineObserver,
    ) -> Result<(), JournalError> {
        if let Some(p) = pending {
            let Pending {
                step,
                event,
                output,
            } = *p;
            self.append(event, Durability::Sync).await?;
            self.succeeded(step, &output, observer);
        }
        Ok(())
    }

    /// After a step's success is durable: its kill point and its report.
    fn succeeded(&self, step: &StepDef, output: &StepOutput, observer: &dyn EngineObserver) {
        kill_point!(self, Succeeded, &step.id);
        observer.on_step_end(step, &StepEnd::Succeeded(output));
    }

    /// Reads the whole journal again (`approve` may have written meanwhile).
    async fn reload(&mut self) -> Result<(), JournalError> {
        let j = self.journal.clone();
        self.state =
            blocking(move || load_state(&j.lock().unwrap_or_else(|p| p.into_inner()))).await?;
        Ok(())
    }

    /// Milliseconds since `t` by the run's clock (injectable, so reports can be snapshot-tested).
    fn ms_since(&self, t: ::time::OffsetDateTime) -> u64 {
        u64::try_from(((self.opts.clock)() - t).whole_milliseconds().max(0)).unwrap_or(0)
    }

    #[cfg(feature = "test-actions")]
    fn kill_point(&self, at: super::options::KillPoint) {
        if self.opts.kill_at.as_ref() == Some(&at) {
            super::options::kill_self();
        }
    }
}

enum StepResult<'p> {
    /// The step is done; its success, when it succeeded, is still to be written.
    Done(Option<Box<Pending<'p>>>),
    Stop(StopOutcome, String),
}

/// A step's success not written yet: it goes out with the next step's start of the same phase,
/// in one durable commit (one round trip to a state database instead of two), or alone, by
/// [`Runner::settle`], before anything else happens. Either way the success is durable before
/// it is reported, and before any other step acts.
struct Pending<'p> {
    step: &'p StepDef,
    event: Event,
    output: StepOutput,
}

/// Runs or resumes the install of `spec` in `dir`.
pub async fn install(
    dir: &StateRef,
    spec: &Spec,
    playbook: &Playbook,
    opts: &RunOptions,
    observer: &dyn EngineObserver,
) -> Result<RunResult, EngineError> {
    let mut warnings = Vec::new();
    if let Some(folder) = dir.folder()
        && let Some(mode) = fsutil::loose_permissions(folder)
    {
        let w = format!(
            "the state folder {} has mode {mode:o}: other users may write it and so replace the journal, the lock or the artifacts; run `chmod 700 {}`",
            folder.display(),
            folder.display()
        );
        observer.on_warning(&w);
        warnings.push(w);
    }
    let holder = Holder::me(&opts.operator, "install", timestamp((opts.clock)()));
    let owned = dir.to_owned();
    let signing_key = opts.signing_key.clone();
    let (guard, journal) = blocking(move || {
        let guard = owned.acquire(holder)?;
        let mut journal = Journal::create(&owned)?;
        journal.sign_with(signing_key);
        journal.fence_with(guard.fence());
        Ok::<_, EngineError>((guard, journal))
    })
    .await?;
    #[cfg(feature = "test-actions")]
    if opts.kill_at == Some(super::options::KillPoint::Opened) {
        super::options::kill_self();
    }
    let journal = Arc::new(Mutex::new(journal));
    let j = journal.clone();
    let state = blocking(move || load_state(&j.lock().unwrap_or_else(|p| p.into_inner()))).await?;
    check_realm(dir, &state, spec)?;
    if playbook.workflow != super::actions::Workflow::Destroy
        && super::model::inventory::deleting(&state)
    {
        return Err(EngineError::Destroying {
            at: dir.to_string(),
            realm: spec.name.clone(),
        });
    }
    let plan = plan_for(spec, playbook, &state, opts);
    let run = state.next_run();
    let had_runs = !state.runs.is_empty();
    let appender = match dir {
        StateRef::Database(db) => Some(
            super::io::db::journal::Appender::connect(db, guard.fence(), opts.signing_key.clone())
                .await
                .map_err(JournalError::Db)?,
        ),
        StateRef::Folder(_) => None,
    };
    let mut r = Runner {
        journal,
        appender,
        state,
        opts,
        run,
        dir,
    };
    let spec_doc = inputs::spec_json(spec);
    r.append(
        Event::RunStarted {
            run,
            operator: opts.operator.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            host: guard.holder().host.clone(),
            lock_id: guard.holder().lock_id.clone(),
            subject: RunSubject::of(spec),
            spec_digest: sha256_hex(spec_doc.to_string().as_bytes()),
            spec: spec_doc,
            playbook: playbook.clone(),
            until: opts.until,
        },
        Durability::Sync,
    )
    .await?;
    if had_runs && (!plan.spec_changes.is_empty() || !plan.replanned.is_empty()) {
        r.append(
            Event::PlanChanged {
                run,
                changes: plan.spec_changes.clone(),
                replanned: plan.replanned.clone(),
            },
            Durability::Sync,
        )
        .await?;
    }
    let mut executed = Vec::new();
    let (outcome, message) = 'run: {
        for (phase, pplan) in playbook.phases.iter().zip(&plan.phases) {
            observer.on_phase_start(phase);
            let mut pending = None;
            for (step, splan) in phase.steps.iter().zip(&pplan.steps) {
                if let StepPlan::Done { .. } = splan.plan {
                    r.settle(pending.take(), observer).await?;
                    observer.on_step_end(step, &StepEnd::AlreadyDone);
                    continue;
                }
                executed.push(step.id.clone());
                let input = &splan.input_digest;
                match run_step(&mut r, spec, phase, step, input, pending.take(), observer).await? {
                    StepResult::Done(p) => pending = p,
                    StepResult::Stop(o, m) => break 'run (o, m),
                }
            }
            r.settle(pending, observer).await?;
            if let Some(stop) = check_gates(&mut r, phase).await? {
                break 'run stop;
            }
            if opts.until == Some(phase.number) {
                break 'run (
                    StopOutcome::Until,
                    format!("stopped after phase {} (--until)", phase.number),
                );
            }
        }
        (
            StopOutcome::Completed,
            match playbook.workflow {
                super::actions::Workflow::Install => "all six phases are done".into(),
                super::actions::Workflow::Destroy => {
                    "the realm is destroyed: every phase of the destroy is done".into()
                }
                super::actions::Workflow::Upgrade => {
                    "the realm's cluster is upgraded: every phase of the upgrade is done".into()
                }
            },
        )
    };
    kill_point!(r, Stopping);
    r.append(
        Event::RunStopped {
            run,
            outcome,
            message: message.clone(),
        },
        Durability::Sync,
    )
    .await?;
    kill_point!(r, Stopped);
    r.reload().await?;
    drop(guard);
    Ok(RunResult {
        run,
        outcome,
        message,
        next: next::standing(playbook, &r.state, None).next,
        plan,
        executed,
        warnings,
    })
}

/// Runs `step` (its attempts and their records); `pending`, the previous step's success, is
/// written with this step's first start.
async fn run_step<'p>(
    r: &mut Runner<'_>,
    spec: &Spec,
    phase: &Phase,
    step: &'p StepDef,
    input_digest: &str,
    mut pending: Option<Box<Pending<'_>>>,
    observer: &dyn EngineObserver,
) -> Result<StepResult<'p>, JournalError> {
    let def = step.action.def();
    let run = r.run;
    if let Availability::Unavailable(reason) =
        def.availability(r.opts.capabilities(), spec.cloud.provider)
    {
        r.settle(pending.take(), observer).await?;
        let message = format!("action {} {reason}", step.action);
        r.append(
            Event::StepFailed {
                run,
                step: step.id.clone(),
                phase: phase.number,
                attempt: 1,
                failure: FailureKind::Unavailable,
                error: message.clone(),
                output: None,
                duration_ms: 0,
            },
            Durability::Sync,
        )
        .await?;
        observer.on_step_end(
            step,
            &StepEnd::Failed {
                kind: FailureKind::Unavailable,
                message: &message,
                retry_in: None,
            },
        );
        return Ok(StepResult::Stop(
            StopOutcome::Failed,
            format!("step {} failed: {message}", step.id),
        ));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Event::StepStarted {
            run,
            step: step.id.clone(),
            phase: phase.number,
            attempt,
            input_digest: input_digest.to_owned(),
        };
        match pending.take() {
            // The previous step's success and this start: one commit, as durable as the
            // success needs.
            Some(p) => {
                let Pending {
                    step: done,
                    event,
                    output,
                } = *p;
                r.append_all(vec![event, started], Durability::Sync).await?;
                r.succeeded(done, &output, observer);
            }
            None => {
                r.append(started, Durability::Buffered).await?;
            }
        }
        kill_point!(r, Started, &step.id);
        observer.on_step_start(step, attempt);
        let t0 = (r.opts.clock)();
        let started = Instant::now();
        let gate = BlockingGate::default();
        let recorder = Recorder {
            journal: r.journal.clone(),
            opts: r.opts,
            run,
            step,
            observer,
        };
        let realm = super::model::inventory::facts(&r.state);
        let result = {
            let ctx = Ctx {
                spec,
                history: r
                    .state
                    .step_state(&step.id)
                    .map(|h| {
                        let (inventory, announced) = h.applied();
                        super::ctx::Applied {
                            inventory,
                            announced,
                        }
                    })
                    .unwrap_or_default(),
                realm: &realm,
                step: &step.id,
                params: &step.params,
                phase: phase.number,
                input_digest,
                run,
                approval: r.state.approval_for(phase.number, input_digest),
                approvals: &r.state.approvals,
                opts: r.opts,
                deadline: started + step.timeout,
                checks: observer,
                blocking: &gate,
                record: &recorder,
                cloud: r.opts.cloud.as_deref(),
                state_dir: r.dir.folder(),
            };
            match tokio::time::timeout(step.timeout, (def.run)(&ctx)).await {
                Ok(res) => res,
                Err(_) => Err(Failure {
                    kind: FailureKind::Timeout,
                    message: format!(
                        "step {} did not finish within its timeout of {} s",
                        step.id,
                        step.timeout.as_secs_f64()
                    ),
                    output: None,
                }),
            }
        };
        // Blocking work of a timed-out attempt ends before anything else happens.
        gate.drain().await;
        kill_point!(r, Acted, &step.id);
        let duration_ms = r.ms_since(t0);
        let (phase_n, id) = (phase.number, step.id.clone());
        match result {
            Ok(Outcome::Done(output)) => {
                return Ok(StepResult::Done(Some(Box::new(Pending {
                    step,
                    event: Event::StepSucceeded {
                        run,
                        step: id,
                        phase: phase_n,
                        input_digest: input_digest.to_owned(),
                        output_digest: output.digest(),
                        output: output.clone(),
                        duration_ms,
                    },
                    output,
                }))));
            }
            Ok(Outcome::Skipped(reason)) => {
                r.append(
                    Event::StepSkipped {
                        run,
                        step: id,
                        phase: phase_n,
                        input_digest: input_digest.to_owned(),
                        reason: reason.clone(),
                    },
                    Durability::Sync,
                )
                .await?;
                kill_point!(r, Succeeded, &step.id);
                observer.on_step_end(step, &StepEnd::Skipped(&reason));
                return Ok(StepResult::Done(None));
            }
            Ok(Outcome::Waiting {
                owner,
                reason,
                covers,
            }) => {
                r.append(
                    Event::StepWaiting {
                        run,
                        step: id,
                        phase: phase_n,
                        owner,
                        reason: reason.clone(),
                        input_digest: input_digest.to_owned(),
                        covers,
                    },
                    Durability::Sync,
                )
                .await?;
                observer.on_step_end(
                    step,
                    &StepEnd::Waiting {
                        owner,
                        reason: &reason,
                    },
                );
                return Ok(StepResult::Stop(
                    StopOutcome::Waiting,
                    format!("step {} waits on the {}", step.id, owner.as_str()),
                ));
            }
            Err(f) => {
                let delay = plan::retry_delay(f.kind, attempt, step.retries, r.opts.retry_base);
                r.append(
                    Event::StepFailed {
                        run,
                        step: id.clone(),
                        phase: phase_n,
                        attempt,
                        failure: f.kind,
                        error: f.message.clone(),
                        output: f.output.map(|o| *o),
                        duration_ms,
                    },
                    Durability::Sync,
                )
                .await?;
                kill_point!(r, Failed, &step.id);
                observer.on_step_end(
                    step,
                    &StepEnd::Failed {
                        kind: f.kind,
                        message: &f.message,
                        retry_in: delay,
                    },
                );
                let Some(delay) = delay else {
                    return Ok(StepResult::Stop(
                        StopOutcome::Failed,
                        format!("step {} failed: {}", step.id, first_line(&f.message)),
                    ));
                };
                r.append(
                    Event::StepRetry {
                        run,
                        step: id,
                        attempt: attempt + 1,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    },
                    // Step starts are the only buffered records (docs/engine.md); a retry is
                    // rare and fsync'd like every other record.
                    Durability::Sync,
                )
                .await?;
                kill_point!(r, Retried, &step.id);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Output digest of a step output (what an approval covers).
pub fn output_digest(output: &StepOutput) -> String {
    output.digest()
}

async fn check_gates(
    r: &mut Runner<'_>,
    phase: &Phase,
) -> Result<Option<(StopOutcome, String)>, JournalError> {
    if phase.gates.is_empty() {
        return Ok(None);
    }
    // `approve` may have written while this run was going: read the journal again.
    r.reload().await?;
    kill_point!(r, GateChecked, phase.number);
    let subject = state::phase_outputs_digest(phase, &r.state);
    let approved = subject
        .as_deref()
        .is_some_and(|d| r.state.approval_for(phase.number, d).is_some());
    if approved {
        return Ok(None);
    }
    let Some(g) = phase.gates.first() else {
        return Ok(None);
    };
    r.append(
        Event::GateWaiting {
            run: r.run,
            phase: phase.number,
            gate: g.id.clone(),
            owner: g.owner,
        },
        Durability::Sync,
    )
    .await?;
    kill_point!(r, GateWaiting, phase.number);
    Ok(Some((
        StopOutcome::Waiting,
        format!("phase {} waits for the {} gate", phase.number, g.id),
    )))
}

/// What `unlock` clears.
#[derive(Debug, Clone, Copy)]
pub enum UnlockTarget<'a> {
    /// The stale lock with this id.
    LockId(&'a str),
    /// An unreadable holder file (the operator made sure nothing runs).
    Unreadable,
}

/// Clears a stale lock of `dir` and journals the takeover (signed with `key` when given);
/// returns the old holder, described.
pub fn unlock(
    dir: &StateRef,
    target: UnlockTarget<'_>,
    by: &str,
    now: ::time::OffsetDateTime,
    key: Option<Arc<SigningKey>>,
) -> Result<String, EngineError> {
    let me = Holder::me(by, "unlock", timestamp(now));
    let (lock_id, old, guard) = match (target, dir) {
        (UnlockTarget::LockId(id), _) => {
            let (old, guard) = dir.take_over(id, me)?;
            (id.to_owned(), old.to_string(), guard)
        }
        (UnlockTarget::Unreadable, StateRef::Folder(folder)) => {
            let (detail, guard) = lock::take_over_unreadable(folder, me)?;
            (
                "unreadable".to_owned(),
                format!("an unreadable holder file ({detail})"),
                Guard::Folder(guard),
            )
        }
        // A lease row that does not parse is named by the lock id `unreadable`.
        (UnlockTarget::Unreadable, StateRef::Database(_)) => {
            let (old, guard) = dir.take_over("unreadable", me)?;
            ("unreadable".to_owned(), old.to_string(), guard)
        }
    };
    match Journal::open(dir) {
        Ok(mut j) => {
            j.sign_with(key);
            j.fence_with(guard.fence());
            j.append(
                &Event::LockTakenOver {
                    lock_id,
                    holder: old.clone(),
                    by: by.to_owned(),
                },
                now,
                Durability::Sync,
            )?;
        }
        Err(JournalError::Missing { .. } | JournalError::NoRealm { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    drop(guard);
    Ok(old)
}
