//! Requirement lists as data: domain prefixes, outbound hosts and VPN rules.
//!
//! The lists live in `playbooks/requirements/*.yaml` and are embedded in the binary, so the
//! documentation (`docs/checks.md`) and the checks come from one source. They are parsed once,
//! on first use; a broken embedded file is a build defect caught by the unit tests below.

use std::sync::OnceLock;

use ipnet::IpNet;
use serde::Deserialize;

const DOMAINS_YAML: &str = include_str!("../playbooks/requirements/domains.yaml");
const OUTBOUND_YAML: &str = include_str!("../playbooks/requirements/outbound.yaml");
const VPN_YAML: &str = include_str!("../playbooks/requirements/vpn.yaml");
const QUOTA_YAML: &str = include_str!("../playbooks/requirements/quota.yaml");
const ROLES_YAML: &str = include_str!("../playbooks/requirements/roles.yaml");
const SIZING_YAML: &str = include_str!("../playbooks/requirements/sizing.yaml");

/// One required domain prefix (`*.<prefix>.<base>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainPrefix {
    /// The label, e.g. `core`.
    pub prefix: String,
    /// Why the platform needs it.
    pub purpose: String,
}

/// The required domain prefixes, split by platform environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DomainRequirements {
    /// Format version of the file.
    pub version: u32,
    /// Design-time prefixes.
    pub design_time: Vec<DomainPrefix>,
    /// Run-time prefixes.
    pub run_time: Vec<DomainPrefix>,
}

impl DomainRequirements {
    /// All required prefixes, design time first.
    pub fn all(&self) -> impl Iterator<Item = &DomainPrefix> {
        self.design_time.iter().chain(self.run_time.iter())
    }
}

/// One outbound host with the ports the platform needs on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundHost {
    /// DNS name.
    pub host: String,
    /// TCP ports; 443 implies TLS.
    pub ports: Vec<u16>,
    /// Why the platform needs it.
    pub purpose: String,
}

/// The default outbound host list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundRequirements {
    /// Format version of the file.
    pub version: u32,
    /// The hosts.
    pub targets: Vec<OutboundHost>,
}

/// A platform address range a customer network must not overlap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformCidr {
    /// The range.
    pub cidr: IpNet,
    /// What the platform uses it for.
    pub purpose: String,
}

/// The realm VPN rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VpnRequirements {
    /// Format version of the file.
    pub version: u32,
    /// The only supported tunnel routing mode.
    pub routing: String,
    /// Required prefix length of the phase-1 peer.
    pub peer_prefix_length: u8,
    /// Platform ranges.
    pub platform_cidrs: Vec<PlatformCidr>,
}

/// RTUs per subscription, per environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerEnv {
    /// Test environment.
    pub test: u64,
    /// Prod environment.
    pub prod: u64,
}

/// RTUs per replica of each size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeRtus {
    /// Small.
    pub small: u64,
    /// Medium.
    pub medium: u64,
    /// Large.
    pub large: u64,
}

/// Default platform usage quotas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaDefaults {
    /// Most replicas per deployment.
    pub max_replicas_per_deployment: u32,
    /// Largest size per deployment.
    pub max_size_per_deployment: crate::quota::model::Size,
}

/// The subscription model's numbers and the default quotas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaRequirements {
    /// Format version of the file.
    pub version: u32,
    /// RTUs each subscription brings per environment.
    pub rtus_per_subscription: PerEnv,
    /// RTUs per replica by size.
    pub sizes: SizeRtus,
    /// Default quotas.
    pub defaults: QuotaDefaults,
}

/// One permission of the installer identity.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Permission {
    /// The permission, action or role, for people.
    pub permission: String,
    /// Why the install needs it.
    pub why: String,
    /// The cloud's action names it grants (checked by `cloud.permissions`, rendered into the
    /// least-privilege policy). Empty where the cloud grants by role instead.
    #[serde(default)]
    pub actions: Vec<String>,
    /// The resources the actions apply to, as patterns: `{partition}`, `{region}`,
    /// `{account}`, `{cluster}`, `{clusterRole}`, `{nodeRole}` are filled in from the spec.
    #[serde(default)]
    pub resources: Vec<String>,
    /// A policy condition block, as the cloud's policy language writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
    /// Data actions (Azure: what a role lets one do with data, such as reading a secret's
    /// value), listed in the custom role's `DataActions`; not part of the access check.
    #[serde(default, rename = "dataActions", skip_serializing_if = "Vec::is_empty")]
    pub data_actions: Vec<String>,
    /// Needed only by a realm with a VPN (`vpn.enabled`): the VPN instance's parts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vpn: bool,
    /// Which workflow needs it (`for:` in the data): the install (the default), `destroy`, or
    /// `both`.
    #[serde(default, rename = "for", skip_serializing_if = "NeededBy::is_install")]
    pub needed_by: NeededBy,
}

/// Which workflow a permission is needed by: the install's least-privilege document holds
/// what the install needs, the destroy's what the destroy needs, and no more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NeededBy {
    /// The install only.
    #[default]
    Install,
    /// `realmctl destroy` only.
    Destroy,
    /// Both.
    Both,
}

impl NeededBy {
    fn is_install(&self) -> bool {
        *self == NeededBy::Install
    }
}

/// The workflow a permission list is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForWorkflow {
    /// `realmctl install`.
    Install,
    /// `realmctl destroy`.
    Destroy,
}

/// The identity realmctl installs with.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Installer {
    /// What it is.
    pub name: String,
    /// What it may do.
    pub permissions: Vec<Permission>,
}

/// A role the customer creates or the cloud assigns.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Which role.
    pub name: String,
    /// What it grants.
    pub grants: String,
    /// Why.
    pub why: String,
}

/// A cloud resource the install creates.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// What.
    pub resource: String,
    /// Why.
    pub why: String,
    /// Created only for a realm with a VPN.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vpn: bool,
}

/// Roles and resources of one provider.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRoles {
    /// The installer identity.
    pub installer: Installer,
    /// Roles.
    pub roles: Vec<Role>,
    /// Resources.
    pub resources: Vec<Resource>,
}

impl ProviderRoles {
    /// What a realm needs: everything, less the VPN's permissions and resources when it has
    /// no VPN. The one filter `cloud.permissions`, the least-privilege document and the roles
    /// document all go through.
    pub fn for_realm(&self, vpn: bool) -> ProviderRoles {
        let mut r = self.clone();
        r.installer.permissions.retain(|p| vpn || !p.vpn);
        r.resources.retain(|x| vpn || !x.vpn);
        r
    }

    /// The permissions `workflow` needs (and only those).
    pub fn for_workflow(&self, workflow: ForWorkflow) -> ProviderRoles {
        let mut r = self.clone();
        r.installer.permissions.retain(|p| {
            matches!(
                (workflow, p.needed_by),
                (_, NeededBy::Both)
                    | (ForWorkflow::Install, NeededBy::Install)
                    | (ForWorkflow::Destroy, NeededBy::Destroy)
            )
        });
        r
    }
}

/// Demand of one unit (an RTU, or the platform's own services).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Demand {
    /// vCPU.
    pub vcpu: f64,
    /// Memory in GiB.
    pub memory_gib: f64,
}

/// Node count rules.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeRules {
    /// Fewest nodes (one per zone).
    pub min: u32,
    /// The pool may grow to this many times its desired size.
    pub max_factor: f64,
    /// The smallest shape needing at most this many nodes is chosen.
    pub prefer_at_most: u32,
}

/// One worker shape (instance type, VM size, machine type).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Shape {
    /// The cloud's name for it.
    pub name: String,
    /// vCPU.
    pub vcpu: u32,
    /// Memory in GiB.
    pub memory_gib: u32,
    /// Subnet addresses one node may take (EKS VPC CNI); 0 where pods do not use subnet
    /// addresses.
    #[serde(default)]
    pub pod_addresses: u32,
}

/// Shapes per cloud, keyed by provider (`eks:`, `aks:`, `gke:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Shapes(std::collections::BTreeMap<crate::spec::Provider, Vec<Shape>>);

impl Shapes {
    /// The shapes of one cloud, smallest first (every cloud has some: unit-tested).
    pub fn for_provider(&self, p: crate::spec::Provider) -> &[Shape] {
        self.0
            .get(&p)
            .map(Vec::as_slice)
            .expect("sizing.yaml has every provider (unit-tested)")
    }
}

/// How the worker pool is sized from the realm's RTUs (`playbooks/requirements/sizing.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SizingRequirements {
    /// Format version of the file.
    pub version: u32,
    /// What one RTU runs on.
    pub rtu: Demand,
    /// The platform's own services.
    pub platform: Demand,
    /// Spare capacity on top of the demand.
    pub headroom: f64,
    /// Share of a node left to pods.
    pub allocatable: f64,
    /// Node count rules.
    pub nodes: NodeRules,
    /// Shapes per cloud.
    pub shapes: Shapes,
}

/// Roles and resources per provider (the phase-5 document), keyed by provider.
#[derive(Debug, Clone, Deserialize)]
pub struct RolesRequirements {
    /// Format version of the file.
    pub version: u32,
    /// Per provider.
    #[serde(flatten)]
    by_provider: std::collections::BTreeMap<crate::spec::Provider, ProviderRoles>,
}

impl RolesRequirements {
    /// The roles of one provider (every provider has them: unit-tested).
    pub fn for_provider(&self, p: crate::spec::Provider) -> &ProviderRoles {
        self.by_provider
            .get(&p)
            .expect("roles.yaml has every provider (unit-tested)")
    }
}

/// All embedded requirement lists.
#[derive(Debug, Clone)]
pub struct Requirements {
    /// Domain prefixes.
    pub domains: DomainRequirements,
    /// Outbound hosts.
    pub outbound: OutboundRequirements,
    /// VPN rules.
    pub vpn: VpnRequirements,
    /// Subscription model numbers and default quotas.
    pub quota: QuotaRequirements,
    /// Roles and resources per provider.
    pub roles: RolesRequirements,
    /// Node pool sizing.
    pub sizing: SizingRequirements,
}

/// The embedded requirement lists, parsed once.
pub fn embedded() -> &'static Requirements {
    static CELL: OnceLock<Requirements> = OnceLock::new();
    CELL.get_or_init(|| Requirements {
        domains: parse("domains.yaml", DOMAINS_YAML),
        outbound: parse("outbound.yaml", OUTBOUND_YAML),
        vpn: parse("vpn.yaml", VPN_YAML),
        quota: parse("quota.yaml", QUOTA_YAML),
        roles: parse("roles.yaml", ROLES_YAML),
        sizing: parse("sizing.yaml", SIZING_YAML),
    })
}

fn parse<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> T {
    // The files are compiled in and covered by tests; failing here is a build defect, not user input.
    serde_saphyr::from_str(text)
        .unwrap_or_else(|e| panic!("embedded playbooks/requirements/{name} is invalid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_shapes_and_roles_whose_permissions_name_actions() {
        let r = embedded();
        for p in crate::spec::Provider::ALL {
            assert!(!r.sizing.shapes.for_provider(p).is_empty(), "{p}");
            let roles = r.roles.for_provider(p);
            assert!(!roles.installer.permissions.is_empty(), "{p}");
            for perm in &roles.installer.permissions {
                // A data action is granted by the role and not checked in phase 3; every other
                // permission names what its check asks.
                assert!(
                    (!perm.actions.is_empty() || !perm.data_actions.is_empty())
                        && !perm.resources.is_empty(),
                    "{p}: `{}` names no action or resource, so its check could never fail",
                    perm.permission
                );
            }
        }
    }

    #[test]
    fn embedded_lists_parse_and_hold_the_documented_facts() {
        let r = embedded();
        let prefixes: Vec<_> = r.domains.all().map(|p| p.prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            ["core", "static", "portal", "auth", "test", "api"]
        );
        assert!(
            r.outbound
                .targets
                .iter()
                .any(|t| t.host == "gcr.io" && t.ports == [443, 80])
        );
        assert!(
            r.outbound
                .targets
                .iter()
                .any(|t| t.host == "auth.split.io" && t.ports == [443, 80])
        );
        assert_eq!(r.outbound.targets.len(), 23);
        assert_eq!(r.vpn.peer_prefix_length, 32);
        assert_eq!(r.vpn.routing, "route-based");
        assert_eq!(r.vpn.platform_cidrs.len(), 3);
    }

    #[test]
    fn quota_data_agrees_with_the_model() {
        use crate::quota::model::{Env, RealmConfig, Size};
        let q = &embedded().quota;
        assert_eq!(
            (q.sizes.small, q.sizes.medium, q.sizes.large),
            (Size::Small.rtus(), Size::Medium.rtus(), Size::Large.rtus())
        );
        let one = RealmConfig {
            pipeline_subscriptions: 1,
            extra_test_rtus: 0,
            extra_prod_rtus: 0,
            max_replicas: 1,
            max_size: Size::Small,
        };
        assert_eq!(
            (q.rtus_per_subscription.test, q.rtus_per_subscription.prod),
            (one.rtus(Env::Test), one.rtus(Env::Prod))
        );
    }

    #[test]
    fn docs_checks_md_lists_every_requirement() {
        let doc = include_str!("../docs/checks.md");
        let r = embedded();
        for t in &r.outbound.targets {
            for p in &t.ports {
                assert!(
                    doc.contains(&format!("`{}:{p}`", t.host)),
                    "docs/checks.md lacks {}:{p}",
                    t.host
                );
            }
        }
        for p in r.domains.all() {
            assert!(
                doc.contains(&format!("`*.{}.<base>`", p.prefix)),
                "docs/checks.md lacks {}",
                p.prefix
            );
        }
        for c in &r.vpn.platform_cidrs {
            assert!(
                doc.contains(&format!("`{}`", c.cidr)),
                "docs/checks.md lacks {}",
                c.cidr
            );
        }
    }
}
