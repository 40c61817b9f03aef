//! The outside probe's findings of issue #16, one regression test each, through the binary:
//! credentials in URLs never echoed, a deadline on the access checks, a live install told
//! from a dead one, journals that are FIFOs or unreadable named as such with exit 1, and the
//! cloud's strings (control sequences, a foreign name) kept out of terminals and files.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{AwsStandIn, SpecOpts};
use crate::engine_support::*;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Regression: a password in `cloud.endpoint` or `artifacts.bucket` userinfo was printed in
/// the error text and the JSON output.
#[test]
fn credentials_in_an_endpoint_or_bucket_url_are_refused_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        SpecOpts {
            endpoint: Some("https://ops:hunter2-endpoint@eks.example.com".into()),
            ..SpecOpts::default()
        },
    );
    let mut t = std::fs::read_to_string(&spec).unwrap();
    t.push_str("artifacts: {bucket: \"s3://ops:hunter2-bucket@realm-artifacts/x\"}\n");
    std::fs::write(&spec, t).unwrap();
    for output in ["text", "json"] {
        let o = realmctl()
            .args(["validate", "--output", output, "-f"])
            .arg(&spec)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{out} {err}");
        let all = format!("{out}{err}");
        assert!(all.contains("holds credentials"), "{all}");
        assert!(all.contains("***@"), "{all}");
        for secret in ["hunter2-endpoint", "hunter2-bucket", "ops:"] {
            assert!(!all.contains(secret), "{secret} echoed: {all}");
        }
    }
}

/// A loopback listener that accepts and never answers (`trickle`: sends one byte a second).
fn stuck_endpoint(trickle: bool) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = c.read(&mut buf);
                for b in b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"
                    .iter()
                    .cycle()
                    .take(120)
                {
                    if trickle && c.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    url
}

/// Regression: `preflight --only access` against an endpoint that accepts and never answers
/// (or trickles a byte a second) ran past 400 s. Each access step has a deadline; the category
/// reports within it (the first step fails, so only one deadline passes), below 2 × it.
#[test]
fn the_access_category_reports_within_its_deadline_whatever_the_endpoint_does() {
    for trickle in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(
            dir.path(),
            SpecOpts {
                endpoint: Some(stuck_endpoint(trickle)),
                ..SpecOpts::default()
            },
        );
        let deadline = Duration::from_millis(1500);
        let t0 = Instant::now();
        let o = realmctl()
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(["preflight", "--only", "access", "--output", "json"])
            .args(["--access-timeout-ms", &deadline.as_millis().to_string()])
            .arg("-f")
            .arg(&spec)
            .output()
            .unwrap();
        let took = t0.elapsed();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out} {err}");
        assert!(
            took < deadline * 2,
            "trickle={trickle}: the access category took {took:?}, deadline {deadline:?}"
        );
        assert!(
            took >= deadline.mul_f64(0.9),
            "{took:?}: the deadline was not what stopped it"
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let c = &v["checks"][0];
        assert_eq!(c["id"], "access.credentials", "{v}");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("gave no complete answer within 1.5 s"),
            "{v}"
        );
    }
}

/// Regression: `status` during a live install said the run "was interrupted (the process
/// died)" and advised `unlock`.
#[cfg(feature = "test-actions")]
#[test]
fn status_of_a_running_install_says_it_is_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let d = dir.path().join("effects");
    std::fs::create_dir_all(&d).unwrap();
    let pb = sparse_playbook(
        dir.path(),
        &[(
            1,
            format!(
                "{{id: slow, action: test.effect, params: {{dir: \"{}\", sleepMs: 20000}}}}",
                d.display()
            ),
        )],
    );
    let state = dir.path().join("state");
    let mut child = crate::common::realmctl_std()
        .args(["install", "--yes", "-f"])
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
    let summary = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(100));
        if !state.join("journal.db").exists() {
            continue;
        }
        // The journal file exists a moment before its first record is committed.
        let o = realmctl()
            .args(["status", "--output", "json", "--state"])
            .arg(&state)
            .output()
            .unwrap();
        if o.status.code() != Some(0) {
            continue;
        }
        let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if st["report"]["phases"][0]["steps"][0]["status"] == "interrupted" {
            break st["report"]["summary"].as_str().unwrap().to_owned();
        }
    };
    let o = realmctl()
        .args(["status", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let out = text(&o).0;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(summary.contains("run 1 is in progress"), "{summary}");
    assert!(
        !out.contains("interrupted") && !out.contains("unlock"),
        "{out}"
    );
    // Once the process is gone, the same journal is an interrupted run.
    let st = status(&state);
    assert!(
        st["report"]["summary"]
            .as_str()
            .unwrap()
            .contains("was interrupted"),
        "{st}"
    );
}

/// Regression: a journal that is a FIFO was called "truncated", and one the user may not read
/// was "not a realmctl journal"; environment failures exited 2 ("bad input") on some commands.
#[test]
fn a_fifo_or_unreadable_journal_is_named_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(state.join("journal.db"))
            .status()
            .unwrap()
            .success()
    );
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is a named pipe (FIFO), not a journal file"),
        "{err}"
    );
    assert!(!err.contains("truncated"), "{err}");
    for args in [
        &["status"][..],
        &["report", "--format", "md"],
        &["audit", "verify"],
    ] {
        let o = realmctl()
            .args(args)
            .arg("--state")
            .arg(&state)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out} {err}");
        assert!(
            format!("{out}{err}").contains("named pipe"),
            "{args:?}: {out} {err}"
        );
    }
    // A journal only its owner may read, opened by another user.
    if is_root() {
        let state = dir.path().join("state2");
        let (code, _, err) = install(&spec, &state, &pb, &[]);
        assert_eq!(code, 3, "{err}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            state.join("journal.db"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        for args in [&["status"][..], &["approve", "--phase", "5", "--by", "x"]] {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(assert_cmd::cargo::cargo_bin("realmctl"))
                .args(args)
                .arg("--state")
                .arg(&state);
            crate::common::isolate(&mut c);
            let o = c.output().unwrap();
            let (out, err) = text(&o);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {out} {err}");
            assert!(err.contains("ermission denied"), "{args:?}: {err}");
            assert!(!err.contains("not a realmctl journal"), "{args:?}: {err}");
        }
    }
}

/// Regression: ESC/OSC sequences in a cloud's health message reached the terminal and the
/// Markdown report, and a cluster the cloud described under another name was taken for the
/// realm's. Control sequences are escaped wherever they land; the foreign name is a conflict.
#[test]
fn control_sequences_from_the_cloud_never_reach_terminals_or_reports() {
    let aws = AwsStandIn::start(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let (spec, pb, state) = crate::eks_install::case(&aws, dir.path(), "digibee-acme");
    let run = |args: &[&str]| {
        let o = realmctl()
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), o.stdout, o.stderr)
    };
    let (s, st, p) = (
        spec.to_str().unwrap(),
        state.to_str().unwrap(),
        pb.to_str().unwrap(),
    );
    let install = [
        "install",
        "--yes",
        "--retry-base-ms",
        "10",
        "-f",
        s,
        "--state",
        st,
        "--playbook",
        p,
    ];
    assert_eq!(run(&install).0, Some(3));
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    // The cluster this realm would build is there already, failed, with a hostile message.
    let hostile = "boom\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u{9b}31m\nnext: forged line";
    {
        let def = crate::approved_definition::approved_definition(&state);
        let mut w = aws.world();
        w.clusters.insert(
            def.cluster.name.clone(),
            realmctl_standins::Cluster {
                name: def.cluster.name.clone(),
                version: def.cluster.kubernetes_version.clone(),
                api: realmctl_standins::ApiEndpoint {
                    private: true,
                    public: false,
                    public_cidrs: vec![],
                },
                subnets: def.cluster.network.subnets.clone(),
                identity: def.cluster.control_plane_identity.clone(),
                tags: def.cluster.tags.clone(),
                created: Instant::now(),
                created_epoch: 0.0,
                fail: Some(hostile.into()),
                deleting: false,
                updating: None,
            },
        );
    }
    let (code, out, err) = run(&install);
    assert_eq!(code, Some(1));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    assert!(
        said.contains("will not become ready: it failed: boom"),
        "{said}"
    );
    let mut outputs = vec![out, err];
    for args in [
        &["status", "--state", st][..],
        &["report", "--format", "md", "--state", st],
        &["report", "--format", "json", "--state", st],
    ] {
        let (_, out, err) = run(args);
        outputs.push(out);
        outputs.push(err);
    }
    for o in &outputs {
        for bad in [&b"\x1b"[..], "\u{9b}".as_bytes(), b"\x07"] {
            assert!(
                !o.windows(bad.len()).any(|w| w == bad),
                "a control byte reached the output: {}",
                String::from_utf8_lossy(o)
            );
        }
        assert!(
            !String::from_utf8_lossy(o)
                .lines()
                .any(|l| l.starts_with("next: forged")),
            "a forged line: {}",
            String::from_utf8_lossy(o)
        );
    }
    // A cluster the cloud describes under another name is not the realm's.
    {
        let mut w = aws.world();
        let def = crate::approved_definition::approved_definition(&state);
        let c = w.clusters.get_mut(&def.cluster.name).unwrap();
        c.fail = None;
        c.name = format!("{}\nx: y", def.cluster.name);
    }
    let (code, out, err) = run(&install);
    assert_eq!(code, Some(1));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    assert!(said.contains("name: the cloud has"), "{said}");
    assert!(
        aws.world().pools.is_empty(),
        "nothing built on a foreign cluster"
    );
    let kubeconfig = Path::new(st).join("kubeconfig");
    assert!(!kubeconfig.exists());
}

/// Regression: `report -o` and `preflight --report` followed a symbolic link over an existing
/// file and blocked on a FIFO.
#[test]
fn reports_are_never_written_through_a_link_or_into_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    assert_eq!(install(&spec, &state, &pb, &[]).0, 3);
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let link = dir.path().join("report.md");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let fifo = dir.path().join("report.html");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let bounded = |c: std::process::Command| {
        let (code, err, _) =
            crate::common::run_bounded(c, Duration::from_secs(20), "writing onto the FIFO");
        (code, err)
    };
    for (format, out) in [("md", &link), ("html", &fifo)] {
        let mut c = crate::common::realmctl_std();
        c.args(["report", "--format", format, "--state"])
            .arg(&state)
            .arg("-o")
            .arg(out);
        let (code, err) = bounded(c);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("refusing to write through it"), "{err}");
    }
    let mut c = crate::common::realmctl_std();
    c.args(["preflight", "--only", "certificate", "-f"])
        .arg(&spec)
        .arg("--report")
        .arg(&fifo);
    let (code, err) = bounded(c);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    // A regular path is written (and replaced) as before.
    let fine = dir.path().join("fine.md");
    for _ in 0..2 {
        let o = realmctl()
            .args(["report", "--format", "md", "--state"])
            .arg(&state)
            .arg("-o")
            .arg(&fine)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
    }
    assert!(std::fs::read_to_string(&fine).unwrap().contains("acme"));
}
