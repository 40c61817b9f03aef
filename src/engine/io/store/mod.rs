//! The artifact store: where phase 4 and 5 put rendered files, each with its SHA-256.
//!
//! A local folder under the state folder by default ([`local`]); object storage (S3, Azure
//! Blob, GCS through the `object_store` crate, [`object`]) when the spec names a bucket. Files
//! are never overwritten in place: each run writes its own `run-N/` folder, so every checksum
//! the journal ever recorded can still be verified.

mod error;
pub mod local;
#[cfg(feature = "object-store")]
pub mod object;

use std::path::Path;

pub use error::StoreError;
pub use local::LocalStore;

use crate::crypto::sha256_hex;
use crate::engine::blocking::BlockingGate;
use crate::engine::io::state::StateRef;
use crate::engine::model::output::ArtifactRef;

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// File name.
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Where artifacts go.
#[derive(Debug, Clone)]
pub enum Store {
    /// `<state>/artifacts`.
    Local(LocalStore),
    /// An object store bucket (and the state folder, for artifacts earlier runs kept locally).
    #[cfg(feature = "object-store")]
    Object(object::ObjectStore, LocalStore),
}

/// Configuration of object storage: `object_store` options (endpoint, region, credentials)
/// gathered by the front end.
pub type ObjectOptions = Vec<(String, String)>;

impl Store {
    /// The store for a state folder: the spec's bucket when it names one, else the folder. A
    /// bucket in the realm's own cloud (S3 on EKS) is reached with the cloud provider's
    /// credentials when `cloud` is given.
    pub fn open(
        state: &StateRef,
        bucket: Option<&str>,
        options: ObjectOptions,
        #[cfg(feature = "object-store")] cloud: Option<&object::CloudAccess>,
    ) -> Result<Self, StoreError> {
        let local = LocalStore::of(state)?;
        let Some(bucket) = bucket else {
            return Ok(Store::Local(local));
        };
        #[cfg(feature = "object-store")]
        {
            // A bucket of the cloud's own object storage (the scheme its profile names) is
            // reached with the cloud's credential chain.
            let same_cloud = cloud.filter(|c| {
                let scheme =
                    crate::cloud::profile::for_provider(c.cloud.provider()).storage_scheme();
                bucket.starts_with(&format!("{scheme}://"))
            });
            match same_cloud {
                Some(c) => object::ObjectStore::with_cloud(bucket, options, c),
                None => object::ObjectStore::new(bucket, options),
            }
            .map(|o| Store::Object(o, local))
        }
        #[cfg(not(feature = "object-store"))]
        {
            let _ = options;
            Err(StoreError::Object {
                location: bucket.to_owned(),
                detail: "this realmctl was built without object storage support\n  help: build with the default features (object-store)".into(),
                retryable: false,
            })
        }
    }

    /// The local store of a state folder.
    pub fn local(state_dir: &Path) -> Self {
        Store::Local(LocalStore::new(state_dir))
    }

    /// The store of `state` alone (no bucket): its folder or its database.
    pub fn of_state(state: &StateRef) -> Result<Self, StoreError> {
        LocalStore::of(state).map(Store::Local)
    }

    /// Stores `file` for `run` of `realm` and returns its reference. Local writes (fsync'd)
    /// run through `gate`, off the async runtime.
    pub async fn put(
        &self,
        realm: &str,
        run: u32,
        file: Rendered,
        gate: &BlockingGate,
    ) -> Result<ArtifactRef, StoreError> {
        let sha256 = sha256_hex(&file.bytes);
        let rel = format!("run-{run}/{}", file.name);
        let bytes = file.bytes.len() as u64;
        let name = file.name.clone();
        let location = match self {
            Store::Local(l) => {
                let (l, at) = (l.clone(), rel.clone());
                gate.run(move || l.put(&at, &file.bytes))
                    .await
                    .map_err(|f| StoreError::Object {
                        location: rel.clone(),
                        detail: f.to_string(),
                        retryable: false,
                    })??
            }
            #[cfg(feature = "object-store")]
            Store::Object(o, _) => o.put(realm, &rel, file.bytes).await?,
        };
        let _ = realm;
        Ok(ArtifactRef {
            name,
            location,
            sha256,
            bytes,
        })
    }

    /// Reads an artifact back by its recorded location.
    pub async fn get(&self, location: &str) -> Result<Vec<u8>, StoreError> {
        let is_url = location.contains("://");
        match self {
            Store::Local(l) if !is_url => l.get(location),
            #[cfg(feature = "object-store")]
            Store::Object(_, l) if !is_url => l.get(location),
            #[cfg(feature = "object-store")]
            Store::Object(o, _) => o.get(location).await,
            Store::Local(_) => Err(StoreError::Object {
                location: location.to_owned(),
                detail:
                    "the artifact is in object storage, and no bucket was named\n  help: give the realm spec (-f realm.yaml) whose artifacts.bucket holds it"
                        .into(),
                retryable: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_put_get_round_trip_with_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path());
        let f = Rendered {
            name: "a.json".into(),
            bytes: b"{}".to_vec(),
        };
        let r = store
            .put("acme", 2, f, &BlockingGate::default())
            .await
            .unwrap();
        assert_eq!(r.location, "artifacts/run-2/a.json");
        assert_eq!(r.sha256, sha256_hex(b"{}"));
        assert_eq!(store.get(&r.location).await.unwrap(), b"{}");
        assert!(matches!(
            store.get("artifacts/run-9/x").await,
            Err(StoreError::Missing { .. })
        ));
    }
}
