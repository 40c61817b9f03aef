//! An install that ends with the realm live, through the binary, on the Google stand-in: the
//! platform applied, the realm's own enforcement core (this build's quota service behind the
//! stand-in's service proxy, as its Pod would run it) seeded through the API server, the
//! customer's certificate served at the ingress for every name; then `realmctl quota
//! --in-realm` deploys, refuses and reports through the same path. The core's tokens stay in
//! the cluster: nothing written or printed holds them, in any encoding.

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

#[test]
fn an_install_ends_live_and_quota_in_realm_acts_on_the_realms_own_core() {
    let g = Google::start(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&g, dir.path(), "digibee-acme", "");
    // A real certificate for the six names (the edge serves it from the TLS Secret).
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
    let port = g.standin.kube().edge_port();
    let mut printed = String::new();
    let mut install = || {
        let o = crate::cloud_install::install_in_realm_cmd(&g.env(), &spec, &state, &pb, port)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        printed.push_str(&out);
        printed.push_str(&err);
        (o.status.code(), out, err)
    };
    let (code, out, err) = install();
    assert_eq!(code, Some(3), "stops at the gate: {out}\n{err}");
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let (code, out, err) = install();
    assert_eq!(code, Some(0), "{out}\n{err}");
    let report = crate::cloud_install::report_of(&state, "md");
    assert!(
        report.contains("the realm is live"),
        "the report says so: {report}"
    );
    for n in &names {
        assert!(report.contains(n.as_str()), "the report names {n}");
    }
    assert!(
        !state.join("quota.db").exists(),
        "nothing was seeded locally"
    );

    // The quota commands reach the same core through the cluster.
    let quota = |args: &[&str]| {
        let o = realmctl_std()
            .envs(g.env())
            .arg("quota")
            .args(args)
            .arg("--in-realm")
            .arg(&spec)
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        (o.status.code(), out, err)
    };
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
    let (code, out, err) = quota(&[&["deploy"][..], &deploy].concat());
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.starts_with("admitted"), "{out}");
    let (code, out, err) = quota(&[&["what-if"][..], &deploy, &["--replicas", "1000"]].concat());
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.starts_with("would be denied (quota_exceeded)"), "{out}");
    let (code, out, err) = quota(&["status", "--output", "json"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["config"]["pipelineSubscriptions"], 2, "{st}");
    assert_eq!(st["deployments"][0]["pipeline"], "orders", "{st}");
    let (code, out, err) = quota(&[
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

    // The tokens the install made live only in the cluster's Secrets.
    for secret in [quota::ADMIN_SECRET, quota::REALM_SECRET] {
        let token = token_in_cluster(&g, secret);
        assert_nowhere(&token, &[&printed], &[dir.path(), core_dir.path()]);
    }
}
