//! Upgrading a realm's cluster by one Kubernetes minor (pure): what the pre-checks decide from
//! the facts the `upgrade.plan` step gathers, and the plan the customer approves.
//!
//! The target is the realm's one cluster definition — the spec's `kubernetesVersion` — so
//! what is approved is what the cloud is asked for, and adoption afterwards judges the same
//! definition. The control plane moves first, then each pool; before anything changes:
//!
//! - never a downgrade, and never more than one minor (the control plane of every managed
//!   service moves one minor at a time);
//! - the target is offered by the cloud in the region;
//! - the version skew policy holds: no pool newer than its control plane, and none left more
//!   than three minors behind the target (kubelet skew, Kubernetes ≥ 1.28);
//! - the cluster matches the definition in every other field (an upgrade changes only the
//!   version);
//! - no API the target removes is still in use: the API server's own
//!   `apiserver_requested_deprecated_apis` gauge (which names the removing release) when it can
//!   be read, else the served versions against the deprecation guide's table
//!   (`playbooks/requirements/removed-apis.yaml`) with objects in them;
//! - no PodDisruptionBudget blocks draining a node (`disruptionsAllowed` 0 with pods it
//!   covers), named with its pods.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::{Category, CheckResult, Owner};
use crate::cloud::definition::{ClusterDefinition, Difference};
use crate::cloud::facts::Lookup;
use crate::text::one_line;

/// `MAJOR.MINOR` as numbers (a patch or suffix is ignored).
pub fn minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split(['.', '-', '+']);
    let major = it.next()?.trim_start_matches('v').parse().ok()?;
    Some((major, it.next()?.parse().ok()?))
}

/// One API version the target removes that the cluster still uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedApi {
    /// `group/version` (`v1beta3` style for the core group).
    pub group_version: String,
    /// The resource (plural).
    pub resource: String,
    /// The release that removes it.
    pub removed_in: String,
    /// How it was found in use.
    pub evidence: String,
}

/// A PodDisruptionBudget that would stop a node from draining, with the pods it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockingBudget {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The pods its selector covers.
    pub pods: Vec<String>,
}

/// A pool as the cloud describes it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolNow {
    /// Name.
    pub name: String,
    /// Its nodes' `MAJOR.MINOR`.
    pub version: String,
}

/// What the `upgrade.plan` step gathered (I/O) for [`judge`].
#[derive(Debug, Clone)]
pub struct UpgradeFacts {
    /// The control plane's `MAJOR.MINOR` now.
    pub cluster_version: String,
    /// Where the cluster and its pools differ from the definition in any field but the version.
    pub differences: Vec<Difference>,
    /// Every pool of the definition as described now (`None`: the pool does not exist).
    pub pools: Vec<(String, Option<PoolNow>)>,
    /// The versions the cloud offers.
    pub offered: Lookup<Vec<String>>,
    /// APIs the target removes that are still used (`Err`: could not be told, and why).
    pub removed: Result<Vec<RemovedApi>, String>,
    /// Budgets that block draining (`Err`: could not be told, and why).
    pub budgets: Result<Vec<BlockingBudget>, String>,
}

/// One pool's step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStep {
    /// Name.
    pub name: String,
    /// Its version now.
    pub from: String,
}

/// The upgrade the customer approves: recorded by `upgrade.plan`, bound by the gate's approval
/// to the definition's digest, carried out by `upgrade.control_plane` and `upgrade.node_pools`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePlan {
    /// The cluster.
    pub cluster: String,
    /// The control plane's version now.
    pub from: String,
    /// The target (the definition's).
    pub to: String,
    /// Whether the control plane moves (false: it is at the target, only pools follow).
    pub control_plane: bool,
    /// The pools that move, in the definition's order.
    pub pools: Vec<PoolStep>,
}

impl UpgradePlan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.control_plane && self.pools.is_empty()
    }
}

fn check(id: &str, subject: &str, failure: Option<(String, String)>, ok: String) -> CheckResult {
    match failure {
        None => CheckResult::pass(format!("upgrade.{id}"), Category::Access, subject, ok),
        Some((why, fix)) => {
            CheckResult::fail(format!("upgrade.{id}"), Category::Access, subject, why, fix)
        }
    }
    .owned_by(Owner::Digibee)
}

/// The pre-checks and the plan (pure). The plan is `Some` only when every check passed.
pub fn judge(def: &ClusterDefinition, f: &UpgradeFacts) -> (Option<UpgradePlan>, Vec<CheckResult>) {
    let name = def.cluster.name.as_str();
    let to_s = def.cluster.kubernetes_version.as_str();
    let mut out = Vec::new();
    let (Some(from), Some(to)) = (minor(&f.cluster_version), minor(to_s)) else {
        out.push(check(
            "version",
            name,
            Some((
                format!(
                    "cannot read the versions (cluster {}, target {})",
                    one_line(&f.cluster_version),
                    one_line(to_s)
                ),
                "set kubernetesVersion to MAJOR.MINOR in the spec".into(),
            )),
            String::new(),
        ));
        return (None, out);
    };
    let next = format!("{}.{}", from.0, from.1 + 1);
    let direction = if to < from {
        Some((
            format!(
                "the cluster runs {}; {to_s} would be a downgrade, which no managed service does",
                f.cluster_version
            ),
            format!(
                "set kubernetesVersion back to {} in the spec",
                f.cluster_version
            ),
        ))
    } else if to.0 != from.0 || to.1 > from.1 + 1 {
        Some((
            format!(
                "the control plane moves one minor at a time: {} to {to_s} skips a minor",
                f.cluster_version
            ),
            format!("upgrade to {next} first (kubernetesVersion: \"{next}\"), then to {to_s}"),
        ))
    } else {
        None
    };
    out.push(check(
        "direction",
        name,
        direction,
        if to == from {
            format!("the control plane already runs {to_s}")
        } else {
            format!("{} to {to_s}: one minor up", f.cluster_version)
        },
    ));
    let control_plane = to > from;
    // Pools: none ahead of the control plane, none left more than 3 minors behind the target.
    let mut pools = Vec::new();
    let mut skew = Vec::new();
    for (pool, now) in &f.pools {
        let Some(now) = now else {
            skew.push(format!(
                "node pool {pool} does not exist (the install has not built it)"
            ));
            continue;
        };
        match minor(&now.version) {
            None => skew.push(format!("node pool {pool} reports no version")),
            Some(v) if v > from => skew.push(format!(
                "node pool {pool} runs {}, newer than its control plane's {}",
                now.version, f.cluster_version
            )),
            Some(v) if v.0 != to.0 || v.1 + 3 < to.1 => skew.push(format!(
                "node pool {pool} runs {}, more than three minors behind {to_s}",
                now.version
            )),
            Some(v) if v < to => pools.push(PoolStep {
                name: pool.clone(),
                from: now.version.clone(),
            }),
            Some(_) => {}
        }
    }
    out.push(check(
        "skew",
        name,
        (!skew.is_empty()).then(|| {
            (
                skew.join("; "),
                "bring the pools to within three minors of the target (upgrade them to the control plane's version first)".into(),
            )
        }),
        format!("every pool is within the version skew policy of {to_s}"),
    ));
    let moves = control_plane || !pools.is_empty();
    if moves {
        let offered = match &f.offered {
            Lookup::Found(v) if v.iter().any(|o| minor(o) == Some(to)) => None,
            Lookup::Found(v) => Some((
                format!(
                    "the cloud does not offer Kubernetes {to_s} in this region (it offers {})",
                    v.join(", ")
                ),
                "choose an offered version".into(),
            )),
            Lookup::Unknown(why) => Some((
                format!(
                    "could not read the versions the cloud offers: {}",
                    one_line(why)
                ),
                "grant the describe-versions permission, then plan again".into(),
            )),
        };
        out.push(check(
            "offered",
            name,
            offered,
            format!("the cloud offers {to_s}"),
        ));
    }
    out.push(check(
        "definition",
        name,
        (!f.differences.is_empty()).then(|| {
            (
                format!(
                    "the cluster differs from the approved definition in more than its version: {}",
                    f.differences.iter().map(|d| one_line(&d.to_string())).collect::<Vec<_>>().join("; ")
                ),
                "an upgrade changes only the version: make the spec match the cluster (or the cluster the spec) first".into(),
            )
        }),
        "the cluster matches the definition in every field but its version".into(),
    ));
    if control_plane {
        let removed = match &f.removed {
            Ok(r) if r.is_empty() => None,
            Ok(r) => Some((
                format!(
                    "still in use and removed by {to_s}: {}",
                    r.iter()
                        .map(|a| format!("{} {} (removed in {}; {})", one_line(&a.resource), one_line(&a.group_version), one_line(&a.removed_in), one_line(&a.evidence)))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                "move the manifests and clients that use them to the replacing API version (the Kubernetes deprecation guide names it), then plan again".into(),
            )),
            Err(why) => Some((
                format!("could not tell which removed APIs are in use: {}", one_line(why)),
                "let the install identity read the API server's /metrics and discovery, then plan again".into(),
            )),
        };
        out.push(check(
            "removed-apis",
            name,
            removed,
            format!("no API removed by {to_s} is in use"),
        ));
    }
    if moves {
        let budgets = match &f.budgets {
            Ok(b) if b.is_empty() => None,
            Ok(b) => Some((
                format!(
                    "these PodDisruptionBudgets allow no disruption, so draining a node would stall: {}",
                    b.iter()
                        .map(|x| format!("{}/{} (pods: {})", one_line(&x.namespace), one_line(&x.name), x.pods.iter().map(|p| one_line(p)).collect::<Vec<_>>().join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                "scale the workload up or relax the budget (minAvailable/maxUnavailable) so one pod may be evicted, then plan again".into(),
            )),
            Err(why) => Some((
                format!("could not read the PodDisruptionBudgets: {}", one_line(why)),
                "let the install identity list PodDisruptionBudgets and Pods, then plan again".into(),
            )),
        };
        out.push(check(
            "disruption-budgets",
            name,
            budgets,
            "no PodDisruptionBudget blocks draining a node".into(),
        ));
    }
    let ok = out.iter().all(|c| c.status != crate::checks::Status::Fail);
    let plan = ok.then(|| UpgradePlan {
        cluster: name.to_owned(),
        from: f.cluster_version.clone(),
        to: to_s.to_owned(),
        control_plane,
        pools,
    });
    (plan, out)
}

/// The definition's differences from the cloud that an upgrade ignores: the version fields.
pub fn beyond_version(differences: Vec<Difference>) -> Vec<Difference> {
    differences
        .into_iter()
        .filter(|d| d.field != "kubernetesVersion")
        .collect()
}

/// The series of `apiserver_requested_deprecated_apis` (Prometheus text exposition) whose
/// `removed_release` is at or below `target` with a non-zero value (pure).
pub fn removed_from_metrics(text: &str, target: (u32, u32)) -> Vec<RemovedApi> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_requested_deprecated_apis{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        if value.trim().parse::<f64>().map_or(true, |v| v == 0.0) {
            continue;
        }
        let l = labels_of(labels);
        let Some(removed) = l.get("removed_release").filter(|r| !r.is_empty()) else {
            continue;
        };
        if minor(removed).is_none_or(|r| r > target) {
            continue;
        }
        let group = l.get("group").map(String::as_str).unwrap_or("");
        let version = l.get("version").map(String::as_str).unwrap_or("");
        let mut resource = l.get("resource").cloned().unwrap_or_default();
        if let Some(s) = l.get("subresource").filter(|s| !s.is_empty()) {
            resource = format!("{resource}/{s}");
        }
        let api = RemovedApi {
            group_version: if group.is_empty() {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            },
            resource,
            removed_in: removed.clone(),
            evidence:
                "requested since the API server started (apiserver_requested_deprecated_apis)"
                    .into(),
        };
        if !out.contains(&api) {
            out.push(api);
        }
    }
    out
}

/// The labels of one series (`a="x",b="y"`, with `\"`, `\\` and `\n` escapes).
fn labels_of(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(x) => value.push(x),
                    None => break,
                },
                c => value.push(c),
            }
        }
        out.insert(key.trim().to_owned(), value);
    }
}

/// One removal of the deprecation guide's table.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Resources (plural).
    pub resources: Vec<String>,
    /// The release that removes it.
    pub removed_in: String,
}

#[derive(Deserialize)]
struct RemovalDoc {
    removed: Vec<Removal>,
}

/// The deprecation guide's removals (embedded data).
pub fn removals() -> Vec<Removal> {
    let doc: RemovalDoc = serde_saphyr::from_str(include_str!(
        "../../../playbooks/requirements/removed-apis.yaml"
    ))
    .expect("the embedded removed-APIs table parses");
    doc.removed
}

/// The table's removals at or below `target` whose group version the cluster still serves
/// (`served`: `group/version` strings from discovery) (pure): what to list objects of.
pub fn served_removals(served: &[String], target: (u32, u32)) -> Vec<Removal> {
    removals()
        .into_iter()
        .filter(|r| minor(&r.removed_in).is_some_and(|m| m <= target))
        .filter(|r| {
            served
                .iter()
                .any(|s| *s == format!("{}/{}", r.group, r.version))
        })
        .collect()
}

/// The PodDisruptionBudgets (policy/v1 objects) that allow no disruption while covering pods,
/// each with the pods of its namespace its selector matches (pure).
pub fn blocking_budgets(budgets: &[Value], pods: &[Value]) -> Vec<BlockingBudget> {
    let mut out = Vec::new();
    for b in budgets {
        let allowed = b["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
        let expected = b["status"]["expectedPods"].as_i64().unwrap_or(0);
        if allowed > 0 || expected == 0 {
            continue;
        }
        let ns = b["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
        let covered: Vec<String> = pods
            .iter()
            .filter(|p| p["metadata"]["namespace"].as_str() == Some(ns.as_str()))
            .filter(|p| selects(&b["spec"]["selector"], &p["metadata"]["labels"]))
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        out.push(BlockingBudget {
            namespace: ns,
            name: b["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            pods: covered,
        });
    }
    out
}

/// Whether a label selector (`matchLabels`, `matchExpressions`) selects `labels` (pure). A
/// null selector selects nothing, an empty one everything (policy/v1).
fn selects(selector: &Value, labels: &Value) -> bool {
    if selector.is_null() {
        return false;
    }
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let labels_ok = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let exprs_ok = selector["matchExpressions"].as_array().is_none_or(|a| {
        a.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str() {
                Some("In") => get(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => get(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => get(key).is_some(),
                Some("DoesNotExist") => get(key).is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use serde_json::json;

    fn def(version: &str) -> ClusterDefinition {
        let mut d = crate::cloud::definition::tests::sample();
        d.cluster.kubernetes_version = version.into();
        d
    }

    fn facts(cluster: &str, pool: &str) -> UpgradeFacts {
        UpgradeFacts {
            cluster_version: cluster.into(),
            differences: vec![],
            pools: vec![(
                "workers".into(),
                Some(PoolNow {
                    name: "workers".into(),
                    version: pool.into(),
                }),
            )],
            offered: Lookup::Found(vec!["1.33".into(), "1.34".into(), "1.35".into()]),
            removed: Ok(vec![]),
            budgets: Ok(vec![]),
        }
    }

    fn failed(checks: &[CheckResult]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.id.as_str())
            .collect()
    }

    #[test]
    fn one_minor_up_plans_the_control_plane_then_every_pool() {
        let (plan, checks) = judge(&def("1.35"), &facts("1.34", "1.34"));
        assert_eq!(failed(&checks), Vec::<&str>::new());
        let plan = plan.unwrap();
        assert!(plan.control_plane);
        assert_eq!(
            plan.pools,
            [PoolStep {
                name: "workers".into(),
                from: "1.34".into()
            }]
        );
        // Resumed after the control plane: only the pool is left; then nothing.
        let (plan, _) = judge(&def("1.35"), &facts("1.35", "1.34"));
        let plan = plan.unwrap();
        assert!(!plan.control_plane && plan.pools.len() == 1);
        let (plan, _) = judge(&def("1.35"), &facts("1.35", "1.35"));
        assert!(plan.unwrap().is_empty());
    }

    #[test]
    fn downgrades_skipped_minors_and_skew_violations_refuse_by_name() {
        let (plan, c) = judge(&def("1.33"), &facts("1.34", "1.34"));
        assert!(plan.is_none());
        assert_eq!(failed(&c), ["upgrade.direction"]);
        assert!(c[0].message.contains("downgrade"));
        let (plan, c) = judge(&def("1.35"), &facts("1.33", "1.33"));
        assert!(plan.is_none());
        assert_eq!(failed(&c), ["upgrade.direction"]);
        assert!(
            c[0].fix.as_deref().unwrap().contains("1.34 first"),
            "{:?}",
            c[0].fix
        );
        let (plan, c) = judge(&def("1.35"), &facts("1.34", "1.31"));
        assert!(plan.is_none());
        assert_eq!(failed(&c), ["upgrade.skew"]);
        assert!(
            c.iter()
                .any(|x| x.message.contains("node pool workers runs 1.31"))
        );
        let (_, c) = judge(&def("1.35"), &facts("1.34", "1.35"));
        assert_eq!(
            failed(&c),
            ["upgrade.skew"],
            "a pool ahead of its control plane"
        );
        let mut f = facts("1.34", "1.34");
        f.offered = Lookup::Found(vec!["1.34".into()]);
        assert_eq!(failed(&judge(&def("1.35"), &f).1), ["upgrade.offered"]);
        let mut f = facts("1.34", "1.34");
        f.differences = vec![Difference {
            field: "pools.workers.max".into(),
            want: "14".into(),
            have: "9".into(),
        }];
        assert_eq!(failed(&judge(&def("1.35"), &f).1), ["upgrade.definition"]);
    }

    #[test]
    fn a_removed_api_in_use_or_a_blocking_budget_refuses_naming_them() {
        let mut f = facts("1.34", "1.34");
        f.removed = Ok(vec![RemovedApi {
            group_version: "example.io/v1beta1".into(),
            resource: "widgets".into(),
            removed_in: "1.35".into(),
            evidence: "requested".into(),
        }]);
        f.budgets = Ok(vec![BlockingBudget {
            namespace: "shop".into(),
            name: "db".into(),
            pods: vec!["db-0".into()],
        }]);
        let (plan, c) = judge(&def("1.35"), &f);
        assert!(plan.is_none());
        assert_eq!(
            failed(&c),
            ["upgrade.removed-apis", "upgrade.disruption-budgets"]
        );
        let text: String = c.iter().map(|x| x.message.clone()).collect();
        assert!(
            text.contains("widgets example.io/v1beta1 (removed in 1.35"),
            "{text}"
        );
        assert!(text.contains("shop/db (pods: db-0)"), "{text}");
        // What could not be read refuses too (fail closed).
        let mut f = facts("1.34", "1.34");
        f.removed = Err("forbidden".into());
        assert_eq!(failed(&judge(&def("1.35"), &f).1), ["upgrade.removed-apis"]);
    }

    #[test]
    fn the_metric_names_what_the_target_removes_and_nothing_later_or_unused() {
        let text = r#"# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",resource="flowschemas",subresource="",version="v1beta3"} 1
apiserver_requested_deprecated_apis{group="",removed_release="",resource="endpoints",subresource="",version="v1"} 1
apiserver_requested_deprecated_apis{group="example.io",removed_release="1.36",resource="widgets",subresource="status",version="v1beta1"} 1
apiserver_requested_deprecated_apis{group="example.io",removed_release="1.35",resource="gadgets",subresource="",version="v1alpha1"} 0
apiserver_request_total{code="200"} 5
"#;
        let got = removed_from_metrics(text, (1, 35));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].group_version, "flowcontrol.apiserver.k8s.io/v1beta3");
        assert_eq!(got[0].resource, "flowschemas");
        let later = removed_from_metrics(text, (1, 36));
        assert_eq!(later[1].resource, "widgets/status");
        assert_eq!(labels_of(r#"a="x\"y",b="\\""#)["a"], "x\"y");
    }

    #[test]
    fn the_served_table_applies_up_to_the_target() {
        let served = vec![
            "flowcontrol.apiserver.k8s.io/v1beta3".to_owned(),
            "apps/v1".to_owned(),
        ];
        assert_eq!(served_removals(&served, (1, 31)).len(), 0);
        let r = served_removals(&served, (1, 32));
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].resources,
            ["flowschemas", "prioritylevelconfigurations"]
        );
    }

    #[test]
    fn a_budget_allowing_no_disruption_is_named_with_the_pods_it_selects() {
        let budgets = vec![
            json!({"metadata": {"namespace": "shop", "name": "db"},
                "spec": {"selector": {"matchLabels": {"app": "db"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["data"]}]}},
                "status": {"disruptionsAllowed": 0, "expectedPods": 1}}),
            json!({"metadata": {"namespace": "shop", "name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
                "status": {"disruptionsAllowed": 1, "expectedPods": 2}}),
            json!({"metadata": {"namespace": "shop", "name": "none"},
                "spec": {"selector": {"matchLabels": {"app": "gone"}}},
                "status": {"disruptionsAllowed": 0, "expectedPods": 0}}),
        ];
        let pods = vec![
            json!({"metadata": {"namespace": "shop", "name": "db-0", "labels": {"app": "db", "tier": "data"}}}),
            json!({"metadata": {"namespace": "other", "name": "db-0", "labels": {"app": "db", "tier": "data"}}}),
            json!({"metadata": {"namespace": "shop", "name": "db-x", "labels": {"app": "db"}}}),
            json!({"metadata": {"namespace": "shop", "name": "web-0", "labels": {"app": "web"}}}),
        ];
        assert_eq!(
            blocking_budgets(&budgets, &pods),
            [BlockingBudget {
                namespace: "shop".into(),
                name: "db".into(),
                pods: vec!["db-0".into()]
            }]
        );
    }
}
