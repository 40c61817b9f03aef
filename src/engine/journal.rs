//! The durable, hash-chained journal of an install: `<state>/journal.db` (SQLite, WAL).
//!
//! Every record carries the SHA-256 of the previous one, so modifying, deleting, reordering or
//! inserting a record breaks the chain ([`super::audit`] finds the first bad record). Appends
//! read the head inside a `BEGIN IMMEDIATE` transaction, so `approve` may append while an
//! install runs without forking the chain. Triggers refuse UPDATE and DELETE: the log is
//! append-only through SQLite; the chain is what protects it from anyone who edits the file.
//!
//! Durability: records that must survive a power loss (a step's success, an approval) are
//! committed with `synchronous=FULL`; a step's start is committed with `NORMAL`, which survives
//! a killed process and is made durable by the next FULL commit of the same WAL. Losing a start
//! record to a power cut only means the step runs again, which every action tolerates.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;
use ring::digest;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::event::Event;

/// The journal file inside the state folder.
pub const FILE: &str = "journal.db";
/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const SCHEMA_VERSION: i64 = 1;

/// How hard an append must be on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync'd before the append returns (`synchronous=FULL`).
    Sync,
    /// Survives a killed process; made durable by the next `Sync` append.
    Buffered,
}

/// One stored record, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position, from 1, without gaps.
    pub seq: u64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The event kind (also inside the payload).
    pub kind: String,
    /// The event as JSON text.
    pub payload: String,
    /// Hash of the previous record (or [`GENESIS`]).
    pub prev: String,
    /// Hash of this record.
    pub hash: String,
}

impl Record {
    /// The event this record holds.
    pub fn event(&self) -> Result<Event, JournalError> {
        serde_json::from_str(&self.payload).map_err(|e| JournalError::Corrupt {
            seq: self.seq,
            detail: e.to_string(),
        })
    }
}

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The state folder has no journal.
    #[error("{} holds no install journal\n  help: check --state; `realmctl install` creates it", dir.display())]
    Missing {
        /// The state folder.
        dir: PathBuf,
    },
    /// The state folder could not be created.
    #[error("cannot create the state folder {}: {source}", dir.display())]
    CreateDir {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("journal {}: {source}", path.display())]
    Sql {
        /// The journal file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The journal was written by a newer realmctl.
    #[error("journal {} has schema version {found}; this realmctl reads version {SCHEMA_VERSION}\n  help: use the realmctl version that wrote it", path.display())]
    Version {
        /// The journal file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// A record's payload is not an event this build knows.
    #[error(
        "journal record {seq} cannot be read: {detail}\n  help: run `realmctl audit verify` to check the journal"
    )]
    Corrupt {
        /// The record.
        seq: u64,
        /// Why.
        detail: String,
    },
}

/// An open journal.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    sync: Option<Durability>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

/// The record hash: SHA-256 over the previous hash and the record's fields, each
/// length-prefixed so no two different records hash the same bytes.
pub fn record_hash(prev: &str, seq: u64, at: &str, kind: &str, payload: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"realmctl-journal-v1");
    for field in [
        prev.as_bytes(),
        at.as_bytes(),
        kind.as_bytes(),
        payload.as_bytes(),
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field);
    }
    ctx.update(&seq.to_be_bytes());
    hex(ctx.finish().as_ref())
}

/// A `SELECT seq, at, kind, payload, prev, hash` row.
fn row_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        seq: r.get::<_, i64>(0)? as u64,
        at: r.get(1)?,
        kind: r.get(2)?,
        payload: r.get(3)?,
        prev: r.get(4)?,
        hash: r.get(5)?,
    })
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(::time::UtcOffset::UTC);
    let ms = t.millisecond();
    let t = t.replace_millisecond(ms).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

impl Journal {
    /// Opens the journal of `dir`, creating the folder and the journal if needed.
    pub fn create(dir: &Path) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::CreateDir {
            dir: dir.to_owned(),
            source,
        })?;
        Self::open_at(&dir.join(FILE))
    }

    /// Opens the existing journal of `dir`.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        let path = dir.join(FILE);
        if !path.is_file() {
            return Err(JournalError::Missing {
                dir: dir.to_owned(),
            });
        }
        Self::open_at(&path)
    }

    fn open_at(path: &Path) -> Result<Self, JournalError> {
        let err = |source| JournalError::Sql {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(JournalError::Version {
                path: path.to_owned(),
                found: version,
            });
        }
        if version == 0 {
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS records (
                   seq INTEGER PRIMARY KEY,
                   at TEXT NOT NULL,
                   kind TEXT NOT NULL,
                   payload TEXT NOT NULL,
                   prev TEXT NOT NULL,
                   hash TEXT NOT NULL
                 ) STRICT;
                 CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
                   BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
                 CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
                   BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(err)?;
        }
        Ok(Journal {
            conn,
            path: path.to_owned(),
            sync: None,
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn set_sync(&mut self, d: Durability) -> Result<(), JournalError> {
        if self.sync != Some(d) {
            let v = match d {
                Durability::Sync => "FULL",
                Durability::Buffered => "NORMAL",
            };
            self.conn
                .pragma_update(None, "synchronous", v)
                .map_err(|e| self.sql(e))?;
            self.sync = Some(d);
        }
        Ok(())
    }

    /// Appends an event at `at` and returns the stored record.
    pub fn append(
        &mut self,
        event: &Event,
        at: OffsetDateTime,
        durability: Durability,
    ) -> Result<Record, JournalError> {
        self.set_sync(durability)?;
        let payload = serde_json::to_string(event).expect("events serialise");
        let kind = event.kind();
        let at = timestamp(at);
        let path = self.path.clone();
        let err = |source| JournalError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let head: Option<(u64, String)> = tx
            .prepare_cached("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
            .map_err(err)?
            .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .optional()
            .map_err(err)?;
        let (seq, prev) = match head {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_owned()),
        };
        let hash = record_hash(&prev, seq, &at, kind, &payload);
        tx.prepare_cached(
            "INSERT INTO records (seq, at, kind, payload, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(err)?
        .execute(params![seq as i64, at, kind, payload, prev, hash])
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Record {
            seq,
            at,
            kind: kind.to_owned(),
            payload,
            prev,
            hash,
        })
    }

    /// Calls `f` on every record in order (for verification over large journals).
    pub fn for_each(
        &self,
        mut f: impl FnMut(Record) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, kind, payload, prev, hash FROM records ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql(e))?;
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            let rec = row_record(r).map_err(|e| self.sql(e))?;
            f(rec)?;
        }
        Ok(())
    }

    /// Every record, in order.
    pub fn records(&self) -> Result<Vec<Record>, JournalError> {
        let mut out = Vec::new();
        self.for_each(|r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// The last record of `kind`, if any (one indexed read, not a replay).
    pub fn last_of_kind(&self, kind: &str) -> Result<Option<Record>, JournalError> {
        self.conn
            .query_row(
                "SELECT seq, at, kind, payload, prev, hash FROM records WHERE kind = ?1 ORDER BY seq DESC LIMIT 1",
                [kind],
                row_record,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The last record's position and hash.
    pub fn head(&self) -> Result<Option<(u64, String)>, JournalError> {
        self.conn
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::Event;

    fn approval(by: &str) -> Event {
        Event::Approved {
            phase: 5,
            by: by.into(),
            note: None,
            covers: "x".into(),
        }
    }

    #[test]
    fn appends_chain_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let a = j.append(&approval("ann"), now, Durability::Sync).unwrap();
        let b = j
            .append(&approval("bob"), now, Durability::Buffered)
            .unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev, GENESIS);
        assert_eq!(b.prev, a.hash);
        assert_eq!(
            b.hash,
            record_hash(&b.prev, b.seq, &b.at, &b.kind, &b.payload)
        );
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.records().unwrap(), vec![a, b.clone()]);
        assert_eq!(j.head().unwrap(), Some((2, b.hash)));
    }

    #[test]
    fn update_and_delete_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        j.append(
            &approval("ann"),
            OffsetDateTime::UNIX_EPOCH,
            Durability::Sync,
        )
        .unwrap();
        assert!(j.conn.execute("UPDATE records SET kind = 'x'", []).is_err());
        assert!(j.conn.execute("DELETE FROM records", []).is_err());
    }

    #[test]
    fn open_without_journal_names_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let e = Journal::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("holds no install journal"), "{e}");
    }

    #[test]
    fn hash_fields_are_unambiguous() {
        assert_ne!(
            record_hash(GENESIS, 1, "a", "bc", "d"),
            record_hash(GENESIS, 1, "ab", "c", "d")
        );
        assert_ne!(
            record_hash(GENESIS, 1, "a", "b", "c"),
            record_hash(GENESIS, 2, "a", "b", "c")
        );
    }
}
