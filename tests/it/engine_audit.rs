//! Mutation tests of the tamper-evident journal (issue #4): every single-record modify,
//! delete, reorder and insert on a real journal is detected and the first bad record named;
//! a cut-off end or a rewritten tail is caught with the auditor's checkpoint; a changed
//! artifact fails its checksum. The attacker edits the SQLite file directly (dropping the
//! append-only triggers first), as someone with the file would.

use std::path::{Path, PathBuf};

use crate::common::SpecOpts;
use crate::engine_support::*;
use realmctl::engine::audit;
use realmctl::engine::io::journal::Journal;
use realmctl::engine::io::store::Store;
use realmctl::engine::model::chain;
use realmctl::engine::model::record::{Record, record_hash};
use rusqlite::{Connection, params};

/// A finished install's state folder (about twenty records).
fn journal() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    assert_eq!(install(&spec, &state, &pb, &[]).0, 3);
    approve(&state, 5);
    assert_eq!(install(&spec, &state, &pb, &[]).0, 0);
    (dir, state)
}

fn copy_state(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    // Checkpoint the WAL into the main file so a plain copy carries every record.
    Connection::open(from.join("journal.db"))
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    std::fs::copy(from.join("journal.db"), to.join("journal.db")).unwrap();
    copy_dir(&from.join("artifacts"), &to.join("artifacts"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn attacker(state: &Path) -> Connection {
    let c = Connection::open(state.join("journal.db")).unwrap();
    c.execute_batch("DROP TRIGGER records_no_update; DROP TRIGGER records_no_delete;")
        .unwrap();
    c
}

fn records(state: &Path) -> Vec<Record> {
    Journal::open(state).unwrap().records().unwrap()
}

fn verdict(state: &Path, checkpoint: Option<chain::Checkpoint>) -> Option<chain::Break> {
    let j = Journal::open(state).unwrap();
    let store = Store::local(state);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v = rt.block_on(audit::verify(&j, &store, checkpoint)).unwrap();
    v.chain_break
}

fn put(c: &Connection, r: &Record) {
    c.execute(
        "INSERT INTO records (seq, at, kind, payload, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![r.seq as i64, r.at, r.kind, r.payload, r.prev, r.hash],
    )
    .unwrap();
}

fn rewrite(c: &Connection, rs: &[Record]) {
    c.execute("DELETE FROM records", []).unwrap();
    for r in rs {
        put(c, r);
    }
}

/// Recomputes every hash from `from` on, as a careful forger would.
fn rechain(rs: &mut [Record]) {
    for i in 0..rs.len() {
        if i > 0 {
            rs[i].prev = rs[i - 1].hash.clone();
        }
        rs[i].hash = record_hash(
            &rs[i].prev,
            rs[i].seq,
            &rs[i].at,
            &rs[i].kind,
            &rs[i].payload,
        );
    }
}

#[test]
fn every_single_record_mutation_is_detected_and_named() {
    let (dir, state) = journal();
    let original = records(&state);
    let n = original.len();
    assert!(n >= 15, "{n} records");
    let head = chain::verify_chain(&original, None).unwrap().unwrap();
    assert!(
        verdict(&state, Some(head.clone())).is_none(),
        "the intact journal verifies"
    );

    let work = dir.path().join("work");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&work);
        copy_state(&state, &work);
        std::fs::create_dir_all(&work).unwrap();
        work.clone()
    };
    for i in 0..n {
        let seq = original[i].seq;
        // Modify: one character of the payload.
        let w = fresh();
        let mut m = original[i].payload.clone();
        m = m.replacen("\"", "\" ", 1);
        attacker(&w)
            .execute(
                "UPDATE records SET payload = ?1 WHERE seq = ?2",
                params![m, seq as i64],
            )
            .unwrap();
        assert_eq!(
            verdict(&w, None),
            Some(chain::Break::Modified { seq }),
            "modify {seq}"
        );
        // Modify the timestamp only.
        let w = fresh();
        attacker(&w)
            .execute(
                "UPDATE records SET at = '2020-01-01T00:00:00Z' WHERE seq = ?1",
                params![seq as i64],
            )
            .unwrap();
        assert_eq!(
            verdict(&w, None),
            Some(chain::Break::Modified { seq }),
            "modify at {seq}"
        );
        // Delete.
        let w = fresh();
        attacker(&w)
            .execute("DELETE FROM records WHERE seq = ?1", params![seq as i64])
            .unwrap();
        if i + 1 < n {
            assert_eq!(
                verdict(&w, None),
                Some(chain::Break::Missing {
                    seq,
                    found: seq + 1
                }),
                "delete {seq}"
            );
        } else {
            assert_eq!(
                verdict(&w, None),
                None,
                "cutting the last record needs the checkpoint"
            );
            assert_eq!(
                verdict(&w, Some(head.clone())).map(|b| b.seq()),
                Some(seq),
                "delete last"
            );
        }
        // Reorder: swap with the next record (positions kept, contents swapped).
        if i + 1 < n {
            let w = fresh();
            let mut rs = original.clone();
            let (a, b) = (rs[i].clone(), rs[i + 1].clone());
            rs[i] = Record {
                seq: a.seq,
                ..b.clone()
            };
            rs[i + 1] = Record { seq: b.seq, ..a };
            rewrite(&attacker(&w), &rs);
            assert_eq!(
                verdict(&w, None).map(|b| b.seq()),
                Some(seq),
                "reorder {seq}"
            );
            // Reorder and renumber carefully: caught where the chain breaks.
            let w = fresh();
            let mut rs = original.clone();
            rs.swap(i, i + 1);
            for (k, r) in rs.iter_mut().enumerate() {
                r.seq = k as u64 + 1;
            }
            rewrite(&attacker(&w), &rs);
            assert_eq!(
                verdict(&w, None).map(|b| b.seq()),
                Some(seq),
                "reorder+renumber {seq}"
            );
        }
        // Insert a well-formed, correctly hashed record after this one.
        if i + 1 < n {
            let w = fresh();
            let mut rs = original.clone();
            let forged_event = realmctl::engine::model::event::Event::Approved {
                phase: 5,
                by: "mallory".into(),
                note: None,
                covers: "x".into(),
            };
            let payload = serde_json::to_string(&forged_event).unwrap();
            let prev = rs[i].hash.clone();
            let at = rs[i].at.clone();
            let forged = Record {
                seq: seq + 1,
                hash: record_hash(&prev, seq + 1, &at, "approved", &payload),
                at,
                kind: "approved".into(),
                payload,
                prev,
            };
            for r in rs.iter_mut().skip(i + 1) {
                r.seq += 1;
            }
            rs.insert(i + 1, forged);
            rewrite(&attacker(&w), &rs);
            assert_eq!(
                verdict(&w, None).map(|b| b.seq()),
                Some(seq + 2),
                "insert after {seq}: the record after the forgery no longer chains"
            );
        }
    }
}

#[test]
fn a_rewritten_or_cut_tail_is_caught_with_the_auditors_checkpoint() {
    let (dir, state) = journal();
    let original = records(&state);
    let o = realmctl()
        .args(["audit", "checkpoint", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let cp = text(&o).0.trim().to_owned();
    assert_eq!(
        cp,
        format!(
            "{}:{}",
            original.last().unwrap().seq,
            original.last().unwrap().hash
        )
    );
    assert_eq!(verify(&state, Some(&cp)).0, 0);

    // A forger changes who approved and recomputes every later hash: the chain is valid again...
    let w = dir.path().join("w1");
    copy_state(&state, &w);
    let mut rs = original.clone();
    let a = rs.iter().position(|r| r.kind == "approved").unwrap();
    rs[a].payload = rs[a].payload.replace("Ann Customer", "Mallory");
    rechain(&mut rs);
    rewrite(&attacker(&w), &rs);
    assert_eq!(verify(&w, None).0, 0, "undetectable without a kept head");
    // ...but not the auditor's checkpoint.
    let (code, out) = verify(&w, Some(&cp));
    assert_eq!(code, 1);
    assert!(out.contains("is not in the journal"), "{out}");

    // Cutting the last three records.
    let w = dir.path().join("w2");
    copy_state(&state, &w);
    let c = attacker(&w);
    let last = original.last().unwrap().seq as i64;
    c.execute("DELETE FROM records WHERE seq > ?1", params![last - 3])
        .unwrap();
    drop(c);
    let (code, out) = verify(&w, Some(&cp));
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("head is record {}", last - 3)),
        "{out}"
    );

    // A bad checkpoint argument is bad input.
    let o = realmctl()
        .args(["audit", "verify", "--checkpoint", "12:xyz", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_changed_or_missing_artifact_fails_its_checksum() {
    let (_dir, state) = journal();
    let roles = state.join("artifacts/run-1/roles-and-resources.md");
    let mut t = std::fs::read_to_string(&roles).unwrap();
    t.push_str("\n| iam:* | convenience |\n");
    std::fs::write(&roles, t).unwrap();
    std::fs::remove_file(state.join("artifacts/run-1/install.sh")).unwrap();
    let (code, out) = verify(&state, None);
    assert_eq!(code, 1);
    assert!(
        out.contains("artifact roles-and-resources.md") && out.contains("checksum is"),
        "{out}"
    );
    assert!(
        out.contains("artifact install.sh") && out.contains("missing"),
        "{out}"
    );
}

#[test]
fn cli_verify_names_the_first_bad_record() {
    let (_dir, state) = journal();
    attacker(&state)
        .execute("UPDATE records SET payload = replace(payload, 'Ann Customer', 'Mallory') WHERE kind = 'approved'", [])
        .unwrap();
    let seq: i64 = Connection::open(state.join("journal.db"))
        .unwrap()
        .query_row("SELECT seq FROM records WHERE kind = 'approved'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let (code, out) = verify(&state, None);
    assert_eq!(code, 1);
    assert!(out.contains(&format!("record {seq} was modified")), "{out}");
    let o = realmctl()
        .args(["audit", "verify", "--output", "json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["chainBreak"]["seq"], seq);
}
