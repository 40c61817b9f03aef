//! The Azure Resource Manager resources an AKS install touches, as the ARM REST references
//! describe them (`docs/azure-standin.md` lists the documents): subscriptions, resource groups,
//! resource providers, virtual network subnets, compute usages, AKS Kubernetes versions,
//! `Microsoft.Authorization/permissions`, `managedClusters` (create-or-update PUT, GET,
//! `listClusterUserCredential`) and `agentPools`, and the asynchronous-operation status
//! resource a create answers with (`Azure-AsyncOperation`, `Retry-After`).
//!
//! This file routes requests and answers the reads; clusters, pools and their operations are
//! in [`super::clusters`].

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::clusters::{self, fqdn};
use super::{ArmError, not_found};
use crate::world::{Phase, World};

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
    Vpn(super::vpn::Req),
    DeleteCluster(String),
    DeletePool(String, String),
    DeleteResource(String),
    Resources,
    Groups,
    GroupResources(String),
    Purge(String),
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
    if *method == Method::DELETE {
        if let Some((action, scope, req)) = super::vpn::route(method, &seg, &l) {
            // The VPN routes name the read action of a non-PUT; a DELETE is authorized by
            // the type's delete action.
            let action = format!("{}/delete", action.trim_end_matches("/read"));
            return Some(Route {
                action,
                scope,
                kind: Kind::Vpn(req),
            });
        }
        return delete_route(&seg, &l);
    }
    // A subnet's GET stays the account step's; the VPN routes serve only its PUT.
    if (*method == Method::PUT || !l.contains(&"subnets"))
        && let Some((action, scope, req)) = super::vpn::route(method, &seg, &l)
    {
        return Some(Route {
            action,
            scope,
            kind: Kind::Vpn(req),
        });
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
        ["resources"] => r(
            "Microsoft.Resources/subscriptions/resources/read",
            s,
            Kind::Resources,
        ),
        ["resourcegroups"] => r(
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            s,
            Kind::Groups,
        ),
        ["resourcegroups", _, "resources"] => r(
            "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
            format!("{s}/resourceGroups/{}", seg[3]),
            Kind::GroupResources(seg[3].to_owned()),
        ),
        ["resourcegroups", _] => r(
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            format!("{s}/resourceGroups/{}", seg[3]),
            Kind::Group(seg[3].to_owned()),
        ),
        [
            "providers",
            "microsoft.keyvault",
            "locations",
            _,
            "deletedvaults",
            _,
            "purge",
        ] => r(
            "Microsoft.KeyVault/locations/deletedVaults/purge/action",
            s,
            Kind::Purge(seg[7].to_owned()),
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

/// Routes a `DELETE`: of a managed cluster, an agent pool, a resource group or a resource.
fn delete_route(seg: &[&str], l: &[&str]) -> Option<Route> {
    let id = format!("/{}", seg.join("/"));
    let r = |action: String, kind: Kind| {
        Some(Route {
            action,
            scope: id.clone(),
            kind,
        })
    };
    match &l[2..] {
        [
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerservice",
            "managedclusters",
            _,
        ] => r(
            "Microsoft.ContainerService/managedClusters/delete".into(),
            Kind::DeleteCluster(seg[7].to_owned()),
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
        ] => r(
            "Microsoft.ContainerService/managedClusters/agentPools/delete".into(),
            Kind::DeletePool(seg[7].to_owned(), seg[9].to_owned()),
        ),
        ["resourcegroups", _] => r(
            "Microsoft.Resources/subscriptions/resourceGroups/delete".into(),
            Kind::DeleteResource(id.clone()),
        ),
        ["resourcegroups", _, "providers", _, _, _] => r(
            format!("{}/{}/delete", seg[5], seg[6]),
            Kind::DeleteResource(id.clone()),
        ),
        _ => None,
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
        Kind::Operation(id) => clusters::operation(w, &id),
        Kind::Vpn(req) => super::vpn::answer(w, base, method, headers, req, body),
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
                            "routeTable": super::vpn::subnet_route_table(w, &s.id).map(|id| json!({"id": id})),
                        },
                    }))
                }
                None => Err(not_found("NotFound", format!("Resource {id} not found."))),
            }
        }
        Kind::Cluster(group, name) if *method == Method::PUT => {
            clusters::put_cluster(w, base, headers, &group, &name, body)
        }
        Kind::Cluster(group, name) => match w.clusters.get(&name) {
            Some(c) => ok(clusters::cluster_json(w, &group, c)),
            None => Err(not_found(
                "ResourceNotFound",
                format!(
                    "The Resource 'Microsoft.ContainerService/managedClusters/{name}' under resource group '{group}' was not found."
                ),
            )),
        },
        Kind::Credentials(name) => match w.clusters.get(&name) {
            Some(c) if w.cluster_phase(c) == Phase::Ready => {
                let (server, ca) = match &w.kube_api {
                    Some(_) => w.kube_endpoint(&name),
                    None => (
                        format!("https://{}:443", fqdn(&name)),
                        base64::engine::general_purpose::STANDARD.encode(STAND_IN_CLUSTER_CA),
                    ),
                };
                let kubeconfig = format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: clusterUser_{name}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n",
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
        Kind::DeleteCluster(name) => Ok(super::teardown::delete_cluster(w, base, &name)),
        Kind::DeletePool(cluster, name) => {
            Ok(super::teardown::delete_pool(w, base, &cluster, &name))
        }
        Kind::DeleteResource(id) => super::teardown::delete_resource(w, &id),
        Kind::Resources => ok(super::teardown::resources(w, query)?),
        Kind::Groups => ok(super::teardown::groups(w, query)?),
        Kind::GroupResources(g) => ok(super::teardown::in_group(w, &g)),
        Kind::Purge(name) => super::vpn::purge(w, &name),
        Kind::Pool(group, cluster, name) if *method == Method::PUT => {
            clusters::put_pool(w, base, headers, &group, &cluster, &name, body)
        }
        Kind::Pool(group, cluster, name) => match w.pools.get(&(cluster.clone(), name.clone())) {
            Some(p) => ok(clusters::pool_json(w, &group, p)),
            None => Err(not_found(
                "NotFound",
                format!("Agent pool '{name}' of managed cluster '{cluster}' was not found."),
            )),
        },
    }
}

/// The CA of every stand-in cluster's API server (no server ever answers at its address).
const STAND_IN_CLUSTER_CA: &str = "-----BEGIN CERTIFICATE-----\nstand-in cluster CA (no API server listens)\n-----END CERTIFICATE-----\n";

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
