//! What the AKS and GKE end-to-end tests share: running the binary's `install` with a cloud's
//! environment (to the gate and past it), reading a report, and the SIGKILL-anywhere harness
//! over a stand-in (every step boundary, the points around the create, and inside the
//! creation while its operation is polled).

use std::path::{Path, PathBuf};

use crate::common::{realmctl, realmctl_std};
use crate::engine_support::{approve, text};

/// `destroy --yes --output json` of `spec`'s realm in `state` with `extra`, in the environment
/// `env` adds to the isolated one: (exit code, JSON or Null, stderr).
pub fn destroy(
    env: &[(&'static str, String)],
    spec: &Path,
    state: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut c = realmctl_std();
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c
        .args([
            "destroy",
            "--yes",
            "--retry-base-ms",
            "10",
            "--output",
            "json",
            "-f",
        ])
        .arg(spec)
        .arg("--state")
        .arg(state)
        .args(extra)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    let v = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), v, err)
}

/// `destroy --plan --output json`, which must succeed.
pub fn destroy_plan(
    env: &[(&'static str, String)],
    spec: &Path,
    state: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut c = realmctl_std();
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c
        .args(["destroy", "--plan", "--output", "json", "-f"])
        .arg(spec)
        .arg("--state")
        .arg(state)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `install --yes --output json` of `spec` into `state` with `playbook`, in the environment
/// `env` adds to the isolated one.
pub fn install_cmd(
    env: &[(&'static str, String)],
    spec: &Path,
    state: &Path,
    playbook: &Path,
) -> std::process::Command {
    let mut c = realmctl_std();
    for (k, v) in env {
        c.env(k, v);
    }
    c.args([
        "install",
        "--yes",
        "--retry-base-ms",
        "10",
        "--output",
        "json",
        "-f",
    ])
    .arg(spec)
    .arg("--state")
    .arg(state)
    .arg("--playbook")
    .arg(playbook)
    // The stand-ins' clusters run no enforcement core unless a test serves one
    // ([`install_in_realm_cmd`]): the config goes to a local ledger.
    .arg("--quota-db")
    .arg(state.join("quota.db"));
    c
}

/// `realmctl install` seeding the realm's own core in its cluster (the default), with the
/// cluster's edge on `ingress_port`.
pub fn install_in_realm_cmd(
    env: &[(&'static str, String)],
    spec: &Path,
    state: &Path,
    playbook: &Path,
    ingress_port: u16,
) -> std::process::Command {
    let mut c = realmctl_std();
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(["install", "--yes", "--retry-base-ms", "10", "-f"])
        .arg(spec)
        .arg("--state")
        .arg(state)
        .arg("--playbook")
        .arg(playbook)
        .arg("--ingress-port")
        .arg(ingress_port.to_string());
    c
}

/// Runs [`install_cmd`]: exit code, stdout, stderr.
pub fn install(
    env: &[(&'static str, String)],
    spec: &Path,
    state: &Path,
    playbook: &Path,
) -> (i32, String, String) {
    let o = install_cmd(env, spec, state, playbook).output().unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

/// Installs, approving the phase-5 gate when it stops there.
pub fn install_approved(
    env: &[(&'static str, String)],
    spec: &Path,
    state: &Path,
    playbook: &Path,
) -> (i32, String, String) {
    let (code, out, err) = install(env, spec, state, playbook);
    if code != 3 {
        return (code, out, err);
    }
    assert_eq!(approve(state, 5).status.code(), Some(0));
    install(env, spec, state, playbook)
}

/// `realmctl report --format FORMAT` of `state`.
pub fn report_of(state: &Path, format: &str) -> String {
    let o = realmctl()
        .args(["report", "--format", format, "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    text(&o).0
}

/// Every step boundary of `steps` (`STEP:started|acted|succeeded`) and the points inside
/// `cluster.apply` named by `inside_cluster` (`cluster:at:LABEL`).
pub fn kill_points(steps: &[&str], inside_cluster: &[&str]) -> Vec<String> {
    let mut points: Vec<String> = steps
        .iter()
        .flat_map(|s| ["started", "acted", "succeeded"].map(|p| format!("{s}:{p}")))
        .collect();
    points.extend(inside_cluster.iter().map(|l| format!("cluster:at:{l}")));
    points
}

/// The lock id a killed run left, if any.
pub fn stale_lock_id(state: &Path) -> Option<String> {
    let bytes = std::fs::read(state.join("lock.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["lockId"].as_str().map(str::to_owned)
}

/// Clears the stale lock a killed run left.
pub fn unlock(state: &Path) {
    if let Some(id) = stale_lock_id(state) {
        let o = realmctl()
            .args(["unlock", "--lock-id", &id, "--state"])
            .arg(state)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    }
}

/// SIGKILL at every step boundary of the cloud playbook, at the points around the create, and
/// while the creation is under way (the create answered, the cluster still creating): after
/// unlocking and resuming, exactly one cluster with one pool `workers` per case, made by
/// exactly one call of `create_op`. `write_spec(dir, cluster)` writes a spec for the stand-in.
#[cfg(feature = "test-actions")]
pub fn sigkill_anywhere(
    standin: &realmctl_standins::StandIn,
    env: &[(&'static str, String)],
    create_op: &str,
    write_spec: &dyn Fn(&Path, &str) -> PathBuf,
) {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    let root = tempfile::tempdir().unwrap();
    let steps = [
        "spec",
        "cloud-account",
        "node-image",
        "credentials",
        "permissions",
        "artifacts",
        "roles",
        "cluster",
        "cluster-ready",
        "platform",
        "quota-seed",
    ];
    let creates = || standin.world().count(create_op);
    let mut points = kill_points(&steps, &["intent-cluster", "created-cluster"]);
    // Inside platform.apply: before and after each stage's intent, after its first apply, after
    // its last.
    for stage in ["foundation", "workloads"] {
        for at in ["intent", "first", "applied"] {
            points.push(format!("platform:at:{at}-{stage}"));
        }
    }
    points.push("creating".into());
    for (i, point) in points.iter().enumerate() {
        let name = format!("k{i:02}");
        let dir = root.path().join(&name);
        let spec = write_spec(&dir, &name);
        let pb = crate::engine_support::cloud_playbook(&dir);
        let state = dir.join("state");
        let phase6 = point == "creating"
            || ["cluster", "cluster-ready", "platform", "quota-seed"]
                .iter()
                .any(|s| point.starts_with(&format!("{s}:")));
        if phase6 {
            let (code, out, err) = install(env, &spec, &state, &pb);
            assert_eq!(code, 3, "{point}: {out}\n{err}");
            assert_eq!(approve(&state, 5).status.code(), Some(0));
        }
        let before = creates();
        if point == "creating" {
            // Killed while the creation is followed: the create was made, the cluster is still
            // creating, and nothing after it was journaled.
            let mut child = install_cmd(env, &spec, &state, &pb)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let t = Instant::now();
            while creates() == before {
                assert!(t.elapsed() < Duration::from_secs(30), "no create arrived");
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().unwrap();
            assert_eq!(child.wait().unwrap().signal(), Some(9));
            let w = standin.world();
            assert_eq!(
                w.cluster_phase(&w.clusters[&name]),
                realmctl_standins::Phase::Creating,
                "the kill landed inside the creation"
            );
        } else {
            let o = install_cmd(env, &spec, &state, &pb)
                .env("REALMCTL_TEST_KILL_AT", point)
                .output()
                .unwrap();
            assert_eq!(
                o.status.signal(),
                Some(9),
                "{point}: not killed: {:?}",
                text(&o)
            );
            crate::engine_support::assert_kill_landed(&state, point);
        }
        unlock(&state);
        let (code, out, err) = install_approved(env, &spec, &state, &pb);
        assert_eq!(code, 0, "{point}: {out}\n{err}");
        let w = standin.world();
        assert!(w.clusters.contains_key(&name), "{point}");
        let pools: Vec<&str> = w
            .pools
            .values()
            .filter(|p| p.cluster == name)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(pools, ["workers"], "{point}");
        drop(w);
        // The cluster holds exactly the realm's platform: every desired object, nothing else
        // labelled for the realm (no orphan), each once (objects are unique by name).
        let realm_spec = realmctl::spec::load(&spec).unwrap();
        let want: std::collections::BTreeSet<String> =
            realmctl::platform::definition::desired(&realm_spec)
                .iter()
                .map(|d| d.planned.object.name.clone())
                .collect();
        let kube = standin.kube();
        let mut kw = kube.world();
        let mut have = std::collections::BTreeSet::new();
        for k in kw.cluster.keys() {
            let t = kw.cluster.find(&k.group, &k.plural).unwrap();
            let v = kw.cluster.get(&t, &k.namespace, &k.name).unwrap();
            if v["metadata"]["labels"]["digibee.io/realm"] == realm_spec.name.as_str() {
                have.insert(k.name);
            }
        }
        assert_eq!(have, want, "{point}");
    }
    assert_eq!(creates(), points.len(), "one create per case, never two");
    assert_eq!(standin.world().clusters.len(), points.len());
}
