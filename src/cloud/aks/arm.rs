//! Azure Resource Manager over azure_core's pipeline: JSON GET, PUT and POST with a bearer
//! token from the credential chain (azure_core's bearer-token policy, which refuses anything
//! but https), ARM's errors classified by code and status ([`super::errors`]), and the
//! asynchronous-operation protocol of a create ("Track asynchronous Azure operations"): a PUT
//! answered 201/200 with `Azure-AsyncOperation` (preferred) or `Location` is followed until
//! the operation's `status` is terminal, waiting as `Retry-After` asks and never less.
//!
//! An operation URL comes from the server, and the token goes with it: it is followed only on
//! the ARM endpoint's own origin. azure_core's own retries are off: retries are the
//! [`crate::cloud::retry`] decorator's and the engine's, both deciding by kind and honouring
//! `Retry-After` (carried in [`CloudError::retry_after`]).

use std::time::Duration;

use azure_core::http::{Context, Method, Pipeline, PipelineSendOptions, Request, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::errors::{arm_error, from_azure, retry_after};
use crate::cloud::{CloudError, CloudErrorKind};

/// How long to wait between polls of an operation that asks for no `Retry-After`.
const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// The shortest wait between polls, whatever an answer asks (`Retry-After: 0` is no reason to
/// poll in a tight loop).
const MIN_POLL: Duration = Duration::from_millis(200);

/// An ARM answer: status, headers that matter, body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Azure-AsyncOperation` or `Location`.
    pub operation: Option<String>,
    /// `Retry-After`.
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: Vec<u8>,
}

/// ARM at one endpoint.
pub struct Arm {
    pipeline: Pipeline,
    base: Url,
}

/// The wait an operation asked for: its `Retry-After` (never less, and never under
/// [`MIN_POLL`]), else the default.
pub fn poll_interval(asked: Option<Duration>) -> Duration {
    asked.unwrap_or(DEFAULT_POLL).max(MIN_POLL)
}

/// Where an operation's status or a list's next page is fetched (pure): only on `base`'s
/// origin.
pub fn operation_url(base: &Url, given: &str) -> Result<Url, String> {
    let url = Url::parse(given).map_err(|e| format!("the operation URL is not a URL: {e}"))?;
    if url.origin() != base.origin() {
        return Err(format!(
            "the operation URL {} is not on the ARM endpoint {}; the token is not sent there",
            crate::text::one_line(url.as_str().split('?').next().unwrap_or("")),
            base.origin().ascii_serialization()
        ));
    }
    Ok(url)
}

/// The terminal state of an operation's status document (pure): `None` while it runs.
pub fn operation_outcome(operation: &str, body: &[u8]) -> Option<Result<(), CloudError>> {
    #[derive(serde::Deserialize)]
    struct Status {
        status: String,
        #[serde(default)]
        error: Option<ErrorBody>,
    }
    let s: Status = match serde_json::from_slice(body) {
        Ok(s) => s,
        Err(e) => {
            return Some(Err(CloudError::new(
                CloudErrorKind::Invalid,
                operation,
                format!("the operation's status is not ARM's: {e}"),
            )));
        }
    };
    match s.status.as_str() {
        "Succeeded" => Some(Ok(())),
        "Failed" | "Canceled" => {
            let (code, message) = s
                .error
                .map(|e| (e.code, e.message))
                .unwrap_or((None, format!("the operation ended {}", s.status)));
            let mut e = CloudError::new(
                // A failed creation is not fixed by trying again, and is no name clash: its
                // kind is the code's (quota, access…), else a refused request.
                match code
                    .as_deref()
                    .map(|c| super::errors::kind_of(400, Some(c)))
                {
                    Some(CloudErrorKind::Conflict) | None => CloudErrorKind::Invalid,
                    Some(k) => k,
                },
                operation,
                format!("the operation ended {}: {message}", s.status),
            );
            e.code = code;
            Some(Err(e))
        }
        _ => None,
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
}

#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

impl Arm {
    /// ARM at `base` through `pipeline`.
    pub fn new(pipeline: Pipeline, base: Url) -> Self {
        Arm { pipeline, base }
    }

    fn url(&self, path: &str, api: &str, query: &[(&str, &str)]) -> Result<Url, CloudError> {
        let mut url = self.base.clone();
        url.set_path(path);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", api);
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends one request; a non-2xx answer is an error of its ARM code.
    pub async fn send(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        create_only: bool,
    ) -> Result<Answer, CloudError> {
        let mut req = Request::new(url, method);
        req.insert_header("accept", "application/json");
        if create_only {
            req.insert_header("if-none-match", "*");
        }
        if let Some(b) = body {
            req.insert_header("content-type", "application/json");
            req.set_body(b);
        }
        let ctx = Context::new();
        let resp = self
            .pipeline
            .send(
                &ctx,
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| from_azure(operation, &e))?;
        let status = u16::from(resp.status());
        let headers = resp.headers().clone();
        let get = |name: &str| {
            headers
                .get_optional_str(&azure_core::http::headers::HeaderName::from(
                    name.to_owned(),
                ))
                .map(str::to_owned)
        };
        let retry = retry_after(get);
        let op = get("azure-asyncoperation").or_else(|| get("location"));
        let body = resp.into_body().to_vec();
        if !(200..300).contains(&status) {
            let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(&body) {
                Ok(e) => (e.error.code, e.error.message),
                Err(_) => (
                    None,
                    String::from_utf8_lossy(&body).chars().take(300).collect(),
                ),
            };
            return Err(arm_error(operation, status, code, message, retry));
        }
        Ok(Answer {
            status,
            operation: op,
            retry_after: retry,
            body,
        })
    }

    /// GET `path`: `None` on 404.
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
    ) -> Result<Option<T>, CloudError> {
        let url = self.url(path, api, &[])?;
        match self.send(operation, Method::Get, url, None, false).await {
            Ok(a) => decode(operation, &a.body).map(Some),
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET `path`, which must exist.
    pub async fn get_existing<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
    ) -> Result<T, CloudError> {
        let url = self.url(path, api, &[])?;
        let a = self.send(operation, Method::Get, url, None, false).await?;
        decode(operation, &a.body)
    }

    /// Every item of the list at `path`, following `nextLink` pages (on the endpoint's own
    /// origin only, as the token goes with them; at most 100 pages).
    pub async fn list<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
    ) -> Result<Vec<T>, CloudError> {
        self.list_where(operation, path, api, &[]).await
    }

    /// [`Arm::list`] with query parameters (e.g. a `$filter`).
    pub async fn list_where<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, CloudError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page<T> {
            value: Vec<T>,
            #[serde(default)]
            next_link: Option<String>,
        }
        let mut url = self.url(path, api, query)?;
        let mut out = Vec::new();
        for _ in 0..100 {
            let a = self.send(operation, Method::Get, url, None, false).await?;
            let page: Page<T> = decode(operation, &a.body)?;
            out.extend(page.value);
            match page.next_link.filter(|l| !l.is_empty()) {
                None => return Ok(out),
                Some(next) => {
                    url = operation_url(&self.base, &next).map_err(|why| {
                        CloudError::new(CloudErrorKind::RefusedDestination, operation, why)
                    })?;
                }
            }
        }
        Err(CloudError::new(
            CloudErrorKind::TooLarge,
            operation,
            "the list has more than 100 pages",
        ))
    }

    /// POST `path` (an action) with no body.
    pub async fn post<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CloudError> {
        let url = self.url(path, api, query)?;
        let a = self
            .send(operation, Method::Post, url, Some(Vec::new()), false)
            .await?;
        decode(operation, &a.body)
    }

    /// PUT `body` at `path` as a create only (`If-None-Match: *`: an existing resource is never
    /// overwritten; ARM answers 412, a conflict), then follows the operation to its end.
    pub async fn create<B: Serialize>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
        body: &B,
    ) -> Result<(), CloudError> {
        self.put_as(operation, path, api, body, true).await
    }

    /// PUT `body` at `path` as a create or update (for what realmctl finishes on a resource of
    /// its own, or adds to: a route, a subnet's route table), then follows the operation.
    pub async fn put<B: Serialize>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
        body: &B,
    ) -> Result<(), CloudError> {
        self.put_as(operation, path, api, body, false).await
    }

    /// POST the action `path` with no body and no answer wanted (a purge): accepted (2xx) is
    /// done, its end is not waited for; absent (404) is done.
    pub async fn act(&self, operation: &str, path: &str, api: &str) -> Result<(), CloudError> {
        let url = self.url(path, api, &[])?;
        match self
            .send(operation, Method::Post, url, Some(Vec::new()), false)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// DELETE `path`, then follows the operation to its end; a resource already gone (404,
    /// 204) is done.
    pub async fn delete(&self, operation: &str, path: &str, api: &str) -> Result<(), CloudError> {
        let url = self.url(path, api, &[])?;
        let a = match self.send(operation, Method::Delete, url, None, false).await {
            Ok(a) => a,
            Err(e) if e.status == Some(404) => return Ok(()),
            Err(e) => return Err(e),
        };
        match a.operation {
            Some(op) if a.status == 202 => self.follow(operation, &op, a.retry_after).await,
            _ => Ok(()),
        }
    }

    /// Polls the asynchronous operation at `op` until it ends, as late as each answer asks.
    async fn follow(
        &self,
        operation: &str,
        op: &str,
        retry_after: Option<Duration>,
    ) -> Result<(), CloudError> {
        let url = operation_url(&self.base, op)
            .map_err(|why| CloudError::new(CloudErrorKind::RefusedDestination, operation, why))?;
        let mut wait = poll_interval(retry_after);
        loop {
            tokio::time::sleep(wait).await;
            match self
                .send(operation, Method::Get, url.clone(), None, false)
                .await
            {
                Ok(s) => {
                    if let Some(end) = operation_outcome(operation, &s.body) {
                        return end;
                    }
                    wait = poll_interval(s.retry_after);
                }
                // A throttled or unanswered poll is polled again, as late as asked.
                Err(e) if e.kind.retryable() => wait = poll_interval(e.retry_after),
                Err(e) => return Err(e),
            }
        }
    }

    async fn put_as<B: Serialize>(
        &self,
        operation: &str,
        path: &str,
        api: &str,
        body: &B,
        create_only: bool,
    ) -> Result<(), CloudError> {
        let url = self.url(path, api, &[])?;
        let bytes = serde_json::to_vec(body)
            .map_err(|e| CloudError::new(CloudErrorKind::Invalid, operation, e.to_string()))?;
        let a = self
            .send(operation, Method::Put, url, Some(bytes), create_only)
            .await?;
        let Some(op) = a.operation else {
            // Created synchronously.
            return Ok(());
        };
        self.follow(operation, &op, a.retry_after).await
    }
}

fn decode<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T, CloudError> {
    serde_json::from_slice(body).map_err(|e| {
        CloudError::new(
            CloudErrorKind::Invalid,
            operation,
            format!("ARM's answer is not the documented shape: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_followed_only_on_the_endpoint_origin() {
        let base = Url::parse("https://management.azure.com").unwrap();
        assert!(operation_url(&base, "https://management.azure.com/subscriptions/s/providers/Microsoft.ContainerService/locations/eastus/operations/1?api-version=2025-10-01").is_ok());
        for bad in [
            "https://evil.example.com/op",
            "http://management.azure.com/op",
            "https://management.azure.com:8443/op",
            "not a url",
        ] {
            assert!(operation_url(&base, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operation_statuses_end_or_continue() {
        assert!(operation_outcome("op", br#"{"status":"InProgress"}"#).is_none());
        assert!(operation_outcome("op", br#"{"status":"Accepted"}"#).is_none());
        assert!(matches!(
            operation_outcome("op", br#"{"status":"Succeeded"}"#),
            Some(Ok(()))
        ));
        let e = operation_outcome(
            "op",
            br#"{"status":"Failed","error":{"code":"QuotaExceeded","message":"no cores"}}"#,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e.kind, CloudErrorKind::QuotaExceeded);
        assert_eq!(e.code.as_deref(), Some("QuotaExceeded"));
        assert!(e.message.contains("no cores"));
        let e = operation_outcome(
            "op",
            br#"{"status":"Failed","error":{"code":"VMExtensionProvisioningError","message":"x"}}"#,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(
            e.kind,
            CloudErrorKind::Invalid,
            "a failed creation is not retried"
        );
        assert!(matches!(
            operation_outcome("op", br#"{"status":"Canceled"}"#),
            Some(Err(_))
        ));
        assert!(matches!(operation_outcome("op", b"<html>"), Some(Err(_))));
    }

    #[test]
    fn an_operation_is_polled_as_late_as_asked() {
        assert_eq!(
            poll_interval(Some(Duration::from_secs(17))),
            Duration::from_secs(17)
        );
        assert_eq!(poll_interval(None), DEFAULT_POLL);
        assert_eq!(poll_interval(Some(Duration::ZERO)), MIN_POLL);
    }
}
