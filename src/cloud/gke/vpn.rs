//! The realm's VPN instance on Google Cloud (issue #23), over the typed REST reader: the key in
//! Secret Manager (a secret, then its first version); a service account of its own, allowed
//! `roles/secretmanager.secretAccessor` on that secret alone; a firewall rule admitting only the
//! definition's rules from the peer, to instances with the VPN's network tag; a regional
//! static external address; the instance (`canIpForward`, the address as its `natIP`, the
//! service account, the user data in the `user-data` metadata key that Ubuntu's cloud-init
//! reads); and one route per customer network in the VPC network through the instance
//! (Google routes belong to a network, not a subnet).
//!
//! Service accounts and firewall rules carry no labels: the realm's ownership marks are written
//! into their description as `key=value` words ([`marks`]) and read back from it.

use std::collections::BTreeMap;

use base64::Engine;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GkeProvider;
use crate::cloud::facts::Status;
use crate::cloud::vpn::{
    BuildInputs, Built, Described, IngressRule, PartFacts, Protocol, RouteFacts, RouteTarget,
    VpnDef, VpnPart, string_map,
};
use crate::cloud::{CloudError, CloudErrorKind, CloudFuture, VpnManager};
use crate::secret::Secret;

/// The role that reads a secret's value.
const ACCESSOR: &str = "roles/secretmanager.secretAccessor";

/// The ownership marks as words of a description: `realmctl: k=v k=v`.
pub fn marks(tags: &BTreeMap<String, String>) -> String {
    let words: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("realmctl: {}", words.join(" "))
}

/// The marks of a description [`marks`] wrote (none otherwise).
pub fn parse_marks(description: &str) -> BTreeMap<String, String> {
    let Some(words) = description
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("realmctl: "))
    else {
        return BTreeMap::new();
    };
    words
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn last(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
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

/// The rules of a firewall resource, in the definition's terms: each allowed protocol (and
/// UDP port) from each source range. Anything but one UDP port or ESP is kept as it is so that
/// it differs.
fn ingress_of(f: &Value) -> Vec<IngressRule> {
    let sources = strings(&f["sourceRanges"]);
    let mut out = Vec::new();
    for a in f["allowed"].as_array().into_iter().flatten() {
        let proto = a["IPProtocol"].as_str().unwrap_or_default();
        let ports = strings(&a["ports"]);
        for s in &sources {
            match proto {
                "esp" | "50" => out.push(IngressRule {
                    protocol: Protocol::Esp,
                    port: None,
                    source: s.clone(),
                }),
                "udp" if !ports.is_empty() => {
                    for p in &ports {
                        match p.parse::<u16>() {
                            Ok(port) => out.push(IngressRule {
                                protocol: Protocol::Udp,
                                port: Some(port),
                                source: s.clone(),
                            }),
                            Err(_) => out.push(IngressRule {
                                protocol: Protocol::Udp,
                                port: None,
                                source: format!("{s} (udp {p})"),
                            }),
                        }
                    }
                }
                other => out.push(IngressRule {
                    protocol: Protocol::Udp,
                    port: None,
                    source: format!("{s} ({other} {})", ports.join(",")),
                }),
            }
        }
    }
    out
}

/// The firewall's `allowed` list and source ranges for `rules`.
fn allowed(rules: &[IngressRule]) -> (Value, Vec<String>) {
    let mut udp: Vec<String> = Vec::new();
    let mut esp = false;
    let mut sources: Vec<String> = Vec::new();
    for r in rules {
        match (r.protocol, r.port) {
            (Protocol::Udp, Some(p)) => udp.push(p.to_string()),
            (Protocol::Udp, None) => {}
            (Protocol::Esp, _) => esp = true,
        }
        if !sources.contains(&r.source) {
            sources.push(r.source.clone());
        }
    }
    let mut a = vec![json!({"IPProtocol": "udp", "ports": udp})];
    if esp {
        a.push(json!({"IPProtocol": "esp"}));
    }
    (Value::Array(a), sources)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Operation {
    #[serde(default)]
    status: String,
    #[serde(default)]
    self_link: String,
    #[serde(default)]
    error: Option<Value>,
}

impl GkeProvider {
    fn project(&self) -> &str {
        &self.settings.project
    }

    pub(super) fn compute(&self, path: &str) -> String {
        format!(
            "{}/compute/v1/projects/{}/{path}",
            self.endpoints.compute,
            self.project()
        )
    }

    pub(super) fn secret_url(&self, def: &VpnDef, rest: &str) -> String {
        format!(
            "{}/v1/projects/{}/secrets/{}{rest}",
            self.endpoints.secret_manager,
            self.project(),
            def.secret
        )
    }

    pub(super) fn account_email(&self, def: &VpnDef) -> String {
        format!("{}@{}.iam.gserviceaccount.com", def.name, self.project())
    }

    pub(super) fn zone(def: &VpnDef) -> Result<&str, CloudError> {
        def.zone.as_deref().ok_or_else(|| {
            CloudError::new(
                CloudErrorKind::Invalid,
                "compute:instances",
                "the VPN definition names no zone",
            )
        })
    }

    /// Waits for a Compute Engine operation to finish (its `selfLink`), bounded by the call
    /// deadline; an operation that ended in an error is that error.
    pub(super) async fn finished(&self, op: &str, mut o: Operation) -> Result<(), CloudError> {
        let rest = self.rest().await?;
        let started = std::time::Instant::now();
        let mut delay = std::time::Duration::from_millis(250);
        while o.status != "DONE" {
            if started.elapsed() > self.settings.call_timeout {
                return Err(CloudError::new(
                    CloudErrorKind::Unavailable,
                    op,
                    "the operation did not finish within the call deadline",
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
            o = rest
                .get::<Operation>(op, &o.self_link)
                .await?
                .ok_or_else(|| CloudError::new(CloudErrorKind::NotFound, op, "operation gone"))?;
        }
        match o.error {
            Some(e) => Err(CloudError::new(
                CloudErrorKind::Invalid,
                op,
                crate::text::one_line(&e.to_string()),
            )),
            None => Ok(()),
        }
    }

    async fn insert(&self, op: &str, url: &str, body: &Value) -> Result<(), CloudError> {
        let o: Operation = self.rest().await?.post(op, url, body).await?;
        self.finished(op, o).await
    }

    async fn secret(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let rest = self.rest().await?;
        let Some(s) = rest
            .get::<Value>("secretmanager:GetSecret", &self.secret_url(def, ""))
            .await?
        else {
            return Ok(None);
        };
        let version = rest
            .get::<Value>(
                "secretmanager:GetSecretVersion",
                &self.secret_url(def, "/versions/latest"),
            )
            .await?;
        Ok(Some(PartFacts {
            id: s["name"].as_str().unwrap_or_default().to_owned(),
            tags: string_map(&s["labels"]),
            described: Described::Secret {
                has_value: version.is_some_and(|v| v["state"] == "ENABLED"),
            },
        }))
    }

    async fn accessors(&self, def: &VpnDef) -> Result<(Value, Vec<String>), CloudError> {
        let policy: Value = self
            .rest()
            .await?
            .post(
                "secretmanager:GetIamPolicy",
                &self.secret_url(def, ":getIamPolicy"),
                &json!({}),
            )
            .await?;
        let members = policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["role"] == ACCESSOR)
            .flat_map(|b| strings(&b["members"]))
            .collect();
        Ok((policy, members))
    }

    async fn identity(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let email = self.account_email(def);
        let url = format!(
            "{}/v1/projects/{}/serviceAccounts/{email}",
            self.endpoints.iam,
            self.project()
        );
        let Some(sa) = self
            .rest()
            .await?
            .get::<Value>("iam:GetServiceAccount", &url)
            .await?
        else {
            return Ok(None);
        };
        let (_, members) = self.accessors(def).await?;
        let me = format!("serviceAccount:{email}");
        Ok(Some(PartFacts {
            id: email.clone(),
            tags: parse_marks(sa["description"].as_str().unwrap_or_default()),
            described: Described::Identity {
                reads: if members.contains(&me) {
                    vec![def.secret.clone()]
                } else {
                    Vec::new()
                },
                complete: true,
            },
        }))
    }

    async fn firewall(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let url = self.compute(&format!("global/firewalls/{}", def.name));
        let Some(f) = self
            .rest()
            .await?
            .get::<Value>("compute:GetFirewall", &url)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(PartFacts {
            id: f["name"].as_str().unwrap_or_default().to_owned(),
            tags: parse_marks(f["description"].as_str().unwrap_or_default()),
            described: Described::Firewall {
                ingress: ingress_of(&f),
                forwards: self.internal_rule(def).await?,
            },
        }))
    }

    fn internal_name(def: &VpnDef) -> String {
        format!("{}-internal", def.name)
    }

    /// Whether the realm's rule admitting its own ranges to the instance exists (a custom VPC
    /// network admits nothing by default; the instance forwards what the cluster sends).
    async fn internal_rule(&self, def: &VpnDef) -> Result<bool, CloudError> {
        let url = self.compute(&format!("global/firewalls/{}", Self::internal_name(def)));
        let rule = self
            .rest()
            .await?
            .get::<Value>("compute:GetFirewall", &url)
            .await?;
        Ok(rule.is_some_and(|r| {
            parse_marks(r["description"].as_str().unwrap_or_default()) == def.tags
        }))
    }

    /// The ranges of the route subnets (primary and secondary: nodes, pods, Services).
    async fn realm_ranges(&self, def: &VpnDef) -> Result<Vec<String>, CloudError> {
        let rest = self.rest().await?;
        let mut out = Vec::new();
        for s in &def.route_subnets {
            let url = self.compute(&format!(
                "regions/{}/subnetworks/{}",
                self.settings.region,
                last(s)
            ));
            if let Some(sub) = rest.get::<Value>("compute:GetSubnetwork", &url).await? {
                out.extend(sub["ipCidrRange"].as_str().map(str::to_owned));
                for r in sub["secondaryIpRanges"].as_array().into_iter().flatten() {
                    out.extend(r["ipCidrRange"].as_str().map(str::to_owned));
                }
            }
        }
        Ok(out)
    }

    async fn address(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let url = self.compute(&format!(
            "regions/{}/addresses/{}",
            self.settings.region, def.name
        ));
        let Some(a) = self
            .rest()
            .await?
            .get::<Value>("compute:GetAddress", &url)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(PartFacts {
            id: a["name"].as_str().unwrap_or_default().to_owned(),
            tags: string_map(&a["labels"]),
            described: Described::Address {
                ip: a["address"].as_str().unwrap_or_default().to_owned(),
                attached_to: strings(&a["users"]).first().map(|u| last(u).to_owned()),
            },
        }))
    }

    async fn host(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let zone = Self::zone(def)?;
        let url = self.compute(&format!("zones/{zone}/instances/{}", def.name));
        let rest = self.rest().await?;
        let Some(i) = rest.get::<Value>("compute:GetInstance", &url).await? else {
            return Ok(None);
        };
        let nic = &i["networkInterfaces"][0];
        let subnet_url = nic["subnetwork"].as_str().unwrap_or_default();
        let mut network_cidrs = Vec::new();
        if !subnet_url.is_empty() {
            let sub = self.compute(&format!(
                "regions/{}/subnetworks/{}",
                self.settings.region,
                last(subnet_url)
            ));
            if let Some(s) = rest.get::<Value>("compute:GetSubnetwork", &sub).await? {
                network_cidrs.extend(s["ipCidrRange"].as_str().map(str::to_owned));
                for r in s["secondaryIpRanges"].as_array().into_iter().flatten() {
                    network_cidrs.extend(r["ipCidrRange"].as_str().map(str::to_owned));
                }
            }
        }
        let status = match i["status"].as_str().unwrap_or_default() {
            "RUNNING" => Status::Active,
            "PROVISIONING" | "STAGING" => Status::Creating,
            other => Status::Other(other.to_owned()),
        };
        Ok(Some(PartFacts {
            id: i["name"].as_str().unwrap_or_default().to_owned(),
            tags: string_map(&i["labels"]),
            described: Described::Host {
                size: last(i["machineType"].as_str().unwrap_or_default()).to_owned(),
                subnet: last(subnet_url).to_owned(),
                forwarding: i["canIpForward"].as_bool().unwrap_or(false),
                status,
                private_ip: nic["networkIP"].as_str().map(str::to_owned),
                public_ip: nic["accessConfigs"][0]["natIP"].as_str().map(str::to_owned),
                network_cidrs,
            },
        }))
    }

    fn network_url(&self, def: &VpnDef) -> String {
        format!(
            "projects/{}/global/networks/{}",
            self.project(),
            def.network.as_deref().unwrap_or("default")
        )
    }

    async fn routes(&self, def: &VpnDef, built: &Built) -> Result<Option<PartFacts>, CloudError> {
        let list: Value = self
            .rest()
            .await?
            .get("compute:ListRoutes", &self.compute("global/routes"))
            .await?
            .unwrap_or(Value::Null);
        let network = def.network.clone().unwrap_or_else(|| "default".into());
        let host = built.get(&VpnPart::Host).map(|f| f.id.as_str());
        let routes = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| last(r["network"].as_str().unwrap_or_default()) == network)
            .filter_map(|r| {
                let dest = r["destRange"].as_str()?;
                if !def.remote_cidrs.iter().any(|c| c == dest) {
                    return None;
                }
                let hop = r["nextHopInstance"]
                    .as_str()
                    .or(r["nextHopGateway"].as_str())
                    .or(r["nextHopIp"].as_str())
                    .unwrap_or("another next hop");
                let target = match host {
                    Some(h) if last(hop) == h && hop.contains("/instances/") => {
                        RouteTarget::Host(h.to_owned())
                    }
                    _ => RouteTarget::Other(hop.to_owned()),
                };
                Some(RouteFacts {
                    table: network.clone(),
                    destination: dest.to_owned(),
                    target,
                })
            })
            .collect();
        Ok(Some(PartFacts {
            id: network.clone(),
            tags: BTreeMap::new(),
            described: Described::Routes {
                tables: vec![network],
                routes,
            },
        }))
    }

    async fn build_secret(
        &self,
        def: &VpnDef,
        built: &Built,
        key: Option<&Secret>,
    ) -> Result<(), CloudError> {
        let key = key.ok_or_else(|| {
            CloudError::new(CloudErrorKind::Invalid, "vpn:secret", "no key to store")
        })?;
        let rest = self.rest().await?;
        if !built.contains_key(&VpnPart::Secret) {
            let url = format!(
                "{}/v1/projects/{}/secrets?secretId={}",
                self.endpoints.secret_manager,
                self.project(),
                def.secret
            );
            let _: Value = rest
                .post(
                    "secretmanager:CreateSecret",
                    &url,
                    &json!({"replication": {"automatic": {}}, "labels": def.tags}),
                )
                .await?;
        }
        let data = base64::engine::general_purpose::STANDARD.encode(key.expose());
        let _: Value = rest
            .post(
                "secretmanager:AddSecretVersion",
                &self.secret_url(def, ":addVersion"),
                &json!({"payload": {"data": data}}),
            )
            .await?;
        Ok(())
    }

    async fn build_identity(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let rest = self.rest().await?;
        let email = self.account_email(def);
        if !built.contains_key(&VpnPart::Identity) {
            let url = format!(
                "{}/v1/projects/{}/serviceAccounts",
                self.endpoints.iam,
                self.project()
            );
            let _: Value = rest
                .post(
                    "iam:CreateServiceAccount",
                    &url,
                    &json!({"accountId": def.name, "serviceAccount": {
                        "displayName": format!("realm VPN of {}", def.realm),
                        "description": format!("{}\nthe realm VPN instance: reads its pre-shared key only", marks(&def.tags)),
                    }}),
                )
                .await?;
        }
        let (mut policy, members) = self.accessors(def).await?;
        let me = format!("serviceAccount:{email}");
        if !members.contains(&me) {
            let bindings = policy["bindings"].as_array_mut();
            let binding = json!({"role": ACCESSOR, "members": [me]});
            match bindings {
                Some(b) => b.push(binding),
                None => policy["bindings"] = json!([binding]),
            }
            let _: Value = rest
                .post(
                    "secretmanager:SetIamPolicy",
                    &self.secret_url(def, ":setIamPolicy"),
                    &json!({"policy": policy}),
                )
                .await?;
        }
        Ok(())
    }

    async fn build_firewall(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let (allowed, sources) = allowed(&def.ingress);
        match built.get(&VpnPart::Firewall).map(|f| &f.described) {
            Some(Described::Firewall { ingress, .. }) => {
                if def.ingress.iter().any(|r| !ingress.contains(r)) {
                    let url = self.compute(&format!("global/firewalls/{}", def.name));
                    let o: Operation = self
                        .rest()
                        .await?
                        .patch(
                            "compute:PatchFirewall",
                            &url,
                            &json!({"allowed": allowed, "sourceRanges": sources}),
                        )
                        .await?;
                    self.finished("compute:PatchFirewall", o).await?;
                }
            }
            _ => {
                self.insert(
                    "compute:InsertFirewall",
                    &self.compute("global/firewalls"),
                    &json!({"name": def.name, "network": self.network_url(def), "direction": "INGRESS",
                        "priority": 1000, "sourceRanges": sources, "allowed": allowed,
                        "targetTags": [def.name],
                        "description": format!("{}\nrealm VPN: IKE and ESP from the customer gateway only", marks(&def.tags))}),
                )
                .await?;
            }
        }
        if self.internal_rule(def).await? {
            return Ok(());
        }
        let ranges = self.realm_ranges(def).await?;
        match self
            .insert(
                "compute:InsertFirewall",
                &self.compute("global/firewalls"),
                &json!({"name": Self::internal_name(def), "network": self.network_url(def),
                    "direction": "INGRESS", "priority": 1000, "sourceRanges": ranges,
                    "allowed": [{"IPProtocol": "all"}], "targetTags": [def.name],
                    "description": format!("{}\nrealm VPN: the realm's own ranges, forwarded to the customer", marks(&def.tags))}),
            )
            .await
        {
            // Someone else's rule of that name: the describe says it is not the realm's.
            Err(e) if e.kind == CloudErrorKind::Conflict => Ok(()),
            other => other,
        }
    }

    async fn build_host(
        &self,
        def: &VpnDef,
        built: &Built,
        user_data: &str,
    ) -> Result<(), CloudError> {
        if built.contains_key(&VpnPart::Host) {
            // Google sets forwarding and the external address only when it creates an
            // instance: one without them cannot be finished, only replaced.
            return Err(CloudError::new(
                CloudErrorKind::Conflict,
                "compute:instances",
                format!(
                    "the VPN instance {} lacks IP forwarding or its static address, which Google sets only at creation; delete it and run install again",
                    def.name
                ),
            ));
        }
        let zone = Self::zone(def)?;
        let ip = match built.get(&VpnPart::Address).map(|f| &f.described) {
            Some(Described::Address { ip, .. }) => ip.clone(),
            _ => {
                return Err(CloudError::new(
                    CloudErrorKind::Invalid,
                    "vpn:instance",
                    "the VPN address is not built yet",
                ));
            }
        };
        let email = built
            .get(&VpnPart::Identity)
            .map(|f| f.id.clone())
            .unwrap_or_else(|| self.account_email(def));
        self.insert(
            "compute:InsertInstance",
            &self.compute(&format!("zones/{zone}/instances")),
            &json!({
                "name": def.name,
                "machineType": format!("zones/{zone}/machineTypes/{}", def.size),
                "canIpForward": true,
                "disks": [{"boot": true, "autoDelete": true, "initializeParams": {"sourceImage": def.image}}],
                "networkInterfaces": [{
                    "subnetwork": format!("projects/{}/regions/{}/subnetworks/{}", self.project(), self.settings.region, def.subnet),
                    "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT", "natIP": ip}],
                }],
                "serviceAccounts": [{"email": email, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
                "metadata": {"items": [{"key": "user-data", "value": user_data}]},
                "labels": def.tags,
                "tags": {"items": [def.name]},
            }),
        )
        .await
    }

    async fn build_routes(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let zone = Self::zone(def)?;
        let have: Vec<&str> = match built.get(&VpnPart::Routes).map(|f| &f.described) {
            Some(Described::Routes { routes, .. }) => {
                routes.iter().map(|r| r.destination.as_str()).collect()
            }
            _ => Vec::new(),
        };
        for (n, cidr) in def.remote_cidrs.iter().enumerate() {
            if have.contains(&cidr.as_str()) {
                continue;
            }
            let body = json!({"name": format!("{}-{n}", def.name), "network": self.network_url(def),
                "destRange": cidr, "priority": 1000,
                "nextHopInstance": format!("projects/{}/zones/{zone}/instances/{}", self.project(), def.name),
                "description": format!("{}\nthe customer network {cidr} through the realm VPN", marks(&def.tags))});
            match self
                .insert("compute:InsertRoute", &self.compute("global/routes"), &body)
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind == CloudErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl VpnManager for GkeProvider {
    fn delete_vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        facts: &'a PartFacts,
    ) -> CloudFuture<'a, ()> {
        self.delete_part(def, part, facts).boxed()
    }

    fn vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        built: &'a Built,
    ) -> CloudFuture<'a, Option<PartFacts>> {
        async move {
            match part {
                VpnPart::Secret => self.secret(def).await,
                VpnPart::Identity => self.identity(def).await,
                VpnPart::Firewall => self.firewall(def).await,
                VpnPart::Address => self.address(def).await,
                VpnPart::Host => self.host(def).await,
                VpnPart::Routes => self.routes(def, built).await,
            }
        }
        .boxed()
    }

    fn build_vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        built: &'a Built,
        with: &'a BuildInputs<'a>,
    ) -> CloudFuture<'a, ()> {
        async move {
            match part {
                VpnPart::Secret => self.build_secret(def, built, with.key).await,
                VpnPart::Identity => self.build_identity(def, built).await,
                VpnPart::Firewall => self.build_firewall(def, built).await,
                VpnPart::Address => {
                    self.insert(
                        "compute:InsertAddress",
                        &self.compute(&format!("regions/{}/addresses", self.settings.region)),
                        &json!({"name": def.name, "addressType": "EXTERNAL", "labels": def.tags,
                            "description": format!("the realm VPN of {}", def.realm)}),
                    )
                    .await
                }
                VpnPart::Host => self.build_host(def, built, with.user_data).await,
                VpnPart::Routes => self.build_routes(def, built).await,
            }
        }
        .boxed()
    }

    fn vpn_key<'a>(&'a self, def: &'a VpnDef) -> CloudFuture<'a, Secret> {
        async move {
            let op = "secretmanager:AccessSecretVersion";
            let v: Value = self
                .rest()
                .await?
                .get(op, &self.secret_url(def, "/versions/latest:access"))
                .await?
                .ok_or_else(|| CloudError::new(CloudErrorKind::NotFound, op, "no key stored"))?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(v["payload"]["data"].as_str().unwrap_or_default())
                .map_err(|e| CloudError::new(CloudErrorKind::Invalid, op, e.to_string()))?;
            String::from_utf8(data)
                .map(Secret::new)
                .map_err(|e| CloudError::new(CloudErrorKind::Invalid, op, e.to_string()))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_through_a_description() {
        let tags: BTreeMap<String, String> = [
            ("realmctl-realm".to_owned(), "acme".to_owned()),
            ("realmctl-managed-by".to_owned(), "realmctl".to_owned()),
        ]
        .into();
        let d = format!("{}\nwhat it is", marks(&tags));
        assert_eq!(parse_marks(&d), tags);
        assert!(parse_marks("someone else's rule").is_empty());
    }

    #[test]
    fn firewall_rules_read_back_as_the_definition_writes_them() {
        let peer = "198.51.100.7/32".to_owned();
        let rules = vec![
            IngressRule {
                protocol: Protocol::Udp,
                port: Some(500),
                source: peer.clone(),
            },
            IngressRule {
                protocol: Protocol::Udp,
                port: Some(4500),
                source: peer.clone(),
            },
            IngressRule {
                protocol: Protocol::Esp,
                port: None,
                source: peer.clone(),
            },
        ];
        let (a, s) = allowed(&rules);
        let back = ingress_of(&json!({"allowed": a, "sourceRanges": s}));
        assert_eq!(back, rules);
        let open = ingress_of(
            &json!({"allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
        );
        assert!(open[0].source.contains("tcp 22"), "{open:?}");
    }
}
