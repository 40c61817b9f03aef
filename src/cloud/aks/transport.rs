//! The one HTTP client of the AKS provider (ARM calls and the credential chain's token
//! requests): reqwest on rustls (aws-lc-rs), the platform's trust store (which honours
//! `SSL_CERT_FILE`) plus any roots the caller adds, wrapped for azure_core's pipeline so that
//!
//! - a request carrying a credential (an `Authorization` header, or a body, which for the token
//!   endpoint holds the client secret or federated token) goes only over https, or plain http
//!   to loopback; a bodiless, unauthorized GET may use plain http (the instance metadata
//!   service, which answers a token but is sent none);
//! - no answer may occupy more than [`crate::fsutil::caps::CLOUD_ANSWER`]: a larger
//!   `Content-Length` is refused before the body is read, and a body that grows past it is cut
//!   off.
//!
//! Both refusals are typed errors the classifier finds by type ([`RefusedDestination`],
//! [`AnswerTooLarge`]).

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::{AsyncRawResponse, HttpClient, Request};

pub use crate::cloud::guard::{AnswerTooLarge, RefusedDestination};

/// The guarded client.
#[derive(Debug)]
pub struct Guarded {
    inner: reqwest::Client,
    max: u64,
}

/// Builds the guarded client: `extra_roots` (PEM) are trusted besides the platform's roots.
pub fn client(
    extra_roots: &[String],
    connect: Duration,
    call: Duration,
) -> Result<Arc<dyn HttpClient>, String> {
    let inner = crate::cloud::guard::http_client(extra_roots, connect, call)?;
    Ok(Arc::new(Guarded {
        inner,
        max: crate::fsutil::caps::CLOUD_ANSWER,
    }))
}

/// Whether `request` may go to its URL (pure): a request with an `Authorization` header or a
/// body carries credentials; a bodiless, unauthorized GET does not.
fn check(url: &str, authorized: bool, has_body: bool, get: bool) -> Result<(), RefusedDestination> {
    crate::cloud::guard::check_destination(url, authorized || has_body || !get)
}

#[async_trait::async_trait]
impl HttpClient for Guarded {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        use azure_core::http::{Method, request::Body};
        let url = request.url().as_str();
        let authorized = request
            .headers()
            .iter()
            .any(|(k, _)| k.as_str().eq_ignore_ascii_case("authorization"));
        let body = match request.body() {
            Body::Bytes(b) => b.clone(),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "streamed request bodies are not sent by realmctl",
                ));
            }
        };
        let get = request.method() == Method::Get;
        if let Err(e) = check(url, authorized, !body.is_empty(), get) {
            return Err(Error::new(ErrorKind::Other, e));
        }
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|e| Error::new(ErrorKind::Other, e))?;
        let mut req = self.inner.request(method, request.url().clone());
        for (name, value) in request.headers().iter() {
            req = req.header(name.as_str(), value.as_str());
        }
        let resp = req.body(body).send().await.map_err(|e| {
            let kind = if e.is_connect() {
                ErrorKind::Connection
            } else {
                ErrorKind::Io
            };
            Error::new(kind, e)
        })?;
        let status = resp.status().as_u16();
        let mut headers = azure_core::http::headers::Headers::new();
        for (k, v) in resp.headers() {
            if let Ok(v) = v.to_str() {
                headers.insert(k.as_str().to_owned(), v.to_owned());
            }
        }
        let got = crate::cloud::guard::read_capped(resp, self.max)
            .await
            .map_err(|e| match e {
                crate::cloud::guard::ReadError::TooLarge(t) => Error::new(ErrorKind::Io, t),
                crate::cloud::guard::ReadError::Transport(t) => Error::new(ErrorKind::Io, t),
            })?;
        Ok(AsyncRawResponse::from_bytes(status.into(), headers, got))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_only_over_https_or_to_loopback() {
        assert!(check("https://management.azure.com/x", true, false, true).is_ok());
        assert!(check("http://127.0.0.1:8080/x", true, false, true).is_ok());
        assert!(check("http://[::1]:8080/x", false, true, false).is_ok());
        let e = check(
            "http://management.example.com/x?api-version=1",
            true,
            false,
            true,
        )
        .unwrap_err();
        assert_eq!(e.url, "http://management.example.com/x");
        // A token request carries its secret in the body.
        assert!(
            check(
                "http://login.example.com/t/oauth2/v2.0/token",
                false,
                true,
                false
            )
            .is_err()
        );
        // The instance metadata service: a bodiless GET with no credential.
        assert!(
            check(
                "http://169.254.169.254/metadata/identity/oauth2/token",
                false,
                false,
                true
            )
            .is_ok()
        );
    }
}
