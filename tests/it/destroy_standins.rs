//! `realmctl destroy` on the Azure and Google stand-ins (issue #20), through the binary. Azure: ARM `DELETE` of
//! the managed cluster followed through its asynchronous operation (the node resource group and
//! everything in it go with the cluster, as AKS does), the sweep of what carries the cluster's
//! tags, the disks of persistent volumes in the node resource group kept unless
//! `--delete-volumes` (the destroy stops before the cluster, naming them), what is not the
//! realm's left alone, and a dependency error retried. Google: the GKE cluster deleted
//! through its operation, then the forwarding rules and disks labelled for it and the firewall
//! rules aimed at its nodes only (a rule held by a forwarding rule deleted after it), the disks
//! kept, what is not the cluster's left alone.

use std::path::Path;
use std::time::Duration;

use realmctl_standins::Leftover;

#[cfg(feature = "aks")]
use crate::aks::{Azure, write_spec};
use crate::cloud_install::install_approved;
use crate::engine_support::{approve, cloud_playbook};

pub(crate) use crate::cloud_install::destroy;

/// `destroy`, the customer's approval of its plan, `destroy` again.
pub(crate) fn destroy_approved(
    env: &[(&'static str, String)],
    spec: &Path,
    state: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let (code, v, err) = destroy(env, spec, state, extra);
    if code != 3 {
        return (code, v, err);
    }
    assert_eq!(approve(state, 1).status.code(), Some(0));
    destroy(env, spec, state, extra)
}

/// What the stand-in's caller holds when it holds exactly destroy's least-privilege
/// permissions (`destroy --policy`), each granted on the scopes the data names and what is
/// under them, as an assignment of the role at those scopes grants: a destroy that needs one
/// more is refused by the stand-in, as the cloud would refuse it.
pub(crate) fn destroy_policy(spec: &Path) -> realmctl_standins::policy::Policy {
    use realmctl::cloud::permissions::{Vars, roles_for, statements};
    use realmctl_standins::policy::{Effect, Policy, Statement};
    let spec = realmctl::spec::load(spec).unwrap();
    let roles = roles_for(&spec, realmctl::requirements::ForWorkflow::Destroy);
    Policy {
        statements: statements(&roles, &Vars::for_spec(&spec))
            .into_iter()
            .map(|s| Statement {
                effect: Effect::Allow,
                actions: s.actions,
                // ARM ids are case-insensitive (a NIC names its subnet in lower case); the
                // stand-ins compare exactly, so each scope is granted as written and lowered.
                resources: s
                    .resources
                    .iter()
                    .flat_map(|r| {
                        let l = r.to_ascii_lowercase();
                        [r.clone(), format!("{r}/*"), format!("{l}/*"), l]
                    })
                    .collect(),
                conditions: Vec::new(),
            })
            .collect(),
    }
}

fn leftover(
    kind: &str,
    name: &str,
    group: &str,
    tags: &[(&str, &str)],
    held_by: Option<&str>,
) -> Leftover {
    Leftover {
        kind: kind.into(),
        name: name.into(),
        group: Some(group.into()),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        held_by: held_by.map(str::to_owned),
    }
}

#[cfg(feature = "aks")]
fn arm_id(sub: &str, group: &str, kind: &str, name: &str) -> String {
    let (ns, t) = kind.split_once('/').unwrap();
    format!("/subscriptions/{sub}/resourceGroups/{group}/providers/{ns}/{t}/{name}")
}

#[cfg(feature = "aks")]
#[test]
fn an_aks_destroy_takes_the_node_resource_group_sweeps_tagged_addresses_and_keeps_disks_unless_asked()
 {
    let a = Azure::start(Duration::from_millis(300));
    a.world().delete_delay = Duration::from_millis(1500);
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&a, dir.path(), "digibee-acme");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, out, err) = install_approved(&a.env(), &spec, &state, &pb);
    assert_eq!(code, 0, "{out}\n{err}");
    let (sub, node_group) = {
        let w = a.world();
        let g = w
            .leftovers
            .values()
            .find(|l| l.kind == "Microsoft.Resources/resourceGroups")
            .map(|l| l.name.clone())
            .expect("AKS made the cluster's node resource group");
        (w.account.clone(), g)
    };
    // What the Azure cloud provider and the disk driver made for the cluster, and what is not
    // the realm's.
    let lb = arm_id(
        &sub,
        &node_group,
        "Microsoft.Network/loadBalancers",
        "kubernetes",
    );
    let disk = arm_id(&sub, &node_group, "Microsoft.Compute/disks", "pvc-1");
    let ip = arm_id(
        &sub,
        "digibee-acme",
        "Microsoft.Network/publicIPAddresses",
        "kubernetes-a1",
    );
    let foreign = arm_id(
        &sub,
        "digibee-acme",
        "Microsoft.Network/publicIPAddresses",
        "office",
    );
    let other = arm_id(
        &sub,
        "digibee-acme",
        "Microsoft.Network/publicIPAddresses",
        "other-a1",
    );
    {
        let mut w = a.world();
        w.leftovers.insert(
            lb.clone(),
            leftover(
                "Microsoft.Network/loadBalancers",
                "kubernetes",
                &node_group,
                &[],
                None,
            ),
        );
        w.leftovers.insert(
            disk.clone(),
            leftover(
                "Microsoft.Compute/disks",
                "pvc-1",
                &node_group,
                &[("k8s-azure-created-by", "kubernetes-azure-dd")],
                None,
            ),
        );
        w.leftovers.insert(
            ip.clone(),
            leftover(
                "Microsoft.Network/publicIPAddresses",
                "kubernetes-a1",
                "digibee-acme",
                &[("k8s-azure-cluster-name", "digibee-acme")],
                Some(&lb),
            ),
        );
        w.leftovers.insert(
            foreign.clone(),
            leftover(
                "Microsoft.Network/publicIPAddresses",
                "office",
                "digibee-acme",
                &[],
                None,
            ),
        );
        w.leftovers.insert(
            other.clone(),
            leftover(
                "Microsoft.Network/publicIPAddresses",
                "other-a1",
                "digibee-acme",
                &[("k8s-azure-cluster-name", "other")],
                None,
            ),
        );
    }

    // `destroy --policy` prints destroy's own role from the spec alone (no cloud is asked).
    let o = crate::common::realmctl()
        .args(["destroy", "--policy", "--output", "json", "-f"])
        .arg(&spec)
        .arg("--state")
        .arg(&state)
        .env("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{:?}",
        crate::engine_support::text(&o)
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["kind"], "Azure custom role");
    let role: serde_json::Value = serde_json::from_str(doc["document"].as_str().unwrap()).unwrap();
    assert_eq!(role["Name"], "realmctl destroy (acme)");
    assert!(
        role["Actions"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "Microsoft.ContainerService/managedClusters/delete"
            )),
        "{role}"
    );
    // From here on the caller holds destroy's own least-privilege role, nothing more.
    a.world().policy = destroy_policy(&spec);
    // The disk goes with the node resource group: without --delete-volumes the destroy stops
    // before the cluster and names it.
    let (code, v, err) = destroy_approved(&a.env(), &spec, &state, &[]);
    assert_eq!(code, 1, "{v} {err}");
    let st = crate::engine_support::status(&state).to_string();
    assert!(
        st.contains("pvc-1") && st.contains("--delete-volumes"),
        "{st}"
    );
    assert_eq!(
        a.world()
            .count("Microsoft.ContainerService/managedClusters/delete"),
        0
    );
    assert_eq!(a.standin.clusters().len(), 1);

    // Asked to, the destroy (a new plan, approved again) takes it all.
    let (code, v, err) = destroy_approved(&a.env(), &spec, &state, &["--delete-volumes"]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(
        a.standin.clusters().is_empty(),
        "{:?}",
        a.standin.clusters()
    );
    let w = a.world();
    assert_eq!(
        w.count("Microsoft.ContainerService/managedClusters/delete"),
        1
    );
    for gone in [&lb, &disk, &ip] {
        assert!(!w.leftovers.contains_key(gone), "{gone} left");
    }
    assert!(!w.resource_groups.contains_key(&node_group));
    for kept in [&foreign, &other] {
        assert!(w.leftovers.contains_key(kept), "{kept} deleted");
    }
    assert!(
        w.resource_groups.contains_key("digibee-acme"),
        "the realm's own group is the customer's"
    );
    drop(w);
    let (code, v, err) = destroy(&a.env(), &spec, &state, &["--delete-volumes"]);
    assert_eq!(code, 0, "a second destroy does nothing: {v} {err}");
}

#[cfg(feature = "aks")]
#[test]
fn an_aks_sweep_retries_an_address_still_in_use() {
    let a = Azure::start(Duration::from_millis(300));
    a.world().delete_delay = Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&a, dir.path(), "digibee-acme");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, out, err) = install_approved(&a.env(), &spec, &state, &pb);
    assert_eq!(code, 0, "{out}\n{err}");
    let sub = a.world().account.clone();
    let ip = arm_id(
        &sub,
        "digibee-acme",
        "Microsoft.Network/publicIPAddresses",
        "kubernetes-a1",
    );
    {
        let mut w = a.world();
        w.leftovers.insert(
            ip.clone(),
            leftover(
                "Microsoft.Network/publicIPAddresses",
                "kubernetes-a1",
                "digibee-acme",
                &[("k8s-azure-cluster-name", "digibee-acme")],
                None,
            ),
        );
        w.in_use
            .insert("Microsoft.Network/publicIPAddresses/delete".into(), 2);
    }
    let (code, v, err) = destroy_approved(&a.env(), &spec, &state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    let w = a.world();
    assert!(!w.leftovers.contains_key(&ip));
    assert_eq!(w.count("Microsoft.Network/publicIPAddresses/delete"), 3);
}

/// A leftover of the Google stand-in: Compute's type, its zone or region, labels, and the
/// firewall's target tags.
#[cfg(feature = "gke")]
fn compute(
    kind: &str,
    name: &str,
    scope: &str,
    labels: &[(&str, &str)],
    targets: &[&str],
    held_by: Option<&str>,
) -> Leftover {
    let mut tags: std::collections::BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for t in targets {
        tags.insert(format!("targetTag:{t}"), String::new());
    }
    Leftover {
        kind: kind.into(),
        name: name.into(),
        group: Some(scope.into()),
        tags,
        held_by: held_by.map(str::to_owned),
    }
}

#[cfg(feature = "gke")]
#[test]
fn a_gke_destroy_deletes_the_cluster_then_its_forwarding_rules_and_firewalls_and_keeps_disks() {
    use crate::gke::{Google, write_spec};
    let g = Google::start(Duration::from_millis(300));
    g.world().delete_delay = Duration::from_millis(1200);
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&g, dir.path(), "digibee-acme", "");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, out, err) = install_approved(&g.env(), &spec, &state, &pb);
    assert_eq!(code, 0, "{out}\n{err}");
    let region = g.world().region.clone();
    let zone = format!("{region}-a");
    let rule = format!("regions/{region}/forwardingRules/a1b2c3");
    let firewall = "global/firewalls/k8s-fw-a1b2c3".to_owned();
    let disk = format!("zones/{zone}/disks/pvc-1");
    let office = "global/firewalls/allow-office".to_owned();
    let theirs = format!("zones/{zone}/disks/pvc-9");
    let label = [("goog-k8s-cluster-name", "digibee-acme")];
    {
        let mut w = g.world();
        w.leftovers.insert(
            rule.clone(),
            compute("forwardingRules", "a1b2c3", &region, &label, &[], None),
        );
        // The rule's firewall is held while the forwarding rule stands: the sweep deletes
        // load balancers first.
        w.leftovers.insert(
            firewall.clone(),
            compute(
                "firewalls",
                "k8s-fw-a1b2c3",
                "global",
                &[],
                &["gke-digibee-acme-1a2b3c4d-node"],
                Some(&rule),
            ),
        );
        w.leftovers.insert(
            disk.clone(),
            compute("disks", "pvc-1", &zone, &label, &[], None),
        );
        w.leftovers.insert(
            office.clone(),
            compute("firewalls", "allow-office", "global", &[], &["web"], None),
        );
        w.leftovers.insert(
            theirs.clone(),
            compute(
                "disks",
                "pvc-9",
                &zone,
                &[("goog-k8s-cluster-name", "other")],
                &[],
                None,
            ),
        );
    }
    // A LoadBalancer Service beside the platform's Ingress: both own cloud resources and are
    // deleted before the cluster; the forwarding rule is never released (no controller runs
    // here), so the step waits its releaseWaitSeconds and leaves it to the sweep.
    {
        let kube = g.standin.kube();
        let mut w = kube.world();
        let t = w.cluster.find("", "services").unwrap();
        w.cluster
            .create(
                &t,
                "digibee-system",
                serde_json::json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "edge-lb", "namespace": "digibee-system"},
                    "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}),
                "test",
                std::time::Instant::now(),
            )
            .unwrap();
    }
    let destroy_pb = dir.path().join("destroy.yaml");
    std::fs::write(
        &destroy_pb,
        realmctl::engine::model::playbook::EMBEDDED_DESTROY.replace(
            "action: destroy.in_cluster",
            "action: destroy.in_cluster\n        params: {releaseWaitSeconds: 2}",
        ),
    )
    .unwrap();
    let pbs = destroy_pb.to_str().unwrap();
    // Without one permission of destroy's role, nothing is planned and the refusal names it.
    let mut lacking = destroy_policy(&spec);
    for st in &mut lacking.statements {
        st.actions.retain(|a| a != "container.clusters.delete");
    }
    g.world().policy = lacking;
    let (code, v, err) =
        crate::cloud_install::destroy(&g.env(), &spec, &state, &["--playbook", pbs]);
    assert_eq!(code, 1, "{v} {err}");
    let said = format!("{v}{err}");
    assert!(
        said.contains("lacks 1 permission(s) destroy needs: container.clusters.delete")
            && said.contains("destroy --policy"),
        "{said}"
    );
    // From here on the caller holds destroy's own least-privilege role, nothing more.
    g.world().policy = destroy_policy(&spec);
    let p = crate::cloud_install::destroy_plan(&g.env(), &spec, &state, &[]);
    let names = |list: &str| -> Vec<String> {
        p[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f.get("resource").unwrap_or(f)["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        names("delete"),
        ["digibee-acme", "a1b2c3", "k8s-fw-a1b2c3"],
        "{p}"
    );
    assert_eq!(names("keep"), ["pvc-1"], "{p}");
    let t0 = std::time::Instant::now();
    let (code, v, err) = destroy_approved(&g.env(), &spec, &state, &["--playbook", pbs]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(
        t0.elapsed() >= Duration::from_secs(2) && t0.elapsed() < Duration::from_secs(60),
        "waited for the release, and not longer: {:?}",
        t0.elapsed()
    );
    assert!(
        g.standin.clusters().is_empty(),
        "{:?}",
        g.standin.clusters()
    );
    {
        let kube = g.standin.kube();
        let mut w = kube.world();
        let services = w.cluster.find("", "services").unwrap();
        assert!(
            w.cluster
                .get(&services, "digibee-system", "edge-lb")
                .is_err()
        );
        let ingresses = w.cluster.find("networking.k8s.io", "ingresses").unwrap();
        assert!(
            w.cluster
                .get(&ingresses, "digibee-system", "digibee-edge")
                .is_err(),
            "the platform's Ingress is deleted"
        );
    }
    let removed = crate::engine_support::events(&state).into_iter().any(|e| {
        matches!(e, realmctl::engine::model::event::Event::StepIntent {
            intent: realmctl::engine::model::output::Intent::Remove { objects }, ..
        } if objects.iter().any(|o| o.name == "edge-lb"))
    });
    assert!(removed, "the deletes were journaled as an intent first");
    let w = g.world();
    assert_eq!(w.count("gke:DeleteCluster"), 1);
    for gone in [&rule, &firewall] {
        assert!(!w.leftovers.contains_key(gone), "{gone} left");
    }
    for kept in [&disk, &office, &theirs] {
        assert!(w.leftovers.contains_key(kept), "{kept} deleted");
    }
}
