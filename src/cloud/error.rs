//! Cloud errors, classified by kind. Each cloud maps its own error codes and HTTP statuses to a
//! [`CloudErrorKind`] in one place (`src/cloud/<provider>/errors.rs`, with table tests), never
//! from message text; the engine's retry policy and the messages people read use the kind.

use std::fmt;

use serde::Serialize;

/// What kind of failure a cloud call had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CloudErrorKind {
    /// The identity may not do this (HTTP 403, `AccessDenied`, `UnauthorizedOperation`).
    AccessDenied,
    /// Too many requests; slow down and try again (HTTP 429, `Throttling`).
    Throttled,
    /// A service quota or limit stops it (`ResourceLimitExceeded`, `LimitExceeded`).
    QuotaExceeded,
    /// The thing does not exist (HTTP 404, `ResourceNotFoundException`, `NoSuchEntity`).
    NotFound,
    /// The thing exists in another state or shape (HTTP 409, `ResourceInUseException`).
    Conflict,
    /// Something else still holds the thing, so it cannot be deleted yet (`DependencyViolation`,
    /// a load balancer's `ResourceInUse`).
    InUse,
    /// The request is wrong (HTTP 400, `InvalidParameterException`, `ValidationError`).
    Invalid,
    /// The credentials are missing, wrong or expired (`ExpiredToken`, `InvalidClientTokenId`).
    ExpiredCredentials,
    /// The service could not answer (5xx, timeouts, connection failures).
    Unavailable,
    /// The answer was larger than realmctl holds in memory for one call, and was refused.
    TooLarge,
    /// The request was not sent: its destination may not receive credentials (plain http to
    /// a host that is not loopback).
    RefusedDestination,
    /// This build's client of the cloud does not do this (a capability still to come).
    Unsupported,
}

impl CloudErrorKind {
    /// Whether another attempt may succeed without anyone fixing anything.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            CloudErrorKind::Throttled | CloudErrorKind::Unavailable | CloudErrorKind::InUse
        )
    }

    /// The kind in words.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudErrorKind::AccessDenied => "access denied",
            CloudErrorKind::Throttled => "throttled",
            CloudErrorKind::QuotaExceeded => "quota exceeded",
            CloudErrorKind::NotFound => "not found",
            CloudErrorKind::Conflict => "conflict",
            CloudErrorKind::InUse => "still in use",
            CloudErrorKind::Invalid => "invalid request",
            CloudErrorKind::ExpiredCredentials => "credentials missing, invalid or expired",
            CloudErrorKind::Unavailable => "service unavailable",
            CloudErrorKind::TooLarge => "answer too large",
            CloudErrorKind::RefusedDestination => "refused to send credentials there",
            CloudErrorKind::Unsupported => "not supported by this build",
        }
    }

    /// A help line for the kinds people must fix.
    pub fn help(self) -> Option<&'static str> {
        match self {
            CloudErrorKind::AccessDenied => Some(
                "attach the least-privilege policy of the roles-and-resources document to the install identity (`realmctl plan` prints it)",
            ),
            CloudErrorKind::ExpiredCredentials => Some(
                "refresh the credentials (e.g. `aws sso login`, `az login`, a new client secret, or new temporary credentials) and run the command again",
            ),
            CloudErrorKind::QuotaExceeded => {
                Some("request a quota increase from the cloud provider, or lower the realm's size")
            }
            CloudErrorKind::RefusedDestination => Some(
                "use an https:// endpoint (plain http:// only to an emulator on 127.0.0.1), in cloud.endpoint and in the SDK's endpoint variables (AWS_ENDPOINT_URL*, AZURE_AUTHORITY_HOST)",
            ),
            _ => None,
        }
    }
}

impl fmt::Display for CloudErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed cloud call: what was called, its kind, and what the cloud said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
pub struct CloudError {
    /// The kind.
    pub kind: CloudErrorKind,
    /// The call, e.g. `eks:CreateCluster`.
    pub operation: String,
    /// The cloud's error code, when it gave one.
    pub code: Option<String>,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The cloud's message (never holds a secret: clouds do not echo credentials).
    pub message: String,
    /// How long the cloud asked the caller to wait before trying again (`Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({}", self.operation, self.kind)?;
        if let Some(c) = &self.code {
            write!(f, ", {c}")?;
        }
        if let Some(s) = self.status {
            write!(f, ", HTTP {s}")?;
        }
        write!(f, ")")?;
        if !self.message.is_empty() {
            write!(f, ": {}", crate::spec::shorten(&self.message))?;
        }
        if let Some(h) = self.kind.help() {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl CloudError {
    /// An error of `kind` for `operation`.
    pub fn new(
        kind: CloudErrorKind,
        operation: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        CloudError {
            kind,
            operation: operation.into(),
            code: None,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_unavailability_and_dependencies_are_retried() {
        use CloudErrorKind::*;
        for k in [
            AccessDenied,
            QuotaExceeded,
            NotFound,
            Conflict,
            Invalid,
            ExpiredCredentials,
            TooLarge,
            RefusedDestination,
        ] {
            assert!(!k.retryable(), "{k}");
        }
        assert!(Throttled.retryable() && Unavailable.retryable() && InUse.retryable());
    }

    #[test]
    fn messages_name_the_call_code_status_and_fix() {
        let e = CloudError {
            kind: CloudErrorKind::AccessDenied,
            operation: "eks:CreateCluster".into(),
            code: Some("AccessDeniedException".into()),
            status: Some(403),
            message: "User is not authorized to perform: eks:CreateCluster".into(),
            retry_after: None,
        };
        let s = e.to_string();
        assert!(s.starts_with("eks:CreateCluster failed (access denied, AccessDeniedException, HTTP 403): User is not authorized"), "{s}");
        assert!(s.contains("help: attach the least-privilege policy"), "{s}");
    }
}
