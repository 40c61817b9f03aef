//! The install identity's permissions as data (`playbooks/requirements/roles.yaml`, the same
//! source as the phase-5 roles document): the concrete list `cloud.permissions` checks, and the
//! least-privilege document the customer grants (an IAM policy, an Azure custom role, a Google
//! IAM custom role), rendered from the template the cloud's profile names (pure).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::facts::RequiredPermission;
use super::profile;
use crate::requirements::{ForWorkflow, Permission, ProviderRoles};
use crate::spec::Spec;
use crate::templates::{self, TemplateError};

/// What the resource patterns of the permission data are filled in with: `{name}` → value,
/// from the cloud's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars(pub BTreeMap<&'static str, String>);

impl Vars {
    /// The values of `spec`, as its cloud's profile gives them.
    pub fn for_spec(spec: &Spec) -> Vars {
        Vars(profile::of(spec).permission_vars(spec))
    }

    /// A resource pattern with its placeholders filled in.
    pub fn expand(&self, pattern: &str) -> String {
        let mut out = pattern.to_owned();
        for (k, v) in &self.0 {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }
}

/// A condition block with its placeholders filled in (a tag value may name the realm).
fn expand_value(v: &Value, vars: &Vars) -> Value {
    match v {
        Value::String(s) => Value::String(vars.expand(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| expand_value(x, vars)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (vars.expand(k), expand_value(x, vars)))
                .collect(),
        ),
        other => other.clone(),
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
fn context(p: &Permission, vars: &Vars) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(ops)) = p.condition.as_ref().map(|c| expand_value(c, vars)) {
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
        let ctx = context(p, vars);
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

/// What a least-privilege template is rendered from: the statements (IAM policies), or the
/// flat list of actions and the scopes they apply to (custom roles).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyModel<'a> {
    realm: &'a str,
    /// The destroy's document (else the install's): the role's name and description say so.
    destroy: bool,
    statements: &'a [Statement],
    actions: Vec<String>,
    data_actions: Vec<String>,
    scopes: Vec<String>,
}

/// The roles, permissions and resources of the realm of `spec`'s install: its cloud's, less
/// the VPN's when it has none, less what only `destroy` needs.
pub fn roles_of(spec: &Spec) -> ProviderRoles {
    roles_for(spec, ForWorkflow::Install)
}

/// The roles, permissions and resources `workflow` needs for the realm of `spec`.
pub fn roles_for(spec: &Spec, workflow: ForWorkflow) -> ProviderRoles {
    crate::requirements::embedded()
        .roles
        .for_provider(spec.cloud.provider)
        .for_realm(spec.vpn.enabled)
        .for_workflow(workflow)
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
                .split([':', '-', '_', '.', '/'])
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
                condition: p.condition.as_ref().map(|c| expand_value(c, vars)),
            }
        })
        .collect()
}

/// The least-privilege document of the install identity of `spec`, in the form its cloud
/// takes (an IAM policy in JSON for EKS, an Azure custom role in JSON for AKS, a Google IAM
/// custom role in YAML for GKE), rendered from the template its profile names.
pub fn policy_document(spec: &Spec) -> Result<String, TemplateError> {
    policy_document_for(spec, ForWorkflow::Install)
}

/// The least-privilege document of what `workflow` needs for the realm of `spec` (the
/// install's, or `realmctl destroy`'s), in the form its cloud takes.
pub fn policy_document_for(spec: &Spec, workflow: ForWorkflow) -> Result<String, TemplateError> {
    let prof = profile::of(spec);
    let vars = Vars::for_spec(spec);
    let roles = roles_for(spec, workflow);
    let statements = statements(&roles, &vars);
    let mut actions: Vec<String> = Vec::new();
    let mut scopes: Vec<String> = Vec::new();
    for s in &statements {
        for a in &s.actions {
            if !actions.contains(a) {
                actions.push(a.clone());
            }
        }
        for r in &s.resources {
            if !scopes.contains(r) {
                scopes.push(r.clone());
            }
        }
    }
    // A custom role is assignable at the broadest scope it is used at; narrower scopes it
    // lists (a subnet in the group) are inside it.
    let broadest: Vec<String> = scopes
        .iter()
        .filter(|s| {
            !scopes
                .iter()
                .any(|o| o != *s && s.starts_with(&format!("{o}/")))
        })
        .cloned()
        .collect();
    templates::render(
        prof.policy().template,
        &PolicyModel {
            realm: &spec.name,
            destroy: workflow == ForWorkflow::Destroy,
            statements: &statements,
            actions,
            data_actions: roles
                .installer
                .permissions
                .iter()
                .flat_map(|p| p.data_actions.iter().cloned())
                .collect(),
            scopes: broadest,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Provider;

    fn vars() -> Vars {
        Vars(
            [
                ("partition", "aws"),
                ("region", "us-east-1"),
                ("account", "123456789012"),
                ("cluster", "digibee-acme"),
                ("clusterRole", "arn:aws:iam::123456789012:role/c"),
                ("nodeRole", "arn:aws:iam::123456789012:role/n"),
                ("realm", "acme"),
            ]
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect(),
        )
    }

    fn eks() -> ProviderRoles {
        crate::requirements::embedded()
            .roles
            .for_provider(Provider::Eks)
            .for_realm(false)
            .for_workflow(ForWorkflow::Install)
    }

    #[test]
    fn required_permissions_are_concrete_and_carry_condition_context() {
        let r = required(&eks(), &vars());
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
        let doc = policy_document(&spec).unwrap();
        let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert_eq!(v["Version"], "2012-10-17");
        let st = v["Statement"].as_array().unwrap();
        let roles = eks();
        let data: Vec<_> = roles
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
        assert!(
            !doc.contains("secretsmanager"),
            "no VPN, no VPN permissions"
        );
    }

    #[test]
    fn a_vpn_realm_needs_the_vpn_permissions_on_its_own_resources_only() {
        let all = crate::requirements::embedded()
            .roles
            .for_provider(Provider::Eks)
            .for_realm(true)
            .for_workflow(ForWorkflow::Install);
        let r = required(&all, &vars());
        let secret = r
            .iter()
            .find(|p| p.action == "secretsmanager:CreateSecret")
            .unwrap();
        assert_eq!(
            secret.resource,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:acme-vpn-psk-realmctl-check"
        );
        let run = r.iter().find(|p| p.action == "ec2:RunInstances").unwrap();
        assert_eq!(
            run.context["aws:RequestTag/realmctl.digibee.com/realm"],
            ["acme"],
            "created only with the realm's tag"
        );
        let pass: Vec<_> = r.iter().filter(|p| p.action == "iam:PassRole").collect();
        assert_eq!(pass.len(), 3, "cluster, node and VPN role");
        assert_eq!(pass[2].resource, "arn:aws:iam::123456789012:role/acme-vpn");
        assert_eq!(
            pass[2].context["iam:PassedToService"],
            ["ec2.amazonaws.com"]
        );
        let (_d, mut spec) = crate::engine::test_support::spec(Provider::Eks, "digibee.acme.com");
        spec.vpn.enabled = true;
        let doc = policy_document(&spec).unwrap();
        let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert!(!doc.contains("{realm}"), "{doc}");
        assert!(
            v["Statement"].as_array().unwrap().iter().any(
                |s| s["Condition"]["StringEquals"]["aws:ResourceTag/realmctl.digibee.com/realm"]
                    == "acme"
            ),
            "{doc}"
        );
    }

    #[test]
    fn the_azure_custom_role_lists_every_action_on_the_resource_group() {
        let (_d, spec) = crate::engine::test_support::spec(Provider::Aks, "digibee.acme.com");
        let doc = policy_document(&spec).unwrap();
        let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert_eq!(v["IsCustom"], true);
        let actions: Vec<&str> = v["Actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let data: Vec<String> = crate::requirements::embedded()
            .roles
            .for_provider(Provider::Aks)
            .for_realm(false)
            .for_workflow(ForWorkflow::Install)
            .installer
            .permissions
            .iter()
            .flat_map(|p| p.actions.clone())
            .collect();
        assert!(!data.is_empty());
        for a in &data {
            assert!(actions.contains(&a.as_str()), "{a} missing from {doc}");
        }
        assert!(actions.contains(&"Microsoft.ContainerService/managedClusters/write"));
        assert!(
            !doc.contains("Microsoft.KeyVault"),
            "no VPN, no VPN actions"
        );
        // A VPN realm's role reads its key's value as a data action, and may build the VPN.
        let mut vpn = spec.clone();
        vpn.vpn.enabled = true;
        let v: Value = serde_json::from_str(&policy_document(&vpn).unwrap()).unwrap();
        assert_eq!(
            v["DataActions"],
            serde_json::json!(["Microsoft.KeyVault/vaults/secrets/getSecret/action"])
        );
        assert!(
            v["Actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "Microsoft.Compute/virtualMachines/write")
        );
        let scopes = v["AssignableScopes"].as_array().unwrap();
        assert!(!scopes.is_empty());
        for s in scopes {
            assert!(s.as_str().unwrap().starts_with("/subscriptions/"), "{s}");
            assert!(!s.as_str().unwrap().contains('{'), "{s}");
        }
    }

    #[test]
    fn the_google_custom_role_lists_every_permission() {
        let (_d, spec) = crate::engine::test_support::spec(Provider::Gke, "digibee.acme.com");
        let doc = policy_document(&spec).unwrap();
        let v: Value = serde_saphyr::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        let perms: Vec<&str> = v["includedPermissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(perms.contains(&"container.clusters.create"), "{doc}");
        assert_eq!(v["stage"], "GA");
        let required = required(&roles_of(&spec), &Vars::for_spec(&spec));
        assert!(required.iter().all(|r| perms.contains(&r.action.as_str())));
        assert!(
            required
                .iter()
                .all(|r| r.resource.starts_with("projects/") && !r.resource.contains('{'))
        );
    }
}

#[cfg(test)]
mod workflow_tests {
    use super::*;
    use crate::spec::Provider;

    /// The install's document grants nothing only destroy needs, and the destroy's grants no
    /// create; both are whole documents of their cloud's form, named for what they are.
    #[test]
    fn install_and_destroy_each_get_only_their_own_permissions() {
        /// A cloud's delete and create of the cluster, the VPN instance's delete, and what
        /// names each document for what it is (a role's name; an IAM policy has none).
        struct Case {
            provider: Provider,
            delete: &'static str,
            create: &'static str,
            vpn_delete: &'static str,
            named: Option<(&'static str, &'static str)>,
        }
        let cases = [
            Case {
                provider: Provider::Eks,
                delete: "eks:DeleteCluster",
                create: "eks:CreateCluster",
                vpn_delete: "ec2:TerminateInstances",
                named: None,
            },
            Case {
                provider: Provider::Aks,
                delete: "Microsoft.ContainerService/managedClusters/delete",
                create: "Microsoft.ContainerService/managedClusters/write",
                vpn_delete: "Microsoft.Compute/virtualMachines/delete",
                named: Some(("realmctl destroy (acme)", "realmctl installer (acme)")),
            },
            Case {
                provider: Provider::Gke,
                delete: "container.clusters.delete",
                create: "container.clusters.create",
                vpn_delete: "compute.instances.delete",
                named: Some(("realmctlDestroy", "realmctlInstaller")),
            },
        ];
        for c in cases {
            for vpn in [false, true] {
                let (_d, mut spec) =
                    crate::engine::test_support::spec(c.provider, "digibee.acme.com");
                spec.vpn.enabled = vpn;
                let install = policy_document(&spec).unwrap();
                let destroy = policy_document_for(&spec, ForWorkflow::Destroy).unwrap();
                let p = c.provider;
                assert!(
                    install.contains(c.create) && !install.contains(c.delete),
                    "{p} {vpn}"
                );
                assert!(
                    destroy.contains(c.delete) && !destroy.contains(c.create),
                    "{p} {vpn}"
                );
                assert!(!destroy.contains("{realm}") && !destroy.contains("{nodeResourceGroup}"));
                if let Some((destroy_name, install_name)) = c.named {
                    assert!(destroy.contains(destroy_name), "{destroy}");
                    assert!(install.contains(install_name), "{install}");
                }
                // No write but the one that takes the VPN's route table off its subnet.
                let writes: Vec<&str> = destroy
                    .split('"')
                    .filter(|t| t.ends_with("/write") && !t.ends_with("subnets/write"))
                    .collect();
                assert!(writes.is_empty(), "{p} {vpn}: {writes:?}");
                // The VPN's teardown only for a realm with a VPN.
                assert_eq!(destroy.contains(c.vpn_delete), vpn, "{p} {vpn}");
            }
        }
    }

    /// The permission check of each workflow asks for exactly that workflow's document.
    #[test]
    fn each_workflow_checks_what_its_document_grants() {
        let (_d, spec) = crate::engine::test_support::spec(Provider::Eks, "digibee.acme.com");
        let vars = Vars::for_spec(&spec);
        let destroy = required(&roles_for(&spec, ForWorkflow::Destroy), &vars);
        let install = required(&roles_for(&spec, ForWorkflow::Install), &vars);
        assert!(destroy.iter().any(|p| p.action == "eks:DeleteNodegroup"));
        assert!(!install.iter().any(|p| p.action == "eks:DeleteNodegroup"));
        for both in ["sts:GetCallerIdentity", "iam:SimulatePrincipalPolicy"] {
            assert!(destroy.iter().any(|p| p.action == both), "{both}");
            assert!(install.iter().any(|p| p.action == both), "{both}");
        }
    }
}
