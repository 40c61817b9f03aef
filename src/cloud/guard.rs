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
