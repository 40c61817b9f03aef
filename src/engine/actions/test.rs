//! Test-only actions (feature `test-actions`): side effects with counters, so crash tests can
//! prove that a resumed run never repeats a succeeded step's effect.
//!
//! - `test.effect {dir, sleepMs}` appends `invoke <step>` to `dir/invocations.log`, then creates
//!   `dir/effects/<step>` exactly once (create-or-adopt, like a cloud create with a unique name),
//!   sleeping around it so a kill can land inside;
//! - `test.flaky {dir, failures}` fails with a retryable error `failures` times (counted in
//!   `dir/flaky-<step>`), then succeeds;
//! - `test.blocking {dir, sleepMs}` blocks a thread for `sleepMs`, logging `start N` and
//!   `end N` to `dir/blocking-<step>` (proves a timed-out attempt never overlaps its retry);
//! - `test.noop` does nothing (the engine benchmark's step).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ActionDef, Needs, ParamDef, ParamKind, run_fn};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::StepOutput;

const DIR: ParamDef = ParamDef {
    name: "dir",
    kind: ParamKind::Text,
    required: true,
};

/// `test.effect`.
pub const EFFECT: ActionDef = ActionDef {
    name: "test.effect",
    summary: "test: an idempotent side effect with a counter",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[
        DIR,
        ParamDef {
            name: "sleepMs",
            kind: ParamKind::Count,
            required: false,
        },
    ],
    inputs: &[],
    run: run_fn!(effect),
};

/// `test.flaky`.
pub const FLAKY: ActionDef = ActionDef {
    name: "test.flaky",
    summary: "test: fails with a retryable error a given number of times",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[
        DIR,
        ParamDef {
            name: "failures",
            kind: ParamKind::Count,
            required: false,
        },
    ],
    inputs: &[],
    run: run_fn!(flaky),
};

/// `test.blocking`.
pub const BLOCKING: ActionDef = ActionDef {
    name: "test.blocking",
    summary: "test: blocks a thread, logging when it starts and ends",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[
        DIR,
        ParamDef {
            name: "sleepMs",
            kind: ParamKind::Count,
            required: true,
        },
    ],
    inputs: &[],
    run: run_fn!(blocking),
};

/// `test.noop`.
pub const NOOP: ActionDef = ActionDef {
    name: "test.noop",
    summary: "test: does nothing",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[],
    inputs: &[],
    run: run_fn!(noop),
};

fn dir(ctx: &Ctx<'_>) -> PathBuf {
    PathBuf::from(ctx.text_param("dir").unwrap_or("."))
}

fn io(e: std::io::Error) -> Failure {
    Failure::permanent(e.to_string())
}

fn append_line(path: &Path, line: &str) -> Result<(), Failure> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    f.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

async fn noop(_ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    Ok(Outcome::Done(StepOutput::default()))
}

async fn effect(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let dir = dir(ctx);
    let id = ctx.step;
    let sleep = ctx.count_param("sleepMs").unwrap_or(0);
    append_line(&dir.join("invocations.log"), &format!("invoke {id}"))?;
    tokio::time::sleep(Duration::from_millis(sleep / 2)).await;
    std::fs::create_dir_all(dir.join("effects")).map_err(io)?;
    let created = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join("effects").join(id))
    {
        Ok(mut f) => {
            f.write_all(format!("run {}\n", ctx.run).as_bytes())
                .map_err(io)?;
            f.sync_all().map_err(io)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(io(e)),
    };
    tokio::time::sleep(Duration::from_millis(sleep - sleep / 2)).await;
    Ok(Outcome::Done(StepOutput::summary(format!(
        "effect {id} {}",
        if created { "created" } else { "adopted" }
    ))))
}

async fn flaky(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let failures = ctx.count_param("failures").unwrap_or(0);
    let counter = dir(ctx).join(format!("flaky-{}", ctx.step));
    let so_far = std::fs::read_to_string(&counter)
        .map(|s| s.lines().count() as u64)
        .unwrap_or(0);
    append_line(&counter, "attempt")?;
    if so_far < failures {
        return Err(Failure::retryable(format!(
            "flaky failure {} of {failures}",
            so_far + 1
        )));
    }
    Ok(Outcome::Done(StepOutput::summary(format!(
        "succeeded after {so_far} failures"
    ))))
}

async fn blocking(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let log = dir(ctx).join(format!("blocking-{}", ctx.step));
    let sleep = Duration::from_millis(ctx.count_param("sleepMs").unwrap_or(0));
    let n = std::fs::read_to_string(&log)
        .map(|s| s.lines().filter(|l| l.starts_with("start")).count() + 1)
        .unwrap_or(1);
    ctx.blocking
        .run(move || {
            append_line(&log, &format!("start {n}"))?;
            std::thread::sleep(sleep);
            append_line(&log, &format!("end {n}"))
        })
        .await??;
    Ok(Outcome::Done(StepOutput::summary(format!(
        "blocked {} ms",
        sleep.as_millis()
    ))))
}
