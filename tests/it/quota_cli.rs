//! `realmctl quota` on the command line (issue #3): exit codes 0 admitted, 1 denied, 2 bad
//! input; JSON shape of a decision; seeding refuses to go below current use.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn realmctl() -> Command {
    crate::common::realmctl()
}

pub fn spec(dir: &Path, subs: u32) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/c.pem"), "").unwrap();
    std::fs::write(dir.join("certs/k.pem"), "").unwrap();
    let p = dir.join(format!("realm-{subs}.yaml"));
    std::fs::write(
        &p,
        format!(
            "apiVersion: realmctl/v1\nkind: Realm\nname: acme\ncloud:\n  provider: gke\n  region: us-central1\n  gke: {{project: digibee-acme, network: vpc, subnetwork: nodes}}\n  cluster: {{name: digibee-acme, kubernetesVersion: \"1.31\"}}\ndomains: {{base: digibee.acme.com}}\ncertificate: {{cert: certs/c.pem, key: certs/k.pem}}\nsubscription: {{pipelineSubscriptions: {subs}, extraTestRtus: 0, extraProdRtus: 1}}\n"
        ),
    )
    .unwrap();
    p
}

fn deploy(db: &Path, args: &str) -> (i32, Value) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let o = realmctl()
        .args([
            "quota", "deploy", "--output", "json", "--realm", "acme", "--db",
        ])
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code().unwrap(), v)
}

#[test]
fn deploy_exit_codes_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    // Not seeded yet: bad input.
    assert_eq!(
        deploy(
            &db,
            "--env prod --pipeline orders --version 1.2 --size small"
        )
        .0,
        2
    );
    realmctl()
        .args(["quota", "seed", "--db"])
        .arg(&db)
        .arg("-f")
        .arg(spec(dir.path(), 1))
        .assert()
        .success();

    let (code, v) = deploy(
        &db,
        "--env prod --pipeline orders --version 1.2 --size medium",
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["admitted"], true);
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["usageAfter"]["rtusUsed"], 2);
    assert_eq!(
        v["usageAfter"]["rtusTotal"], 3,
        "1 subscription = 2 Prod RTU, plus 1 extra"
    );

    let (code, v) = deploy(
        &db,
        "--env prod --pipeline orders --version 1.3 --size small --replicas 3",
    );
    assert_eq!(
        (code, v["replaces"].as_str()),
        (0, Some("1.2")),
        "a minor upgrade replaces: {v}"
    );

    let (code, v) = deploy(
        &db,
        "--env prod --pipeline orders --version 2.0 --size small",
    );
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("no_pipeline_subscription")),
        "{v}"
    );
    let (code, v) = deploy(
        &db,
        "--env test --pipeline orders --version 1.0 --size medium",
    );
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("insufficient_rtu")),
        "Test has 1 RTU: {v}"
    );
    let (code, v) = deploy(
        &db,
        "--env test --pipeline orders --version 1.0 --size small --replicas 11",
    );
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("quota_exceeded")),
        "{v}"
    );

    for bad in [
        ["--version", "0.1"],
        ["--version", "1.2.3"],
        ["--size", "huge"],
        ["--env", "staging"],
        ["--replicas", "0"],
    ] {
        let mut args = vec![
            "--env",
            "prod",
            "--pipeline",
            "orders",
            "--version",
            "1.4",
            "--size",
            "small",
        ];
        let i = args
            .iter()
            .position(|a| *a == bad[0])
            .map_or(args.len(), |i| i);
        if i < args.len() {
            args[i + 1] = bad[1];
        } else {
            args.extend(bad);
        }
        assert_eq!(deploy(&db, &args.join(" ")).0, 2, "{bad:?}");
    }

    // what-if records nothing.
    let o = realmctl()
        .args([
            "quota",
            "what-if",
            "--realm",
            "acme",
            "--env",
            "test",
            "--pipeline",
            "p",
            "--version",
            "1.0",
            "--size",
            "small",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let st = realmctl()
        .args([
            "quota", "status", "--output", "json", "--realm", "acme", "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["test"]["subscriptionsUsed"], 0);
    assert_eq!(v["prod"]["rtusUsed"], 3);
}

#[test]
fn seeding_below_current_use_is_refused_naming_the_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    realmctl()
        .args(["quota", "seed", "--db"])
        .arg(&db)
        .arg("-f")
        .arg(spec(dir.path(), 2))
        .assert()
        .success();
    assert_eq!(
        deploy(
            &db,
            "--env prod --pipeline orders --version 1.0 --size small"
        )
        .0,
        0
    );
    assert_eq!(
        deploy(
            &db,
            "--env prod --pipeline billing --version 1.0 --size small"
        )
        .0,
        0
    );
    let o = realmctl()
        .args(["quota", "seed", "--db"])
        .arg(&db)
        .arg("-f")
        .arg(spec(dir.path(), 1))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("orders 1.0") && err.contains("billing 1.0"),
        "{err}"
    );
    realmctl()
        .args([
            "quota",
            "undeploy",
            "--realm",
            "acme",
            "--env",
            "prod",
            "--pipeline",
            "billing",
            "--major",
            "1",
            "--db",
        ])
        .arg(&db)
        .assert()
        .success();
    realmctl()
        .args(["quota", "seed", "--db"])
        .arg(&db)
        .arg("-f")
        .arg(spec(dir.path(), 1))
        .assert()
        .success();
    realmctl()
        .args([
            "quota",
            "undeploy",
            "--realm",
            "acme",
            "--env",
            "prod",
            "--pipeline",
            "billing",
            "--major",
            "1",
            "--db",
        ])
        .arg(&db)
        .assert()
        .code(2);
}

#[test]
fn token_prints_a_digest_line_not_the_token() {
    let o = realmctl()
        .args(["quota", "token", "--realm", "acme"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let token = out.lines().nth(1).unwrap().trim();
    let line = out.lines().nth(3).unwrap().trim();
    assert!(
        token.starts_with("rq_") && line.ends_with(": acme") && !line.contains(token),
        "{out}"
    );
    assert_eq!(
        line.split(':').next().unwrap(),
        realmctl::quota::tokens::digest_hex(token)
    );
    realmctl().args(["quota", "token"]).assert().code(2);
}
