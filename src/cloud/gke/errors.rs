//! Google API errors classified into [`CloudErrorKind`]s from the canonical status name
//! (`{"error": {"code", "message", "status", "details"}}`, google.rpc.Code), the structured
//! details, and the HTTP status; never from message text. Table-tested below.

use std::time::Duration;

use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::{Code, StatusDetails};
use serde::Deserialize;

use crate::cloud::guard::{AnswerTooLarge, RefusedDestination};
use crate::cloud::{CloudError, CloudErrorKind};

/// The `@type` of the detail that says a quota (not a rate) ran out.
pub const QUOTA_FAILURE: &str = "type.googleapis.com/google.rpc.QuotaFailure";
/// The `@type` of the detail that names a reason and its metadata (e.g. the denied permission).
pub const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The kind of an error answered with HTTP `http` and canonical `status` (pure).
/// RESOURCE_EXHAUSTED is a rate limit (retried after a wait) unless a `QuotaFailure` detail
/// says a quota ran out.
pub fn kind_of(http: Option<u16>, status: Option<&str>, quota_failure: bool) -> CloudErrorKind {
    use CloudErrorKind as K;
    match status {
        Some("PERMISSION_DENIED") => return K::AccessDenied,
        Some("UNAUTHENTICATED") => return K::ExpiredCredentials,
        Some("RESOURCE_EXHAUSTED") if quota_failure => return K::QuotaExceeded,
        Some("RESOURCE_EXHAUSTED") => return K::Throttled,
        Some("NOT_FOUND") => return K::NotFound,
        Some("ALREADY_EXISTS" | "ABORTED") => return K::Conflict,
        Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => return K::Invalid,
        Some("UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" | "UNKNOWN") => {
            return K::Unavailable;
        }
        _ => {}
    }
    match http {
        Some(401) => K::ExpiredCredentials,
        Some(403) => K::AccessDenied,
        Some(404) => K::NotFound,
        Some(409) => K::Conflict,
        Some(429) => K::Throttled,
        Some(400 | 412 | 422) => K::Invalid,
        Some(s) if s >= 500 => K::Unavailable,
        _ => K::Unavailable,
    }
}

/// The canonical name of a google.rpc.Code number (GKE operations carry the number).
pub fn code_name(code: i32) -> &'static str {
    Code::from(code).name()
}

/// The error body of a Google REST API.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: RpcError,
}

/// `{"code", "message", "status", "details"}`.
#[derive(Debug, Deserialize)]
pub struct RpcError {
    /// The HTTP status.
    #[serde(default)]
    pub code: u16,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// The canonical status name.
    #[serde(default)]
    pub status: Option<String>,
    /// Structured details, each with an `@type`.
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
    /// Compute Engine's v1 `errors` (`domain`, `reason`, `message`).
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

impl RpcError {
    fn detail_types(&self) -> impl Iterator<Item = &str> {
        self.details
            .iter()
            .filter_map(|d| d.get("@type").and_then(|t| t.as_str()))
    }

    /// The permission an `ErrorInfo` detail names as denied, if any.
    pub fn permission(&self) -> Option<&str> {
        self.details
            .iter()
            .filter(|d| d.get("@type").and_then(|t| t.as_str()) == Some(ERROR_INFO))
            .find_map(|d| d.pointer("/metadata/permission").and_then(|p| p.as_str()))
    }
}

/// The error of an answer with HTTP `http` and body `body` to `operation`.
pub fn from_answer(
    operation: &str,
    http: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> CloudError {
    let parsed: Option<RpcError> = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let (kind, message) = match &parsed {
        Some(e) => {
            let quota = e.detail_types().any(|t| t == QUOTA_FAILURE);
            let mut m = format!(
                "{} ({})",
                crate::text::one_line(&e.message),
                e.status.as_deref().unwrap_or("no status")
            );
            if let Some(p) = e.permission() {
                m.push_str(&format!("; permission {}", crate::text::one_line(p)));
            }
            // Compute Engine names a resource still in use by its reason.
            let in_use = e.errors.iter().any(|x| {
                x.get("reason").and_then(|r| r.as_str()) == Some("resourceInUseByAnotherResource")
            });
            let kind = if in_use {
                CloudErrorKind::InUse
            } else {
                kind_of(Some(http), e.status.as_deref(), quota)
            };
            (kind, m)
        }
        None => (kind_of(Some(http), None, false), format!("HTTP {http}")),
    };
    let mut e = CloudError::new(kind, operation, message);
    e.retry_after = retry_after;
    e.status = Some(http);
    e.code = parsed.and_then(|p| p.status);
    e
}

/// The error of a GKE client call (gax).
pub fn from_gax(operation: &str, e: &GaxError) -> CloudError {
    if e.is_authentication() {
        let kind = if e.is_transient_and_before_rpc() {
            CloudErrorKind::Unavailable
        } else {
            CloudErrorKind::ExpiredCredentials
        };
        return CloudError::new(kind, operation, crate::text::one_line(&e.to_string()));
    }
    if let Some(s) = e.status() {
        let quota = s
            .details
            .iter()
            .any(|d| matches!(d, StatusDetails::QuotaFailure(_)));
        let permission = s.details.iter().find_map(|d| match d {
            StatusDetails::ErrorInfo(i) => i.metadata.get("permission").cloned(),
            _ => None,
        });
        let mut m = format!("{} ({})", crate::text::one_line(&s.message), s.code.name());
        if let Some(p) = permission {
            m.push_str(&format!("; permission {}", crate::text::one_line(&p)));
        }
        let mut out = CloudError::new(
            kind_of(e.http_status_code(), Some(s.code.name()), quota),
            operation,
            m,
        );
        out.code = Some(s.code.name().to_owned());
        out.status = e.http_status_code();
        out.retry_after = e
            .http_headers()
            .and_then(|h| h.get("retry-after"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return out;
    }
    let kind = if e.is_timeout() || e.is_io() || e.is_connect() || e.is_transport() {
        CloudErrorKind::Unavailable
    } else if e.is_deserialization() || e.is_serialization() || e.is_binding() {
        CloudErrorKind::Invalid
    } else {
        kind_of(e.http_status_code(), None, false)
    };
    CloudError::new(kind, operation, crate::text::one_line(&e.to_string()))
}

/// The error of a request our REST reader could not complete.
pub fn from_transport(operation: &str, e: &crate::cloud::guard::ReadError) -> CloudError {
    match e {
        crate::cloud::guard::ReadError::TooLarge(t) => {
            CloudError::new(CloudErrorKind::TooLarge, operation, t.to_string())
        }
        crate::cloud::guard::ReadError::Transport(t) => CloudError::new(
            CloudErrorKind::Unavailable,
            operation,
            crate::text::one_line(&t.to_string()),
        ),
    }
}

/// The error of a request refused before it was sent.
pub fn refused(operation: &str, e: &RefusedDestination) -> CloudError {
    CloudError::new(CloudErrorKind::RefusedDestination, operation, e.to_string())
}

/// The error of an answer over the cap.
pub fn too_large(operation: &str, e: &AnswerTooLarge) -> CloudError {
    CloudError::new(CloudErrorKind::TooLarge, operation, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloudErrorKind as K;

    #[test]
    fn compute_names_a_resource_still_in_use_by_its_reason() {
        let body = br#"{"error": {"code": 400, "message": "The firewall resource is already being used by x", "errors": [{"domain": "global", "reason": "resourceInUseByAnotherResource", "message": "..."}]}}"#;
        assert_eq!(
            from_answer("compute:Delete", 400, body, None).kind,
            K::InUse
        );
        let plain = br#"{"error": {"code": 400, "message": "bad", "errors": [{"domain": "global", "reason": "invalid"}]}}"#;
        assert_eq!(
            from_answer("compute:Delete", 400, plain, None).kind,
            K::Invalid
        );
    }

    #[test]
    fn statuses_classify_before_http_codes() {
        for (http, status, quota, want) in [
            (Some(403), Some("PERMISSION_DENIED"), false, K::AccessDenied),
            (
                Some(401),
                Some("UNAUTHENTICATED"),
                false,
                K::ExpiredCredentials,
            ),
            (Some(429), Some("RESOURCE_EXHAUSTED"), false, K::Throttled),
            (
                Some(429),
                Some("RESOURCE_EXHAUSTED"),
                true,
                K::QuotaExceeded,
            ),
            (Some(404), Some("NOT_FOUND"), false, K::NotFound),
            (Some(409), Some("ALREADY_EXISTS"), false, K::Conflict),
            (Some(400), Some("FAILED_PRECONDITION"), false, K::Invalid),
            (Some(503), Some("UNAVAILABLE"), false, K::Unavailable),
            (Some(403), None, false, K::AccessDenied),
            (Some(429), None, false, K::Throttled),
            (Some(502), None, false, K::Unavailable),
            (None, None, false, K::Unavailable),
        ] {
            assert_eq!(kind_of(http, status, quota), want, "{http:?} {status:?}");
        }
    }

    #[test]
    fn a_denied_permission_is_named_from_the_error_info_detail() {
        let body = br#"{"error":{"code":403,"message":"Permission denied.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"IAM_PERMISSION_DENIED","domain":"container.googleapis.com","metadata":{"permission":"container.clusters.create"}}]}}"#;
        let e = from_answer("gke:CreateCluster", 403, body, None);
        assert_eq!(e.kind, K::AccessDenied);
        assert!(e.message.contains("container.clusters.create"), "{e}");
        let quota = br#"{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]}]}}"#;
        assert_eq!(from_answer("x", 429, quota, None).kind, K::QuotaExceeded);
        assert_eq!(from_answer("x", 502, b"<html>", None).kind, K::Unavailable);
    }

    #[test]
    fn operation_codes_have_their_canonical_names() {
        assert_eq!(code_name(7), "PERMISSION_DENIED");
        assert_eq!(code_name(8), "RESOURCE_EXHAUSTED");
        assert_eq!(code_name(6), "ALREADY_EXISTS");
    }
}
