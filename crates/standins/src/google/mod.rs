//! The Google Cloud wire adapter over the neutral [`World`], served over plain HTTP on
//! loopback (google-cloud-auth and the gax clients take `http://127.0.0.1` endpoints): the GKE
//! API v1 (clusters, node pools, operations, server config), Resource Manager v3 (projects,
//! `testIamPermissions`), Service Usage v1 (`services:batchGet`), Compute Engine v1 (regions
//! with their quotas, subnetworks), the OAuth 2.0 token endpoint (refresh tokens and JWT
//! bearer assertions), the IAM Service Account Credentials API (`generateAccessToken`) and the
//! metadata server. `docs/google-standin.md` names the reference pages each follows.
//!
//! Every API request needs a bearer token: one this stand-in issued and that has not expired,
//! or a service account's self-signed JWT (RS256, checked against the key the world holds for
//! its `kid`; a disabled key is refused). It is then authorized against the world's policy by
//! the IAM permission Google checks for the method (403 PERMISSION_DENIED naming it in an
//! `ErrorInfo` detail). Throttling answers 429 RESOURCE_EXHAUSTED. Errors are Google's
//! `{"error": {"code", "message", "status", "details"}}`.

mod apis;
mod auth;
mod container;
mod teardown;
mod vpn;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use auth::service_account_key;

use crate::policy::Decision;
use crate::world::{Call, Quota, Subnet, World};

/// The largest request body the adapter reads.
const BODY_LIMIT: usize = 1024 * 1024;

/// Who a GKE API server bearer token is: the same access tokens and self-signed JWTs the
/// Google APIs accept.
pub fn kube_user(w: &World, token: &str) -> Option<String> {
    auth::principal_of(w, token).ok()
}

/// The sample's installer service account.
pub fn installer(project: &str) -> String {
    format!("realmctl-installer@{project}.iam.gserviceaccount.com")
}

/// A Google API error.
pub(crate) struct GoogleError {
    http: u16,
    status: &'static str,
    message: String,
    details: Vec<Value>,
    /// Compute Engine's `errors[].reason` (its v1 error format), when set.
    reason: Option<&'static str>,
}

impl GoogleError {
    pub fn new(http: u16, status: &'static str, message: impl Into<String>) -> Self {
        GoogleError {
            http,
            status,
            message: message.into(),
            details: Vec::new(),
            reason: None,
        }
    }

    /// Compute Engine's reason for the error (`resourceInUseByAnotherResource`, ...).
    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn detail(mut self, d: Value) -> Self {
        self.details.push(d);
        self
    }

    /// 403 PERMISSION_DENIED naming `permission` as IAM does.
    pub fn denied(permission: &str, resource: &str, domain: &str) -> Self {
        GoogleError::new(
            403,
            "PERMISSION_DENIED",
            format!(
                "Permission '{permission}' denied on resource '{resource}' (or it may not exist)."
            ),
        )
        .detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": domain,
            "metadata": {"permission": permission, "resource": resource},
        }))
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        GoogleError::new(404, "NOT_FOUND", what)
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.http).unwrap_or(StatusCode::BAD_REQUEST);
        let mut error = json!({
            "code": self.http, "message": self.message, "status": self.status,
            "details": self.details,
        });
        if let Some(r) = self.reason {
            error["errors"] = json!([{"domain": "global", "reason": r, "message": self.message}]);
        }
        (code, axum::Json(json!({ "error": error }))).into_response()
    }
}

/// A ready Google Cloud project in `region`: the installer service account (see
/// [`service_account_key`] for its key), which may also be impersonated; a network
/// `digibee-vpc` with subnetwork `nodes` (10.20.0.0/20, secondary ranges `pods` and `services`);
/// both APIs enabled; 96 regional CPUS and 96 N2_CPUS; current GKE versions; everything allowed.
pub fn sample(project: &str, region: &str) -> World {
    let sa = installer(project);
    let mut w = World::new(project, region, &sa);
    w.account_state = "ACTIVE".into();
    w.service_accounts.insert(sa);
    w.subnets = vec![Subnet {
        id: "nodes".into(),
        network: "digibee-vpc".into(),
        zone: None,
        cidr: "10.20.0.0/20".into(),
        free: 4092,
    }];
    w.documents.insert(
        "gke:secondary-ranges:nodes".into(),
        json!([{"rangeName": "pods", "ipCidrRange": "10.64.0.0/14"},
               {"rangeName": "services", "ipCidrRange": "10.68.0.0/20"}]),
    );
    for api in ["container.googleapis.com", "compute.googleapis.com"] {
        w.services.insert(api.into(), true);
    }
    for (code, name) in [("CPUS", "CPUs"), ("N2_CPUS", "N2 CPUs")] {
        w.quotas.insert(
            code.into(),
            Quota {
                name: name.into(),
                limit: 96.0,
                usage: 0.0,
            },
        );
    }
    w.versions = [
        "1.35.0-gke.1795000",
        "1.34.2-gke.1166000",
        "1.33.5-gke.1162000",
        "1.33.4-gke.1350000",
        "1.32.9-gke.1072000",
        "1.31.13-gke.1023000",
        "1.31.12-gke.1265000",
    ]
    .map(String::from)
    .to_vec();
    w
}

pub(crate) struct Adapter {
    pub world: Arc<Mutex<World>>,
    pub started: Instant,
    pub base: String,
}

/// The router over `world`, reached at `base` (its own address).
pub fn router(world: Arc<Mutex<World>>, started: Instant, base: String) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(Adapter {
        world,
        started,
        base,
    }))
}

pub(crate) fn log(w: &mut World, started: Instant, op: &str, throttled: bool) {
    w.calls.push(Call {
        op: op.to_owned(),
        at: started.elapsed(),
        throttled,
    });
}

/// What an API request is: the operation it is logged as, the IAM permission Google checks
/// (`None`: any authenticated caller), the resource it names, and the domain of its errors.
pub(crate) struct Route {
    pub op: &'static str,
    pub permission: Option<&'static str>,
    pub resource: String,
    pub domain: &'static str,
}

async fn handle(State(a): State<Arc<Adapter>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return GoogleError::new(413, "INVALID_ARGUMENT", "body too large").into_response();
        }
    };
    let mut w = a.world.lock().unwrap_or_else(|p| p.into_inner());
    w.purge(|_| None);
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    // Credentials: the token endpoint and the metadata server take no bearer token.
    if path == "/token" {
        log(&mut w, a.started, "oauth:token", false);
        return auth::token_endpoint(&mut w, &body);
    }
    if let Some(rest) = path.strip_prefix("/computeMetadata/v1/") {
        log(&mut w, a.started, "metadata:get", false);
        return auth::metadata(&mut w, &parts.headers, rest);
    }
    let Some((route, kind)) = apis::route(&parts.method, &path, &w) else {
        log(&mut w, a.started, "google:unknown", false);
        return GoogleError::not_found(format!(
            "The requested URL {path} was not found on this server."
        ))
        .into_response();
    };
    if let Some(n) = w.throttle.get_mut(route.op).filter(|n| **n > 0) {
        *n -= 1;
        log(&mut w, a.started, route.op, true);
        let mut r = GoogleError::new(
            429,
            "RESOURCE_EXHAUSTED",
            format!(
                "Quota exceeded for quota metric 'Requests' of service '{}'.",
                route.domain
            ),
        )
        .detail(json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com", "metadata": {}}))
        .into_response();
        if w.retry_after > 0 {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                w.retry_after.to_string().parse().expect("digits"),
            );
        }
        return r;
    }
    log(&mut w, a.started, route.op, false);
    let caller = match auth::caller(&w, &parts.headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Some(p) = route.permission
        && w.policy.decide(p, &route.resource, &BTreeMap::new()) != Decision::Allowed
    {
        return GoogleError::denied(p, &route.resource, route.domain).into_response();
    }
    let parsed: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return GoogleError::new(
                    400,
                    "INVALID_ARGUMENT",
                    format!("Invalid JSON payload received. {e}"),
                )
                .into_response();
            }
        }
    };
    match apis::answer(&mut w, &a.base, &caller, kind, &query, parsed) {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}
