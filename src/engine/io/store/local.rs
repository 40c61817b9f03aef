//! The local artifact store: `<state>/artifacts/run-N/<file>`, written atomically; or, for a
//! state in a database, the realm's rows of `realmctl_artifacts` at the same locations.
//!
//! Locations are recorded relative to the state folder. A location read back from the journal
//! is used only when it is a plain relative path under `artifacts/` (no root, no `..`), so a
//! rewritten journal cannot make `audit verify` read files outside the store.

use std::path::{Component, Path, PathBuf};

use super::error::StoreError;
use crate::engine::io::db::{Db, DbError};
use crate::engine::io::state::StateRef;
use crate::fsutil;

/// The folder of the local store inside the state folder.
pub const FOLDER: &str = "artifacts";

/// `<state>/artifacts` of one state folder, or the artifacts of a realm in a state database
/// (the same locations: a realm moves between the two without changing one).
#[derive(Debug, Clone)]
pub struct LocalStore {
    state_dir: PathBuf,
    db: Option<Db>,
}

impl LocalStore {
    /// The store of `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        LocalStore {
            state_dir: state_dir.to_owned(),
            db: None,
        }
    }

    /// The store of a realm in a state database.
    pub fn in_db(db: Db) -> Self {
        LocalStore {
            state_dir: PathBuf::new(),
            db: Some(db),
        }
    }

    /// The store of `state`: its folder, or its database (connecting).
    pub fn of(state: &StateRef) -> Result<Self, StoreError> {
        match state {
            StateRef::Folder(dir) => Ok(Self::new(dir)),
            StateRef::Database(r) => Ok(Self::in_db(r.connect().map_err(|e| {
                StoreError::Object {
                    location: r.to_string(),
                    retryable: e.unavailable(),
                    detail: e.to_string(),
                }
            })?)),
        }
    }

    /// Writes `bytes` as `rel` (`run-N/<file>`); returns the location to record.
    pub fn put(&self, rel: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let location = format!("{FOLDER}/{rel}");
        if let Some(db) = &self.db {
            if !is_inside(&location) {
                return Err(StoreError::OutsideStore { location });
            }
            db.put_artifact(&location, bytes.to_vec())
                .map_err(|e| db_error(&location, &e))?;
            return Ok(location);
        }
        let path = self.resolve(&location)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e: fsutil::PathError| StoreError::Io {
                path: if e.path.as_os_str().is_empty() {
                    path.clone()
                } else {
                    e.path
                },
                source: e.source,
            }
        };
        if let Some(dir) = path.parent() {
            fsutil::create_private_dir(dir).map_err(io(dir))?;
        }
        fsutil::write_atomic(&path, bytes, 0o600).map_err(io(&path))?;
        Ok(location)
    }

    /// Writes `bytes` at the recorded `location` (`artifacts/…`), as a move between stores
    /// needs: the same location on both sides.
    pub fn put_at(&self, location: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let rel = location
            .strip_prefix(FOLDER)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|_| is_inside(location))
            .ok_or_else(|| StoreError::OutsideStore {
                location: location.to_owned(),
            })?;
        self.put(rel, bytes).map(drop)
    }

    /// Reads the artifact recorded at `location`.
    pub fn get(&self, location: &str) -> Result<Vec<u8>, StoreError> {
        if let Some(db) = &self.db {
            if !is_inside(location) {
                return Err(StoreError::OutsideStore {
                    location: location.to_owned(),
                });
            }
            return db
                .get_artifact(location, fsutil::caps::ARTIFACT)
                .map_err(|e| db_error(location, &e))?
                .ok_or_else(|| StoreError::Missing {
                    location: location.to_owned(),
                });
        }
        let path = self.resolve(location)?;
        fsutil::read_capped(&path, fsutil::caps::ARTIFACT).map_err(|e| match e {
            fsutil::ReadError::NotFound { .. } => StoreError::Missing {
                location: location.to_owned(),
            },
            fsutil::ReadError::TooLarge { max, .. } => StoreError::TooLarge {
                location: location.to_owned(),
                max,
            },
            fsutil::ReadError::Io { path, source } => StoreError::Io { path, source },
            other => StoreError::Io {
                path: other.path().to_owned(),
                source: std::io::Error::other(other.to_string()),
            },
        })
    }

    /// The file a recorded location names, if it is inside the store.
    fn resolve(&self, location: &str) -> Result<PathBuf, StoreError> {
        if !is_inside(location) {
            return Err(StoreError::OutsideStore {
                location: location.to_owned(),
            });
        }
        Ok(self.state_dir.join(location))
    }
}

fn db_error(location: &str, e: &DbError) -> StoreError {
    StoreError::Object {
        location: location.to_owned(),
        detail: e.to_string(),
        retryable: e.unavailable(),
    }
}

/// Whether a recorded location is a plain relative path under `artifacts/` (pure).
pub fn is_inside(location: &str) -> bool {
    let p = Path::new(location);
    let mut parts = p.components();
    parts.next() == Some(Component::Normal(FOLDER.as_ref()))
        && parts.clone().next().is_some()
        && parts.all(|c| matches!(c, Component::Normal(_)))
        && !location.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_under_the_store_are_inside() {
        for ok in ["artifacts/run-1/a.json", "artifacts/x"] {
            assert!(is_inside(ok), "{ok}");
        }
        for bad in [
            "/etc/passwd",
            "artifacts/../journal.db",
            "artifacts/run-1/../../../etc/passwd",
            "../artifacts/x",
            "journal.db",
            "artifacts",
            "./artifacts/x",
            "",
        ] {
            assert!(!is_inside(bad), "{bad}");
        }
    }

    #[test]
    fn put_get_round_trip_and_outside_locations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        let loc = s.put("run-2/a.json", b"{}").unwrap();
        assert_eq!(loc, "artifacts/run-2/a.json");
        assert_eq!(s.get(&loc).unwrap(), b"{}");
        assert!(matches!(
            s.get("artifacts/run-9/x"),
            Err(StoreError::Missing { .. })
        ));
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        assert!(matches!(
            s.get("artifacts/../secret"),
            Err(StoreError::OutsideStore { .. })
        ));
        let abs = dir.path().join("secret").display().to_string();
        assert!(matches!(s.get(&abs), Err(StoreError::OutsideStore { .. })));
    }
}
