//! The quota HTTP service (axum): every pipeline deployment asks it first.
//!
//! Routes (see `docs/quota-openapi.yaml`): `POST /v1/realms/{realm}/deployments` (200 admitted,
//! 409 denied), `DELETE /v1/realms/{realm}/deployments/{environment}/{pipeline}/{major}`,
//! `GET /v1/realms/{realm}/usage`, `POST /v1/realms/{realm}/what-if`,
//! `PUT /v1/realms/{realm}/config`, `POST /v1/realms/{realm}/retire` and
//! `GET /v1/realms/{realm}/decisions` (admin only), `GET /healthz` (the process is up) and
//! `GET /readyz` (the database answers). When the database is down or too slow the answer is
//! 503 with `Retry-After`, never a decision: nothing was acknowledged.
//! Bearer tokens (in `Authorization`, or in [`TOKEN_HEADER`] when the request comes through
//! the Kubernetes service proxy) are checked before anything else; bodies are limited to 16 KiB (a larger
//! `Content-Length` is refused with 413 before any byte of the body is read) and must arrive
//! within [`Limits::body_read`]; a body or path value that breaks a rule is a 400 naming the
//! field and the rule ([`request`], the same rules `docs/quota-openapi.yaml` states). Each admission is
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
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;

use super::store::{LedgerError, Store};
use super::tokens::{Denied, Tokens, bearer_token};
use super::{Admission, request};
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
const RETIRE: &str = "/v1/realms/{realm}/retire";
const DECISIONS: &str = "/v1/realms/{realm}/decisions";

/// Every route path (documented in `docs/quota-openapi.yaml`).
pub const ROUTES: [&str; 9] = [
    HEALTHZ,
    READYZ,
    DEPLOYMENTS,
    DEPLOYMENT,
    USAGE,
    WHAT_IF,
    CONFIG,
    RETIRE,
    DECISIONS,
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
        .route(RETIRE, post(retire))
        .route(DECISIONS, get(decisions))
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

/// A JSON answer already written.
fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
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

/// The header a token may travel in instead of `Authorization`: the Kubernetes API server's
/// service proxy authenticates its caller with `Authorization` and removes it before
/// forwarding, so a caller reaching the core through it sends the core's token here.
pub const TOKEN_HEADER: &str = "x-quota-token";

/// A request's credential headers: `Authorization` and [`TOKEN_HEADER`] (each value shares
/// the request's bytes; the rest of the headers are not copied).
struct Credentials {
    authorization: Option<HeaderValue>,
    token: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Credentials::of(&parts.headers))
    }
}

impl Credentials {
    fn of(headers: &HeaderMap) -> Self {
        Credentials {
            authorization: headers.get(header::AUTHORIZATION).cloned(),
            token: headers.get(TOKEN_HEADER).cloned(),
        }
    }

    /// The presented token: the `Bearer` token of `Authorization` when that header is sent
    /// (no token if it is not a bearer credential), else the bare token of [`TOKEN_HEADER`].
    fn presented(&self) -> Option<&str> {
        if let Some(v) = &self.authorization {
            return v.to_str().ok().and_then(bearer_token);
        }
        let t = self.token.as_ref()?.to_str().ok()?.trim();
        (!t.is_empty()).then_some(t)
    }
}

/// Checks the bearer token for `realm`; returns the actor name for the decision log.
fn authorize(
    st: &AppState,
    credentials: &Credentials,
    realm: &str,
    admin_only: bool,
) -> Result<String, ApiError> {
    match st.tokens.grant(credentials.presented(), realm, admin_only) {
        // `http:admin:…` or `http:REALM:…`, with the first 12 hex digits of the token's SHA-256.
        Ok(grant) => Ok(["http:", &grant.name].concat()),
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

/// A JSON request body's bytes: `application/json`, at most [`BODY_LIMIT`] bytes, arrived
/// within [`Limits::body_read`]. The rejection is an [`ApiError`]; handlers check
/// authorisation first and only then look at it, then read it with [`request`]'s rules.
struct JsonBody(Result<axum::body::Bytes, ApiError>);

impl FromRequest<AppState> for JsonBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Self::Rejection> {
        Ok(JsonBody(read_json(req, st.limits.body_read).await))
    }
}

async fn read_json(req: Request, limit: Duration) -> Result<axum::body::Bytes, ApiError> {
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
            "the body must be sent with `Content-Type: application/json`",
        ));
    }
    let body: Body = req.into_body();
    match tokio::time::timeout(limit, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        )),
        Ok(Err(_)) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {BODY_LIMIT} bytes (or cut off)"),
        )),
        Ok(Ok(b)) => Ok(b),
    }
}

/// 400 naming the field and its rule.
fn refused(r: request::Refusal) -> ApiError {
    error(StatusCode::BAD_REQUEST, r.to_string())
}

fn ledger_error(e: LedgerError) -> ApiError {
    match e {
        LedgerError::UnknownRealm(r) => {
            error(StatusCode::NOT_FOUND, format!("realm `{r}` is not seeded"))
        }
        e @ LedgerError::NotDeployed { .. } => error(StatusCode::NOT_FOUND, e.to_string()),
        e @ (LedgerError::SeedRefused { .. } | LedgerError::Retired { .. }) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
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

async fn admit(
    st: AppState,
    realm: String,
    credentials: Credentials,
    b: JsonBody,
    record: bool,
) -> Result<Response, ApiError> {
    let actor = authorize(&st, &credentials, &realm, false)?;
    let request = request::deployment(&b.0?).map_err(refused)?;
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
    Ok(json_bytes(
        status,
        Admission::new(&realm, &request, &d).to_json(),
    ))
}

async fn deploy(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    credentials: Credentials,
    b: JsonBody,
) -> Result<Response, ApiError> {
    admit(st, realm, credentials, b, true).await
}

async fn what_if(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    credentials: Credentials,
    b: JsonBody,
) -> Result<Response, ApiError> {
    admit(st, realm, credentials, b, false).await
}

async fn undeploy(
    State(st): State<AppState>,
    Path((realm, environment, pipeline, major)): Path<(String, String, String, String)>,
    credentials: Credentials,
) -> Result<Response, ApiError> {
    let actor = authorize(&st, &credentials, &realm, false)?;
    let key = request::key(&environment, &pipeline, &major).map_err(refused)?;
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
    credentials: Credentials,
) -> Result<Response, ApiError> {
    authorize(&st, &credentials, &realm, false)?;
    let s = st.store.status(&realm).await.map_err(ledger_error)?;
    Ok(Json(s).into_response())
}

async fn config(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    credentials: Credentials,
    b: JsonBody,
) -> Result<Response, ApiError> {
    let actor = authorize(&st, &credentials, &realm, true)?;
    let body = b.0?;
    if !crate::spec::is_valid_realm_name(&realm) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "realm: 2-31 lowercase letters, digits or `-`, starting with a letter, not `admin`",
        ));
    }
    let d = &requirements::embedded().quota.defaults;
    let config = request::config(
        &body,
        (d.max_replicas_per_deployment, d.max_size_per_deployment),
    )
    .map_err(refused)?;
    st.store
        .seed(&realm, config, &actor)
        .await
        .map_err(ledger_error)?;
    Ok(Json(json!({"realm": realm, "config": config})).into_response())
}

/// `POST /v1/realms/{realm}/retire` (admin): the realm admits nothing from now on; the first
/// retirement's time is kept, so asking again is safe.
async fn retire(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    credentials: Credentials,
) -> Result<Response, ApiError> {
    let actor = authorize(&st, &credentials, &realm, true)?;
    let r = st
        .store
        .retire(&realm, &actor)
        .await
        .map_err(ledger_error)?;
    Ok(Json(r).into_response())
}

/// `GET /v1/realms/{realm}/decisions?after=ID&limit=N` (admin): a page of the realm's
/// decision log, oldest first; `next` is the `after` of the next page, absent on the last.
async fn decisions(
    State(st): State<AppState>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    credentials: Credentials,
) -> Result<Response, ApiError> {
    authorize(&st, &credentials, &realm, true)?;
    let (after, limit) = request::page(query.as_deref()).map_err(refused)?;
    let log = st
        .store
        .decisions_page(&realm, after, limit)
        .await
        .map_err(ledger_error)?;
    if log.is_empty() {
        // A seeded realm's log is never empty (its seed is in it): an empty page is past its
        // end, or the realm is unknown — 404, as for its usage.
        st.store.status(&realm).await.map_err(ledger_error)?;
    }
    let next = (log.len() == limit as usize).then(|| log.last().map(|d| d.id));
    Ok(Json(json!({"realm": realm, "decisions": log, "next": next.flatten()})).into_response())
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
        let presented = |h: &HeaderMap| Credentials::of(h).presented().map(str::to_owned);
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(TOKEN_HEADER, " rq_x ".parse().unwrap());
        assert_eq!(presented(&h).as_deref(), Some("rq_x"));
        h.insert(header::AUTHORIZATION, "Bearer rq_y".parse().unwrap());
        assert_eq!(presented(&h).as_deref(), Some("rq_y"));
        // An `Authorization` that is not a bearer credential presents nothing: the proxy
        // header is not looked at then.
        h.insert(header::AUTHORIZATION, "Basic eDp5".parse().unwrap());
        assert_eq!(presented(&h), None);
        let mut empty = HeaderMap::new();
        empty.insert(TOKEN_HEADER, " ".parse().unwrap());
        assert_eq!(presented(&empty), None);
    }

    /// Every bound and rule the server enforces is the one the document states: counts by
    /// their minimum and maximum, strings by the rule text the 400 answer names (schemathesis,
    /// run against the server in `tests/it/quota_contract.rs`, checks the patterns).
    #[test]
    fn the_openapi_document_states_the_rules_the_server_enforces() {
        use request::Rule;
        let doc: serde_json::Value =
            serde_saphyr::from_str(include_str!("../../docs/quota-openapi.yaml")).unwrap();
        let count = |v: &serde_json::Value, rule: Rule, what: &str| {
            let Rule::Count { min, max } = rule else {
                panic!("{what}: not a count")
            };
            assert_eq!(
                (&v["type"], &v["minimum"], &v["maximum"]),
                (&json!("integer"), &json!(min), &json!(max)),
                "{what}"
            );
        };
        let schemas = &doc["components"]["schemas"];
        count(
            &schemas["DeployRequest"]["properties"]["replicas"],
            request::REPLICAS,
            "replicas",
        );
        let put = &doc["paths"][CONFIG]["put"];
        let config = &put["requestBody"]["content"]["application/json"]["schema"]["properties"];
        count(
            &config["pipelineSubscriptions"],
            request::SUBSCRIPTIONS,
            "pipelineSubscriptions",
        );
        count(
            &config["extraTestRtus"],
            request::EXTRA_RTUS,
            "extraTestRtus",
        );
        count(
            &config["extraProdRtus"],
            request::EXTRA_RTUS,
            "extraProdRtus",
        );
        count(&config["maxReplicas"], request::MAX_REPLICAS, "maxReplicas");
        let major = doc["paths"][DEPLOYMENT]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "major")
            .unwrap();
        count(&major["schema"], request::MAJOR, "major");
        for (name, rule) in [
            ("Environment", Rule::Environment),
            ("Size", Rule::Size),
            ("Pipeline", Rule::Pipeline),
            ("Version", Rule::Version),
        ] {
            assert_eq!(
                schemas[name]["description"],
                json!(rule.to_string()),
                "{name}"
            );
        }
        // Every status the server gives an operation is documented for it.
        let with_body = [(DEPLOYMENTS, "post"), (WHAT_IF, "post"), (CONFIG, "put")];
        for (path, method) in with_body {
            let r = &doc["paths"][path][method]["responses"];
            for status in ["200", "400", "401", "403", "408", "413", "415", "503"] {
                assert!(r.get(status).is_some(), "{method} {path} lacks {status}");
            }
        }
        for (path, method) in [(DEPLOYMENT, "delete"), (USAGE, "get")] {
            let r = &doc["paths"][path][method]["responses"];
            for status in ["200", "401", "403", "404", "503"] {
                assert!(r.get(status).is_some(), "{method} {path} lacks {status}");
            }
        }
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
