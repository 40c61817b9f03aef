//! AWS errors to [`CloudError`]s: the one place where AWS error codes and HTTP statuses become
//! kinds. Codes come from the SDK's error metadata (the service's `Code`, `__type` or
//! `x-amzn-ErrorType`), never from message text; the status decides when there is no code.

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::cloud::{CloudError, CloudErrorKind};

/// The kind of an AWS error from its code and HTTP status (pure; table-tested below).
pub fn kind_of(code: Option<&str>, status: Option<u16>) -> CloudErrorKind {
    use CloudErrorKind::*;
    if let Some(code) = code {
        let kind = match code {
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedException"
            | "NotAuthorized"
            | "OptInRequired" => Some(AccessDenied),
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "ProvisionedThroughputExceededException"
            | "BandwidthLimitExceeded"
            | "EC2ThrottledException" => Some(Throttled),
            "LimitExceeded"
            | "LimitExceededException"
            | "ResourceLimitExceededException"
            | "ServiceQuotaExceededException"
            | "QuotaExceededException"
            | "InsufficientInstanceCapacity"
            | "VcpuLimitExceeded" => Some(QuotaExceeded),
            "ResourceNotFoundException"
            | "NoSuchEntity"
            | "NoSuchEntityException"
            | "NotFoundException"
            | "NoSuchResourceException"
            | "NotFound" => Some(NotFound),
            "ResourceInUseException"
            | "EntityAlreadyExists"
            | "ResourceAlreadyExistsException"
            | "ConflictException"
            | "IdempotentParameterMismatch"
            | "DeleteConflict"
            | "ResourceExistsException"
            | "RouteAlreadyExists"
            | "InvalidPermission.Duplicate"
            | "InvalidGroup.Duplicate" => Some(Conflict),
            "DependencyViolation" | "ResourceInUse" | "VolumeInUse" => Some(InUse),
            "InvalidParameterException"
            | "InvalidParameterValue"
            | "InvalidParameterCombination"
            | "InvalidParameter"
            | "ValidationError"
            | "ValidationException"
            | "InvalidRequestException"
            | "InvalidInput"
            | "MalformedPolicyDocument"
            | "MissingParameter"
            | "InvalidAction"
            | "UnknownOperationException"
            | "UnsupportedAvailabilityZoneException"
            | "UnsupportedOperation"
            | "IllegalArgumentException" => Some(Invalid),
            "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "AuthFailure"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "InvalidToken"
            | "RequestExpired" => Some(ExpiredCredentials),
            "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalFailure"
            | "InternalServerError"
            | "InternalServerException"
            | "ServerException"
            | "InternalError"
            | "Unavailable"
            | "ServiceFailure" => Some(Unavailable),
            _ if code.ends_with(".NotFound") => Some(NotFound),
            _ if code.ends_with(".InUse") => Some(InUse),
            _ if code.ends_with(".Malformed") || code.starts_with("Invalid") => Some(Invalid),
            _ => None,
        };
        if let Some(k) = kind {
            return k;
        }
    }
    match status {
        Some(401) => ExpiredCredentials,
        Some(403) => AccessDenied,
        Some(404) => NotFound,
        Some(409) => Conflict,
        Some(429) => Throttled,
        Some(400..=499) => Invalid,
        _ => Unavailable,
    }
}

/// Turns an SDK error of `operation` (e.g. `eks:CreateCluster`) into a [`CloudError`].
pub fn classify<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (kind, code, message) = match err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            let code = e.code().map(str::to_owned);
            (
                kind_of(code.as_deref(), status),
                code,
                e.message().unwrap_or_default().to_owned(),
            )
        }
        _ if caused_by::<super::transport::RefusedDestination, _, _>(err) => {
            (CloudErrorKind::RefusedDestination, None, error_chain(err))
        }
        _ if caused_by::<super::transport::AnswerTooLarge, _, _>(err) => {
            (CloudErrorKind::TooLarge, None, error_chain(err))
        }
        SdkError::TimeoutError(_) => (
            CloudErrorKind::Unavailable,
            None,
            "the request timed out".to_owned(),
        ),
        // Credentials are resolved while the request is signed, so a missing or unusable
        // credential surfaces here too.
        SdkError::DispatchFailure(d) => {
            let kind = if caused_by_credentials(err) {
                CloudErrorKind::ExpiredCredentials
            } else if d.is_user() {
                CloudErrorKind::Invalid
            } else {
                CloudErrorKind::Unavailable
            };
            (kind, None, error_chain(err))
        }
        SdkError::ResponseError(_) => (
            kind_of(None, status),
            None,
            format!("the response could not be read: {}", error_chain(err)),
        ),
        SdkError::ConstructionFailure(_) => (
            if caused_by_credentials(err) {
                CloudErrorKind::ExpiredCredentials
            } else {
                CloudErrorKind::Invalid
            },
            None,
            error_chain(err),
        ),
        _ => (kind_of(None, status), None, error_chain(err)),
    };
    CloudError {
        kind,
        operation: operation.to_owned(),
        code,
        status,
        message,
        retry_after: None,
    }
}

/// Whether a failure was caused by an error of type `T` somewhere in its source chain:
/// decided from the types, never from text.
fn caused_by<T, E, R>(err: &SdkError<E, R>) -> bool
where
    T: std::error::Error + 'static,
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = src {
        if e.downcast_ref::<T>().is_some() {
            return true;
        }
        src = e.source();
    }
    false
}

/// Whether a failure was caused by missing or unusable credentials (the credential chain's
/// `CredentialsError`).
fn caused_by_credentials<E: std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    err: &SdkError<E, R>,
) -> bool {
    caused_by::<aws_credential_types::provider::error::CredentialsError, _, _>(err)
}

/// The error with its causes, one after the other (the SDK's top-level messages are terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloudErrorKind::*;

    #[test]
    fn codes_decide_before_statuses() {
        let table: &[(Option<&str>, Option<u16>, CloudErrorKind)] = &[
            (Some("AccessDeniedException"), Some(403), AccessDenied),
            (Some("AccessDenied"), Some(403), AccessDenied),
            (Some("UnauthorizedOperation"), Some(403), AccessDenied),
            (Some("ThrottlingException"), Some(429), Throttled),
            (Some("Throttling"), Some(400), Throttled),
            (Some("RequestLimitExceeded"), Some(503), Throttled),
            (
                Some("ResourceLimitExceededException"),
                Some(400),
                QuotaExceeded,
            ),
            (Some("LimitExceeded"), Some(409), QuotaExceeded),
            (Some("ResourceNotFoundException"), Some(404), NotFound),
            (Some("NoSuchEntity"), Some(404), NotFound),
            (Some("NoSuchResourceException"), Some(400), NotFound),
            (Some("InvalidSubnetID.NotFound"), Some(400), NotFound),
            (Some("ResourceInUseException"), Some(409), Conflict),
            (Some("EntityAlreadyExists"), Some(409), Conflict),
            (Some("DependencyViolation"), Some(400), InUse),
            (Some("ResourceInUse"), Some(400), InUse),
            (Some("VolumeInUse"), Some(400), InUse),
            (Some("InvalidNetworkInterface.InUse"), Some(400), InUse),
            (Some("InvalidParameterException"), Some(400), Invalid),
            (Some("ValidationError"), Some(400), Invalid),
            (Some("InvalidSubnetID.Malformed"), Some(400), Invalid),
            (Some("InvalidVpcID"), Some(400), Invalid),
            (Some("ExpiredToken"), Some(400), ExpiredCredentials),
            (Some("ExpiredTokenException"), Some(403), ExpiredCredentials),
            (Some("InvalidClientTokenId"), Some(403), ExpiredCredentials),
            (
                Some("UnrecognizedClientException"),
                Some(403),
                ExpiredCredentials,
            ),
            (Some("SignatureDoesNotMatch"), Some(403), ExpiredCredentials),
            (Some("AuthFailure"), Some(401), ExpiredCredentials),
            (Some("ServiceUnavailableException"), Some(503), Unavailable),
            (Some("InternalFailure"), Some(500), Unavailable),
            (Some("InternalError"), Some(500), Unavailable),
            // Unknown codes fall back to the status.
            (Some("SomethingNew"), Some(403), AccessDenied),
            (Some("SomethingNew"), Some(404), NotFound),
            (Some("SomethingNew"), Some(429), Throttled),
            (Some("SomethingNew"), Some(502), Unavailable),
            (None, Some(401), ExpiredCredentials),
            (None, Some(409), Conflict),
            (None, Some(400), Invalid),
            (None, Some(500), Unavailable),
            (None, None, Unavailable),
        ];
        for (code, status, want) in table {
            assert_eq!(kind_of(*code, *status), *want, "{code:?} {status:?}");
        }
    }
}
