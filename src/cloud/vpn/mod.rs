//! The realm's VPN instance as part of the one cluster definition (issue #23), and the pure
//! judgements about it.
//!
//! The Dedicated SaaS model creates one small Linux instance per realm that terminates the
//! customer's IPsec tunnel and forwards between the realm's network and the customer's. What
//! that instance is — its image and size, its subnet, the only traffic it admits from the
//! internet, the routes through it, the name of the secret that holds the pre-shared key, the
//! tunnel's proposals, the realm's tags — is a [`VpnDef`] inside the
//! [`ClusterDefinition`](super::definition::ClusterDefinition): rendered for approval in phase
//! 5, sent to the cloud by `vpn.apply`, and used to judge whatever a cloud describes.
//!
//! The instance is built in parts ([`VpnPart::ORDER`]): the secret, the instance's own
//! identity (allowed to read that one secret), the firewall, the static address, the instance,
//! the routes. For each, a client describes what is there ([`PartFacts`]) and [`judge`]
//! decides: create it, finish what this realm started on its own resource (rules not yet
//! authorised after a crash, an address not yet attached), adopt it, or refuse a resource this
//! realm did not create or that differs from the definition. Nothing here talks to a cloud.
//!
//! The pre-shared key is never part of the definition, the instance's user data, the journal
//! or any artifact: realmctl generates it ([`new_key`]) and hands it only to the cloud's secret
//! store; the instance reads it at boot through its own identity ([`user_data`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod def;

pub use def::{HostProfile, IngressRule, Protocol, TUNNEL, Tunnel, VpnDef, definition};

use super::facts::Status;
use crate::crypto::sha256_hex;
use crate::secret::Secret;
use crate::templates::TemplateError;

/// The parts of the VPN, each created or adopted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VpnPart {
    /// The secret holding the pre-shared key.
    Secret,
    /// The instance's own identity, allowed to read the secret and nothing else.
    Identity,
    /// The firewall (security group, network security group, firewall rules).
    Firewall,
    /// The static public address.
    Address,
    /// The instance.
    Host,
    /// The routes to the customer's networks through it.
    Routes,
}

impl VpnPart {
    /// The order they are built in (each uses what the earlier ones are).
    /// The address comes before the instance: some clouds give an instance its static address
    /// only when they create it (Google's `natIP`, an Azure NIC's public IP).
    pub const ORDER: [VpnPart; 6] = [
        VpnPart::Secret,
        VpnPart::Identity,
        VpnPart::Firewall,
        VpnPart::Address,
        VpnPart::Host,
        VpnPart::Routes,
    ];

    /// Its name in journals and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            VpnPart::Secret => "secret",
            VpnPart::Identity => "identity",
            VpnPart::Firewall => "firewall",
            VpnPart::Address => "address",
            VpnPart::Host => "instance",
            VpnPart::Routes => "routes",
        }
    }
}

impl std::fmt::Display for VpnPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a route sends its traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "id")]
pub enum RouteTarget {
    /// This realm's VPN instance (or its network interface).
    Host(String),
    /// Anything else.
    Other(String),
}

/// One route to a customer network, as described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteFacts {
    /// The route table (or network) it is in.
    pub table: String,
    /// Its destination.
    pub destination: String,
    /// Where it goes.
    pub target: RouteTarget,
}

/// What a described part is, in the fields that matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Described {
    /// The secret (its value is never read to describe it).
    Secret {
        /// Whether it holds a value (a create that died between making the secret and
        /// storing its value leaves one without).
        has_value: bool,
    },
    /// The identity: which secrets it may read, and whether the instance can take it on
    /// (e.g. an IAM role in an instance profile).
    Identity {
        /// Secrets its permissions let it read.
        reads: Vec<String>,
        /// Whether it is ready to be given to the instance.
        complete: bool,
    },
    /// The firewall: what it admits from outside the realm's network, and whether it admits
    /// the realm's own network (whose traffic the instance forwards to the customer).
    Firewall {
        /// Those rules.
        ingress: Vec<IngressRule>,
        /// Whether the realm's own ranges reach the instance (AWS: a rule per VPC range;
        /// Google: the realm's `-internal` rule; Azure: the network security group's default).
        forwards: bool,
    },
    /// The static address.
    Address {
        /// The address.
        ip: String,
        /// The instance it is attached to.
        attached_to: Option<String>,
    },
    /// The instance.
    Host {
        /// Its size.
        size: String,
        /// Its subnet.
        subnet: String,
        /// Whether it may forward packets not addressed to it (IP forwarding, source/dest
        /// check off).
        forwarding: bool,
        /// Where it stands.
        status: Status,
        /// Its private address.
        private_ip: Option<String>,
        /// Its public address, if it has one.
        public_ip: Option<String>,
        /// The address ranges of its network (what the customer routes into the tunnel).
        network_cidrs: Vec<String>,
    },
    /// The routes to the customer's networks in the tables of the route subnets.
    Routes {
        /// The tables the route subnets use.
        tables: Vec<String>,
        /// The routes whose destination is one of the customer's networks.
        routes: Vec<RouteFacts>,
    },
}

/// One part as a cloud describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartFacts {
    /// Its id (an ARN, a resource id, a self link; for routes, the network).
    pub id: String,
    /// Its tags (labels); routes carry none.
    pub tags: BTreeMap<String, String>,
    /// Its fields.
    pub described: Described,
}

/// The parts built so far, as described after building them (for a build: with the part itself
/// as described, when it exists and is being finished).
pub type Built = BTreeMap<VpnPart, PartFacts>;

/// What a create needs beyond the definition and the parts before it.
pub struct BuildInputs<'a> {
    /// The new pre-shared key (for the secret's create only).
    pub key: Option<&'a Secret>,
    /// The instance's user data ([`user_data`]).
    pub user_data: &'a str,
}

/// What to do about one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartDecision {
    /// Nothing there: create it.
    Create,
    /// This realm's, as defined: use it as it is.
    Adopt,
    /// Someone else's, or not as defined: never changed; the reason.
    Conflict(String),
    /// It is this realm's and matches, but what realmctl does to it after creating it is not
    /// all done (a crash in between): finish these, on this realm's own resource only.
    Finish(Vec<String>),
}

/// Judges a described part against the definition (pure). `built` holds the parts before it:
/// the instance's id (an address or a route pointing at it is this realm's) and the address the
/// instance must carry.
pub fn judge(
    part: VpnPart,
    facts: Option<&PartFacts>,
    def: &VpnDef,
    realm_key: &str,
    realm: &str,
    built: &Built,
) -> PartDecision {
    let host = built.get(&VpnPart::Host).map(|f| f.id.as_str());
    if part == VpnPart::Routes {
        return judge_routes(facts, def, host);
    }
    let Some(f) = facts else {
        return PartDecision::Create;
    };
    let what = format!("VPN {part} {}", f.id);
    match f.tags.get(realm_key) {
        Some(r) if r == realm => {}
        Some(r) => {
            return PartDecision::Conflict(format!(
                "{what} belongs to realm `{r}` ({realm_key}); it is never changed or adopted"
            ));
        }
        None => {
            return PartDecision::Conflict(format!(
                "{what} exists but was not created by realmctl for realm `{realm}` (no {realm_key} tag); it is left alone"
            ));
        }
    }
    let conflict = |why: String| PartDecision::Conflict(format!("{what}: {why}"));
    match &f.described {
        Described::Secret { has_value: true } => PartDecision::Adopt,
        Described::Secret { has_value: false } => {
            PartDecision::Finish(vec!["store a new key in it".into()])
        }
        Described::Identity { reads, complete } => {
            let mut todo = Vec::new();
            if !reads.iter().any(|s| s == &def.secret) {
                todo.push(format!("allow reading secret {}", def.secret));
            }
            if let Some(other) = reads.iter().find(|s| *s != &def.secret) {
                return conflict(format!(
                    "may read `{other}` as well; the instance's identity reads its own key only"
                ));
            }
            if !complete {
                todo.push("make it the instance's identity".into());
            }
            finish_or_adopt(todo)
        }
        Described::Firewall { ingress, forwards } => {
            let mut want = def.ingress.clone();
            want.sort();
            let mut have = ingress.clone();
            have.sort();
            if let Some(extra) = have.iter().find(|r| !want.contains(r)) {
                return conflict(format!(
                    "admits {extra} from outside the realm's network, which the definition does not; it is never changed"
                ));
            }
            let mut missing: Vec<String> = want
                .iter()
                .filter(|r| !have.contains(r))
                .map(|r| format!("admit {r}"))
                .collect();
            if !forwards {
                missing.push("admit the realm's own network".into());
            }
            finish_or_adopt(missing)
        }
        // Attached to something while the instance is not known yet: the instance's own
        // judgement checks it carries this address.
        Described::Address { attached_to, .. } => match (attached_to, host) {
            (Some(a), Some(h)) if a != h => conflict(format!(
                "is attached to {a}, not to this realm's VPN instance"
            )),
            _ => PartDecision::Adopt,
        },
        Described::Host {
            size,
            subnet,
            forwarding,
            public_ip,
            ..
        } => {
            if size != &def.size {
                return conflict(format!("is a {size}, the definition a {}", def.size));
            }
            if subnet != &def.subnet {
                return conflict(format!(
                    "is in subnet {subnet}, the definition in {}",
                    def.subnet
                ));
            }
            let mut todo = Vec::new();
            if !forwarding {
                todo.push("let it forward (source/destination check off)".into());
            }
            let address = match built.get(&VpnPart::Address).map(|f| &f.described) {
                Some(Described::Address { ip, .. }) => Some(ip.as_str()),
                _ => None,
            };
            if let Some(ip) = address
                && public_ip.as_deref() != Some(ip)
            {
                todo.push(format!("attach the address {ip}"));
            }
            finish_or_adopt(todo)
        }
        Described::Routes { .. } => PartDecision::Adopt,
    }
}

fn finish_or_adopt(todo: Vec<String>) -> PartDecision {
    if todo.is_empty() {
        PartDecision::Adopt
    } else {
        PartDecision::Finish(todo)
    }
}

/// Routes carry no tags: one to a customer network that goes elsewhere is someone else's
/// and a conflict; missing ones are this realm's to add.
fn judge_routes(facts: Option<&PartFacts>, def: &VpnDef, host: Option<&str>) -> PartDecision {
    let Some(host) = host else {
        return PartDecision::Conflict(
            "the routes need the VPN instance, which does not exist".into(),
        );
    };
    let (tables, routes) = match facts.map(|f| &f.described) {
        Some(Described::Routes { tables, routes }) => (tables.as_slice(), routes.as_slice()),
        _ => (&[][..], &[][..]),
    };
    if tables.is_empty() {
        return PartDecision::Conflict(format!(
            "no route table found for the subnets {}",
            def.route_subnets.join(", ")
        ));
    }
    let mut todo = Vec::new();
    for t in tables {
        for cidr in &def.remote_cidrs {
            match routes
                .iter()
                .find(|r| &r.table == t && &r.destination == cidr)
            {
                Some(RouteFacts {
                    target: RouteTarget::Host(h),
                    ..
                }) if h == host => {}
                Some(r) => {
                    let to = match &r.target {
                        RouteTarget::Host(h) | RouteTarget::Other(h) => h,
                    };
                    return PartDecision::Conflict(format!(
                        "route table {t} already sends {cidr} to {to}, not to this realm's VPN instance; it is never changed"
                    ));
                }
                None => todo.push(format!("route {cidr} in {t}")),
            }
        }
    }
    finish_or_adopt(todo)
}

/// What `vpn.apply` built or adopted, as the journal keeps it and the report shows it (never the
/// key: the secret by name and id only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpnBuilt {
    /// The instance's name.
    pub name: String,
    /// The instance's id.
    pub instance: String,
    /// Its static public address: the realm's end of the tunnel.
    pub address: String,
    /// The firewall's id.
    pub firewall: String,
    /// What the firewall admits from outside the realm's network.
    pub admits: Vec<IngressRule>,
    /// The routes through the instance: (route table, destination).
    pub routes: Vec<(String, String)>,
    /// The secret holding the key: its name and id.
    pub secret: (String, String),
    /// The instance's identity.
    pub identity: String,
}

impl VpnBuilt {
    /// From the parts as described once built (pure).
    pub fn from_parts(def: &VpnDef, built: &Built) -> VpnBuilt {
        let id = |p: VpnPart| built.get(&p).map(|f| f.id.clone()).unwrap_or_default();
        let address = match built.get(&VpnPart::Address).map(|f| &f.described) {
            Some(Described::Address { ip, .. }) => ip.clone(),
            _ => String::new(),
        };
        let admits = match built.get(&VpnPart::Firewall).map(|f| &f.described) {
            Some(Described::Firewall { ingress, .. }) => ingress.clone(),
            _ => Vec::new(),
        };
        let routes = match built.get(&VpnPart::Routes).map(|f| &f.described) {
            Some(Described::Routes { routes, .. }) => routes
                .iter()
                .filter(|r| matches!(r.target, RouteTarget::Host(_)))
                .map(|r| (r.table.clone(), r.destination.clone()))
                .collect(),
            _ => Vec::new(),
        };
        VpnBuilt {
            name: def.name.clone(),
            instance: id(VpnPart::Host),
            address,
            firewall: id(VpnPart::Firewall),
            admits,
            routes,
            secret: (def.secret.clone(), id(VpnPart::Secret)),
            identity: id(VpnPart::Identity),
        }
    }
}

/// The string members of a JSON object (a resource's tags or labels as a REST API answers
/// them); anything else is none.
pub fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A new pre-shared key: 32 random bytes, base64url (43 characters). Only ever handed to the
/// cloud's secret store.
pub fn new_key() -> Secret {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    crate::crypto::random(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the customer configures on their side, as the install tells them and the approval
/// of it binds to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerPart {
    /// The realm's end of the tunnel: the instance's static public address.
    pub realm_peer: String,
    /// The realm end's IKE identity (an FQDN-type id: the instance sits behind the cloud's
    /// one-to-one NAT, so its address is not its own).
    pub realm_id: String,
    /// The customer's gateway, as the definition has it.
    pub customer_peer: String,
    /// IKE version.
    pub ike_version: u8,
    /// Phase-1 proposal.
    pub ike: String,
    /// Phase-2 proposal.
    pub esp: String,
    /// Tunnel kind.
    pub routing: String,
    /// The realm's networks (their traffic selectors and routes on the customer's side).
    pub realm_cidrs: Vec<String>,
    /// The customer's networks.
    pub customer_cidrs: Vec<String>,
    /// Where the pre-shared key is (never the key).
    pub key: String,
}

impl CustomerPart {
    /// What the customer is told (pure).
    pub fn new(def: &VpnDef, host: &HostProfile, address: &str, realm_cidrs: &[String]) -> Self {
        CustomerPart {
            realm_peer: address.to_owned(),
            realm_id: format!("@{}", def.name),
            customer_peer: def.peer.clone(),
            ike_version: def.ike_version,
            ike: def.ike.clone(),
            esp: def.esp.clone(),
            routing: TUNNEL.routing.to_owned(),
            realm_cidrs: realm_cidrs.to_vec(),
            customer_cidrs: def.remote_cidrs.clone(),
            key: format!(
                "secret `{}` ({}), or once with `realmctl vpn reveal-key`",
                def.secret, host.store
            ),
        }
    }

    /// `sha256:<hex>` of its canonical JSON: what an approval of the customer's part covers,
    /// so a changed address or network needs a new confirmation.
    pub fn digest(&self) -> String {
        let v = serde_json::to_value(self).expect("serialises");
        format!(
            "sha256:{}",
            sha256_hex(crate::crypto::canonical_json(&v).as_bytes())
        )
    }

    /// The instructions, one line (a step's waiting reason).
    pub fn instructions(&self) -> String {
        format!(
            "configure the customer's side of the realm VPN: a {} IPsec tunnel, IKEv{}, from the customer gateway {} to the realm's peer {} (its IKE identity {}); IKE {} / ESP {}; customer networks {} ⇄ realm networks {}; pre-shared key in {}. Then confirm with `realmctl approve --phase 6 --by NAME`",
            self.routing,
            self.ike_version,
            self.customer_peer,
            self.realm_peer,
            self.realm_id,
            self.ike,
            self.esp,
            self.customer_cidrs.join(", "),
            self.realm_cidrs.join(", "),
            self.key,
        )
    }
}

/// The instance's cloud-init user data (pure), rendered from the definition: IP forwarding on,
/// libreswan configured for a route-based tunnel to the peer, and a boot script that reads
/// the pre-shared key with the instance's own identity into a root-only file. The key is not
/// an input: it cannot be in here.
pub fn user_data(def: &VpnDef, host: &HostProfile) -> Result<String, TemplateError> {
    let read_key = host
        .read_key
        .replace("{secret}", &crate::templates::shell_quote(&def.secret))
        .replace("{location}", &crate::templates::shell_quote(&def.location));
    let model = HostModel {
        realm: &def.realm,
        peer: peer_address(def),
        vpn: def,
        read_key: &read_key,
        ipsec_conf: ipsec_conf(def)?,
        up_script: String::new(),
    };
    let up_script = crate::templates::render("vpn/up.sh", &model)?;
    crate::templates::render("vpn/cloud-init.yaml", &HostModel { up_script, ..model })
}

/// The instance's libreswan connection (pure): the same text the phase-4 artifact
/// `vpn-ipsec.conf` shows and the user data installs.
pub fn ipsec_conf(def: &VpnDef) -> Result<String, TemplateError> {
    let model = HostModel {
        realm: &def.realm,
        peer: peer_address(def),
        vpn: def,
        read_key: "",
        ipsec_conf: String::new(),
        up_script: String::new(),
    };
    crate::templates::render("vpn/ipsec.conf", &model)
}

#[derive(Serialize)]
struct HostModel<'a> {
    realm: &'a str,
    peer: &'a str,
    vpn: &'a VpnDef,
    read_key: &'a str,
    ipsec_conf: String,
    up_script: String,
}

/// The peer's address without its `/32`.
pub fn peer_address(def: &VpnDef) -> &str {
    def.peer.split('/').next().unwrap_or(&def.peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: HostProfile = HostProfile {
        image: "img",
        size: "small",
        read_key: "read-key {secret}",
        store: "the store",
        zone: None,
    };

    fn def() -> VpnDef {
        VpnDef {
            realm: "acme".into(),
            location: "region-1".into(),
            name: "acme-vpn".into(),
            image: "img".into(),
            size: "small".into(),
            subnet: "s1".into(),
            zone: None,
            network: None,
            route_subnets: vec!["s1".into(), "s2".into()],
            peer: "198.51.100.7/32".into(),
            remote_cidrs: vec!["192.168.10.0/24".into(), "192.168.20.0/24".into()],
            ingress: vec![
                IngressRule {
                    protocol: Protocol::Udp,
                    port: Some(500),
                    source: "198.51.100.7/32".into(),
                },
                IngressRule {
                    protocol: Protocol::Udp,
                    port: Some(4500),
                    source: "198.51.100.7/32".into(),
                },
                IngressRule {
                    protocol: Protocol::Esp,
                    port: None,
                    source: "198.51.100.7/32".into(),
                },
            ],
            secret: "acme-vpn-psk".into(),
            ike_version: 2,
            ike: TUNNEL.ike.into(),
            esp: TUNNEL.esp.into(),
            tags: [("realm".to_owned(), "acme".to_owned())].into(),
        }
    }

    fn facts(described: Described, realm: Option<&str>) -> PartFacts {
        PartFacts {
            id: "id-1".into(),
            tags: realm
                .map(|r| [("realm".to_owned(), r.to_owned())].into())
                .unwrap_or_default(),
            described,
        }
    }

    fn j(part: VpnPart, f: Option<&PartFacts>, host: Option<&str>) -> PartDecision {
        let mut built = Built::new();
        if let Some(h) = host {
            built.insert(
                VpnPart::Host,
                facts(Described::Secret { has_value: true }, None),
            );
            built.get_mut(&VpnPart::Host).unwrap().id = h.to_owned();
        }
        judge(part, f, &def(), "realm", "acme", &built)
    }

    #[test]
    fn absent_parts_are_created_and_foreign_ones_refused() {
        assert_eq!(j(VpnPart::Secret, None, None), PartDecision::Create);
        let untagged = facts(Described::Secret { has_value: true }, None);
        assert!(matches!(
            j(VpnPart::Secret, Some(&untagged), None),
            PartDecision::Conflict(w) if w.contains("not created by realmctl")
        ));
        let other = facts(Described::Secret { has_value: true }, Some("globex"));
        assert!(matches!(
            j(VpnPart::Secret, Some(&other), None),
            PartDecision::Conflict(w) if w.contains("globex")
        ));
        let ours = facts(Described::Secret { has_value: true }, Some("acme"));
        assert_eq!(j(VpnPart::Secret, Some(&ours), None), PartDecision::Adopt);
        let empty = facts(Described::Secret { has_value: false }, Some("acme"));
        assert_eq!(
            j(VpnPart::Secret, Some(&empty), None),
            PartDecision::Finish(vec!["store a new key in it".into()])
        );
    }

    #[test]
    fn a_firewall_is_finished_adopted_or_refused_by_its_internet_rules() {
        let mut rules = def().ingress;
        let full = facts(
            Described::Firewall {
                ingress: rules.clone(),
                forwards: true,
            },
            Some("acme"),
        );
        assert_eq!(j(VpnPart::Firewall, Some(&full), None), PartDecision::Adopt);
        let closed = facts(
            Described::Firewall {
                ingress: rules.clone(),
                forwards: false,
            },
            Some("acme"),
        );
        assert_eq!(
            j(VpnPart::Firewall, Some(&closed), None),
            PartDecision::Finish(vec!["admit the realm's own network".into()])
        );
        rules.pop();
        let part = facts(
            Described::Firewall {
                ingress: rules.clone(),
                forwards: true,
            },
            Some("acme"),
        );
        assert_eq!(
            j(VpnPart::Firewall, Some(&part), None),
            PartDecision::Finish(vec!["admit esp from 198.51.100.7/32".into()])
        );
        rules.push(IngressRule {
            protocol: Protocol::Udp,
            port: Some(22),
            source: "0.0.0.0/0".into(),
        });
        let open = facts(
            Described::Firewall {
                ingress: rules,
                forwards: true,
            },
            Some("acme"),
        );
        assert!(matches!(
            j(VpnPart::Firewall, Some(&open), None),
            PartDecision::Conflict(w) if w.contains("udp/22 from 0.0.0.0/0")
        ));
    }

    #[test]
    fn an_instance_is_judged_by_size_subnet_and_forwarding() {
        let host = |size: &str, subnet: &str, forwarding| {
            facts(
                Described::Host {
                    size: size.into(),
                    subnet: subnet.into(),
                    forwarding,
                    status: Status::Active,
                    private_ip: None,
                    public_ip: None,
                    network_cidrs: vec![],
                },
                Some("acme"),
            )
        };
        assert_eq!(
            j(VpnPart::Host, Some(&host("small", "s1", true)), None),
            PartDecision::Adopt
        );
        assert!(matches!(
            j(VpnPart::Host, Some(&host("small", "s1", false)), None),
            PartDecision::Finish(t) if t.len() == 1
        ));
        assert!(matches!(
            j(VpnPart::Host, Some(&host("large", "s1", true)), None),
            PartDecision::Conflict(w) if w.contains("large")
        ));
        assert!(matches!(
            j(VpnPart::Host, Some(&host("small", "s9", true)), None),
            PartDecision::Conflict(w) if w.contains("s9")
        ));
        // Once the address exists, the instance must carry it.
        let mut built = Built::new();
        built.insert(
            VpnPart::Address,
            facts(
                Described::Address {
                    ip: "203.0.113.9".into(),
                    attached_to: None,
                },
                Some("acme"),
            ),
        );
        assert_eq!(
            judge(
                VpnPart::Host,
                Some(&host("small", "s1", true)),
                &def(),
                "realm",
                "acme",
                &built
            ),
            PartDecision::Finish(vec!["attach the address 203.0.113.9".into()])
        );
    }

    #[test]
    fn an_address_attached_elsewhere_is_refused() {
        let addr = |to: Option<&str>| {
            facts(
                Described::Address {
                    ip: "203.0.113.9".into(),
                    attached_to: to.map(str::to_owned),
                },
                Some("acme"),
            )
        };
        assert_eq!(
            j(VpnPart::Address, Some(&addr(None)), None),
            PartDecision::Adopt
        );
        assert_eq!(
            j(VpnPart::Address, Some(&addr(Some("i-1"))), Some("i-1")),
            PartDecision::Adopt
        );
        assert!(matches!(
            j(VpnPart::Address, Some(&addr(Some("i-2"))), Some("i-1")),
            PartDecision::Conflict(_)
        ));
    }

    #[test]
    fn an_identity_reads_its_own_secret_only() {
        let id = |reads: &[&str], complete| {
            facts(
                Described::Identity {
                    reads: reads.iter().map(|s| (*s).to_owned()).collect(),
                    complete,
                },
                Some("acme"),
            )
        };
        assert_eq!(
            j(VpnPart::Identity, Some(&id(&["acme-vpn-psk"], true)), None),
            PartDecision::Adopt
        );
        assert!(matches!(
            j(VpnPart::Identity, Some(&id(&[], false)), None),
            PartDecision::Finish(t) if t.len() == 2
        ));
        assert!(matches!(
            j(VpnPart::Identity, Some(&id(&["acme-vpn-psk", "db-password"], true)), None),
            PartDecision::Conflict(w) if w.contains("db-password")
        ));
    }

    #[test]
    fn routes_are_added_where_missing_and_never_taken_over() {
        let routes = |rs: Vec<RouteFacts>| {
            facts(
                Described::Routes {
                    tables: vec!["rt-1".into()],
                    routes: rs,
                },
                None,
            )
        };
        let r = |cidr: &str, target: RouteTarget| RouteFacts {
            table: "rt-1".into(),
            destination: cidr.into(),
            target,
        };
        let none = routes(vec![]);
        assert_eq!(
            j(VpnPart::Routes, Some(&none), Some("i-1")),
            PartDecision::Finish(vec![
                "route 192.168.10.0/24 in rt-1".into(),
                "route 192.168.20.0/24 in rt-1".into()
            ])
        );
        let both = routes(vec![
            r("192.168.10.0/24", RouteTarget::Host("i-1".into())),
            r("192.168.20.0/24", RouteTarget::Host("i-1".into())),
        ]);
        assert_eq!(
            j(VpnPart::Routes, Some(&both), Some("i-1")),
            PartDecision::Adopt
        );
        let taken = routes(vec![r(
            "192.168.10.0/24",
            RouteTarget::Other("tgw-1".into()),
        )]);
        assert!(matches!(
            j(VpnPart::Routes, Some(&taken), Some("i-1")),
            PartDecision::Conflict(w) if w.contains("tgw-1")
        ));
        assert!(matches!(
            j(VpnPart::Routes, None, Some("i-1")),
            PartDecision::Conflict(w) if w.contains("no route table")
        ));
    }

    #[test]
    fn the_customer_part_digest_changes_with_the_address() {
        let a = CustomerPart::new(&def(), &HOST, "203.0.113.9", &["10.0.0.0/16".into()]);
        let b = CustomerPart::new(&def(), &HOST, "203.0.113.10", &["10.0.0.0/16".into()]);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), a.clone().digest());
        let text = a.instructions();
        for needle in [
            "203.0.113.9",
            "198.51.100.7/32",
            "192.168.10.0/24",
            "10.0.0.0/16",
            "route-based",
            "IKEv2",
            TUNNEL.ike,
            TUNNEL.esp,
            "acme-vpn-psk",
            "@acme-vpn",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn user_data_reads_the_key_at_boot_and_holds_none() {
        let key = new_key();
        assert_eq!(key.expose().len(), 43);
        let ud = user_data(&def(), &HOST).unwrap();
        assert!(!ud.contains(key.expose()));
        assert!(ud.contains("read-key 'acme-vpn-psk'"), "{ud}");
        assert!(ud.contains("net.ipv4.ip_forward = 1"), "{ud}");
        assert!(ud.contains("right=198.51.100.7"), "{ud}");
        assert!(ud.contains("192.168.20.0/24"), "{ud}");
        assert!(ud.starts_with("#cloud-config\n"), "{ud}");
    }
}
