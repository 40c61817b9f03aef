//! Where a realm's install state lives: a folder (the embedded default) or a PostgreSQL
//! database (`--state postgres://USER@HOST:PORT/DB?realm=NAME`), and the one place that picks
//! between them for the journal, the lock and the artifacts.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::db::lease::{Lease, LeaseError};
use super::db::{DbError, DbRef};
use super::lock::{self, Holder};
use crate::secret::Secret;

/// A realm's state.
#[derive(Debug, Clone)]
pub enum StateRef {
    /// A state folder (journal.db, lock, artifacts/).
    Folder(PathBuf),
    /// A realm in a state database.
    Database(Box<DbRef>),
}

impl StateRef {
    /// `--state`: a `postgres://` or `postgresql://` URL names a database (its password from
    /// `password`, i.e. `PGPASSWORD`); anything else is a folder.
    pub fn parse(s: &str, password: Option<Secret>) -> Result<StateRef, DbError> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            DbRef::parse(s, password).map(|d| StateRef::Database(Box::new(d)))
        } else {
            Ok(StateRef::Folder(PathBuf::from(s)))
        }
    }

    /// The folder, for a folder state.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            StateRef::Folder(p) => Some(p),
            StateRef::Database(_) => None,
        }
    }

    /// The database, for a database state.
    pub fn database(&self) -> Option<&DbRef> {
        match self {
            StateRef::Folder(_) => None,
            StateRef::Database(d) => Some(d),
        }
    }
}

/// The realm's write lock, held: a folder's lock file, or a database's lease.
#[derive(Debug)]
pub enum Guard {
    /// A state folder's lock.
    Folder(lock::Guard),
    /// A state database's lease.
    Lease(Lease),
}

impl Guard {
    /// Who holds it (this process).
    pub fn holder(&self) -> &Holder {
        match self {
            Guard::Folder(g) => g.holder(),
            Guard::Lease(l) => l.holder(),
        }
    }

    /// The fencing token every append under it carries (none for a folder: the kernel's
    /// lock already excludes a second writer there).
    pub fn fence(&self) -> Option<i64> {
        match self {
            Guard::Folder(_) => None,
            Guard::Lease(l) => Some(l.fence()),
        }
    }
}

/// Why the realm's write lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A folder's lock.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// A database's lease.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

impl StateRef {
    /// Takes the realm's write lock for `holder`, or says who has it.
    pub fn acquire(&self, holder: Holder) -> Result<Guard, GuardError> {
        Ok(match self {
            StateRef::Folder(dir) => Guard::Folder(lock::acquire(dir, holder)?),
            StateRef::Database(r) => {
                Guard::Lease(r.connect().map_err(LeaseError::Db)?.acquire(holder)?)
            }
        })
    }

    /// Takes over a stale lock (a folder's holder gone) or an expired lease with id
    /// `lock_id`; returns the old holder.
    pub fn take_over(&self, lock_id: &str, by: Holder) -> Result<(Holder, Guard), GuardError> {
        Ok(match self {
            StateRef::Folder(dir) => {
                let (old, g) = lock::take_over(dir, lock_id, by)?;
                (old, Guard::Folder(g))
            }
            StateRef::Database(r) => {
                let (old, l) = r
                    .connect()
                    .map_err(LeaseError::Db)?
                    .take_over(lock_id, by)?;
                (old, Guard::Lease(l))
            }
        })
    }

    /// Who holds the realm's write lock, as its holder file or lease row says (alive or not).
    pub fn holder(&self) -> Option<Holder> {
        match self {
            StateRef::Folder(dir) => lock::read_holder(dir),
            StateRef::Database(r) => r
                .connect()
                .ok()?
                .lease_row()
                .ok()
                .flatten()
                .map(|l| l.holder),
        }
    }

    /// Who runs an install of this realm right now, described (a folder's holder whose
    /// process lives, a database's unexpired lease).
    pub fn running(&self) -> Option<String> {
        match self {
            StateRef::Folder(dir) => lock::read_holder(dir)
                .filter(|h| lock::liveness(h) == lock::Liveness::Alive)
                .map(|h| h.to_string()),
            StateRef::Database(r) => r
                .connect()
                .ok()?
                .lease_row()
                .ok()
                .flatten()
                .filter(|l| l.live)
                .map(|l| format!("{} (lease until {})", l.holder, l.expires)),
        }
    }
}

/// The folder's path, or the database URL without password (`…?realm=NAME`).
impl std::fmt::Display for StateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateRef::Folder(p) => write!(f, "{}", p.display()),
            StateRef::Database(d) => write!(f, "{d}"),
        }
    }
}

impl From<&Path> for StateRef {
    fn from(p: &Path) -> Self {
        StateRef::Folder(p.to_owned())
    }
}

impl From<PathBuf> for StateRef {
    fn from(p: PathBuf) -> Self {
        StateRef::Folder(p)
    }
}

/// Anything that names a state: a folder's path, or a [`StateRef`].
pub trait AsState {
    /// The state it names.
    fn as_state(&self) -> Cow<'_, StateRef>;
}

impl AsState for Path {
    fn as_state(&self) -> Cow<'_, StateRef> {
        Cow::Owned(StateRef::Folder(self.to_owned()))
    }
}

impl AsState for PathBuf {
    fn as_state(&self) -> Cow<'_, StateRef> {
        Cow::Owned(StateRef::Folder(self.clone()))
    }
}

impl AsState for StateRef {
    fn as_state(&self) -> Cow<'_, StateRef> {
        Cow::Borrowed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_a_database_and_anything_else_a_folder() {
        let s = StateRef::parse("state/acme", None).unwrap();
        assert_eq!(s.folder(), Some(Path::new("state/acme")));
        let s = StateRef::parse("postgres://ops@127.0.0.1/realms?realm=acme", None).unwrap();
        assert_eq!(s.database().unwrap().realm(), "acme");
        assert_eq!(
            s.to_string(),
            "postgres://ops@127.0.0.1:5432/realms?realm=acme"
        );
        assert!(StateRef::parse("postgresql://ops@127.0.0.1/realms", None).is_err());
    }
}
