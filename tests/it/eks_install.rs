//! EKS installs through the binary against the AWS stand-in alone (issue #9), for what moto
//! cannot show: clusters that take time to become active, so SIGKILLs at random moments land
//! inside `cluster.apply`; and the canary credentials, searched for in every file and every
//! output, plain, base64 and URL-encoded.

use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(feature = "test-actions")]
use std::time::Instant;

use crate::common::{AWS_TEST_SECRET, AwsStandIn, SpecOpts, files, forms};
use crate::eks_moto::{cloud_playbook, unlock};
#[cfg(feature = "test-actions")]
use crate::eks_moto::{killed_at, to_gate_and_approve};
use crate::engine_support::*;

/// A realm on the AWS stand-in whose cluster is `name`, in `root/name`: (spec, playbook, state).
pub(crate) fn case(aws: &AwsStandIn, root: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = root.join(name);
    let spec = spec(
        &dir,
        SpecOpts {
            endpoint: Some(aws.url()),
            cluster: Some(name.into()),
            ..SpecOpts::default()
        },
    );
    let pb = cloud_playbook(&dir);
    (spec, pb, dir.join("state"))
}

fn resume(spec: &Path, state: &Path, pb: &Path) -> (i32, serde_json::Value, String) {
    unlock(state);
    install(spec, state, pb, &["--retry-base-ms", "10"])
}

fn cluster_step_status(state: &Path) -> String {
    step_statuses(state)
        .into_iter()
        .find(|(id, _)| id == "cluster")
        .map(|(_, s)| s)
        .unwrap_or_default()
}

/// SIGKILL between each create call and its journal record (and after each intent), then at
/// random moments while the cluster or the node group is being created: every random kill must
/// land inside a step (its start journaled, its end not), and after resuming
/// exactly one cluster and one node group exist per case.
#[cfg(feature = "test-actions")]
#[test]
fn sigkill_inside_cluster_apply_leaves_exactly_one_cluster_and_node_group() {
    let aws = AwsStandIn::start(Duration::from_millis(700));
    let root = tempfile::tempdir().unwrap();
    let mut n = 0;
    for label in [
        "intent-cluster",
        "created-cluster",
        "intent-pool",
        "created-pool",
    ] {
        let name = format!("p{n}");
        n += 1;
        let (spec, pb, state) = case(&aws, root.path(), &name);
        to_gate_and_approve(&spec, &state, &pb, &[]);
        killed_at(&spec, &state, &pb, &format!("cluster:at:{label}"), &[]);
        assert_eq!(cluster_step_status(&state), "interrupted", "{label}");
        let (code, v, err) = resume(&spec, &state, &pb);
        assert_eq!(code, 0, "{label}: {v} {err}");
    }
    // Random moments: after a create call is seen — the cluster's in even cases, the node
    // group's in odd ones, so both creations are interrupted at random — wait, then kill: up to
    // 1900 ms after the cluster's create (it is active after 700 ms, and its first poll comes
    // 2 s after the create, the documented backoff), up to 600 ms after the node group's
    // (before it can be active; `cluster.wait` waits for that). A step is still running for the
    // whole window.
    let mut rng = 0x5eed_u64;
    let mut landed = 0;
    for i in 0..6 {
        let anchor = if i % 2 == 0 {
            "eks:CreateCluster"
        } else {
            "eks:CreateNodegroup"
        };
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Before the node group can be active (700 ms), whatever its poll policy; the cluster's
        // wait is longer (its first poll comes 2 s after the create).
        let window = if i % 2 == 0 { 1900 } else { 600 };
        let delay = Duration::from_millis((rng >> 33) % window);
        let name = format!("r{n}");
        n += 1;
        let (spec, pb, state) = case(&aws, root.path(), &name);
        to_gate_and_approve(&spec, &state, &pb, &[]);
        let before = aws.world().count(anchor);
        let mut child = crate::common::realmctl_std()
            .args(["install", "--yes", "--retry-base-ms", "10", "-f"])
            .arg(&spec)
            .arg("--state")
            .arg(&state)
            .arg("--playbook")
            .arg(&pb)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while aws.world().count(anchor) == before {
            assert!(t0.elapsed() < Duration::from_secs(30), "no {anchor} call");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(delay);
        let killed = Instant::now();
        child.kill().unwrap();
        child.wait().unwrap();
        if anchor == "eks:CreateCluster" {
            let st = cluster_step_status(&state);
            assert_eq!(
                st, "interrupted",
                "a kill {delay:?} after {anchor} did not land mid-step"
            );
        } else {
            // `cluster.apply` ends once the node group's create is accepted; `cluster.wait`
            // waits for it to become active. The kill lands in one of them, while the node
            // group is still creating.
            let open = unfinished_step(&events(&state));
            assert!(
                matches!(open.as_deref(), Some("cluster" | "cluster-ready")),
                "a kill {delay:?} after {anchor} did not land mid-step: {open:?}"
            );
            let w = aws.world();
            let pools: Vec<_> = w.pools.values().filter(|p| p.cluster == name).collect();
            assert_eq!(pools.len(), 1);
            assert!(
                killed.duration_since(pools[0].created) < w.create_delay,
                "the node group's creation was under way when killed"
            );
        }
        landed += 1;
        let (code, v, err) = resume(&spec, &state, &pb);
        assert_eq!(code, 0, "{delay:?}: {v} {err}");
    }
    assert_eq!(landed, 6);
    let w = aws.world();
    assert_eq!(w.clusters.len(), n, "one cluster per case");
    assert_eq!(w.pools.len(), n, "one node group per case");
    assert_eq!(w.count("eks:CreateCluster"), n, "never created twice");
    assert_eq!(w.count("eks:CreateNodegroup"), n);
}

/// A canary AWS secret key and session token (issue #9): never in the state folder, the
/// kubeconfig, the reports, or any output of preflight, plan, install, status, report or audit.
#[test]
fn the_aws_secret_and_session_token_never_appear_anywhere() {
    let aws = AwsStandIn::start(Duration::from_millis(200));
    let root = tempfile::tempdir().unwrap();
    let (spec, pb, state) = case(&aws, root.path(), "digibee-canary");
    let token = "IQoJb3JpZ2luX2VjECAaCXVzLWVhc3QtMSJHMEUCIQ-canary-session-token-7f3a";
    let out_dir = root.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let o = realmctl()
            .env("AWS_SESSION_TOKEN", token)
            .args(args)
            .output()
            .unwrap();
        outputs.push(o.stdout.clone());
        outputs.push(o.stderr.clone());
        o.status.code()
    };
    let (s, st, p) = (
        spec.to_str().unwrap(),
        state.to_str().unwrap(),
        pb.to_str().unwrap(),
    );
    assert_eq!(
        run(&["preflight", "--only", "access", "--output", "json", "-f", s]),
        Some(0)
    );
    assert_eq!(
        run(&["plan", "-f", s, "--state", st, "--playbook", p]),
        Some(0)
    );
    assert_eq!(
        run(&[
            "install",
            "--yes",
            "--output",
            "json",
            "-f",
            s,
            "--state",
            st,
            "--playbook",
            p
        ]),
        Some(3),
        "the phase-5 gate"
    );
    assert_eq!(
        run(&["approve", "--phase", "5", "--by", "Ann", "--state", st]),
        Some(0)
    );
    assert_eq!(
        run(&["install", "--yes", "-f", s, "--state", st, "--playbook", p]),
        Some(0)
    );
    assert_eq!(run(&["status", "--output", "json", "--state", st]), Some(0));
    for f in ["html", "md", "json"] {
        let out = out_dir.join(format!("report.{f}"));
        assert_eq!(
            run(&[
                "report",
                "--format",
                f,
                "--state",
                st,
                "-o",
                out.to_str().unwrap()
            ]),
            Some(0)
        );
    }
    assert_eq!(run(&["audit", "verify", "--state", st]), Some(0));
    assert!(state.join("kubeconfig").exists());
    let everything = files(&[&state, &out_dir]);
    assert!(everything.len() > 10, "{} files", everything.len());
    for secret in [AWS_TEST_SECRET, token] {
        for form in forms(secret) {
            for (path, bytes) in &everything {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{form} in {}",
                    path.display()
                );
            }
            for o in &outputs {
                assert!(
                    !o.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{form} in an output"
                );
            }
        }
    }
}
