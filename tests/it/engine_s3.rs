//! Phase 4/5 artifacts in S3 (issue #4), against moto's S3 server on loopback (PyPI
//! `moto[server]`, installed by the README test command): the spec names a bucket, objects
//! land under `<prefix>/<realm>/run-N/`, the journal records their URLs and SHA-256, and
//! `audit verify` reads them back, catching a replaced or deleted object.

use crate::common::{SpecOpts, moto};
use crate::engine_support::*;
use realmctl::crypto::sha256_hex;

/// Creates a bucket (moto accepts an unsigned CreateBucket).
fn create_bucket(url: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent.put(url).send_empty().unwrap().status().as_u16()
}

/// The bucket through object_store with the same credentials (moto refuses anonymous reads).
struct Bucket {
    store: Box<dyn object_store::ObjectStore>,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    fn new(endpoint: &str) -> Self {
        let url = url::Url::parse("s3://realm-artifacts").unwrap();
        let (store, _) = object_store::parse_url_opts(
            &url,
            [
                ("aws_access_key_id", "testing"),
                ("aws_secret_access_key", "testing"),
                ("aws_region", "us-east-1"),
                ("aws_endpoint", endpoint),
                ("aws_allow_http", "true"),
            ],
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bucket { store, rt }
    }
    fn get(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        self.rt.block_on(async {
            let p = object_store::path::Path::from(key);
            self.store
                .get(&p)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        })
    }
    fn put(&self, key: &str, body: &str) {
        use object_store::ObjectStoreExt;
        self.rt.block_on(async {
            let p = object_store::path::Path::from(key);
            self.store.put(&p, body.to_owned().into()).await.unwrap();
        });
    }
    fn delete(&self, key: &str) {
        use object_store::ObjectStoreExt;
        self.rt.block_on(async {
            let p = object_store::path::Path::from(key);
            self.store.delete(&p).await.unwrap();
        });
    }
}

#[test]
fn artifacts_go_to_the_bucket_and_verify_reads_them_back() {
    let m = moto();
    let endpoint = format!("http://127.0.0.1:{}", m.port);
    assert_eq!(create_bucket(&format!("{endpoint}/realm-artifacts")), 200);

    let dir = tempfile::tempdir().unwrap();
    // The spec's cloud endpoint is the emulator: the S3 store signs with the EKS provider's
    // credential chain (issue #9: one identity for the cloud calls and the artifacts).
    let spec = spec(
        dir.path(),
        SpecOpts {
            endpoint: Some(endpoint.clone()),
            ..SpecOpts::default()
        },
    );
    let mut spec_text = std::fs::read_to_string(&spec).unwrap();
    spec_text.push_str("artifacts: {bucket: \"s3://realm-artifacts/installs\"}\n");
    std::fs::write(&spec, spec_text).unwrap();
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let bucket = Bucket::new(&endpoint);
    let with_aws = |c: &mut assert_cmd::Command| {
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret-never-written")
            .env("AWS_DEFAULT_REGION", "us-east-1");
    };
    let run = |args: &[&str]| {
        let mut c = realmctl();
        with_aws(&mut c);
        let o = c.args(args).output().unwrap();
        (o.status.code(), text(&o))
    };
    let (s, sp, p) = (
        state.to_str().unwrap(),
        spec.to_str().unwrap(),
        pb.to_str().unwrap(),
    );
    let inst = ["install", "--yes", "-f", sp, "--state", s, "--playbook", p];
    assert_eq!(run(&inst).0, Some(3), "{:?}", run(&inst).1);
    approve(&state, 5);
    assert_eq!(run(&inst).0, Some(0));
    assert!(!state.join("artifacts").exists(), "nothing stored locally");

    let (code, (out, _)) = run(&["report", "--format", "json", "--state", s]);
    assert_eq!(code, Some(0));
    let rep: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arts: Vec<serde_json::Value> = rep["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap().clone())
        .flat_map(|s| s["artifacts"].as_array().unwrap().clone())
        .collect();
    assert_eq!(
        arts.len(),
        5,
        "four install artifacts and the roles document"
    );
    for a in &arts {
        let loc = a["location"].as_str().unwrap();
        let key = loc
            .strip_prefix("s3://realm-artifacts/")
            .unwrap_or_else(|| panic!("{loc}"));
        assert!(key.starts_with("installs/acme/run-1/"), "{key}");
        let body = bucket.get(key);
        assert_eq!(sha256_hex(&body), a["sha256"].as_str().unwrap(), "{key}");
    }
    // The auditor names the bucket (through the spec); without it the objects are not read.
    let (code, (out, _)) = run(&["audit", "verify", "--state", s]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("help: give the realm spec (-f realm.yaml)"),
        "{out}"
    );
    let (code, (out, _)) = run(&["audit", "verify", "--state", s, "-f", sp]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("5 artifact checksums hold"), "{out}");

    // Issue #16: the journal's recorded endpoint is never where the auditor's credentials go.
    // Pointed at a listener on another loopback address — by an edit (the chain breaks) or a
    // full, careful rechain (no signatures are required here) — the listener hears nothing:
    // a broken journal fetches no artifact at all, and an intact one reads from the bucket
    // the auditor's spec names.
    let trap = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let trap_url = format!("http://{}", trap.local_addr().unwrap());
    trap.set_nonblocking(true).unwrap();
    rusqlite::Connection::open(state.join("journal.db"))
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let pristine = dir.path().join("pristine");
    std::fs::create_dir_all(&pristine).unwrap();
    std::fs::copy(state.join("journal.db"), pristine.join("journal.db")).unwrap();
    let tamper = |rechain: bool| {
        std::fs::copy(pristine.join("journal.db"), state.join("journal.db")).unwrap();
        let c = crate::engine_audit::attacker(&state);
        let mut rs = crate::engine_audit::records(&state);
        for r in &mut rs {
            if r.kind == "runStarted" {
                r.payload = r.payload.replace(&endpoint, &trap_url);
                assert!(r.payload.contains(&trap_url), "{}", r.payload);
            }
        }
        if rechain {
            crate::engine_audit::rechain(&mut rs);
        }
        crate::engine_audit::rewrite(&c, &rs);
    };
    tamper(false);
    let (code, (out, _)) = run(&["audit", "verify", "--state", s, "-f", sp]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED"), "{out}");
    tamper(true);
    let (code, (out, _)) = run(&["audit", "verify", "--state", s, "-f", sp]);
    assert_eq!(
        code,
        Some(0),
        "read from the spec's bucket, not the journal's: {out}"
    );
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the listener the journal names was contacted"
    );
    std::fs::copy(pristine.join("journal.db"), state.join("journal.db")).unwrap();

    // Someone replaces the roles document in the bucket, and deletes the install script.
    bucket.put(
        "installs/acme/run-1/roles-and-resources.md",
        "| iam:* | all |",
    );
    bucket.delete("installs/acme/run-1/install.sh");
    let (code, (out, _)) = run(&["audit", "verify", "--state", s, "-f", sp]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("artifact roles-and-resources.md") && out.contains("checksum is"),
        "{out}"
    );
    assert!(
        out.contains("artifact install.sh") && out.contains("missing"),
        "{out}"
    );

    // Credentials never reach the state folder.
    let db = std::fs::read(state.join("journal.db")).unwrap();
    let secret = b"testing-secret-never-written";
    assert!(!db.windows(secret.len()).any(|w| w == secret));
}
