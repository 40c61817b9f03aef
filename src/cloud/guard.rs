//! The refusals every cloud client's transport makes, as typed errors its classifier finds by
//! type (never by text): a request carrying credentials to a destination that may not receive
//! them (plain http to a host that is not loopback, credentials in the URL), and an answer
//! larger than realmctl reads of one call ([`crate::fsutil::caps::CLOUD_ANSWER`]).

/// A request carrying credentials was not sent: its destination may not receive them.
#[derive(Debug, thiserror::Error)]
#[error("credentials are not sent to {url}: {why}")]
pub struct RefusedDestination {
    /// The destination, without its query.
    pub url: String,
    /// Why.
    pub why: String,
}

/// An answer larger than the cap was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "the answer is larger than {max} bytes, the most realmctl reads of one call; it was refused"
)]
pub struct AnswerTooLarge {
    /// The cap.
    pub max: u64,
}

/// Whether a request to `url` may be sent: always when it carries no credentials, else only
/// over https or to loopback (pure).
pub fn check_destination(url: &str, carries_credentials: bool) -> Result<(), RefusedDestination> {
    if !carries_credentials {
        return Ok(());
    }
    crate::secret::may_carry_credentials(url).map_err(|why| RefusedDestination {
        url: url.split('?').next().unwrap_or(url).to_owned(),
        why,
    })
}

/// The reqwest client of the clouds that talk plain REST (Azure, Google): rustls on aws-lc-rs,
/// the platform's trust store (which honours `SSL_CERT_FILE`) plus `extra_roots` (PEM), no
/// redirects (a redirect could carry a credential elsewhere), and the given deadlines.
#[cfg(any(feature = "aks", feature = "gke"))]
pub fn http_client(
    extra_roots: &[String],
    connect: std::time::Duration,
    call: std::time::Duration,
) -> Result<reqwest::Client, String> {
    let mut certs = Vec::new();
    for pem in extra_roots {
        certs.extend(
            reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| e.to_string())?,
        );
    }
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(call)
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| e.to_string())
}

/// Why an answer's body was not read.
#[cfg(any(feature = "aks", feature = "gke"))]
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It was larger than the cap.
    #[error(transparent)]
    TooLarge(#[from] AnswerTooLarge),
    /// The connection failed.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads an answer's body, at most `max` bytes: a larger `Content-Length` is refused before
/// the body is read, and a body that grows past it is cut off.
#[cfg(any(feature = "aks", feature = "gke"))]
pub async fn read_capped(resp: reqwest::Response, max: u64) -> Result<Vec<u8>, ReadError> {
    use futures::StreamExt;
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(AnswerTooLarge { max }.into());
    }
    let mut stream = resp.bytes_stream();
    let mut got: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if got.len() as u64 + chunk.len() as u64 > max {
            return Err(AnswerTooLarge { max }.into());
        }
        got.extend_from_slice(&chunk);
    }
    Ok(got)
}
