//! The Kubernetes API as `platform.apply` needs it, behind a narrow trait ([`KubeApi`]):
//! server-side apply, get, delete. [`KubeClient`] implements it with kube-rs (rustls on
//! aws-lc-rs, the cluster's own CA, a bearer token from the cloud's credential chain; dynamic
//! objects, their resources found by discovery once per group version). kube-rs types never
//! leave this file. Errors are classified by HTTP status and the `Status` reason and causes,
//! never by message text.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use super::FIELD_MANAGER;
use super::object::ObjectRef;
use crate::secret::Secret;

/// A Kubernetes call's future.
pub type KubeFuture<'a, T> = BoxFuture<'a, Result<T, KubeError>>;

/// What kind of failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeErrorKind {
    /// Server-side apply found fields another manager owns: (manager, field) each.
    Conflict(Vec<(String, String)>),
    /// The object or its type does not exist.
    NotFound,
    /// The token was refused (401).
    Unauthorized,
    /// The identity may not do this (403).
    Forbidden,
    /// The object was refused as invalid (400, 422).
    Invalid,
    /// Throttled (429).
    Throttled,
    /// No answer, a 5xx, a timeout: worth retrying.
    Unavailable,
}

/// A failed call, naming the object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{object}: {message}")]
pub struct KubeError {
    /// The kind.
    pub kind: KubeErrorKind,
    /// The object acted on (or the API server).
    pub object: String,
    /// What the server said (escaped for a terminal by the caller).
    pub message: String,
}

impl KubeError {
    /// Whether trying again may work.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            KubeErrorKind::Throttled | KubeErrorKind::Unavailable
        )
    }
}

/// The calls `platform.apply` makes.
pub trait KubeApi: Send + Sync {
    /// Server-side apply of `manifest` under realmctl's field manager (`force`: take fields
    /// other managers own). Returns the object as the server answered.
    fn apply<'a>(&'a self, manifest: &'a Value, force: bool) -> KubeFuture<'a, Value>;
    /// The object, if it exists.
    fn get<'a>(&'a self, object: &'a ObjectRef) -> KubeFuture<'a, Option<Value>>;
    /// The objects of `api_version`/`kind` in `namespace` (`None`: a cluster-scoped kind, or a
    /// namespaced one in every namespace) carrying the label `selector` (`key=value`; empty:
    /// all), each with its apiVersion and kind.
    fn list<'a>(
        &'a self,
        api_version: &'a str,
        kind: &'a str,
        namespace: Option<&'a str>,
        selector: &'a str,
    ) -> KubeFuture<'a, Vec<Value>>;
    /// Deletes the object (foreground propagation); absent is fine.
    fn delete<'a>(&'a self, object: &'a ObjectRef) -> KubeFuture<'a, ()>;
    /// A request through the API server's service proxy (`request.path` is the whole API
    /// path, `/api/v1/namespaces/{ns}/services/{scheme}:{name}:{port}/proxy/…`). The
    /// service's own answer, whatever its status; the API server's refusals (its `Status`
    /// objects: no endpoints, forbidden, unknown service) are errors.
    fn proxy<'a>(&'a self, request: &'a ProxyRequest) -> KubeFuture<'a, ProxyAnswer>;
    /// The API server's own metrics (`GET /metrics`, the Prometheus text format), at most
    /// [`METRICS_CAP`] bytes: `upgrade` reads `apiserver_requested_deprecated_apis` from them.
    fn metrics(&self) -> KubeFuture<'_, String>;
    /// Every `group/version` the API server serves, from discovery (the core group as `v1`).
    fn served_versions(&self) -> KubeFuture<'_, Vec<String>>;
}

/// The largest metrics answer read (a large cluster's API server writes tens of MB).
pub const METRICS_CAP: usize = 64 * 1024 * 1024;

/// A request to a Service through the API server.
#[derive(Debug)]
pub struct ProxyRequest {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: http_1::Method,
    /// The API path (see [`KubeApi::proxy`]).
    pub path: String,
    /// A credential for the service itself, in a header the proxy passes on (it removes
    /// `Authorization`): (header name, value). Sent marked sensitive.
    pub credential: Option<(&'static str, Secret)>,
    /// A JSON body.
    pub body: Option<String>,
}

/// A service's answer through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body (at most [`PROXY_ANSWER_CAP`] bytes).
    pub body: String,
}

/// The largest service answer read through the proxy.
pub const PROXY_ANSWER_CAP: usize = 1024 * 1024;

/// How to reach a cluster's API server.
pub struct Endpoint {
    /// `https://…` (or http to loopback).
    pub server: String,
    /// The cluster CA, PEM.
    pub ca_pem: String,
    /// A bearer token from the cloud's credential chain.
    pub token: Secret,
}

/// The cluster CA as a cloud describes it (base64 of PEM, or PEM) as PEM.
pub fn decode_ca(described: &str) -> Result<String, KubeError> {
    use base64::Engine as _;
    let bad = |message: &str| KubeError {
        kind: KubeErrorKind::Invalid,
        object: "the cluster CA".into(),
        message: message.to_owned(),
    };
    if described.trim_start().starts_with("-----BEGIN") {
        return Ok(described.to_owned());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(described.trim())
        .map_err(|_| bad("is neither PEM nor base64 of PEM"))?;
    String::from_utf8(bytes).map_err(|_| bad("is not text"))
}

/// kube-rs behind [`KubeApi`].
pub struct KubeClient {
    client: kube::Client,
    resources: Mutex<HashMap<(String, String), (kube::discovery::ApiResource, bool)>>,
}

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl KubeClient {
    /// A client for `endpoint`: https with the cluster's CA (or http to loopback), the token as
    /// a bearer header. Makes no call.
    pub fn new(endpoint: &Endpoint) -> Result<KubeClient, KubeError> {
        let bad = |message: String| KubeError {
            kind: KubeErrorKind::Invalid,
            object: "the API server".into(),
            message,
        };
        crate::secret::may_carry_credentials(&endpoint.server).map_err(|why| {
            bad(format!(
                "will not send a token to {}: {why}",
                crate::text::one_line(&endpoint.server)
            ))
        })?;
        let url: http_1::Uri = endpoint
            .server
            .parse()
            .map_err(|e| bad(format!("the API server URL is not valid: {e}")))?;
        let mut roots = Vec::new();
        use rustls_pki_types::pem::PemObject as _;
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(endpoint.ca_pem.as_bytes()) {
            let c = c.map_err(|e| bad(format!("the cluster CA is not valid PEM: {e}")))?;
            roots.push(c.as_ref().to_vec());
        }
        if roots.is_empty() {
            return Err(bad("the cluster CA holds no certificate".into()));
        }
        let mut config = kube::Config::new(url);
        config.root_cert = Some(roots);
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(REQUEST_TIMEOUT);
        config.write_timeout = Some(REQUEST_TIMEOUT);
        config.reset_reader_on_write = true;
        config.auth_info.token = Some(endpoint.token.expose().to_owned().into());
        let client = kube::Client::try_from(config)
            .map_err(|e| bad(format!("cannot build the Kubernetes client: {e}")))?;
        Ok(KubeClient {
            client,
            resources: Mutex::new(HashMap::new()),
        })
    }

    /// The API resource of `api_version`/`kind` and whether it is namespaced (discovery, once
    /// per kind).
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(kube::discovery::ApiResource, bool), KubeError> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(r) = self.lock().get(&key) {
            return Ok(r.clone());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| classify(e, &format!("{kind} ({api_version})")))?;
        let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
        self.lock().insert(key, (ar.clone(), namespaced));
        Ok((ar, namespaced))
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), (kube::discovery::ApiResource, bool)>>
    {
        self.resources.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn api(&self, r: &ObjectRef) -> Result<kube::Api<kube::core::DynamicObject>, KubeError> {
        let (ar, namespaced) = self.resource(&r.api_version, &r.kind).await?;
        Ok(match (&r.namespace, namespaced) {
            (Some(ns), true) => kube::Api::namespaced_with(self.client.clone(), ns, &ar),
            (None, false) => kube::Api::all_with(self.client.clone(), &ar),
            (_, namespaced) => {
                return Err(KubeError {
                    kind: KubeErrorKind::Invalid,
                    object: r.to_string(),
                    message: if namespaced {
                        "the kind is namespaced but the manifest names no namespace".into()
                    } else {
                        "the kind is cluster-scoped but the manifest names a namespace".into()
                    },
                });
            }
        })
    }
}

/// A kube-rs error as a [`KubeError`] about `object`.
fn classify(e: kube::Error, object: &str) -> KubeError {
    let (kind, message) = match &e {
        kube::Error::Api(s) => {
            let causes: Vec<(String, String)> = s
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .filter(|c| c.reason == "FieldManagerConflict")
                .map(|c| {
                    let manager = c
                        .message
                        .split('"')
                        .nth(1)
                        .unwrap_or("another manager")
                        .to_owned();
                    (manager, c.field.clone())
                })
                .collect();
            let kind = match s.code {
                409 if !causes.is_empty() => KubeErrorKind::Conflict(causes),
                404 => KubeErrorKind::NotFound,
                401 => KubeErrorKind::Unauthorized,
                403 => KubeErrorKind::Forbidden,
                429 => KubeErrorKind::Throttled,
                c if c >= 500 => KubeErrorKind::Unavailable,
                _ => KubeErrorKind::Invalid,
            };
            (kind, format!("{} ({} {})", s.message, s.code, s.reason))
        }
        kube::Error::Discovery(_) => (KubeErrorKind::NotFound, e.to_string()),
        _ => (KubeErrorKind::Unavailable, e.to_string()),
    };
    KubeError {
        kind,
        object: object.to_owned(),
        message,
    }
}

/// Whether a proxied answer is the API server's own refusal (a `Status` object) rather than
/// the service's (pure).
fn server_status(status: u16, body: &str) -> Option<kube::core::Status> {
    if status < 400 {
        return None;
    }
    let v: Value = serde_json::from_str(body).ok()?;
    if v["kind"] != "Status" || v["apiVersion"] != "v1" {
        return None;
    }
    serde_json::from_value(v).ok()
}

impl KubeClient {
    /// Sends `req` and reads at most `cap` bytes of the answer: (status, body). The API
    /// server's own refusals (its `Status` objects) are errors naming `what`.
    async fn send_capped(
        &self,
        req: http_1::Request<kube::client::Body>,
        cap: usize,
        what: &str,
    ) -> Result<(u16, String), KubeError> {
        use http_body_util::BodyExt as _;
        let resp = self.client.send(req).await.map_err(|e| classify(e, what))?;
        let status = resp.status().as_u16();
        let bytes = http_body_util::Limited::new(resp.into_body(), cap)
            .collect()
            .await
            .map_err(|e| KubeError {
                kind: KubeErrorKind::Unavailable,
                object: what.to_owned(),
                message: format!("reading the answer: {e}"),
            })?
            .to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(s) = server_status(status, &body) {
            return Err(classify(kube::Error::Api(Box::new(s)), what));
        }
        Ok((status, body))
    }
}

impl KubeApi for KubeClient {
    fn proxy<'a>(&'a self, request: &'a ProxyRequest) -> KubeFuture<'a, ProxyAnswer> {
        Box::pin(async move {
            let what = format!("service proxy {}", request.path);
            let unavailable = |message: String| KubeError {
                kind: KubeErrorKind::Unavailable,
                object: what.clone(),
                message,
            };
            let mut b = http_1::Request::builder()
                .method(request.method.clone())
                .uri(&request.path);
            if let Some((name, value)) = &request.credential {
                let mut v =
                    http_1::HeaderValue::from_str(value.expose()).map_err(|_| KubeError {
                        kind: KubeErrorKind::Invalid,
                        object: what.clone(),
                        message: format!("the {name} credential is not a valid header value"),
                    })?;
                v.set_sensitive(true);
                b = b.header(*name, v);
            }
            if request.body.is_some() {
                b = b.header(http_1::header::CONTENT_TYPE, "application/json");
            }
            let req = b
                .body(kube::client::Body::from(
                    request.body.clone().unwrap_or_default().into_bytes(),
                ))
                .map_err(|e| unavailable(e.to_string()))?;
            let (status, body) = self.send_capped(req, PROXY_ANSWER_CAP, &what).await?;
            Ok(ProxyAnswer { status, body })
        })
    }

    fn metrics(&self) -> KubeFuture<'_, String> {
        Box::pin(async move {
            let what = "the API server's /metrics";
            let unavailable = |message: String| KubeError {
                kind: KubeErrorKind::Unavailable,
                object: what.to_owned(),
                message,
            };
            let req = http_1::Request::get("/metrics")
                .header(http_1::header::ACCEPT, "text/plain")
                .body(kube::client::Body::empty())
                .map_err(|e| unavailable(e.to_string()))?;
            let (status, body) = self.send_capped(req, METRICS_CAP, what).await?;
            if !(200..300).contains(&status) {
                return Err(KubeError {
                    kind: if status == 403 {
                        KubeErrorKind::Forbidden
                    } else {
                        KubeErrorKind::Unavailable
                    },
                    object: what.to_owned(),
                    message: format!("HTTP {status}"),
                });
            }
            Ok(body)
        })
    }

    fn served_versions(&self) -> KubeFuture<'_, Vec<String>> {
        Box::pin(async move {
            let what = "discovery";
            let core = self
                .client
                .list_core_api_versions()
                .await
                .map_err(|e| classify(e, what))?;
            let groups = self
                .client
                .list_api_groups()
                .await
                .map_err(|e| classify(e, what))?;
            Ok(core
                .versions
                .into_iter()
                .chain(
                    groups
                        .groups
                        .into_iter()
                        .flat_map(|g| g.versions.into_iter().map(|v| v.group_version)),
                )
                .collect())
        })
    }

    fn apply<'a>(&'a self, manifest: &'a Value, force: bool) -> KubeFuture<'a, Value> {
        Box::pin(async move {
            let r = ObjectRef::of(manifest);
            let api = self.api(&r).await?;
            let mut params = kube::api::PatchParams::apply(FIELD_MANAGER);
            if force {
                params = params.force();
            }
            let out = api
                .patch(&r.name, &params, &kube::api::Patch::Apply(manifest))
                .await
                .map_err(|e| classify(e, &r.to_string()))?;
            serde_json::to_value(out).map_err(|e| KubeError {
                kind: KubeErrorKind::Invalid,
                object: r.to_string(),
                message: e.to_string(),
            })
        })
    }

    fn list<'a>(
        &'a self,
        api_version: &'a str,
        kind: &'a str,
        namespace: Option<&'a str>,
        selector: &'a str,
    ) -> KubeFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (ar, namespaced) = match self.resource(api_version, kind).await {
                Ok(r) => r,
                Err(e) if e.kind == KubeErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            // No namespace: a cluster-scoped kind, or a namespaced one in every namespace.
            let api: kube::Api<kube::core::DynamicObject> = match namespace {
                Some(ns) if namespaced => kube::Api::namespaced_with(self.client.clone(), ns, &ar),
                Some(_) => {
                    return Err(KubeError {
                        kind: KubeErrorKind::Invalid,
                        object: kind.to_owned(),
                        message: "the kind is cluster-scoped but a namespace was named".into(),
                    });
                }
                None => kube::Api::all_with(self.client.clone(), &ar),
            };
            let mut params = kube::api::ListParams::default();
            if !selector.is_empty() {
                params = params.labels(selector);
            }
            let list = api
                .list(&params)
                .await
                .map_err(|e| classify(e, &format!("{kind} ({api_version}) list")))?;
            // List items carry no apiVersion or kind of their own.
            list.items
                .into_iter()
                .map(|o| {
                    let mut v = serde_json::to_value(o).map_err(|e| KubeError {
                        kind: KubeErrorKind::Invalid,
                        object: kind.to_owned(),
                        message: e.to_string(),
                    })?;
                    v["apiVersion"] = Value::String(api_version.to_owned());
                    v["kind"] = Value::String(kind.to_owned());
                    Ok(v)
                })
                .collect()
        })
    }

    fn get<'a>(&'a self, object: &'a ObjectRef) -> KubeFuture<'a, Option<Value>> {
        Box::pin(async move {
            let api = match self.api(object).await {
                Ok(a) => a,
                // The kind is gone (its CRD was removed): so is the object.
                Err(e) if e.kind == KubeErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let got = api
                .get_opt(&object.name)
                .await
                .map_err(|e| classify(e, &object.to_string()))?;
            got.map(|o| {
                serde_json::to_value(o).map_err(|e| KubeError {
                    kind: KubeErrorKind::Invalid,
                    object: object.to_string(),
                    message: e.to_string(),
                })
            })
            .transpose()
        })
    }

    fn delete<'a>(&'a self, object: &'a ObjectRef) -> KubeFuture<'a, ()> {
        Box::pin(async move {
            let api = match self.api(object).await {
                Ok(a) => a,
                Err(e) if e.kind == KubeErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            match api
                .delete(&object.name, &kube::api::DeleteParams::foreground())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => match classify(e, &object.to_string()) {
                    e if e.kind == KubeErrorKind::NotFound => Ok(()),
                    e => Err(e),
                },
            }
        })
    }
}
