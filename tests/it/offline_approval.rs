//! Customer approvals signed where the customer is (issue #22, item 4), through the binary: the
//! customer signs the phase-5 document with `approve --offline` on their own machine, without
//! the operator's state; the operator imports the file with the customer's public key; the
//! import is refused for another key, a changed file or a document that is no longer what
//! phase 6 would build, with nothing written; the journal keeps the customer's signature, which
//! `audit verify --customer-key` checks; the customer's private key is written nowhere.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{SpecOpts, assert_nowhere};
use crate::engine_support::*;
use realmctl::engine::model::event::Event;

/// A customer's key pair in its own folder (the customer's machine): (private, public).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let o = realmctl()
        .args(["audit", "keygen", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    (key.clone(), dir.join(format!("{name}.pem.pub")))
}

/// The current phase-5 document of `state`, copied where the customer gets it.
fn send_document(state: &Path, to: &Path) -> PathBuf {
    let location = events(state)
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::StepSucceeded { step, output, .. } if step == "roles" => {
                Some(output.artifacts[0].location.clone())
            }
            _ => None,
        })
        .expect("roles.render ran");
    let doc = to.join("roles-and-resources.md");
    std::fs::copy(state.join(location), &doc).unwrap();
    doc
}

/// `approve --offline` on the customer's machine: (exit code, stdout, stderr).
fn sign(doc: &Path, key: &Path, out: &Path) -> (i32, String, String) {
    let o = realmctl()
        .args([
            "approve",
            "--offline",
            "--phase",
            "5",
            "--by",
            "Ann (ACME CISO)",
        ])
        .args(["--note", "read it all", "--document"])
        .arg(doc)
        .arg("--signing-key")
        .arg(key)
        .arg("-o")
        .arg(out)
        .env_remove("REALMCTL_SIGNING_KEY")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

/// `approve --import` on the operator's machine: (exit code, stdout, stderr).
fn import(state: &Path, file: &Path, customer_key: &Path) -> (i32, String, String) {
    let o = realmctl()
        .args(["approve", "--output", "json", "--state"])
        .arg(state)
        .arg("--import")
        .arg(file)
        .arg("--customer-key")
        .arg(customer_key)
        .env_remove("REALMCTL_SIGNING_KEY")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

/// `audit verify` with customer keys: (exit code, stdout).
fn verify_customers(state: &Path, keys: &[&Path]) -> (i32, String) {
    let mut c = realmctl();
    c.args(["audit", "verify", "--state"]).arg(state);
    for k in keys {
        c.arg("--customer-key").arg(k);
    }
    let o = c.output().unwrap();
    (o.status.code().unwrap_or(-1), text(&o).0)
}

#[test]
fn an_offline_approval_is_imported_only_under_the_customers_key_and_the_journal_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let customer = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "{err}");
    let doc = send_document(&state, customer.path());
    let (ann, ann_pub) = keygen(customer.path(), "ann");
    let (mallory, mallory_pub) = keygen(customer.path(), "mallory");
    let mut printed = String::new();

    // The customer signs on their side, with no state at all.
    let file = dir.path().join("approval.json");
    let (code, out, err) = sign(&doc, &ann, &file);
    assert_eq!(code, 0, "{out}{err}");
    let text_doc = std::fs::read_to_string(&doc).unwrap();
    let facts = realmctl::engine::model::offline::read_document(&text_doc).unwrap();
    assert!(
        out.contains(&facts.definition) && out.contains("realm acme"),
        "{out}"
    );
    printed.push_str(&out);
    printed.push_str(&err);

    // Refused, with nothing written: another key than the customer's; a statement changed
    // after signing; a statement signed by someone else over the same document.
    let records = events(&state).len();
    let (code, _, err) = import(&state, &file, &mallory_pub);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not by the customer's key"), "{err}");
    let changed = dir.path().join("changed.json");
    let t = std::fs::read_to_string(&file).unwrap();
    assert!(t.contains("read it all"));
    std::fs::write(&changed, t.replace("read it all", "read nothing")).unwrap();
    let (code, _, err) = import(&state, &changed, &ann_pub);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not verify"), "{err}");
    let forged = dir.path().join("forged.json");
    assert_eq!(sign(&doc, &mallory, &forged).0, 0);
    let (code, _, err) = import(&state, &forged, &ann_pub);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not by the customer's key"), "{err}");
    assert_eq!(
        events(&state).len(),
        records,
        "a refused import writes nothing"
    );

    // Accepted under the customer's key: the record holds the customer's statement.
    let (code, out, err) = import(&state, &file, &ann_pub);
    assert_eq!(code, 0, "{out}{err}");
    let a: Value = serde_json::from_str(&out).unwrap();
    let ann_id = realmctl::signing::PublicKey::load(&ann_pub)
        .unwrap()
        .id()
        .to_owned();
    assert_eq!(a["customerKey"], ann_id.as_str());
    assert_eq!(a["by"], "Ann (ACME CISO)");
    assert_eq!(a["definition"], facts.definition.as_str());
    let recorded = events(&state)
        .into_iter()
        .find_map(|e| match e {
            Event::Approved {
                customer: Some(c), ..
            } => Some(c),
            _ => None,
        })
        .expect("the approval keeps the statement");
    assert_eq!(
        serde_json::to_value(&*recorded).unwrap(),
        serde_json::from_str::<Value>(&t).unwrap(),
        "kept verbatim"
    );
    // The gate passes: the install goes on to phase 6.
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(executed(&v), ["quota-seed"]);

    // The auditor checks the customer's signature with the customer's key.
    let (code, out) = verify_customers(&state, &[&ann_pub]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("signed with {ann_id}, a key you gave")),
        "{out}"
    );
    let (code, out) = verify_customers(&state, &[&mallory_pub]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED: the customer's approval of phase 5"),
        "{out}"
    );
    let (code, out) = verify_customers(&state, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("give --customer-key"), "{out}");
    printed.push_str(&out);
    // The report names the customer's key beside the approval.
    let o = realmctl()
        .args(["report", "--format", "md", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let report = text(&o).0;
    assert!(
        report.contains(&format!("customer's own statement, signed with `{ann_id}`")),
        "{report}"
    );
    printed.push_str(&report);
    // The customer's private key: in no file of the operator's side, no output.
    let pem = std::fs::read_to_string(&ann).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() > 40);
    assert_nowhere(&body, &[&printed], &[dir.path()]);
}

#[test]
fn an_offline_approval_of_a_document_rendered_again_since_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let customer = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    assert_eq!(install(&spec, &state, &pb, &[]).0, 3);
    let (ann, ann_pub) = keygen(customer.path(), "ann");
    let old = dir.path().join("old.json");
    assert_eq!(
        sign(&send_document(&state, customer.path()), &ann, &old).0,
        0
    );
    // The spec grows before the import: the document, and the definition it shows, change.
    let t = std::fs::read_to_string(&spec).unwrap();
    assert!(t.contains("pipelineSubscriptions: 10"));
    std::fs::write(
        &spec,
        t.replace("pipelineSubscriptions: 10", "pipelineSubscriptions: 40"),
    )
    .unwrap();
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "{v} {err}");
    let records = events(&state).len();
    let (code, _, err) = import(&state, &old, &ann_pub);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not among phase 5's current outputs")
            && err.contains("send the customer the current roles-and-resources.md"),
        "{err}"
    );
    assert_eq!(
        events(&state).len(),
        records,
        "a refused import writes nothing"
    );
    let (code, v, _) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "still waiting: {v}");
    // The customer signs the current document: accepted.
    let new = dir.path().join("new.json");
    let doc = send_document(&state, customer.path());
    assert_eq!(sign(&doc, &ann, &new).0, 0);
    let (code, out, err) = import(&state, &new, &ann_pub);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(install(&spec, &state, &pb, &[]).0, 0);
}

#[test]
fn an_offline_approval_needs_the_customers_own_key_and_the_phase_5_document() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("notes.md");
    std::fs::write(&doc, "# Meeting notes\nDigest: `sha256:00`\n").unwrap();
    let (key, _) = keygen(dir.path(), "ann");
    let out = dir.path().join("a.json");
    let (code, _, err) = sign(&doc, &key, &out);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not a phase-5 roles-and-resources document"),
        "{err}"
    );
    let o = realmctl()
        .args([
            "approve",
            "--offline",
            "--phase",
            "5",
            "--by",
            "Ann",
            "--document",
        ])
        .arg(&doc)
        .arg("-o")
        .arg(&out)
        .env_remove("REALMCTL_SIGNING_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("signed with your own key"),
        "{:?}",
        text(&o)
    );
    assert!(!out.exists(), "nothing written");
    // --offline never touches a state folder, and --import needs the customer's key.
    let o = realmctl()
        .args([
            "approve",
            "--offline",
            "--state",
            "s",
            "--phase",
            "5",
            "--by",
            "A",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = realmctl()
        .args(["approve", "--state", "s", "--import", "a.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--customer-key"), "{:?}", text(&o));
}
