//! The AWS wire adapter: the endpoints the EKS client calls, over the neutral [`World`], so
//! the real AWS SDK (and boto3) talk to it through an ordinary endpoint override.
//!
//! It follows the AWS API references and their wire protocols (listed in
//! `docs/aws-standin.md`): STS and IAM speak the AWS query protocol (form-encoded requests, XML
//! answers, `<ErrorResponse>` errors), EC2 its own query dialect (`<Response><Errors>`), EKS
//! REST-JSON (`x-amzn-ErrorType` errors), Service Quotas JSON 1.1 (`X-Amz-Target`, `__type`
//! errors). The service of a request is read from its SigV4 credential scope, as AWS routes it.
//! Every call is checked against the world's policy with the action and resource ARN AWS
//! authorizes it by; `iam:SimulatePrincipalPolicy` answers from the same policy, per action
//! and resource. With the `moto` feature (tests only), a world may sit in front of moto and
//! answer only what moto lacks, forwarding the rest byte for byte.

mod eks;
mod query;
mod quotas;
mod vpn;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
#[cfg(feature = "moto")]
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::policy::Decision;
use crate::world::{Call, Identity, Quota, Subnet, World};

/// The Service Quotas code of "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
/// instances" (AWS's own name for the quota node groups count against).
pub const STANDARD_VCPU_QUOTA: &str = "L-1216C47A";
/// Its name.
pub const STANDARD_VCPU_QUOTA_NAME: &str =
    "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances";

/// The largest request body the adapter reads.
const BODY_LIMIT: usize = 1024 * 1024;

/// The ARN of role `name` in `account`.
pub fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// A ready AWS account in `region`: the caller assumed `realmctl-installer`; the cluster and
/// node roles the spec names (trusting EKS and EC2); a VPC with three subnets in three zones;
/// an On-Demand Standard vCPU quota of 640; current Kubernetes versions; everything allowed.
pub fn sample(account: &str, region: &str) -> World {
    let mut w = World::new(
        account,
        region,
        &format!("arn:aws:sts::{account}:assumed-role/realmctl-installer/demo"),
    );
    for (name, trusts) in [
        ("realmctl-installer", "ec2.amazonaws.com"),
        ("digibee-eks-cluster", "eks.amazonaws.com"),
        ("digibee-eks-node", "ec2.amazonaws.com"),
    ] {
        w.identities.insert(
            name.into(),
            Identity {
                trusts: vec![trusts.into()],
            },
        );
    }
    w.subnets = ['a', 'b', 'c']
        .iter()
        .enumerate()
        .map(|(i, zone)| Subnet {
            id: format!("subnet-0a1b2c3d4e5f6071{i}"),
            network: "vpc-0demo0000000000a".into(),
            zone: Some(format!("{region}{zone}")),
            cidr: format!("10.42.{}.0/20", i * 16),
            free: 4091,
        })
        .collect();
    w.quotas.insert(
        STANDARD_VCPU_QUOTA.into(),
        Quota {
            name: STANDARD_VCPU_QUOTA_NAME.into(),
            limit: 640.0,
            usage: 0.0,
        },
    );
    w.versions = ["1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    // Amazon Linux 2023 images, the newest last (the VPN instance takes the newest).
    for (id, version, created) in [
        (
            "ami-0a1b2c3d4e5f60001",
            "2023.9.20261001.0",
            "2026-10-01T00:00:00.000Z",
        ),
        (
            "ami-0a1b2c3d4e5f60002",
            "2023.9.20261101.0",
            "2026-11-01T00:00:00.000Z",
        ),
    ] {
        w.vpn.images.push(crate::vpn::Image {
            id: id.into(),
            name: format!("al2023-ami-{version}-kernel-6.1-x86_64"),
            owner: "amazon".into(),
            created: created.into(),
        });
    }
    w
}

/// A world that answers only what moto 5.2 cannot (permission simulation, the vCPU quota,
/// cluster versions) and forwards everything else to `upstream` (tests only).
#[cfg(feature = "moto")]
pub fn in_front_of(upstream: &str, account: &str, region: &str) -> World {
    let mut w = sample(account, region);
    w.upstream = Some(upstream.trim_end_matches('/').to_owned());
    w.local = [
        "iam:SimulatePrincipalPolicy",
        "servicequotas:GetServiceQuota",
        "eks:DescribeClusterVersions",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    w
}

/// An AWS error as each protocol writes it.
pub(crate) struct AwsError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: message.into(),
        }
    }
}

/// Checks `action` on `resource` (with `context`) against the world's policy; `code` and
/// `status` are how the calling service names an authorization failure.
pub(crate) fn authorize(
    w: &World,
    (status, code): (u16, &'static str),
    action: &str,
    resource: &str,
    context: &[(&str, &str)],
) -> Result<(), AwsError> {
    let ctx: BTreeMap<String, String> = context
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match w.policy.decide(action, resource, &ctx) {
        Decision::Allowed => Ok(()),
        d => Err(AwsError::new(
            status,
            code,
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} ({})",
                w.principal,
                if d == Decision::ExplicitDeny {
                    "with an explicit deny"
                } else {
                    "because no identity-based policy allows the action"
                }
            ),
        )),
    }
}

/// Which wire protocol a service speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Protocol {
    Query,
    Ec2,
    RestJson,
    Json11,
}

/// The service named in a SigV4 `Authorization` header's credential scope.
fn service_of(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    let scope = cred.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_owned)
}

fn protocol_of(service: &str) -> Protocol {
    match service {
        "ec2" => Protocol::Ec2,
        "eks" => Protocol::RestJson,
        "servicequotas" | "secretsmanager" => Protocol::Json11,
        _ => Protocol::Query,
    }
}

fn error_response(protocol: Protocol, e: AwsError) -> Response {
    let id = "00000000-0000-4000-8000-000000000000";
    match protocol {
        Protocol::Query => (
            e.status,
            [(header::CONTENT_TYPE, "text/xml")],
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>",
                e.code,
                query::xml(&e.message)
            ),
        )
            .into_response(),
        Protocol::Ec2 => (
            e.status,
            [(header::CONTENT_TYPE, "text/xml")],
            format!(
                "<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{id}</RequestID></Response>",
                e.code,
                query::xml(&e.message)
            ),
        )
            .into_response(),
        Protocol::RestJson => (
            e.status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::HeaderName::from_static("x-amzn-errortype"), e.code),
            ],
            serde_json::json!({"message": e.message}).to_string(),
        )
            .into_response(),
        Protocol::Json11 => (
            e.status,
            [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
            serde_json::json!({"__type": e.code, "message": e.message}).to_string(),
        )
            .into_response(),
    }
}

fn throttling(protocol: Protocol) -> AwsError {
    match protocol {
        Protocol::Query => AwsError::new(400, "Throttling", "Rate exceeded"),
        Protocol::Ec2 => AwsError::new(503, "RequestLimitExceeded", "Request limit exceeded."),
        Protocol::RestJson => AwsError::new(429, "ThrottlingException", "Rate exceeded"),
        Protocol::Json11 => AwsError::new(400, "TooManyRequestsException", "Rate exceeded"),
    }
}

/// Something still depends on the resource: EC2's `DependencyViolation`, Elastic Load
/// Balancing's `ResourceInUse`, EKS's `ResourceInUseException`.
fn in_use(protocol: Protocol) -> AwsError {
    match protocol {
        Protocol::Ec2 => AwsError::new(
            400,
            "DependencyViolation",
            "resource has a dependent object",
        ),
        Protocol::RestJson => {
            AwsError::new(409, "ResourceInUseException", "the resource is in use")
        }
        Protocol::Query | Protocol::Json11 => {
            AwsError::new(400, "ResourceInUse", "the resource is in use")
        }
    }
}

/// The operation a request calls, `service:Operation`.
fn operation(
    service: &str,
    protocol: Protocol,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> String {
    let name = match protocol {
        Protocol::Query | Protocol::Ec2 => form
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        Protocol::Json11 => headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned(),
        Protocol::RestJson => eks::operation(method, path).to_owned(),
    };
    format!("{service}:{name}")
}

/// What the handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub world: Arc<Mutex<World>>,
    pub started: Instant,
    #[cfg(feature = "moto")]
    pub client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        axum::body::Body,
    >,
}

/// The adapter's routes over `world`.
pub(crate) fn router(world: Arc<Mutex<World>>, started: Instant) -> Router {
    let shared = Shared {
        world,
        started,
        #[cfg(feature = "moto")]
        client: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http(),
    };
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(sh): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let Some(service) = service_of(&parts.headers) else {
        return error_response(
            Protocol::Query,
            AwsError::new(
                403,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ),
        );
    };
    let protocol = protocol_of(&service);
    let form = if matches!(protocol, Protocol::Query | Protocol::Ec2) {
        query::form(&bytes)
    } else {
        Vec::new()
    };
    let path = parts.uri.path().to_owned();
    let op = operation(
        &service,
        protocol,
        &parts.method,
        &path,
        &parts.headers,
        &form,
    );
    #[cfg_attr(not(feature = "moto"), allow(unused_variables))]
    let forward = {
        let mut w = sh.world.lock().unwrap_or_else(|p| p.into_inner());
        let throttled = match w.throttle.get_mut(&op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        w.calls.push(Call {
            op: op.clone(),
            at: sh.started.elapsed(),
            throttled,
        });
        if throttled {
            return error_response(protocol, throttling(protocol));
        }
        if let Some(n) = w.in_use.get_mut(&op).filter(|n| **n > 0) {
            *n -= 1;
            return error_response(protocol, in_use(protocol));
        }
        upstream_for(&w, &op)
    };
    #[cfg(feature = "moto")]
    if let Some(up) = forward {
        return forward_to(&sh, &up, parts, bytes).await;
    }
    let mut w = sh.world.lock().unwrap_or_else(|p| p.into_inner());
    let result = match protocol {
        Protocol::Query | Protocol::Ec2 if vpn::handles(&w, &service, &form) => {
            vpn::query(&mut w, &service, &form)
        }
        Protocol::Query | Protocol::Ec2 => query::answer(&mut w, &service, &form),
        Protocol::RestJson => eks::answer(&mut w, &parts.method, &path, &bytes),
        Protocol::Json11 if service == "secretsmanager" => vpn::secrets(&mut w, &op, &bytes),
        Protocol::Json11 => quotas::answer(&w, &op, &bytes),
    };
    match result {
        Ok(r) => r,
        Err(e) => error_response(protocol, e),
    }
}

#[cfg(feature = "moto")]
fn upstream_for(w: &World, op: &str) -> Option<String> {
    match &w.upstream {
        Some(up) if !w.local.contains(op) => Some(up.clone()),
        _ => None,
    }
}

#[cfg(not(feature = "moto"))]
fn upstream_for(_: &World, _: &str) {}

/// Sends the request unchanged (its signature included) to `upstream`.
#[cfg(feature = "moto")]
async fn forward_to(
    sh: &Shared,
    upstream: &str,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let Ok(uri) = format!("{upstream}{pq}").parse::<axum::http::Uri>() else {
        return (StatusCode::BAD_GATEWAY, "bad upstream").into_response();
    };
    let mut req = axum::http::Request::builder().method(parts.method).uri(uri);
    for (k, v) in &parts.headers {
        req = req.header(k, v);
    }
    let Ok(req) = req.body(axum::body::Body::from(body)) else {
        return (StatusCode::BAD_GATEWAY, "bad request").into_response();
    };
    match sh.client.request(req).await {
        Ok(resp) => {
            let (p, b) = resp.into_parts();
            Response::from_parts(p, axum::body::Body::new(b))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
    }
}

/// Who an EKS API server bearer token is, as EKS's authenticator decides from the token's form:
/// `k8s-aws-v1.` and base64url of a presigned STS `GetCallerIdentity` URL (SigV4 in the query,
/// `x-k8s-aws-id` signed) for a cluster this world holds. The stand-in does not call STS with
/// it; the signed access key id names the caller.
pub fn kube_user(w: &World, token: &str) -> Option<String> {
    use base64::Engine as _;
    let b64 = token.strip_prefix("k8s-aws-v1.")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .ok()?;
    let url = url::Url::parse(std::str::from_utf8(&raw).ok()?).ok()?;
    let host = url.host_str()?;
    if url.scheme() != "https" || !(host.starts_with("sts.") && host.ends_with(".amazonaws.com")) {
        return None;
    }
    let q: std::collections::BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let signed = q.get("X-Amz-SignedHeaders")?;
    let ok = q.get("Action").map(String::as_str) == Some("GetCallerIdentity")
        && q.get("X-Amz-Algorithm").map(String::as_str) == Some("AWS4-HMAC-SHA256")
        && q.contains_key("X-Amz-Signature")
        && signed.split(';').any(|h| h == "x-k8s-aws-id");
    if !ok || w.clusters.is_empty() {
        return None;
    }
    let key = q.get("X-Amz-Credential")?.split('/').next()?.to_owned();
    Some(format!("aws:{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_comes_from_the_credential_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/eks/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(service_of(&h).as_deref(), Some("eks"));
        assert_eq!(service_of(&HeaderMap::new()), None);
    }
}
