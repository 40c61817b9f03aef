//! Progress on the terminal: one spinner for checks and install steps, and one plain line per
//! finished step when stderr is not a terminal. The library reports through its observer
//! traits; this is the one place that turns that into output.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use realmctl::checks::{Category, CheckResult, Observer};
use realmctl::engine::model::playbook::{Phase, StepDef};
use realmctl::engine::{EngineObserver, StepEnd};

/// A spinner on stderr when it is a terminal and `wanted`; hidden otherwise.
fn spinner(wanted: bool) -> ProgressBar {
    if !(wanted && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new_spinner();
    b.set_style(ProgressStyle::with_template("{spinner} {msg} {prefix}").expect("static template"));
    b.enable_steady_tick(Duration::from_millis(120));
    b
}

/// Follows checks and install steps: a spinner on a terminal, else one line per finished step.
pub struct Progress {
    bar: ProgressBar,
    checks: Mutex<usize>,
    lines: bool,
}

impl Progress {
    /// Progress for a command whose result goes to stdout as text (`text`) or JSON.
    pub fn new(text: bool) -> Self {
        let bar = spinner(text);
        Progress {
            lines: text && bar.is_hidden(),
            bar,
            checks: Mutex::new(0),
        }
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Prints a line on stderr; whatever came from the library (a cloud's message included)
    /// reaches the terminal with its control sequences escaped.
    fn say(&self, line: String) {
        let line = realmctl::text::terminal(&line);
        if self.lines {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl Observer for Progress {
    fn on_category_start(&self, category: Category, checks: usize) {
        self.bar
            .set_message(format!("checking {category} ({checks})"));
    }
    fn on_check(&self, _r: &CheckResult) {
        let mut n = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.bar.set_prefix(format!("{n} done"));
    }
}

impl EngineObserver for Progress {
    fn on_warning(&self, message: &str) {
        // Warnings are shown whatever the output format.
        let message = realmctl::text::terminal(message);
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }
    fn on_phase_start(&self, phase: &Phase) {
        if !self.lines {
            self.say(format!(
                "phase {} {} ({})",
                phase.number,
                phase.title,
                phase.owner.as_str()
            ));
        }
    }
    fn on_step_start(&self, step: &StepDef, attempt: u32) {
        *self.checks.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        self.bar.set_prefix("");
        let again = if attempt > 1 {
            format!(" (attempt {attempt})")
        } else {
            String::new()
        };
        self.bar
            .set_message(format!("{} {}{again}", step.id, step.action));
    }
    fn on_step_progress(&self, step: &StepDef, message: &str) {
        if self.lines {
            self.say(format!("... {}: {message}", step.id));
        } else {
            self.bar.set_prefix(realmctl::text::one_line(message));
        }
    }
    fn on_step_end(&self, step: &StepDef, end: &StepEnd<'_>) {
        if self.bar.is_hidden() && !self.lines {
            return; // JSON output: stderr stays quiet but for warnings
        }
        let line = if self.lines {
            let status = match end {
                StepEnd::Succeeded(_) => "ok",
                StepEnd::Skipped(_) => "skipped",
                StepEnd::AlreadyDone => "done",
                StepEnd::Failed {
                    retry_in: Some(_), ..
                } => "retry",
                StepEnd::Failed { .. } => "failed",
                StepEnd::Waiting { .. } => "waiting",
            };
            format!("{status} {}", step.id)
        } else {
            match end {
                StepEnd::Succeeded(o) => format!("  ok       {:<24} {}", step.id, o.summary),
                StepEnd::Skipped(r) => format!("  skipped  {:<24} {r}", step.id),
                StepEnd::AlreadyDone => format!("  done     {:<24} (earlier run)", step.id),
                StepEnd::Failed {
                    kind,
                    message,
                    retry_in,
                } => {
                    let first = message.lines().next().unwrap_or("");
                    match retry_in {
                        Some(d) => format!(
                            "  retry    {:<24} {first} ({kind:?}; again in {} ms)",
                            step.id,
                            d.as_millis()
                        ),
                        None => format!("  FAILED   {:<24} {message}", step.id),
                    }
                }
                StepEnd::Waiting { owner, reason } => format!(
                    "  waiting  {:<24} on the {}: {reason}",
                    step.id,
                    owner.as_str()
                ),
            }
        };
        self.say(line);
    }
}
