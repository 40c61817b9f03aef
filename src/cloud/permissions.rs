//! The install identity's permissions as data (`playbooks/requirements/roles.yaml`, the same
//! source as the phase-5 roles document): the concrete list `cloud.permissions` checks, and the
//! least-privilege policy the customer attaches, rendered from `templates/policies/` (pure).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::facts::RequiredPermission;
use crate::requirements::{Permission, ProviderRoles};
use crate::spec::{CloudAccount, Spec};
use crate::templates::{self, TemplateError};

/// What the resource patterns of the permission data are filled in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// Cluster name.
    pub cluster: String,
    /// Cluster role ARN.
    pub cluster_role: String,
    /// Node role ARN.
    pub node_role: String,
}

impl Vars {
    /// The values of an EKS spec; `None` for other clouds (their permissions are roles).
    pub fn for_spec(spec: &Spec) -> Option<Vars> {
        let CloudAccount::Eks {
            account_id,
            cluster_role_arn,
            node_role_arn,
            ..
        } = &spec.cloud.account
        else {
            return None;
        };
        let partition = cluster_role_arn
            .split(':')
            .nth(1)
            .unwrap_or("aws")
            .to_owned();
        Some(Vars {
            partition,
            region: spec.cloud.region.clone(),
            account: account_id.clone(),
            cluster: spec.cloud.cluster.name.clone(),
            cluster_role: cluster_role_arn.clone(),
            node_role: node_role_arn.clone(),
        })
    }

    /// A resource pattern with its placeholders filled in.
    pub fn expand(&self, pattern: &str) -> String {
        pattern
            .replace("{partition}", &self.partition)
            .replace("{region}", &self.region)
            .replace("{account}", &self.account)
            .replace("{clusterRole}", &self.cluster_role)
            .replace("{nodeRole}", &self.node_role)
            .replace("{cluster}", &self.cluster)
    }
}

/// A resource to simulate a pattern with: a lone `*` stays (actions without resource-level
/// permissions); a `*` inside an ARN becomes a sample name the pattern covers.
fn sample(resource: &str) -> String {
    if resource == "*" {
        resource.to_owned()
    } else {
        resource.replace('*', "realmctl-check")
    }
}

/// The request context a policy condition of `p` tests: each condition key with its values.
fn context(p: &Permission) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(ops)) = &p.condition {
        for keys in ops.values() {
            if let Value::Object(keys) = keys {
                for (k, v) in keys {
                    let values: Vec<String> = match v {
                        Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect(),
                        Value::String(s) => vec![s.clone()],
                        other => vec![other.to_string()],
                    };
                    out.entry(k.clone()).or_insert_with(Vec::new).extend(values);
                }
            }
        }
    }
    out
}

/// Every (action, resource) the install needs, concrete, in data order.
pub fn required(roles: &ProviderRoles, vars: &Vars) -> Vec<RequiredPermission> {
    let mut out = Vec::new();
    for p in &roles.installer.permissions {
        let ctx = context(p);
        for action in &p.actions {
            for resource in &p.resources {
                let resource = sample(&vars.expand(resource));
                // A condition value list (e.g. two service names) is checked one value at a time.
                let mut contexts = vec![BTreeMap::new()];
                for (k, values) in &ctx {
                    contexts = contexts
                        .into_iter()
                        .flat_map(|c| {
                            values.iter().map(move |v| {
                                let mut c = c.clone();
                                c.insert(k.clone(), vec![v.clone()]);
                                c
                            })
                        })
                        .collect();
                }
                for c in contexts {
                    out.push(RequiredPermission {
                        action: action.clone(),
                        resource: resource.clone(),
                        context: c,
                    });
                }
            }
        }
    }
    out.dedup();
    out
}

/// One statement of the least-privilege policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// Statement id (letters and digits).
    pub sid: String,
    /// Actions.
    pub actions: Vec<String>,
    /// Resources, filled in.
    pub resources: Vec<String>,
    /// Condition block, if any.
    pub condition: Option<Value>,
}

#[derive(Serialize)]
struct PolicyModel<'a> {
    statements: &'a [Statement],
}

/// The statements of the least-privilege policy for `vars`.
pub fn statements(roles: &ProviderRoles, vars: &Vars) -> Vec<Statement> {
    let mut seen = BTreeMap::<String, usize>::new();
    roles
        .installer
        .permissions
        .iter()
        .filter(|p| !p.actions.is_empty())
        .map(|p| {
            let base: String = p.actions[0]
                .split([':', '-', '_'])
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            let sid = if *n == 1 { base } else { format!("{base}{n}") };
            Statement {
                sid,
                actions: p.actions.clone(),
                resources: p.resources.iter().map(|r| vars.expand(r)).collect(),
                condition: p.condition.clone(),
            }
        })
        .collect()
}

/// The least-privilege policy document of the install identity of `spec` (EKS: an IAM policy
/// in JSON), or `None` where the cloud grants the install's permissions by built-in roles.
pub fn policy_document(spec: &Spec) -> Result<Option<String>, TemplateError> {
    let Some(vars) = Vars::for_spec(spec) else {
        return Ok(None);
    };
    let roles = crate::requirements::embedded()
        .roles
        .for_provider(spec.cloud.provider);
    let statements = statements(roles, &vars);
    templates::render(
        "policies/eks-installer.json",
        &PolicyModel {
            statements: &statements,
        },
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Provider;

    fn vars() -> Vars {
        Vars {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            cluster: "digibee-acme".into(),
            cluster_role: "arn:aws:iam::123456789012:role/c".into(),
            node_role: "arn:aws:iam::123456789012:role/n".into(),
        }
    }

    fn eks() -> &'static ProviderRoles {
        crate::requirements::embedded()
            .roles
            .for_provider(Provider::Eks)
    }

    #[test]
    fn required_permissions_are_concrete_and_carry_condition_context() {
        let r = required(eks(), &vars());
        let create = r.iter().find(|p| p.action == "eks:CreateCluster").unwrap();
        assert_eq!(
            create.resource,
            "arn:aws:eks:us-east-1:123456789012:cluster/digibee-acme"
        );
        let pass: Vec<_> = r.iter().filter(|p| p.action == "iam:PassRole").collect();
        assert_eq!(pass.len(), 2, "cluster and node role");
        assert_eq!(
            pass[0].context["iam:PassedToService"],
            ["eks.amazonaws.com"]
        );
        let slr: Vec<_> = r
            .iter()
            .filter(|p| p.action == "iam:CreateServiceLinkedRole")
            .collect();
        assert_eq!(slr.len(), 4, "two resources × two service names");
        assert!(r.iter().all(|p| !p.resource.contains('{')), "{r:?}");
        let ng = r
            .iter()
            .find(|p| p.resource.contains(":nodegroup/"))
            .unwrap();
        assert_eq!(
            ng.resource,
            "arn:aws:eks:us-east-1:123456789012:nodegroup/digibee-acme/realmctl-check/realmctl-check"
        );
        assert!(
            r.iter()
                .any(|p| p.action == "ec2:DescribeSubnets" && p.resource == "*")
        );
    }

    #[test]
    fn the_policy_is_valid_json_granting_exactly_the_data() {
        let (_d, spec) = crate::engine::test_support::spec(Provider::Eks, "digibee.acme.com");
        let doc = policy_document(&spec).unwrap().unwrap();
        let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert_eq!(v["Version"], "2012-10-17");
        let st = v["Statement"].as_array().unwrap();
        let data: Vec<_> = eks()
            .installer
            .permissions
            .iter()
            .filter(|p| !p.actions.is_empty())
            .collect();
        assert_eq!(st.len(), data.len());
        let sids: std::collections::HashSet<_> =
            st.iter().map(|s| s["Sid"].as_str().unwrap()).collect();
        assert_eq!(sids.len(), st.len(), "Sids are unique");
        for (s, p) in st.iter().zip(data) {
            assert_eq!(s["Effect"], "Allow");
            assert_eq!(s["Action"], serde_json::json!(p.actions));
            assert!(
                s["Sid"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric())
            );
            for r in s["Resource"].as_array().unwrap() {
                assert!(!r.as_str().unwrap().contains('{'), "{r}");
            }
        }
        let pass = st
            .iter()
            .find(|s| s["Action"][0] == "iam:PassRole")
            .unwrap();
        assert_eq!(
            pass["Condition"]["StringEquals"]["iam:PassedToService"],
            "eks.amazonaws.com"
        );
        assert_eq!(
            policy_document(
                &crate::engine::test_support::spec(Provider::Gke, "digibee.acme.com").1
            )
            .unwrap(),
            None
        );
    }
}
