//! `realmctl vpn reveal-key`: prints the realm VPN's pre-shared key once, to the person the
//! customer's gateway is configured by, and records that (never the key) in the journal.

use std::path::Path;

use anyhow::anyhow;
use clap::Subcommand;
use realmctl::engine::reveal::{self, RevealError};

use super::{BadInput, Outcome, bad, env};

/// `realmctl vpn …`.
#[derive(Debug, Subcommand)]
pub enum VpnCmd {
    /// Print the realm VPN's pre-shared key once (read from the cloud's secret store with the
    /// install's credentials); the journal records that it was revealed and to whom. A second
    /// reveal is refused: share the secret through the store's own access control instead.
    RevealKey {
        /// The realm spec.
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        /// The realm's state folder, or postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD).
        #[arg(long, value_parser = super::env::StateArg)]
        state: realmctl::engine::io::state::StateRef,
        /// Who receives the key (recorded; default: $REALMCTL_OPERATOR or $USER).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        signing: env::SigningArgs,
    },
}

/// Runs a `vpn` command.
pub fn run(cmd: VpnCmd) -> Result<Outcome, BadInput> {
    match cmd {
        VpnCmd::RevealKey {
            file,
            state,
            by,
            signing,
        } => reveal_key(&file, &state, by, &signing),
    }
}

fn reveal_key(
    file: &Path,
    state: &realmctl::engine::io::state::StateRef,
    by: Option<String>,
    signing: &env::SigningArgs,
) -> Result<Outcome, BadInput> {
    let spec = super::spec::load(file)?;
    let key = signing.load(state)?;
    let runtime = super::runtime()?;
    let Some(cloud) = super::clouds::connect(&runtime, &spec)? else {
        return Err(bad(anyhow!(
            "this build has no client for {}, so it cannot read the key",
            spec.cloud.provider
        )));
    };
    let by = by.unwrap_or_else(env::operator);
    let now = ::time::OffsetDateTime::now_utc();
    match runtime.block_on(reveal::vpn_key(state, &spec, cloud.as_ref(), &by, now, key)) {
        Ok(secret) => {
            // The one place the key is ever printed: stdout, once, nothing else on the line.
            println!("{}", secret.expose());
            super::say_err(format!(
                "the pre-shared key was revealed to {by} and the journal records it; it will not be shown again"
            ));
            Ok(Outcome::Success)
        }
        Err(e @ (RevealError::AlreadyRevealed { .. } | RevealError::Cloud(_))) => {
            super::say_err(format!("error: {e}"));
            Ok(Outcome::Failed)
        }
        Err(e) => Err(bad(anyhow!(e))),
    }
}
