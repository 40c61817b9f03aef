//! Managed clusters and agent pools in the ARM adapter: create-or-update PUTs (create-only
//! with `If-None-Match: *`), the asynchronous operation a create answers with, the `cores`
//! quota a create counts against, and what a GET describes back (what was PUT, with ARM's
//! read-only fields). See [`super::arm`] for the routes and `docs/azure-standin.md` for the
//! documents followed.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ArmError, not_found, start_operation};
use crate::world::{ApiEndpoint, Cluster, Phase, Pool, Target, World, now_epoch};

/// The ARM id of a managed cluster.
pub(crate) fn cluster_id(w: &World, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}",
        w.account
    )
}

/// `provisioningState` of a cluster or pool in `phase`.
pub(crate) fn state_of(phase: Phase) -> &'static str {
    match phase {
        Phase::Creating => "Creating",
        Phase::Ready => "Succeeded",
        Phase::Failed => "Failed",
        Phase::Deleting => "Deleting",
        Phase::Updating => "Upgrading",
    }
}

/// `.invalid` never resolves (RFC 2606): nothing can ever connect to a stand-in cluster.
pub(crate) fn fqdn(name: &str) -> String {
    format!("{name}-dns.hcp.stand-in.invalid")
}

pub(crate) fn operation(w: &World, id: &str) -> Result<Response, ArmError> {
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
        // A deletion is done once its target is gone.
        Target::DeleteCluster(c) => (
            if w.clusters.contains_key(c) {
                Phase::Deleting
            } else {
                Phase::Ready
            },
            None,
        ),
        Target::DeletePool(c, p) => (
            if w.pools.contains_key(&(c.clone(), p.clone())) {
                Phase::Deleting
            } else {
                Phase::Ready
            },
            None,
        ),
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
        Phase::Creating | Phase::Deleting | Phase::Updating => {
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
    let headers = start_operation(w, base, target);
    (StatusCode::CREATED, headers, axum::Json(body)).into_response()
}

pub(crate) fn put_cluster(
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
    let upgraded = exists && upgrade_cluster(w, name, &props, &profiles)?;
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
        updating: None,
    };
    let mut stored = doc.clone();
    if let Some(p) = stored.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("agentPoolProfiles");
    }
    w.documents
        .insert(cluster_id(w, group, name).to_ascii_lowercase(), stored);
    let (created, created_epoch, fail, updating) = match w.clusters.get(name) {
        Some(old) => (
            old.created,
            old.created_epoch,
            old.fail.clone(),
            old.updating,
        ),
        None => (
            cluster.created,
            cluster.created_epoch,
            cluster.fail.clone(),
            None,
        ),
    };
    w.clusters.insert(
        name.to_owned(),
        Cluster {
            created,
            created_epoch,
            fail,
            updating,
            ..cluster
        },
    );
    for p in &profiles {
        let pool_name = p.get("name").and_then(Value::as_str).unwrap_or("nodepool1");
        store_pool(w, group, name, pool_name, json!({"properties": p}));
    }
    if !exists {
        super::teardown::make_node_group(w, group, name);
    }
    let body = cluster_json(w, group, &w.clusters[name]);
    if upgraded {
        let headers = start_operation(w, base, Target::Cluster(name.to_owned()));
        return Ok((StatusCode::OK, headers, axum::Json(body)).into_response());
    }
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
    let (created, created_epoch, fail, version, updating) = match w.pools.get(&key) {
        Some(p) => (
            p.created,
            p.created_epoch,
            p.fail.clone(),
            p.version.clone(),
            p.updating,
        ),
        None => (
            now,
            now_epoch(),
            None,
            props
                .get("orchestratorVersion")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| w.clusters.get(cluster).map(|c| c.version.clone()))
                .unwrap_or_default(),
            None,
        ),
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
            version,
            updating,
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
pub(crate) fn put_pool(
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
    let asked = doc["properties"]["orchestratorVersion"].as_str();
    let upgraded = match (asked, w.pools.get(&key)) {
        (Some(v), Some(p)) if v != p.version => {
            let v = v.to_owned();
            w.upgrade_pool(cluster, name, &v).map_err(refused)?;
            true
        }
        _ => false,
    };
    store_pool(w, group, cluster, name, doc);
    let body = pool_json(w, group, &w.pools[&key]);
    if upgraded {
        let headers = start_operation(w, base, Target::Pool(cluster.to_owned(), name.to_owned()));
        return Ok((StatusCode::OK, headers, axum::Json(body)).into_response());
    }
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

pub(crate) fn pool_json(w: &World, group: &str, p: &Pool) -> Value {
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
    v["properties"]["orchestratorVersion"] = json!(p.version);
    v["properties"]["currentOrchestratorVersion"] = json!(p.version);
    v
}

/// A PUT of an existing cluster that names another `kubernetesVersion` upgrades its control
/// plane (the world's rules); every agent pool profile it carries must keep its pool's version
/// (`orchestratorVersion`), since this stand-in upgrades pools only through their own PUT.
/// Returns whether an upgrade began.
fn upgrade_cluster(
    w: &mut World,
    name: &str,
    props: &Value,
    profiles: &[Value],
) -> Result<bool, ArmError> {
    for p in profiles {
        let pool = p.get("name").and_then(Value::as_str).unwrap_or("nodepool1");
        if let (Some(v), Some(have)) = (
            p.get("orchestratorVersion").and_then(Value::as_str),
            w.pools.get(&(name.to_owned(), pool.to_owned())),
        ) && v != have.version
        {
            return Err(ArmError::new(
                400,
                "OperationNotAllowed",
                format!(
                    "agent pool {pool} runs {}; this stand-in upgrades an agent pool only through its own PUT",
                    have.version
                ),
            ));
        }
    }
    let want = props
        .get("kubernetesVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if want.is_empty() || w.clusters[name].version == want {
        return Ok(false);
    }
    w.upgrade_cluster(name, want).map_err(refused)?;
    Ok(true)
}

/// A refused upgrade as ARM answers it.
fn refused(r: crate::upgrade::Refused) -> ArmError {
    use crate::upgrade::Refused;
    match r {
        Refused::NotFound(what) => not_found("ResourceNotFound", format!("{what} not found")),
        Refused::Busy(why) => ArmError::new(409, "OperationNotAllowed", why),
        Refused::Invalid(why) => ArmError::new(400, "InvalidParameter", why),
    }
}

pub(crate) fn cluster_json(w: &World, group: &str, c: &Cluster) -> Value {
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
    if let Some(g) = super::teardown::node_group_of(w, &c.name) {
        props["nodeResourceGroup"] = json!(g);
    }
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
