//! Test-only actions (feature `test-actions`): side effects with counters, so crash tests can
//! prove that a resumed run never repeats a succeeded step's effect.
//!
//! `test.effect {dir, sleepMs}` appends `invoke <step>` to `dir/invocations.log`, then creates
//! `dir/effects/<step>` exactly once (create-or-adopt, like a cloud create with a unique name),
//! sleeping around it so a kill can land inside. `test.flaky {dir, failures}` fails with a
//! retryable error `failures` times (counted in `dir/flaky-<step>`), then succeeds.
//! `test.noop` does nothing (the engine benchmark's step).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::action::Action;
use super::event::{FailureKind, StepOutput};
use super::exec::{Ctx, Failure, Outcome};

fn param_dir(ctx: &Ctx<'_>) -> Result<PathBuf, Failure> {
    ctx.step
        .params
        .get("dir")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| Failure {
            kind: FailureKind::Permanent,
            message: format!("step {} needs params.dir", ctx.step.id),
            output: None,
        })
}

fn io(e: std::io::Error) -> Failure {
    Failure {
        kind: FailureKind::Permanent,
        message: e.to_string(),
        output: None,
    }
}

fn append_line(path: &std::path::Path, line: &str) -> Result<(), Failure> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    f.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Runs a test action.
pub async fn run(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    if ctx.step.action == Action::TestNoop {
        return Ok(Outcome::Done(StepOutput::default()));
    }
    let dir = param_dir(ctx)?;
    let id = &ctx.step.id;
    match ctx.step.action {
        Action::TestEffect => {
            let sleep = ctx
                .step
                .params
                .get("sleepMs")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
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
            Ok(Outcome::Done(StepOutput {
                summary: format!(
                    "effect {id} {}",
                    if created { "created" } else { "adopted" }
                ),
                ..StepOutput::default()
            }))
        }
        Action::TestFlaky => {
            let failures = ctx
                .step
                .params
                .get("failures")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            let counter = dir.join(format!("flaky-{id}"));
            let so_far = std::fs::read_to_string(&counter)
                .map(|s| s.lines().count() as u64)
                .unwrap_or(0);
            append_line(&counter, "attempt")?;
            if so_far < failures {
                return Err(Failure {
                    kind: FailureKind::Retryable,
                    message: format!("flaky failure {} of {failures}", so_far + 1),
                    output: None,
                });
            }
            Ok(Outcome::Done(StepOutput {
                summary: format!("succeeded after {so_far} failures"),
                ..StepOutput::default()
            }))
        }
        _ => unreachable!("only test actions are routed here"),
    }
}

/// Kills this process with SIGKILL (crash tests).
pub fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}
