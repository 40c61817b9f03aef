//! CLI tests (issue #2): run the `realmctl` binary; exit codes, JSON shape, error messages
//! with file:line:column for broken specs, reports, and no secret in any output.

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use crate::common::{Pki, SpecOpts, closed_port, dnsmasq, required, tinyproxy, write_spec};
use assert_cmd::Command;
use serde_json::Value;

fn realmctl() -> Command {
    crate::common::realmctl()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A loopback TCP listener that accepts (and drops) connections, for `tls: false` targets.
fn accepting_listener() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in l.incoming() {});
    port
}

fn valid_spec(dir: &Path, o: SpecOpts) -> std::path::PathBuf {
    let pki = Pki::new();
    write_spec(dir, &pki.leaf(&required()), &pki.root_pem(), &o)
}

#[test]
fn init_then_validate() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("realm.yaml");
    let init = [
        "init",
        "--cloud",
        "gke",
        "--name",
        "acme",
        "--domain",
        "digibee.acme.com",
        "-o",
    ];
    realmctl().args(init).arg(&spec).assert().success();
    let written = std::fs::read_to_string(&spec).unwrap();
    assert!(
        written.contains("provider: gke") && written.contains("# "),
        "commented spec expected"
    );
    // Refuses to overwrite.
    realmctl().args(init).arg(&spec).assert().code(2);
    // The certificate files do not exist yet: bad input naming them.
    let o = realmctl()
        .arg("validate")
        .arg("-f")
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(
        err.contains("certs/wildcard.pem") && err.contains("file not found"),
        "{err}"
    );
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/wildcard.pem"), "").unwrap();
    std::fs::write(dir.path().join("certs/wildcard.key"), "").unwrap();
    let o = realmctl()
        .arg("validate")
        .arg("-f")
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = realmctl()
        .args(["validate", "--output", "json", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["realm"], "acme");
}

#[test]
fn init_rejects_bad_names() {
    let o = realmctl()
        .args([
            "init", "--cloud", "eks", "--name", "Bad_Name", "--domain", "x.com",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("invalid realm name"));
}

fn broken(dir: &Path, replace: (&str, &str)) -> Output {
    let spec = valid_spec(dir, SpecOpts::default());
    let t = std::fs::read_to_string(&spec).unwrap();
    assert!(t.contains(replace.0), "fixture lacks {}", replace.0);
    std::fs::write(&spec, t.replacen(replace.0, replace.1, 1)).unwrap();
    realmctl()
        .arg("validate")
        .arg("-f")
        .arg(&spec)
        .output()
        .unwrap()
}

#[test]
fn broken_specs_name_file_line_column_and_fix() {
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "region: us-east-1",
            "region: us-east-1\n  regoin: x",
            "realm.yaml:7:3",
            "unknown field `regoin`",
        ),
        (
            "pipelineSubscriptions: 10",
            "pipelineSubscriptions: ten",
            "realm.yaml:21:39",
            "pipelineSubscriptions: ten",
        ),
        (
            "pipelineSubscriptions: 10",
            "pipelineSubscriptions: 0",
            "realm.yaml:21:",
            "at least 1",
        ),
        (
            "name: acme",
            "name: ACME!",
            "realm.yaml:3:7",
            "invalid realm name",
        ),
        (
            "runTime: [test, api]",
            "runTime: [test, api, core]",
            "realm.yaml:13:",
            "listed more than once",
        ),
        (
            "provider: eks",
            "provider: gke",
            "realm.yaml:5:13",
            "cloud.gke block is missing",
        ),
        (
            "proxy: null",
            "proxy: \"http://user:hunter2@proxy.corp:3128\"",
            "realm.yaml:",
            "proxyCredentialsEnv",
        ),
    ];
    for (from, to, at, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let o = broken(dir.path(), (from, to));
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(at), "{to}: expected {at} in {err}");
        assert!(err.contains(says), "{to}: expected `{says}` in {err}");
        assert!(err.contains("help:"), "{to}: a fix is expected: {err}");
        assert!(
            !err.contains("hunter2"),
            "a secret from the spec was repeated: {err}"
        );
    }
}

#[test]
fn missing_spec_file_is_bad_input() {
    let o = realmctl()
        .args(["validate", "-f", "/nonexistent/realm.yaml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("/nonexistent/realm.yaml"));
    realmctl()
        .args(["preflight", "--bogus-flag"])
        .assert()
        .code(2);
}

/// `realmctl schema`, compiled by a JSON Schema (2020-12) validator.
fn compiled_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let o = realmctl().arg("schema").output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["title"], "realmctl realm spec");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource("realmctl-spec.json", v).unwrap();
    let index = compiler
        .compile("realmctl-spec.json", &mut schemas)
        .unwrap();
    (schemas, index)
}

fn yaml_to_json(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).unwrap()
}

/// Issue #11: the schema is checked by what it is for: a JSON Schema validator accepts real
/// specs (every one `init` writes, the example of docs/spec.md, the specs the tests install
/// from) and rejects broken ones, and `realmctl validate` agrees with it on each.
#[test]
fn the_json_schema_accepts_real_specs_and_rejects_broken_ones() {
    let (schemas, index) = compiled_schema();
    let dir = tempfile::tempdir().unwrap();
    let mut good: Vec<(String, String)> = Vec::new();
    for cloud in ["eks", "aks", "gke"] {
        let path = dir.path().join(format!("init-{cloud}.yaml"));
        realmctl()
            .args([
                "init",
                "--cloud",
                cloud,
                "--name",
                "acme",
                "--domain",
                "digibee.acme.com",
                "-o",
            ])
            .arg(&path)
            .assert()
            .success();
        good.push((
            format!("init --cloud {cloud}"),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/spec.md"))
        .unwrap();
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    good.push(("docs/spec.md".into(), example.to_owned()));
    let tested = valid_spec(dir.path(), SpecOpts::default());
    good.push((
        "test spec".into(),
        std::fs::read_to_string(&tested).unwrap(),
    ));
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    for f in ["wildcard.pem", "wildcard.key"] {
        let p = dir.path().join("certs").join(f);
        if !p.exists() {
            std::fs::write(p, "").unwrap();
        }
    }
    let validate = |yaml: &str| {
        let p = dir.path().join("case.yaml");
        std::fs::write(&p, yaml).unwrap();
        realmctl()
            .args(["validate", "-f"])
            .arg(&p)
            .output()
            .unwrap()
    };
    for (what, yaml) in &good {
        let v = yaml_to_json(yaml);
        if let Err(e) = schemas.validate(&v, index) {
            panic!("{what}: the schema rejects a real spec: {e}");
        }
        let o = validate(yaml);
        assert_eq!(o.status.code(), Some(0), "{what}: {:?}", text(&o));
    }
    // Broken specs, each from the docs' example: rejected by both.
    let base = example.to_owned();
    // (what, text of the example, replaced by)
    let broken = [
        (
            "no subscription",
            "subscription: {pipelineSubscriptions: 10, extraTestRtus: 0, extraProdRtus: 0}\n",
            "",
        ),
        ("no apiVersion", "apiVersion: realmctl/v1\n", ""),
        (
            "an unknown key",
            "kind: Realm\n",
            "kind: Realm\ncolour: blue\n",
        ),
        (
            "a wrong type",
            "pipelineSubscriptions: 10",
            "pipelineSubscriptions: ten",
        ),
        ("a negative count", "extraTestRtus: 0", "extraTestRtus: -1"),
        ("an unknown provider", "provider: eks", "provider: oracle"),
        ("a wrong apiVersion", "realmctl/v1", "realmctl/v9"),
        ("a wrong kind", "kind: Realm", "kind: Pipeline"),
        (
            "an unknown node image type",
            "nodeImage: {type: default}",
            "nodeImage: {type: golden}",
        ),
        ("a string timeout", "timeoutMs: 5000", "timeoutMs: fast"),
        ("a bad realm name", "name: acme", "name: Acme_Corp"),
    ];
    for (what, from, to) in broken {
        let yaml = &base.replace(from, to);
        assert_ne!(yaml, &base, "{what}: the mutation did not apply");
        let v = yaml_to_json(yaml);
        assert!(
            schemas.validate(&v, index).is_err(),
            "{what}: the schema accepts it"
        );
        let o = validate(yaml);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{what}: validate accepts it: {:?}",
            text(&o)
        );
    }
}

#[cfg(feature = "eks")]
#[test]
fn preflight_json_shape_and_exit_codes() {
    let dns = dnsmasq(&crate::common::PREFIXES, &[]);
    let open = accepting_listener();
    let aws = crate::common::AwsStandIn::start(std::time::Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let spec = valid_spec(
        dir.path(),
        SpecOpts {
            nameservers: vec![([127, 0, 0, 1], dns.port).into()],
            targets: vec![("127.0.0.1".into(), open, false)],
            endpoint: Some(aws.url()),
            ..Default::default()
        },
    );
    let o = realmctl()
        .args(["preflight", "--output", "json", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["realm"], "acme");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(
        v["summary"]["pass"].as_u64().unwrap() as usize,
        checks.len()
    );
    for c in checks {
        for key in [
            "id",
            "category",
            "subject",
            "status",
            "message",
            "owner",
            "durationMs",
        ] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
        assert!(
            ["certificate", "dns", "outbound", "vpn", "access", "spec"]
                .contains(&c["category"].as_str().unwrap())
        );
        assert!(["customer", "digibee"].contains(&c["owner"].as_str().unwrap()));
    }
    let cats: std::collections::BTreeSet<&str> = checks
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        cats.into_iter().collect::<Vec<_>>(),
        ["access", "certificate", "dns", "outbound", "spec"]
    );
    // The credential source is named from what the SDK's chain recorded (the test's keys are
    // environment variables), never guessed.
    let identity = checks
        .iter()
        .find(|c| c["id"] == "access.identity")
        .unwrap();
    assert!(
        identity["message"]
            .as_str()
            .unwrap()
            .ends_with("(credentials from environment variables)"),
        "{identity}"
    );

    // A closed port fails the run: exit 1, and the text output says who must fix what.
    let dir2 = tempfile::tempdir().unwrap();
    let spec2 = valid_spec(
        dir2.path(),
        SpecOpts {
            targets: vec![("127.0.0.1".into(), closed_port(), false)],
            ..Default::default()
        },
    );
    let o = realmctl()
        .args(["preflight", "--only", "outbound", "-f"])
        .arg(&spec2)
        .output()
        .unwrap();
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("OUTBOUND") && out.contains("FAIL") && out.contains("fix (customer):"),
        "{out}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "no colour when stdout is not a terminal: {out:?}"
    );
}

#[test]
fn only_filters_categories_and_access_without_a_reachable_cloud_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let spec = valid_spec(
        dir.path(),
        SpecOpts {
            vpn: Some(
                "{enabled: true, peer: 198.51.100.7/24, routing: route-based, remoteCidrs: [10.1.0.0/16]}",
            ),
            ..Default::default()
        },
    );
    let o = realmctl()
        .args([
            "preflight",
            "--only",
            "vpn,certificate",
            "--output",
            "json",
            "-f",
        ])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter()
            .all(|i| i.starts_with("vpn.") || i.starts_with("certificate.")),
        "{ids:?}"
    );
    assert!(ids.contains(&"vpn.peer") && ids.contains(&"vpn.cidrs"));

    // The access checks need the cloud: unreachable (the test's loopback dead end), they fail
    // with one check that names the call and the kind, never a hang or a crash.
    let o = realmctl()
        .args(["preflight", "--only", "access", "--output", "json", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checks"][0]["id"], "access.credentials");
    assert!(
        v["checks"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sts:GetCallerIdentity failed (service unavailable"),
        "{v}"
    );
    realmctl()
        .args(["preflight", "--only", "nonsense", "-f"])
        .arg(&spec)
        .assert()
        .code(2);
}

#[test]
fn custom_node_image_without_acceptance_fails() {
    let dir = tempfile::tempdir().unwrap();
    let spec = valid_spec(
        dir.path(),
        SpecOpts {
            node_image: "{type: custom, image: ami-0abc}",
            ..Default::default()
        },
    );
    let o = realmctl()
        .args(["preflight", "--only", "spec", "--output", "json", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checks"][0]["id"], "spec.node-image");
    assert_eq!(v["checks"][0]["status"], "fail");
}

#[test]
fn reports_are_written_and_secrets_never_appear() {
    let canary = "canary-s3cr3t-7f1e";
    let proxy = tinyproxy(&[format!("BasicAuth realm {canary}")]);
    let open = accepting_listener();
    let dir = tempfile::tempdir().unwrap();
    let spec = valid_spec(
        dir.path(),
        SpecOpts {
            targets: vec![("127.0.0.1".into(), open, false)],
            proxy: Some(format!("http://127.0.0.1:{}", proxy.port)),
            proxy_env: Some("REALM_PROXY_AUTH".into()),
            ..Default::default()
        },
    );
    // Every form the credential could leak in: the password, and `user:password` as a
    // Basic-auth header carries it, each plain, base64 (standard and URL-safe) and URL-encoded.
    let mut leaks = crate::common::forms(canary);
    leaks.extend(crate::common::forms(&format!("realm:{canary}")));
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    // The variable the spec names is missing: bad input, with the fix.
    let o = realmctl()
        .args(["preflight", "--only", "outbound", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("export REALM_PROXY_AUTH=user:password"));
    outputs.extend([o.stdout.clone(), o.stderr.clone()]);

    let html = dir.path().join("report.html");
    let md = dir.path().join("report.md");
    for (report, fmt) in [(&html, "text"), (&md, "json")] {
        let o = realmctl()
            .env("REALM_PROXY_AUTH", format!("realm:{canary}"))
            .args([
                "-v",
                "-v",
                "preflight",
                "--only",
                "outbound,certificate",
                "--output",
                fmt,
                "--report",
            ])
            .arg(report)
            .arg("-f")
            .arg(&spec)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        outputs.extend([o.stdout.clone(), o.stderr.clone()]);
        let doc = std::fs::read_to_string(report).unwrap();
        assert!(doc.contains("via proxy 127.0.0.1"), "{doc}");
    }
    let files = crate::common::files(&[dir.path()]);
    assert!(files.iter().any(|(p, _)| p.ends_with("report.md")));
    for form in &leaks {
        for (path, bytes) in &files {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                "{form} in {}",
                path.display()
            );
        }
        for (i, o) in outputs.iter().enumerate() {
            assert!(
                !o.windows(form.len()).any(|w| w == form.as_bytes()),
                "{form} in process output {i}"
            );
        }
    }
    let doc = std::fs::read_to_string(&html).unwrap();
    assert!(
        doc.starts_with("<!DOCTYPE html>") && !doc.contains("http://") && !doc.contains("https://"),
        "self-contained HTML"
    );
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .starts_with("# Preflight report: realm acme")
    );
    realmctl()
        .args(["preflight", "--report", "x.pdf", "-f"])
        .arg(&spec)
        .assert()
        .code(2);
}

/// Only a build without some cloud's client has a cloud to refuse (every default build has all
/// three); `cargo test --no-default-features --features object-store,eks` runs it.
#[cfg(all(feature = "eks", not(feature = "gke")))]
#[test]
fn demo_refuses_a_cloud_this_build_has_no_client_for() {
    let dir = tempfile::tempdir().unwrap();
    let o = realmctl()
        .args(["demo", "--cloud", "gke", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(
        err.contains("has no gke client, so it has no gke demo"),
        "{err}"
    );
    assert!(
        err.contains("help: run `realmctl demo --cloud eks`"),
        "{err}"
    );
}

#[test]
fn demo_says_it_is_a_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let o = realmctl()
        .args(["demo", "--dir"])
        .arg(dir.path().join("eks"))
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .starts_with("SIMULATION: nothing here touches a real cloud."),
        "{out}"
    );
    assert!(out.contains("30 passed, 1 warnings, 0 failed"), "{out}");
    assert!(
        out.contains("Simulated eks cluster(s): digibee-demo"),
        "{out}"
    );
    assert!(err.contains("CREATING"), "cluster progress is shown: {err}");
}

#[test]
fn demo_checks_and_installs_a_simulated_eks_realm_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let o = realmctl()
        .args(["demo", "--output", "json", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["simulation"], true);
    assert_eq!(v["cloud"], "eks");
    let p = &v["preflight"];
    assert_eq!(p["realm"], "demo");
    assert_eq!(p["summary"]["fail"], 0, "{out}");
    assert_eq!(
        p["summary"]["warn"], 1,
        "the demo CA's TLS server is reported as interception: {out}"
    );
    // Every category ran, DNS (on the demo's name server) and cloud access included (issue #9).
    for category in ["certificate", "dns", "outbound", "vpn", "access", "spec"] {
        assert!(
            p["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["category"] == category),
            "no {category} checks: {out}"
        );
    }
    assert_eq!(v["installed"], true);
    assert_eq!(
        v["clusters"],
        serde_json::json!(["digibee-demo (node pools: workers)"])
    );
    assert_eq!(v["journal"]["ok"], true);
    // Issue #11: the demo signs (operator: install, customer: approval) and verifies with both
    // public keys; the keys live beside the state folder, not in it.
    assert_eq!(v["journal"]["signaturesChecked"], true);
    let signers = v["journal"]["signedBy"].as_object().unwrap();
    assert_eq!(signers.len(), 2, "{out}");
    assert_eq!(
        signers.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        v["journal"]["records"].as_u64().unwrap()
    );
    assert!(dir.path().join("keys/operator.key.pub").exists());
    let o = realmctl()
        .args(["audit", "verify", "--state"])
        .arg(dir.path().join("state"))
        .arg("--public-key")
        .arg(dir.path().join("keys/operator.key.pub"))
        .arg("--public-key")
        .arg(dir.path().join("keys/customer.key.pub"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(dir.path().join("report.html").exists());
    let html = std::fs::read_to_string(dir.path().join("install-report.html")).unwrap();
    assert!(html.contains("the install is complete"), "{html}");
    assert!(
        html.contains("digibee-demo"),
        "the cluster is in the report"
    );
    let status = realmctl()
        .args(["status", "--output", "json", "--state"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        s["report"]["phases"][4]["approvals"][0]["by"],
        "demo customer"
    );
    // The customer's phase-5 approval was signed offline with the customer's key, imported,
    // and checked by the demo's own verification with that key.
    let customer = realmctl::signing::PublicKey::load(&dir.path().join("keys/customer.key.pub"))
        .unwrap()
        .id()
        .to_owned();
    assert_eq!(
        s["report"]["phases"][4]["approvals"][0]["customerKey"],
        customer.as_str()
    );
    assert_eq!(v["journal"]["customerKeysChecked"], true, "{out}");
    let checked = v["journal"]["customerApprovals"].as_array().unwrap();
    assert_eq!(checked.len(), 1, "{out}");
    assert_eq!(checked[0]["key"], customer.as_str());
    assert_eq!(checked[0]["problem"], Value::Null);
    realmctl()
        .args(["audit", "verify", "--state"])
        .arg(dir.path().join("state"))
        .assert()
        .success();
    realmctl()
        .arg("validate")
        .arg("-f")
        .arg(dir.path().join("realm.yaml"))
        .assert()
        .success();
    // Regression (issue #8): the demo's private key was 0644 in a 0755 folder.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path().join("certs/wildcard.key")), 0o600);
    assert_eq!(mode(dir.path().join("certs")), 0o700);
    assert_eq!(mode(dir.path().join("state")), 0o700);
}

/// `*` for every placeholder: `{…}` in code, `<…>` in the docs.
fn canonical_id(id: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in id.chars() {
        match c {
            '{' | '<' => {
                if depth == 0 {
                    out.push('*');
                }
                depth += 1;
            }
            '}' | '>' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether the pattern `p` (`*` matches one or more characters) matches `s`.
fn glob(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((head, tail)) => {
            s.starts_with(head) && (head.len() + 1..=s.len()).any(|k| glob(tail, &s[k..]))
        }
    }
}

/// Whether two ids (either may hold `*`) name the same check.
fn same_check(a: &str, b: &str) -> bool {
    a == b || glob(a, b) || glob(b, a)
}

const CATEGORIES: [&str; 6] = ["spec", "certificate", "dns", "outbound", "vpn", "access"];

/// The check ids the code makes: every string literal `"<category>.…"` outside tests in the
/// check and cloud-judgement sources.
fn ids_in_code() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = crate::common::files(&[&root.join("checks"), &root.join("cloud")]);
    files.push((
        root.join("preflight.rs"),
        std::fs::read(root.join("preflight.rs")).unwrap(),
    ));
    let mut out = Vec::new();
    for (path, bytes) in files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "rs"))
    {
        let text = String::from_utf8_lossy(bytes);
        let code = text.split("#[cfg(test)]").next().unwrap();
        for lit in code.split('"').skip(1).step_by(2) {
            let is_id = CATEGORIES.iter().any(|c| lit.starts_with(&format!("{c}.")))
                && lit.len() > 4
                && lit
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:{}-".contains(c));
            if is_id {
                out.push((canonical_id(lit), path.display().to_string()));
            }
        }
    }
    out
}

/// The check ids docs/checks.md documents: backticked ids in the first cell of table rows.
fn ids_in_docs(doc: &str) -> Vec<String> {
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            l.split('|')
                .nth(1)
                .unwrap()
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|id| CATEGORIES.iter().any(|c| id.starts_with(&format!("{c}."))))
                .map(canonical_id)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Issue #11: docs/checks.md and the code agree both ways: every check id the code makes is
/// documented and every documented id is made; every default target, required name and platform
/// range the binary checks is listed, and everything listed is checked.
#[test]
fn docs_checks_md_and_the_checks_agree_both_ways() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/checks.md"),
    )
    .unwrap();
    let code = ids_in_code();
    let documented = ids_in_docs(&doc);
    assert!(
        code.len() >= 25 && documented.len() >= 25,
        "{code:?} {documented:?}"
    );
    for (id, file) in &code {
        assert!(
            documented.iter().any(|d| same_check(d, id)),
            "{file} makes the check `{id}`, which docs/checks.md does not document"
        );
    }
    for d in &documented {
        assert!(
            code.iter().any(|(id, _)| same_check(d, id)),
            "docs/checks.md documents `{d}`, which no check makes"
        );
    }

    // Requirement data, both ways.
    let r = realmctl::requirements::embedded();
    let targets: Vec<String> = r
        .outbound
        .targets
        .iter()
        .flat_map(|t| t.ports.iter().map(move |p| format!("{}:{p}", t.host)))
        .collect();
    let listed: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| `") && (l.contains("| TLS |") || l.contains("| TCP |")))
        .map(|l| l.split('`').nth(1).unwrap())
        .collect();
    assert!(!listed.is_empty());
    let mut sorted_targets = targets.clone();
    sorted_targets.sort();
    let mut sorted_listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    sorted_listed.sort();
    assert_eq!(
        sorted_listed, sorted_targets,
        "default targets: docs vs embedded data"
    );
    let prefixes: Vec<String> = r
        .domains
        .all()
        .map(|p| format!("*.{}.<base>", p.prefix))
        .collect();
    let names: Vec<&str> = doc
        .lines()
        .filter_map(|l| {
            l.split('`')
                .nth(1)
                .filter(|n| n.starts_with("*.") && n.ends_with(".<base>"))
        })
        .collect();
    for n in &names {
        assert!(
            prefixes.iter().any(|p| p == n),
            "docs/checks.md lists {n}, which is not required"
        );
    }
    for p in &prefixes {
        assert!(names.contains(&p.as_str()), "docs/checks.md lacks {p}");
    }
    let ranges_line = doc
        .lines()
        .find(|l| l.starts_with("Platform ranges"))
        .expect("the platform ranges line");
    let ranges: Vec<&str> = ranges_line.split('`').skip(1).step_by(2).collect();
    let mut embedded: Vec<String> = r
        .vpn
        .platform_cidrs
        .iter()
        .map(|c| c.cidr.to_string())
        .collect();
    embedded.sort();
    let mut ranges: Vec<String> = ranges.iter().map(|s| s.to_string()).collect();
    ranges.sort();
    assert_eq!(ranges, embedded, "platform ranges: docs vs embedded data");
}
