//! The realm VPN's Google calls over the neutral [`crate::vpn::VpnWorld`] (issue #23), as
//! Google's REST references write them: Secret Manager v1 (`secrets.get|create`,
//! `secrets.addVersion`, `versions.get|access` of `latest`, `secrets.getIamPolicy|setIamPolicy`),
//! IAM v1 (`serviceAccounts.get|create`), and Compute Engine v1 (`firewalls.get|insert|patch`,
//! `addresses.get|insert`, `instances.get|insert`, `routes.list|insert`, each insert answering a
//! finished `Operation`). Each is authorized by the permission Google checks for it.

use axum::http::Method;
use base64::Engine;
use serde_json::{Value, json};

use super::{GoogleError, Route};
use crate::vpn::string_map;
use crate::vpn::{Address, Firewall, Host, Role, Route as NetRoute, Rule};
use crate::world::World;

/// A VPN request.
pub(crate) enum Req {
    GetSecret(String),
    CreateSecret,
    AddVersion(String),
    GetVersion(String),
    AccessVersion(String),
    GetPolicy(String),
    SetPolicy(String),
    GetAccount(String),
    CreateAccount,
    GetFirewall(String),
    InsertFirewall,
    PatchFirewall(String),
    GetAddress(String),
    InsertAddress,
    GetInstance(String, String),
    InsertInstance(String),
    ListRoutes,
    InsertRoute,
    DeleteSecret(String),
    DeleteAccount(String),
    DeleteAddress(String),
    DeleteInstance(String, String),
    DeleteRoute(String),
}

fn r(op: &'static str, permission: &'static str, resource: String, domain: &'static str) -> Route {
    Route {
        op,
        permission: Some(permission),
        resource,
        domain,
    }
}

const SM: &str = "secretmanager.googleapis.com";
const IAM: &str = "iam.googleapis.com";
const CE: &str = "compute.googleapis.com";

/// Routes a VPN request (`seg`: the path's segments).
pub(crate) fn route(method: &Method, seg: &[&str]) -> Option<(Route, Req)> {
    let (get, post) = (*method == Method::GET, *method == Method::POST);
    let patch = *method == Method::PATCH;
    let delete = *method == Method::DELETE;
    Some(match seg {
        ["v1", "projects", p, "secrets", s] if delete => (
            r(
                "secretmanager:DeleteSecret",
                "secretmanager.secrets.delete",
                format!("projects/{p}/secrets/{s}"),
                SM,
            ),
            Req::DeleteSecret((*s).to_owned()),
        ),
        ["v1", "projects", p, "serviceAccounts", e] if delete && *p != "-" => (
            r(
                "iam:DeleteServiceAccount",
                "iam.serviceAccounts.delete",
                format!("projects/{p}/serviceAccounts/{e}"),
                IAM,
            ),
            Req::DeleteAccount((*e).to_owned()),
        ),
        [
            "compute",
            "v1",
            "projects",
            p,
            "regions",
            reg,
            "addresses",
            a,
        ] if delete => (
            r(
                "compute:DeleteAddress",
                "compute.addresses.delete",
                format!("projects/{p}/regions/{reg}/addresses/{a}"),
                CE,
            ),
            Req::DeleteAddress((*a).to_owned()),
        ),
        ["compute", "v1", "projects", p, "zones", z, "instances", i] if delete => (
            r(
                "compute:DeleteInstance",
                "compute.instances.delete",
                format!("projects/{p}/zones/{z}/instances/{i}"),
                CE,
            ),
            Req::DeleteInstance((*z).to_owned(), (*i).to_owned()),
        ),
        ["compute", "v1", "projects", p, "global", "routes", n] if delete => (
            r(
                "compute:DeleteRoute",
                "compute.routes.delete",
                format!("projects/{p}/global/routes/{n}"),
                CE,
            ),
            Req::DeleteRoute((*n).to_owned()),
        ),
        ["v1", "projects", p, "secrets"] if post => (
            r(
                "secretmanager:CreateSecret",
                "secretmanager.secrets.create",
                format!("projects/{p}"),
                SM,
            ),
            Req::CreateSecret,
        ),
        ["v1", "projects", p, "secrets", s] if get => (
            r(
                "secretmanager:GetSecret",
                "secretmanager.secrets.get",
                format!("projects/{p}/secrets/{s}"),
                SM,
            ),
            Req::GetSecret((*s).to_owned()),
        ),
        ["v1", "projects", p, "secrets", s] if post => {
            let (name, verb) = s.split_once(':')?;
            let res = format!("projects/{p}/secrets/{name}");
            match verb {
                "addVersion" => (
                    r(
                        "secretmanager:AddSecretVersion",
                        "secretmanager.versions.add",
                        res,
                        SM,
                    ),
                    Req::AddVersion(name.to_owned()),
                ),
                "getIamPolicy" => (
                    r(
                        "secretmanager:GetIamPolicy",
                        "secretmanager.secrets.getIamPolicy",
                        res,
                        SM,
                    ),
                    Req::GetPolicy(name.to_owned()),
                ),
                "setIamPolicy" => (
                    r(
                        "secretmanager:SetIamPolicy",
                        "secretmanager.secrets.setIamPolicy",
                        res,
                        SM,
                    ),
                    Req::SetPolicy(name.to_owned()),
                ),
                _ => return None,
            }
        }
        ["v1", "projects", p, "secrets", s, "versions", v] if get => {
            let res = format!("projects/{p}/secrets/{s}");
            match *v {
                "latest" => (
                    r(
                        "secretmanager:GetSecretVersion",
                        "secretmanager.versions.get",
                        res,
                        SM,
                    ),
                    Req::GetVersion((*s).to_owned()),
                ),
                "latest:access" => (
                    r(
                        "secretmanager:AccessSecretVersion",
                        "secretmanager.versions.access",
                        res,
                        SM,
                    ),
                    Req::AccessVersion((*s).to_owned()),
                ),
                _ => return None,
            }
        }
        ["v1", "projects", p, "serviceAccounts"] if post && *p != "-" => (
            r(
                "iam:CreateServiceAccount",
                "iam.serviceAccounts.create",
                format!("projects/{p}"),
                IAM,
            ),
            Req::CreateAccount,
        ),
        ["v1", "projects", p, "serviceAccounts", e] if get && *p != "-" => (
            r(
                "iam:GetServiceAccount",
                "iam.serviceAccounts.get",
                format!("projects/{p}/serviceAccounts/{e}"),
                IAM,
            ),
            Req::GetAccount((*e).to_owned()),
        ),
        ["compute", "v1", "projects", p, "global", "firewalls"] if post => (
            r(
                "compute:InsertFirewall",
                "compute.firewalls.create",
                format!("projects/{p}"),
                CE,
            ),
            Req::InsertFirewall,
        ),
        ["compute", "v1", "projects", p, "global", "firewalls", f] if get || patch => {
            let res = format!("projects/{p}/global/firewalls/{f}");
            if get {
                (
                    r("compute:GetFirewall", "compute.firewalls.get", res, CE),
                    Req::GetFirewall((*f).to_owned()),
                )
            } else {
                (
                    r("compute:PatchFirewall", "compute.firewalls.update", res, CE),
                    Req::PatchFirewall((*f).to_owned()),
                )
            }
        }
        ["compute", "v1", "projects", p, "regions", reg, "addresses"] if post => (
            r(
                "compute:InsertAddress",
                "compute.addresses.create",
                format!("projects/{p}/regions/{reg}"),
                CE,
            ),
            Req::InsertAddress,
        ),
        [
            "compute",
            "v1",
            "projects",
            p,
            "regions",
            reg,
            "addresses",
            a,
        ] if get => (
            r(
                "compute:GetAddress",
                "compute.addresses.get",
                format!("projects/{p}/regions/{reg}/addresses/{a}"),
                CE,
            ),
            Req::GetAddress((*a).to_owned()),
        ),
        ["compute", "v1", "projects", p, "zones", z, "instances"] if post => (
            r(
                "compute:InsertInstance",
                "compute.instances.create",
                format!("projects/{p}/zones/{z}"),
                CE,
            ),
            Req::InsertInstance((*z).to_owned()),
        ),
        ["compute", "v1", "projects", p, "zones", z, "instances", i] if get => (
            r(
                "compute:GetInstance",
                "compute.instances.get",
                format!("projects/{p}/zones/{z}/instances/{i}"),
                CE,
            ),
            Req::GetInstance((*z).to_owned(), (*i).to_owned()),
        ),
        ["compute", "v1", "projects", p, "global", "routes"] if get || post => {
            let res = format!("projects/{p}");
            if get {
                (
                    r("compute:ListRoutes", "compute.routes.list", res, CE),
                    Req::ListRoutes,
                )
            } else {
                (
                    r("compute:InsertRoute", "compute.routes.create", res, CE),
                    Req::InsertRoute,
                )
            }
        }
        _ => return None,
    })
}

fn exists(what: &str) -> GoogleError {
    GoogleError::new(
        409,
        "ALREADY_EXISTS",
        format!("The resource '{what}' already exists"),
    )
}

fn missing(what: &str) -> GoogleError {
    GoogleError::not_found(format!("The resource '{what}' was not found"))
}

fn last(s: &str) -> String {
    s.rsplit('/').next().unwrap_or(s).to_owned()
}

/// A finished Compute Engine operation.
fn done(base: &str, p: &str, kind: &str, target: &str) -> Value {
    json!({"kind": "compute#operation", "name": format!("operation-{kind}-{target}"),
        "operationType": "insert", "status": "DONE", "progress": 100,
        "targetLink": format!("{base}/compute/v1/projects/{p}/{kind}/{target}"),
        "selfLink": format!("{base}/compute/v1/projects/{p}/global/operations/operation-{kind}-{target}")})
}

fn firewall_json(base: &str, p: &str, name: &str, f: &Firewall) -> Value {
    let mut udp: Vec<String> = Vec::new();
    let mut allowed = Vec::new();
    for r in &f.rules {
        match (r.protocol.as_str(), r.from) {
            ("udp", Some(port)) => {
                if !udp.contains(&port.to_string()) {
                    udp.push(port.to_string());
                }
            }
            (proto, _) => {
                let a = json!({"IPProtocol": proto});
                if !allowed.contains(&a) {
                    allowed.push(a);
                }
            }
        }
    }
    if !udp.is_empty() {
        allowed.insert(0, json!({"IPProtocol": "udp", "ports": udp}));
    }
    let mut sources: Vec<&str> = f.rules.iter().map(|r| r.source.as_str()).collect();
    sources.sort();
    sources.dedup();
    json!({"kind": "compute#firewall", "name": name, "id": f.id, "network": f.network,
        "direction": "INGRESS", "sourceRanges": sources, "allowed": allowed,
        "targetTags": f.targets, "description": f.description,
        "selfLink": format!("{base}/compute/v1/projects/{p}/global/firewalls/{name}")})
}

/// The rules of a firewall body: each allowed protocol (and port) from each source range.
fn rules_of(body: &Value) -> Vec<Rule> {
    let sources: Vec<String> = body["sourceRanges"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for a in body["allowed"].as_array().into_iter().flatten() {
        let proto = a["IPProtocol"].as_str().unwrap_or_default();
        let ports: Vec<i32> = a["ports"]
            .as_array()
            .map(|p| p.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        for s in &sources {
            if ports.is_empty() {
                out.push(Rule {
                    protocol: proto.to_owned(),
                    from: None,
                    to: None,
                    source: s.clone(),
                });
            }
            for port in &ports {
                out.push(Rule {
                    protocol: proto.to_owned(),
                    from: Some(*port),
                    to: Some(*port),
                    source: s.clone(),
                });
            }
        }
    }
    out
}

fn instance_json(w: &World, base: &str, p: &str, h: &Host) -> Value {
    let running = h.created.elapsed() >= w.create_delay;
    let nat: Vec<Value> = w
        .vpn
        .address_of(&h.id)
        .map(|a| vec![json!({"type": "ONE_TO_ONE_NAT", "name": "External NAT", "natIP": a.ip})])
        .unwrap_or_default();
    let zone = h.tags.get("__zone").cloned().unwrap_or_default();
    let labels: std::collections::BTreeMap<&String, &String> = h
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .collect();
    json!({"kind": "compute#instance", "name": h.name, "id": "4321000000000000001",
        "status": if running { "RUNNING" } else { "PROVISIONING" },
        "machineType": format!("{base}/compute/v1/projects/{p}/zones/{zone}/machineTypes/{}", h.size),
        "canIpForward": h.forwarding,
        "networkInterfaces": [{"subnetwork": format!("{base}/compute/v1/projects/{p}/regions/{}/subnetworks/{}", w.region, h.subnet),
            "networkIP": h.private_ip, "accessConfigs": nat}],
        "serviceAccounts": h.identity.as_ref().map(|e| vec![json!({"email": e})]).unwrap_or_default(),
        "labels": labels, "tags": {"items": h.firewalls},
        "metadata": {"items": [{"key": "user-data", "value": h.user_data}]},
        "selfLink": format!("{base}/compute/v1/projects/{p}/zones/{zone}/instances/{}", h.name)})
}

/// Answers a VPN request.
pub(crate) fn answer(
    w: &mut World,
    base: &str,
    req: Req,
    query: &str,
    body: Value,
) -> Result<Value, GoogleError> {
    let p = w.account.clone();
    match req {
        Req::GetSecret(s) => {
            let x = w
                .vpn
                .secrets
                .get(&s)
                .ok_or_else(|| missing(&format!("projects/{p}/secrets/{s}")))?;
            Ok(json!({"name": x.id, "labels": x.tags, "replication": {"automatic": {}}}))
        }
        Req::CreateSecret => {
            let id = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "secretId")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if w.vpn.secrets.contains_key(&id) {
                return Err(exists(&format!("projects/{p}/secrets/{id}")));
            }
            let name = format!("projects/100000000001/secrets/{id}");
            w.vpn.secrets.insert(
                id,
                crate::vpn::Secret {
                    id: name.clone(),
                    value: None,
                    tags: string_map(&body["labels"]),
                    readers: Vec::new(),
                },
            );
            Ok(json!({"name": name, "labels": body["labels"], "replication": {"automatic": {}}}))
        }
        Req::AddVersion(s) => {
            let x = w
                .vpn
                .secrets
                .get_mut(&s)
                .ok_or_else(|| missing(&format!("projects/{p}/secrets/{s}")))?;
            let data = body["payload"]["data"].as_str().unwrap_or_default();
            let value = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| {
                    GoogleError::new(400, "INVALID_ARGUMENT", format!("payload.data: {e}"))
                })?;
            x.value = Some(String::from_utf8_lossy(&value).into_owned());
            Ok(json!({"name": format!("{}/versions/1", x.id), "state": "ENABLED"}))
        }
        Req::GetVersion(s) | Req::AccessVersion(s)
            if w.vpn.secrets.get(&s).is_none_or(|x| x.value.is_none()) =>
        {
            Err(missing(&format!(
                "projects/{p}/secrets/{s}/versions/latest"
            )))
        }
        Req::GetVersion(s) => {
            let x = &w.vpn.secrets[&s];
            Ok(json!({"name": format!("{}/versions/1", x.id), "state": "ENABLED"}))
        }
        Req::AccessVersion(s) => {
            let x = &w.vpn.secrets[&s];
            let data = base64::engine::general_purpose::STANDARD
                .encode(x.value.as_deref().unwrap_or_default());
            Ok(json!({"name": format!("{}/versions/1", x.id), "payload": {"data": data}}))
        }
        Req::GetPolicy(s) => {
            let x = w
                .vpn
                .secrets
                .get(&s)
                .ok_or_else(|| missing(&format!("projects/{p}/secrets/{s}")))?;
            let bindings = if x.readers.is_empty() {
                json!([])
            } else {
                json!([{"role": "roles/secretmanager.secretAccessor", "members": x.readers}])
            };
            Ok(
                json!({"version": 1, "etag": format!("BwY{}", x.readers.len()), "bindings": bindings}),
            )
        }
        Req::SetPolicy(s) => {
            let x = w
                .vpn
                .secrets
                .get_mut(&s)
                .ok_or_else(|| missing(&format!("projects/{p}/secrets/{s}")))?;
            let etag = format!("BwY{}", x.readers.len());
            let policy = &body["policy"];
            if policy["etag"].as_str().is_some_and(|e| e != etag) {
                return Err(GoogleError::new(
                    409,
                    "ABORTED",
                    "There were concurrent policy changes.",
                ));
            }
            x.readers = policy["bindings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b["role"] == "roles/secretmanager.secretAccessor")
                .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect();
            Ok(
                json!({"version": 1, "etag": format!("BwY{}", x.readers.len()), "bindings": policy["bindings"]}),
            )
        }
        Req::GetAccount(email) => {
            let id = email.split('@').next().unwrap_or_default().to_owned();
            let r = w
                .vpn
                .roles
                .get(&id)
                .ok_or_else(|| missing(&format!("projects/{p}/serviceAccounts/{email}")))?;
            Ok(
                json!({"name": format!("projects/{p}/serviceAccounts/{}", r.id), "email": r.id,
                "uniqueId": "100000000000000000001", "description": r.description}),
            )
        }
        Req::CreateAccount => {
            let id = body["accountId"].as_str().unwrap_or_default().to_owned();
            let email = format!("{id}@{p}.iam.gserviceaccount.com");
            if w.vpn.roles.contains_key(&id) {
                return Err(exists(&format!("projects/{p}/serviceAccounts/{email}")));
            }
            let description = body["serviceAccount"]["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            w.vpn.roles.insert(
                id,
                Role {
                    id: email.clone(),
                    description: description.clone(),
                    in_profile: true,
                    profile: true,
                    ..Role::default()
                },
            );
            Ok(
                json!({"name": format!("projects/{p}/serviceAccounts/{email}"), "email": email, "description": description}),
            )
        }
        Req::GetFirewall(f) => {
            let x = w
                .vpn
                .firewalls
                .get(&f)
                .ok_or_else(|| missing(&format!("projects/{p}/global/firewalls/{f}")))?;
            Ok(firewall_json(base, &p, &f, x))
        }
        Req::InsertFirewall => {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            if w.vpn.firewalls.contains_key(&name) {
                return Err(exists(&format!("projects/{p}/global/firewalls/{name}")));
            }
            let id = w.vpn.id("fw");
            let targets = body["targetTags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            w.vpn.firewalls.insert(
                name.clone(),
                Firewall {
                    id,
                    network: body["network"].as_str().unwrap_or_default().to_owned(),
                    tags: Default::default(),
                    rules: rules_of(&body),
                    description: body["description"].as_str().unwrap_or_default().to_owned(),
                    targets,
                },
            );
            Ok(done(base, &p, "global/firewalls", &name))
        }
        Req::PatchFirewall(f) => {
            let x = w
                .vpn
                .firewalls
                .get_mut(&f)
                .ok_or_else(|| missing(&format!("projects/{p}/global/firewalls/{f}")))?;
            if body.get("allowed").is_some() || body.get("sourceRanges").is_some() {
                x.rules = rules_of(&body);
            }
            Ok(done(base, &p, "global/firewalls", &f))
        }
        Req::GetAddress(a) => {
            let x = w.vpn.addresses.get(&a).ok_or_else(|| {
                missing(&format!("projects/{p}/regions/{}/addresses/{a}", w.region))
            })?;
            let users: Vec<String> = x
                .attached_to
                .iter()
                .map(|h| {
                    let zone = w
                        .vpn
                        .hosts
                        .get(h)
                        .and_then(|h| h.tags.get("__zone").cloned())
                        .unwrap_or_default();
                    format!("{base}/compute/v1/projects/{p}/zones/{zone}/instances/{h}")
                })
                .collect();
            Ok(
                json!({"kind": "compute#address", "name": a, "address": x.ip, "addressType": "EXTERNAL",
                "status": if users.is_empty() { "RESERVED" } else { "IN_USE" }, "users": users, "labels": x.tags}),
            )
        }
        Req::InsertAddress => {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            if w.vpn.addresses.contains_key(&name) {
                return Err(exists(&format!(
                    "projects/{p}/regions/{}/addresses/{name}",
                    w.region
                )));
            }
            let ip = w.vpn.public_ip();
            w.vpn.addresses.insert(
                name.clone(),
                Address {
                    id: name.clone(),
                    ip,
                    tags: string_map(&body["labels"]),
                    attached_to: None,
                },
            );
            let region = w.region.clone();
            Ok(done(
                base,
                &p,
                &format!("regions/{region}/addresses"),
                &name,
            ))
        }
        Req::GetInstance(z, i) => {
            let h = w
                .vpn
                .hosts
                .get(&i)
                .filter(|h| h.tags.get("__zone") == Some(&z))
                .ok_or_else(|| missing(&format!("projects/{p}/zones/{z}/instances/{i}")))?;
            Ok(instance_json(w, base, &p, h))
        }
        Req::InsertInstance(z) => {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            if w.vpn.hosts.contains_key(&name) {
                return Err(exists(&format!("projects/{p}/zones/{z}/instances/{name}")));
            }
            let nic = &body["networkInterfaces"][0];
            let nat = nic["accessConfigs"][0]["natIP"].as_str().map(str::to_owned);
            if let Some(ip) = &nat {
                match w.vpn.addresses.values_mut().find(|a| &a.ip == ip) {
                    Some(a) if a.attached_to.is_none() => a.attached_to = Some(name.clone()),
                    Some(_) => {
                        return Err(GoogleError::new(
                            400,
                            "INVALID_ARGUMENT",
                            format!(
                                "The IP address {ip} is already being used by another resource."
                            ),
                        ));
                    }
                    None => {
                        return Err(GoogleError::new(
                            400,
                            "INVALID_ARGUMENT",
                            format!("The IP address {ip} is not reserved in this project."),
                        ));
                    }
                }
            }
            let mut tags = string_map(&body["labels"]);
            tags.insert("__zone".into(), z.clone());
            let user_data = body["metadata"]["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["key"] == "user-data")
                .and_then(|m| m["value"].as_str())
                .unwrap_or_default()
                .to_owned();
            let serial = w.vpn.serial;
            w.vpn.hosts.insert(
                name.clone(),
                Host {
                    id: name.clone(),
                    name: name.clone(),
                    size: last(body["machineType"].as_str().unwrap_or_default()),
                    image: body["disks"][0]["initializeParams"]["sourceImage"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    subnet: last(nic["subnetwork"].as_str().unwrap_or_default()),
                    forwarding: body["canIpForward"].as_bool().unwrap_or(false),
                    private_ip: format!("10.20.0.{}", 10 + serial % 200),
                    interface: "nic0".into(),
                    identity: body["serviceAccounts"][0]["email"]
                        .as_str()
                        .map(str::to_owned),
                    firewalls: body["tags"]["items"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|t| t.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    user_data,
                    tags,
                    token: None,
                    created: std::time::Instant::now(),
                },
            );
            Ok(done(base, &p, &format!("zones/{z}/instances"), &name))
        }
        Req::ListRoutes => {
            let items: Vec<Value> = w
                .vpn
                .routes
                .iter()
                .map(|r| {
                    json!({"name": r.name, "network": r.table,
                "destRange": r.destination, "nextHopInstance": r.target, "priority": 1000})
                })
                .collect();
            Ok(json!({"kind": "compute#routeList", "items": items}))
        }
        Req::DeleteSecret(s) => {
            w.vpn
                .secrets
                .remove(&s)
                .ok_or_else(|| missing(&format!("projects/{p}/secrets/{s}")))?;
            Ok(json!({}))
        }
        Req::DeleteAccount(email) => {
            let id = email.split('@').next().unwrap_or_default().to_owned();
            w.vpn
                .roles
                .remove(&id)
                .ok_or_else(|| missing(&format!("projects/{p}/serviceAccounts/{email}")))?;
            for s in w.vpn.secrets.values_mut() {
                s.readers.retain(|r| !r.contains(&email));
            }
            Ok(json!({}))
        }
        Req::DeleteAddress(a) => {
            let x = w.vpn.addresses.get(&a).cloned().ok_or_else(|| {
                missing(&format!("projects/{p}/regions/{}/addresses/{a}", w.region))
            })?;
            if let Some(h) = x.attached_to.filter(|h| w.vpn.hosts.contains_key(h)) {
                return Err(GoogleError::new(
                    400,
                    "FAILED_PRECONDITION",
                    format!("The address resource 'projects/{p}/regions/{}/addresses/{a}' is already being used by 'instances/{h}'", w.region),
                )
                .reason("resourceInUseByAnotherResource"));
            }
            w.vpn.addresses.remove(&a);
            let region = w.region.clone();
            Ok(done(base, &p, &format!("regions/{region}/addresses"), &a))
        }
        Req::DeleteInstance(z, i) => {
            w.vpn
                .hosts
                .get(&i)
                .filter(|h| h.tags.get("__zone") == Some(&z))
                .ok_or_else(|| missing(&format!("projects/{p}/zones/{z}/instances/{i}")))?;
            w.vpn.hosts.remove(&i);
            for a in w.vpn.addresses.values_mut() {
                if a.attached_to.as_deref() == Some(i.as_str()) {
                    a.attached_to = None;
                }
            }
            Ok(done(base, &p, &format!("zones/{z}/instances"), &i))
        }
        Req::DeleteRoute(n) => {
            let before = w.vpn.routes.len();
            w.vpn.routes.retain(|r| r.name != n);
            if w.vpn.routes.len() == before {
                return Err(missing(&format!("projects/{p}/global/routes/{n}")));
            }
            Ok(done(base, &p, "global/routes", &n))
        }
        Req::InsertRoute => {
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            if w.vpn.routes.iter().any(|r| r.name == name) {
                return Err(exists(&format!("projects/{p}/global/routes/{name}")));
            }
            w.vpn.routes.push(NetRoute {
                name: name.clone(),
                table: body["network"].as_str().unwrap_or_default().to_owned(),
                destination: body["destRange"].as_str().unwrap_or_default().to_owned(),
                target: body["nextHopInstance"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
            Ok(done(base, &p, "global/routes", &name))
        }
    }
}
