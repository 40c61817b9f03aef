//! `realmctl fleet`: reads many realms' state folders and builds one row each (the model and
//! its decisions are in [`crate::engine::model::fleet`]). Reading only: each journal is opened
//! read-only (so read-only copies work), walked once, its chain checked record by record (and
//! its signatures, given trusted keys) while the verified records are folded; nothing past a
//! break is folded. Folders are read on every core.

use std::path::{Path, PathBuf};

use time::Date;

use super::io::db::{Db, DbError, DbRef};
use super::io::journal::{self, Journal};
use super::io::lock;
use super::model::chain::ChainVerifier;
use super::model::fleet::{self as model, Facts, Fleet, FleetRow};
use super::model::state::State;
use crate::signing::PublicKey;

/// The realms under `roots`: a root holding a journal is one realm; any other folder stands
/// for the folders directly inside it that hold one (sorted by name). A root that is neither
/// is kept, so its row says why nothing could be read.
pub fn discover(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in roots {
        if root.join(journal::FILE).exists() {
            out.push(root.clone());
            continue;
        }
        let Ok(entries) = std::fs::read_dir(root) else {
            out.push(root.clone());
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| p.join(journal::FILE).exists())
            .collect();
        if found.is_empty() {
            out.push(root.clone());
        }
        found.sort();
        out.extend(found);
    }
    out
}

/// Walks the journal of `dir`: its verdict and the facts folded from what verified.
fn walk(dir: &Path, keys: &[PublicKey]) -> (model::Journal, Facts) {
    let (verdict, mut facts) = walk_journal(Journal::open_read_only(dir), keys);
    let holder = lock::read_holder(dir);
    facts.running = holder
        .as_ref()
        .filter(|h| lock::liveness(h) == lock::Liveness::Alive)
        .map(ToString::to_string);
    facts.lock = holder.map(|h| h.to_string());
    (verdict, facts)
}

/// Walks an opened journal: its verdict and the facts folded from what verified (the lock's
/// facts are the caller's).
fn walk_journal(
    opened: Result<Journal, super::io::journal::JournalError>,
    keys: &[PublicKey],
) -> (model::Journal, Facts) {
    let mut facts = Facts::default();
    let j = match opened {
        Ok(j) => j,
        Err(e) => {
            // The first line: the rest is a help line for `--state`, which `fleet` has not.
            let problem = e.to_string().lines().next().unwrap_or_default().to_owned();
            return (model::Journal::Unreadable { problem }, facts);
        }
    };
    let mut v = ChainVerifier::new(None).require_signatures(keys.to_vec());
    let mut state = State::default();
    let mut last_at = None;
    let mut broken = None;
    let mut verified = 0u64;
    let walked = j.for_each(|r| {
        if broken.is_some() {
            return Ok(());
        }
        match v.push(&r) {
            Ok(event) => {
                state.apply(r.seq, &r.at, &event);
                last_at = Some(r.at);
                verified += 1;
            }
            Err(b) => broken = Some(b.to_string()),
        }
        Ok(())
    });
    let verdict = match (walked, broken) {
        (Err(e), _) => model::Journal::Unreadable {
            problem: crate::text::one_line(&e.to_string()),
        },
        (Ok(()), Some(problem)) => model::Journal::Broken { verified, problem },
        (Ok(()), None) => match v.finish() {
            Ok(Some(head)) => model::Journal::Verified {
                records: verified,
                head: head.to_string(),
                signatures_checked: !keys.is_empty(),
            },
            Ok(None) => model::Journal::Unreadable {
                problem: "the journal has no records".into(),
            },
            Err(b) => model::Journal::Broken {
                verified,
                problem: b.to_string(),
            },
        },
    };
    facts.state = state;
    facts.last_at = last_at;
    (verdict, facts)
}

/// The fleet of every realm in the state database `db`, in name order, read over one
/// connection per core.
pub fn survey_db(db: &DbRef, keys: &[PublicKey], today: Date) -> Result<Fleet, DbError> {
    let realms = db.connect()?.realms()?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(realms.len().max(1));
    let chunk = realms.len().div_ceil(threads).max(1);
    let rows: Vec<Result<Vec<FleetRow>, DbError>> = std::thread::scope(|s| {
        let handles: Vec<_> = realms
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    let conn = db.connect()?;
                    Ok(c.iter()
                        .map(|realm| read_db(&conn.for_realm(realm), db, keys, today))
                        .collect())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reading a realm does not panic"))
            .collect()
    });
    let mut all = Vec::with_capacity(realms.len());
    for r in rows {
        all.extend(r?);
    }
    Ok(model::fleet(all, today))
}

/// The row of one realm of a state database.
fn read_db(conn: &Db, db: &DbRef, keys: &[PublicKey], today: Date) -> FleetRow {
    let (verdict, mut facts) = walk_journal(Ok(Journal::of_db(conn.clone())), keys);
    if let Ok(Some(lease)) = conn.lease_row() {
        facts.running = lease
            .live
            .then(|| format!("{} (lease until {})", lease.holder, lease.expires));
        facts.lock = Some(lease.holder.to_string());
    }
    model::row(
        &db.with_realm(conn.realm()).to_string(),
        verdict,
        facts,
        today,
    )
}

/// The row of one folder.
pub fn read(dir: &Path, keys: &[PublicKey], today: Date) -> FleetRow {
    let (verdict, facts) = walk(dir, keys);
    model::row(&dir.display().to_string(), verdict, facts, today)
}

/// The fleet of `folders`, in their order, read on every core.
pub fn survey(folders: &[PathBuf], keys: &[PublicKey], today: Date) -> Fleet {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(folders.len().max(1));
    let chunk = folders.len().div_ceil(threads).max(1);
    let rows: Vec<FleetRow> = std::thread::scope(|s| {
        let handles: Vec<_> = folders
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(|d| read(d, keys, today)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reading a folder does not panic"))
            .collect()
    });
    model::fleet(rows, today)
}
