//! The durable, hash-chained journal of an install: `<state>/journal.db` (SQLite, WAL).
//!
//! Every record carries the SHA-256 of the previous one (the scheme is in
//! [`crate::engine::model::record`]), so modifying, deleting, reordering or inserting a record
//! breaks the chain ([`crate::engine::model::chain`] finds the first bad record). Appends read the
//! head inside a `BEGIN IMMEDIATE` transaction, so `approve` may append while an install runs
//! without forking the chain. Triggers refuse UPDATE and DELETE: the log is append-only through
//! SQLite; the chain is what protects it from anyone who edits the file.
//!
//! Durability: records that must survive a power loss (a step's success, an approval) are
//! committed with `synchronous=FULL`; a step's start is committed with `NORMAL`, which survives
//! a killed process and is made durable by the next FULL commit of the same WAL. Losing a start
//! record to a power cut only means the step runs again, which every action tolerates.
//!
//! Three ways in: [`Journal::create`] (install: a new journal is built aside and renamed into
//! place, so `journal.db` never exists half-made), [`Journal::open`] (approve, unlock) and
//! [`Journal::open_read_only`] (status, report, audit: never writes, and works on a read-only
//! copy of a state folder or a full disk). A journal cut to 0 bytes, or a state folder with
//! artifacts but no journal, is an error, never a fresh start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ::time::OffsetDateTime;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::db::{self, Db, DbError, DbRef, journal::Append as DbAppend, journal::Entry as DbEntry};
use super::state::{AsState, StateRef};
use crate::engine::model::event::{Event, EventKind};
use crate::engine::model::record::{Record, Unreadable, timestamp};
use crate::fsutil;
use crate::signing::{Signature, SigningKey};

/// The journal file inside the state folder.
pub const FILE: &str = "journal.db";
const SCHEMA_VERSION: i64 = 2;
const SCHEMA: &str = "CREATE TABLE records (
       seq INTEGER PRIMARY KEY,
       at TEXT NOT NULL,
       kind TEXT NOT NULL,
       payload TEXT NOT NULL,
       prev TEXT NOT NULL,
       hash TEXT NOT NULL,
       signer TEXT,
       sig TEXT
     ) STRICT;
     CREATE INDEX records_kind ON records (kind, seq);
     CREATE TRIGGER records_no_update BEFORE UPDATE ON records
       BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
     CREATE TRIGGER records_no_delete BEFORE DELETE ON records
       BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
     PRAGMA user_version = 2;";
/// Version 1 had no signature columns: a writer adds them (existing records stay unsigned).
const MIGRATE_1_TO_2: &str = "BEGIN IMMEDIATE;
     ALTER TABLE records ADD COLUMN signer TEXT;
     ALTER TABLE records ADD COLUMN sig TEXT;
     PRAGMA user_version = 2;
     COMMIT;";
/// The columns of a record, as [`row_record`] reads them.
const COLUMNS: &str = "seq, at, kind, payload, prev, hash, signer, sig";
/// The same from a version-1 journal opened read-only (never migrated by a reader).
const COLUMNS_V1: &str = "seq, at, kind, payload, prev, hash, NULL, NULL";

pub use crate::engine::model::record::Durability;

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The state folder has no journal.
    #[error("{} holds no install journal\n  help: check --state; `realmctl install` creates it", dir.display())]
    Missing {
        /// The state folder.
        dir: PathBuf,
    },
    /// The journal file is empty: it was cut off, and with it the install's history.
    #[error("{} is empty (0 bytes): the journal was truncated, and the install's history and approvals with it\n  help: restore journal.db from a backup; realmctl will not start over in a state folder that had a history", path.display())]
    Empty {
        /// The journal file.
        path: PathBuf,
    },
    /// The state folder has artifacts (or other traces of a run) but no journal records.
    #[error("{} holds {evidence} but its journal has no records: the journal was lost or replaced\n  help: restore journal.db from a backup, or use a new state folder for a fresh install", dir.display())]
    Lost {
        /// The state folder.
        dir: PathBuf,
        /// What shows a run happened.
        evidence: String,
    },
    /// The state folder could not be created or read.
    #[error("state folder: {0}")]
    Dir(#[from] fsutil::PathError),
    /// The disk is full.
    #[error("journal {}: no space left on device\n  help: free space on the file system of the state folder, then run the command again; nothing was recorded by the failed write", path.display())]
    NoSpace {
        /// The journal file.
        path: PathBuf,
    },
    /// SQLite failed.
    #[error("journal {}: {source}", path.display())]
    Sql {
        /// The journal file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The state database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The state database has no records of the realm.
    #[error(
        "{state} holds no install journal\n  help: check the realm in --state; `realmctl install` creates it"
    )]
    NoRealm {
        /// The database and realm.
        state: String,
    },
    /// The journal was written by a newer realmctl.
    #[error("journal {} has schema version {found}; this realmctl reads version {SCHEMA_VERSION}\n  help: use the realmctl version that wrote it", path.display())]
    Version {
        /// The journal file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// The journal path is a FIFO, a folder or a device.
    #[error("{} is {kind}, not a journal file\n  help: check --state; a state folder's journal.db is a regular file", path.display())]
    NotRegular {
        /// The journal file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// The journal exists but this user may not open it (permissions, a read-only folder for
    /// a writer).
    #[error("journal {}: {}\n  help: run as the user who owns the state folder, or fix its permissions", path.display(), crate::fsutil::describe_io(source))]
    Access {
        /// The journal file.
        path: PathBuf,
        /// Why it cannot be opened.
        source: std::io::Error,
    },
    /// The file is not a realmctl journal.
    #[error("{} is not a realmctl journal\n  help: check --state", path.display())]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// A record's payload is not an event this build knows.
    #[error(transparent)]
    Corrupt(#[from] Unreadable),
    /// The blocking task running a journal write failed.
    #[error("journal write did not complete: {0}")]
    Task(String),
}

/// Maps a SQLite error to a journal error, naming a full disk as such.
fn sql_error(path: &Path, source: rusqlite::Error) -> JournalError {
    if fsutil::sqlite_disk_full(path.parent(), &source) {
        return JournalError::NoSpace {
            path: path.to_owned(),
        };
    }
    // SQLite cannot write its journal files beside the database: say why (a read-only
    // folder, or one this user may not write) rather than SQLite's "unable to open".
    if let rusqlite::Error::SqliteFailure(f, _) = &source
        && matches!(
            f.code,
            rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::PermissionDenied
        )
        && let Some(dir) = path.parent()
        && let Err(e) = rustix::fs::access(dir, rustix::fs::Access::WRITE_OK)
    {
        return JournalError::Access {
            path: path.to_owned(),
            source: e.into(),
        };
    }
    JournalError::Sql {
        path: path.to_owned(),
        source,
    }
}

/// An open journal file.
struct FileJournal {
    conn: Connection,
    path: PathBuf,
    sync: Option<Durability>,
    columns: &'static str,
    signer: Option<std::sync::Arc<SigningKey>>,
}

impl std::fmt::Debug for FileJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

/// A `SELECT {COLUMNS}` row.
fn row_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let signer: Option<String> = r.get(6)?;
    let sig: Option<String> = r.get(7)?;
    Ok(Record {
        seq: r.get::<_, i64>(0)? as u64,
        at: r.get(1)?,
        kind: r.get(2)?,
        payload: r.get(3)?,
        prev: r.get(4)?,
        hash: r.get(5)?,
        // A record with only one of the two is as good as unsigned.
        signature: signer.zip(sig).map(|(key, sig)| Signature { key, sig }),
    })
}

/// Inserts `r` as it is (its statement cached on the connection).
fn insert(c: &Connection, r: &Record) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO records (seq, at, kind, payload, prev, hash, signer, sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        r.seq as i64,
        r.at,
        r.kind,
        r.payload,
        r.prev,
        r.hash,
        r.signature.as_ref().map(|s| &s.key),
        r.signature.as_ref().map(|s| &s.sig)
    ])
    .map(drop)
}

/// What in a state folder shows that a run happened.
fn traces_of_a_run(dir: &Path) -> Option<String> {
    let artifacts = dir.join("artifacts");
    let has_artifacts = std::fs::read_dir(&artifacts).is_ok_and(|mut d| d.next().is_some());
    has_artifacts.then(|| format!("install artifacts ({})", artifacts.display()))
}

/// Whether the journal's WAL file holds frames (records not yet copied into the main file).
fn wal_exists(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::symlink_metadata(PathBuf::from(wal)).is_ok()
}

fn wal_has_frames(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0)
}

/// Refuses a journal file cut to 0 bytes (a brand-new journal is never 0 bytes: it is built
/// aside and renamed into place with its schema).
fn refuse_empty(path: &Path) -> Result<(), JournalError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 && !wal_has_frames(path) => Err(JournalError::Empty {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

impl FileJournal {
    /// Opens the journal of `dir` for an install, creating the folder (0700) and a new journal
    /// when there is none. Refuses an empty journal file, and a folder that has traces of a run
    /// but no journal records.
    pub fn create(dir: &Path) -> Result<Self, JournalError> {
        fsutil::create_private_dir(dir)?;
        let path = dir.join(FILE);
        if !path.exists() {
            if let Some(evidence) = traces_of_a_run(dir) {
                return Err(JournalError::Lost {
                    dir: dir.to_owned(),
                    evidence,
                });
            }
            Self::build_new(&path)?;
        }
        let j = Self::open_at(&path, false)?;
        if j.head()?.is_none()
            && let Some(evidence) = traces_of_a_run(dir)
        {
            return Err(JournalError::Lost {
                dir: dir.to_owned(),
                evidence,
            });
        }
        Ok(j)
    }

    /// Builds a journal with its schema beside `path` and renames it into place.
    fn build_new(path: &Path) -> Result<(), JournalError> {
        let tmp = path.with_file_name(format!(".{FILE}.{}.new", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let built = (|| {
            let conn = Connection::open(&tmp).map_err(|e| sql_error(&tmp, e))?;
            conn.execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;"))
                .map_err(|e| sql_error(&tmp, e))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| sql_error(&tmp, e))?;
            drop(conn);
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|source| {
                    JournalError::Dir(fsutil::PathError {
                        path: tmp.clone(),
                        source,
                    })
                })?;
            std::fs::rename(&tmp, path).map_err(|source| {
                JournalError::Dir(fsutil::PathError {
                    path: path.to_owned(),
                    source,
                })
            })
        })();
        if built.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        built?;
        if let Some(dir) = path.parent() {
            fsutil::sync_dir(dir);
        }
        Ok(())
    }

    /// Opens the existing journal of `dir` for writing (approve, unlock).
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        Self::open_at(&Self::existing(dir)?, false)
    }

    /// Opens the existing journal of `dir` without ever writing to it (status, report, audit).
    pub fn open_read_only(dir: &Path) -> Result<Self, JournalError> {
        Self::open_at(&Self::existing(dir)?, true)
    }

    fn existing(dir: &Path) -> Result<PathBuf, JournalError> {
        let path = dir.join(FILE);
        match fsutil::check_regular(&path) {
            Err(fsutil::ReadError::NotFound { .. }) => Err(JournalError::Missing {
                dir: dir.to_owned(),
            }),
            _ => Ok(path),
        }
    }

    /// What stops the journal at `path` from being opened (`write`: for writing), named:
    /// not a regular file, or not openable by this user. SQLite's own errors for these are
    /// vague ("unable to open", or a file it reads as empty).
    fn check_openable(path: &Path, write: bool) -> Result<(), JournalError> {
        use std::os::unix::fs::OpenOptionsExt;
        match fsutil::check_regular(path) {
            Ok(()) => {}
            Err(fsutil::ReadError::NotRegular { kind, .. }) => {
                return Err(JournalError::NotRegular {
                    path: path.to_owned(),
                    kind,
                });
            }
            Err(fsutil::ReadError::Io { source, .. }) => {
                return Err(JournalError::Access {
                    path: path.to_owned(),
                    source,
                });
            }
            Err(_) => {}
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .map(drop)
            .map_err(|source| JournalError::Access {
                path: path.to_owned(),
                source,
            })
    }

    fn open_at(path: &Path, read_only: bool) -> Result<Self, JournalError> {
        Self::check_openable(path, !read_only)?;
        refuse_empty(path)?;
        let conn = if read_only {
            Self::connect_read_only(path)?
        } else {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| sql_error(path, e))?;
            conn.busy_timeout(Duration::from_secs(30))
                .map_err(|e| sql_error(path, e))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| sql_error(path, e))?;
            conn
        };
        let mut j = FileJournal {
            conn,
            path: path.to_owned(),
            sync: None,
            columns: COLUMNS,
            signer: None,
        };
        j.check_schema(read_only)?;
        Ok(j)
    }

    /// A read-only connection that leaves the folder as it found it. A journal closed cleanly
    /// has no `-wal` file: the main file is the whole journal, and it is opened as immutable,
    /// so SQLite creates no `-wal` or `-shm` beside it (a reader of an auditor's copy, or
    /// `fleet` over a hundred folders, writes nothing). A writer that starts meanwhile appends
    /// to a new WAL, not to the main file, so the read sees the journal as it was. With a
    /// `-wal` present (an install running, or one killed), SQLite must read through its `-shm`
    /// index, which it may need to create; where it cannot (a read-only folder, a full disk)
    /// and the WAL holds no records, the main file alone is opened as immutable.
    fn connect_read_only(path: &Path) -> Result<Connection, JournalError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let immutable = || {
            let uri = format!(
                "file:{}?immutable=1",
                url_path(&std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
            );
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        };
        if !wal_exists(path) {
            return immutable().map_err(|e| sql_error(path, e));
        }
        let normal = Connection::open_with_flags(path, flags).and_then(|c| {
            c.busy_timeout(Duration::from_secs(30))?;
            // Forces SQLite to read the header (and the WAL index) now.
            c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok(c)
        });
        match normal {
            Ok(c) => Ok(c),
            Err(e) if !wal_has_frames(path) => immutable().map_err(|_| sql_error(path, e)),
            Err(e) => Err(sql_error(path, e)),
        }
    }

    fn check_schema(&mut self, read_only: bool) -> Result<(), JournalError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if version > SCHEMA_VERSION {
            return Err(JournalError::Version {
                path: self.path.clone(),
                found: version,
            });
        }
        let has_table: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'records'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n == 1),
            )
            .map_err(|e| self.sql(e))?;
        if !(1..=SCHEMA_VERSION).contains(&version) || !has_table {
            return Err(JournalError::NotAJournal {
                path: self.path.clone(),
            });
        }
        if version == 1 {
            if read_only {
                self.columns = COLUMNS_V1;
            } else {
                self.conn
                    .execute_batch(MIGRATE_1_TO_2)
                    .map_err(|e| self.sql(e))?;
            }
        }
        Ok(())
    }

    fn sql(&self, source: rusqlite::Error) -> JournalError {
        sql_error(&self.path, source)
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

    /// Appends `events` in order at `at`, in one transaction (one commit, one sync), and
    /// returns the stored records.
    fn append_all(
        &mut self,
        events: &[&Event],
        at: OffsetDateTime,
        durability: Durability,
    ) -> Result<Vec<Record>, JournalError> {
        self.set_sync(durability)?;
        let at = timestamp(at);
        let path = self.path.clone();
        let err = |source| sql_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut head: Option<(u64, String)> = tx
            .prepare_cached("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
            .map_err(err)?
            .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .optional()
            .map_err(err)?;
        let mut recs = Vec::with_capacity(events.len());
        for event in events {
            let rec = Record::after(
                head.as_ref().map(|(s, h)| (*s, h.as_str())),
                at.clone(),
                event.kind().as_str().to_owned(),
                serde_json::to_string(event).expect("events serialise"),
                self.signer.as_deref(),
            );
            insert(&tx, &rec).map_err(err)?;
            head = Some((rec.seq, rec.hash.clone()));
            recs.push(rec);
        }
        tx.commit().map_err(err)?;
        Ok(recs)
    }

    /// Inserts `records` as they are, in one transaction.
    fn copy_in(&mut self, records: &[Record]) -> Result<(), JournalError> {
        self.set_sync(Durability::Sync)?;
        let path = self.path.clone();
        let err = |source| sql_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for r in records {
            insert(&tx, r).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Calls `f` on every record in order (for verification over large journals).
    pub fn for_each(
        &self,
        mut f: impl FnMut(Record) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM records ORDER BY seq",
                self.columns
            ))
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql(e))?;
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            let rec = row_record(r).map_err(|e| self.sql(e))?;
            f(rec)?;
        }
        Ok(())
    }

    /// The last record of `kind`, if any (one indexed read, not a replay).
    pub fn last_of_kind(&self, kind: EventKind) -> Result<Option<Record>, JournalError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM records WHERE kind = ?1 ORDER BY seq DESC LIMIT 1",
                    self.columns
                ),
                [kind.as_str()],
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

/// A database record's fields of `event` at `at` (its position comes with the append).
pub fn entry(event: &Event, at: &str) -> DbEntry {
    DbEntry {
        kind: event.kind().as_str(),
        at: at.to_owned(),
        payload: serde_json::to_string(event).expect("events serialise"),
    }
}

/// An open journal: a state folder's file, or a realm's records in a state database.
pub struct Journal {
    inner: Inner,
}

enum Inner {
    File(FileJournal),
    Db {
        db: Db,
        signer: Option<std::sync::Arc<SigningKey>>,
        fence: Option<i64>,
        /// The head after this journal's last append (`None`: read it at the next one).
        head: Option<(u64, String)>,
    },
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::File(j) => j.fmt(f),
            Inner::Db { db, .. } => db.fmt(f),
        }
    }
}

impl Journal {
    /// Opens the journal of `state` for an install: a folder's is created (0700) when there is
    /// none (refusing an empty journal file, and a folder with traces of a run but no
    /// records); a database's schema is created when there is none.
    pub fn create<S: AsState + ?Sized>(state: &S) -> Result<Self, JournalError> {
        match &*state.as_state() {
            StateRef::Folder(dir) => FileJournal::create(dir).map(Self::file),
            StateRef::Database(r) => Ok(Self::db(r.connect()?)),
        }
    }

    /// Opens the existing journal of `state` for writing (approve, unlock).
    pub fn open<S: AsState + ?Sized>(state: &S) -> Result<Self, JournalError> {
        match &*state.as_state() {
            StateRef::Folder(dir) => FileJournal::open(dir).map(Self::file),
            StateRef::Database(r) => Self::existing(r),
        }
    }

    /// Opens the existing journal of `state` without ever writing to it (status, report,
    /// audit).
    pub fn open_read_only<S: AsState + ?Sized>(state: &S) -> Result<Self, JournalError> {
        match &*state.as_state() {
            StateRef::Folder(dir) => FileJournal::open_read_only(dir).map(Self::file),
            StateRef::Database(r) => Self::existing(r),
        }
    }

    /// The journal of a realm in a database already connected (`fleet`, `state import`).
    pub fn of_db(db: Db) -> Self {
        Self::db(db)
    }

    fn existing(r: &DbRef) -> Result<Self, JournalError> {
        let db = r.connect()?;
        if db.head()?.is_none() {
            return Err(JournalError::NoRealm {
                state: r.to_string(),
            });
        }
        Ok(Self::db(db))
    }

    fn file(j: FileJournal) -> Self {
        Journal {
            inner: Inner::File(j),
        }
    }

    fn db(db: Db) -> Self {
        Journal {
            inner: Inner::Db {
                db,
                signer: None,
                fence: None,
                head: None,
            },
        }
    }

    /// Signs every record appended from now on with `key` (`None`: unsigned records).
    pub fn sign_with(&mut self, key: Option<std::sync::Arc<SigningKey>>) {
        match &mut self.inner {
            Inner::File(j) => j.signer = key,
            Inner::Db { signer, .. } => *signer = key,
        }
    }

    /// Every append from now on carries the lease's fencing token `token` (a database's
    /// journal refuses it once the lease has a newer holder; a folder's lock needs none).
    pub fn fence_with(&mut self, token: Option<i64>) {
        if let Inner::Db { fence, .. } = &mut self.inner {
            *fence = token;
        }
    }

    /// Appends an event at `at` and returns the stored record.
    pub fn append(
        &mut self,
        event: &Event,
        at: OffsetDateTime,
        durability: Durability,
    ) -> Result<Record, JournalError> {
        let mut recs = self.append_all(&[event], at, durability)?;
        Ok(recs.pop().expect("one record per event"))
    }

    /// Appends `events` in order at `at` in one commit (a database: one statement, so one
    /// round trip) and returns the stored records.
    pub fn append_all(
        &mut self,
        events: &[&Event],
        at: OffsetDateTime,
        durability: Durability,
    ) -> Result<Vec<Record>, JournalError> {
        match &mut self.inner {
            Inner::File(j) => j.append_all(events, at, durability),
            Inner::Db {
                db,
                signer,
                fence,
                head,
            } => {
                let at = timestamp(at);
                let appended = db.append(
                    DbAppend {
                        entries: events.iter().map(|e| entry(e, &at)).collect(),
                        durability,
                        fence: *fence,
                        signer: signer.clone(),
                    },
                    head.take(),
                );
                let recs = appended?;
                *head = recs.last().map(|r| (r.seq, r.hash.clone()));
                Ok(recs)
            }
        }
    }

    /// Copies `records` verbatim into this empty journal, in one transaction (`state
    /// export|import`): every hash and signature as it was.
    pub fn copy_in(&mut self, records: Vec<Record>) -> Result<(), JournalError> {
        match &mut self.inner {
            Inner::File(j) => j.copy_in(&records),
            Inner::Db { db, fence, .. } => Ok(db.copy_in(records, fence.unwrap_or(0))?),
        }
    }

    /// Calls `f` on every record in order (for verification over large journals).
    pub fn for_each(
        &self,
        mut f: impl FnMut(Record) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        match &self.inner {
            Inner::File(j) => j.for_each(f),
            Inner::Db { db, .. } => {
                let mut after = 0;
                loop {
                    let page = db.page(after)?;
                    let Some(last) = page.last() else {
                        return Ok(());
                    };
                    after = last.seq;
                    let full = page.len() as i64 == db::journal::PAGE;
                    for r in page {
                        f(r)?;
                    }
                    if !full {
                        return Ok(());
                    }
                }
            }
        }
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
    pub fn last_of_kind(&self, kind: EventKind) -> Result<Option<Record>, JournalError> {
        match &self.inner {
            Inner::File(j) => j.last_of_kind(kind),
            Inner::Db { db, .. } => Ok(db.last_of_kind(kind.as_str())?),
        }
    }

    /// The last record's position and hash.
    pub fn head(&self) -> Result<Option<(u64, String)>, JournalError> {
        match &self.inner {
            Inner::File(j) => j.head(),
            Inner::Db { db, .. } => Ok(db.head()?),
        }
    }
}

/// A path as the path part of a `file:` URI (RFC 8089): everything but unreserved characters
/// and `/` percent-encoded, so `?`, `#` and `%` in a folder name stay part of the path.
fn url_path(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in p.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::event::Event;
    use crate::engine::model::record::{GENESIS, record_hash};

    fn approval(by: &str) -> Event {
        Event::Approved {
            phase: 5,
            by: by.into(),
            note: None,
            covers: "x".into(),
            definition: None,
            customer: None,
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
        assert_eq!(j.last_of_kind(EventKind::Approved).unwrap().unwrap().seq, 2);
    }

    #[test]
    fn records_appended_together_chain_in_order_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let first = j
            .append(&approval("ann"), now, Durability::Buffered)
            .unwrap();
        let pair = j
            .append_all(&[&approval("bob"), &approval("cy")], now, Durability::Sync)
            .unwrap();
        assert_eq!(pair.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(pair[0].prev, first.hash);
        assert_eq!(pair[1].prev, pair[0].hash);
        for r in &pair {
            assert_eq!(
                r.hash,
                record_hash(&r.prev, r.seq, &r.at, &r.kind, &r.payload)
            );
        }
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        let all = j.records().unwrap();
        assert_eq!(all[1..], pair[..]);
        assert_eq!(j.head().unwrap(), Some((3, pair[1].hash.clone())));
    }

    #[test]
    fn update_and_delete_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = FileJournal::create(dir.path()).unwrap();
        j.append_all(
            &[&approval("ann")],
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
        let e = Journal::open_read_only(dir.path()).unwrap_err();
        assert!(matches!(e, JournalError::Missing { .. }), "{e}");
    }

    #[test]
    fn a_journal_cut_to_zero_bytes_is_refused_by_every_opener() {
        // Regression (issue #8): a truncated journal was taken as a fresh state.
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        j.append(
            &approval("ann"),
            OffsetDateTime::UNIX_EPOCH,
            Durability::Sync,
        )
        .unwrap();
        drop(j);
        std::fs::write(dir.path().join(FILE), b"").unwrap();
        for e in [
            Journal::create(dir.path()).unwrap_err(),
            Journal::open(dir.path()).unwrap_err(),
            Journal::open_read_only(dir.path()).unwrap_err(),
        ] {
            assert!(matches!(e, JournalError::Empty { .. }), "{e}");
        }
    }

    #[test]
    fn artifacts_without_a_journal_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("artifacts/run-1")).unwrap();
        let e = Journal::create(dir.path()).unwrap_err();
        assert!(matches!(e, JournalError::Lost { .. }), "{e}");
        assert!(!dir.path().join(FILE).exists());
    }

    #[test]
    fn a_new_journal_is_private_and_never_half_made() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let j = Journal::create(&state).unwrap();
        drop(j);
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let names: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".new"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        assert!(std::fs::metadata(state.join(FILE)).unwrap().len() > 0);
    }

    #[test]
    fn read_only_opens_never_write_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        j.append(
            &approval("ann"),
            OffsetDateTime::UNIX_EPOCH,
            Durability::Sync,
        )
        .unwrap();
        drop(j);
        let before: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        let j = Journal::open_read_only(dir.path()).unwrap();
        assert_eq!(j.records().unwrap().len(), 1);
        drop(j);
        assert_eq!(std::fs::read(dir.path().join(FILE)).unwrap(), bytes);
        let mut after: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        after.retain(|n| {
            !n.to_string_lossy().ends_with("-shm") && !n.to_string_lossy().ends_with("-wal")
        });
        assert_eq!(after, before);
    }

    #[test]
    fn signed_appends_carry_a_signature_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let key = std::sync::Arc::new(SigningKey::generate());
        let mut j = Journal::create(dir.path()).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let unsigned = j.append(&approval("ann"), now, Durability::Sync).unwrap();
        j.sign_with(Some(key.clone()));
        let signed = j.append(&approval("bob"), now, Durability::Sync).unwrap();
        drop(j);
        let read = Journal::open_read_only(dir.path())
            .unwrap()
            .records()
            .unwrap();
        assert_eq!(read, vec![unsigned.clone(), signed.clone()]);
        assert_eq!(unsigned.signature, None);
        let s = signed.signature.unwrap();
        assert_eq!(s.key, key.public().id());
        assert!(key.public().verifies(&signed.hash, &s.sig));
    }

    #[test]
    fn a_version_1_journal_is_read_as_unsigned_and_migrated_by_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = SCHEMA
            .replace(",\n       signer TEXT,\n       sig TEXT", "")
            .replace("user_version = 2", "user_version = 1");
        assert!(!v1.contains("signer"), "{v1}");
        let path = dir.path().join(FILE);
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&v1).unwrap();
        let hash = record_hash(GENESIS, 1, "t", "approved", "{}");
        c.execute(
            "INSERT INTO records VALUES (1, 't', 'approved', '{}', ?1, ?2)",
            params![GENESIS, hash],
        )
        .unwrap();
        drop(c);
        let r = Journal::open_read_only(dir.path())
            .unwrap()
            .records()
            .unwrap();
        assert_eq!((r.len(), r[0].signature.clone()), (1, None));
        let version = |p: &Path| -> i64 {
            Connection::open(p)
                .unwrap()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version(&path), 1, "a reader never migrates");
        let mut j = Journal::open(dir.path()).unwrap();
        j.sign_with(Some(std::sync::Arc::new(SigningKey::generate())));
        let rec = j
            .append(
                &approval("ann"),
                OffsetDateTime::UNIX_EPOCH,
                Durability::Sync,
            )
            .unwrap();
        assert_eq!((rec.seq, rec.prev.as_str()), (2, hash.as_str()));
        drop(j);
        assert_eq!(version(&path), 2);
        let r = Journal::open_read_only(dir.path())
            .unwrap()
            .records()
            .unwrap();
        assert!(r[0].signature.is_none() && r[1].signature.is_some());
    }

    #[test]
    fn uri_paths_keep_special_characters_in_the_path() {
        assert_eq!(url_path(Path::new("/a b/c?d#e%")), "/a%20b/c%3Fd%23e%25");
    }
}
