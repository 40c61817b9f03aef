//! Artifacts in object storage (S3, Azure Blob, GCS) through the `object_store` crate.
//!
//! The spec names the bucket (`artifacts.bucket: s3://bucket/prefix`); credentials and
//! endpoints come as `object_store` configuration options, which the CLI gathers from the
//! provider's standard environment variables (`AWS_*`, `AZURE_*`, `GOOGLE_*`). Objects go to
//! `<prefix>/<realm>/run-N/<file>`; the journal records their full URL and SHA-256.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt as _, PutPayload};

use super::error::StoreError;
use crate::fsutil;

/// An object store bucket with a prefix.
#[derive(Clone)]
pub struct ObjectStore {
    store: Arc<dyn object_store::ObjectStore>,
    base: String,
    prefix: ObjectPath,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("base", &self.base)
            .finish()
    }
}

fn classify(location: &str, e: object_store::Error) -> StoreError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => StoreError::Missing {
            location: location.to_owned(),
        },
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreError::Object {
            location: location.to_owned(),
            detail: format!(
                "{e}\n  help: check the credentials in the AWS_*/AZURE_*/GOOGLE_* environment variables"
            ),
            retryable: false,
        },
        E::InvalidPath { .. } | E::NotSupported { .. } | E::UnknownConfigurationKey { .. } => {
            StoreError::Object {
                location: location.to_owned(),
                detail: e.to_string(),
                retryable: false,
            }
        }
        other => StoreError::Object {
            location: location.to_owned(),
            detail: other.to_string(),
            retryable: true,
        },
    }
}

impl ObjectStore {
    /// Opens `bucket_url` (`s3://`, `az://`, `gs://`) with `options` (object_store config keys
    /// such as `aws_endpoint`, `aws_access_key_id`).
    pub fn new(bucket_url: &str, options: Vec<(String, String)>) -> Result<Self, StoreError> {
        let bad = |detail: String| StoreError::Object {
            location: bucket_url.to_owned(),
            detail,
            retryable: false,
        };
        let url = url::Url::parse(bucket_url).map_err(|e| bad(e.to_string()))?;
        let (store, prefix) =
            object_store::parse_url_opts(&url, options).map_err(|e| bad(e.to_string()))?;
        Ok(ObjectStore {
            store: Arc::from(store),
            base: bucket_url.trim_end_matches('/').to_owned(),
            prefix,
        })
    }

    fn bucket_root(&self) -> String {
        let prefix = self.prefix.as_ref();
        self.base
            .strip_suffix(prefix)
            .unwrap_or(&self.base)
            .trim_end_matches('/')
            .to_owned()
    }

    /// Stores `bytes` at `<prefix>/<realm>/<rel>`; returns the object URL.
    pub async fn put(&self, realm: &str, rel: &str, bytes: Vec<u8>) -> Result<String, StoreError> {
        let path: ObjectPath = self
            .prefix
            .parts()
            .chain(ObjectPath::from(realm).parts())
            .chain(ObjectPath::from(rel).parts())
            .collect();
        let location = format!("{}/{}", self.bucket_root(), path);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| classify(&location, e))?;
        Ok(location)
    }

    /// Reads the object at `location` (a URL this store returned).
    pub async fn get(&self, location: &str) -> Result<Vec<u8>, StoreError> {
        let root = format!("{}/", self.bucket_root());
        let Some(key) = location.strip_prefix(&root) else {
            return Err(StoreError::Object {
                location: location.to_owned(),
                detail: format!(
                    "the artifact is not in {}, the bucket the spec names now",
                    self.base
                ),
                retryable: false,
            });
        };
        let path = ObjectPath::parse(key).map_err(|_| StoreError::OutsideStore {
            location: location.to_owned(),
        })?;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|e| classify(location, e))?;
        if got.meta.size > fsutil::caps::ARTIFACT {
            return Err(StoreError::TooLarge {
                location: location.to_owned(),
                max: fsutil::caps::ARTIFACT,
            });
        }
        let bytes = got.bytes().await.map_err(|e| classify(location, e))?;
        Ok(bytes.to_vec())
    }
}
