//! `realmctl status|report|audit`: reading a state folder. All of it is read-only, so it works
//! on a read-only copy of a state folder and on a full disk.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Subcommand, ValueEnum};

use realmctl::engine::audit;
use realmctl::engine::io::journal::JournalError;
use realmctl::engine::io::state::StateRef;
use realmctl::engine::model::chain::Checkpoint;
use realmctl::engine::model::report::{self, ReportFormat};
use realmctl::engine::run::{self, EngineError};
use realmctl::report::DocFormat;
use realmctl::signing::{self, PublicKey, SigningKey};

use super::{BadInput, Format, Outcome, bad, env, print_json};

/// `report --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportArg {
    /// One self-contained HTML file.
    Html,
    /// Markdown.
    Md,
    /// JSON.
    Json,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Verify the journal's hash chain and the artifact checksums (exit 1 on any problem).
    Verify {
        /// The state folder, or postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD).
        #[arg(long, value_parser = super::env::StateArg)]
        state: StateRef,
        /// A head kept earlier (SEQ:HASH from `audit checkpoint`): proves nothing was cut off.
        #[arg(long)]
        checkpoint: Option<Checkpoint>,
        /// A trusted signer's public key (repeatable): every record must then carry a valid
        /// signature by one of them, the last record included.
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        /// A customer's public key (repeatable): every approval imported from a customer's
        /// offline statement must then be signed by one of them (without it, each statement is
        /// checked against the key it carries, which proves only that it was not changed).
        #[arg(long = "customer-key", value_name = "FILE")]
        customer_keys: Vec<PathBuf>,
        /// The realm spec whose `artifacts.bucket` holds the artifacts (read with the
        /// credentials of your own environment, the spec's cloud chain first); without it only
        /// artifacts in the state folder are read. Never taken from the journal.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Print the journal head (SEQ:HASH) for an auditor to keep.
    Checkpoint {
        /// The state folder, or postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD).
        #[arg(long, value_parser = super::env::StateArg)]
        state: StateRef,
        /// A trusted signer's public key (repeatable): the head is printed only if every
        /// record is signed by one of them.
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Make an Ed25519 signing key pair for an operator or a team: the private key goes to
    /// FILE (0600, never overwritten), the public key to FILE.pub and to stdout.
    Keygen {
        /// Where to write the private key.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
}

/// Reads the public keys an auditor trusts.
pub(super) fn public_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, BadInput> {
    paths
        .iter()
        .map(|p| PublicKey::load(p).map_err(|e| bad(anyhow!(e))))
        .collect()
}

/// `audit keygen`.
fn keygen(out: &Path, output: Format) -> Result<Outcome, BadInput> {
    let public = SigningKey::generate_to(out).map_err(|e| bad(anyhow!(e)))?;
    let pub_path = signing::public_path(out);
    match output {
        Format::Json => print_json(&serde_json::json!({
            "keyId": public.id(),
            "privateKey": out.display().to_string(),
            "publicKey": pub_path.display().to_string(),
            "publicKeyPem": public.to_pem(),
        })),
        Format::Text => {
            print!("{}", public.to_pem());
            super::say(format!(
                "key id {}: private key {} (0600; keep it outside every state folder), public key {}",
                public.id(),
                out.display(),
                pub_path.display()
            ));
            super::say(format!(
                "sign with `--signing-key {}`; auditors verify with `realmctl audit verify --public-key {}`",
                out.display(),
                pub_path.display()
            ));
        }
    }
    Ok(Outcome::Success)
}

/// The text line about signatures after a verification.
fn signature_line(v: &audit::Verification) -> String {
    let by: Vec<String> = v
        .signed_by
        .iter()
        .map(|(key, n)| {
            let from = v
                .trusted_keys
                .iter()
                .find(|k| &k.id == key)
                .map(|k| format!(" [{}]", k.source))
                .unwrap_or_default();
            format!("{key}{from}: {n}")
        })
        .collect();
    let by = if by.is_empty() {
        "none".to_owned()
    } else {
        by.join(", ")
    };
    if v.signatures_checked {
        format!("every record signed by a trusted key ({by})")
    } else {
        format!(
            "signatures NOT checked (signed by {by}; unsigned: {}): give --public-key to require them",
            v.unsigned
        )
    }
}

/// `realmctl status`.
pub fn status(state: &StateRef, output: Format) -> Result<Outcome, BadInput> {
    let rep = run::report(state).map_err(|e| bad(anyhow!(e)))?;
    let holder = state.holder();
    match output {
        Format::Json => print_json(&serde_json::json!({"report": rep, "lock": holder})),
        Format::Text => {
            super::say(format!(
                "realm {} ({}), playbook {}",
                rep.realm, rep.cloud, rep.playbook
            ));
            for p in &rep.phases {
                super::say(format!(
                    "  phase {} {:<36} {:<10} {:?}",
                    p.number,
                    p.title,
                    p.owner.as_str(),
                    p.status
                ));
            }
            super::say(&rep.summary);
            if let Some(n) = &rep.next {
                super::say(format!("next: {n}"));
            }
            if let Some(h) = holder {
                super::say(format!("lock: {h}"));
            }
        }
    }
    Ok(Outcome::Success)
}

/// Renders the report of `state` in `format` to `out`.
#[cfg_attr(not(feature = "eks"), allow(dead_code))] // used by the demo
pub fn write_report(state: &StateRef, format: ReportArg, out: &Path) -> Result<(), BadInput> {
    let text = render(state, format)?;
    super::emit(&text, Some(out))
}

fn render(state: &StateRef, format: ReportArg) -> Result<String, BadInput> {
    let rep = run::report(state).map_err(|e| bad(anyhow!(e)))?;
    let fmt = match format {
        ReportArg::Html => ReportFormat::Doc(DocFormat::Html),
        ReportArg::Md => ReportFormat::Doc(DocFormat::Markdown),
        ReportArg::Json => ReportFormat::Json,
    };
    report::render(&rep, fmt).map_err(bad)
}

/// `realmctl report`.
pub fn report(
    state: &StateRef,
    format: ReportArg,
    out: Option<&Path>,
) -> Result<Outcome, BadInput> {
    let text = render(state, format)?;
    super::emit(&text, out)?;
    Ok(Outcome::Success)
}

/// The store `audit verify` reads artifacts from: the bucket of the spec the auditor gives
/// (opened as `install` opens it: the spec's cloud credential chain for a bucket of that
/// cloud), else the state folder alone.
fn audit_store(
    runtime: &tokio::runtime::Runtime,
    state: &StateRef,
    spec: Option<&Path>,
) -> Result<realmctl::engine::io::store::Store, BadInput> {
    use realmctl::engine::io::store::Store;
    let Some(file) = spec else {
        return Store::of_state(state).map_err(bad);
    };
    let spec = super::spec::load(file)?;
    if spec.artifacts_bucket.is_none() {
        return Store::of_state(state).map_err(bad);
    }
    let cloud = super::clouds::connect(runtime, &spec)?;
    #[cfg(feature = "object-store")]
    let access = env::cloud_access(
        cloud.as_ref(),
        &spec.cloud.region,
        spec.cloud.endpoint.as_deref(),
    );
    #[cfg(not(feature = "object-store"))]
    let _ = cloud;
    Store::open(
        state,
        spec.artifacts_bucket.as_deref(),
        env::object_options(),
        #[cfg(feature = "object-store")]
        access.as_ref(),
    )
    .map_err(bad)
}

/// A journal that cannot be read as a journal at all is a failed verification (exit 1), not
/// bad input: an empty or replaced journal is exactly what an auditor must hear about.
fn unverifiable(e: &JournalError) -> bool {
    matches!(
        e,
        JournalError::Empty { .. } | JournalError::NotAJournal { .. } | JournalError::Corrupt(_)
    )
}

/// `realmctl audit ...`.
pub fn audit(cmd: AuditCmd) -> Result<Outcome, BadInput> {
    match cmd {
        AuditCmd::Keygen { out, output } => keygen(&out, output),
        AuditCmd::Verify {
            state,
            checkpoint,
            public_keys: key_files,
            customer_keys,
            file,
            output,
        } => {
            let keys = public_keys(&key_files)?;
            let customers = public_keys(&customer_keys)?;
            let runtime = super::runtime()?;
            let store = audit_store(&runtime, &state, file.as_deref())?;
            let verified = runtime.block_on(audit::verify_state(
                &state, &store, checkpoint, keys, &customers,
            ));
            let v = match verified {
                Ok(v) => v,
                Err(audit::AuditError::Journal(e)) if unverifiable(&e) => {
                    super::say_err(format!("FAILED: {e}"));
                    return Ok(Outcome::Failed);
                }
                Err(e) => return Err(bad(anyhow!(e))),
            };
            match output {
                Format::Json => print_json(&v),
                Format::Text => {
                    if let Some(m) = &v.message {
                        super::say(format!("FAILED: {m}"));
                    }
                    for p in &v.artifact_problems {
                        super::say(format!(
                            "FAILED: artifact {} ({}, recorded in record {}): {}",
                            p.name, p.location, p.seq, p.problem
                        ));
                    }
                    for c in &v.customer_approvals {
                        match &c.problem {
                            Some(p) => super::say(format!(
                                "FAILED: the customer's approval of phase {} (record {}, {}): {p}",
                                c.phase, c.seq, c.key
                            )),
                            None => super::say(format!(
                                "customer approval of phase {} by {} (record {}): signed with {}{}",
                                c.phase,
                                c.by,
                                c.seq,
                                c.key,
                                if v.customer_keys_checked {
                                    ", a key you gave"
                                } else {
                                    " (the key it carries: give --customer-key to check it is the customer's)"
                                }
                            )),
                        }
                    }
                    if v.ok {
                        let head = v
                            .head
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_else(|| "empty".into());
                        super::say(format!(
                            "ok: {} records chained, {}; {} artifact checksums hold; head {head}",
                            v.records,
                            signature_line(&v),
                            v.artifacts
                        ));
                    }
                }
            }
            Ok(if v.ok {
                Outcome::Success
            } else {
                Outcome::Failed
            })
        }
        AuditCmd::Checkpoint {
            state,
            public_keys: key_files,
            output,
        } => match audit::checkpoint(&state, public_keys(&key_files)?) {
            Err(e) if unverifiable(&e) => {
                super::say_err(format!("FAILED: {e}"));
                Ok(Outcome::Failed)
            }
            Err(e) => Err(bad(anyhow!(EngineError::from(e)))),
            Ok(Err(b)) => {
                super::say_err(format!(
                    "error: the journal does not verify, so its head proves nothing: {b}"
                ));
                Ok(Outcome::Failed)
            }
            Ok(Ok(None)) => Err(bad(anyhow!("the journal of {} is empty", state))),
            Ok(Ok(Some(c))) => {
                match output {
                    Format::Json => print_json(&c),
                    Format::Text => super::say(format!("{c}")),
                }
                Ok(Outcome::Success)
            }
        },
    }
}
