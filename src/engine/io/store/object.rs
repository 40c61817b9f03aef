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
use crate::cloud::{Cloud, StorageCredentials};
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

/// A store credential the realm's cloud can give: S3 keys, an Azure Storage token.
trait FromCloud: Sized + std::fmt::Debug + Send + Sync + 'static {
    /// What the store is, for the message when the cloud gives none.
    const WHAT: &'static str;
    /// This store's credential, if `c` is one.
    fn from_cloud(c: StorageCredentials) -> Option<Self>;
}

impl FromCloud for object_store::aws::AwsCredential {
    const WHAT: &'static str = "S3";
    fn from_cloud(c: StorageCredentials) -> Option<Self> {
        match c {
            StorageCredentials::Aws {
                key_id,
                secret,
                token,
            } => Some(object_store::aws::AwsCredential {
                key_id,
                secret_key: secret.expose().to_owned(),
                token: token.map(|t| t.expose().to_owned()),
            }),
            _ => None,
        }
    }
}

impl FromCloud for object_store::azure::AzureCredential {
    const WHAT: &'static str = "Azure Storage";
    fn from_cloud(c: StorageCredentials) -> Option<Self> {
        match c {
            StorageCredentials::AzureBearer { token } => Some(
                object_store::azure::AzureCredential::BearerToken(token.expose().to_owned()),
            ),
            _ => None,
        }
    }
}

impl FromCloud for object_store::gcp::GcpCredential {
    const WHAT: &'static str = "Google Cloud Storage";
    fn from_cloud(c: StorageCredentials) -> Option<Self> {
        match c {
            StorageCredentials::GoogleBearer { token } => Some(object_store::gcp::GcpCredential {
                bearer: token.expose().to_owned(),
            }),
            _ => None,
        }
    }
}

/// `client` trusting the roots `access` adds besides the platform's (the demo's stand-in CA).
fn with_roots(
    mut client: object_store::ClientOptions,
    access: &CloudAccess,
) -> Result<object_store::ClientOptions, String> {
    for pem in &access.extra_roots {
        let cert = object_store::Certificate::from_pem(pem.as_bytes())
            .map_err(|e| format!("a trusted root does not parse: {e}"))?;
        client = client.with_root_certificate(cert);
    }
    Ok(client)
}

/// The realm's cloud as the source of the store's credentials: every request of the store is
/// signed or authorized with the credentials of the cloud provider's own chain, so artifacts
/// and cloud calls act as one identity.
struct CloudCredentials<C>(Arc<dyn Cloud>, std::marker::PhantomData<fn() -> C>);

impl<C> CloudCredentials<C> {
    fn new(cloud: Arc<dyn Cloud>) -> Self {
        CloudCredentials(cloud, std::marker::PhantomData)
    }
}

impl<C> std::fmt::Debug for CloudCredentials<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CloudCredentials({})", self.0.describe())
    }
}

impl<C: FromCloud> object_store::CredentialProvider for CloudCredentials<C> {
    type Credential = C;

    fn get_credential<'a, 'b>(
        &'a self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = object_store::Result<Arc<Self::Credential>>>
                + Send
                + 'b,
        >,
    >
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            let unauthenticated = |detail: String| object_store::Error::Unauthenticated {
                path: String::new(),
                source: detail.into(),
            };
            match self.0.storage_credentials().await {
                Ok(Some(c)) => C::from_cloud(c).map(Arc::new).ok_or_else(|| {
                    unauthenticated(format!(
                        "{} gives no {} credentials",
                        self.0.describe(),
                        C::WHAT
                    ))
                }),
                Ok(None) => Err(unauthenticated(format!(
                    "{} has no {} credentials",
                    self.0.describe(),
                    C::WHAT
                ))),
                Err(e) => Err(unauthenticated(e.to_string())),
            }
        })
    }
}

/// Where the realm's cloud is, for a store in that cloud's object storage.
#[derive(Clone)]
pub struct CloudAccess {
    /// The provider (its credential chain signs the store's requests).
    pub cloud: Arc<dyn Cloud>,
    /// Region.
    pub region: String,
    /// Endpoint override (an emulator serves S3 next to the other services).
    pub endpoint: Option<String>,
    /// Roots (PEM) the store trusts besides the platform's: an emulator's test CA.
    pub extra_roots: Vec<String>,
}

/// Whether `options` may be used: every endpoint or URL they name must be one credentials may
/// go to (https, or plain http to loopback), and plain http is allowed only to loopback.
fn check_options(bucket: &str, options: &[(String, String)]) -> Result<(), StoreError> {
    let refused = |detail: String| StoreError::Object {
        location: bucket.to_owned(),
        detail,
        retryable: false,
    };
    for (k, v) in options {
        let key = k.to_ascii_lowercase();
        if (key.contains("endpoint") || key.ends_with("_url") || key.ends_with("_host"))
            && v.contains("://")
        {
            {
                crate::secret::may_carry_credentials(v).map_err(|why| {
                    refused(format!(
                        "the object storage endpoint {} ({k}): {why}\n  help: use https:// (plain http:// only for an emulator on 127.0.0.1)",
                        crate::spec::redact_url(v)
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// A refusal to open `bucket_url`.
fn refused(bucket_url: &str, detail: String) -> StoreError {
    StoreError::Object {
        location: bucket_url.to_owned(),
        detail,
        retryable: false,
    }
}

/// The start of opening any bucket: `options` may only name endpoints credentials may go to,
/// and the URL's path is the prefix of every object.
fn prefix_of(bucket_url: &str, options: &[(String, String)]) -> Result<ObjectPath, StoreError> {
    check_options(bucket_url, options)?;
    let url = url::Url::parse(bucket_url).map_err(|e| refused(bucket_url, e.to_string()))?;
    ObjectPath::parse(url.path()).map_err(|e| refused(bucket_url, e.to_string()))
}

impl ObjectStore {
    fn of(store: Arc<dyn object_store::ObjectStore>, bucket_url: &str, prefix: ObjectPath) -> Self {
        ObjectStore {
            store,
            base: bucket_url.trim_end_matches('/').to_owned(),
            prefix,
        }
    }

    /// Opens a bucket of the realm's own cloud with the credentials of its provider's chain:
    /// the store and the cloud calls use one credential chain, so they cannot act as two
    /// identities. `options` may add settings but not credentials: S3 (EKS), Azure Blob (AKS)
    /// and GCS (GKE).
    pub fn with_cloud(
        bucket_url: &str,
        options: Vec<(String, String)>,
        access: &CloudAccess,
    ) -> Result<Self, StoreError> {
        if bucket_url.starts_with("s3://") {
            Self::s3_with_cloud(bucket_url, options, access)
        } else if bucket_url.starts_with("az://") || bucket_url.starts_with("azure://") {
            Self::azure_with_cloud(bucket_url, options, access)
        } else if bucket_url.starts_with("gs://") {
            Self::gcs_with_cloud(bucket_url, options, access)
        } else {
            Self::new(bucket_url, options)
        }
    }

    /// Opens an `az://container/prefix` container with Entra ID tokens of the realm's cloud
    /// provider (AKS). The storage account and, for an emulator, the endpoint come from
    /// `options` (`azure_storage_account_name`, `azure_storage_endpoint`); credential keys in
    /// `options` are ignored, so the store cannot act as another identity.
    fn azure_with_cloud(
        bucket_url: &str,
        options: Vec<(String, String)>,
        access: &CloudAccess,
    ) -> Result<Self, StoreError> {
        use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
        let bad = |detail: String| refused(bucket_url, detail);
        let prefix = prefix_of(bucket_url, &options)?;
        let mut b = MicrosoftAzureBuilder::new().with_url(bucket_url);
        for (k, v) in options {
            if let Ok(key) = k.parse::<AzureConfigKey>()
                && matches!(
                    key,
                    AzureConfigKey::AccountName
                        | AzureConfigKey::Endpoint
                        | AzureConfigKey::ContainerName
                )
            {
                b = b.with_config(key, v);
            }
        }
        let client = with_roots(object_store::ClientOptions::new(), access).map_err(bad)?;
        b = b
            .with_client_options(client)
            .with_credentials(Arc::new(CloudCredentials::<
                object_store::azure::AzureCredential,
            >::new(access.cloud.clone())));
        let store = b.build().map_err(|e| bad(e.to_string()))?;
        Ok(ObjectStore::of(Arc::new(store), bucket_url, prefix))
    }

    /// Opens a `gs://bucket/prefix` bucket with OAuth tokens of the realm's cloud provider
    /// (GKE). For an emulator, the endpoint comes from `options` (`google_base_url`: https, or
    /// http to loopback); credential keys in `options` are ignored, so the store cannot act as
    /// another identity.
    fn gcs_with_cloud(
        bucket_url: &str,
        options: Vec<(String, String)>,
        access: &CloudAccess,
    ) -> Result<Self, StoreError> {
        use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
        let bad = |detail: String| refused(bucket_url, detail);
        let prefix = prefix_of(bucket_url, &options)?;
        let mut b = GoogleCloudStorageBuilder::new().with_url(bucket_url);
        let mut client = object_store::ClientOptions::new();
        for (k, v) in options {
            match k.parse::<GoogleConfigKey>() {
                Ok(GoogleConfigKey::BaseUrl) => {
                    crate::secret::may_carry_credentials(&v).map_err(|why| {
                        bad(format!(
                            "the endpoint {}: {why}\n  help: use https:// (plain http:// only for an emulator on 127.0.0.1)",
                            crate::spec::redact_url(&v)
                        ))
                    })?;
                    client = client.with_allow_http(v.starts_with("http://"));
                    b = b.with_config(GoogleConfigKey::BaseUrl, v);
                }
                Ok(GoogleConfigKey::Bucket) => b = b.with_config(GoogleConfigKey::Bucket, v),
                _ => {}
            }
        }
        let client = with_roots(client, access).map_err(bad)?;
        b = b
            .with_client_options(client)
            .with_credentials(Arc::new(
                CloudCredentials::<object_store::gcp::GcpCredential>::new(access.cloud.clone()),
            ));
        let store = b.build().map_err(|e| bad(e.to_string()))?;
        Ok(ObjectStore::of(Arc::new(store), bucket_url, prefix))
    }

    /// Opens an `s3://` bucket with the credentials of the realm's cloud provider (EKS).
    fn s3_with_cloud(
        bucket_url: &str,
        options: Vec<(String, String)>,
        access: &CloudAccess,
    ) -> Result<Self, StoreError> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let bad = |detail: String| refused(bucket_url, detail);
        let prefix = prefix_of(bucket_url, &options)?;
        let mut b = AmazonS3Builder::new().with_url(bucket_url);
        for (k, v) in options {
            if let Ok(key) = k.parse::<AmazonS3ConfigKey>()
                && !matches!(
                    key,
                    AmazonS3ConfigKey::AccessKeyId
                        | AmazonS3ConfigKey::SecretAccessKey
                        | AmazonS3ConfigKey::Token
                )
            {
                b = b.with_config(key, v);
            }
        }
        b = b
            .with_region(&access.region)
            .with_credentials(Arc::new(
                CloudCredentials::<object_store::aws::AwsCredential>::new(access.cloud.clone()),
            ));
        if let Some(e) = &access.endpoint {
            crate::secret::may_carry_credentials(e).map_err(|why| {
                bad(format!(
                    "the endpoint {}: {why}\n  help: use https:// (plain http:// only for an emulator on 127.0.0.1)",
                    crate::spec::redact_url(e)
                ))
            })?;
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        let store = b.build().map_err(|e| bad(e.to_string()))?;
        Ok(ObjectStore::of(Arc::new(store), bucket_url, prefix))
    }

    /// Opens `bucket_url` (`s3://`, `az://`, `gs://`) with `options` (object_store config keys
    /// such as `aws_endpoint`, `aws_access_key_id`).
    pub fn new(bucket_url: &str, options: Vec<(String, String)>) -> Result<Self, StoreError> {
        check_options(bucket_url, &options)?;
        let url = url::Url::parse(bucket_url).map_err(|e| refused(bucket_url, e.to_string()))?;
        let (store, prefix) = object_store::parse_url_opts(&url, options)
            .map_err(|e| refused(bucket_url, e.to_string()))?;
        Ok(ObjectStore::of(Arc::from(store), bucket_url, prefix))
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
        let too_large = || StoreError::TooLarge {
            location: location.to_owned(),
            max: fsutil::caps::ARTIFACT,
        };
        if got.meta.size > fsutil::caps::ARTIFACT {
            return Err(too_large());
        }
        // The declared size is the server's word: the body is read chunk by chunk and cut off
        // at the cap whatever it declared.
        use futures::StreamExt as _;
        let mut body = got.into_stream();
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| classify(location, e))?;
            if (out.len() + chunk.len()) as u64 > fsutil::caps::ARTIFACT {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}
