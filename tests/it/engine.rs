//! Install engine through the CLI (issue #4): plan without side effects, gates and approvals,
//! resume without re-running, re-planning on spec changes, the unavailable cloud steps,
//! playbook validation, locks, retries and timeouts. Everything runs on loopback.

use std::net::TcpListener;
use std::path::Path;

use crate::common::{SpecOpts, dnsmasq};
use crate::engine_support::*;

fn accepting_listener() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in l.incoming() {});
    port
}

/// The realm config `quota.seed` wrote into `<state>/quota.db`.
fn seeded_config(state: &std::path::Path) -> serde_json::Value {
    let o = realmctl()
        .args([
            "quota", "status", "--output", "json", "--realm", "acme", "--db",
        ])
        .arg(state.join("quota.db"))
        .output()
        .unwrap();
    let q: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    q["config"].clone()
}

#[test]
fn plan_changes_nothing_and_lists_every_phase_the_node_pool_and_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let state = dir.path().join("state");
    let o = realmctl()
        .args(["plan", "-f"])
        .arg(&spec)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for n in 1..=6 {
        assert!(out.contains(&format!("Phase {n} ")), "{out}");
    }
    assert!(out.contains("cluster.apply          will run"), "{out}");
    assert!(
        out.contains(
            "node pool workers: m6i.xlarge × 3–14 (desired 7), created once the cluster is active"
        ) && out.contains("sized from 30 RTUs")
            && out.contains("the region's vCPU quota must cover 56 vCPU")
            && out.contains("API server: private endpoint only")
            && out.contains("\"Sid\": \"EksCreateCluster\""),
        "{out}"
    );
    assert!(!state.exists(), "plan must not create the state folder");
    let o = realmctl()
        .args(["plan", "--output", "json", "-f"])
        .arg(&spec)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["phases"][2]["steps"][2]["action"], "checks.dns");
    assert_eq!(v["phases"][5]["steps"][0]["status"], "run");
    assert_eq!(v["cloud"]["pool"]["max"], 14);
    assert_eq!(v["cloud"]["definition"]["pools"][0]["max"], 14);
    assert!(
        v["cloud"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let policy: serde_json::Value =
        serde_json::from_str(v["cloud"]["policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");
    assert!(!state.exists());
}

/// A cloud this build has no provider for: `plan` shows its cloud steps as unavailable, and
/// `install` stops at the first one (exit 1), never pretending. Every default build has all
/// three providers; a build without GKE's runs it (the engine's side is unit-tested in
/// `engine::actions`).
#[cfg(not(feature = "gke"))]
#[test]
fn a_cloud_without_a_provider_shows_its_steps_unavailable_and_install_stops_there() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = spec(dir.path(), SpecOpts::default());
    let written = std::fs::read_to_string(&spec_path).unwrap();
    let gke = written
        .replace("provider: eks", "provider: gke")
        .replace("region: us-east-1", "region: us-central1")
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("eks:") {
                "  gke: {project: digibee-acme, network: vpc, subnetwork: nodes}".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&spec_path, gke).unwrap();
    let state = dir.path().join("state");
    let o = realmctl()
        .args(["plan", "-f"])
        .arg(&spec_path)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.contains("cloud.account          UNAVAILABLE: needs a cloud provider"),
        "{out}"
    );
    assert!(
        out.contains("Cloud: gke (no provider for this cloud in this build)"),
        "{out}"
    );
    let o = realmctl()
        .args(["install", "--yes", "--output", "json", "-f"])
        .arg(&spec_path)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(executed(&v), ["spec", "cloud-account"]);
    assert!(next_text(&v).contains("needs a cloud provider"), "{v}");
}

/// The embedded playbook end to end through the real AWS SDK against the loopback AWS
/// stand-in (clusters take a moment to become active), with DNS against dnsmasq: phases 1-5,
/// the gate (exit 3), the approval, phase 6 (exit 0) with one cluster and one node group; a
/// re-run creates nothing.
#[cfg(feature = "eks")]
#[test]
fn the_embedded_playbook_installs_end_to_end_against_the_aws_stand_in() {
    let aws = crate::common::AwsStandIn::start(std::time::Duration::from_millis(1500));
    let dns = dnsmasq(&crate::common::PREFIXES, &[]);
    let open = accepting_listener();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        SpecOpts {
            nameservers: vec![([127, 0, 0, 1], dns.port).into()],
            targets: vec![("127.0.0.1".into(), open, false)],
            endpoint: Some(aws.url()),
            ..Default::default()
        },
    );
    let state = dir.path().join("state");
    // The realm's own core behind its Service (this build's quota service, as its Pod would
    // run it), and the stand-in's edge serving the Ingress certificate.
    let core = tempfile::tempdir().unwrap();
    aws.standin.kube().world().serve_service(
        realmctl::platform::quota::NAMESPACE,
        realmctl::platform::quota::SERVICE,
        realmctl::demo::core::quota_backend(core.path().join("ledger.db")),
    );
    let edge = aws.standin.kube().edge_port().to_string();
    let run = || {
        let o = realmctl()
            .args(["install", "--yes", "--output", "json", "-f"])
            .arg(&spec)
            .arg("--state")
            .arg(&state)
            .args(["--ingress-port", &edge])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        (o.status.code(), v, text(&o).1)
    };
    let (code, v, err) = run();
    assert_eq!(code, Some(3), "{v} {err}");
    assert!(
        next_text(&v).starts_with("customer: approve phase 5"),
        "{v}"
    );
    assert_eq!(
        aws.world().count("eks:CreateCluster"),
        0,
        "nothing created before the gate"
    );
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let (code, v, err) = run();
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(
        executed(&v),
        [
            "cluster",
            "cluster-ready",
            "platform",
            "quota-seed",
            "realm-live",
            "vpn",
            "vpn-customer"
        ],
        "a realm without a VPN skips the VPN steps"
    );
    assert!(
        !state.join("quota.db").exists(),
        "the realm's own core was seeded, not a local ledger"
    );
    {
        // The platform went in through the cluster's API with the EKS token realmctl presigned
        // itself (no aws CLI): every call made by the install's access key.
        let kube = aws.standin.kube();
        let kw = kube.world();
        assert!(!kw.calls.is_empty());
        assert!(
            kw.calls.iter().all(|c| c.user.starts_with("aws:")),
            "{:?}",
            kw.calls[0]
        );
        let names: Vec<String> = kw.cluster.keys().into_iter().map(|k| k.name).collect();
        assert!(
            names.iter().any(|n| n == "digibee-wildcard-tls"),
            "{names:?}"
        );
    }
    {
        let w = aws.world();
        assert_eq!(w.clusters.len(), 1);
        assert_eq!(w.pools.len(), 1);
        let ng = w.pools.values().next().unwrap();
        assert_eq!(ng.shape, "m6i.xlarge");
        assert_eq!(ng.scaling, (3, 7, 14), "sized from 30 RTUs");
        assert_eq!(ng.tags["realmctl.digibee.com/realm"], "acme");
        assert!(w.count("eks:DescribeCluster") >= 2, "waited for ACTIVE");
    }
    use std::os::unix::fs::PermissionsExt;
    let kc = state.join("kubeconfig");
    assert_eq!(
        std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let kubeconfig = std::fs::read_to_string(&kc).unwrap();
    assert!(
        kubeconfig.contains("\"get-token\"") && kubeconfig.contains("\"digibee-acme\""),
        "{kubeconfig}"
    );
    let steps = step_statuses(&state);
    for id in [
        "cloud-account",
        "credentials",
        "permissions",
        "dns",
        "cluster",
        "cluster-ready",
    ] {
        assert!(
            steps.contains(&(id.into(), "succeeded".into())),
            "{id}: {steps:?}"
        );
    }
    // A re-run finds everything done and creates nothing.
    let (code, v, _) = run();
    assert_eq!(code, Some(0));
    assert!(executed(&v).is_empty(), "{v}");
    assert_eq!(aws.world().count("eks:CreateCluster"), 1);
    assert_eq!(aws.world().count("eks:CreateNodegroup"), 1);
    assert_eq!(verify(&state, None).0, 0);
}

/// Issue #3 item 5: phase 6 ends with quota.seed, which writes the realm config into the core.
#[test]
fn gate_approval_and_resume_run_each_step_once_and_seed_the_quota_core() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(
        executed(&v),
        [
            "spec",
            "vpn",
            "node-image",
            "certificate",
            "artifacts",
            "roles"
        ]
    );
    let o = realmctl()
        .args(["status", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let out = text(&o).0;
    assert!(out.contains("next: customer: approve phase 5"), "{out}");

    let a = approve(&state, 5);
    assert_eq!(a.status.code(), Some(0), "{:?}", text(&a));
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(executed(&v), ["quota-seed"]);
    let (code, v, _) = install(&spec, &state, &pb, &[]);
    assert_eq!(
        (code, executed(&v).len()),
        (0, 0),
        "a finished install does nothing"
    );

    let q = seeded_config(&state);
    assert_eq!(q["pipelineSubscriptions"], 10, "{q}");
}

#[test]
fn approving_a_phase_that_waits_for_nothing_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let o = approve(&state, 5);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("holds no install journal"));
    install(&spec, &state, &pb, &["--until", "1"]);
    let o = approve(&state, 4);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("phase 4 is not waiting"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn until_stops_after_the_phase() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, v, _) = install(&spec, &state, &pb, &["--until", "3"]);
    assert_eq!(code, 0);
    assert_eq!(v["outcome"], "until");
    assert_eq!(executed(&v), ["spec", "vpn", "node-image", "certificate"]);
}

/// A spec change re-plans exactly the steps whose inputs changed and shows the difference; a
/// change that leaves the cluster definition alone keeps the phase-5 approval, one that
/// changes it (the size, from the subscriptions) voids it: `plan` says which gate and why, and
/// `install` stops there (exit 3) until the customer approves again.
#[test]
fn a_changed_spec_replans_the_affected_steps_and_shows_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    install(&spec, &state, &pb, &[]);
    approve(&state, 5);
    assert_eq!(install(&spec, &state, &pb, &[]).0, 0);
    let plan = |spec: &Path| {
        let o = realmctl()
            .args(["plan", "-f"])
            .arg(spec)
            .arg("--state")
            .arg(&state)
            .arg("--playbook")
            .arg(&pb)
            .output()
            .unwrap();
        text(&o).0
    };
    // The certificate's minimum validity: no definition change, the approval holds.
    let text0 = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text0.replace("minDaysValid: 30", "minDaysValid: 20")).unwrap();
    let out = plan(&spec);
    assert!(out.contains("certificate.minDaysValid: 30 -> 20"), "{out}");
    assert!(out.contains("approved by Ann Customer"), "{out}");
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(executed(&v), ["spec", "certificate", "artifacts"]);
    // More subscriptions: a bigger pool, a new definition, the approval is void.
    let text1 = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text1.replace("pipelineSubscriptions: 10", "pipelineSubscriptions: 40"),
    )
    .unwrap();
    let out = plan(&spec);
    assert!(
        out.contains("subscription.pipelineSubscriptions: 10 -> 40"),
        "{out}"
    );
    assert!(out.contains("quota.seed") && out.contains("its inputs changed"));
    assert!(
        out.contains("that Ann Customer approved at")
            && out.contains("is no longer what the spec asks for (pools.workers.desired: 7 → 23; pools.workers.max: 14 → 46)")
            && out.contains("approve phase 5 again"),
        "{out}"
    );
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "stops at the gate: {v} {err}");
    assert_eq!(executed(&v), ["spec", "artifacts", "roles"]);
    assert_eq!(
        seeded_config(&state)["pipelineSubscriptions"],
        10,
        "nothing past the gate ran"
    );
    approve(&state, 5);
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(executed(&v), ["quota-seed"]);
    let q = seeded_config(&state);
    assert_eq!(q["pipelineSubscriptions"], 40, "{q}");
    assert_eq!(
        verify(&state, None).0,
        0,
        "old and new artifacts both verify"
    );
}

#[test]
fn a_playbook_with_an_unknown_action_or_repeated_step_is_rejected_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = playbook(
        dir.path(),
        [
            "steps: [{id: a, action: spec.validate}, {id: a, action: checks.certificate}]",
            "",
            "steps: [{id: b, action: cluster.explode}]",
            "",
            "",
            "",
        ],
    );
    let state = dir.path().join("state");
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("step id `a` is used twice"), "{err}");
    assert!(err.contains("unknown action `cluster.explode`"), "{err}");
    assert!(err.contains("playbook.yaml:7:"), "names the line: {err}");
    assert!(!state.exists());
}

#[test]
fn install_without_a_terminal_needs_yes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let o = realmctl()
        .args(["install", "-f"])
        .arg(&spec)
        .arg("--state")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("pass --yes"));
}

#[test]
fn a_state_folder_belongs_to_one_realm() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    install(&spec, &state, &pb, &["--until", "1"]);
    let t = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, t.replace("name: acme", "name: other")).unwrap();
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("belongs to realm `acme`"), "{err}");
}

#[test]
fn a_custom_node_image_waits_for_the_customers_acceptance() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        SpecOpts {
            node_image: "{type: custom, image: ami-0123456789abcdef0}",
            ..Default::default()
        },
    );
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, v, _) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3);
    assert!(next_text(&v).contains("custom node image"), "{v}");
    assert_eq!(approve(&state, 1).status.code(), Some(0));
    let (code, v, _) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "now at the phase-5 gate: {v}");
    assert_eq!(executed(&v)[0], "node-image");
    let r = realmctl()
        .args(["report", "--format", "md", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        text(&r)
            .0
            .contains("responsibility accepted by Ann Customer")
    );
}

#[test]
fn a_live_lock_names_its_holder_and_a_stale_one_needs_unlock_with_its_id() {
    use realmctl::engine::io::lock::{self, Holder};
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let holder = Holder {
        lock_id: "feedbeef00112233".into(),
        host: "ops-box".into(),
        pid: 4242,
        start_ticks: None,
        boot_id: None,
        since: "2026-11-23T10:00:00Z".into(),
        operator: "bob".into(),
        command: "install".into(),
    };
    let guard = lock::acquire(&state, holder).unwrap();
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is locked")
            && err.contains("ops-box")
            && err.contains("pid 4242")
            && err.contains("since 2026-11-23T10:00:00Z"),
        "{err}"
    );
    // The holder dies without releasing: its holder file stays behind.
    std::mem::forget(guard);
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 1, "still held by this test process: {err}");
    drop_os_lock(&state);
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("stale lock") && err.contains("--lock-id feedbeef00112233"),
        "{err}"
    );
    let wrong = realmctl()
        .args(["unlock", "--lock-id", "0000", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    let ok = realmctl()
        .args(["unlock", "--lock-id", "feedbeef00112233", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{:?}", text(&ok));
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "{err}");
}

/// Releases the OS lock the leaked guard of this process holds (a dead holder's kernel lock
/// goes away with it; here we let go by hand).
fn drop_os_lock(state: &std::path::Path) {
    // flock locks belong to the open file description: a fresh open and unlock does not
    // release the leaked one, so this test re-creates the lock file instead.
    let p = state.join(realmctl::engine::io::lock::LOCK_FILE);
    std::fs::remove_file(&p).unwrap();
}

#[cfg(feature = "test-actions")]
#[test]
fn retryable_failures_are_retried_with_backoff_and_then_give_up() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let d = dir.path().display();
    let flaky = |id: &str, retries: u32, failures: u32| {
        format!(
            "{{id: {id}, action: test.flaky, retries: {retries}, params: {{dir: \"{d}\", failures: {failures}}}}}"
        )
    };
    let pb = sparse_playbook(
        dir.path(),
        &[(1, flaky("flaky", 2, 2)), (3, flaky("flaky2", 1, 5))],
    );
    let state = dir.path().join("state");
    let (code, v, err) = install(&spec, &state, &pb, &["--retry-base-ms", "5"]);
    assert_eq!(code, 1, "{err}");
    assert!(v["message"].as_str().unwrap().contains("flaky2"), "{v}");
    let attempts = |f: &str| {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(attempts("flaky-flaky"), 3, "two failures, then success");
    assert_eq!(attempts("flaky-flaky2"), 2, "one retry, then give up");
    let r = realmctl()
        .args(["report", "--format", "json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let rep: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(rep["phases"][0]["steps"][0]["attempts"], 3);
    assert_eq!(rep["phases"][2]["status"], "failed");
}

#[cfg(feature = "test-actions")]
#[test]
fn a_step_that_overruns_its_timeout_fails_as_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let d = dir.path().display();
    let slow = format!(
        "{{id: slow, action: test.effect, timeout: 200ms, params: {{dir: \"{d}\", sleepMs: 5000}}}}"
    );
    let pb = sparse_playbook(dir.path(), &[(1, slow)]);
    let state = dir.path().join("state");
    let (code, v, _) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 1);
    assert!(next_text(&v).contains("timeout of 0.2 s"), "{v}");
}
