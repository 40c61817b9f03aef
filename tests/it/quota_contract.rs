//! The quota service's HTTP contract (`docs/quota-openapi.yaml`) checked by a client nobody
//! here wrote: schemathesis (PyPI, installed by `scripts/test.sh`) runs its examples, coverage
//! and fuzzing phases with every check — status codes, content types, response schemas,
//! headers, negative data refused, positive data accepted, authentication not ignored,
//! unsupported methods — against `quota serve` on SQLite and on PostgreSQL, with the admin
//! token, and must report no failure and no server error. A fixed seed and example count keep
//! the run repeatable.

use std::path::Path;
use std::process::Command;

use realmctl::quota::tokens::{Scope, mint};

use crate::common::QuotaServe;
use crate::pg::Pg;

/// Examples per operation and phase (fuzzing); enough to reach every rule, bounded in time.
const EXAMPLES: &str = "60";

/// A token file with an admin token; the admin token.
fn admin(dir: &Path) -> String {
    let (admin, line) = mint(&Scope::Admin);
    std::fs::write(dir.join("tokens.yaml"), format!("{line}\n")).unwrap();
    admin
}

/// Seeds realm `acme` and runs schemathesis on it (so admissions reach the ledger's decisions,
/// not only 404).
fn contract(base: &str, admin: &str, dir: &Path) {
    assert_eq!(
        crate::common::put_config(base, admin, "acme", r#"{"pipelineSubscriptions": 3}"#),
        200
    );
    // Every operation on the seeded realm, so requests reach the ledger's decisions rather than
    // stopping at "realm not seeded".
    std::fs::write(
        dir.join("schemathesis.toml"),
        "[parameters]\n\"path.realm\" = \"acme\"\n",
    )
    .unwrap();
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/quota-openapi.yaml");
    let o = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(&doc)
        .args(["--url", base])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", EXAMPLES])
        .args(["--seed", "20261205"])
        .args(["--workers", "1"])
        .args(["--no-color"])
        .current_dir(dir)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("HYPOTHESIS_STORAGE_DIRECTORY", dir.join("hypothesis"))
        .output()
        .expect("schemathesis is installed by scripts/test.sh");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "schemathesis found failures:\n{out}\n{err}"
    );
    assert!(
        out.contains("No issues found") && out.contains("9 selected / 9 total"),
        "schemathesis did not say the contract holds for all 9 operations:\n{out}\n{err}"
    );
    assert!(
        out.contains("schemathesis.toml"),
        "the realm parameter came from the config:\n{out}"
    );
}

#[test]
fn schemathesis_finds_no_failure_against_quota_serve_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(dir.path());
    let db = dir.path().join("quota.db");
    let mut s = QuotaServe::start(db.as_os_str(), &dir.path().join("tokens.yaml"), &[], &[]);
    contract(&s.base, &admin, dir.path());
    let _ = s.child.kill();
    let _ = s.child.wait();
}

#[test]
fn schemathesis_finds_no_failure_against_quota_serve_on_postgresql() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = admin(dir.path());
    let url = pg.create_db("contract");
    let mut s = QuotaServe::start(
        url.as_ref(),
        &dir.path().join("tokens.yaml"),
        &[],
        &[("PGPASSWORD", pg.password())],
    );
    contract(&s.base, &admin, dir.path());
    let _ = s.child.kill();
    let _ = s.child.wait();
}
