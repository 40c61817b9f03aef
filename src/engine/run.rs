//! Carrying out the plan: `install`, `approve` and `unlock`.
//!
//! `install` takes the realm's lock, replays the journal, plans, and runs each step that is not
//! done, journaling its start (buffered) and its end (fsync'd) so that after any crash the next
//! run resumes at the first incomplete step and never re-runs a succeeded one.

use std::path::Path;

use serde::Serialize;

use super::event::{Event, FailureKind, StepOutput, StopOutcome};
use super::exec::{self, Ctx, Outcome};
use super::journal::{Durability, Journal, JournalError, Record, sha256_hex};
use super::lock::{self, Holder, LockError};
use super::plan::{self, GatePlan, Plan, StepPlan};
use super::playbook::{Phase, Playbook, StepDef};
use super::state::{self, Approval, ApproveError, State};
use super::{EngineObserver, RunOptions, StepEnd, inputs};
use crate::spec::Spec;

/// Why the engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The state folder belongs to another realm.
    #[error("the state folder {} belongs to realm `{state}`, but the spec is for realm `{spec}`\n  help: use one state folder per realm", dir.display())]
    RealmMismatch {
        /// The folder.
        dir: std::path::PathBuf,
        /// Realm of the state.
        state: String,
        /// Realm of the spec.
        spec: String,
    },
    /// Nothing has run in this state folder yet.
    #[error("no install has run in {} yet\n  help: run `realmctl install -f realm.yaml --state {}` first", dir.display(), dir.display())]
    NoRun {
        /// The folder.
        dir: std::path::PathBuf,
    },
    /// `approve` had nothing to approve.
    #[error(transparent)]
    Approve(#[from] ApproveError),
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
    pub next: Option<String>,
    /// The plan the run started from.
    pub plan: Plan,
    /// Steps executed in this run.
    pub executed: Vec<String>,
}

fn holder(opts: &RunOptions, command: &str) -> Holder {
    Holder {
        lock_id: lock::new_lock_id(),
        host: lock::host_name(),
        pid: std::process::id(),
        since: super::journal::timestamp((opts.clock)()),
        operator: opts.operator.clone(),
        command: command.to_owned(),
    }
}

/// Reads the journal's events and folds them.
pub fn load_state(journal: &Journal) -> Result<State, JournalError> {
    let records = journal.records()?;
    let mut state = State::default();
    for r in &records {
        state.apply(r.seq, &r.at, &r.event()?);
    }
    Ok(state)
}

/// The plan for `spec` against the state folder, without side effects.
pub fn plan(
    dir: &Path,
    spec: &Spec,
    playbook: &Playbook,
    opts: &RunOptions,
) -> Result<Plan, EngineError> {
    let state = match Journal::open(dir) {
        Ok(j) => load_state(&j)?,
        Err(JournalError::Missing { .. }) => State::default(),
        Err(e) => return Err(e.into()),
    };
    check_realm(dir, &state, spec)?;
    Ok(plan_for(spec, playbook, &state, opts))
}

fn check_realm(dir: &Path, state: &State, spec: &Spec) -> Result<(), EngineError> {
    if let Some(name) = state.spec.as_ref().and_then(|s| s["name"].as_str())
        && name != spec.name
    {
        return Err(EngineError::RealmMismatch {
            dir: dir.to_owned(),
            state: name.to_owned(),
            spec: spec.name.clone(),
        });
    }
    Ok(())
}

fn plan_for(spec: &Spec, playbook: &Playbook, state: &State, opts: &RunOptions) -> Plan {
    let digests = inputs::digests(spec, playbook, &opts.quota_target);
    let changes = state
        .spec
        .as_ref()
        .map(|before| plan::diff(before, &inputs::spec_json(spec)))
        .unwrap_or_default();
    plan::build(&spec.name, playbook, state, &digests, changes)
}

struct Runner<'a> {
    journal: Journal,
    state: State,
    opts: &'a RunOptions,
    run: u32,
}

impl Runner<'_> {
    fn append(&mut self, e: Event, d: Durability) -> Result<Record, JournalError> {
        let rec = self.journal.append(&e, (self.opts.clock)(), d)?;
        self.state.apply(rec.seq, &rec.at, &e);
        Ok(rec)
    }

    fn stop(&mut self, outcome: StopOutcome, message: String) -> Result<(), JournalError> {
        self.append(
            Event::RunStopped {
                run: self.run,
                outcome,
                message,
            },
            Durability::Sync,
        )?;
        Ok(())
    }

    fn ms_since(&self, t: ::time::OffsetDateTime) -> u64 {
        u64::try_from(((self.opts.clock)() - t).whole_milliseconds().max(0)).unwrap_or(0)
    }

    #[cfg(feature = "test-actions")]
    fn kill_point(&self, step: &str, point: &str) {
        if let Some(k) = &self.opts.kill_at
            && k.step == step
            && k.point == point
        {
            super::testing::kill_self();
        }
    }
    #[cfg(not(feature = "test-actions"))]
    fn kill_point(&self, _: &str, _: &str) {}
}

enum StepResult {
    Done,
    Stop(StopOutcome, String, Option<String>),
}

/// Runs or resumes the install of `spec` in `dir`.
pub async fn install(
    dir: &Path,
    spec: &Spec,
    playbook: &Playbook,
    opts: &RunOptions,
    observer: &dyn EngineObserver,
) -> Result<RunResult, EngineError> {
    let guard = lock::acquire(dir, holder(opts, "install"))?;
    let journal = Journal::create(dir)?;
    #[cfg(feature = "test-actions")]
    if opts
        .kill_at
        .as_ref()
        .is_some_and(|k| k.step.is_empty() && k.point == "opened")
    {
        super::testing::kill_self();
    }
    let state = load_state(&journal)?;
    check_realm(dir, &state, spec)?;
    let plan = plan_for(spec, playbook, &state, opts);
    let run = state.next_run();
    let had_runs = !state.runs.is_empty();
    let mut r = Runner {
        journal,
        state,
        opts,
        run,
    };
    let spec_doc = inputs::spec_json(spec);
    r.append(
        Event::RunStarted {
            run,
            operator: opts.operator.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            host: guard.holder().host.clone(),
            lock_id: guard.holder().lock_id.clone(),
            spec_digest: sha256_hex(spec_doc.to_string().as_bytes()),
            spec: spec_doc,
            playbook: playbook.clone(),
            until: opts.until,
        },
        Durability::Sync,
    )?;
    if had_runs && (!plan.spec_changes.is_empty() || !plan.replanned.is_empty()) {
        r.append(
            Event::PlanChanged {
                changes: plan.spec_changes.clone(),
                replanned: plan.replanned.clone(),
            },
            Durability::Sync,
        )?;
    }
    let mut executed = Vec::new();
    let (outcome, message, next) = 'run: {
        for (phase, pplan) in playbook.phases.iter().zip(&plan.phases) {
            observer.on_phase_start(phase);
            for (step, splan) in phase.steps.iter().zip(&pplan.steps) {
                if let StepPlan::Done { .. } = splan.plan {
                    observer.on_step_end(step, &StepEnd::AlreadyDone);
                    continue;
                }
                executed.push(step.id.clone());
                match run_step(&mut r, spec, phase, step, &splan.input_digest, observer).await? {
                    StepResult::Done => {}
                    StepResult::Stop(o, m, n) => break 'run (o, m, n),
                }
            }
            if let Some(stop) = check_gates(&mut r, phase)? {
                break 'run stop;
            }
            if opts.until == Some(phase.number) {
                break 'run (
                    StopOutcome::Until,
                    format!("stopped after phase {} (--until)", phase.number),
                    None,
                );
            }
        }
        (
            StopOutcome::Completed,
            "all six phases are done".into(),
            None,
        )
    };
    r.stop(outcome, message.clone())?;
    drop(guard);
    Ok(RunResult {
        run,
        outcome,
        message,
        next,
        plan,
        executed,
    })
}

async fn run_step(
    r: &mut Runner<'_>,
    spec: &Spec,
    phase: &Phase,
    step: &StepDef,
    input_digest: &str,
    observer: &dyn EngineObserver,
) -> Result<StepResult, JournalError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        r.append(
            Event::StepStarted {
                step: step.id.clone(),
                phase: phase.number,
                attempt,
                input_digest: input_digest.to_owned(),
            },
            Durability::Buffered,
        )?;
        r.kill_point(&step.id, "started");
        observer.on_step_start(step, attempt);
        let t0 = (r.opts.clock)();
        let ctx = Ctx {
            spec,
            step,
            phase: phase.number,
            input_digest,
            run: r.run,
            state: &r.state,
            opts: r.opts,
            store: &r.opts.store,
            observer,
        };
        let result = match tokio::time::timeout(step.timeout, exec::run(&ctx)).await {
            Ok(res) => res,
            Err(_) => Err(exec::Failure {
                kind: FailureKind::Timeout,
                message: format!(
                    "step {} did not finish within its timeout of {} s",
                    step.id,
                    step.timeout.as_secs_f64()
                ),
                output: None,
            }),
        };
        r.kill_point(&step.id, "acted");
        let duration_ms = r.ms_since(t0);
        let (phase_n, id) = (phase.number, step.id.clone());
        match result {
            Ok(Outcome::Done(output)) => {
                let output_digest = output_digest(&output);
                r.append(
                    Event::StepSucceeded {
                        step: id,
                        phase: phase_n,
                        input_digest: input_digest.to_owned(),
                        output_digest,
                        output: output.clone(),
                        duration_ms,
                    },
                    Durability::Sync,
                )?;
                r.kill_point(&step.id, "succeeded");
                observer.on_step_end(step, &StepEnd::Succeeded(&output));
                return Ok(StepResult::Done);
            }
            Ok(Outcome::Skipped(reason)) => {
                r.append(
                    Event::StepSkipped {
                        step: id,
                        phase: phase_n,
                        input_digest: input_digest.to_owned(),
                        reason: reason.clone(),
                    },
                    Durability::Sync,
                )?;
                r.kill_point(&step.id, "succeeded");
                observer.on_step_end(step, &StepEnd::Skipped(&reason));
                return Ok(StepResult::Done);
            }
            Ok(Outcome::Waiting { owner, reason }) => {
                r.append(
                    Event::StepWaiting {
                        step: id,
                        phase: phase_n,
                        owner: owner.to_owned(),
                        reason: reason.clone(),
                        input_digest: input_digest.to_owned(),
                    },
                    Durability::Sync,
                )?;
                observer.on_step_end(
                    step,
                    &StepEnd::Waiting {
                        owner,
                        reason: &reason,
                    },
                );
                return Ok(StepResult::Stop(
                    StopOutcome::Waiting,
                    format!("step {} waits on the {owner}", step.id),
                    Some(format!("{owner}: {reason}")),
                ));
            }
            Err(f) => {
                let delay = plan::retry_delay(f.kind, attempt, step.retries, r.opts.retry_base);
                r.append(
                    Event::StepFailed {
                        step: id.clone(),
                        phase: phase_n,
                        attempt,
                        failure: f.kind,
                        error: f.message.clone(),
                        output: f.output.clone(),
                        duration_ms,
                    },
                    Durability::Sync,
                )?;
                observer.on_step_end(
                    step,
                    &StepEnd::Failed {
                        kind: f.kind,
                        message: &f.message,
                        retry_in: delay,
                    },
                );
                let Some(delay) = delay else {
                    let owner = failure_owner(phase, f.output.as_ref());
                    return Ok(StepResult::Stop(
                        StopOutcome::Failed,
                        format!("step {} failed: {}", step.id, first_line(&f.message)),
                        Some(format!("{owner}: {}", f.message)),
                    ));
                };
                r.append(
                    Event::StepRetry {
                        step: id,
                        attempt: attempt + 1,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    },
                    Durability::Buffered,
                )?;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Who must fix a failed step: the owner of its failing checks, else the phase's owner.
fn failure_owner(phase: &Phase, output: Option<&StepOutput>) -> &'static str {
    output
        .and_then(|o| crate::checks::first_failure_owner(&o.checks))
        .map_or_else(|| phase.owner.as_str(), |o| o.as_str())
}

/// SHA-256 of a step output's JSON.
pub fn output_digest(output: &StepOutput) -> String {
    sha256_hex(
        serde_json::to_string(output)
            .expect("outputs serialise")
            .as_bytes(),
    )
}

type Stop = (StopOutcome, String, Option<String>);

fn check_gates(r: &mut Runner<'_>, phase: &Phase) -> Result<Option<Stop>, JournalError> {
    if phase.gates.is_empty() {
        return Ok(None);
    }
    // `approve` may have written while this run was going: read the journal again.
    r.state = load_state(&r.journal)?;
    let subject = state::phase_outputs_digest(phase, &r.state);
    for g in &phase.gates {
        let approved = subject
            .as_deref()
            .and_then(|d| r.state.approval_for(phase.number, d))
            .map(|a| GatePlan::Approved {
                by: a.by.clone(),
                at: a.at.clone(),
            });
        if approved.is_none() {
            r.append(
                Event::GateWaiting {
                    phase: phase.number,
                    gate: g.id.clone(),
                    owner: g.owner.as_str().to_owned(),
                },
                Durability::Sync,
            )?;
            return Ok(Some((
                StopOutcome::Waiting,
                format!("phase {} waits for the {} gate", phase.number, g.id),
                Some(format!(
                    "{}: {} Record it with `realmctl approve --state <dir> --phase {} --by NAME`.",
                    g.owner.as_str(),
                    g.description,
                    phase.number
                )),
            )));
        }
    }
    Ok(None)
}

/// Records an approval of `phase` by `by`.
pub fn approve(
    dir: &Path,
    phase: u8,
    by: &str,
    note: Option<&str>,
    now: ::time::OffsetDateTime,
) -> Result<Approval, EngineError> {
    let mut journal = Journal::open(dir)?;
    let state = load_state(&journal)?;
    let playbook = state.playbook.as_ref().ok_or_else(|| EngineError::NoRun {
        dir: dir.to_owned(),
    })?;
    let covers = state::approval_subject(playbook, &state, phase)?;
    let rec = journal.append(
        &Event::Approved {
            phase,
            by: by.to_owned(),
            note: note.map(str::to_owned),
            covers: covers.clone(),
        },
        now,
        Durability::Sync,
    )?;
    Ok(Approval {
        phase,
        by: by.to_owned(),
        note: note.map(str::to_owned),
        covers,
        at: rec.at,
        seq: rec.seq,
    })
}

/// Clears the stale lock `lock_id` of `dir` and journals the takeover; returns the old holder.
pub fn unlock(
    dir: &Path,
    lock_id: &str,
    by: &str,
    now: ::time::OffsetDateTime,
) -> Result<Holder, EngineError> {
    let me = Holder {
        lock_id: lock::new_lock_id(),
        host: lock::host_name(),
        pid: std::process::id(),
        since: super::journal::timestamp(now),
        operator: by.to_owned(),
        command: "unlock".into(),
    };
    let (old, guard) = lock::take_over(dir, lock_id, me)?;
    match Journal::open(dir) {
        Ok(mut j) => {
            j.append(
                &Event::LockTakenOver {
                    lock_id: lock_id.to_owned(),
                    holder: old.to_string(),
                    by: by.to_owned(),
                },
                now,
                Durability::Sync,
            )?;
        }
        Err(JournalError::Missing { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    drop(guard);
    Ok(old)
}
