//! What the realm's VPN instance *is*, as data inside the one cluster definition (issue #23):
//! [`VpnDef`], built from the spec, the cluster's network and the cloud profile's
//! [`HostProfile`]. Pure data with no other part of the provider layer below it, so the
//! definition, the profiles and the judgements can all use it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The tunnel's parameters the customer's gateway must match (data, not configuration: the
/// platform offers exactly this).
pub const TUNNEL: Tunnel = Tunnel {
    ike_version: 2,
    ike: "aes256-sha2_256-modp2048",
    esp: "aes256-sha2_256-modp2048",
    routing: "route-based",
};

/// What a cloud's VPN instance runs on: its profile's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostProfile {
    /// The image, as the cloud names it (an AMI name pattern of an owner, an Azure Marketplace
    /// URN, a Google image family).
    pub image: &'static str,
    /// The instance type, VM size or machine type.
    pub size: &'static str,
    /// The shell command, run on the instance at boot with its own identity, that prints the
    /// pre-shared key; `{secret}` and `{location}` are replaced by the secret's name and the
    /// region, each quoted for the shell.
    pub read_key: &'static str,
    /// What the customer is told about receiving the key through the secret store.
    pub store: &'static str,
    /// The zone the instance goes in, as a suffix of the region (`-b`), where the cloud
    /// places instances in zones the request names.
    pub zone: Option<&'static str>,
}

/// The tunnel's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tunnel {
    /// IKE version.
    pub ike_version: u8,
    /// Phase-1 (IKE) proposal, libreswan syntax.
    pub ike: &'static str,
    /// Phase-2 (ESP) proposal, libreswan syntax.
    pub esp: &'static str,
    /// Tunnel kind.
    pub routing: &'static str,
}

/// A protocol the instance's firewall admits from the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// UDP to one port.
    Udp,
    /// ESP (IP protocol 50).
    Esp,
}

/// One rule of traffic the instance admits from outside the realm's network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// The protocol.
    pub protocol: Protocol,
    /// Its port (UDP); `None` for ESP.
    pub port: Option<u16>,
    /// The only source it is admitted from (a /32).
    pub source: String,
}

impl std::fmt::Display for IngressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.protocol, self.port) {
            (Protocol::Udp, Some(p)) => write!(f, "udp/{p} from {}", self.source),
            (Protocol::Udp, None) => write!(f, "udp from {}", self.source),
            (Protocol::Esp, _) => write!(f, "esp from {}", self.source),
        }
    }
}

/// The realm's VPN instance, as the customer approves it and the cloud receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpnDef {
    /// The realm.
    pub realm: String,
    /// The region (or location) it is built in.
    pub location: String,
    /// The name of the instance and of its firewall, address and identity.
    pub name: String,
    /// The image (see [`HostProfile::image`]).
    pub image: String,
    /// The instance type, VM size or machine type.
    pub size: String,
    /// The subnet it lives in.
    pub subnet: String,
    /// Its zone, where the cloud's request names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The network the subnet belongs to, where the cloud's requests name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The subnets whose traffic to the customer's networks goes through it.
    pub route_subnets: Vec<String>,
    /// The customer's gateway (a /32).
    pub peer: String,
    /// The customer's networks reached through the tunnel.
    pub remote_cidrs: Vec<String>,
    /// Everything the instance admits from outside the realm's network: IKE and ESP from the
    /// peer, nothing else.
    pub ingress: Vec<IngressRule>,
    /// The name of the secret holding the pre-shared key (never the key).
    pub secret: String,
    /// IKE version, proposals and routing.
    pub ike_version: u8,
    /// Phase-1 proposal.
    pub ike: String,
    /// Phase-2 proposal.
    pub esp: String,
    /// Tags (labels) of every resource of it: the realm's ownership marks.
    pub tags: BTreeMap<String, String>,
}

/// The VPN definition of a realm, if its spec enables one (pure): the instance in the spec's
/// `vpn.subnet` or the cluster's first subnet, routes from every cluster subnet, and exactly
/// IKE (UDP 500, 4500) and ESP from the peer.
pub fn definition(
    spec: &crate::spec::Spec,
    host: &HostProfile,
    (network, cluster_subnets): (Option<&str>, &[String]),
    tags: &BTreeMap<String, String>,
) -> Option<VpnDef> {
    let v = &spec.vpn;
    if !v.enabled {
        return None;
    }
    let peer = v.peer.as_ref()?.to_string();
    let subnet = v
        .subnet
        .clone()
        .or_else(|| cluster_subnets.first().cloned())?;
    let rule = |protocol, port| IngressRule {
        protocol,
        port,
        source: peer.clone(),
    };
    Some(VpnDef {
        realm: spec.name.clone(),
        location: spec.cloud.region.clone(),
        name: format!("{}-vpn", spec.name),
        image: host.image.to_owned(),
        size: host.size.to_owned(),
        subnet,
        zone: host.zone.map(|z| format!("{}{z}", spec.cloud.region)),
        network: network.map(str::to_owned),
        route_subnets: cluster_subnets.to_vec(),
        remote_cidrs: v.remote_cidrs.iter().map(ToString::to_string).collect(),
        ingress: vec![
            rule(Protocol::Udp, Some(500)),
            rule(Protocol::Udp, Some(4500)),
            rule(Protocol::Esp, None),
        ],
        peer,
        secret: format!("{}-vpn-psk", spec.name),
        ike_version: TUNNEL.ike_version,
        ike: TUNNEL.ike.to_owned(),
        esp: TUNNEL.esp.to_owned(),
        tags: tags.clone(),
    })
}
