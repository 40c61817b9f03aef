//! The artifact store: where phase 4 and 5 put rendered files, each with its SHA-256.
//!
//! A local folder under the state folder by default (`<state>/artifacts/run-N/`); object
//! storage (S3, Azure Blob, GCS through the `object_store` crate) when the spec names a bucket.
//! Files are never overwritten in place: each run writes its own folder, so every checksum the
//! journal ever recorded can still be verified.

use std::path::{Path, PathBuf};

use super::artifacts::Rendered;
use super::event::ArtifactRef;
use super::journal::sha256_hex;

/// Where artifacts go.
#[derive(Debug, Clone)]
pub enum Store {
    /// `<state>/artifacts`.
    Local {
        /// The state folder.
        state_dir: PathBuf,
    },
    /// An object store bucket.
    #[cfg(feature = "object-store")]
    Object(super::object::ObjectStore),
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Local file system.
    #[error("artifact {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Object storage.
    #[error("artifact {location}: {detail}")]
    Object {
        /// The object URL.
        location: String,
        /// What went wrong.
        detail: String,
        /// Whether another attempt may succeed.
        retryable: bool,
    },
    /// Not found.
    #[error("artifact {location} is missing from the store")]
    Missing {
        /// Where it should be.
        location: String,
    },
}

impl StoreError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            StoreError::Object { retryable, .. } => *retryable,
            StoreError::Missing { .. } => false,
        }
    }
}

impl Store {
    /// Stores `file` for `run` and returns its reference.
    pub async fn put(
        &self,
        realm: &str,
        run: u32,
        file: &Rendered,
    ) -> Result<ArtifactRef, StoreError> {
        let sha256 = sha256_hex(&file.bytes);
        let rel = format!("run-{run}/{}", file.name);
        let location = match self {
            Store::Local { state_dir } => {
                let location = format!("artifacts/{rel}");
                write_atomic(&state_dir.join(&location), &file.bytes)?;
                location
            }
            #[cfg(feature = "object-store")]
            Store::Object(o) => o.put(realm, &rel, file.bytes.clone()).await?,
        };
        let _ = realm;
        Ok(ArtifactRef {
            name: file.name.clone(),
            location,
            sha256,
            bytes: file.bytes.len() as u64,
        })
    }

    /// Reads an artifact back by its recorded location.
    pub async fn get(&self, location: &str) -> Result<Vec<u8>, StoreError> {
        if let Some(url) = location.split_once("://").map(|_| location) {
            #[cfg(feature = "object-store")]
            if let Store::Object(o) = self {
                return o.get(url).await;
            }
            return Err(StoreError::Object {
                location: url.to_owned(),
                detail:
                    "the artifact is in object storage, and this run has no object store configured"
                        .into(),
                retryable: false,
            });
        }
        let path = match self {
            Store::Local { state_dir } => state_dir.join(location),
            #[cfg(feature = "object-store")]
            Store::Object(o) => o.state_dir().join(location),
        };
        std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                StoreError::Missing {
                    location: location.to_owned(),
                }
            } else {
                StoreError::Io { path, source }
            }
        })
    }
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io {
            path: path.clone(),
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp-realmctl");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_put_get_round_trip_with_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local {
            state_dir: dir.path().to_owned(),
        };
        let f = Rendered {
            name: "a.json".into(),
            bytes: b"{}".to_vec(),
        };
        let r = store.put("acme", 2, &f).await.unwrap();
        assert_eq!(r.location, "artifacts/run-2/a.json");
        assert_eq!(r.sha256, sha256_hex(b"{}"));
        assert_eq!(store.get(&r.location).await.unwrap(), b"{}");
        assert!(matches!(
            store.get("artifacts/run-9/x").await,
            Err(StoreError::Missing { .. })
        ));
    }
}
