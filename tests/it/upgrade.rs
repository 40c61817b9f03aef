//! `realmctl upgrade` (issue #20, item 2) on the stand-ins of all three clouds, through the
//! binary: a realm installed at Kubernetes 1.34 whose spec then names 1.35. Before anything
//! changes, `upgrade --plan` and the upgrade itself refuse a downgrade, an API the target
//! removes that a client still requests (the API server's `apiserver_requested_deprecated_apis`
//! gauge), and a PodDisruptionBudget that allows no disruption (named with its pod); then the
//! plan is approved, SIGKILL lands between the control plane and the pools, and `upgrade` again
//! finishes with the pools — each cloud asked exactly once per resource — and a further
//! `upgrade` does nothing.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use realmctl_standins::StandIn;
use serde_json::{Value, json};

use crate::cloud_install::{install_approved, unlock};
use crate::common::realmctl_std;
use crate::engine_support::{approve, assert_kill_landed, cloud_playbook, text, verify};

/// One cloud's stand-in and how the binary reaches it.
struct Case<'a> {
    standin: &'a StandIn,
    env: Vec<(&'static str, String)>,
    write_spec: Box<dyn Fn(&Path) -> PathBuf + 'a>,
    /// The stand-in's names of the control-plane and pool upgrade calls.
    ops: (&'static str, &'static str),
}

fn set_version(spec: &Path, v: &str) {
    let s = std::fs::read_to_string(spec).unwrap();
    let at = s.find("kubernetesVersion: \"").unwrap() + "kubernetesVersion: \"".len();
    let end = at + s[at..].find('"').unwrap();
    std::fs::write(spec, format!("{}{v}{}", &s[..at], &s[end..])).unwrap();
}

fn upgrade(
    c: &Case<'_>,
    spec: &Path,
    state: &Path,
    extra: &[&str],
    kill_at: Option<&str>,
) -> (std::process::ExitStatus, Value, String) {
    let mut cmd = realmctl_std();
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    if let Some(p) = kill_at {
        cmd.env("REALMCTL_TEST_KILL_AT", p);
    }
    let o = cmd
        .args(["upgrade", "--retry-base-ms", "10", "--output", "json", "-f"])
        .arg(spec)
        .arg("--state")
        .arg(state)
        .args(extra)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    (
        o.status,
        serde_json::from_str(&out).unwrap_or(Value::Null),
        err,
    )
}

fn failed(v: &Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn versions(c: &Case<'_>, cluster: &str) -> (String, Vec<String>) {
    let w = c.standin.world();
    (
        w.clusters[cluster].version.clone(),
        w.pools
            .values()
            .filter(|p| p.cluster == cluster)
            .map(|p| p.version.clone())
            .collect(),
    )
}

/// A blocking budget over pod `db-0`, and a deprecated API a client requested, in the cluster.
fn obstruct(c: &Case<'_>) {
    use realmctl_standins::kube::{By, ResourceType};
    let kube = c.standin.kube();
    let mut kw = kube.world();
    let now = Instant::now();
    let by = By {
        manager: "test",
        now,
    };
    let pod = kw.cluster.find("", "pods").unwrap();
    kw.cluster
        .create(
            &pod,
            "default",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "db-0", "namespace": "default", "labels": {"app": "db"}}}),
            "test",
            now,
        )
        .unwrap();
    let pdb = kw.cluster.find("policy", "poddisruptionbudgets").unwrap();
    kw.cluster
        .create(
            &pdb,
            "default",
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "db", "namespace": "default"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}),
            "test",
            now,
        )
        .unwrap();
    kw.cluster
        .merge_patch(
            &pdb,
            "default",
            "db",
            &json!({"status": {"disruptionsAllowed": 0, "expectedPods": 1, "currentHealthy": 1, "desiredHealthy": 1}}),
            by,
            true,
        )
        .unwrap();
    let widgets = ResourceType::builtin(
        "example.realmctl.test",
        "v1beta1",
        "widgets",
        "Widget",
        true,
        false,
    );
    kw.cluster.deprecated.push((widgets, "1.35".into()));
    kw.cluster.requested_deprecated.insert((
        "example.realmctl.test".into(),
        "v1beta1".into(),
        "widgets".into(),
    ));
}

/// The budget allows a disruption again; the client moved off the deprecated API (the gauge
/// resets when the API server restarts, as it does when its control plane is upgraded).
fn clear(c: &Case<'_>) {
    use realmctl_standins::kube::By;
    let kube = c.standin.kube();
    let mut kw = kube.world();
    let pdb = kw.cluster.find("policy", "poddisruptionbudgets").unwrap();
    kw.cluster
        .merge_patch(
            &pdb,
            "default",
            "db",
            &json!({"status": {"disruptionsAllowed": 1, "currentHealthy": 2, "expectedPods": 2}}),
            By {
                manager: "test",
                now: Instant::now(),
            },
            true,
        )
        .unwrap();
    kw.cluster.requested_deprecated.clear();
}

fn upgrade_one_minor(c: &Case<'_>) {
    let dir = tempfile::tempdir().unwrap();
    let spec = (c.write_spec)(dir.path());
    set_version(&spec, "1.34");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, out, err) = install_approved(&c.env, &spec, &state, &pb);
    assert_eq!(code, 0, "{out}\n{err}");
    let cluster = "digibee-acme";
    let (cp, pools) = versions(c, cluster);
    assert_eq!(cp, "1.34");
    assert!(
        !pools.is_empty() && pools.iter().all(|v| v == "1.34"),
        "{pools:?}"
    );
    let count = |op: &str| c.standin.world().count(op);
    let before = (count(c.ops.0), count(c.ops.1));

    // At the installed version there is nothing to do.
    let (s, v, err) = upgrade(c, &spec, &state, &["--plan"], None);
    assert_eq!(s.code(), Some(0), "{v}\n{err}");
    assert_eq!(v["plan"]["controlPlane"], false, "{v}");
    assert_eq!(v["plan"]["pools"], json!([]), "{v}");

    // Never down.
    set_version(&spec, "1.33");
    let (s, v, _) = upgrade(c, &spec, &state, &["--plan"], None);
    assert_eq!(s.code(), Some(1), "{v}");
    assert_eq!(failed(&v), ["upgrade.direction"], "{v}");

    // A removed API in use and a blocking budget refuse, named, before anything changes.
    set_version(&spec, "1.35");
    obstruct(c);
    let (s, v, _) = upgrade(c, &spec, &state, &["--plan"], None);
    assert_eq!(s.code(), Some(1), "{v}");
    assert_eq!(
        failed(&v),
        ["upgrade.removed-apis", "upgrade.disruption-budgets"],
        "{v}"
    );
    let all = v.to_string();
    assert!(
        all.contains("widgets example.realmctl.test/v1beta1 (removed in 1.35"),
        "{all}"
    );
    assert!(all.contains("default/db (pods: db-0)"), "{all}");
    let (s, v, err) = upgrade(c, &spec, &state, &["--yes"], None);
    assert_eq!(s.code(), Some(1), "{v}\n{err}");
    assert!(
        v.to_string().contains("refused before any change"),
        "{v}\n{err}"
    );
    assert_eq!(versions(c, cluster).0, "1.34");
    assert_eq!(
        (count(c.ops.0), count(c.ops.1)),
        before,
        "nothing was asked"
    );

    // Cleared: planned, approved, killed between the control plane and the pools.
    clear(c);
    let (s, v, err) = upgrade(c, &spec, &state, &["--yes"], None);
    assert_eq!(s.code(), Some(3), "{v}\n{err}");
    assert_eq!(
        versions(c, cluster).0,
        "1.34",
        "nothing moves before the approval"
    );
    assert_eq!(approve(&state, 1).status.code(), Some(0));
    let point = "upgrade-control-plane:succeeded";
    let (s, killed, err) = upgrade(c, &spec, &state, &["--yes"], Some(point));
    assert_eq!(
        s.signal(),
        Some(9),
        "not killed at {point}: {s:?} {killed} {err}"
    );
    assert_kill_landed(&state, point);
    let (cp, pools) = versions(c, cluster);
    assert_eq!(cp, "1.35");
    assert!(pools.iter().all(|v| v == "1.34"), "{pools:?}");
    unlock(&state);
    let (s, v, err) = upgrade(c, &spec, &state, &["--yes"], None);
    assert_eq!(s.code(), Some(0), "{v}\n{err}");
    let (cp, pools) = versions(c, cluster);
    assert_eq!(cp, "1.35");
    assert!(pools.iter().all(|v| v == "1.35"), "{pools:?}");
    assert_eq!(
        (count(c.ops.0), count(c.ops.1)),
        (before.0 + 1, before.1 + pools.len()),
        "each resource asked exactly once"
    );

    // Again: nothing to do, nothing asked; the journal verifies.
    let (s, v, err) = upgrade(c, &spec, &state, &["--yes"], None);
    assert_eq!(s.code(), Some(0), "{v}\n{err}");
    assert_eq!(
        (count(c.ops.0), count(c.ops.1)),
        (before.0 + 1, before.1 + pools.len())
    );
    assert_eq!(verify(&state, None).0, 0);
}

#[cfg(feature = "gke")]
#[test]
fn a_gke_cluster_moves_one_minor_after_its_prechecks_and_resumes_with_the_pools() {
    let g = crate::gke::Google::start(Duration::from_millis(300));
    upgrade_one_minor(&Case {
        standin: &g.standin,
        env: g.env(),
        write_spec: Box::new(|d| crate::gke::write_spec(&g, d, "digibee-acme", "")),
        ops: ("gke:UpdateMaster", "gke:UpdateNodePool"),
    });
}

#[cfg(feature = "aks")]
#[test]
fn an_aks_cluster_moves_one_minor_after_its_prechecks_and_resumes_with_the_pools() {
    let a = crate::aks::Azure::start(Duration::from_millis(300));
    upgrade_one_minor(&Case {
        standin: &a.standin,
        env: a.env(),
        write_spec: Box::new(|d| crate::aks::write_spec(&a, d, "digibee-acme")),
        ops: (
            "Microsoft.ContainerService/managedClusters/write",
            "Microsoft.ContainerService/managedClusters/agentPools/write",
        ),
    });
}

#[cfg(feature = "eks")]
#[test]
fn an_eks_cluster_moves_one_minor_after_its_prechecks_and_resumes_with_the_pools() {
    let aws = crate::common::AwsStandIn::start(Duration::from_millis(300));
    let url = aws.url();
    upgrade_one_minor(&Case {
        standin: &aws.standin,
        env: Vec::new(),
        write_spec: Box::new(move |d| {
            crate::engine_support::spec(
                d,
                crate::common::SpecOpts {
                    endpoint: Some(url.clone()),
                    ..crate::common::SpecOpts::default()
                },
            )
        }),
        ops: ("eks:UpdateClusterVersion", "eks:UpdateNodegroupVersion"),
    });
}
