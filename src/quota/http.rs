//! The quota HTTP service (axum): every pipeline deployment asks it first.
//!
//! Routes (see `docs/quota-openapi.yaml`): `POST /v1/realms/{realm}/deployments` (200 admitted,
//! 409 denied), `DELETE /v1/realms/{realm}/deployments/{environment}/{pipeline}/{major}`,
//! `GET /v1/realms/{realm}/usage`, `POST /v1/realms/{realm}/what-if`,
//! `PUT /v1/realms/{realm}/config` (admin only), `GET /healthz` (the process is up) and
//! `GET /readyz` (the database answers). When the database is down or too slow the answer is
//! 503 with `Retry-After`, never a decision: nothing was acknowledged.
//! Bearer tokens (in `Authorization`, or in [`TOKEN_HEADER`] when the request comes through
//! the Kubernetes service proxy) are checked before anything else; bodies are limited to 16 KiB (a larger
//! `Content-Length` is refused with 413 before any byte of the body is read) and must arrive
//! within [`Limits::body_read`]; malformed JSON is a 400 with the reason. Each admission is
//! committed before its answer is sent (on SQLite in a group commit with the admissions that
//! arrived meanwhile), so a graceful shutdown (or a crash) never loses an acknowledged decision.
//!
//! Connections are served by hyper directly so every one is bounded: the request head must
//! arrive within [`Limits::header_read`] (hyper restarts that timer whenever a keep-alive
//! connection waits for its next request, so it is also the idle timeout), at most
//! [`Limits::max_connections`] are open at once, and a shutdown waits at most
//! [`Limits::shutdown_grace`] for requests in flight.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::model::{Deployment, Env, Key, RealmConfig, Size, Version};
use super::store::{LedgerError, Store};
use super::tokens::{Denied, Scope, Tokens, bearer_token, digest_hex};
use super::{Admission, valid_pipeline};
use crate::requirements;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 16 * 1024;

/// How long and how many: the bounds of every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The request head must arrive within this, and a keep-alive connection may wait this
    /// long for its next request.
    pub header_read: Duration,
    /// The request body must arrive within this.
    pub body_read: Duration,
    /// On shutdown, requests in flight get this long to finish.
    pub shutdown_grace: Duration,
    /// Connections open at once; more wait in the listen queue.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Shared state of the service.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    tokens: Arc<Tokens>,
    limits: Limits,
}

impl AppState {
    /// State over an open ledger (either backend) and loaded tokens.
    pub fn new(store: Store, tokens: Tokens, limits: Limits) -> Self {
        AppState {
            store,
            tokens: Arc::new(tokens),
            limits,
        }
    }
}

/// Seconds a client is told to wait (`Retry-After`) when the database is unavailable.
pub const RETRY_AFTER_SECS: u64 = 1;

const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const DEPLOYMENTS: &str = "/v1/realms/{realm}/deployments";
const DEPLOYMENT: &str = "/v1/realms/{realm}/deployments/{environment}/{pipeline}/{major}";
const USAGE: &str = "/v1/realms/{realm}/usage";
const WHAT_IF: &str = "/v1/realms/{realm}/what-if";
const CONFIG: &str = "/v1/realms/{realm}/config";

/// Every route path (documented in `docs/quota-openapi.yaml`).
pub const ROUTES: [&str; 7] = [
    HEALTHZ,
    READYZ,
    DEPLOYMENTS,
    DEPLOYMENT,
    USAGE,
    WHAT_IF,
    CONFIG,
];

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(HEALTHZ, get(|| async { Json(json!({"status": "ok"})) }))
        .route(READYZ, get(ready))
        .route(DEPLOYMENTS, post(deploy))
        .route(DEPLOYMENT, delete(undeploy))
        .route(USAGE, get(usage))
        .route(WHAT_IF, post(what_if))
        .route(CONFIG, put(config))
        .layer(middleware::from_fn(refuse_large_bodies))
        .with_state(state)
}

/// Answers 413 at once when `Content-Length` announces more than [`BODY_LIMIT`] bytes, before
/// any byte of the body is read.
async fn refuse_large_bodies(req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > BODY_LIMIT as u64) {
        let mut r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {BODY_LIMIT} bytes"),
        )
        .into_response();
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return r;
    }
    next.run(req).await
}

/// An error answer: its status and a JSON body `{"error", "status"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "status": self.status.as_u16()});
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(RETRY_AFTER_SECS),
            );
        }
        r
    }
}

/// `GET /readyz`: 200 when the database answers within the store's timeout, 503 (with
/// `Retry-After`) otherwise, so a load balancer sends requests to replicas that can decide.
async fn ready(State(st): State<AppState>) -> Result<Response, ApiError> {
    st.store.ping().await.map_err(ledger_error)?;
    Ok(Json(json!({"status": "ready"})).into_response())
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

/// Checks the bearer token for `realm`; returns the actor name for the decision log.
/// The header a token may travel in instead of `Authorization`: the Kubernetes API server's
/// service proxy authenticates its caller with `Authorization` and removes it before
/// forwarding, so a caller reaching the core through it sends the core's token here.
pub const TOKEN_HEADER: &str = "x-quota-token";

/// The presented credential as an `Authorization` value: that header, else [`TOKEN_HEADER`]
/// (a bare token).
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        return v.to_str().ok().map(str::to_owned);
    }
    let t = headers.get(TOKEN_HEADER)?.to_str().ok()?.trim();
    (!t.is_empty()).then(|| format!("Bearer {t}"))
}

fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    realm: &str,
    admin_only: bool,
) -> Result<String, ApiError> {
    let auth = presented(headers);
    let auth = auth.as_deref();
    match st.tokens.authorize(auth, realm, admin_only) {
        Ok(scope) => {
            let who = auth
                .and_then(bearer_token)
                .map(|t| digest_hex(t)[..12].to_owned())
                .unwrap_or_default();
            Ok(match scope {
                Scope::Admin => format!("http:admin:{who}"),
                Scope::Realm(r) => format!("http:{r}:{who}"),
            })
        }
        Err(Denied::Unauthenticated) => Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or unknown bearer token",
        )),
        Err(Denied::Forbidden) => Err(error(
            StatusCode::FORBIDDEN,
            format!("this token may not do that for realm `{realm}`"),
        )),
    }
}

/// A JSON request body: `application/json`, at most [`BODY_LIMIT`] bytes, arrived within
/// [`Limits::body_read`]. The rejection is an [`ApiError`]; handlers check authorisation first
/// and only then look at it.
struct JsonBody<T>(Result<T, ApiError>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Self::Rejection> {
        Ok(JsonBody(read_json(req, st.limits.body_read).await))
    }
}

async fn read_json<T: DeserializeOwned>(req: Request, limit: Duration) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json")
        });
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with `Content-Type: application/json`",
        ));
    }
    let body: Body = req.into_body();
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    limit.as_secs_f64()
                ),
            ));
        }
        Ok(Err(_)) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {BODY_LIMIT} bytes (or cut off)"),
            ));
        }
        Ok(Ok(b)) => b,
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        )
    })
}

fn ledger_error(e: LedgerError) -> ApiError {
    match e {
        LedgerError::UnknownRealm(r) => {
            error(StatusCode::NOT_FOUND, format!("realm `{r}` is not seeded"))
        }
        e @ LedgerError::NotDeployed { .. } => error(StatusCode::NOT_FOUND, e.to_string()),
        e @ LedgerError::SeedRefused { .. } => error(StatusCode::CONFLICT, e.to_string()),
        e if e.is_unavailable() => {
            tracing::warn!("quota ledger: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the ledger's database is unavailable; nothing was acknowledged, retry shortly",
            )
        }
        e => {
            tracing::error!("quota ledger: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the ledger failed; nothing was recorded",
            )
        }
    }
}

/// A deployment request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    environment: Env,
    pipeline: String,
    version: Version,
    size: Size,
    replicas: u32,
}

impl DeployBody {
    fn into_request(self) -> Result<Deployment, ApiError> {
        if !valid_pipeline(&self.pipeline) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "pipeline: use 1-128 letters, digits, `-`, `_` or `.`",
            ));
        }
        if self.replicas == 0 {
            return Err(error(StatusCode::BAD_REQUEST, "replicas: at least 1"));
        }
        Ok(Deployment {
            environment: self.environment,
            pipeline: self.pipeline,
            version: self.version,
            size: self.size,
            replicas: self.replicas,
        })
    }
}

async fn admit(
    st: AppState,
    realm: String,
    headers: HeaderMap,
    b: JsonBody<DeployBody>,
    record: bool,
) -> Result<Response, ApiError> {
    let actor = authorize(&st, &headers, &realm, false)?;
    let request = b.0.and_then(DeployBody::into_request)?;
    let d = if record {
        st.store.deploy(&realm, &request, &actor).await
    } else {
        st.store.what_if(&realm, &request).await
    }
    .map_err(ledger_error)?;
    let status = if d.admitted {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, Json(Admission::new(&realm, &request, &d))).into_response())
}

async fn deploy(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    b: JsonBody<DeployBody>,
) -> Result<Response, ApiError> {
    admit(st, realm, headers, b, true).await
}

async fn what_if(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    b: JsonBody<DeployBody>,
) -> Result<Response, ApiError> {
    admit(st, realm, headers, b, false).await
}

async fn undeploy(
    State(st): State<AppState>,
    Path((realm, environment, pipeline, major)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let actor = authorize(&st, &headers, &realm, false)?;
    let environment: Env = environment
        .parse()
        .map_err(|e: String| error(StatusCode::BAD_REQUEST, e))?;
    let major: u32 = major.parse().ok().filter(|m| *m >= 1).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            format!("major `{major}`: a whole number ≥ 1"),
        )
    })?;
    let key = Key {
        environment,
        pipeline,
        major,
    };
    let old = st
        .store
        .undeploy(&realm, &key, &actor)
        .await
        .map_err(ledger_error)?;
    Ok(
        Json(json!({"realm": realm, "undeployed": old, "rtusReleased": old.rtus()}))
            .into_response(),
    )
}

async fn usage(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&st, &headers, &realm, false)?;
    let s = st.store.status(&realm).await.map_err(ledger_error)?;
    Ok(Json(s).into_response())
}

/// A realm config body (`PUT .../config`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigBody {
    pipeline_subscriptions: u64,
    #[serde(default)]
    extra_test_rtus: u64,
    #[serde(default)]
    extra_prod_rtus: u64,
    max_replicas: Option<u32>,
    max_size: Option<Size>,
}

async fn config(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    b: JsonBody<ConfigBody>,
) -> Result<Response, ApiError> {
    let actor = authorize(&st, &headers, &realm, true)?;
    let c = b.0?;
    if !crate::spec::is_valid_realm_name(&realm) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "realm name: [a-z][a-z0-9-]{1,30}, not `admin`",
        ));
    }
    let d = &requirements::embedded().quota.defaults;
    let config = RealmConfig {
        pipeline_subscriptions: c.pipeline_subscriptions,
        extra_test_rtus: c.extra_test_rtus,
        extra_prod_rtus: c.extra_prod_rtus,
        max_replicas: c.max_replicas.unwrap_or(d.max_replicas_per_deployment),
        max_size: c.max_size.unwrap_or(d.max_size_per_deployment),
    };
    config
        .check()
        .map_err(|why| error(StatusCode::BAD_REQUEST, why))?;
    st.store
        .seed(&realm, config, &actor)
        .await
        .map_err(ledger_error)?;
    Ok(Json(json!({"realm": realm, "config": config})).into_response())
}

/// Serves until `shutdown` completes; requests in flight then get [`Limits::shutdown_grace`]
/// to finish, and connections still open after it are closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    crate::serve::http1(
        listener,
        router(state),
        crate::serve::Bounds {
            header_read: limits.header_read,
            shutdown_grace: limits.shutdown_grace,
            max_connections: limits.max_connections,
        },
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_from_authorization_first_then_from_the_proxy_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(TOKEN_HEADER, "rq_x".parse().unwrap());
        assert_eq!(presented(&h).as_deref(), Some("Bearer rq_x"));
        h.insert(header::AUTHORIZATION, "Bearer rq_y".parse().unwrap());
        assert_eq!(presented(&h).as_deref(), Some("Bearer rq_y"));
        let mut empty = HeaderMap::new();
        empty.insert(TOKEN_HEADER, " ".parse().unwrap());
        assert_eq!(presented(&empty), None);
    }

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc = include_str!("../../docs/quota-openapi.yaml");
        for r in super::ROUTES {
            assert!(
                doc.contains(&format!("  {r}:")),
                "docs/quota-openapi.yaml lacks {r}"
            );
        }
    }
}
