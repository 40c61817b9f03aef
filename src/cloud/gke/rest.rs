//! A small typed reader of the Google REST APIs phase 1 and 3 read besides GKE: Resource
//! Manager v3 (the project, `testIamPermissions`), Service Usage v1 (`services:batchGet`) and
//! Compute Engine v1 (the region's quotas, the subnetwork), plus the metadata server's account
//! name. Google's crates for these pull a gRPC stack (tonic, prost, h2) for calls that are
//! plain JSON (`docs/decisions.md`), so they go over the one guarded reqwest client: bearer
//! tokens from the same [`AccessTokenCredentials`] as the GKE client, only over https or to
//! loopback, answers capped, errors classified by [`super::errors`].

use std::time::Duration;

use google_cloud_auth::credentials::AccessTokenCredentials;
use serde::de::DeserializeOwned;

use super::errors;
use crate::cloud::guard::{check_destination, read_capped};
use crate::cloud::{CloudError, CloudErrorKind};

/// The reader.
pub struct Rest {
    http: reqwest::Client,
    credentials: AccessTokenCredentials,
    max: u64,
}

/// The error of a token the credentials could not give.
pub fn token_error(operation: &str, e: &google_cloud_auth::errors::CredentialsError) -> CloudError {
    let kind = if e.is_transient() {
        CloudErrorKind::Unavailable
    } else {
        CloudErrorKind::ExpiredCredentials
    };
    CloudError::new(kind, operation, crate::text::one_line(&e.to_string()))
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl Rest {
    /// A reader over `http` with `credentials`.
    pub fn new(http: reqwest::Client, credentials: AccessTokenCredentials) -> Self {
        Rest {
            http,
            credentials,
            max: crate::fsutil::caps::CLOUD_ANSWER,
        }
    }

    /// A bearer token of the credentials.
    pub async fn token(&self, operation: &str) -> Result<String, CloudError> {
        self.credentials
            .access_token()
            .await
            .map(|t| t.token)
            .map_err(|e| token_error(operation, &e))
    }

    async fn send(
        &self,
        operation: &str,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Option<Vec<u8>>, CloudError> {
        check_destination(url, true).map_err(|e| errors::refused(operation, &e))?;
        let token = self.token(operation).await?;
        let resp =
            req.bearer_auth(token).send().await.map_err(|e| {
                CloudError::new(CloudErrorKind::Unavailable, operation, e.to_string())
            })?;
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers());
        let body = read_capped(resp, self.max)
            .await
            .map_err(|e| errors::from_transport(operation, &e))?;
        match status {
            200..=299 => Ok(Some(body)),
            404 => Ok(None),
            _ => Err(errors::from_answer(operation, status, &body, wait)),
        }
    }

    /// GET `url`: `None` on 404.
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &str,
        url: &str,
    ) -> Result<Option<T>, CloudError> {
        match self.send(operation, self.http.get(url), url).await? {
            Some(b) => decode(operation, &b).map(Some),
            None => Ok(None),
        }
    }

    /// DELETE `url`: its answer (a Compute Engine operation), `None` when it was already gone.
    pub async fn delete<T: DeserializeOwned>(
        &self,
        operation: &str,
        url: &str,
    ) -> Result<Option<T>, CloudError> {
        match self.send(operation, self.http.delete(url), url).await? {
            Some(b) => decode(operation, &b).map(Some),
            None => Ok(None),
        }
    }

    /// POST `body` to `url`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        operation: &str,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<T, CloudError> {
        self.write(operation, self.http.post(url), url, body).await
    }

    /// PATCH `body` to `url`.
    pub async fn patch<T: DeserializeOwned>(
        &self,
        operation: &str,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<T, CloudError> {
        self.write(operation, self.http.patch(url), url, body).await
    }

    /// Sends `body` as JSON with `req` (a POST or PATCH of `url`): its answer, which must exist.
    async fn write<T: DeserializeOwned>(
        &self,
        operation: &str,
        req: reqwest::RequestBuilder,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<T, CloudError> {
        match self.send(operation, req.json(body), url).await? {
            Some(b) => decode(operation, &b),
            None => Err(CloudError::new(
                CloudErrorKind::NotFound,
                operation,
                "not found",
            )),
        }
    }

    /// The email of the metadata server's default service account (a GET that carries no
    /// credential).
    pub async fn metadata_email(&self, root: &str) -> Result<String, CloudError> {
        let op = "metadata:email";
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/email",
            root.trim_end_matches('/')
        );
        let resp = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|e| CloudError::new(CloudErrorKind::Unavailable, op, e.to_string()))?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, 4096)
            .await
            .map_err(|e| errors::from_transport(op, &e))?;
        if status != 200 {
            return Err(errors::from_answer(op, status, &body, None));
        }
        Ok(crate::text::one_line(&String::from_utf8_lossy(&body)))
    }
}

fn decode<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T, CloudError> {
    serde_json::from_slice(body).map_err(|e| {
        CloudError::new(
            CloudErrorKind::Invalid,
            operation,
            format!("unexpected answer: {e}"),
        )
    })
}
