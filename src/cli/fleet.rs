//! `realmctl fleet`: the folders to read (arguments and `--list`), trusted keys, the day
//! support is judged for; the library reads the journals and renders; this prints.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use time::Date;
use time::macros::format_description;

use realmctl::engine::fleet;
use realmctl::engine::model::fleet as model;
use realmctl::fsutil;

use super::{BadInput, Outcome, bad};

/// `fleet --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FleetFormat {
    /// A table, one realm per line.
    Text,
    /// One JSON object.
    Json,
    /// A self-contained HTML page.
    Html,
}

/// `realmctl fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// State folders, or folders whose subfolders are state folders.
    pub paths: Vec<PathBuf>,
    /// A file naming state folders (or folders of them), one per line; `#` starts a comment.
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Every realm of a state database, postgres://USER@HOST:PORT/DB (password from
    /// PGPASSWORD), instead of folders.
    #[arg(long, conflicts_with_all = ["paths", "list"])]
    pub db: Option<String>,
    /// A trusted public key (`audit keygen`); given any, every record must be signed by one.
    #[arg(long = "public-key")]
    pub public_keys: Vec<PathBuf>,
    /// The day Kubernetes version support is judged for (YYYY-MM-DD; default: today, UTC).
    #[arg(long, value_parser = parse_day)]
    pub on: Option<Date>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: FleetFormat,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
}

fn parse_day(s: &str) -> Result<Date, String> {
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("`{s}` is not a day; give YYYY-MM-DD"))
}

/// The folders named in a `--list` file.
fn listed(path: &std::path::Path) -> Result<Vec<PathBuf>, BadInput> {
    let text = fsutil::read_capped_string(path, fsutil::caps::FOLDER_LIST)
        .map_err(|e| bad(anyhow!(e).context("--list")))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect())
}

/// `realmctl fleet`.
pub fn fleet(args: FleetArgs) -> Result<Outcome, BadInput> {
    let keys = super::inspect::public_keys(&args.public_keys)?;
    let today = args
        .on
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().date());
    if let Some(url) = &args.db {
        let db = realmctl::engine::io::db::DbRef::parse_database(
            url,
            super::env::optional_secret("PGPASSWORD"),
        )
        .map_err(bad)?;
        let f = fleet::survey_db(&db, &keys, today).map_err(bad)?;
        return show(&args, &f);
    }
    let mut roots = args.paths.clone();
    if let Some(l) = &args.list {
        roots.extend(listed(l)?);
    }
    if roots.is_empty() {
        return Err(bad(anyhow!(
            "no state folders given\n  help: name state folders (or a folder of them), or --list FILE"
        )));
    }
    let folders = fleet::discover(&roots);
    let f = fleet::survey(&folders, &keys, today);
    show(&args, &f)
}

/// Prints or writes the fleet; exit 1 when a journal does not verify.
fn show(args: &FleetArgs, f: &model::Fleet) -> Result<Outcome, BadInput> {
    let out = args.out.as_deref();
    match args.output {
        FleetFormat::Json => {
            let json = serde_json::to_string_pretty(f).expect("serialises") + "\n";
            super::emit(&json, out)?;
        }
        FleetFormat::Html => super::emit(&model::html(f).map_err(bad)?, out)?,
        FleetFormat::Text if out.is_some() => super::emit(&model::table(f), out)?,
        FleetFormat::Text => print!("{}", realmctl::text::terminal(&model::table(f))),
    }
    Ok(if f.broken == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
