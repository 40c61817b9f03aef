//! An install that ends with the realm live, through the binary, on the Google stand-in: the
//! platform applied, the realm's own enforcement core (this build's quota service behind the
//! stand-in's service proxy, as its Pod would run it) seeded through the API server, the
//! customer's certificate served at the ingress for every name; then `realmctl quota
//! --in-realm` deploys, refuses and reports through the same path. The core's tokens stay in
//! the cluster: nothing written or printed holds them, in any encoding. SIGKILL around the
//! in-realm seed and the live check, then resume: the realm ends live with the tokens it had.

use std::path::PathBuf;
use std::time::Duration;

use realmctl::platform::quota;

use crate::common::{assert_nowhere, realmctl_std};
use crate::engine_support::{approve, cloud_playbook_live, text};
use crate::gke::{Google, write_spec};

fn token_in_cluster(g: &Google, secret: &str) -> String {
    let kube = g.standin.kube();
    let mut w = kube.world();
    let t = w.cluster.find("", "secrets").unwrap();
    let v = w.cluster.get(&t, quota::NAMESPACE, secret).unwrap();
    quota::token_in(&v).unwrap().expose().to_owned()
}

/// A realm on its own Google stand-in whose core's Service is backed by this build's quota
/// service, with a real certificate for its six names.
struct LiveRealm {
    g: Google,
    dir: tempfile::TempDir,
    core_dir: tempfile::TempDir,
    spec: PathBuf,
    pb: PathBuf,
    state: PathBuf,
    names: Vec<String>,
}

impl LiveRealm {
    fn new() -> Self {
        let g = Google::start(Duration::from_millis(300));
        let dir = tempfile::tempdir().unwrap();
        let spec = write_spec(&g, dir.path(), "digibee-acme", "");
        let names = realmctl::spec::load(&spec)
            .unwrap()
            .domains
            .required_names();
        let cert = rcgen::generate_simple_self_signed(names.clone()).unwrap();
        std::fs::write(dir.path().join("certs/wildcard.pem"), cert.cert.pem()).unwrap();
        std::fs::write(
            dir.path().join("certs/wildcard.key"),
            cert.signing_key.serialize_pem(),
        )
        .unwrap();
        let core_dir = tempfile::tempdir().unwrap();
        g.standin.kube().world().serve_service(
            quota::NAMESPACE,
            quota::SERVICE,
            realmctl::demo::core::quota_backend(core_dir.path().join("ledger.db")),
        );
        let pb = cloud_playbook_live(dir.path());
        let state = dir.path().join("state");
        LiveRealm {
            g,
            dir,
            core_dir,
            spec,
            pb,
            state,
            names,
        }
    }

    fn install(&self) -> std::process::Command {
        crate::cloud_install::install_in_realm_cmd(
            &self.g.env(),
            &self.spec,
            &self.state,
            &self.pb,
            self.g.standin.kube().edge_port(),
        )
    }

    /// Installs to the phase-5 gate and approves it.
    fn approved(&self) -> String {
        let o = self.install().output().unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(3), "stops at the gate: {out}\n{err}");
        assert_eq!(approve(&self.state, 5).status.code(), Some(0));
        out + &err
    }

    /// `realmctl quota ARGS --in-realm SPEC`: exit code, stdout, stderr.
    fn quota(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let o = realmctl_std()
            .envs(self.g.env())
            .arg("quota")
            .args(args)
            .arg("--in-realm")
            .arg(&self.spec)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        (o.status.code(), out, err)
    }

    /// The report says the realm is live and names every certificate name.
    fn assert_live(&self, case: &str) {
        let report = crate::cloud_install::report_of(&self.state, "md");
        assert!(
            report.contains("the realm is live"),
            "{case}: the report says so: {report}"
        );
        for n in &self.names {
            assert!(report.contains(n.as_str()), "{case}: the report names {n}");
        }
        assert!(
            !self.state.join("quota.db").exists(),
            "{case}: nothing was seeded locally"
        );
    }
}

#[test]
fn an_install_ends_live_and_quota_in_realm_acts_on_the_realms_own_core() {
    let r = LiveRealm::new();
    let mut printed = r.approved();
    let o = r.install().output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    printed.push_str(&out);
    printed.push_str(&err);
    r.assert_live("install");

    // The quota commands reach the same core through the cluster.
    let deploy = [
        "--env",
        "test",
        "--pipeline",
        "orders",
        "--version",
        "1.0",
        "--size",
        "small",
    ];
    let (code, out, err) = r.quota(&[&["deploy"][..], &deploy].concat());
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.starts_with("admitted"), "{out}");
    let (code, out, err) = r.quota(&[&["what-if"][..], &deploy, &["--replicas", "1000"]].concat());
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.starts_with("would be denied (quota_exceeded)"), "{out}");
    let (code, out, err) = r.quota(&["status", "--output", "json"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["config"]["pipelineSubscriptions"], 2, "{st}");
    assert_eq!(st["deployments"][0]["pipeline"], "orders", "{st}");
    printed.push_str(&out);
    let (code, out, err) = r.quota(&[
        "undeploy",
        "--env",
        "test",
        "--pipeline",
        "orders",
        "--major",
        "1",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    printed.push_str(&out);
    printed.push_str(&err);

    let tokens = [quota::ADMIN_SECRET, quota::REALM_SECRET].map(|s| token_in_cluster(&r.g, s));

    // A destroy retires the realm in its own core, through the cluster, before deleting
    // anything, and keeps the core's whole log as an artifact.
    let plan = crate::cloud_install::destroy_plan(&r.g.env(), &r.spec, &r.state, &[]);
    assert_eq!(plan["retire"]["kind"], "inRealm", "{plan}");
    let (code, v, err) =
        crate::destroy_standins::destroy_approved(&r.g.env(), &r.spec, &r.state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    printed.push_str(&v.to_string());
    printed.push_str(&err);
    let executed = crate::engine_support::executed(&v);
    assert_eq!(
        executed.first().map(String::as_str),
        Some("destroy-retire"),
        "{v}"
    );
    let mut ledger = realmctl::quota::ledger::Ledger::open_existing(
        &r.core_dir.path().join("ledger.db"),
        realmctl::quota::ledger::Sync::Full,
    )
    .unwrap();
    let st = ledger.status("acme").unwrap();
    let retired_at = st
        .retired_at
        .expect("the core's ledger says the realm is retired");
    let d = ledger
        .deploy(
            "acme",
            &realmctl::quota::model::Deployment {
                environment: realmctl::quota::model::Env::Test,
                pipeline: "orders".into(),
                version: "1.0".parse().unwrap(),
                size: realmctl::quota::model::Size::Small,
                replicas: 1,
            },
            "test",
        )
        .unwrap();
    assert_eq!(d.reason, Some(realmctl::quota::model::Reason::RealmRetired));
    let log = std::fs::read_dir(r.state.join("artifacts"))
        .unwrap()
        .flatten()
        .flat_map(|run| {
            std::fs::read_dir(run.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|f| f.path())
        .find(|p| p.file_name().is_some_and(|n| n == "decision-log.json"))
        .expect("the decision log is an artifact");
    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(log).unwrap()).unwrap();
    let actions: Vec<&str> = log["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["seed", "deploy", "undeploy", "retire"], "{log}");
    assert_eq!(log["retirement"]["retiredAt"], retired_at.as_str(), "{log}");

    // The tokens the install made live only in the cluster's Secrets.
    for token in tokens {
        assert_nowhere(&token, &[&printed], &[r.dir.path(), r.core_dir.path()]);
    }
}

/// SIGKILL after the start of, after the action of, and after the success of the in-realm seed
/// and the live check (each kill checked to have landed there in the journal), then unlock and
/// resume: the realm ends live, the core holds the realm's config, and the tokens are the ones
/// the install made before the kill (a resumed run never changes a token).
#[cfg(feature = "test-actions")]
#[test]
fn sigkill_around_the_in_realm_seed_and_the_live_check_resumes_to_a_live_realm() {
    use std::os::unix::process::ExitStatusExt;
    for step in ["quota-seed", "realm-live"] {
        for point in ["started", "acted", "succeeded"] {
            let at = format!("{step}:{point}");
            let r = LiveRealm::new();
            r.approved();
            let o = r
                .install()
                .env("REALMCTL_TEST_KILL_AT", &at)
                .output()
                .unwrap();
            assert_eq!(o.status.signal(), Some(9), "{at}: {:?}", text(&o));
            crate::engine_support::assert_kill_landed(&r.state, &at);
            let tokens: Vec<String> = [quota::ADMIN_SECRET, quota::REALM_SECRET]
                .iter()
                .map(|s| token_in_cluster(&r.g, s))
                .collect();
            crate::cloud_install::unlock(&r.state);
            let o = r.install().output().unwrap();
            let (out, err) = text(&o);
            assert_eq!(o.status.code(), Some(0), "{at}: {out}\n{err}");
            r.assert_live(&at);
            let (code, out, err) = r.quota(&["status", "--output", "json"]);
            assert_eq!(code, Some(0), "{at}: {out}\n{err}");
            let st: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(st["config"]["pipelineSubscriptions"], 2, "{at}: {st}");
            let after: Vec<String> = [quota::ADMIN_SECRET, quota::REALM_SECRET]
                .iter()
                .map(|s| token_in_cluster(&r.g, s))
                .collect();
            assert_eq!(tokens, after, "{at}: the tokens survived the kill");
        }
    }
}
