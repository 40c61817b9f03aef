//! A Kubernetes API server stand-in, served over HTTPS on loopback with its own test CA, that
//! follows the API conventions closely enough for kubectl, the Python `kubernetes` client and
//! kube-rs to work against it unchanged: discovery (`/api`, `/apis`, each group version),
//! CRUD with `resourceVersion`, namespaces, server-side apply (`application/apply-patch+yaml`
//! with `fieldManager` and `force`, `managedFields`, 409 conflicts naming manager and field),
//! JSON merge patches, generation and observedGeneration, the status subresource, CRDs that
//! become Established (and then serve their resources), Deployments and StatefulSets that
//! become available after a delay (or never), LoadBalancer Services that get an address, Jobs
//! that complete, finalizers, namespace termination. What it leaves out (watch, JSON patch,
//! protobuf, the OpenAPI documents) is listed in `docs/kube-standin.md` with the documents it
//! follows.
//!
//! Every request needs a bearer token the test's `authenticate` accepts (401 otherwise), as an
//! API server's webhook or OIDC authenticator would decide; RBAC is not simulated.

mod edge;
mod fields;
pub mod proxy;
mod store;
mod types;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use edge::server_config as edge_config;
pub use store::{ApiError, By, Cluster, Delays, Key};
pub use types::ResourceType;

/// The largest request body read.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Decides who a bearer token is (`None`: refused).
pub type Authenticate = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// One request the stand-in answered.
#[derive(Debug, Clone)]
pub struct KubeCall {
    /// Method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// The user the token named.
    pub user: String,
    /// When it arrived.
    pub at: Instant,
}

/// The stand-in's state.
pub struct KubeWorld {
    /// The cluster.
    pub cluster: Cluster,
    /// Every answered request, in order.
    pub calls: Vec<KubeCall>,
    /// Who a token is.
    pub authenticate: Authenticate,
    /// What answers for a Service through the service proxy: (namespace, name) → backend.
    pub backends: BTreeMap<(String, String), proxy::Backend>,
    client: ProxyClient,
}

type ProxyClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    axum::body::Body,
>;

fn proxy_client() -> ProxyClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

impl KubeWorld {
    /// A new cluster whose API accepts exactly `tokens` (token → user).
    pub fn with_tokens(tokens: BTreeMap<String, String>) -> Self {
        Self::new(Arc::new(move |t| tokens.get(t).cloned()))
    }

    /// A new cluster whose API asks `authenticate`.
    pub fn new(authenticate: Authenticate) -> Self {
        KubeWorld {
            cluster: Cluster::default(),
            calls: Vec::new(),
            authenticate,
            backends: BTreeMap::new(),
            client: proxy_client(),
        }
    }

    /// Names what answers for Service `namespace/name` through the service proxy (the
    /// stand-in runs no pods).
    pub fn serve_service(&mut self, namespace: &str, name: &str, backend: proxy::Backend) {
        self.backends
            .insert((namespace.to_owned(), name.to_owned()), backend);
    }
}

/// The router over `world`.
pub fn router(world: Arc<Mutex<KubeWorld>>) -> Router {
    Router::new().fallback(handle).with_state(world)
}

/// 404 for a path that names nothing the server serves.
fn not_served() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn status_response(e: &ApiError, name: Option<&str>, t: Option<&ResourceType>) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.status(name, t),
    )
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn query_map(q: Option<&str>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

async fn handle(State(world): State<Arc<Mutex<KubeWorld>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return status_response(
            &ApiError::new(413, "RequestEntityTooLarge", "request entity too large"),
            None,
            None,
        );
    };
    let forward = match answer(&world, &parts, &body) {
        Answer::Done(r) => return r,
        Answer::Forward(f) => f,
    };
    proxy::forward(
        &forward.client,
        forward.addr,
        parts.method.clone(),
        &forward.rest,
        parts.uri.query(),
        &parts.headers,
        body,
    )
    .await
}

/// A request the service proxy sends on.
struct Forward {
    client: ProxyClient,
    addr: std::net::SocketAddr,
    rest: String,
}

enum Answer {
    Done(Response),
    Forward(Box<Forward>),
}

/// Everything decided under the world's lock: authentication, the call log, the answer (or
/// where the service proxy sends the request).
fn answer(world: &Mutex<KubeWorld>, parts: &axum::http::request::Parts, body: &Bytes) -> Answer {
    let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(user) = token.and_then(|t| (w.authenticate)(t)) else {
        return Answer::Done(status_response(
            &ApiError::new(401, "Unauthorized", "Unauthorized"),
            None,
            None,
        ));
    };
    let path = parts.uri.path().to_owned();
    w.calls.push(KubeCall {
        method: parts.method.to_string(),
        path: path.clone(),
        user: user.clone(),
        at: Instant::now(),
    });
    let now = Instant::now();
    w.cluster.reconcile(now);
    if let Some(t) = proxy::parse(&path) {
        let key = (t.namespace.to_owned(), t.service.to_owned());
        let backend = w.backends.get(&key).cloned();
        return match proxy::resolve(&mut w.cluster, &t, backend.as_ref()) {
            Ok(addr) => Answer::Forward(Box::new(Forward {
                client: w.client.clone(),
                addr,
                rest: t.rest,
            })),
            Err(e) => Answer::Done(status_response(&e, Some(t.service), None)),
        };
    }
    let q = query_map(parts.uri.query());
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split('/').next())
        .unwrap_or("unknown")
        .to_owned();
    let manager = q.get("fieldManager").cloned().unwrap_or(agent);
    let request = Req {
        method: &parts.method,
        headers: &parts.headers,
        q: &q,
        body,
        manager: &manager,
        now,
    };
    Answer::Done(route(&mut w.cluster, &path, &request))
}

impl Req<'_> {
    fn by(&self) -> store::By<'_> {
        store::By {
            manager: self.manager,
            now: self.now,
        }
    }
}

struct Req<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    q: &'a BTreeMap<String, String>,
    body: &'a Bytes,
    manager: &'a str,
    now: Instant,
}

fn route(c: &mut Cluster, path: &str, r: &Req<'_>) -> Response {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => json_response(
            StatusCode::OK,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-realmctl-standin",
                    "platform": "linux/amd64"}),
        ),
        ["api"] => json_response(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        ["apis"] => json_response(StatusCode::OK, &groups(c)),
        ["metrics"] => metrics(c),
        ["api", "v1", rest @ ..] => resource(c, "", "v1", rest, r),
        ["apis", group, version, rest @ ..] => resource(c, group, version, rest, r),
        _ => status_response(&not_served(), None, None),
    }
}

/// `/metrics`: the `apiserver_requested_deprecated_apis` gauge in the Prometheus text format,
/// one series per deprecated type a request used, as the API server reports it.
fn metrics(c: &Cluster) -> Response {
    let mut text = String::from(
        "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.\n# TYPE apiserver_requested_deprecated_apis gauge\n",
    );
    for (t, removed) in &c.deprecated {
        if c.requested_deprecated
            .contains(&(t.group.clone(), t.version.clone(), t.plural.clone()))
        {
            text.push_str(&format!(
                "apiserver_requested_deprecated_apis{{group=\"{}\",removed_release=\"{removed}\",resource=\"{}\",subresource=\"\",version=\"{}\"}} 1\n",
                t.group, t.plural, t.version
            ));
        }
    }
    text.push_str("# HELP apiserver_storage_objects [STABLE] Number of stored objects\n# TYPE apiserver_storage_objects gauge\n");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

fn groups(c: &Cluster) -> Value {
    let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in c.types().into_iter().filter(|t| !t.group.is_empty()) {
        let v = by_group.entry(t.group.clone()).or_default();
        if !v.contains(&t.version) {
            v.push(t.version.clone());
        }
    }
    let groups: Vec<Value> = by_group
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource(c: &mut Cluster, group: &str, version: &str, rest: &[&str], r: &Req<'_>) -> Response {
    let served: Vec<ResourceType> = c
        .types()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if served.is_empty() {
        return status_response(&not_served(), None, None);
    }
    if let Some(plural) = rest
        .iter()
        .rev()
        .find(|s| served.iter().any(|t| t.plural == **s))
    {
        let hit = (group.to_owned(), version.to_owned(), (*plural).to_owned());
        if c.deprecated
            .iter()
            .any(|(t, _)| t.group == hit.0 && t.version == hit.1 && t.plural == hit.2)
        {
            c.requested_deprecated.insert(hit);
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    // (type, namespace, name, status subresource)
    let (plural, ns, name, status): (&str, Option<&str>, Option<&str>, bool) = match rest {
        [] => {
            let resources: Vec<Value> = served.iter().flat_map(ResourceType::discovery).collect();
            return json_response(
                StatusCode::OK,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            );
        }
        ["namespaces", ns, p] if *p != "status" => (p, Some(ns), None, false),
        ["namespaces", ns, p, name] => (p, Some(ns), Some(name), false),
        ["namespaces", ns, p, name, "status"] => (p, Some(ns), Some(name), true),
        [p] => (p, None, None, false),
        [p, name] => (p, None, Some(name), false),
        [p, name, "status"] => (p, None, Some(name), true),
        _ => {
            return status_response(&not_served(), None, None);
        }
    };
    let Some(t) = served.into_iter().find(|t| t.plural == plural) else {
        return status_response(&not_served(), None, None);
    };
    if ns.is_some() && !t.namespaced {
        return status_response(&not_served(), None, Some(&t));
    }
    if status && !t.status {
        return status_response(&not_served(), name, Some(&t));
    }
    let ns_name = ns.unwrap_or("");
    let result = match (r.method, name) {
        (&Method::GET, _) if r.q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "watch is not supported by this stand-in (docs/kube-standin.md)",
            ))
        }
        (&Method::GET, None) => c
            .list(
                &t,
                ns,
                r.q.get("fieldSelector").map(String::as_str),
                r.q.get("labelSelector").map(String::as_str),
            )
            .map(|v| (StatusCode::OK, v)),
        (&Method::GET, Some(n)) => c.get(&t, ns_name, n).map(|v| (StatusCode::OK, v)),
        (&Method::POST, None) if t.namespaced && ns.is_none() => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
        (&Method::POST, None) => parse_json(r)
            .and_then(|b| c.create(&t, ns_name, b, r.manager, r.now))
            .map(|v| (StatusCode::CREATED, v)),
        (&Method::PUT, Some(n)) => parse_json(r)
            .and_then(|b| c.replace(&t, ns_name, n, b, r.by(), status))
            .map(|v| (StatusCode::OK, v)),
        (&Method::PATCH, Some(n)) => patch(c, &t, ns_name, n, status, r),
        (&Method::DELETE, Some(n)) => c.delete(&t, ns_name, n).map(|v| (StatusCode::OK, v)),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => status_response(&e, name, Some(&t)),
    }
}

fn content_type<'a>(r: &'a Req<'_>) -> &'a str {
    r.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or("", |v| v.split(';').next().unwrap_or("").trim())
}

fn parse_json(r: &Req<'_>) -> Result<Value, ApiError> {
    match content_type(r) {
        "application/json" | "" => {}
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json (got {other})"
                ),
            ));
        }
    }
    decode(r.body)
}

fn decode(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(ApiError::new(
            400,
            "BadRequest",
            "the body of the request was in an unknown format - this stand-in reads JSON (YAML is JSON's superset; send JSON)",
        )),
    }
}

fn patch(
    c: &mut Cluster,
    t: &ResourceType,
    ns: &str,
    name: &str,
    status: bool,
    r: &Req<'_>,
) -> Result<(StatusCode, Value), ApiError> {
    let dry_run = r.q.get("dryRun").is_some_and(|d| d == "All");
    match content_type(r) {
        "application/apply-patch+yaml" => {
            if !r.q.contains_key("fieldManager") {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            if status {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "apply to the status subresource is not supported by this stand-in",
                ));
            }
            let config = decode(r.body)?;
            let force = r.q.get("force").is_some_and(|f| f == "true");
            if dry_run {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    "dryRun is not supported by this stand-in",
                ));
            }
            let (v, created) = c.apply(t, ns, name, config, r.by(), force)?;
            Ok((
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                v,
            ))
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let p = decode(r.body)?;
            c.merge_patch(t, ns, name, &p, r.by(), status)
                .map(|v| (StatusCode::OK, v))
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml, application/merge-patch+json, application/strategic-merge-patch+json (got {other})"
            ),
        )),
    }
}
