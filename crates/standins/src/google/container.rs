//! GKE API v1 in the Google adapter: `clusters.create` (the cluster with its node pools) and
//! `nodePools.create`, each answered with a GKE `Operation` that stays RUNNING until its target
//! is ready (then DONE, or DONE with a google.rpc.Status error), `clusters.get`,
//! `nodePools.get`, `operations.get` and `getServerConfig`. A cluster is described back as it
//! was created, with GKE's output fields (status, current version, endpoint, CA).

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::Method;
use serde_json::{Value, json};

use super::{GoogleError, Route};
use crate::world::rfc3339;
use crate::world::{ApiEndpoint, Cluster, Operation, Phase, Pool, Target, World, now_epoch};

/// A GKE request.
pub(crate) enum Gke {
    CreateCluster(String),
    GetCluster(String, String),
    CreatePool(String, String),
    GetPool(String, String, String),
    Operation(String, String),
    ServerConfig(String),
    DeleteCluster(String, String),
    DeletePool(String, String, String),
    UpdateMaster(String, String),
    UpdatePool(String, String, String),
}

/// Routes a GKE path (`/v1/projects/{p}/locations/{l}/…`).
pub(crate) fn route(method: &Method, seg: &[&str]) -> Option<(Route, Gke)> {
    let ["v1", "projects", p, "locations", l, rest @ ..] = seg else {
        return None;
    };
    let loc = format!("projects/{p}/locations/{l}");
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let delete = *method == Method::DELETE;
    let put = *method == Method::PUT;
    let r = |op, permission, resource: String| Route {
        op,
        permission,
        resource,
        domain: "container.googleapis.com",
    };
    let project = (*p).to_owned();
    Some(match rest {
        ["clusters", c] if delete => (
            r(
                "gke:DeleteCluster",
                Some("container.clusters.delete"),
                format!("{loc}/clusters/{c}"),
            ),
            Gke::DeleteCluster(project, (*c).to_owned()),
        ),
        ["clusters", c, "nodePools", n] if delete => (
            r(
                "gke:DeleteNodePool",
                Some("container.clusters.update"),
                format!("{loc}/clusters/{c}"),
            ),
            Gke::DeletePool(project, (*c).to_owned(), (*n).to_owned()),
        ),
        ["clusters", c] if post && c.ends_with(":updateMaster") => {
            let c = c.trim_end_matches(":updateMaster");
            (
                r(
                    "gke:UpdateMaster",
                    Some("container.clusters.update"),
                    format!("{loc}/clusters/{c}"),
                ),
                Gke::UpdateMaster(project, c.to_owned()),
            )
        }
        ["clusters", c, "nodePools", n] if put => (
            r(
                "gke:UpdateNodePool",
                Some("container.clusters.update"),
                format!("{loc}/clusters/{c}"),
            ),
            Gke::UpdatePool(project, (*c).to_owned(), (*n).to_owned()),
        ),
        ["clusters"] if post => (
            r("gke:CreateCluster", Some("container.clusters.create"), loc),
            Gke::CreateCluster(project),
        ),
        ["clusters", c] if get => (
            r(
                "gke:GetCluster",
                Some("container.clusters.get"),
                format!("{loc}/clusters/{c}"),
            ),
            Gke::GetCluster(project, (*c).to_owned()),
        ),
        ["clusters", c, "nodePools"] if post => (
            r(
                "gke:CreateNodePool",
                Some("container.clusters.update"),
                format!("{loc}/clusters/{c}"),
            ),
            Gke::CreatePool(project, (*c).to_owned()),
        ),
        ["clusters", c, "nodePools", n] if get => (
            r(
                "gke:GetNodePool",
                Some("container.clusters.get"),
                format!("{loc}/clusters/{c}"),
            ),
            Gke::GetPool(project, (*c).to_owned(), (*n).to_owned()),
        ),
        ["operations", o] if get => (
            r(
                "gke:GetOperation",
                Some("container.operations.get"),
                format!("{loc}/operations/{o}"),
            ),
            Gke::Operation(project, (*o).to_owned()),
        ),
        ["serverConfig"] if get => (
            r("gke:GetServerConfig", None, loc),
            Gke::ServerConfig(project),
        ),
        _ => return None,
    })
}

fn status_of(phase: Phase) -> &'static str {
    match phase {
        Phase::Creating => "PROVISIONING",
        Phase::Ready => "RUNNING",
        Phase::Failed => "ERROR",
        Phase::Deleting => "STOPPING",
        Phase::Updating => "RECONCILING",
    }
}

/// The google.rpc.Code number of a canonical name.
fn code_number(name: &str) -> i64 {
    match name {
        "CANCELLED" => 1,
        "INVALID_ARGUMENT" => 3,
        "DEADLINE_EXCEEDED" => 4,
        "NOT_FOUND" => 5,
        "ALREADY_EXISTS" => 6,
        "PERMISSION_DENIED" => 7,
        "RESOURCE_EXHAUSTED" => 8,
        "FAILED_PRECONDITION" => 9,
        "ABORTED" => 10,
        "UNAVAILABLE" => 14,
        _ => 13,
    }
}

/// The newest offered patch of `minor` (`1.31` → `1.31.13-gke.1023000`).
fn patch_of(w: &World, minor: &str) -> String {
    let nums = |v: &str| -> Vec<u64> {
        v.split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap_or(0))
            .collect()
    };
    w.versions
        .iter()
        .filter(|v| v.strip_prefix(minor).is_some_and(|r| r.starts_with('.')))
        .max_by_key(|v| nums(v))
        .cloned()
        .unwrap_or_else(|| minor.to_owned())
}

fn vcpu_of(machine: &str) -> u64 {
    machine
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}

/// The regional quota a machine type counts against.
fn quota_of(machine: &str) -> String {
    match machine
        .split('-')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
        .as_str()
    {
        "E2" | "N1" | "F1" | "G1" | "" => "CPUS".into(),
        s => format!("{s}_CPUS"),
    }
}

fn pool_need(p: &Value) -> (String, u64) {
    let machine = p
        .pointer("/config/machineType")
        .and_then(Value::as_str)
        .unwrap_or("e2-medium");
    let max = p
        .pointer("/autoscaling/totalMaxNodeCount")
        .and_then(Value::as_u64)
        .or_else(|| {
            p.get("initialNodeCount")
                .and_then(Value::as_u64)
                .map(|n| n * 3)
        })
        .unwrap_or(3);
    (quota_of(machine), max * vcpu_of(machine))
}

fn check_quota(w: &World, pools: &[Value]) -> Result<Vec<(String, u64)>, GoogleError> {
    let mut need: BTreeMap<String, u64> = BTreeMap::new();
    for p in pools {
        let (q, n) = pool_need(p);
        *need.entry(q).or_default() += n;
    }
    for (metric, n) in &need {
        if let Some(q) = w.quotas.get(metric)
            && q.usage + *n as f64 > q.limit
        {
            return Err(GoogleError::new(
                429,
                "RESOURCE_EXHAUSTED",
                format!(
                    "Insufficient regional quota to satisfy request: resource \"{metric}\": request requires '{n}.0' and is short '{}'.",
                    q.usage + *n as f64 - q.limit
                ),
            )
            .detail(json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"subject": format!("projects/{}/regions/{}", w.account, w.region),
                    "description": format!("{metric} quota exceeded")}]})));
        }
    }
    Ok(need.into_iter().collect())
}

fn labels(v: &Value, key: &str) -> BTreeMap<String, String> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn new_pool(cluster: &str, version: &str, p: &Value, now: Instant, fail: Option<String>) -> Pool {
    let n = |ptr: &str| p.pointer(ptr).and_then(Value::as_i64).unwrap_or(0);
    Pool {
        cluster: cluster.to_owned(),
        name: p
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        identity: p
            .pointer("/config/serviceAccount")
            .and_then(Value::as_str)
            .map(str::to_owned),
        subnets: Vec::new(),
        shape: p
            .pointer("/config/machineType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        scaling: (
            n("/autoscaling/totalMinNodeCount"),
            n("/initialNodeCount") * 3,
            n("/autoscaling/totalMaxNodeCount"),
        ),
        image: p
            .pointer("/config/imageType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        labels: labels(p.get("config").unwrap_or(&Value::Null), "labels"),
        tags: labels(p.get("config").unwrap_or(&Value::Null), "resourceLabels"),
        created: now,
        created_epoch: now_epoch(),
        fail,
        version: version.to_owned(),
        updating: None,
    }
}

fn operation(w: &mut World, base: &str, target: Target, kind: &str) -> Value {
    let id = format!(
        "operation-{}-{:08x}",
        w.operations.len() + 1,
        w.operations.len() * 7919 + 1
    );
    w.operations.insert(
        id.clone(),
        Operation {
            target,
            started_epoch: now_epoch(),
        },
    );
    op_json(w, base, &id, kind)
}

fn op_json(w: &World, base: &str, id: &str, kind: &str) -> Value {
    let loc = format!("projects/{}/locations/{}", w.account, w.region);
    let mut v = json!({"name": id, "zone": w.region, "location": w.region,
        "operationType": kind, "status": "RUNNING",
        "selfLink": format!("{base}/v1/{loc}/operations/{id}")});
    if let Some(op) = w.operations.get(id) {
        v["startTime"] = json!(rfc3339(op.started_epoch as u64));
    }
    v
}

fn done(w: &World, base: &str, id: &str) -> Result<Value, GoogleError> {
    let op = w
        .operations
        .get(id)
        .ok_or_else(|| GoogleError::not_found(format!("Not found: operation {id}.")))?;
    let (phase, fail, kind, target) = match &op.target {
        Target::Cluster(c) => match w.clusters.get(c) {
            Some(x) => (
                w.cluster_phase(x),
                x.fail.clone(),
                "CREATE_CLUSTER",
                c.clone(),
            ),
            None => (
                Phase::Failed,
                Some("NOT_FOUND: the cluster is gone".into()),
                "CREATE_CLUSTER",
                c.clone(),
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
            "DELETE_CLUSTER",
            c.clone(),
        ),
        Target::DeletePool(c, p) => (
            if w.pools.contains_key(&(c.clone(), p.clone())) {
                Phase::Deleting
            } else {
                Phase::Ready
            },
            None,
            "DELETE_NODE_POOL",
            format!("{c}/nodePools/{p}"),
        ),
        Target::Pool(c, p) => match w.pools.get(&(c.clone(), p.clone())) {
            Some(x) => (
                w.pool_phase(x),
                x.fail.clone(),
                "CREATE_NODE_POOL",
                format!("{c}/nodePools/{p}"),
            ),
            None => (
                Phase::Failed,
                Some("NOT_FOUND: the pool is gone".into()),
                "CREATE_NODE_POOL",
                c.clone(),
            ),
        },
    };
    let mut v = op_json(w, base, id, kind);
    v["targetLink"] = json!(format!(
        "{base}/v1/projects/{}/locations/{}/clusters/{target}",
        w.account, w.region
    ));
    match phase {
        Phase::Creating | Phase::Deleting | Phase::Updating => {}
        Phase::Ready => {
            v["status"] = json!("DONE");
            v["endTime"] = json!(rfc3339(now_epoch() as u64));
        }
        Phase::Failed => {
            let why = fail.unwrap_or_default();
            let (code, message) = match why.split_once(": ") {
                Some((c, m)) if c.chars().all(|x| x.is_ascii_uppercase() || x == '_') => {
                    (c.to_owned(), m.to_owned())
                }
                _ => ("INTERNAL".to_owned(), why),
            };
            v["status"] = json!("DONE");
            v["endTime"] = json!(rfc3339(now_epoch() as u64));
            v["statusMessage"] = json!(message);
            v["error"] = json!({"code": code_number(&code), "message": message, "details": []});
        }
    }
    Ok(v)
}

/// A cluster's description: the created document with GKE's output fields.
fn describe(w: &World, base: &str, c: &Cluster) -> Value {
    let mut v = w
        .documents
        .get(&format!("gke:cluster:{}", c.name))
        .cloned()
        .unwrap_or_else(|| {
            // A cluster someone else made (not through this adapter).
            json!({"name": c.name, "initialClusterVersion": c.version,
                "resourceLabels": c.tags, "network": "default", "subnetwork": "default"})
        });
    let phase = w.cluster_phase(c);
    let loc = format!("projects/{}/locations/{}", w.account, w.region);
    let minor = c.version.clone();
    v["status"] = json!(status_of(phase));
    if let Some(f) = &c.fail {
        v["statusMessage"] = json!(f);
    }
    v["currentMasterVersion"] = json!(patch_of(w, &minor));
    v["location"] = json!(w.region);
    v["selfLink"] = json!(format!("{base}/v1/{loc}/clusters/{}", c.name));
    // GKE's endpoint is the API server's address, without a scheme.
    let (server, ca) = w.kube_endpoint(&c.name);
    v["endpoint"] = json!(server.trim_start_matches("https://"));
    v["createTime"] = json!(rfc3339(c.created_epoch as u64));
    v["masterAuth"] = json!({"clusterCaCertificate": ca});
    let pools: Vec<Value> = w
        .pools
        .values()
        .filter(|p| p.cluster == c.name)
        .map(|p| describe_pool(w, p))
        .collect();
    v["nodePools"] = json!(pools);
    v
}

fn describe_pool(w: &World, p: &Pool) -> Value {
    let mut v = w
        .documents
        .get(&format!("gke:pool:{}/{}", p.cluster, p.name))
        .cloned()
        .unwrap_or_else(|| json!({"name": p.name}));
    v["status"] = json!(status_of(w.pool_phase(p)));
    v["version"] = json!(patch_of(w, &p.version));
    v["locations"] = json!(["a", "b", "c"].map(|z| format!("{}-{z}", w.region)));
    v
}

/// Answers a GKE request.
pub(crate) fn answer(w: &mut World, base: &str, g: Gke, body: Value) -> Result<Value, GoogleError> {
    let project = match &g {
        Gke::CreateCluster(p)
        | Gke::GetCluster(p, _)
        | Gke::CreatePool(p, _)
        | Gke::GetPool(p, _, _)
        | Gke::Operation(p, _)
        | Gke::ServerConfig(p)
        | Gke::DeleteCluster(p, _)
        | Gke::DeletePool(p, _, _)
        | Gke::UpdateMaster(p, _)
        | Gke::UpdatePool(p, _, _) => p.clone(),
    };
    if project != w.account {
        return Err(GoogleError::denied(
            "container.clusters.get",
            &format!("projects/{project}"),
            "container.googleapis.com",
        ));
    }
    let not_found = |w: &World, c: &str| {
        GoogleError::not_found(format!(
            "Not found: projects/{}/locations/{}/clusters/{c}.",
            w.account, w.region
        ))
    };
    match g {
        Gke::ServerConfig(_) => Ok(json!({
            "defaultClusterVersion": w.versions.first().cloned().unwrap_or_default(),
            "validMasterVersions": w.versions, "validNodeVersions": w.versions,
            "defaultImageType": "COS_CONTAINERD",
            "validImageTypes": ["COS_CONTAINERD", "UBUNTU_CONTAINERD"]})),
        Gke::GetCluster(_, c) => {
            let cl = w.clusters.get(&c).ok_or_else(|| not_found(w, &c))?;
            Ok(describe(w, base, cl))
        }
        Gke::GetPool(_, c, n) => {
            w.clusters.get(&c).ok_or_else(|| not_found(w, &c))?;
            let p = w.pools.get(&(c.clone(), n.clone())).ok_or_else(|| {
                GoogleError::not_found(format!("Not found: node pool \"{n}\" not found."))
            })?;
            Ok(describe_pool(w, p))
        }
        Gke::Operation(_, o) => done(w, base, &o),
        Gke::DeleteCluster(_, c) => {
            w.clusters.get(&c).ok_or_else(|| not_found(w, &c))?;
            w.delete_cluster(&c);
            Ok(operation(
                w,
                base,
                Target::DeleteCluster(c),
                "DELETE_CLUSTER",
            ))
        }
        Gke::DeletePool(_, c, n) => {
            w.pools.get(&(c.clone(), n.clone())).ok_or_else(|| {
                GoogleError::not_found(format!("Not found: node pool \"{n}\" not found."))
            })?;
            w.delete_pool(&c, &n);
            Ok(operation(
                w,
                base,
                Target::DeletePool(c, n),
                "DELETE_NODE_POOL",
            ))
        }
        Gke::CreateCluster(_) => {
            let cluster = body.get("cluster").cloned().unwrap_or(Value::Null);
            let name = cluster
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if name.is_empty() {
                return Err(GoogleError::new(
                    400,
                    "INVALID_ARGUMENT",
                    "Cluster.name must be provided.",
                ));
            }
            if let Some(foreign) = w.ambush.take() {
                w.clusters.insert(foreign.name.clone(), foreign);
            }
            if w.clusters.contains_key(&name) {
                return Err(GoogleError::new(
                    409,
                    "ALREADY_EXISTS",
                    format!(
                        "Already exists: projects/{}/locations/{}/clusters/{name}.",
                        w.account, w.region
                    ),
                ));
            }
            let pools: Vec<Value> = cluster
                .get("nodePools")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let need = check_quota(w, &pools)?;
            for (metric, n) in need {
                if let Some(q) = w.quotas.get_mut(&metric) {
                    q.usage += n as f64;
                }
            }
            let fail = w.fail_next_create.take();
            let now = Instant::now();
            let version = cluster
                .get("initialClusterVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let public = cluster
                .pointer("/controlPlaneEndpointsConfig/ipEndpointsConfig/enablePublicEndpoint")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            w.clusters.insert(
                name.clone(),
                Cluster {
                    name: name.clone(),
                    version: version.to_owned(),
                    api: ApiEndpoint {
                        private: true,
                        public,
                        public_cidrs: Vec::new(),
                    },
                    subnets: cluster
                        .get("subnetwork")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .into_iter()
                        .collect(),
                    identity: None,
                    tags: labels(&cluster, "resourceLabels"),
                    created: now,
                    created_epoch: now_epoch(),
                    fail: fail.clone(),
                    deleting: false,
                    updating: None,
                },
            );
            for p in &pools {
                let pool = new_pool(&name, version, p, now, None);
                w.documents
                    .insert(format!("gke:pool:{name}/{}", pool.name), p.clone());
                w.pools.insert((name.clone(), pool.name.clone()), pool);
            }
            let mut doc = cluster.clone();
            if let Some(o) = doc.as_object_mut() {
                o.remove("nodePools");
            }
            w.documents.insert(format!("gke:cluster:{name}"), doc);
            Ok(operation(w, base, Target::Cluster(name), "CREATE_CLUSTER"))
        }
        Gke::CreatePool(_, c) => {
            let cl = w.clusters.get(&c).ok_or_else(|| not_found(w, &c))?;
            if w.cluster_phase(cl) != Phase::Ready {
                return Err(GoogleError::new(
                    400,
                    "FAILED_PRECONDITION",
                    format!("Cluster is not running: {c}."),
                ));
            }
            let p = body.get("nodePool").cloned().unwrap_or(Value::Null);
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if w.pools.contains_key(&(c.clone(), name.clone())) {
                return Err(GoogleError::new(
                    409,
                    "ALREADY_EXISTS",
                    format!("Already exists: node pool \"{name}\"."),
                ));
            }
            let need = check_quota(w, std::slice::from_ref(&p))?;
            for (metric, n) in need {
                if let Some(q) = w.quotas.get_mut(&metric) {
                    q.usage += n as f64;
                }
            }
            let fail = w.fail_next_create.take();
            let version = w.clusters[&c].version.clone();
            let pool = new_pool(&c, &version, &p, Instant::now(), fail);
            w.documents
                .insert(format!("gke:pool:{c}/{name}"), p.clone());
            w.pools.insert((c.clone(), name.clone()), pool);
            Ok(operation(
                w,
                base,
                Target::Pool(c, name),
                "CREATE_NODE_POOL",
            ))
        }
        Gke::UpdateMaster(_, c) => {
            w.clusters.get(&c).ok_or_else(|| not_found(w, &c))?;
            // GKE takes `1.35` (the minor's newest patch) or a full version.
            let asked = body["masterVersion"].as_str().unwrap_or_default();
            let minor = asked.split('.').take(2).collect::<Vec<_>>().join(".");
            w.upgrade_cluster(&c, &minor).map_err(refused)?;
            Ok(operation(w, base, Target::Cluster(c), "UPGRADE_MASTER"))
        }
        Gke::UpdatePool(_, c, n) => {
            w.clusters.get(&c).ok_or_else(|| not_found(w, &c))?;
            let asked = body["nodeVersion"].as_str().unwrap_or_default();
            let minor = if asked == "-" || asked.is_empty() {
                w.clusters[&c].version.clone()
            } else {
                asked.split('.').take(2).collect::<Vec<_>>().join(".")
            };
            w.upgrade_pool(&c, &n, &minor).map_err(refused)?;
            Ok(operation(w, base, Target::Pool(c, n), "UPGRADE_NODES"))
        }
    }
}

/// A refused upgrade as GKE answers it.
fn refused(r: crate::upgrade::Refused) -> GoogleError {
    use crate::upgrade::Refused;
    match r {
        Refused::NotFound(what) => GoogleError::not_found(format!("Not found: {what}.")),
        Refused::Busy(why) => GoogleError::new(400, "FAILED_PRECONDITION", why),
        Refused::Invalid(why) => GoogleError::new(400, "INVALID_ARGUMENT", why),
    }
}
