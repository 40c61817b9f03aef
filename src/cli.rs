//! Command-line interface: parses arguments with clap, calls the library, prints results.
//!
//! This is the only place (with `main.rs`) that prints or reads the environment.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use realmctl::checks::outbound::{ProxyAuth, Secret};
use realmctl::checks::{Category, CheckResult, Observer};
use realmctl::preflight::{self, Options};
use realmctl::report::{self, DocFormat};
use realmctl::spec::{self, Provider, Spec, SpecError};

mod engine;
mod quota;

/// How a command ended, mapped to the brief's exit codes.
#[derive(Debug)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a check failed.
    Failed,
    /// Exit 3: waiting on someone (an approval gate or a customer action).
    Waiting,
}

/// Bad input (exit 2), with a message naming the file and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct BadInput(pub anyhow::Error);

/// realmctl: install the Digibee Integration Platform into a customer's own cloud,
/// check the customer's prerequisites, and enforce realm subscription limits.
#[derive(Debug, Parser)]
#[command(name = "realmctl", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of a command's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable.
    Text,
    /// One JSON object.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starting spec for a realm.
    Init {
        /// Cloud provider.
        #[arg(long, value_enum)]
        cloud: CloudArg,
        /// Realm name ([a-z][a-z0-9-]{1,30}).
        #[arg(long)]
        name: String,
        /// Base domain, e.g. digibee.acme.com.
        #[arg(long)]
        domain: String,
        /// Write to this file instead of stdout (refuses to overwrite).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Check a spec file only (no network).
    Validate {
        /// The realm spec.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Print the JSON Schema of the realm spec (for editors).
    Schema,
    /// The enforcement core: subscription/RTU admission of pipeline deployments.
    Quota {
        /// The quota command.
        #[command(subcommand)]
        cmd: quota::QuotaCmd,
    },
    /// Run a complete self-check on this machine alone: a demo realm and loopback peers.
    Demo {
        /// Folder for the demo realm (spec, certificates, report.html).
        #[arg(long, default_value = "realmctl-demo")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// What `install` would do, phase by phase, without doing anything.
    Plan {
        #[command(flatten)]
        args: engine::RunArgs,
    },
    /// Run or resume the install (exit 3 when waiting on an approval or a customer action).
    Install {
        #[command(flatten)]
        args: engine::RunArgs,
        /// Stop after this phase (1-6).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=6))]
        until: Option<u8>,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        /// Outbound targets checked at once.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
        concurrency: u16,
    },
    /// Record an approval: a phase's gate, or a customer action a step waits for.
    Approve {
        /// The realm's state folder.
        #[arg(long)]
        state: PathBuf,
        /// Phase number (1-6).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=6))]
        phase: u8,
        /// Who approves (recorded).
        #[arg(long)]
        by: String,
        /// A note kept with the approval.
        #[arg(long)]
        note: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Where the install stands and who must act next.
    Status {
        /// The realm's state folder.
        #[arg(long)]
        state: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// The auditor's report: phases, owners, timings, approvals, evidence, artifact checksums.
    Report {
        /// The realm's state folder.
        #[arg(long)]
        state: PathBuf,
        /// Report format.
        #[arg(long, value_enum, default_value = "html")]
        format: engine::ReportArg,
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Verify the tamper-evident journal, or print its head for safekeeping.
    Audit {
        /// The audit command.
        #[command(subcommand)]
        cmd: engine::AuditCmd,
    },
    /// Take over a stale install lock left by a killed process (needs its lock id).
    Unlock {
        /// The realm's state folder.
        #[arg(long)]
        state: PathBuf,
        /// The lock id the stale-lock error printed.
        #[arg(long)]
        lock_id: String,
        /// Who takes over (default: $REALMCTL_OPERATOR or $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Customer self-check: certificate, DNS, outbound access, VPN and spec prerequisites.
    Preflight {
        /// The realm spec.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Only these categories (comma-separated): certificate,dns,outbound,vpn,spec.
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<Category>>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
        /// Also write a report (FILE.html or FILE.md).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Outbound targets checked at once.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
        concurrency: u16,
    },
}

/// `--cloud` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CloudArg {
    /// Amazon EKS.
    Eks,
    /// Azure AKS.
    Aks,
    /// Google GKE.
    Gke,
}

impl From<CloudArg> for Provider {
    fn from(c: CloudArg) -> Self {
        match c {
            CloudArg::Eks => Provider::Eks,
            CloudArg::Aks => Provider::Aks,
            CloudArg::Gke => Provider::Gke,
        }
    }
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<Outcome, BadInput> {
    match cli.command {
        Command::Init {
            cloud,
            name,
            domain,
            out,
        } => init(cloud.into(), &name, &domain, out.as_deref()),
        Command::Validate { file, output } => validate(&file, output),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&spec::json_schema()).expect("schema is JSON")
            );
            Ok(Outcome::Success)
        }
        Command::Preflight {
            file,
            only,
            output,
            report,
            concurrency,
        } => preflight(
            &runtime()?,
            &file,
            only,
            output,
            report.as_deref(),
            usize::from(concurrency),
        ),
        Command::Quota { cmd } => quota::run(cmd),
        Command::Plan { args } => engine::plan(&args),
        Command::Install {
            args,
            until,
            yes,
            concurrency,
        } => engine::install(&args, until, yes, usize::from(concurrency)),
        Command::Approve {
            state,
            phase,
            by,
            note,
            output,
        } => engine::approve(&state, phase, &by, note.as_deref(), output),
        Command::Status { state, output } => engine::status(&state, output),
        Command::Report { state, format, out } => {
            engine::report_cmd(&state, format, out.as_deref())
        }
        Command::Audit { cmd } => engine::audit(cmd),
        Command::Unlock { state, lock_id, by } => engine::unlock(&state, &lock_id, by),
        Command::Demo { dir, output } => {
            let runtime = runtime()?;
            let demo = runtime
                .block_on(realmctl::demo::prepare(&dir))
                .map_err(bad)?;
            let report = dir.join("report.html");
            let outcome = preflight(
                &runtime,
                &demo.spec,
                Some(demo.only),
                output,
                Some(&report),
                32,
            )?;
            let walk = runtime
                .block_on(realmctl::demo::install(&dir, &demo.spec))
                .map_err(bad)?;
            let install_report = dir.join("install-report.html");
            engine::write_install_report(&walk.state, &install_report)?;
            let installed = walk.second.outcome == realmctl::engine::event::StopOutcome::Completed
                && walk.verified.ok;
            if output == Format::Text {
                println!(
                    "Demo realm in {}: spec {}, report {}",
                    dir.display(),
                    demo.spec.display(),
                    report.display()
                );
                println!(
                    "Demo install in {}: run {} {} ({}); approved by {} (journal record {}); run {}: {}; journal verified ({} records, head {}); report {}",
                    walk.state.display(),
                    walk.first.run,
                    format!("{:?}", walk.first.outcome).to_lowercase(),
                    walk.first.message,
                    walk.approval.by,
                    walk.approval.seq,
                    walk.second.run,
                    walk.second.message,
                    walk.verified.records,
                    walk.verified
                        .head
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    install_report.display()
                );
                println!(
                    "DNS is not part of the demo (it needs a name server for {}); try `realmctl preflight --only dns -f <your spec>`.",
                    realmctl::demo::BASE
                );
            }
            Ok(if installed { outcome } else { Outcome::Failed })
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, BadInput> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(bad)
}

pub(crate) fn bad(e: impl Into<anyhow::Error>) -> BadInput {
    BadInput(e.into())
}

fn init(
    provider: Provider,
    name: &str,
    domain: &str,
    out: Option<&Path>,
) -> Result<Outcome, BadInput> {
    let text = spec::init::render(provider, name, domain).map_err(bad)?;
    match out {
        None => print!("{text}"),
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| {
                    format!("cannot create {} (it must not exist yet)", path.display())
                })
                .map_err(bad)?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))
                .map_err(bad)?;
            eprintln!(
                "wrote {}; edit the REPLACE lines, then run `realmctl validate -f {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(Outcome::Success)
}

pub(crate) fn load(file: &Path) -> Result<Spec, BadInput> {
    spec::load(file).map_err(|e| bad(anyhow!(e)))
}

fn validate(file: &Path, output: Format) -> Result<Outcome, BadInput> {
    match (spec::load(file), output) {
        (Ok(s), Format::Text) => {
            println!(
                "{}: valid: realm {} on {} {} ({} required names, {} outbound targets)",
                file.display(),
                s.name,
                s.cloud.provider,
                s.cloud.region,
                s.domains.required_names().len(),
                s.outbound.targets.len()
            );
            Ok(Outcome::Success)
        }
        (Ok(s), Format::Json) => {
            println!(
                "{}",
                json!({"file": file, "valid": true, "realm": s.name, "errors": []})
            );
            Ok(Outcome::Success)
        }
        (Err(SpecError::Invalid { diagnostics, .. }), Format::Json) => {
            println!(
                "{}",
                json!({"file": file, "valid": false, "realm": null, "errors": diagnostics})
            );
            Err(bad(anyhow!(
                "{} is not a valid realm spec ({} problem(s))",
                file.display(),
                diagnostics.len()
            )))
        }
        (Err(e), _) => Err(bad(anyhow!(e))),
    }
}

/// Reads `user:password` from the environment variable the spec names.
pub(crate) fn proxy_auth(spec: &Spec) -> Result<Option<ProxyAuth>, BadInput> {
    let Some(var) = spec
        .outbound
        .proxy
        .as_ref()
        .and_then(|p| p.credentials_env.as_ref())
    else {
        return Ok(None);
    };
    let value = std::env::var(var).map_err(|_| {
        bad(anyhow!("{}: the environment variable {var} (named by outbound.proxyCredentialsEnv) is not set\n  help: export {var}=user:password before running preflight", spec.path.display()))
    })?;
    let Some((user, password)) = value.split_once(':') else {
        return Err(bad(anyhow!(
            "the environment variable {var} must hold user:password (no `:` found)\n  help: export {var}=user:password"
        )));
    };
    Ok(Some(ProxyAuth {
        user: user.to_owned(),
        password: Secret::new(password),
        source: var.clone(),
    }))
}

/// Progress on a terminal: one line that says how many checks are done.
struct Progress {
    bar: ProgressBar,
    done: Mutex<usize>,
}

impl Observer for Progress {
    fn on_category_start(&self, category: Category, checks: usize) {
        self.bar
            .set_message(format!("checking {category} ({checks})"));
    }
    fn on_check(&self, result: &CheckResult) {
        let mut d = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *d += 1;
        self.bar.set_prefix(format!("{d} done"));
        self.bar.tick();
        let _ = result;
    }
}

fn preflight(
    runtime: &tokio::runtime::Runtime,
    file: &Path,
    only: Option<Vec<Category>>,
    output: Format,
    report_path: Option<&Path>,
    concurrency: usize,
) -> Result<Outcome, BadInput> {
    let doc_format = match report_path {
        None => None,
        Some(p) => Some(DocFormat::for_path(p).ok_or_else(|| {
            bad(anyhow!(
                "--report {}: unknown report type\n  help: name the file .html or .md",
                p.display()
            ))
        })?),
    };
    let spec = load(file)?;
    let proxy_auth = proxy_auth(&spec)?;
    let now = OffsetDateTime::now_utc();
    let opts = Options {
        only,
        concurrency,
        proxy_auth,
        now,
        public_roots: None,
    };

    let bar = if output == Format::Text && std::io::stderr().is_terminal() {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg}").expect("static template"),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        ProgressBar::hidden()
    };
    let progress = Progress {
        bar,
        done: Mutex::new(0),
    };
    let result = runtime.block_on(preflight::run(&spec, &opts, &progress));
    progress.bar.finish_and_clear();
    let report = result.map_err(bad)?;

    match output {
        Format::Text => {
            let mut out = anstream::stdout();
            let _ = write!(out, "{}", report::text(&report));
        }
        Format::Json => println!("{}", report::json(&report)),
    }
    if let (Some(path), Some(fmt)) = (report_path, doc_format) {
        let stamp = now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&Rfc3339)
            .unwrap_or_default();
        let doc = report::document(&report, fmt, &stamp).map_err(bad)?;
        std::fs::write(path, doc)
            .with_context(|| format!("cannot write the report {}", path.display()))
            .map_err(bad)?;
    }
    Ok(if report.failed() {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}
