//! Command-line interface: parses arguments with clap, reads the environment, calls the
//! library, prints results. One module per command family:
//!
//! - [`spec`]: `init`, `validate`, `schema`;
//! - [`preflight`]: the customer self-check;
//! - [`demo`]: the whole install on this machine alone;
//! - [`engine`]: `plan`, `install`, `unlock`;
//! - [`approve`]: `approve`, here, offline or imported;
//! - [`inspect`]: `status`, `report`, `audit`;
//! - [`state`]: `state export|import|init`;
//! - [`fleet`]: many realms at once, read-only;
//! - [`quota`]: the enforcement core;
//! - [`env`] (everything read from the environment) and [`progress`] (spinners and lines).
//!
//! This is the only place (with `main.rs`) that prints or reads the environment.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use realmctl::checks::Category;
use realmctl::engine::io::state::StateRef;
use realmctl::spec::Provider;

mod approve;
mod clouds;
mod demo;
mod destroy;
mod engine;
mod env;
mod fleet;
mod inspect;
mod preflight;
mod progress;
mod quota;
mod quota_realm;
mod spec;
mod state;
mod upgrade;
mod vpn;

/// How a command ended, mapped to the brief's exit codes.
#[derive(Debug)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a check failed, a deployment was denied, a step failed, verification failed.
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
    /// Run a complete self-check and install on this machine alone: a demo realm and loopback
    /// stand-ins of the cloud, DNS and outbound hosts (a simulation).
    Demo {
        /// Folder for the demo realm (spec, certificates, reports, state).
        #[arg(long, default_value = "realmctl-demo")]
        dir: PathBuf,
        /// The cloud to simulate (this build has a stand-in for EKS).
        #[arg(long, default_value = "eks")]
        cloud: realmctl::spec::Provider,
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
        /// Outbound targets checked at once (default: all at once, bounded by the open-file limit).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: Option<u16>,
        /// Let platform.apply take fields another field manager owns in the cluster (by
        /// default a conflict stops the step and names the manager and field).
        #[arg(long)]
        force_conflicts: bool,
        #[command(flatten)]
        signing: env::SigningArgs,
    },
    /// Tear the realm down: print the destroy plan (`--plan`), or run or resume the destroy
    /// (its plan journaled for the customer's approval, then node pools, clusters and the sweep
    /// of leftovers; exit 3 while waiting for the approval).
    Destroy {
        #[command(flatten)]
        args: engine::RunArgs,
        /// Print what would be deleted and kept, and why, without changing anything.
        #[arg(long)]
        plan: bool,
        /// Print only the least-privilege document destroy needs (an IAM policy, an Azure
        /// custom role, a Google IAM custom role), from the spec alone, asking no cloud.
        #[arg(long, conflicts_with = "plan")]
        policy: bool,
        /// Also delete the disks of persistent volumes and their data (kept by default).
        #[arg(long)]
        delete_volumes: bool,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        signing: env::SigningArgs,
    },
    /// Move the realm's cluster one Kubernetes minor up, to the spec's kubernetesVersion: print
    /// the pre-checks and the plan (`--plan`), or run or resume the upgrade (its plan journaled
    /// for the customer's approval, then the control plane, then each node pool; exit 3 while
    /// waiting for the approval).
    Upgrade {
        #[command(flatten)]
        args: engine::RunArgs,
        /// The target `MAJOR.MINOR`; must be the spec's kubernetesVersion (a confirmation).
        #[arg(long)]
        to: Option<String>,
        /// Print the pre-checks and what would move, without changing anything (exit 1 when a
        /// pre-check fails).
        #[arg(long)]
        plan: bool,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        signing: env::SigningArgs,
    },
    /// Record an approval: a phase's gate, or a customer action a step waits for; or sign a
    /// customer's approval offline, or import one.
    Approve(approve::ApproveArgs),
    /// Where the install stands and who must act next.
    Status {
        /// The realm's state folder, or postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD).
        #[arg(long, value_parser = env::StateArg)]
        state: StateRef,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// The auditor's report: phases, owners, timings, approvals, evidence, artifact checksums.
    Report {
        /// The realm's state folder, or postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD).
        #[arg(long, value_parser = env::StateArg)]
        state: StateRef,
        /// Report format.
        #[arg(long, value_enum, default_value = "html")]
        format: inspect::ReportArg,
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// One row per realm over many state folders: cloud, region, phase, who acts next and
    /// since when, Kubernetes version and its support, last run, journal verification.
    /// Reading only. Exit 1 when a journal does not verify.
    Fleet(fleet::FleetArgs),
    /// Move a realm's state between a folder and a database, or prepare a state database.
    State {
        /// The state command.
        #[command(subcommand)]
        cmd: state::StateCmd,
    },
    /// Verify the tamper-evident journal, or print its head for safekeeping.
    Audit {
        /// The audit command.
        #[command(subcommand)]
        cmd: inspect::AuditCmd,
    },
    /// Take over a stale install lock left by a killed process (needs its lock id).
    Unlock {
        /// The realm's state folder, or postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD).
        #[arg(long, value_parser = env::StateArg)]
        state: StateRef,
        /// The lock id the stale-lock error printed.
        #[arg(
            long,
            required_unless_present = "unreadable",
            conflicts_with = "unreadable"
        )]
        lock_id: Option<String>,
        /// Clear an unreadable lock holder file (after making sure no install runs).
        #[arg(long)]
        unreadable: bool,
        /// Who takes over (default: $REALMCTL_OPERATOR or $USER).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        signing: env::SigningArgs,
    },
    /// The realm's VPN instance: reveal its pre-shared key once.
    Vpn {
        /// The VPN command.
        #[command(subcommand)]
        cmd: vpn::VpnCmd,
    },
    /// Customer self-check: certificate, DNS, outbound access, VPN, cloud access and spec
    /// prerequisites.
    Preflight {
        /// The realm spec.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Only these categories (comma-separated): certificate,dns,outbound,vpn,access,spec.
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<Category>>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
        /// Also write a report (FILE.html or FILE.md).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Outbound targets checked at once (default: all at once, bounded by the open-file limit).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: Option<u16>,
        /// How long each cloud access step (credentials, account, permissions) may take, in
        /// milliseconds: the access category reports within three times this.
        #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
        access_timeout_ms: u64,
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
    let concurrency = |c: Option<u16>| c.map(usize::from);
    match cli.command {
        Command::Init {
            cloud,
            name,
            domain,
            out,
        } => spec::init(cloud.into(), &name, &domain, out.as_deref()),
        Command::Validate { file, output } => spec::validate(&file, output),
        Command::Schema => spec::schema(),
        Command::Preflight {
            file,
            only,
            output,
            report,
            concurrency: c,
            access_timeout_ms,
        } => preflight::run(
            &runtime()?,
            &file,
            only,
            output,
            report.as_deref(),
            concurrency(c),
            preflight::CloudFrom::Spec,
            std::time::Duration::from_millis(access_timeout_ms),
        ),
        Command::Quota { cmd } => quota::run(cmd),
        Command::Plan { args } => engine::plan(&args),
        Command::Install {
            args,
            until,
            yes,
            concurrency: c,
            force_conflicts,
            signing,
        } => engine::install(&args, until, yes, concurrency(c), force_conflicts, &signing),
        Command::Destroy {
            args,
            plan,
            policy,
            delete_volumes,
            yes,
            signing,
        } => {
            if policy {
                destroy::policy(&args)
            } else {
                destroy::destroy(&args, plan, delete_volumes, yes, &signing)
            }
        }
        Command::Upgrade {
            args,
            to,
            plan,
            yes,
            signing,
        } => upgrade::upgrade(&args, to.as_deref(), plan, yes, &signing),
        Command::Approve(args) => approve::approve(args),
        Command::Status { state, output } => inspect::status(&state, output),
        Command::Report { state, format, out } => inspect::report(&state, format, out.as_deref()),
        Command::Audit { cmd } => inspect::audit(cmd),
        Command::State { cmd } => state::run(cmd),
        Command::Fleet(args) => fleet::fleet(args),
        Command::Unlock {
            state,
            lock_id,
            unreadable,
            by,
            signing,
        } => engine::unlock(&state, lock_id.as_deref(), unreadable, by, &signing),
        Command::Demo { dir, cloud, output } => demo::run(&dir, cloud, output),
        Command::Vpn { cmd } => vpn::run(cmd),
    }
}

/// Whether an error is the machine's, not the input's: a full disk, a read-only or
/// inaccessible state folder, journal or ledger. Such failures exit 1 (the command failed, and
/// the message names the cause), never 2 ("bad input"): the command was right, the environment
/// refused it. Decided from the error types in the chain, not their text. A spec that cannot be
/// read stays bad input (exit 2), as the brief says.
pub(crate) fn is_environment(e: &anyhow::Error) -> bool {
    use realmctl::engine::io::db::DbError;
    use realmctl::engine::io::journal::JournalError;
    use realmctl::quota::store::LedgerError;
    if e.chain().any(|c| c.is::<realmctl::spec::SpecError>()) {
        return false;
    }
    // `#[error(transparent)]` wrappers hand their inner error's source on, not the inner error
    // itself: look inside the engine's and the audit's.
    let journal = |j: &JournalError| {
        matches!(
            j,
            JournalError::NoSpace { .. }
                | JournalError::Access { .. }
                | JournalError::NotRegular { .. }
        )
    };
    // The state database away (or this run fenced off by a takeover) is the environment's.
    let db = |d: &DbError| matches!(d, DbError::Unavailable { .. } | DbError::Fenced { .. });
    let journal = |j: &JournalError| match j {
        JournalError::Db(d) => db(d),
        other => journal(other),
    };
    e.chain().any(|c| {
        if let Some(d) = c.downcast_ref::<DbError>() {
            return db(d);
        }
        if let Some(realmctl::engine::run::EngineError::Lease(
            realmctl::engine::io::db::lease::LeaseError::Db(d),
        )) = c.downcast_ref::<realmctl::engine::run::EngineError>()
        {
            return db(d);
        }
        if let Some(j) = c.downcast_ref::<JournalError>() {
            return journal(j);
        }
        if let Some(realmctl::engine::run::EngineError::Journal(j)) =
            c.downcast_ref::<realmctl::engine::run::EngineError>()
        {
            return journal(j);
        }
        if let Some(realmctl::engine::audit::AuditError::Journal(j)) =
            c.downcast_ref::<realmctl::engine::audit::AuditError>()
        {
            return journal(j);
        }
        if let Some(l) = c.downcast_ref::<LedgerError>() {
            return matches!(l, LedgerError::NoSpace { .. });
        }
        c.downcast_ref::<std::io::Error>()
            .is_some_and(environment_io)
    })
}

/// An I/O error of the environment: no space, a read-only file system, no permission.
fn environment_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull | K::ReadOnlyFilesystem | K::PermissionDenied | K::QuotaExceeded
    ) || matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EROFS | libc::EACCES | libc::EPERM | libc::EDQUOT)
    )
}

/// Prints a line for a terminal: the library's values in it (a cloud's message, a journal's
/// text) reach stdout with their control sequences escaped ([`realmctl::text::terminal`]).
pub(crate) fn say(line: impl std::fmt::Display) {
    println!("{}", realmctl::text::terminal(&line.to_string()));
}

/// The same on stderr.
pub(crate) fn say_err(line: impl std::fmt::Display) {
    eprintln!("{}", realmctl::text::terminal(&line.to_string()));
}

/// The async runtime of a command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, BadInput> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(bad)
}

/// Bad input (exit 2).
pub(crate) fn bad(e: impl Into<anyhow::Error>) -> BadInput {
    BadInput(e.into())
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialises"));
}

/// Writes a report or document to `path`, or prints it when there is none.
pub(crate) fn emit(text: &str, path: Option<&std::path::Path>) -> Result<(), BadInput> {
    match path {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(p) => realmctl::fsutil::write_document(p, text.as_bytes()).map_err(bad),
    }
}

/// Asks `question` on the terminal (stderr) and reads the answer: only `y` or `yes` agrees.
fn confirm(question: &str) -> bool {
    use std::io::{BufRead, Write};
    eprint!("\n{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
