//! The Azure wire adapter: Azure Resource Manager and the Microsoft identity platform's token
//! endpoint over the neutral [`World`], served over HTTPS (azure_core refuses to send a bearer
//! token over plain http, and azure_identity an authority that is not https), so the real
//! azure_identity credentials and any ARM client talk to it through an endpoint and an
//! authority host, trusting the stand-in's own test CA ([`TestCa`]) through the standard
//! trust-store settings.
//!
//! Every ARM request needs an `api-version` and a bearer token this stand-in issued and that
//! has not expired (401 `InvalidAuthenticationToken` / `ExpiredAuthenticationToken`), and is
//! authorized against the world's policy with the action ARM names it by (403
//! `AuthorizationFailed` naming the action and scope). Throttling answers 429 with
//! `Retry-After`. Errors are ARM's `{"error": {"code", "message"}}`.

mod arm;
mod clusters;
mod teardown;
mod token;
mod vpn;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::policy::Decision;
use crate::world::{App, Call, Quota, Subnet, World};

/// The largest request body the adapter reads.
const BODY_LIMIT: usize = 1024 * 1024;

/// The application (client) id of the sample's installer service principal.
pub const INSTALLER_APP: &str = "00000000-0000-4000-8000-00000000a991";
/// Its object id.
pub const INSTALLER_OBJECT: &str = "00000000-0000-4000-8000-00000000b0b0";

/// An ARM error.
pub(crate) struct ArmError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ArmError {
    pub fn new(status: u16, code: &'static str, message: String) -> Self {
        ArmError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message,
        }
    }
}

/// 404 with ARM's error `code` (`ResourceNotFound`, `ResourceGroupNotFound`, …).
pub(crate) fn not_found(code: &'static str, what: String) -> ArmError {
    ArmError::new(404, code, what)
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        (
            self.status,
            [("x-ms-failure-cause", "gateway")],
            axum::Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

/// The subnet resource id of `subnet` in VNet `vnet` of `group`.
pub fn subnet_id(subscription: &str, group: &str, vnet: &str, subnet: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
    )
}

/// A ready Azure subscription in `region`: tenant `tenant`; the installer service principal
/// [`INSTALLER_APP`] with client secret `secret`; resource group `group` in the region; a VNet
/// `digibee-vnet` with subnet `nodes` (10.240.0.0/16); the three resource providers
/// registered; 100 regional vCPUs and 100 of the DSv5 family; current Kubernetes versions;
/// everything allowed; operations asking to be polled again after 1 s.
pub fn sample(subscription: &str, tenant: &str, region: &str, group: &str, secret: &str) -> World {
    let mut w = World::new(subscription, region, INSTALLER_OBJECT);
    w.tenant = tenant.into();
    w.apps.insert(
        INSTALLER_APP.into(),
        App {
            secret: secret.into(),
            secret_expired: false,
            federated: None,
            object_id: INSTALLER_OBJECT.into(),
        },
    );
    w.resource_groups.insert(group.into(), region.into());
    w.subnets = vec![Subnet {
        id: subnet_id(subscription, group, "digibee-vnet", "nodes"),
        network: format!(
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/digibee-vnet"
        ),
        zone: None,
        cidr: "10.240.0.0/16".into(),
        free: 65_000,
    }];
    for ns in [
        "Microsoft.ContainerService",
        "Microsoft.Network",
        "Microsoft.Compute",
    ] {
        w.services.insert(ns.into(), true);
    }
    for (code, name) in [
        ("cores", "Total Regional vCPUs"),
        ("standardDSv5Family", "Standard DSv5 Family vCPUs"),
    ] {
        w.quotas.insert(
            code.into(),
            Quota {
                name: name.into(),
                limit: 100.0,
                usage: 0.0,
            },
        );
    }
    w.versions = ["1.30", "1.31", "1.32", "1.33", "1.34", "1.35"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    w.retry_after = 1;
    w
}

struct Adapter {
    world: Arc<Mutex<World>>,
    started: Instant,
    /// This adapter's own base URL (`https://127.0.0.1:PORT`), for the operation URLs.
    base: String,
}

/// The adapter's router over `world`; `base` is the URL it is reached at.
pub fn router(world: Arc<Mutex<World>>, started: Instant, base: String) -> Router {
    let a = Arc::new(Adapter {
        world,
        started,
        base,
    });
    Router::new().fallback(handle).with_state(a)
}

fn log(w: &mut World, started: Instant, op: &str, throttled: bool) {
    w.calls.push(Call {
        op: op.to_owned(),
        at: started.elapsed(),
        throttled,
    });
}

/// Who a Kubernetes API bearer token is (the cluster's Entra ID integration): a token this
/// stand-in issued for the AKS server application that has not expired.
pub fn kube_user(w: &World, token: &str) -> Option<String> {
    match w.tokens.get(token) {
        Some((principal, exp, aud))
            if aud.starts_with("6dae42f8-4368-4678-94ff-3960e28e3630")
                && (*exp as f64) > crate::world::now_epoch()
                && !w.tokens_expired =>
        {
            Some(principal.clone())
        }
        _ => None,
    }
}

/// The bearer token of an ARM request, if it is one this stand-in issued for ARM:
/// `Ok(object id)`.
fn caller(w: &World, headers: &HeaderMap) -> Result<String, ArmError> {
    caller_for(w, headers, "https://management.azure.com")
}

/// The bearer token of a request, if it is one this stand-in issued for `audience`.
fn caller_for(w: &World, headers: &HeaderMap, audience: &str) -> Result<String, ArmError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ArmError::new(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.".into(),
            )
        })?;
    match w.tokens.get(token) {
        None => Err(ArmError::new(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
        )),
        Some((_, _, aud)) if !aud.starts_with(audience) => Err(ArmError::new(
            401,
            "InvalidAuthenticationToken",
            format!("The access token has been obtained for wrong audience or resource '{aud}'."),
        )),
        Some((_, exp, _)) if (*exp as f64) <= crate::world::now_epoch() || w.tokens_expired => {
            Err(ArmError::new(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.".into(),
            ))
        }
        Some((oid, _, _)) => Ok(oid.clone()),
    }
}

async fn handle(State(a): State<Arc<Adapter>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let mut w = a.world.lock().unwrap_or_else(|p| p.into_inner());
    teardown::purge(&mut w);
    let path = parts.uri.path().to_owned();
    // The token endpoint: POST /{tenant}/oauth2/v2.0/token.
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let [tenant, "oauth2", "v2.0", "token"] = seg.as_slice() {
        log(&mut w, a.started, "login:token", false);
        return token::issue(&mut w, tenant, &body);
    }
    let query = parts.uri.query().unwrap_or("");
    // A managed identity's token endpoint: GET /msi/token (App Service's protocol).
    if seg.as_slice() == ["msi", "token"] {
        log(&mut w, a.started, "login:managed-identity", false);
        return token::managed(&mut w, &parts.headers, query);
    }
    // Key Vault's data plane (a vault's `vaultUri` points here): a bearer token, no api-version
    // routing of ARM.
    if seg.first() == Some(&"keyvault") {
        log(&mut w, a.started, "keyvault:GetSecret", false);
        if let Err(e) = caller_for(&w, &parts.headers, "https://vault.azure.net") {
            return e.into_response();
        }
        return vpn::data_plane(&w, &seg);
    }
    let sub = w.account.clone();
    let Some(route) = arm::route(&parts.method, &path, &sub) else {
        log(&mut w, a.started, "arm:unknown", false);
        return ArmError::new(
            404,
            "InvalidResourceType",
            format!("The resource type could not be found for path {path}."),
        )
        .into_response();
    };
    let op = route.action.clone();
    if let Some(n) = w.throttle.get_mut(&op).filter(|n| **n > 0) {
        *n -= 1;
        log(&mut w, a.started, &op, true);
        let retry = w.retry_after.to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry)],
            axum::Json(json!({"error": {"code": "TooManyRequests", "message": "The request is being throttled."}})),
        )
            .into_response();
    }
    if let Some(n) = w.in_use.get_mut(&op).filter(|n| **n > 0) {
        *n -= 1;
        log(&mut w, a.started, &op, false);
        return ArmError::new(
            400,
            "InUseNetworkSecurityGroupCannotBeDeleted",
            "the resource is in use and cannot be deleted".into(),
        )
        .into_response();
    }
    log(&mut w, a.started, &op, false);
    if !url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "api-version") {
        return ArmError::new(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.".into(),
        )
        .into_response();
    }
    let oid = match caller(&w, &parts.headers) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let mut actions = vec![route.action.clone()];
    if route.action == "Microsoft.ContainerService/managedClusters/write" {
        // Joining the node subnet is authorized on the subnet, as ARM's linked access check does.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
            && v.pointer("/properties/agentPoolProfiles/0/vnetSubnetID")
                .is_some()
        {
            actions.push("Microsoft.Network/virtualNetworks/subnets/join/action".into());
        }
    }
    for action in &actions {
        if w.policy.decide(action, &route.scope, &BTreeMap::new()) != Decision::Allowed {
            return ArmError::new(
                403,
                "AuthorizationFailed",
                format!(
                    "The client '{oid}' with object id '{oid}' does not have authorization to perform action '{action}' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                    route.scope
                ),
            )
            .into_response();
        }
    }
    match arm::answer(
        &mut w,
        (&a.base, &path, query),
        &parts.method,
        &parts.headers,
        route,
        &body,
    ) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A certificate authority made for one stand-in, and the server certificate it signed for
/// `localhost` and 127.0.0.1. Clients trust it as one more root (the demo) or through
/// `SSL_CERT_FILE` (tests of the binary); nothing turns certificate verification off.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server's TLS configuration.
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A new CA and server certificate.
    pub fn new() -> Result<TestCa, String> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let e = |e: rcgen::Error| e.to_string();
        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "realmctl stand-in test CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().map_err(e)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(e)?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        let cert = leaf.signed_by(&key, &issuer).map_err(e)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .map_err(|e| e.to_string())?;
        Ok(TestCa {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        })
    }
}

/// Starts an asynchronous operation on `target`: the `Azure-AsyncOperation` and `Retry-After`
/// headers that answer the request which started it.
pub(crate) fn start_operation(
    w: &mut World,
    base: &str,
    target: crate::world::Target,
) -> [(&'static str, String); 2] {
    let id = format!("00000000-0000-4000-8000-{:012}", w.operations.len() + 1);
    w.operations.insert(
        id.clone(),
        crate::world::Operation {
            target,
            started_epoch: crate::world::now_epoch(),
        },
    );
    let url = format!(
        "{base}/subscriptions/{}/providers/Microsoft.ContainerService/locations/{}/operations/{id}?api-version=2025-10-01",
        w.account, w.region
    );
    [
        ("azure-asyncoperation", url),
        (header::RETRY_AFTER.as_str(), w.retry_after.to_string()),
    ]
}
