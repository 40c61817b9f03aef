//! ARM and Microsoft Entra errors classified into [`CloudErrorKind`]s, from the error code ARM
//! puts in `{"error": {"code"}}`, the AADSTS number the token endpoint puts in `error_codes`,
//! and the HTTP status; never from message text. Table-tested below.

use std::time::Duration;

use crate::cloud::{CloudError, CloudErrorKind};

use super::transport::{AnswerTooLarge, RefusedDestination};

/// The kind of an ARM error `code` answered with `status`.
pub fn kind_of(status: u16, code: Option<&str>) -> CloudErrorKind {
    use CloudErrorKind as K;
    if let Some(code) = code {
        let k = match code {
            "AuthorizationFailed"
            | "LinkedAuthorizationFailed"
            | "RequestDisallowedByPolicy"
            | "Forbidden" => Some(K::AccessDenied),
            "ExpiredAuthenticationToken"
            | "InvalidAuthenticationToken"
            | "InvalidAuthenticationTokenTenant"
            | "AuthenticationFailed" => Some(K::ExpiredCredentials),
            "QuotaExceeded" | "OperationNotAllowedQuota" | "SkuNotAvailable" => {
                Some(K::QuotaExceeded)
            }
            "ResourceGroupNotFound"
            | "ResourceNotFound"
            | "NotFound"
            | "SubscriptionNotFound"
            | "InvalidResourceNamespace" => Some(K::NotFound),
            "Conflict"
            | "PreconditionFailed"
            | "OperationNotAllowed"
            | "AnotherOperationInProgress"
            | "EtagMismatch" => Some(K::Conflict),
            "PublicIPAddressInUse"
            | "InUseNetworkSecurityGroupCannotBeDeleted"
            | "InUseNetworkInterfaceCannotBeDeleted"
            | "InUseSubnetCannotBeDeleted"
            | "NicInUse"
            | "ResourceInUse" => Some(K::InUse),
            "TooManyRequests" | "SubscriptionRequestsThrottled" | "TenantRequestsThrottled" => {
                Some(K::Throttled)
            }
            "InvalidParameter"
            | "InvalidRequestContent"
            | "BadRequest"
            | "InvalidTemplate"
            | "MissingApiVersionParameter"
            | "NoRegisteredProviderFound" => Some(K::Invalid),
            "InternalServerError" | "ServiceUnavailable" | "GatewayTimeout" => Some(K::Unavailable),
            _ => None,
        };
        if let Some(k) = k {
            return k;
        }
    }
    match status {
        401 => K::ExpiredCredentials,
        403 => K::AccessDenied,
        404 => K::NotFound,
        409 | 412 => K::Conflict,
        429 => K::Throttled,
        400 | 422 => K::Invalid,
        _ if status >= 500 => K::Unavailable,
        _ => K::Invalid,
    }
}

/// The kind of a token endpoint's AADSTS error number.
pub fn kind_of_aadsts(code: u32) -> CloudErrorKind {
    use CloudErrorKind as K;
    match code {
        // Invalid or expired client secret, expired federated token, unknown application or
        // tenant, consent, disabled or deleted principal: someone must fix the credentials.
        7000215 | 7000222 | 700016 | 90002 | 700024 | 700027 | 70021 | 700213 | 7000112 | 65001
        | 50034 | 50053 | 50057 | 50126 | 50173 => K::ExpiredCredentials,
        // Conditional access or a block by policy.
        53003 | 530003 => K::AccessDenied,
        // Throttled, or the service could not answer.
        50196 | 90033 => K::Throttled,
        50000 | 90055 => K::Unavailable,
        _ => K::ExpiredCredentials,
    }
}

/// `Retry-After` (seconds or an HTTP date) or the `retry-after-ms` headers ARM also sends,
/// whichever is given; `None` when none is or none parses.
pub fn retry_after(get: impl Fn(&str) -> Option<String>) -> Option<Duration> {
    for ms in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(v) = get(ms).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(v));
        }
    }
    let v = get("retry-after")?;
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let left = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// An ARM error answer: its status, code, message and `Retry-After`.
pub fn arm_error(
    operation: &str,
    status: u16,
    code: Option<String>,
    message: String,
    retry: Option<Duration>,
) -> CloudError {
    let mut e = CloudError::new(kind_of(status, code.as_deref()), operation, message);
    e.code = code;
    e.status = Some(status);
    e.retry_after = retry;
    e
}

/// A failure of azure_core or azure_identity (transport, token acquisition): classified by the
/// typed errors in its chain and the AADSTS numbers the token endpoint gave.
pub fn from_azure(operation: &str, err: &azure_core::Error) -> CloudError {
    use azure_core::error::ErrorKind as A;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut unanswered = false;
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<RefusedDestination>() {
            return CloudError::new(CloudErrorKind::RefusedDestination, operation, r.to_string());
        }
        if let Some(t) = e.downcast_ref::<AnswerTooLarge>() {
            return CloudError::new(CloudErrorKind::TooLarge, operation, t.to_string());
        }
        if let Some(a) = e.downcast_ref::<azure_core::Error>()
            && let A::HttpResponse {
                status, error_code, ..
            } = a.kind()
        {
            let codes: Vec<u32> = error_code
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter_map(|c| c.trim().parse().ok())
                .collect();
            let kind = codes
                .first()
                .map(|c| kind_of_aadsts(*c))
                .unwrap_or_else(|| kind_of(u16::from(*status), None));
            let mut out = CloudError::new(kind, operation, description(err));
            out.code = codes.first().map(|c| format!("AADSTS{c}"));
            out.status = Some(u16::from(*status));
            return out;
        }
        if let Some(a) = e.downcast_ref::<azure_core::Error>() {
            // A credential whose token request got no answer (no connection, a TLS failure):
            // the service was not reached, the credentials were never judged.
            unanswered |= matches!(a.kind(), A::Connection | A::Io);
        }
        source = e.source();
    }
    let kind = match err.kind() {
        _ if unanswered => CloudErrorKind::Unavailable,
        A::Connection | A::Io => CloudErrorKind::Unavailable,
        A::Credential => CloudErrorKind::ExpiredCredentials,
        _ => CloudErrorKind::Invalid,
    };
    CloudError::new(kind, operation, description(err))
}

/// An error's message on one line, without the troubleshooting links azure_identity appends.
fn description(err: &azure_core::Error) -> String {
    let text = err.to_string();
    let first: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("aka.ms/azsdk") && !l.starts_with("To troubleshoot"))
        .collect();
    crate::text::one_line(&first.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloudErrorKind as K;

    #[test]
    fn arm_codes_and_statuses_map_to_kinds() {
        let cases: &[(u16, Option<&str>, K)] = &[
            (403, Some("AuthorizationFailed"), K::AccessDenied),
            (403, Some("LinkedAuthorizationFailed"), K::AccessDenied),
            (
                401,
                Some("ExpiredAuthenticationToken"),
                K::ExpiredCredentials,
            ),
            (
                401,
                Some("InvalidAuthenticationTokenTenant"),
                K::ExpiredCredentials,
            ),
            (400, Some("QuotaExceeded"), K::QuotaExceeded),
            (409, Some("OperationNotAllowed"), K::Conflict),
            (404, Some("ResourceGroupNotFound"), K::NotFound),
            (404, Some("ResourceNotFound"), K::NotFound),
            (412, Some("PreconditionFailed"), K::Conflict),
            (409, Some("Conflict"), K::Conflict),
            (429, Some("TooManyRequests"), K::Throttled),
            (429, None, K::Throttled),
            (400, Some("InvalidParameter"), K::Invalid),
            (400, Some("PublicIPAddressInUse"), K::InUse),
            (
                400,
                Some("InUseNetworkSecurityGroupCannotBeDeleted"),
                K::InUse,
            ),
            (503, None, K::Unavailable),
            (500, Some("SomethingNew"), K::Unavailable),
            (403, Some("SomethingNew"), K::AccessDenied),
            (401, None, K::ExpiredCredentials),
        ];
        for (status, code, want) in cases {
            assert_eq!(kind_of(*status, *code), *want, "{status} {code:?}");
        }
    }

    #[test]
    fn aadsts_numbers_map_to_kinds() {
        assert_eq!(
            kind_of_aadsts(7000215),
            K::ExpiredCredentials,
            "invalid secret"
        );
        assert_eq!(
            kind_of_aadsts(7000222),
            K::ExpiredCredentials,
            "expired secret"
        );
        assert_eq!(kind_of_aadsts(700016), K::ExpiredCredentials, "unknown app");
        assert_eq!(
            kind_of_aadsts(90002),
            K::ExpiredCredentials,
            "unknown tenant"
        );
        assert_eq!(kind_of_aadsts(53003), K::AccessDenied, "conditional access");
        assert_eq!(kind_of_aadsts(50196), K::Throttled);
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            retry_after(h(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(h(&[("retry-after", "7"), ("retry-after-ms", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(h(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])),
            Some(Duration::ZERO),
            "a date in the past asks for no wait"
        );
        assert_eq!(retry_after(h(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(h(&[])), None);
    }
}
