//! EKS over REST-JSON (the EKS API Reference): `POST /clusters` (CreateCluster),
//! `GET /clusters/{name}` (DescribeCluster), `POST /clusters/{name}/node-groups`
//! (CreateNodegroup), `GET /clusters/{name}/node-groups/{ng}` (DescribeNodegroup),
//! `GET /cluster-versions` (DescribeClusterVersions). Errors carry `x-amzn-ErrorType`.
//! Clusters and node groups are CREATING until the world's creation delay has passed; a node
//! group can only be created on an ACTIVE cluster, as on EKS.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AwsError;
use super::world::{Cluster, Nodegroup, World};

/// The operation of a request, from its method and path.
pub(crate) fn operation(method: &Method, path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["clusters"]) => "CreateCluster",
        ("GET", ["clusters"]) => "ListClusters",
        ("GET", ["clusters", _]) => "DescribeCluster",
        ("POST", ["clusters", _, "node-groups"]) => "CreateNodegroup",
        ("GET", ["clusters", _, "node-groups", _]) => "DescribeNodegroup",
        ("GET", ["cluster-versions"]) => "DescribeClusterVersions",
        _ => "Unknown",
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64().floor())
        .unwrap_or(0.0)
}

fn guard(w: &World, action: &str) -> Result<(), AwsError> {
    if w.denied.contains(action) {
        return Err(AwsError::new(
            403,
            "AccessDeniedException",
            format!("User: {} is not authorized to perform: {action}", w.caller),
        ));
    }
    Ok(())
}

fn cluster_json(w: &World, c: &Cluster) -> Value {
    let arn = format!("arn:aws:eks:{}:{}:cluster/{}", w.region, w.account, c.name);
    let (status, endpoint, ca) = if c.fail.is_some() {
        ("FAILED", Value::Null, json!({}))
    } else if w.cluster_active(c) {
        (
            "ACTIVE",
            // `.invalid` never resolves (RFC 2606): nothing can ever connect to a stand-in cluster.
            json!(format!("https://{}.eks.stand-in.invalid", c.name)),
            json!({"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCnN0YW5kLWluCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"}),
        )
    } else {
        ("CREATING", Value::Null, json!({}))
    };
    let mut v = json!({
        "name": c.name,
        "arn": arn,
        "createdAt": c.created_epoch,
        "version": c.version,
        "roleArn": c.role,
        "resourcesVpcConfig": {
            "subnetIds": c.subnets,
            "securityGroupIds": [],
            "vpcId": w.subnets.first().map(|s| s.vpc.clone()).unwrap_or_default(),
            "endpointPublicAccess": true,
            "endpointPrivateAccess": false,
        },
        "status": status,
        "certificateAuthority": ca,
        "platformVersion": "eks.1",
        "tags": c.tags,
    });
    if !endpoint.is_null() {
        v["endpoint"] = endpoint;
    }
    if let Some(why) = &c.fail {
        v["health"] =
            json!({"issues": [{"code": "ClusterUnreachable", "message": why, "resourceIds": []}]});
    }
    v
}

fn nodegroup_json(w: &World, n: &Nodegroup) -> Value {
    let active = n.created.elapsed() >= w.create_delay;
    json!({
        "nodegroupName": n.name,
        "nodegroupArn": format!("arn:aws:eks:{}:{}:nodegroup/{}/{}/00000000-0000-0000-0000-000000000000", w.region, w.account, n.cluster, n.name),
        "clusterName": n.cluster,
        "version": w.clusters.get(&n.cluster).map(|c| c.version.clone()).unwrap_or_default(),
        "createdAt": n.created_epoch,
        "status": if active { "ACTIVE" } else { "CREATING" },
        "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": n.scaling.0, "desiredSize": n.scaling.1, "maxSize": n.scaling.2},
        "instanceTypes": n.instance_types,
        "subnets": n.subnets,
        "amiType": "AL2023_x86_64_STANDARD",
        "nodeRole": n.role,
        "labels": {},
        "tags": n.tags,
        "health": {"issues": []},
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn role_exists(w: &World, arn: &str) -> bool {
    arn.rsplit('/')
        .next()
        .is_some_and(|name| w.roles.contains_key(name) && *arn == w.role_arn(name))
}

/// Answers an EKS request.
pub(crate) fn answer(
    w: &mut World,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<Response, AwsError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| AwsError::new(400, "InvalidParameterException", e.to_string()))?
    };
    match (operation(method, path), parts.as_slice()) {
        ("DescribeClusterVersions", _) => {
            guard(w, "eks:DescribeClusterVersions")?;
            let versions: Vec<Value> = w
                .versions
                .iter()
                .map(|v| json!({"clusterVersion": v, "clusterType": "eks", "defaultVersion": false, "status": "STANDARD_SUPPORT", "versionStatus": "STANDARD_SUPPORT"}))
                .collect();
            Ok(Json(json!({"clusterVersions": versions})).into_response())
        }
        ("CreateCluster", _) => {
            guard(w, "eks:CreateCluster")?;
            let name = input["name"].as_str().unwrap_or_default().to_owned();
            if w.clusters.contains_key(&name) {
                return Err(AwsError::new(
                    409,
                    "ResourceInUseException",
                    format!("Cluster already exists with name: {name}"),
                ));
            }
            let role = input["roleArn"].as_str().unwrap_or_default().to_owned();
            if !role_exists(w, &role) {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterException",
                    format!("Role with arn: {role}, does not exist."),
                ));
            }
            let version = input["version"].as_str().unwrap_or("1.31").to_owned();
            if !w.versions.contains(&version) {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterException",
                    format!("unsupported Kubernetes version {version}"),
                ));
            }
            let subnets = strings(&input["resourcesVpcConfig"]["subnetIds"]);
            if let Some(bad) = subnets
                .iter()
                .find(|s| !w.subnets.iter().any(|x| &x.id == *s))
            {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterException",
                    format!("Subnet {bad} does not exist"),
                ));
            }
            let c = Cluster {
                name: name.clone(),
                version,
                role,
                subnets,
                tags: tags(&input["tags"]),
                created: Instant::now(),
                created_epoch: now_epoch(),
                fail: None,
            };
            let v = cluster_json(w, &c);
            w.clusters.insert(name, c);
            Ok(Json(json!({"cluster": v})).into_response())
        }
        ("DescribeCluster", [_, name]) => {
            guard(w, "eks:DescribeCluster")?;
            let c = w.clusters.get(*name).ok_or_else(|| {
                AwsError::new(
                    404,
                    "ResourceNotFoundException",
                    format!("No cluster found for name: {name}."),
                )
            })?;
            Ok(Json(json!({"cluster": cluster_json(w, c)})).into_response())
        }
        ("CreateNodegroup", [_, cluster, _]) => {
            guard(w, "eks:CreateNodegroup")?;
            let c = w.clusters.get(*cluster).ok_or_else(|| {
                AwsError::new(
                    404,
                    "ResourceNotFoundException",
                    format!("No cluster found for name: {cluster}."),
                )
            })?;
            if !w.cluster_active(c) {
                return Err(AwsError::new(
                    400,
                    "InvalidRequestException",
                    format!("Cluster '{cluster}' is not in ACTIVE status"),
                ));
            }
            let name = input["nodegroupName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let key = ((*cluster).to_owned(), name.clone());
            if w.nodegroups.contains_key(&key) {
                return Err(AwsError::new(
                    409,
                    "ResourceInUseException",
                    format!("NodeGroup already exists with name {name} and cluster name {cluster}"),
                ));
            }
            let role = input["nodeRole"].as_str().unwrap_or_default().to_owned();
            if !role_exists(w, &role) {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterException",
                    format!("Role with arn: {role}, does not exist."),
                ));
            }
            let sc = &input["scalingConfig"];
            let n = Nodegroup {
                cluster: (*cluster).to_owned(),
                name,
                role,
                subnets: strings(&input["subnets"]),
                instance_types: strings(&input["instanceTypes"]),
                scaling: (
                    sc["minSize"].as_i64().unwrap_or(1),
                    sc["desiredSize"].as_i64().unwrap_or(1),
                    sc["maxSize"].as_i64().unwrap_or(1),
                ),
                tags: tags(&input["tags"]),
                created: Instant::now(),
                created_epoch: now_epoch(),
            };
            let v = nodegroup_json(w, &n);
            w.nodegroups.insert(key, n);
            Ok(Json(json!({"nodegroup": v})).into_response())
        }
        ("DescribeNodegroup", [_, cluster, _, name]) => {
            guard(w, "eks:DescribeNodegroup")?;
            let n = w
                .nodegroups
                .get(&((*cluster).to_owned(), (*name).to_owned()))
                .ok_or_else(|| {
                    AwsError::new(
                        404,
                        "ResourceNotFoundException",
                        format!("No node group found for name: {name}."),
                    )
                })?;
            Ok(Json(json!({"nodegroup": nodegroup_json(w, n)})).into_response())
        }
        _ => Err(AwsError::new(
            404,
            "NotFoundException",
            format!("{method} {path} is not an operation of this stand-in"),
        )),
    }
}
