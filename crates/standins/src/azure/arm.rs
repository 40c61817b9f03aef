//! The Azure Resource Manager resources an AKS install touches, as the ARM REST references
//! describe them (`docs/azure-standin.md` lists the documents): subscriptions, resource groups,
//! resource providers, virtual network subnets, compute usages, AKS Kubernetes versions,
//! `Microsoft.Authorization/permissions`, `managedClusters` (create-or-update PUT, GET,
//! `listClusterUserCredential`) and `agentPools`, and the asynchronous-operation status
//! resource a create answers with (`Azure-AsyncOperation`, `Retry-After`).
//!
//! A PUT is create-or-update, as on ARM; `If-None-Match: *` makes it create-only (412
//! `PreconditionFailed` when the resource exists). What a PUT sends is kept and described back,
//! with ARM's read-only fields (`id`, `name`, `type`, `provisioningState`, `fqdn`) added.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::ArmError;
use crate::world::{ApiEndpoint, Cluster, Operation, Phase, Pool, Target, World, now_epoch};

/// What a request is: the action ARM authorizes it by, the scope it acts on, and the route.
pub(crate) struct Route {
    pub action: String,
    pub scope: String,
    pub kind: Kind,
}

pub(crate) enum Kind {
    Subscription,
    Group(String),
    Provider(String),
    Usages,
    Versions,
    Operation(String),
    Permissions,
    Subnet,
    Cluster(String, String),
    Credentials(String),
    Pool(String, String, String),
}

/// Routes `method` `path` (ARM paths are case-insensitive; names keep their case).
pub(crate) fn route(method: &Method, path: &str, sub: &str) -> Option<Route> {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let low: Vec<String> = seg.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = low.iter().map(String::as_str).collect();
    let verb = |read: &str, write: &str| {
        if *method == Method::PUT {
            write.to_owned()
        } else {
            read.to_owned()
        }
    };
    if let Some(i) = l
        .windows(3)
        .position(|w| w == ["providers", "microsoft.authorization", "permissions"])
    {
        return Some(Route {
            action: "Microsoft.Authorization/permissions/read".into(),
            scope: format!("/{}", seg[..i].join("/")),
            kind: Kind::Permissions,
        });
    }
    if l.len() < 2 || l[0] != "subscriptions" || !seg[1].eq_ignore_ascii_case(sub) {
        return None;
    }
    let s = format!("/subscriptions/{}", seg[1]);
    let r = |action: &str, scope: String, kind: Kind| {
        Some(Route {
            action: action.to_owned(),
            scope,
            kind,
        })
    };
    match &l[2..] {
        [] => r(
            "Microsoft.Resources/subscriptions/read",
            s,
            Kind::Subscription,
        ),
        ["resourcegroups", _] => r(
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            format!("{s}/resourceGroups/{}", seg[3]),
            Kind::Group(seg[3].to_owned()),
        ),
        ["providers", _] => r(
            "Microsoft.Resources/subscriptions/providers/read",
            s,
            Kind::Provider(seg[3].to_owned()),
        ),
        ["providers", "microsoft.compute", "locations", _, "usages"] => {
            r("Microsoft.Compute/locations/usages/read", s, Kind::Usages)
        }
        [
            "providers",
            "microsoft.containerservice",
            "locations",
            _,
            "kubernetesversions",
        ] => r(
            "Microsoft.ContainerService/locations/kubernetesVersions/read",
            s,
            Kind::Versions,
        ),
        [
            "providers",
            "microsoft.containerservice",
            "locations",
            _,
            "operations",
            _,
        ] => r(
            "Microsoft.ContainerService/locations/operations/read",
            s,
            Kind::Operation(seg[7].to_owned()),
        ),
        [
            "resourcegroups",
            _,
            "providers",
            "microsoft.network",
            "virtualnetworks",
            _,
            "subnets",
            _,
        ] => r(
            "Microsoft.Network/virtualNetworks/subnets/read",
            format!("/{}", seg.join("/")),
            Kind::Subnet,
        ),
        [
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerservice",
            "managedclusters",
            _,
        ] => Some(Route {
            action: verb(
                "Microsoft.ContainerService/managedClusters/read",
                "Microsoft.ContainerService/managedClusters/write",
            ),
            scope: format!("/{}", seg.join("/")),
            kind: Kind::Cluster(seg[3].to_owned(), seg[7].to_owned()),
        }),
        [
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerservice",
            "managedclusters",
            _,
            "listclusterusercredential",
        ] => r(
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            format!("/{}", seg[..8].join("/")),
            Kind::Credentials(seg[7].to_owned()),
        ),
        [
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerservice",
            "managedclusters",
            _,
            "agentpools",
            _,
        ] => Some(Route {
            action: verb(
                "Microsoft.ContainerService/managedClusters/agentPools/read",
                "Microsoft.ContainerService/managedClusters/agentPools/write",
            ),
            scope: format!("/{}", seg.join("/")),
            kind: Kind::Pool(seg[3].to_owned(), seg[7].to_owned(), seg[9].to_owned()),
        }),
        _ => None,
    }
}

fn not_found(code: &'static str, what: String) -> ArmError {
    ArmError::new(404, code, what)
}

fn cluster_id(w: &World, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}",
        w.account
    )
}

fn state_of(phase: Phase) -> &'static str {
    match phase {
        Phase::Creating => "Creating",
        Phase::Ready => "Succeeded",
        Phase::Failed => "Failed",
        Phase::Deleting => "Deleting",
    }
}

/// Answers a read or write the caller is allowed.
pub(crate) fn answer(
    w: &mut World,
    (base, path, query): (&str, &str, &str),
    method: &Method,
    headers: &HeaderMap,
    route: Route,
    body: &[u8],
) -> Result<Response, ArmError> {
    let ok = |v: Value| Ok((StatusCode::OK, axum::Json(v)).into_response());
    match route.kind {
        Kind::Subscription => ok(json!({
            "id": format!("/subscriptions/{}", w.account),
            "subscriptionId": w.account,
            "tenantId": w.tenant,
            "displayName": "stand-in subscription",
            "state": w.account_state,
        })),
        Kind::Group(g) => match w
            .resource_groups
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&g))
        {
            Some((name, location)) => ok(json!({
                "id": format!("/subscriptions/{}/resourceGroups/{name}", w.account),
                "name": name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location,
                "properties": {"provisioningState": "Succeeded"},
            })),
            None => Err(not_found(
                "ResourceGroupNotFound",
                format!("Resource group '{g}' could not be found."),
            )),
        },
        Kind::Provider(ns) => {
            let registered = w
                .services
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&ns))
                .map(|(_, on)| *on);
            match registered {
                Some(on) => ok(json!({
                    "id": format!("/subscriptions/{}/providers/{ns}", w.account),
                    "namespace": ns,
                    "registrationState": if on { "Registered" } else { "NotRegistered" },
                })),
                None => Err(ArmError::new(
                    404,
                    "InvalidResourceNamespace",
                    format!("The resource namespace '{ns}' is invalid."),
                )),
            }
        }
        Kind::Usages => ok(json!({"value": w.quotas.iter().map(|(code, q)| json!({
            "name": {"value": code, "localizedValue": q.name},
            "currentValue": q.usage as i64,
            "limit": q.limit as i64,
            "unit": "Count",
        })).collect::<Vec<_>>()})),
        Kind::Versions => ok(json!({"values": w.versions.iter().map(|v| json!({
            "version": v,
            "isPreview": false,
            "patchVersions": {format!("{v}.1"): {"upgrades": []}},
        })).collect::<Vec<_>>()})),
        Kind::Operation(id) => operation(w, &id),
        Kind::Permissions => ok(page(w, permissions(w), (base, path, query))),
        Kind::Subnet => {
            let id = route.scope;
            match w.subnets.iter().find(|s| s.id.eq_ignore_ascii_case(&id)) {
                Some(s) => {
                    let prefix: u32 = s
                        .cidr
                        .rsplit('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(24);
                    let size = 1u64 << (32 - prefix.min(32));
                    let used = size.saturating_sub(5).saturating_sub(s.free);
                    let configs: Vec<Value> = (0..used.min(4096))
                        .map(|i| json!({"id": format!("{id}/ipConfigurations/used{i}")}))
                        .collect();
                    ok(json!({
                        "id": s.id,
                        "name": s.id.rsplit('/').next(),
                        "type": "Microsoft.Network/virtualNetworks/subnets",
                        "properties": {
                            "addressPrefix": s.cidr,
                            "provisioningState": "Succeeded",
                            "ipConfigurations": configs,
                        },
                    }))
                }
                None => Err(not_found("NotFound", format!("Resource {id} not found."))),
            }
        }
        Kind::Cluster(group, name) if *method == Method::PUT => {
            put_cluster(w, base, headers, &group, &name, body)
        }
        Kind::Cluster(group, name) => match w.clusters.get(&name) {
            Some(c) => ok(cluster_json(w, &group, c)),
            None => Err(not_found(
                "ResourceNotFound",
                format!(
                    "The Resource 'Microsoft.ContainerService/managedClusters/{name}' under resource group '{group}' was not found."
                ),
            )),
        },
        Kind::Credentials(name) => match w.clusters.get(&name) {
            Some(c) if w.cluster_phase(c) == Phase::Ready => {
                let kubeconfig = format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: https://{}:443\n    certificate-authority-data: {}\nusers:\n- name: clusterUser_{name}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n",
                    fqdn(&name),
                    base64::engine::general_purpose::STANDARD.encode(STAND_IN_CLUSTER_CA)
                );
                ok(json!({"kubeconfigs": [{
                    "name": "clusterUser",
                    "value": base64::engine::general_purpose::STANDARD.encode(kubeconfig),
                }]}))
            }
            Some(_) => Err(ArmError::new(
                409,
                "OperationNotAllowed",
                "The cluster is not in a state to list credentials.".into(),
            )),
            None => Err(not_found(
                "ResourceNotFound",
                format!("managed cluster {name} not found"),
            )),
        },
        Kind::Pool(group, cluster, name) if *method == Method::PUT => {
            put_pool(w, base, headers, &group, &cluster, &name, body)
        }
        Kind::Pool(group, cluster, name) => match w.pools.get(&(cluster.clone(), name.clone())) {
            Some(p) => ok(pool_json(w, &group, p)),
            None => Err(not_found(
                "NotFound",
                format!("Agent pool '{name}' of managed cluster '{cluster}' was not found."),
            )),
        },
    }
}

/// The CA of every stand-in cluster's API server (no server ever answers at its address).
const STAND_IN_CLUSTER_CA: &str = "-----BEGIN CERTIFICATE-----\nstand-in cluster CA (no API server listens)\n-----END CERTIFICATE-----\n";

/// `.invalid` never resolves (RFC 2606): nothing can ever connect to a stand-in cluster.
fn fqdn(name: &str) -> String {
    format!("{name}-dns.hcp.stand-in.invalid")
}

/// The caller's permissions: one entry per allow, with every deny as a `notActions` entry.
fn permissions(w: &World) -> Value {
    use crate::policy::Effect;
    let denied: Vec<&String> = w
        .policy
        .statements
        .iter()
        .filter(|s| s.effect == Effect::Deny)
        .flat_map(|s| &s.actions)
        .collect();
    let value: Vec<Value> = w
        .policy
        .statements
        .iter()
        .filter(|s| s.effect == Effect::Allow)
        .map(|s| {
            json!({
                "actions": s.actions,
                "notActions": denied,
                "dataActions": [],
                "notDataActions": [],
            })
        })
        .collect();
    json!({"value": value})
}

/// A list answer cut into pages of `World::page_size` items, each but the last with a
/// `nextLink` (`$skiptoken`), as ARM pages long lists.
fn page(w: &World, list: Value, (base, path, query): (&str, &str, &str)) -> Value {
    let Some(size) = w.page_size.filter(|n| *n > 0) else {
        return list;
    };
    let skip: usize = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "$skiptoken")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let all = list["value"].as_array().cloned().unwrap_or_default();
    let value: Vec<Value> = all.iter().skip(skip).take(size).cloned().collect();
    let mut out = json!({"value": value});
    if skip + size < all.len() {
        let api: String = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        out["nextLink"] = json!(format!(
            "{base}{path}?api-version={api}&%24skiptoken={}",
            skip + size
        ));
    }
    out
}

fn operation(w: &World, id: &str) -> Result<Response, ArmError> {
    let op = w
        .operations
        .get(id)
        .ok_or_else(|| not_found("NotFound", format!("operation {id} not found")))?;
    let (phase, fail) = match &op.target {
        Target::Cluster(c) => match w.clusters.get(c) {
            Some(c) => (w.cluster_phase(c), c.fail.clone()),
            None => (
                Phase::Failed,
                Some("ResourceNotFound: the cluster is gone".into()),
            ),
        },
        Target::Pool(c, p) => match w.pools.get(&(c.clone(), p.clone())) {
            Some(p) => (w.pool_phase(p), p.fail.clone()),
            None => (
                Phase::Failed,
                Some("ResourceNotFound: the pool is gone".into()),
            ),
        },
    };
    let mut v = json!({"id": id, "name": id, "startTime": op.started_epoch});
    let retry = w.retry_after.to_string();
    match phase {
        Phase::Creating | Phase::Deleting => {
            v["status"] = json!("InProgress");
            return Ok((
                StatusCode::OK,
                [(header::RETRY_AFTER, retry)],
                axum::Json(v),
            )
                .into_response());
        }
        Phase::Ready => v["status"] = json!("Succeeded"),
        Phase::Failed => {
            let why = fail.unwrap_or_default();
            let (code, message) = match why.split_once(": ") {
                Some((c, m)) if !c.is_empty() && c.chars().all(|x| x.is_ascii_alphanumeric()) => {
                    (c.to_owned(), m.to_owned())
                }
                _ => ("InternalOperationError".to_owned(), why),
            };
            v["status"] = json!("Failed");
            v["error"] = json!({"code": code, "message": message});
        }
    }
    Ok((StatusCode::OK, axum::Json(v)).into_response())
}

fn tags_of(v: &Value) -> BTreeMap<String, String> {
    v.get("tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn vcpu_of(size: &str) -> u64 {
    let digits: String = size
        .trim_start_matches("Standard_")
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(2)
}

fn pool_vcpu(p: &Value) -> u64 {
    let props = p.get("properties").unwrap_or(p);
    let n = props
        .get("maxCount")
        .or_else(|| props.get("count"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    n * vcpu_of(props.get("vmSize").and_then(Value::as_str).unwrap_or(""))
}

fn check_quota(w: &World, vcpu: u64) -> Result<(), ArmError> {
    if let Some(q) = w.quotas.get("cores")
        && q.usage + vcpu as f64 > q.limit
    {
        return Err(ArmError::new(
            400,
            "QuotaExceeded",
            format!(
                "Operation could not be completed as it results in exceeding approved Total Regional Cores quota. Location: {}, Current Limit: {}, Current Usage: {}, Additional Required: {vcpu}",
                w.region, q.limit, q.usage
            ),
        ));
    }
    Ok(())
}

fn parse(body: &[u8]) -> Result<Value, ArmError> {
    serde_json::from_slice(body).map_err(|e| {
        ArmError::new(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid: {e}"),
        )
    })
}

fn create_only(headers: &HeaderMap) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "*")
}

fn accepted(w: &mut World, base: &str, target: Target, body: Value) -> Response {
    let id = format!("00000000-0000-4000-8000-{:012}", w.operations.len() + 1);
    w.operations.insert(
        id.clone(),
        Operation {
            target,
            started_epoch: now_epoch(),
        },
    );
    let url = format!(
        "{base}/subscriptions/{}/providers/Microsoft.ContainerService/locations/{}/operations/{id}?api-version=2025-10-01",
        w.account, w.region
    );
    (
        StatusCode::CREATED,
        [
            ("azure-asyncoperation", url),
            (header::RETRY_AFTER.as_str(), w.retry_after.to_string()),
        ],
        axum::Json(body),
    )
        .into_response()
}

fn put_cluster(
    w: &mut World,
    base: &str,
    headers: &HeaderMap,
    group: &str,
    name: &str,
    body: &[u8],
) -> Result<Response, ArmError> {
    if let Some(c) = w.ambush.take_if(|c| c.name == name) {
        w.clusters.insert(c.name.clone(), c);
    }
    let doc = parse(body)?;
    let exists = w.clusters.contains_key(name);
    if exists && create_only(headers) {
        return Err(ArmError::new(
            412,
            "PreconditionFailed",
            format!("The resource '{name}' already exists and If-None-Match: * was sent."),
        ));
    }
    let props = doc.get("properties").cloned().unwrap_or(json!({}));
    let profiles = props
        .get("agentPoolProfiles")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !exists && profiles.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidParameter",
            "A managed cluster needs at least one agent pool of mode System.".into(),
        ));
    }
    if !exists {
        check_quota(w, profiles.iter().map(pool_vcpu).sum())?;
    }
    let api = props
        .get("apiServerAccessProfile")
        .cloned()
        .unwrap_or(json!({}));
    let private = api.get("enablePrivateCluster").and_then(Value::as_bool) == Some(true);
    let cidrs: Vec<String> = api
        .get("authorizedIPRanges")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let subnets: Vec<String> = profiles
        .iter()
        .filter_map(|p| {
            p.get("vnetSubnetID")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let now = Instant::now();
    let cluster = Cluster {
        name: name.to_owned(),
        version: props
            .get("kubernetesVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        api: ApiEndpoint {
            private,
            public: !private,
            public_cidrs: cidrs,
        },
        subnets,
        identity: None,
        tags: tags_of(&doc),
        created: now,
        created_epoch: now_epoch(),
        fail: w.fail_next_create.take(),
        deleting: false,
    };
    let mut stored = doc.clone();
    if let Some(p) = stored.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("agentPoolProfiles");
    }
    w.documents
        .insert(cluster_id(w, group, name).to_ascii_lowercase(), stored);
    let (created, created_epoch, fail) = match w.clusters.get(name) {
        Some(old) => (old.created, old.created_epoch, old.fail.clone()),
        None => (cluster.created, cluster.created_epoch, cluster.fail.clone()),
    };
    w.clusters.insert(
        name.to_owned(),
        Cluster {
            created,
            created_epoch,
            fail,
            ..cluster
        },
    );
    for p in &profiles {
        let pool_name = p.get("name").and_then(Value::as_str).unwrap_or("nodepool1");
        store_pool(w, group, name, pool_name, json!({"properties": p}));
    }
    let body = cluster_json(w, group, &w.clusters[name]);
    if exists {
        return Ok((StatusCode::OK, axum::Json(body)).into_response());
    }
    Ok(accepted(w, base, Target::Cluster(name.to_owned()), body))
}

fn store_pool(w: &mut World, group: &str, cluster: &str, name: &str, doc: Value) {
    let props = doc.get("properties").cloned().unwrap_or(json!({}));
    let get = |k: &str| props.get(k).and_then(Value::as_i64).unwrap_or(0);
    let now = Instant::now();
    let labels = props
        .get("nodeLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let key = (cluster.to_owned(), name.to_owned());
    let (created, created_epoch, fail) = match w.pools.get(&key) {
        Some(p) => (p.created, p.created_epoch, p.fail.clone()),
        None => (now, now_epoch(), None),
    };
    w.pools.insert(
        key,
        Pool {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            identity: None,
            subnets: props
                .get("vnetSubnetID")
                .and_then(Value::as_str)
                .map(|s| vec![s.to_owned()])
                .unwrap_or_default(),
            shape: props
                .get("vmSize")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            scaling: (get("minCount"), get("count"), get("maxCount")),
            image: props
                .get("osSKU")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            labels,
            tags: props
                .get("tags")
                .map(|t| tags_of(&json!({"tags": t})))
                .unwrap_or_default(),
            created,
            created_epoch,
            fail,
        },
    );
    let mut props = props;
    if let Some(p) = props.as_object_mut() {
        p.remove("name");
    }
    w.documents.insert(
        format!("{}/agentPools/{name}", cluster_id(w, group, cluster)).to_ascii_lowercase(),
        json!({"properties": props}),
    );
}

#[allow(clippy::too_many_arguments)]
fn put_pool(
    w: &mut World,
    base: &str,
    headers: &HeaderMap,
    group: &str,
    cluster: &str,
    name: &str,
    body: &[u8],
) -> Result<Response, ArmError> {
    let doc = parse(body)?;
    let Some(c) = w.clusters.get(cluster) else {
        return Err(not_found(
            "ResourceNotFound",
            format!("managed cluster {cluster} not found"),
        ));
    };
    if w.cluster_phase(c) != Phase::Ready {
        return Err(ArmError::new(
            409,
            "OperationNotAllowed",
            format!(
                "Managed cluster {cluster} is in state {}; agent pools can be added once it has succeeded.",
                state_of(w.cluster_phase(c))
            ),
        ));
    }
    let key = (cluster.to_owned(), name.to_owned());
    let exists = w.pools.contains_key(&key);
    if exists && create_only(headers) {
        return Err(ArmError::new(
            412,
            "PreconditionFailed",
            format!("Agent pool '{name}' already exists and If-None-Match: * was sent."),
        ));
    }
    if !exists {
        check_quota(w, pool_vcpu(&doc))?;
    }
    store_pool(w, group, cluster, name, doc);
    let body = pool_json(w, group, &w.pools[&key]);
    if exists {
        return Ok((StatusCode::OK, axum::Json(body)).into_response());
    }
    Ok(accepted(
        w,
        base,
        Target::Pool(cluster.to_owned(), name.to_owned()),
        body,
    ))
}

fn pool_json(w: &World, group: &str, p: &Pool) -> Value {
    let id = format!("{}/agentPools/{}", cluster_id(w, group, &p.cluster), p.name);
    let mut v = w
        .documents
        .get(&id.to_ascii_lowercase())
        .cloned()
        .unwrap_or_else(|| json!({"properties": {}}));
    v["id"] = json!(id);
    v["name"] = json!(p.name);
    v["type"] = json!("Microsoft.ContainerService/managedClusters/agentPools");
    v["properties"]["provisioningState"] = json!(state_of(w.pool_phase(p)));
    v
}

fn cluster_json(w: &World, group: &str, c: &Cluster) -> Value {
    let id = cluster_id(w, group, &c.name);
    let mut v = w
        .documents
        .get(&id.to_ascii_lowercase())
        .cloned()
        .unwrap_or_else(|| {
            // A cluster made outside this adapter (a test's foreign cluster).
            json!({
                "location": w.region,
                "tags": c.tags,
                "properties": {"kubernetesVersion": c.version, "dnsPrefix": c.name},
            })
        });
    v["id"] = json!(id);
    v["name"] = json!(c.name);
    v["type"] = json!("Microsoft.ContainerService/ManagedClusters");
    let phase = w.cluster_phase(c);
    let props = &mut v["properties"];
    props["provisioningState"] = json!(state_of(phase));
    props["powerState"] = json!({"code": "Running"});
    let key = if c.api.private { "privateFQDN" } else { "fqdn" };
    props[key] = json!(fqdn(&c.name));
    let pools: Vec<Value> = w
        .pools
        .values()
        .filter(|p| p.cluster == c.name)
        .map(|p| {
            let mut pv = pool_json(w, group, p)["properties"].clone();
            pv["name"] = json!(p.name);
            pv
        })
        .collect();
    props["agentPoolProfiles"] = json!(pools);
    v
}
