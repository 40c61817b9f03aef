//! The neutral world's VPN resources (issue #23): what every cloud's adapter keeps of a realm's
//! VPN instance — secrets, instance identities, firewalls, static addresses, instances and
//! routes — in the cloud-neutral shapes each adapter maps its own wire protocol onto. Instances
//! run once the world's creation delay has passed, as clusters do.

use std::collections::BTreeMap;
use std::time::Instant;

/// A secret of the secret store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Its id (an ARN, a resource name).
    pub id: String,
    /// Its value, once one is stored.
    pub value: Option<String>,
    /// Tags (labels).
    pub tags: BTreeMap<String, String>,
    /// Who may read its value (members, as the cloud names them).
    pub readers: Vec<String>,
}

/// An instance identity (an IAM role in an instance profile, a service account, a managed
/// identity) and what it may read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Role {
    /// Its id.
    pub id: String,
    /// Tags (labels).
    pub tags: BTreeMap<String, String>,
    /// Inline policies by name (their documents as given).
    pub policies: BTreeMap<String, String>,
    /// Whether an instance can take it on (in an instance profile).
    pub in_profile: bool,
    /// Whether the instance profile exists.
    pub profile: bool,
    /// Its description (where a cloud keeps no labels on it).
    pub description: String,
}

/// One rule a firewall admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `udp`, `tcp`, `50` (ESP), `-1` (all).
    pub protocol: String,
    /// First port.
    pub from: Option<i32>,
    /// Last port.
    pub to: Option<i32>,
    /// Source range.
    pub source: String,
}

/// A firewall (security group, network security group, firewall rule set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// Its id.
    pub id: String,
    /// The network it belongs to.
    pub network: String,
    /// Tags (labels).
    pub tags: BTreeMap<String, String>,
    /// What it admits.
    pub rules: Vec<Rule>,
    /// Its description (where a cloud keeps no labels on it).
    pub description: String,
    /// The instances it applies to (network tags), where the cloud targets by tag.
    pub targets: Vec<String>,
}

/// A static public address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Its id.
    pub id: String,
    /// The address.
    pub ip: String,
    /// Tags (labels).
    pub tags: BTreeMap<String, String>,
    /// The instance it is attached to.
    pub attached_to: Option<String>,
}

/// An instance.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Size (instance type, VM size, machine type).
    pub size: String,
    /// Image.
    pub image: String,
    /// Subnet.
    pub subnet: String,
    /// Whether it forwards (source/destination check off, IP forwarding on).
    pub forwarding: bool,
    /// Its private address.
    pub private_ip: String,
    /// Its network interface.
    pub interface: String,
    /// The identity it runs as.
    pub identity: Option<String>,
    /// The firewalls it is in.
    pub firewalls: Vec<String>,
    /// Its user data as given (base64 where the cloud sends it so).
    pub user_data: String,
    /// Tags (labels).
    pub tags: BTreeMap<String, String>,
    /// The idempotency token it was created with.
    pub token: Option<String>,
    /// When it was created.
    pub created: Instant,
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Its name, where routes have one.
    pub name: String,
    /// Its table (or network).
    pub table: String,
    /// Destination range.
    pub destination: String,
    /// Where it goes: an instance or interface id, a gateway.
    pub target: String,
}

/// A machine image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its owner (an account id or alias).
    pub owner: String,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// Everything VPN the world holds.
#[derive(Debug, Clone, Default)]
pub struct VpnWorld {
    /// Secrets by name.
    pub secrets: BTreeMap<String, Secret>,
    /// Instance identities by name.
    pub roles: BTreeMap<String, Role>,
    /// Firewalls by name.
    pub firewalls: BTreeMap<String, Firewall>,
    /// Addresses by id.
    pub addresses: BTreeMap<String, Address>,
    /// Instances by id.
    pub hosts: BTreeMap<String, Host>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Images.
    pub images: Vec<Image>,
    /// Serial of ids handed out.
    pub serial: u64,
}

/// The string members of a JSON object (tags or labels as a request sends them).
pub(crate) fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl VpnWorld {
    /// A fresh id `prefix-<17 hex digits>`.
    pub fn id(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}-{:017x}", 0x0a1b_0000_0000u64 + self.serial)
    }

    /// A fresh public address from TEST-NET-3 (RFC 5737).
    pub fn public_ip(&mut self) -> String {
        self.serial += 1;
        format!("203.0.113.{}", 10 + self.serial % 240)
    }

    /// The address attached to `host`, if any.
    pub fn address_of(&self, host: &str) -> Option<&Address> {
        self.addresses
            .values()
            .find(|a| a.attached_to.as_deref() == Some(host))
    }
}
