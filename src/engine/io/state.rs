//! Where a realm's install state lives: a folder (the embedded default) or a PostgreSQL
//! database (`--state postgres://USER@HOST:PORT/DB?realm=NAME`), and the one place that picks
//! between them for the journal, the lock and the artifacts.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::db::{DbError, DbRef};
use crate::secret::Secret;

/// A realm's state.
#[derive(Debug, Clone)]
pub enum StateRef {
    /// A state folder (journal.db, lock, artifacts/).
    Folder(PathBuf),
    /// A realm in a state database.
    Database(DbRef),
}

impl StateRef {
    /// `--state`: a `postgres://` or `postgresql://` URL names a database (its password from
    /// `password`, i.e. `PGPASSWORD`); anything else is a folder.
    pub fn parse(s: &str, password: Option<Secret>) -> Result<StateRef, DbError> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            DbRef::parse(s, password).map(StateRef::Database)
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
        assert_eq!(s.to_string(), "postgres://ops@127.0.0.1:5432/realms?realm=acme");
        assert!(StateRef::parse("postgresql://ops@127.0.0.1/realms", None).is_err());
    }
}
