//! EKS over REST-JSON (the EKS API Reference): `POST /clusters` (CreateCluster),
//! `GET /clusters/{name}` (DescribeCluster), `POST /clusters/{name}/node-groups`
//! (CreateNodegroup), `GET /clusters/{name}/node-groups/{ng}` (DescribeNodegroup),
//! `GET /cluster-versions` (DescribeClusterVersions), `POST /clusters/{name}/updates`
//! (UpdateClusterVersion), `POST /clusters/{name}/node-groups/{ng}/update-version`
//! (UpdateNodegroupVersion; UPDATING until the world's delay has passed, with the rules of
//! [`crate::upgrade`]). Errors carry `x-amzn-ErrorType`.
//! Clusters and node groups are CREATING until the world's creation delay has passed; a node
//! group can only be created on an ACTIVE cluster, as on EKS. What a create request asks for
//! (endpoint access, labels, AMI type, scaling) is kept and described back as EKS does,
//! including its defaults (a public endpoint open to `0.0.0.0/0` when the request names none).

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AwsError, authorize};
use crate::world::{ApiEndpoint, Cluster, Phase, Pool, World, now_epoch};

/// How EKS refuses a call.
const DENIED: (u16, &str) = (403, "AccessDeniedException");

/// The operation of a request, from its method and path.
pub(crate) fn operation(method: &Method, path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["clusters"]) => "CreateCluster",
        ("GET", ["clusters"]) => "ListClusters",
        ("GET", ["clusters", _]) => "DescribeCluster",
        ("POST", ["clusters", _, "node-groups"]) => "CreateNodegroup",
        ("GET", ["clusters", _, "node-groups", _]) => "DescribeNodegroup",
        ("DELETE", ["clusters", _]) => "DeleteCluster",
        ("DELETE", ["clusters", _, "node-groups", _]) => "DeleteNodegroup",
        ("POST", ["clusters", _, "updates"]) => "UpdateClusterVersion",
        ("POST", ["clusters", _, "node-groups", _, "update-version"]) => "UpdateNodegroupVersion",
        ("GET", ["cluster-versions"]) => "DescribeClusterVersions",
        _ => "Unknown",
    }
}

fn cluster_arn(w: &World, name: &str) -> String {
    format!("arn:aws:eks:{}:{}:cluster/{name}", w.region, w.account)
}

fn nodegroup_arn(w: &World, cluster: &str, name: &str) -> String {
    format!(
        "arn:aws:eks:{}:{}:nodegroup/{cluster}/{name}/00000000-0000-0000-0000-000000000000",
        w.region, w.account
    )
}

fn cluster_json(w: &World, c: &Cluster) -> Value {
    let phase = w.cluster_phase(c);
    let status = match phase {
        Phase::Creating => "CREATING",
        Phase::Ready => "ACTIVE",
        Phase::Failed => "FAILED",
        Phase::Deleting => "DELETING",
        Phase::Updating => "UPDATING",
    };
    let mut vpc = json!({
        "subnetIds": c.subnets,
        "securityGroupIds": [],
        "vpcId": w.subnets.first().map(|s| s.network.clone()).unwrap_or_default(),
        "endpointPublicAccess": c.api.public,
        "endpointPrivateAccess": c.api.private,
    });
    if c.api.public {
        vpc["publicAccessCidrs"] = json!(c.api.public_cidrs);
    }
    let mut v = json!({
        "name": c.name,
        "arn": cluster_arn(w, &c.name),
        "createdAt": c.created_epoch,
        "version": c.version,
        "roleArn": c.identity,
        "resourcesVpcConfig": vpc,
        "status": status,
        "certificateAuthority": {},
        "platformVersion": "eks.1",
        "tags": c.tags,
    });
    if phase == Phase::Ready {
        let (server, ca) = w.kube_endpoint(&c.name);
        v["endpoint"] = json!(server);
        v["certificateAuthority"] = json!({"data": ca});
    }
    if let Some(why) = &c.fail {
        v["health"] =
            json!({"issues": [{"code": "ClusterUnreachable", "message": why, "resourceIds": []}]});
    }
    v
}

fn nodegroup_json(w: &World, n: &Pool) -> Value {
    let status = match w.pool_phase(n) {
        Phase::Creating => "CREATING",
        Phase::Ready => "ACTIVE",
        Phase::Failed => "CREATE_FAILED",
        Phase::Deleting => "DELETING",
        Phase::Updating => "UPDATING",
    };
    let issues: Vec<Value> = n
        .fail
        .iter()
        .map(|why| json!({"code": "AsgInstanceLaunchFailures", "message": why, "resourceIds": []}))
        .collect();
    json!({
        "nodegroupName": n.name,
        "nodegroupArn": nodegroup_arn(w, &n.cluster, &n.name),
        "clusterName": n.cluster,
        "version": n.version,
        "createdAt": n.created_epoch,
        "status": status,
        "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": n.scaling.0, "desiredSize": n.scaling.1, "maxSize": n.scaling.2},
        "instanceTypes": [n.shape],
        "subnets": n.subnets,
        "amiType": n.image,
        "nodeRole": n.identity,
        "labels": n.labels,
        "tags": n.tags,
        "health": {"issues": issues},
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

fn map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn role_exists(w: &World, arn: &str) -> bool {
    arn.rsplit('/').next().is_some_and(|name| {
        w.identities.contains_key(name) && *arn == super::role_arn(&w.account, name)
    })
}

/// EKS's `Update` object of a version update that has begun.
fn version_update(version: &str) -> Value {
    json!({
        "id": format!("{:032x}", now_epoch().to_bits()),
        "status": "InProgress",
        "type": "VersionUpdate",
        "params": [{"type": "Version", "value": version}, {"type": "PlatformVersion", "value": "eks.1"}],
        "createdAt": now_epoch(),
        "errors": [],
    })
}

/// A refused upgrade as EKS answers it.
fn refused(r: crate::upgrade::Refused) -> AwsError {
    use crate::upgrade::Refused;
    match r {
        Refused::NotFound(what) => AwsError::new(
            404,
            "ResourceNotFoundException",
            format!("No {what} found."),
        ),
        Refused::Busy(why) => AwsError::new(409, "ResourceInUseException", why),
        Refused::Invalid(why) => AwsError::new(400, "InvalidRequestException", why),
    }
}

fn bad(message: String) -> AwsError {
    AwsError::new(400, "InvalidParameterException", message)
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
        serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?
    };
    match (operation(method, path), parts.as_slice()) {
        ("DescribeClusterVersions", _) => {
            authorize(w, DENIED, "eks:DescribeClusterVersions", "*", &[])?;
            let versions: Vec<Value> = w
                .versions
                .iter()
                .map(|v| json!({"clusterVersion": v, "clusterType": "eks", "defaultVersion": false, "status": "STANDARD_SUPPORT", "versionStatus": "STANDARD_SUPPORT"}))
                .collect();
            Ok(Json(json!({"clusterVersions": versions})).into_response())
        }
        ("CreateCluster", _) => {
            let name = input["name"].as_str().unwrap_or_default().to_owned();
            let role = input["roleArn"].as_str().unwrap_or_default().to_owned();
            authorize(w, DENIED, "eks:CreateCluster", &cluster_arn(w, &name), &[])?;
            authorize(
                w,
                DENIED,
                "iam:PassRole",
                &role,
                &[("iam:PassedToService", "eks.amazonaws.com")],
            )?;
            if w.clusters.contains_key(&name) {
                return Err(AwsError::new(
                    409,
                    "ResourceInUseException",
                    format!("Cluster already exists with name: {name}"),
                ));
            }
            if !role_exists(w, &role) {
                return Err(bad(format!("Role with arn: {role}, does not exist.")));
            }
            let version = input["version"].as_str().unwrap_or("1.31").to_owned();
            if !w.versions.contains(&version) {
                return Err(bad(format!("unsupported Kubernetes version {version}")));
            }
            let vpc = &input["resourcesVpcConfig"];
            let subnets = strings(&vpc["subnetIds"]);
            if let Some(missing) = subnets
                .iter()
                .find(|s| !w.subnets.iter().any(|x| &x.id == *s))
            {
                return Err(bad(format!("Subnet {missing} does not exist")));
            }
            // EKS's defaults: a public endpoint, open to everyone, and no private one.
            let public = vpc["endpointPublicAccess"].as_bool().unwrap_or(true);
            let private = vpc["endpointPrivateAccess"].as_bool().unwrap_or(false);
            if !public && !private {
                return Err(bad(
                    "Private and public endpoint access can not both be false".into(),
                ));
            }
            let mut cidrs = strings(&vpc["publicAccessCidrs"]);
            if public && cidrs.is_empty() {
                cidrs.push("0.0.0.0/0".into());
            }
            let c = Cluster {
                name: name.clone(),
                version,
                api: ApiEndpoint {
                    private,
                    public,
                    public_cidrs: if public { cidrs } else { Vec::new() },
                },
                subnets,
                identity: Some(role),
                tags: map(&input["tags"]),
                created: Instant::now(),
                created_epoch: now_epoch(),
                fail: None,
                deleting: false,
                updating: None,
            };
            let v = cluster_json(w, &c);
            w.clusters.insert(name, c);
            Ok(Json(json!({"cluster": v})).into_response())
        }
        ("DescribeCluster", [_, name]) => {
            authorize(w, DENIED, "eks:DescribeCluster", &cluster_arn(w, name), &[])?;
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
            let role = input["nodeRole"].as_str().unwrap_or_default().to_owned();
            authorize(
                w,
                DENIED,
                "eks:CreateNodegroup",
                &cluster_arn(w, cluster),
                &[],
            )?;
            authorize(
                w,
                DENIED,
                "iam:PassRole",
                &role,
                &[("iam:PassedToService", "eks.amazonaws.com")],
            )?;
            let c = w.clusters.get(*cluster).ok_or_else(|| {
                AwsError::new(
                    404,
                    "ResourceNotFoundException",
                    format!("No cluster found for name: {cluster}."),
                )
            })?;
            if w.cluster_phase(c) != Phase::Ready {
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
            if w.pools.contains_key(&key) {
                return Err(AwsError::new(
                    409,
                    "ResourceInUseException",
                    format!("NodeGroup already exists with name {name} and cluster name {cluster}"),
                ));
            }
            if !role_exists(w, &role) {
                return Err(bad(format!("Role with arn: {role}, does not exist.")));
            }
            let sc = &input["scalingConfig"];
            let n = Pool {
                cluster: (*cluster).to_owned(),
                name,
                identity: Some(role),
                subnets: strings(&input["subnets"]),
                shape: strings(&input["instanceTypes"])
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| "t3.medium".into()),
                scaling: (
                    sc["minSize"].as_i64().unwrap_or(1),
                    sc["desiredSize"].as_i64().unwrap_or(1),
                    sc["maxSize"].as_i64().unwrap_or(1),
                ),
                image: input["amiType"]
                    .as_str()
                    .unwrap_or("AL2023_x86_64_STANDARD")
                    .to_owned(),
                labels: map(&input["labels"]),
                tags: map(&input["tags"]),
                created: Instant::now(),
                created_epoch: now_epoch(),
                fail: None,
                version: c.version.clone(),
                updating: None,
            };
            let v = nodegroup_json(w, &n);
            w.pools.insert(key, n);
            Ok(Json(json!({"nodegroup": v})).into_response())
        }
        ("DescribeNodegroup", [_, cluster, _, name]) => {
            authorize(
                w,
                DENIED,
                "eks:DescribeNodegroup",
                &nodegroup_arn(w, cluster, name),
                &[],
            )?;
            let n = w
                .pools
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
        ("UpdateClusterVersion", [_, cluster, _]) => {
            authorize(
                w,
                DENIED,
                "eks:UpdateClusterVersion",
                &cluster_arn(w, cluster),
                &[],
            )?;
            let version = input["version"].as_str().unwrap_or_default().to_owned();
            w.upgrade_cluster(cluster, &version).map_err(refused)?;
            Ok(Json(json!({"update": version_update(&version)})).into_response())
        }
        ("UpdateNodegroupVersion", [_, cluster, _, name, _]) => {
            authorize(
                w,
                DENIED,
                "eks:UpdateNodegroupVersion",
                &nodegroup_arn(w, cluster, name),
                &[],
            )?;
            // Without a version EKS takes the control plane's.
            let version = match input["version"].as_str() {
                Some(v) => v.to_owned(),
                None => w
                    .clusters
                    .get(*cluster)
                    .map(|c| c.version.clone())
                    .unwrap_or_default(),
            };
            w.upgrade_pool(cluster, name, &version).map_err(refused)?;
            Ok(Json(json!({"update": version_update(&version)})).into_response())
        }
        _ => Err(AwsError::new(
            404,
            "NotFoundException",
            format!("{method} {path} is not an operation of this stand-in"),
        )),
    }
}
