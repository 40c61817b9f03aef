//! What the cloud's facts mean (pure): check results with owner and fix for the account,
//! credential and permission steps (shared by the engine and `preflight --only access`), and the
//! create / adopt / refuse decision for clusters and node pools, judged against the one cluster
//! definition. Every cloud-specific number, name and help text comes from the cloud's profile
//! ([`super::profile`]); nothing here knows which cloud it judges.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::definition::{self, ClusterDefinition, PoolDefinition};
use super::facts::{AccountFacts, ClusterFacts, Identity, Lookup, NodePoolFacts, PermissionFacts};
use super::profile::{AccountAsk, CredentialRenewal};
use crate::checks::{Category, CheckResult, Owner};

const CAT: Category = Category::Access;

/// The account step's findings.
pub fn account(facts: &AccountFacts, want: &AccountAsk) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // The credentials' account is the spec's.
    out.push(if facts.account == want.account {
        CheckResult::pass(
            "access.account",
            CAT,
            &want.account,
            format!("the credentials belong to {}", facts.account),
        )
    } else {
        CheckResult::fail(
            "access.account",
            CAT,
            &want.account,
            format!(
                "the credentials belong to {}, not {}",
                facts.account, want.account
            ),
            format!(
                "run with credentials of the account the spec names, or fix {}",
                want.account_field
            ),
        )
    });
    if !want.query.subnets.is_empty() {
        out.extend(subnets(facts, want));
    }
    for q in &want.query.identities {
        let Some(r) = facts.identities.iter().find(|r| r.purpose == q.purpose) else {
            continue;
        };
        let id = format!(
            "access.role.{}",
            q.purpose.rsplit('.').next().unwrap_or(&q.purpose)
        );
        out.push(if !r.exists {
            CheckResult::fail(
                id,
                CAT,
                &r.id,
                format!("{}: {} does not exist", q.purpose, r.id),
                format!(
                    "create it as the roles-and-resources document describes, or fix {}",
                    q.purpose
                ),
            )
        } else if let Some(service) = q
            .trusts
            .as_deref()
            .filter(|s| !r.trusted_services.iter().any(|t| t == s))
        {
            CheckResult::fail(
                id,
                CAT,
                &r.id,
                format!(
                    "{}: {} does not let {service} act as it (trusts: {})",
                    q.purpose,
                    r.id,
                    if r.trusted_services.is_empty() {
                        "no service".to_owned()
                    } else {
                        r.trusted_services.join(", ")
                    }
                ),
                format!("add {service} to its trust policy"),
            )
        } else {
            CheckResult::pass(
                id,
                CAT,
                &r.id,
                match &q.trusts {
                    Some(s) => format!("{} exists and trusts {s}", q.purpose),
                    None => format!("{} exists", q.purpose),
                },
            )
        });
    }
    for name in &want.query.services {
        let state = facts.services.iter().find(|s| &s.name == name);
        let fix = want.service_fix.replace("{service}", name);
        out.push(match state.map(|s| &s.enabled) {
            Some(Lookup::Found(true)) => CheckResult::pass(
                format!("access.service.{name}"),
                CAT,
                name,
                format!("{name} is enabled"),
            ),
            Some(Lookup::Found(false)) => CheckResult::fail(
                format!("access.service.{name}"),
                CAT,
                name,
                format!("{name} is not enabled in {}", want.account),
                format!("run `{fix}`"),
            ),
            Some(Lookup::Unknown(why)) => CheckResult::warn(
                format!("access.service.{name}"),
                CAT,
                name,
                format!("whether {name} is enabled could not be read: {why}"),
                format!("make sure it is (`{fix}`) before the cluster step"),
            ),
            None => CheckResult::warn(
                format!("access.service.{name}"),
                CAT,
                name,
                format!("the cloud did not say whether {name} is enabled"),
                format!("make sure it is (`{fix}`) before the cluster step"),
            ),
        });
    }
    out.push(version(facts, want));
    out.extend(quotas(facts, want));
    out
}

fn version(facts: &AccountFacts, want: &AccountAsk) -> CheckResult {
    let v = &want.kubernetes_version;
    match &facts.versions {
        Lookup::Found(offered) if offered.iter().any(|x| x == v) => CheckResult::pass(
            "access.version",
            CAT,
            v,
            format!("Kubernetes {v} is offered"),
        ),
        Lookup::Found(offered) if newest_patch(offered, v).is_some() => CheckResult::pass(
            "access.version",
            CAT,
            v,
            format!(
                "Kubernetes {v} is offered; a cluster asked for {v} gets its newest patch, {}",
                newest_patch(offered, v).unwrap_or_default()
            ),
        ),
        Lookup::Found(offered) => CheckResult::fail(
            "access.version",
            CAT,
            v,
            format!(
                "Kubernetes {v} is not offered in this region (offered: {})",
                offered.join(", ")
            ),
            "set cloud.cluster.kubernetesVersion to an offered version",
        )
        .owned_by(Owner::Digibee),
        Lookup::Unknown(why) => CheckResult::warn(
            "access.version",
            CAT,
            v,
            format!("the offered Kubernetes versions could not be listed: {why}"),
            "check the version in the cloud console before the cluster step",
        )
        .owned_by(Owner::Digibee),
    }
}

/// The newest of `offered` full versions (`1.31.5-gke.1234`) of the minor `minor` (`1.31`),
/// compared by their numbers (pure).
fn newest_patch<'a>(offered: &'a [String], minor: &str) -> Option<&'a str> {
    let numbers = |v: &str| -> Vec<u64> {
        v.split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap_or(0))
            .collect()
    };
    offered
        .iter()
        .filter(|x| {
            x.strip_prefix(minor)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|x| numbers(x))
        .map(String::as_str)
}

fn quotas(facts: &AccountFacts, want: &AccountAsk) -> Vec<CheckResult> {
    let (need, why) = (&want.vcpu.0, &want.vcpu.1);
    let need = *need as f64;
    let id = |code: &str| {
        if want.query.quotas.len() == 1 {
            "access.quota.vcpu".to_owned()
        } else {
            format!("access.quota.vcpu.{code}")
        }
    };
    want.query
        .quotas
        .iter()
        .map(|q| {
            let found = facts.quotas.iter().find(|f| f.code == q.code);
            match found.map(|f| (&f.limit, f.usage)) {
                Some((Lookup::Found(limit), usage)) => {
                    let used = usage.unwrap_or(0.0);
                    let free = limit - used;
                    let usage_text = usage
                        .map(|u| format!(", {u} in use"))
                        .unwrap_or_default();
                    if free >= need {
                        CheckResult::pass(
                            id(&q.code),
                            CAT,
                            &q.name,
                            format!(
                                "the vCPU quota ({limit}{usage_text}) covers the node pools at their maximum ({why} = {need} vCPU)"
                            ),
                        )
                    } else {
                        CheckResult::fail(
                            id(&q.code),
                            CAT,
                            &q.name,
                            format!(
                                "the vCPU quota is {limit}{usage_text}, below the {need} vCPU the node pools need at their maximum ({why})"
                            ),
                            format!(
                                "request an increase of \"{}\" to at least {}",
                                q.name,
                                need + used
                            ),
                        )
                    }
                }
                Some((Lookup::Unknown(why_not), _)) => CheckResult::warn(
                    id(&q.code),
                    CAT,
                    &q.name,
                    format!("the vCPU quota could not be read: {why_not}"),
                    format!(
                        "make sure \"{}\" leaves {need} vCPU free before the cluster step",
                        q.name
                    ),
                ),
                None => CheckResult::warn(
                    id(&q.code),
                    CAT,
                    &q.name,
                    "the cloud did not report this quota",
                    format!(
                        "make sure \"{}\" leaves {need} vCPU free before the cluster step",
                        q.name
                    ),
                ),
            }
        })
        .collect()
}

fn subnets(facts: &AccountFacts, want: &AccountAsk) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let asked = &want.query.subnets;
    let subject = asked.join(", ");
    let missing: Vec<_> = asked
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
            format!(
                "fix {}, or create the subnets in the spec's region",
                want.subnets_field
            ),
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
            "name subnets of one network",
        )
    });
    if want.min_zones > 0 {
        let zones: BTreeSet<_> = facts
            .subnets
            .iter()
            .filter_map(|s| s.zone.as_deref())
            .collect();
        out.push(if zones.len() >= want.min_zones {
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
                    "the subnets span {} zone(s) ({}); the cluster needs {} at least",
                    zones.len(),
                    zones.into_iter().collect::<Vec<_>>().join(", "),
                    want.min_zones
                ),
                "add a subnet in another availability zone",
            )
        });
    }
    if !want.query.secondary_ranges.is_empty() {
        out.push(secondary_ranges(facts, want, &subject));
    }
    let reserved = want.reserved_per_subnet;
    let free: u64 = facts.subnets.iter().map(|s| s.free_addresses).sum();
    let need = want.addresses.0 + reserved * facts.subnets.len() as u64;
    let starved: Vec<_> = facts
        .subnets
        .iter()
        .filter(|s| s.free_addresses < reserved)
        .map(|s| s.id.as_str())
        .collect();
    out.push(if free >= need && starved.is_empty() {
        CheckResult::pass(
            "access.subnets.addresses",
            CAT,
            &subject,
            format!("{free} free addresses; the node pools need up to {need}"),
        )
    } else {
        let detail = if starved.is_empty() {
            String::new()
        } else {
            format!("; fewer than {reserved} left in {}", starved.join(", "))
        };
        CheckResult::fail(
            "access.subnets.addresses",
            CAT,
            &subject,
            format!(
                "{free} free addresses; the node pools need up to {need} ({}){detail}",
                want.addresses.1
            ),
            "add subnets or larger subnets (or lower the realm's size)",
        )
    });
    out
}

/// Whether the subnets carry the secondary ranges the definition takes pod and Service
/// addresses from.
fn secondary_ranges(facts: &AccountFacts, want: &AccountAsk, subject: &str) -> CheckResult {
    let have: BTreeSet<&str> = facts
        .subnets
        .iter()
        .flat_map(|s| s.secondary_ranges.iter().map(String::as_str))
        .collect();
    let missing: Vec<&str> = want
        .query
        .secondary_ranges
        .iter()
        .map(String::as_str)
        .filter(|r| !have.contains(r))
        .collect();
    if missing.is_empty() {
        CheckResult::pass(
            "access.subnets.ranges",
            CAT,
            subject,
            format!(
                "secondary ranges {} exist",
                want.query.secondary_ranges.join(", ")
            ),
        )
    } else {
        CheckResult::fail(
            "access.subnets.ranges",
            CAT,
            subject,
            format!(
                "the subnetwork has no secondary range {} (it has: {})",
                missing.join(", "),
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.into_iter().collect::<Vec<_>>().join(", ")
                }
            ),
            format!(
                "add the ranges to the subnetwork (`gcloud compute networks subnets update <subnetwork> --add-secondary-ranges=<name>=<cidr>`), or fix {}",
                want.subnets_field
            ),
        )
    }
}

/// The credential step's findings: who, from where, and whether the credentials last as long
/// as the install needs them, judged as the cloud's profile says they renew.
pub fn credentials(
    id: &Identity,
    now: OffsetDateTime,
    renewal: CredentialRenewal,
) -> Vec<CheckResult> {
    let mut out = vec![CheckResult::pass(
        "access.identity",
        CAT,
        &id.principal,
        format!(
            "running as {} in {} (credentials from {})",
            id.principal, id.account, id.source
        ),
    )];
    let fail = |msg: String, fix: &str| {
        CheckResult::fail("access.credentials.expiry", CAT, &id.principal, msg, fix)
    };
    out.push(match (id.expires_at, renewal) {
        (None, CredentialRenewal::Refreshing) => CheckResult::pass(
            "access.credentials.expiry",
            CAT,
            &id.principal,
            "short-lived tokens the credential chain renews (it issued one just now; the token's expiry is not reported)",
        ),
        (None, _) => CheckResult::pass(
            "access.credentials.expiry",
            CAT,
            &id.principal,
            "long-lived credentials (no expiry)",
        ),
        (Some(at), CredentialRenewal::Refreshing) if at > now => CheckResult::pass(
            "access.credentials.expiry",
            CAT,
            &id.principal,
            format!(
                "the current token is valid for {} more min and the credential chain renews it",
                (at - now).whole_minutes()
            ),
        ),
        (Some(at), CredentialRenewal::Refreshing) => fail(
            format!("the token expired at {at} and was not renewed"),
            "sign in again (the credential chain could not renew the token) and run again",
        ),
        (Some(at), CredentialRenewal::Session { .. }) if at <= now => fail(
            format!("the credentials expired at {at}"),
            "refresh the credentials and run again",
        ),
        (Some(at), CredentialRenewal::Session { needed }) => {
            let left = at - now;
            let left_min = left.whole_minutes();
            let needed_min = (needed.as_secs() / 60) as i64;
            if left < time::Duration::try_from(needed).unwrap_or(time::Duration::MAX) {
                CheckResult::warn(
                    "access.credentials.expiry",
                    CAT,
                    &id.principal,
                    format!(
                        "the credentials expire in {left_min} min, before a cluster could be created ({needed_min} min), and this session cannot renew itself"
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
                "all {} permissions of the {policy_hint} are granted",
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
                format!("grant the least-privilege {policy_hint}"),
            )
        })
        .collect()
}

/// What to do about a cluster or node pool of the definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is none: create it.
    Create,
    /// This realm created it and it matches the definition: adopt it as it is.
    Adopt,
    /// There is one this realm did not create, or one that differs from the definition:
    /// refuse, change nothing.
    Conflict(String),
}

/// Whether the ownership tags say this realm created the resource.
fn ours(tags: &BTreeMap<String, String>, key: &str, realm: &str) -> Result<(), String> {
    match tags.get(key) {
        Some(v) if v == realm => Ok(()),
        Some(v) => Err(format!(
            "its tag {key} names realm `{}`",
            crate::text::one_line(v)
        )),
        None => Err(format!(
            "it has no {key} tag, so this realm did not create it"
        )),
    }
}

/// Create, adopt or refuse the cluster (pure): adopt only what this realm created and what
/// matches the definition in every field that matters.
pub fn cluster(
    existing: Option<&ClusterFacts>,
    want: &ClusterDefinition,
    tag_key: &str,
    realm: &str,
) -> Decision {
    let Some(c) = existing else {
        return Decision::Create;
    };
    if let Err(e) = ours(&c.described.tags, tag_key, realm) {
        return conflict("cluster", &want.cluster.name, vec![e]);
    }
    let diffs = definition::compare_cluster(&want.cluster, &c.described);
    if diffs.is_empty() {
        Decision::Adopt
    } else {
        conflict(
            "cluster",
            &want.cluster.name,
            diffs.iter().map(ToString::to_string).collect(),
        )
    }
}

/// Create, adopt or refuse a node pool (pure).
pub fn node_pool(
    existing: Option<&NodePoolFacts>,
    want: &PoolDefinition,
    tag_key: &str,
    realm: &str,
) -> Decision {
    let Some(p) = existing else {
        return Decision::Create;
    };
    if let Err(e) = ours(&p.described.tags, tag_key, realm) {
        return conflict("node pool", &want.nodes.name, vec![e]);
    }
    let diffs = definition::compare_pool(&want.nodes, &p.described);
    if diffs.is_empty() {
        Decision::Adopt
    } else {
        conflict(
            "node pool",
            &want.nodes.name,
            diffs.iter().map(ToString::to_string).collect(),
        )
    }
}

fn conflict(what: &str, name: &str, why: Vec<String>) -> Decision {
    Decision::Conflict(format!(
        "a {what} named {name} already exists and {}; realmctl changes nothing it did not create or that differs from the approved definition\n  help: choose another cloud.cluster.name, or make the spec match the existing {what} if this realm created it",
        crate::text::one_line(&why.join("; "))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::cloud::definition::tests::{described, sample};
    use crate::cloud::facts::{
        IdentityFacts, IdentityQuery, QuotaFacts, QuotaQuery, ServiceFacts, Status as CloudStatus,
        SubnetFacts,
    };
    use crate::cloud::profile::{self, AccountAsk};
    use crate::spec::Provider;

    fn subnet(id: &str, vpc: &str, zone: &str, free: u64) -> SubnetFacts {
        SubnetFacts {
            id: id.into(),
            network: vpc.into(),
            zone: Some(zone.into()),
            free_addresses: free,
            secondary_ranges: Vec::new(),
        }
    }

    /// What the EKS profile asks of a realm of 10 subscriptions (14 × m6i.xlarge at most).
    fn eks_ask() -> AccountAsk {
        let (_d, spec) = crate::engine::test_support::spec(Provider::Eks, "digibee.acme.com");
        let p = profile::of(&spec);
        let pool = crate::cloud::sizing::for_realm(Provider::Eks, &spec.subscription);
        let def = p.definition(&spec, &pool);
        let mut ask = p.account(&spec, &def, &pool);
        ask.account = "123456789012".into();
        ask.query.subnets = vec!["a".into(), "b".into()];
        ask
    }

    fn facts() -> AccountFacts {
        AccountFacts {
            account: "123456789012".into(),
            subnets: vec![
                subnet("a", "vpc-1", "us-east-1a", 4000),
                subnet("b", "vpc-1", "us-east-1b", 4000),
            ],
            identities: vec![
                IdentityFacts {
                    purpose: "cloud.eks.clusterRoleArn".into(),
                    id: "arn:c".into(),
                    exists: true,
                    trusted_services: vec!["eks.amazonaws.com".into()],
                },
                IdentityFacts {
                    purpose: "cloud.eks.nodeRoleArn".into(),
                    id: "arn:n".into(),
                    exists: true,
                    trusted_services: vec!["ec2.amazonaws.com".into()],
                },
            ],
            services: vec![],
            versions: Lookup::Found(vec!["1.30".into(), "1.31".into(), "1.35".into()]),
            quotas: vec![QuotaFacts {
                code: profile::STANDARD_VCPU_QUOTA.into(),
                limit: Lookup::Found(1000.0),
                usage: None,
            }],
        }
    }

    fn status_of<'a>(rs: &'a [CheckResult], id: &str) -> (&'a Status, &'a str) {
        let r = rs
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no {id} in {rs:?}"));
        (&r.status, r.message.as_str())
    }

    #[test]
    fn a_minor_matches_its_newest_offered_patch_by_number() {
        let offered: Vec<String> = ["1.31.5-gke.1234", "1.31.10-gke.200", "1.310.1", "1.30.9"]
            .map(String::from)
            .to_vec();
        assert_eq!(newest_patch(&offered, "1.31"), Some("1.31.10-gke.200"));
        assert_eq!(newest_patch(&offered, "1.32"), None);
        let mut f = facts();
        f.versions = Lookup::Found(offered);
        let mut ask = eks_ask();
        ask.kubernetes_version = "1.31".into();
        let rs = account(&f, &ask);
        let (st, detail) = status_of(&rs, "access.version");
        assert_eq!(*st, Status::Pass, "{detail}");
        assert!(detail.contains("1.31.10-gke.200"), "{detail}");
        ask.kubernetes_version = "1.29".into();
        let rs = account(&f, &ask);
        assert_eq!(*status_of(&rs, "access.version").0, Status::Fail);
    }

    #[test]
    fn a_good_account_passes_every_check() {
        let rs = account(&facts(), &eks_ask());
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
                Box::new(|f| f.subnets[1].zone = Some("us-east-1a".into())),
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
                Box::new(|f| f.identities[0].exists = false),
            ),
            (
                "access.role.nodeRoleArn",
                Box::new(|f| f.identities[1].trusted_services = vec![]),
            ),
            (
                "access.version",
                Box::new(|f| f.versions = Lookup::Found(vec!["1.29".into()])),
            ),
            (
                "access.quota.vcpu",
                Box::new(|f| f.quotas[0].limit = Lookup::Found(32.0)),
            ),
            (
                "access.quota.vcpu",
                Box::new(|f| {
                    f.quotas[0].limit = Lookup::Found(60.0);
                    f.quotas[0].usage = Some(10.0);
                }),
            ),
        ];
        for (id, edit) in cases {
            let mut f = facts();
            edit(&mut f);
            let rs = account(&f, &eks_ask());
            let bad: Vec<_> = rs.iter().filter(|r| r.status == Status::Fail).collect();
            assert_eq!(bad.len(), 1, "{id}: {rs:#?}");
            assert_eq!(bad[0].id, id);
            assert!(bad[0].fix.is_some());
        }
        // The quota names what is needed: 14 × m6i.xlarge = 56 vCPU.
        let mut f = facts();
        f.quotas[0].limit = Lookup::Found(32.0);
        let rs = account(&f, &eks_ask());
        let (_, msg) = status_of(&rs, "access.quota.vcpu");
        assert!(msg.contains("below the 56 vCPU"), "{msg}");
    }

    #[test]
    fn the_profile_decides_zones_services_and_several_quotas() {
        // A cloud of regional subnets, two quotas and a service to enable (AKS-like).
        let mut ask = eks_ask();
        ask.min_zones = 0;
        ask.query.identities.clear();
        ask.query.services = vec!["Microsoft.ContainerService".into()];
        ask.service_fix = "az provider register --namespace {service}";
        ask.query.quotas = vec![
            QuotaQuery {
                code: "cores".into(),
                name: "Total Regional vCPUs".into(),
            },
            QuotaQuery {
                code: "standardDSv5Family".into(),
                name: "DSv5 vCPUs".into(),
            },
        ];
        let mut f = facts();
        f.subnets[1].zone = None;
        f.subnets[0].zone = None;
        f.services = vec![ServiceFacts {
            name: "Microsoft.ContainerService".into(),
            enabled: Lookup::Found(false),
        }];
        f.quotas = vec![
            QuotaFacts {
                code: "cores".into(),
                limit: Lookup::Found(100.0),
                usage: Some(10.0),
            },
            QuotaFacts {
                code: "standardDSv5Family".into(),
                limit: Lookup::Found(20.0),
                usage: Some(0.0),
            },
        ];
        let rs = account(&f, &ask);
        assert!(
            rs.iter().all(|r| r.id != "access.subnets.zones"),
            "no zone rule"
        );
        let (st, _) = status_of(&rs, "access.service.Microsoft.ContainerService");
        assert_eq!(st, &Status::Fail);
        let fix = rs
            .iter()
            .find(|r| r.id.starts_with("access.service."))
            .unwrap()
            .fix
            .clone();
        assert_eq!(
            fix.as_deref(),
            Some("run `az provider register --namespace Microsoft.ContainerService`")
        );
        assert_eq!(status_of(&rs, "access.quota.vcpu.cores").0, &Status::Pass);
        assert_eq!(
            status_of(&rs, "access.quota.vcpu.standardDSv5Family").0,
            &Status::Fail
        );
        // An identity without a trust rule only has to exist.
        ask.query.identities = vec![IdentityQuery {
            purpose: "cloud.aks.identity".into(),
            id: "arn:c".into(),
            trusts: None,
        }];
        f.identities[0].purpose = "cloud.aks.identity".into();
        f.identities[0].trusted_services.clear();
        let rs = account(&f, &ask);
        assert_eq!(status_of(&rs, "access.role.identity").0, &Status::Pass);
    }

    #[test]
    fn unknown_versions_and_quotas_warn() {
        let mut f = facts();
        f.versions = Lookup::Unknown("the endpoint does not list versions".into());
        f.quotas[0].limit = Lookup::Unknown("no such quota".into());
        let rs = account(&f, &eks_ask());
        assert_eq!(status_of(&rs, "access.version").0, &Status::Warn);
        assert_eq!(status_of(&rs, "access.quota.vcpu").0, &Status::Warn);
        assert!(rs.iter().all(|r| r.status != Status::Fail));
    }

    #[test]
    fn sessions_warn_when_they_expire_before_a_cluster_could_be_created_and_tokens_refresh() {
        let now = time::macros::datetime!(2026-11-30 10:00 UTC);
        let id = |exp| Identity {
            principal: "arn:aws:sts::1:assumed-role/I/ann".into(),
            account: "1".into(),
            source: "Environment".into(),
            expires_at: exp,
        };
        let session = CredentialRenewal::Session {
            needed: std::time::Duration::from_secs(75 * 60),
        };
        let r = credentials(&id(None), now, session);
        assert!(r.iter().all(|c| c.status == Status::Pass));
        assert!(r[0].message.contains("credentials from Environment"));
        let soon = Some(now + time::Duration::minutes(30));
        let r = credentials(&id(soon), now, session);
        assert_eq!(r[1].status, Status::Warn);
        assert!(
            r[1].message.contains("expire in 30 min"),
            "{}",
            r[1].message
        );
        let r = credentials(&id(soon), now, CredentialRenewal::Refreshing);
        assert_eq!(r[1].status, Status::Pass, "a refreshing chain renews it");
        assert!(r[1].message.contains("renews"), "{}", r[1].message);
        let r = credentials(&id(Some(now + time::Duration::hours(12))), now, session);
        assert_eq!(r[1].status, Status::Pass);
        let past = Some(now - time::Duration::minutes(1));
        assert_eq!(credentials(&id(past), now, session)[1].status, Status::Fail);
        assert_eq!(
            credentials(&id(past), now, CredentialRenewal::Refreshing)[1].status,
            Status::Fail
        );
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

    fn cluster_facts(d: &ClusterDefinition) -> ClusterFacts {
        ClusterFacts {
            id: "arn".into(),
            status: CloudStatus::Active,
            described: described(d).0,
            endpoint: None,
            certificate_authority: None,
        }
    }

    #[test]
    fn clusters_are_created_adopted_or_refused() {
        let want = sample();
        let key = "realmctl.digibee.com/realm";
        assert_eq!(cluster(None, &want, key, "acme"), Decision::Create);
        assert_eq!(
            cluster(Some(&cluster_facts(&want)), &want, key, "acme"),
            Decision::Adopt
        );
        type Edit = Box<dyn Fn(&mut ClusterFacts)>;
        let edits: Vec<(Edit, &str)> = vec![
            (
                Box::new(|c| c.described.tags.clear()),
                "no realmctl.digibee.com/realm tag",
            ),
            (
                Box::new(|c| {
                    c.described.tags.insert(key.into(), "other".into());
                }),
                "names realm `other`",
            ),
            (
                Box::new(|c| {
                    c.described.tags.insert(key.into(), "x\n\x1b[31mred".into());
                }),
                r"names realm `x\n\u{1b}[31mred`",
            ),
            (
                Box::new(|c| c.described.kubernetes_version = "1.30".into()),
                "kubernetesVersion: the cloud has \"1.30\"",
            ),
            (
                Box::new(|c| c.described.network.subnets = vec!["a".into()]),
                "network.subnets",
            ),
            (
                Box::new(|c| c.described.control_plane_identity = Some("arn:x".into())),
                "controlPlaneIdentity",
            ),
            (
                Box::new(|c| {
                    c.described.api_access = crate::spec::ApiAccess::Public {
                        cidrs: vec!["0.0.0.0/0".parse().unwrap()],
                    }
                }),
                "apiAccess",
            ),
            (
                Box::new(|c| c.described.name = "digibee-acme2".into()),
                "name: the cloud has",
            ),
        ];
        for (edit, why) in edits {
            let mut c = cluster_facts(&want);
            edit(&mut c);
            match cluster(Some(&c), &want, key, "acme") {
                Decision::Conflict(m) => {
                    assert!(
                        m.contains(why) && m.contains("changes nothing"),
                        "{why}: {m}"
                    );
                    assert!(!m.lines().next().unwrap().contains('\x1b'), "{m:?}");
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn node_pools_that_differ_from_the_definition_are_refused() {
        let want = sample();
        let key = "realmctl.digibee.com/realm";
        let (_, mut p) = described(&want);
        let facts = |p: &crate::cloud::definition::PoolShape| NodePoolFacts {
            version: "1.31".into(),
            status: CloudStatus::Active,
            described: p.clone(),
        };
        assert_eq!(
            node_pool(Some(&facts(&p)), &want.pools[0], key, "acme"),
            Decision::Adopt
        );
        p.max = 46;
        match node_pool(Some(&facts(&p)), &want.pools[0], key, "acme") {
            Decision::Conflict(m) => assert!(m.contains("pools.workers.max"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
