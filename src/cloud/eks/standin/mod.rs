//! An in-process stand-in of the AWS endpoints the EKS provider calls, on loopback, for
//! `realmctl demo` and the tests: the real AWS SDK talks to it through an endpoint override.
//!
//! It follows the AWS API references and their wire protocols (listed in
//! `docs/aws-standin.md`): STS and IAM speak the AWS query protocol (form-encoded requests, XML
//! answers, `<ErrorResponse>` errors), EC2 its own query dialect (`<Response><Errors>`), EKS
//! REST-JSON (`x-amzn-ErrorType` errors), Service Quotas JSON 1.1 (`X-Amz-Target`, `__type`
//! errors). The service of a request is read from its SigV4 credential scope, as AWS routes it.
//!
//! What it models ([`World`]): one account and region; the caller; roles with their trusted
//! services; subnets; the vCPU quota; the offered Kubernetes versions; denied actions (answered
//! by `SimulatePrincipalPolicy` and enforced on the calls themselves); clusters and node groups
//! that go CREATING → ACTIVE after a delay; injected throttling; a log of every call. In front of
//! moto (`World::in_front_of`), it answers only what moto lacks and forwards the rest unchanged.

mod eks_api;
mod query;
mod quotas;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use world::{Call, Cluster, Nodegroup, Subnet, World};

/// The largest request body the stand-in reads.
const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone)]
struct Shared {
    world: Arc<Mutex<World>>,
    started: Instant,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Body,
    >,
}

/// A running stand-in; it stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl StandIn {
    /// Starts a stand-in of `world` on 127.0.0.1 (any free port) on the current runtime.
    pub async fn start(world: World) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let world = Arc::new(Mutex::new(world));
        let shared = Shared {
            world: world.clone(),
            started: Instant::now(),
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::serve::http1(
            listener,
            app,
            crate::serve::Bounds::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(StandIn {
            addr,
            world,
            stop: Some(stop),
        })
    }

    /// Its base URL, for an endpoint override.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The clusters it holds, each with its node groups: `name (node groups: a, b)`.
    pub fn clusters(&self) -> Vec<String> {
        let w = self.world();
        w.clusters
            .keys()
            .map(|c| {
                let groups: Vec<&str> = w
                    .nodegroups
                    .values()
                    .filter(|n| &n.cluster == c)
                    .map(|n| n.name.as_str())
                    .collect();
                format!("{c} (node groups: {})", groups.join(", "))
            })
            .collect()
    }

    /// The world, to shape or inspect it.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
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
        "servicequotas" => Protocol::Json11,
        _ => Protocol::Query,
    }
}

pub(crate) fn error_response(protocol: Protocol, e: AwsError) -> Response {
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
                (
                    header::HeaderName::from_static("x-amzn-errortype"),
                    e.code,
                ),
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
        Protocol::RestJson => eks_api::operation(method, path).to_owned(),
    };
    format!("{service}:{name}")
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
        match &w.upstream {
            Some(up) if !w.local.contains(&op) => Some(up.clone()),
            _ => None,
        }
    };
    if let Some(up) = forward {
        return forward_to(&sh, &up, parts, bytes).await;
    }
    let mut w = sh.world.lock().unwrap_or_else(|p| p.into_inner());
    let result = match protocol {
        Protocol::Query | Protocol::Ec2 => query::answer(&mut w, &service, &form),
        Protocol::RestJson => eks_api::answer(&mut w, &parts.method, &path, &bytes),
        Protocol::Json11 => quotas::answer(&w, &op, &bytes),
    };
    match result {
        Ok(r) => r,
        Err(e) => error_response(protocol, e),
    }
}

/// Sends the request unchanged (its signature included) to `upstream`.
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
    let Ok(req) = req.body(Body::from(body)) else {
        return (StatusCode::BAD_GATEWAY, "bad request").into_response();
    };
    match sh.client.request(req).await {
        Ok(resp) => {
            let (p, b) = resp.into_parts();
            Response::from_parts(p, Body::new(b))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
    }
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
