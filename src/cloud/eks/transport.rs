//! The HTTP client every AWS SDK client of realmctl is built with: the SDK's own rustls client
//! (aws-lc-rs), wrapped so that
//!
//! - a request carrying AWS credentials (a SigV4 `Authorization` header or a session token)
//!   goes only over https, or plain http to a loopback address — whatever set the endpoint:
//!   the spec, a journal, or the SDK's own `AWS_ENDPOINT_URL*` variables, which the SDK reads
//!   itself and which this wrapper is the only place to catch; unsigned requests of the
//!   credential chain (the instance metadata service) pass;
//! - no answer may occupy more than [`crate::fsutil::caps::CLOUD_ANSWER`]: a `Content-Length`
//!   over it is refused before its body is read, and a body that grows past it is cut off.
//!
//! Both refusals are typed errors ([`RefusedDestination`], [`AnswerTooLarge`]) that the error
//! classifier finds by type, never by text.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

pub use crate::cloud::guard::{AnswerTooLarge, RefusedDestination, check_destination};

/// The guarded client.
#[derive(Debug, Clone)]
pub struct Guarded {
    inner: SharedHttpClient,
    max: u64,
}

impl Guarded {
    /// The SDK's rustls (aws-lc-rs) https client, guarded.
    pub fn client() -> SharedHttpClient {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        SharedHttpClient::new(Guarded {
            inner,
            max: crate::fsutil::caps::CLOUD_ANSWER,
        })
    }
}

impl HttpClient for Guarded {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(GuardedConnector {
            inner: self.inner.http_connector(settings, components),
            max: self.max,
        })
    }
}

#[derive(Debug)]
struct GuardedConnector {
    inner: SharedHttpConnector,
    max: u64,
}

/// Whether a request carries AWS credentials (SigV4 header signing or a session token).
fn carries_credentials(req: &HttpRequest) -> bool {
    let h = req.headers();
    h.get("authorization").is_some()
        || h.get("x-amz-security-token").is_some()
        || req.uri().contains("X-Amz-Credential=")
}

/// Whether an answer's declared length is over the cap (pure).
fn declared_too_large(content_length: Option<&str>, max: u64) -> bool {
    content_length
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > max)
}

impl HttpConnector for GuardedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if let Err(e) = check_destination(request.uri(), carries_credentials(&request)) {
            return HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(e))));
        }
        let max = self.max;
        let sent = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let resp = sent.await?;
            if declared_too_large(resp.headers().get("content-length"), max) {
                return Err(ConnectorError::other(
                    Box::new(AnswerTooLarge { max }),
                    None,
                ));
            }
            Ok(resp.map(move |body| {
                let limited = http_body_util::Limited::new(body, max as usize);
                SdkBody::from_body_1_x(CappedErrors {
                    inner: limited,
                    max,
                })
            }))
        })
    }
}

/// A body whose overflow error is [`AnswerTooLarge`] (typed, for the classifier).
struct CappedErrors<B> {
    inner: B,
    max: u64,
}

impl<B> http_body_1::Body for CappedErrors<B>
where
    B: http_body_1::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body_1::Frame<Self::Data>, Self::Error>>> {
        let max = self.max;
        std::pin::Pin::new(&mut self.inner).poll_frame(cx).map(|f| {
            f.map(|r| {
                r.map_err(|e| {
                    let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                    if e.is::<http_body_util::LengthLimitError>() {
                        Box::new(AnswerTooLarge { max }) as _
                    } else {
                        e
                    }
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body_1::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_go_only_over_https_or_to_loopback() {
        for ok in [
            "https://eks.us-east-1.amazonaws.com/clusters",
            "http://127.0.0.1:4566/",
            "http://[::1]:4566/",
            "http://localhost:4566/",
        ] {
            assert!(check_destination(ok, true).is_ok(), "{ok}");
        }
        for bad in [
            "http://eks.example.com/clusters",
            "http://10.0.0.5:4566/",
            "http://169.254.169.254/latest/api/token",
        ] {
            let e = check_destination(bad, true).unwrap_err();
            assert!(e.to_string().contains("not sent to"), "{e}");
        }
        // The instance metadata service is asked without credentials: allowed.
        assert!(check_destination("http://169.254.169.254/latest/api/token", false).is_ok());
        // The query (a presigned signature) is never repeated in the message.
        let e = check_destination("http://evil.example/x?X-Amz-Credential=AKIA", true).unwrap_err();
        assert!(!e.to_string().contains("AKIA"), "{e}");
    }

    #[test]
    fn a_declared_length_over_the_cap_is_refused_before_the_body() {
        assert!(declared_too_large(Some("1610612736"), 16 << 20));
        assert!(!declared_too_large(Some("1024"), 16 << 20));
        assert!(!declared_too_large(None, 16 << 20));
        assert!(!declared_too_large(Some("garbage"), 16 << 20));
    }
}
