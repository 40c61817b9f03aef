//! What the cloud's facts mean (pure): check results with owner and fix for the account,
//! credential and permission steps (shared by the engine and `preflight --only access`), and the
//! create / adopt / refuse decision for clusters and node pools.

use std::collections::BTreeSet;
use std::time::Duration;

use time::OffsetDateTime;

use super::facts::{
    AccountFacts, ClusterDef, ClusterFacts, Identity, Lookup, NodePoolDef, NodePoolFacts,
    PermissionFacts,
};
use super::sizing::PoolSize;
use crate::checks::{Category, CheckResult, Owner};

const CAT: Category = Category::Access;

/// Free addresses EKS needs in each subnet for the control plane's network interfaces.
pub const CONTROL_PLANE_ADDRESSES_PER_SUBNET: u64 = 6;

/// What the account step checks against.
#[derive(Debug, Clone)]
pub struct AccountExpectations<'a> {
    /// The account, subscription or project the spec names.
    pub account: &'a str,
    /// The subnets the spec names.
    pub subnets: &'a [String],
    /// The Kubernetes version the spec names.
    pub kubernetes_version: &'a str,
    /// The node pool the realm gets.
    pub pool: &'a PoolSize,
    /// Where the region's vCPU quota is raised (for the fix line).
    pub quota_name: &'a str,
    /// Roles and the service each must trust: (purpose, service).
    pub role_trust: &'a [(&'a str, &'a str)],
}

/// The account step's findings.
pub fn account(facts: &AccountFacts, want: &AccountExpectations<'_>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // The credentials' account is the spec's.
    out.push(if facts.account == want.account {
        CheckResult::pass(
            "access.account",
            CAT,
            want.account,
            format!("the credentials belong to account {}", facts.account),
        )
    } else {
        CheckResult::fail(
            "access.account",
            CAT,
            want.account,
            format!(
                "the credentials belong to account {}, not {}",
                facts.account, want.account
            ),
            "run with credentials of the account the spec names, or fix cloud.eks.accountId",
        )
    });
    out.extend(subnets(facts, want));
    for (purpose, service) in want.role_trust {
        let Some(r) = facts.roles.iter().find(|r| r.purpose == *purpose) else {
            continue;
        };
        let id = format!(
            "access.role.{}",
            purpose.rsplit('.').next().unwrap_or(purpose)
        );
        out.push(if !r.exists {
            CheckResult::fail(
                id,
                CAT,
                &r.id,
                format!("{purpose}: the role {} does not exist", r.id),
                "create the role as the roles-and-resources document describes, or fix the ARN in the spec",
            )
        } else if !r.trusted_services.iter().any(|s| s == service) {
            CheckResult::fail(
                id,
                CAT,
                &r.id,
                format!(
                    "{purpose}: the role {} does not let {service} assume it (trusts: {})",
                    r.id,
                    if r.trusted_services.is_empty() {
                        "no service".to_owned()
                    } else {
                        r.trusted_services.join(", ")
                    }
                ),
                format!("add {service} to the role's trust policy"),
            )
        } else {
            CheckResult::pass(id, CAT, &r.id, format!("{purpose} exists and trusts {service}"))
        });
    }
    out.push(match &facts.versions {
        Lookup::Found(v) if v.iter().any(|x| x == want.kubernetes_version) => CheckResult::pass(
            "access.version",
            CAT,
            want.kubernetes_version,
            format!("Kubernetes {} is offered", want.kubernetes_version),
        ),
        Lookup::Found(v) => CheckResult::fail(
            "access.version",
            CAT,
            want.kubernetes_version,
            format!(
                "Kubernetes {} is not offered in this region (offered: {})",
                want.kubernetes_version,
                v.join(", ")
            ),
            "set cloud.cluster.kubernetesVersion to an offered version",
        )
        .owned_by(Owner::Digibee),
        Lookup::Unknown(why) => CheckResult::warn(
            "access.version",
            CAT,
            want.kubernetes_version,
            format!("the offered Kubernetes versions could not be listed: {why}"),
            "check the version in the cloud console before the cluster step",
        )
        .owned_by(Owner::Digibee),
    });
    let need = want.pool.max_vcpu() as f64;
    out.push(match facts.vcpu_quota {
        Lookup::Found(q) if q >= need => CheckResult::pass(
            "access.quota.vcpu",
            CAT,
            want.quota_name,
            format!(
                "the vCPU quota ({q}) covers the node pool at its maximum ({} × {} = {need} vCPU)",
                want.pool.max, want.pool.shape.name
            ),
        ),
        Lookup::Found(q) => CheckResult::fail(
            "access.quota.vcpu",
            CAT,
            want.quota_name,
            format!(
                "the vCPU quota is {q}, below the {need} vCPU the node pool needs at its maximum ({} × {})",
                want.pool.max, want.pool.shape.name
            ),
            format!("request an increase of \"{}\" to at least {need}", want.quota_name),
        ),
        Lookup::Unknown(ref why) => CheckResult::warn(
            "access.quota.vcpu",
            CAT,
            want.quota_name,
            format!("the vCPU quota could not be read: {why}"),
            format!(
                "make sure \"{}\" is at least {need} before the cluster step",
                want.quota_name
            ),
        ),
    });
    out
}

fn subnets(facts: &AccountFacts, want: &AccountExpectations<'_>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let subject = want.subnets.join(", ");
    let missing: Vec<_> = want
        .subnets
        .iter()
        .filter(|id| !facts.subnets.iter().any(|s| &s.id == *id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        out.push(CheckResult::fail(
            "access.subnets",
            CAT,
            &subject,
            format!("subnets not found in the region: {}", missing.join(", ")),
            "fix cloud.eks.subnetIds, or create the subnets in the spec's region",
        ));
        return out;
    }
    let networks: BTreeSet<_> = facts.subnets.iter().map(|s| s.network.as_str()).collect();
    out.push(if networks.len() == 1 {
        CheckResult::pass(
            "access.subnets.network",
            CAT,
            &subject,
            format!(
                "all subnets are in {}",
                networks.iter().next().copied().unwrap_or("")
            ),
        )
    } else {
        CheckResult::fail(
            "access.subnets.network",
            CAT,
            &subject,
            format!(
                "the subnets are in {} different networks ({})",
                networks.len(),
                networks.into_iter().collect::<Vec<_>>().join(", ")
            ),
            "name subnets of one VPC",
        )
    });
    let zones: BTreeSet<_> = facts.subnets.iter().map(|s| s.zone.as_str()).collect();
    out.push(if zones.len() >= 2 {
        CheckResult::pass(
            "access.subnets.zones",
            CAT,
            &subject,
            format!("the subnets span {} zones", zones.len()),
        )
    } else {
        CheckResult::fail(
            "access.subnets.zones",
            CAT,
            &subject,
            format!(
                "the subnets are all in {}; the cluster needs two zones at least",
                zones.into_iter().collect::<Vec<_>>().join(", ")
            ),
            "add a subnet in another availability zone",
        )
    });
    let free: u64 = facts.subnets.iter().map(|s| s.free_addresses).sum();
    let need = want.pool.max_pod_addresses()
        + CONTROL_PLANE_ADDRESSES_PER_SUBNET * facts.subnets.len() as u64;
    let starved: Vec<_> = facts
        .subnets
        .iter()
        .filter(|s| s.free_addresses < CONTROL_PLANE_ADDRESSES_PER_SUBNET)
        .map(|s| s.id.as_str())
        .collect();
    out.push(if free >= need && starved.is_empty() {
        CheckResult::pass(
            "access.subnets.addresses",
            CAT,
            &subject,
            format!("{free} free addresses; the node pool needs up to {need}"),
        )
    } else {
        let detail = if starved.is_empty() {
            String::new()
        } else {
            format!(
                "; fewer than {CONTROL_PLANE_ADDRESSES_PER_SUBNET} left in {}",
                starved.join(", ")
            )
        };
        CheckResult::fail(
            "access.subnets.addresses",
            CAT,
            &subject,
            format!(
                "{free} free addresses; the node pool needs up to {need} ({} nodes × {} + {CONTROL_PLANE_ADDRESSES_PER_SUBNET} per subnet){detail}",
                want.pool.max, want.pool.shape.pod_addresses
            ),
            "add subnets or larger subnets (or lower the realm's size)",
        )
    });
    out
}

/// The credential step's findings: who, from where, and whether temporary credentials outlive
/// the install's longest step (`needed`).
pub fn credentials(id: &Identity, now: OffsetDateTime, needed: Duration) -> Vec<CheckResult> {
    let mut out = vec![CheckResult::pass(
        "access.identity",
        CAT,
        &id.principal,
        format!(
            "running as {} in account {} (credentials from {})",
            id.principal, id.account, id.source
        ),
    )];
    out.push(match id.expires_at {
        None => CheckResult::pass(
            "access.credentials.expiry",
            CAT,
            &id.principal,
            "long-lived credentials (no expiry)",
        ),
        Some(at) if at <= now => CheckResult::fail(
            "access.credentials.expiry",
            CAT,
            &id.principal,
            format!("the credentials expired at {at}"),
            "refresh the credentials and run again",
        ),
        Some(at) => {
            let left = at - now;
            let left_min = left.whole_minutes();
            let needed_min = (needed.as_secs() / 60) as i64;
            if left < time::Duration::try_from(needed).unwrap_or(time::Duration::MAX) {
                CheckResult::warn(
                    "access.credentials.expiry",
                    CAT,
                    &id.principal,
                    format!(
                        "the credentials expire in {left_min} min, before a cluster could be created ({needed_min} min)"
                    ),
                    format!("use credentials valid for {needed_min} min or more (e.g. a longer session duration)"),
                )
            } else {
                CheckResult::pass(
                    "access.credentials.expiry",
                    CAT,
                    &id.principal,
                    format!("temporary credentials, valid for {left_min} more min"),
                )
            }
        }
    });
    out
}

/// The permission step's findings: one failure per missing permission, named, or one pass.
pub fn permissions(facts: &PermissionFacts, policy_hint: &str) -> Vec<CheckResult> {
    if facts.missing.is_empty() {
        return vec![CheckResult::pass(
            "access.permissions",
            CAT,
            &facts.principal,
            format!(
                "all {} permissions the install needs are granted",
                facts.checked
            ),
        )];
    }
    facts
        .missing
        .iter()
        .map(|m| {
            CheckResult::fail(
                format!("access.permission.{}", m.action),
                CAT,
                format!("{} on {}", m.action, m.resource),
                format!("{} may not {} on {}", facts.principal, m.action, m.resource),
                format!("attach the least-privilege policy ({policy_hint})"),
            )
        })
        .collect()
}

/// What to do about the cluster the install wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is none: create it.
    Create,
    /// This realm created it: adopt it as it is.
    Adopt,
    /// There is one this realm did not create, or that differs: refuse, change nothing.
    Conflict(String),
}

fn ours(
    tags: &std::collections::BTreeMap<String, String>,
    key: &str,
    realm: &str,
) -> Result<(), String> {
    match tags.get(key) {
        Some(v) if v == realm => Ok(()),
        Some(v) => Err(format!("its tag {key} names realm `{v}`")),
        None => Err(format!(
            "it has no {key} tag, so this realm did not create it"
        )),
    }
}

/// Create, adopt or refuse the cluster (pure).
pub fn cluster(
    existing: Option<&ClusterFacts>,
    want: &ClusterDef,
    tag_key: &str,
    realm: &str,
) -> Decision {
    let Some(c) = existing else {
        return Decision::Create;
    };
    let mut why = Vec::new();
    if let Err(e) = ours(&c.tags, tag_key, realm) {
        why.push(e);
    }
    if c.kubernetes_version != want.kubernetes_version {
        why.push(format!(
            "it runs Kubernetes {}, the spec wants {}",
            c.kubernetes_version, want.kubernetes_version
        ));
    }
    let (have, wanted): (BTreeSet<_>, BTreeSet<_>) =
        (c.subnets.iter().collect(), want.subnets.iter().collect());
    if have != wanted {
        why.push(format!(
            "its subnets are {}, the spec names {}",
            c.subnets.join(", "),
            want.subnets.join(", ")
        ));
    }
    if c.role != want.role {
        why.push(format!(
            "its role is {}, the spec names {}",
            c.role, want.role
        ));
    }
    if why.is_empty() {
        Decision::Adopt
    } else {
        Decision::Conflict(format!(
            "a cluster named {} already exists and {}; realmctl changes nothing it did not create\n  help: choose another cloud.cluster.name, or make the spec match the existing cluster if this realm created it",
            want.name,
            why.join("; ")
        ))
    }
}

/// Create, adopt or refuse the node pool (pure).
pub fn node_pool(
    existing: Option<&NodePoolFacts>,
    want: &NodePoolDef,
    tag_key: &str,
    realm: &str,
) -> Decision {
    let Some(p) = existing else {
        return Decision::Create;
    };
    let mut why = Vec::new();
    if let Err(e) = ours(&p.tags, tag_key, realm) {
        why.push(e);
    }
    if p.shape != want.shape {
        why.push(format!(
            "its nodes are {}, the realm needs {}",
            p.shape, want.shape
        ));
    }
    if p.role != want.role {
        why.push(format!(
            "its node role is {}, the spec names {}",
            p.role, want.role
        ));
    }
    if why.is_empty() {
        Decision::Adopt
    } else {
        Decision::Conflict(format!(
            "a node pool named {} already exists and {}; realmctl changes nothing it did not create",
            want.name,
            why.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::cloud::facts::{RoleFacts, Status as CloudStatus, SubnetFacts};
    use crate::spec::{Provider, SubscriptionSpec};

    fn pool() -> PoolSize {
        crate::cloud::sizing::for_realm(
            Provider::Eks,
            &SubscriptionSpec {
                pipeline_subscriptions: 10,
                extra_test_rtus: 0,
                extra_prod_rtus: 0,
            },
        )
    }

    fn subnet(id: &str, vpc: &str, zone: &str, free: u64) -> SubnetFacts {
        SubnetFacts {
            id: id.into(),
            network: vpc.into(),
            zone: zone.into(),
            free_addresses: free,
        }
    }

    fn facts() -> AccountFacts {
        AccountFacts {
            account: "123456789012".into(),
            subnets: vec![
                subnet("a", "vpc-1", "us-east-1a", 4000),
                subnet("b", "vpc-1", "us-east-1b", 4000),
            ],
            roles: vec![
                RoleFacts {
                    purpose: "cloud.eks.clusterRoleArn".into(),
                    id: "arn:c".into(),
                    exists: true,
                    trusted_services: vec!["eks.amazonaws.com".into()],
                },
                RoleFacts {
                    purpose: "cloud.eks.nodeRoleArn".into(),
                    id: "arn:n".into(),
                    exists: true,
                    trusted_services: vec!["ec2.amazonaws.com".into()],
                },
            ],
            versions: Lookup::Found(vec!["1.30".into(), "1.31".into()]),
            vcpu_quota: Lookup::Found(1000.0),
        }
    }

    fn judge(f: &AccountFacts) -> Vec<CheckResult> {
        let p = pool();
        let subnets = vec!["a".to_owned(), "b".to_owned()];
        account(
            f,
            &AccountExpectations {
                account: "123456789012",
                subnets: &subnets,
                kubernetes_version: "1.31",
                pool: &p,
                quota_name: "Running On-Demand Standard instances",
                role_trust: &[
                    ("cloud.eks.clusterRoleArn", "eks.amazonaws.com"),
                    ("cloud.eks.nodeRoleArn", "ec2.amazonaws.com"),
                ],
            },
        )
    }

    fn status_of<'a>(rs: &'a [CheckResult], id: &str) -> (&'a Status, &'a str) {
        let r = rs
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no {id} in {rs:?}"));
        (&r.status, r.message.as_str())
    }

    #[test]
    fn a_good_account_passes_every_check() {
        let rs = judge(&facts());
        assert!(rs.iter().all(|r| r.status == Status::Pass), "{rs:#?}");
        assert_eq!(rs.len(), 8);
    }

    #[test]
    fn each_account_fact_fails_its_own_check_with_an_owner_and_fix() {
        type Edit = Box<dyn Fn(&mut AccountFacts)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "access.account",
                Box::new(|f| f.account = "999999999999".into()),
            ),
            (
                "access.subnets.network",
                Box::new(|f| f.subnets[1].network = "vpc-2".into()),
            ),
            (
                "access.subnets.zones",
                Box::new(|f| f.subnets[1].zone = "us-east-1a".into()),
            ),
            (
                "access.subnets.addresses",
                Box::new(|f| {
                    f.subnets[0].free_addresses = 100;
                    f.subnets[1].free_addresses = 100;
                }),
            ),
            (
                "access.subnets.addresses",
                Box::new(|f| f.subnets[1].free_addresses = 3),
            ),
            (
                "access.subnets",
                Box::new(|f| {
                    f.subnets.pop();
                }),
            ),
            (
                "access.role.clusterRoleArn",
                Box::new(|f| f.roles[0].exists = false),
            ),
            (
                "access.role.nodeRoleArn",
                Box::new(|f| f.roles[1].trusted_services = vec![]),
            ),
            (
                "access.version",
                Box::new(|f| f.versions = Lookup::Found(vec!["1.29".into()])),
            ),
            (
                "access.quota.vcpu",
                Box::new(|f| f.vcpu_quota = Lookup::Found(32.0)),
            ),
        ];
        for (id, edit) in cases {
            let mut f = facts();
            edit(&mut f);
            let rs = judge(&f);
            let bad: Vec<_> = rs.iter().filter(|r| r.status == Status::Fail).collect();
            assert_eq!(bad.len(), 1, "{id}: {rs:#?}");
            assert_eq!(bad[0].id, id);
            assert!(bad[0].fix.is_some());
        }
        // The quota names what is needed: 14 × m6i.xlarge = 56 vCPU.
        let mut f = facts();
        f.vcpu_quota = Lookup::Found(32.0);
        let rs = judge(&f);
        let (_, msg) = status_of(&rs, "access.quota.vcpu");
        assert!(msg.contains("below the 56 vCPU"), "{msg}");
    }

    #[test]
    fn unknown_versions_and_quotas_warn() {
        let mut f = facts();
        f.versions = Lookup::Unknown("the endpoint does not list versions".into());
        f.vcpu_quota = Lookup::Unknown("no such quota".into());
        let rs = judge(&f);
        assert_eq!(status_of(&rs, "access.version").0, &Status::Warn);
        assert_eq!(status_of(&rs, "access.quota.vcpu").0, &Status::Warn);
        assert!(rs.iter().all(|r| r.status != Status::Fail));
    }

    #[test]
    fn credentials_warn_when_they_expire_before_a_cluster_could_be_created() {
        let now = time::macros::datetime!(2026-11-30 10:00 UTC);
        let id = |exp| Identity {
            principal: "arn:aws:sts::1:assumed-role/I/ann".into(),
            policy_subject: "arn:aws:iam::1:role/I".into(),
            account: "1".into(),
            source: "Environment".into(),
            expires_at: exp,
        };
        let need = Duration::from_secs(75 * 60);
        let r = credentials(&id(None), now, need);
        assert!(r.iter().all(|c| c.status == Status::Pass));
        assert!(r[0].message.contains("credentials from Environment"));
        let r = credentials(&id(Some(now + time::Duration::minutes(30))), now, need);
        assert_eq!(r[1].status, Status::Warn);
        assert!(
            r[1].message.contains("expire in 30 min"),
            "{}",
            r[1].message
        );
        let r = credentials(&id(Some(now + time::Duration::hours(12))), now, need);
        assert_eq!(r[1].status, Status::Pass);
        let r = credentials(&id(Some(now - time::Duration::minutes(1))), now, need);
        assert_eq!(r[1].status, Status::Fail);
    }

    #[test]
    fn every_missing_permission_is_named() {
        use crate::cloud::facts::RequiredPermission;
        let m = |a: &str| RequiredPermission {
            action: a.into(),
            resource: "arn:x".into(),
            context: Default::default(),
        };
        let f = PermissionFacts {
            principal: "arn:aws:iam::1:role/I".into(),
            missing: vec![m("eks:CreateCluster"), m("iam:PassRole")],
            checked: 20,
        };
        let rs = permissions(&f, "policy.json");
        assert_eq!(rs.len(), 2);
        assert!(rs[0].message.contains("may not eks:CreateCluster on arn:x"));
        assert_eq!(rs[1].id, "access.permission.iam:PassRole");
        let ok = permissions(
            &PermissionFacts {
                missing: vec![],
                ..f
            },
            "p",
        );
        assert_eq!(ok[0].status, Status::Pass);
    }

    fn cluster_facts() -> ClusterFacts {
        ClusterFacts {
            name: "digibee-acme".into(),
            id: "arn".into(),
            status: CloudStatus::Active,
            kubernetes_version: "1.31".into(),
            subnets: vec!["b".into(), "a".into()],
            role: "arn:c".into(),
            tags: crate::cloud::realm_tags(Provider::Eks, "acme"),
            endpoint: None,
            certificate_authority: None,
        }
    }

    fn want() -> ClusterDef {
        ClusterDef {
            name: "digibee-acme".into(),
            kubernetes_version: "1.31".into(),
            subnets: vec!["a".into(), "b".into()],
            role: "arn:c".into(),
            tags: crate::cloud::realm_tags(Provider::Eks, "acme"),
        }
    }

    #[test]
    fn clusters_are_created_adopted_or_refused() {
        let key = crate::cloud::realm_tag_key(Provider::Eks);
        assert_eq!(cluster(None, &want(), key, "acme"), Decision::Create);
        assert_eq!(
            cluster(Some(&cluster_facts()), &want(), key, "acme"),
            Decision::Adopt
        );
        type Edit = Box<dyn Fn(&mut ClusterFacts)>;
        let edits: Vec<(Edit, &str)> = vec![
            (
                Box::new(|c| {
                    c.tags.clear();
                }),
                "no realmctl.digibee.com/realm tag",
            ),
            (
                Box::new(|c| {
                    c.tags.insert(key.into(), "other".into());
                }),
                "names realm `other`",
            ),
            (
                Box::new(|c| c.kubernetes_version = "1.30".into()),
                "runs Kubernetes 1.30",
            ),
            (
                Box::new(|c| c.subnets = vec!["a".into()]),
                "its subnets are a",
            ),
            (Box::new(|c| c.role = "arn:x".into()), "its role is arn:x"),
        ];
        for (edit, why) in edits {
            let mut c = cluster_facts();
            edit(&mut c);
            match cluster(Some(&c), &want(), key, "acme") {
                Decision::Conflict(m) => {
                    assert!(m.contains(why) && m.contains("changes nothing"), "{m}")
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }
}
