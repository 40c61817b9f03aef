//! `realmctl approve`: an approval recorded by someone who holds the state, a customer's
//! approval signed offline where the customer is (`--offline`, no state needed), or that
//! statement imported into the state (`--import` with the customer's public key).

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;

use realmctl::engine::io::state::StateRef;
use realmctl::engine::model::offline::{self, SignedStatement, Statement};
use realmctl::engine::model::state::Approval;
use realmctl::engine::run;
use realmctl::fsutil;
use realmctl::signing::PublicKey;

use super::{BadInput, Format, Outcome, bad, env, print_json};

/// `approve`'s flags.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The realm's state folder, or postgres://USER@HOST:PORT/DB?realm=NAME (password from
    /// PGPASSWORD); not with --offline, which needs none.
    #[arg(long, value_parser = env::StateArg, required_unless_present = "offline", conflicts_with = "offline")]
    state: Option<StateRef>,
    /// Phase number (1-6); with --import, the statement's phase when not given.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=6), required_unless_present = "import")]
    phase: Option<u8>,
    /// Who approves (recorded); with --import, the statement names them.
    #[arg(long, required_unless_present = "import", conflicts_with = "import")]
    by: Option<String>,
    /// A note kept with the approval.
    #[arg(long, conflicts_with = "import")]
    note: Option<String>,
    /// Sign an approval statement here, without the realm's state: for a customer approving
    /// the phase-5 roles-and-resources document. Needs --document, --out and a signing key.
    #[arg(long, requires_all = ["document", "out"], conflicts_with = "import")]
    offline: bool,
    /// With --offline: the document approved (the roles-and-resources.md the cloud team sent,
    /// unchanged); its realm and definition digest are read from it.
    #[arg(long, value_name = "FILE", requires = "offline")]
    document: Option<PathBuf>,
    /// With --offline: where the signed statement is written, to hand to the cloud team.
    #[arg(short = 'o', long = "out", value_name = "FILE", requires = "offline")]
    out: Option<PathBuf>,
    /// Record the approval a customer signed with `approve --offline` (the file they sent).
    #[arg(long, value_name = "FILE", requires = "customer_key")]
    import: Option<PathBuf>,
    /// With --import: the customer's public key, as the customer handed it over (never taken
    /// from the statement); the statement must be signed by it.
    #[arg(long, value_name = "FILE", requires = "import")]
    customer_key: Option<PathBuf>,
    #[command(flatten)]
    signing: env::SigningArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: Format,
}

/// `realmctl approve`.
pub fn approve(args: ApproveArgs) -> Result<Outcome, BadInput> {
    if args.offline {
        return offline(&args);
    }
    let state = args.state.as_ref().expect("clap requires --state");
    let key = args.signing.load(state)?;
    #[cfg(feature = "test-actions")]
    let kill_at = env::kill_at()?;
    let now = ::time::OffsetDateTime::now_utc();
    let a = match (&args.import, &args.customer_key) {
        (Some(file), Some(customer)) => {
            let customer = PublicKey::load(customer).map_err(|e| bad(anyhow!(e)))?;
            let signed = read_statement(file)?;
            run::import_approval(state, args.phase, signed, &customer, now, key)
        }
        _ => run::approve(
            state,
            args.phase.expect("clap requires --phase"),
            args.by.as_deref().expect("clap requires --by"),
            args.note.as_deref(),
            now,
            key,
        ),
    }
    .map_err(|e| bad(anyhow!(e)))?;
    #[cfg(feature = "test-actions")]
    if kill_at == Some(realmctl::engine::options::KillPoint::Approved) {
        realmctl::engine::options::kill_self();
    }
    match args.output {
        Format::Json => print_json(&a),
        Format::Text => super::say(said(&a)),
    }
    Ok(Outcome::Success)
}

/// What `approve` prints for a recorded approval.
fn said(a: &Approval) -> String {
    let customer = a
        .customer_key
        .as_ref()
        .map(|k| format!(", imported from the customer's statement signed with {k}"))
        .unwrap_or_default();
    format!(
        "phase {} approved by {} at {} (journal record {}{customer}); run the command that waited for it (`realmctl install`, or `realmctl destroy` for a destroy's gate) to continue",
        a.phase, a.by, a.at, a.seq
    )
}

/// Reads a signed statement file (a regular file of at most [`offline::MAX_FILE`] bytes).
fn read_statement(path: &Path) -> Result<SignedStatement, BadInput> {
    let bytes = fsutil::read_capped(path, offline::MAX_FILE).map_err(|e| bad(anyhow!(e)))?;
    SignedStatement::parse(&bytes).map_err(|e| bad(anyhow!("{}: {e}", path.display())))
}

/// `approve --offline`: the customer signs a statement over the document they read.
fn offline(args: &ApproveArgs) -> Result<Outcome, BadInput> {
    let document = args.document.as_deref().expect("clap requires --document");
    let out = args.out.as_deref().expect("clap requires --out");
    let key = args.signing.load_own()?;
    let bytes =
        fsutil::read_capped(document, fsutil::caps::ARTIFACT).map_err(|e| bad(anyhow!(e)))?;
    let name = document.file_name().map_or_else(
        || document.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let at = realmctl::engine::model::record::timestamp(::time::OffsetDateTime::now_utc());
    let statement = Statement::for_document(
        &name,
        &bytes,
        args.phase.expect("clap requires --phase"),
        args.by.as_deref().expect("clap requires --by"),
        args.note.as_deref(),
        at,
    )
    .map_err(|e| bad(anyhow!(e)))?;
    let signed = statement.sign(&key);
    let mut text = serde_json::to_string_pretty(&signed).expect("a statement serialises");
    text.push('\n');
    super::emit(&text, Some(out))?;
    match args.output {
        Format::Json => print_json(&serde_json::json!({
            "statement": statement,
            "key": signed.key,
            "out": out.display().to_string(),
        })),
        Format::Text => super::say(offline_said(&statement, &signed, out)),
    }
    Ok(Outcome::Success)
}

/// What `approve --offline` prints: exactly what was signed.
fn offline_said(s: &Statement, signed: &SignedStatement, out: &Path) -> String {
    format!(
        "signed with {}: {} approves phase {} of realm {} — the document {} (SHA-256 {}) and the cluster definition {}\nwrote {}: send it to the cloud team with your public key; they record it with `realmctl approve --import {} --customer-key YOUR_KEY.pub`",
        signed.key,
        s.by,
        s.phase,
        s.realm,
        s.document.name,
        s.document.sha256,
        s.definition.as_deref().unwrap_or("(none)"),
        out.display(),
        out.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use realmctl::signing::SigningKey;

    #[test]
    fn the_offline_summary_names_every_signed_digest() {
        let s = Statement {
            kind: offline::KIND.into(),
            version: offline::VERSION,
            realm: "acme".into(),
            phase: 5,
            document: offline::Document {
                name: "roles-and-resources.md".into(),
                sha256: "ab".repeat(32),
            },
            definition: Some(format!("sha256:{}", "cd".repeat(32))),
            by: "Ann".into(),
            note: None,
            at: "t".into(),
        };
        let key = SigningKey::generate();
        let text = offline_said(&s, &s.sign(&key), Path::new("a.json"));
        for want in [
            &"ab".repeat(32),
            &"cd".repeat(32),
            key.public().id(),
            "acme",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }
}
