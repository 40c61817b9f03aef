//! The EKS API server token, made in-process as `aws eks get-token` makes it: an STS
//! `GetCallerIdentity` request for the region's STS endpoint, presigned (SigV4, query string,
//! 60 s) with the `x-k8s-aws-id` header naming the cluster, base64url-encoded (no padding) after
//! `k8s-aws-v1.`. EKS's authenticator makes that call to learn who the caller is; the token is
//! good for 15 minutes from signing. Documented by aws-iam-authenticator ("API Authorization
//! from Outside a Cluster") and the EKS user guide.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine as _;

/// How long EKS accepts a token after it was signed.
pub const VALID_FOR: Duration = Duration::from_secs(15 * 60);

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the EKS token: {0}")]
pub struct TokenError(String);

/// The token for `cluster` in `region`, signed at `now` with `creds`.
pub fn token(
    creds: Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, TokenError> {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let e = |e: &dyn std::fmt::Display| TokenError(e.to_string());
    let url =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = creds.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|x| e(&x))?
        .into();
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        [("x-k8s-aws-id", cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|x| e(&x))?;
    let (instructions, _) = sign(request, &params).map_err(|x| e(&x))?.into_parts();
    let mut http = http_1::Request::builder()
        .uri(url.as_str())
        .header("x-k8s-aws-id", cluster)
        .body(())
        .map_err(|x| e(&x))?;
    instructions.apply_to_request_http1x(&mut http);
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(http.uri().to_string())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_a_presigned_get_caller_identity_for_the_cluster() {
        let creds = Credentials::new("AKIDEXAMPLE", "canary-secret-key", None, None, "test");
        let t = token(creds, "eu-west-1", "digibee-acme", SystemTime::UNIX_EPOCH).unwrap();
        let b64 = t.strip_prefix("k8s-aws-v1.").unwrap();
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .unwrap(),
        )
        .unwrap();
        assert!(
            url.starts_with(
                "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F19700101%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        assert!(!url.contains("canary-secret-key"));
    }
}
