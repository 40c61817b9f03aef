//! The service proxy subresource (`/api/v1/namespaces/{ns}/services/{[scheme:]name[:port]}/proxy/…`),
//! as the API server serves it: the caller is authenticated first (by the handler, like every
//! request), the Service must exist and name the port, a ready workload must back it (else 503
//! "no endpoints available for service"), and the request goes on without `Authorization`
//! (the API server removes it once it has authenticated the caller) and without hop-by-hop
//! headers; the answer comes back as the service gave it.
//!
//! The stand-in runs no pods: a test names what backs a Service with
//! [`super::KubeWorld::serve_service`], a function of the cluster's objects (so a backend can
//! read, say, the Secret its pods would mount) giving the loopback address that answers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::store::{ApiError, Cluster};

/// What answers for a Service: the loopback address of its "pods", given the cluster's
/// objects (`None`: not ready to answer).
pub type Backend = Arc<dyn Fn(&Cluster) -> Option<SocketAddr> + Send + Sync>;

/// A parsed proxy path.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Service name.
    pub service: &'a str,
    /// Port name or number (`None`: the only port).
    pub port: Option<&'a str>,
    /// The path on the service (starts with `/`).
    pub rest: String,
}

/// Parses `/api/v1/namespaces/{ns}/services/{id}/proxy[/rest]` (pure).
pub fn parse(path: &str) -> Option<Target<'_>> {
    let p = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, p) = p.split_once('/')?;
    let p = p.strip_prefix("services/")?;
    let (id, p) = p.split_once('/')?;
    let rest = p.strip_prefix("proxy")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let parts: Vec<&str> = id.split(':').collect();
    let (service, port) = match parts.as_slice() {
        [name] => (*name, None),
        [scheme, name, port] if *scheme == "http" || scheme.is_empty() => (*name, Some(*port)),
        [name, port] => (*name, Some(*port)),
        _ => return None,
    };
    Some(Target {
        namespace: ns,
        service,
        port: port.filter(|p| !p.is_empty()),
        rest: if rest.is_empty() {
            "/".into()
        } else {
            rest.to_owned()
        },
    })
}

/// Whether a Deployment in the namespace with pods matching `selector` has an available
/// replica (the Service has endpoints).
fn has_endpoints(c: &Cluster, ns: &str, selector: &Value) -> bool {
    let Some(t) = c.find("apps", "deployments") else {
        return false;
    };
    let Ok(list) = c.list(&t, Some(ns), None, None) else {
        return false;
    };
    let Some(want) = selector.as_object() else {
        return false;
    };
    list["items"].as_array().into_iter().flatten().any(|d| {
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        want.iter().all(|(k, v)| &labels[k] == v)
            && d["status"]["availableReplicas"].as_i64().unwrap_or(0) > 0
    })
}

/// Where the request goes, decided under the world's lock.
pub fn resolve(
    c: &mut Cluster,
    t: &Target<'_>,
    backend: Option<&Backend>,
) -> Result<SocketAddr, ApiError> {
    let services = c.find("", "services").expect("built in");
    let svc = c.get(&services, t.namespace, t.service)?;
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let port_ok = match t.port {
        None => ports.len() == 1,
        Some(p) => ports
            .iter()
            .any(|x| x["name"] == p || x["port"].as_i64().is_some_and(|n| n.to_string() == p)),
    };
    let unavailable = || {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for service \"{}\"", t.service),
        )
    };
    if !port_ok || !has_endpoints(c, t.namespace, &svc["spec"]["selector"]) {
        return Err(unavailable());
    }
    backend.and_then(|b| b(c)).ok_or_else(unavailable)
}

/// Headers that never cross a proxy (RFC 9110 §7.6.1), and the caller's credential for the
/// API server.
fn forwarded(name: &header::HeaderName) -> bool {
    ![
        header::AUTHORIZATION,
        header::CONNECTION,
        header::HOST,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ]
    .contains(name)
        && name.as_str() != "keep-alive"
}

/// Sends the request on to `addr` and gives back the service's answer.
pub async fn forward(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Body,
    >,
    addr: SocketAddr,
    method: Method,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pq = match query {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let Ok(uri) = format!("http://{addr}{pq}").parse::<Uri>() else {
        return (StatusCode::BAD_GATEWAY, "bad proxy path").into_response();
    };
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers.iter().filter(|(k, _)| forwarded(k)) {
        req = req.header(k, v);
    }
    let Ok(req) = req.body(Body::from(body)) else {
        return (StatusCode::BAD_GATEWAY, "bad request").into_response();
    };
    match client.request(req).await {
        Ok(resp) => {
            let (p, b) = resp.into_parts();
            Response::from_parts(p, Body::new(b))
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("error trying to reach service: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_name_namespace_service_port_and_the_rest() {
        let t = parse("/api/v1/namespaces/ns/services/http:svc:web/proxy/v1/x").unwrap();
        assert_eq!(
            (t.namespace, t.service, t.port, t.rest.as_str()),
            ("ns", "svc", Some("web"), "/v1/x")
        );
        let t = parse("/api/v1/namespaces/ns/services/svc/proxy").unwrap();
        assert_eq!((t.service, t.port, t.rest.as_str()), ("svc", None, "/"));
        let t = parse("/api/v1/namespaces/ns/services/svc:8080/proxy/").unwrap();
        assert_eq!(t.port, Some("8080"));
        assert!(parse("/api/v1/namespaces/ns/services/svc").is_none());
        assert!(parse("/api/v1/namespaces/ns/services/svc/proxyx").is_none());
        assert!(parse("/api/v1/namespaces/ns/services/https:svc:web/proxy/").is_none());
        assert!(!forwarded(&header::AUTHORIZATION));
        assert!(forwarded(&header::HeaderName::from_static("x-quota-token")));
    }
}
