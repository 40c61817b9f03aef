//! `realmctl state`: a realm's state moved between a folder and a database (`export`,
//! `import`), and a state database made ready for a team (`init`, with an install role's
//! rights).

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Subcommand;

use realmctl::engine::io::db::DbRef;
use realmctl::engine::io::lock::Holder;
use realmctl::engine::io::state::StateRef;
use realmctl::engine::model::record::timestamp;
use realmctl::engine::state_copy;

use super::{BadInput, Format, Outcome, bad, env, print_json};

/// `realmctl state …`.
#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// Copy a realm from a state database into a new state folder, every hash kept.
    Export {
        /// The realm in the database: postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD).
        #[arg(long, value_parser = env::StateArg)]
        state: StateRef,
        /// The state folder to create (it must hold no journal records).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Copy a realm from a state folder into a state database, every hash kept.
    Import {
        /// The state folder.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The realm in the database: postgres://USER@HOST:PORT/DB?realm=NAME (password from
        /// PGPASSWORD); it must hold no records.
        #[arg(long, value_parser = env::StateArg)]
        state: StateRef,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Create the state tables in a database (as their owner), and give an install role only
    /// what an install needs: reading and appending records, never changing one.
    Init {
        /// The database: postgres://USER@HOST:PORT/DB (password from PGPASSWORD).
        #[arg(long)]
        db: String,
        /// A role to grant an install's rights to.
        #[arg(long)]
        grant: Option<String>,
    },
}

/// `realmctl state`.
pub fn run(cmd: StateCmd) -> Result<Outcome, BadInput> {
    let (from, to, output) = match cmd {
        StateCmd::Init { db, grant } => return init(&db, grant.as_deref()),
        StateCmd::Export { state, to, output } => (state, StateRef::Folder(to), output),
        StateCmd::Import {
            from,
            state,
            output,
        } => (StateRef::Folder(from), state, output),
    };
    let by = env::operator();
    let holder = Holder::me(
        &by,
        "state copy",
        timestamp(::time::OffsetDateTime::now_utc()),
    );
    let copied = state_copy::copy(&from, &to, holder).map_err(|e| bad(anyhow!(e)))?;
    match output {
        Format::Json => print_json(&copied),
        Format::Text => super::say(format!(
            "copied {} records and {} artifacts from {from} to {to}; head {} on both; {from} is left as it was",
            copied.records,
            copied.artifacts,
            copied
                .head
                .as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string),
        )),
    }
    Ok(Outcome::Success)
}

fn init(url: &str, grant: Option<&str>) -> Result<Outcome, BadInput> {
    let r = DbRef::parse_database(url, env::optional_secret("PGPASSWORD")).map_err(bad)?;
    let db = r.connect().map_err(bad)?;
    if let Some(role) = grant {
        db.grant(role).map_err(bad)?;
        super::say(format!(
            "the state tables are ready in {}; role {role} may read and append records, hold leases and add artifacts, and may not change or remove a record",
            r.database()
        ));
    } else {
        super::say(format!("the state tables are ready in {}", r.database()));
    }
    Ok(Outcome::Success)
}
