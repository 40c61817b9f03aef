//! Auditor reports of the install engine (issue #4): insta snapshots of the Markdown, HTML
//! and JSON reports of a deterministic run (fixed clock, fixed certificate dates), the HTML
//! rendered in headless Chromium and checked not to be blank, and a canary secret (the quota
//! core's admin token) that never reaches the state folder, the output or the reports.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::common::{Pki, SpecOpts, chromium, required, write_spec};
use crate::engine_support::*;
use realmctl::engine::io::store::Store;
use realmctl::engine::model::playbook;
use realmctl::engine::model::report::{self, ReportFormat};
use realmctl::engine::run;
use realmctl::engine::{CheckOptions, Quiet, RunOptions};
use realmctl::quota::seed;
use realmctl::report::DocFormat;
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

/// Fixed test-only signing keys (made with `openssl genpkey -algorithm ed25519`), so the
/// snapshots show stable key ids: the cloud team's signs the install, the customer's the approval.
const OPERATOR_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIA3zKPL/XomWlnU9hdQabYT/dUxgQ6FeffJJfXS3F0g2
-----END PRIVATE KEY-----
";
const CUSTOMER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOaHp7STbY2+lPh5r15UxkKEqTCnazP05Gl/paP9yA4l
-----END PRIVATE KEY-----
";

fn key(pem: &str) -> Arc<realmctl::signing::SigningKey> {
    Arc::new(realmctl::signing::SigningKey::parse(pem, "test").unwrap())
}

fn fixed_clock() -> realmctl::engine::Clock {
    let tick = Arc::new(AtomicI64::new(0));
    Arc::new(move || NOW + time::Duration::milliseconds(250 * tick.fetch_add(1, Ordering::SeqCst)))
}

/// A finished deterministic install; returns (temp dir, state folder).
fn finished_install() -> (tempfile::TempDir, std::path::PathBuf) {
    finished_install_by("Ann Customer", "read and accepted")
}

/// The same, approved by `by` with `note`.
fn finished_install_by(by: &str, note: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let leaf = pki.leaf_with(&required(), |p| {
        p.not_before = datetime!(2026-11-01 0:00 UTC);
        p.not_after = datetime!(2027-11-01 0:00 UTC);
    });
    let spec_path = write_spec(
        dir.path(),
        &leaf,
        &pki.root_pem(),
        &SpecOpts {
            vpn: Some(
                "{enabled: true, peer: 198.51.100.7, routing: route-based, remoteCidrs: [192.168.10.0/24]}",
            ),
            ..Default::default()
        },
    );
    let spec = realmctl::spec::load(&spec_path).unwrap();
    let pb = playbook::load(&local_playbook(dir.path())).unwrap();
    let state = dir.path().join("state");
    let mut opts = RunOptions::new(
        "auditor-test",
        Store::local(&state),
        seed::Target::default_for(&state),
    );
    opts.checks = CheckOptions {
        concurrency: Some(4),
        now: NOW,
        ..CheckOptions::default()
    };
    opts.retry_base = std::time::Duration::from_millis(1);
    opts.clock = fixed_clock();
    opts.signing_key = Some(key(OPERATOR_KEY));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(run::install(
            &state.clone().into(),
            &spec,
            &pb,
            &opts,
            &Quiet,
        ))
        .unwrap();
    assert_eq!(format!("{:?}", r.outcome), "Waiting");
    run::approve(
        &state.clone().into(),
        5,
        by,
        Some(note),
        datetime!(2026-11-23 13:00 UTC),
        Some(key(CUSTOMER_KEY)),
    )
    .unwrap();
    let r = rt
        .block_on(run::install(
            &state.clone().into(),
            &spec,
            &pb,
            &opts,
            &Quiet,
        ))
        .unwrap();
    assert_eq!(format!("{:?}", r.outcome), "Completed");
    (dir, state)
}

fn rendered(state: &Path, format: ReportFormat) -> String {
    let rep = run::report(&state.into()).unwrap();
    let head = rep.journal_head.clone().unwrap();
    let text = report::render(&rep, format).unwrap();
    let dir = state.parent().unwrap().display().to_string();
    text.replace(&head.hash, "[HEAD]")
        .replace(&dir, "[DIR]")
        .replace(&dir.replace('/', "&#x2F;"), "[DIR]")
        .replace(&realmctl::engine::io::lock::host_name(), "[HOST]")
}

#[test]
fn markdown_report_snapshot() {
    let (_dir, state) = finished_install();
    insta::assert_snapshot!(rendered(&state, ReportFormat::Doc(DocFormat::Markdown)));
}

#[test]
fn markdown_report_renders_hostile_user_text_literally() {
    // Issue #11: user text (an approver's name and note) must not format the report, inject
    // HTML or links, or break a table or a paragraph. Parsed with a CommonMark parser.
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let by = "**Mallory** [win](https://evil.example/x) <img src=x onerror=alert(1)> | `rm` _u_ &amp; ![i](j)";
    let note = "first line\n# not a heading\n| a | b |";
    let (_dir, state) = finished_install_by(by, note);
    let md = rendered(&state, ReportFormat::Doc(DocFormat::Markdown));
    let mut text = String::new();
    for e in Parser::new_ext(&md, Options::ENABLE_TABLES) {
        match e {
            Event::Html(h) | Event::InlineHtml(h) => panic!("raw HTML in the report: {h}"),
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => {
                panic!("a link in the report: {dest_url}")
            }
            Event::Start(Tag::Emphasis) | Event::Start(Tag::Strong) => text.push('\u{1}'),
            Event::End(TagEnd::Emphasis) | Event::End(TagEnd::Strong) => text.push('\u{2}'),
            Event::Start(Tag::Heading { .. }) => text.push_str("\n#HEADING "),
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            _ => {}
        }
    }
    // The report's own bold wraps the whole name; nothing inside it is formatted.
    assert!(
        text.contains(&format!("Approved by \u{1}{by}\u{2}")),
        "the name is not shown literally:\n{text}"
    );
    assert!(
        text.contains("(\"first line # not a heading | a | b |\")"),
        "the note is not shown literally on one line:\n{text}"
    );
    assert!(
        !text.contains("#HEADING # not a heading"),
        "the note made a heading"
    );
}

#[test]
fn html_report_snapshot() {
    let (_dir, state) = finished_install();
    insta::assert_snapshot!(rendered(&state, ReportFormat::Doc(DocFormat::Html)));
}

#[test]
fn json_report_snapshot() {
    let (_dir, state) = finished_install();
    insta::assert_snapshot!(rendered(&state, ReportFormat::Json));
}

#[test]
fn html_report_is_self_contained_and_renders_in_chromium() {
    let (dir, state) = finished_install();
    let html = rendered(&state, ReportFormat::Doc(DocFormat::Html));
    crate::common::assert_self_contained(&html);
    let file = dir.path().join("report.html");
    std::fs::write(&file, &html).unwrap();
    let png = dir.path().join("shot.png");
    let pdf = dir.path().join("print.pdf");
    chromium(&file, &[format!("--screenshot={}", png.display())]);
    chromium(
        &file,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
        ],
    );
    let (ink, green, _) = crate::common::png_colours(&png);
    let total = {
        let d = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
        let info = d.read_info().unwrap();
        (info.info().width * info.info().height) as usize
    };
    assert!(
        ink * 100 > total,
        "the screenshot is blank: {ink} of {total} pixels have ink"
    );
    assert!(
        green > 200,
        "the green status badges are not visible ({green} pixels)"
    );
    let pdf_bytes = std::fs::read(&pdf).unwrap();
    assert!(
        pdf_bytes.starts_with(b"%PDF") && pdf_bytes.len() > 5_000,
        "print output"
    );
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The credentials of an install: the quota core's admin token (used by `quota.seed`) and the
/// journal signing key (issue #11). Neither may appear, in plain, base64 or URL-encoded form, in
/// any file the install, approve, unlock, report, status or audit commands leave (the state and
/// output folders, the core's database), nor in the stdout or stderr of any process the test
/// started, the quota core included.
#[test]
fn canary_credentials_never_reach_state_outputs_reports_or_the_core() {
    use crate::common::{QuotaServe, files, forms};
    use base64::Engine;
    use realmctl::quota::tokens::{Scope, mint};
    let dir = tempfile::tempdir().unwrap();
    let (canary, line) = mint(&Scope::Admin);
    let secrets_dir = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let tokens = secrets_dir.join("tokens.yaml");
    std::fs::write(&tokens, format!("{line}\n")).unwrap();
    let core_dir = dir.path().join("core");
    std::fs::create_dir_all(&core_dir).unwrap();
    let core = QuotaServe::start(core_dir.join("core.db").as_os_str(), &tokens, &[], &[]);
    let server = Server(core.child);
    let url = core.base.clone();

    // The signing key: made by keygen, named by --signing-key and by REALMCTL_SIGNING_KEY.
    let key = secrets_dir.join("ops.key");
    let o = realmctl()
        .args(["audit", "keygen", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let pem = std::fs::read_to_string(&key).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .unwrap();
    let seed = &der[der.len() - 32..];
    let mut canaries: Vec<String> = forms(&canary);
    canaries.extend(forms(&body));
    canaries.push(realmctl::crypto::hex(seed));
    canaries.extend(forms(
        &base64::engine::general_purpose::STANDARD.encode(seed),
    ));
    let raw_seed = seed.to_vec();

    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    let mut run = |args: &[&str], with_key_var: bool| {
        let mut c = realmctl();
        c.env("REALMCTL_QUOTA_TOKEN", &canary).args(args);
        if with_key_var {
            c.env("REALMCTL_SIGNING_KEY", &key);
        }
        let o = c.output().unwrap();
        outputs.push(o.stdout.clone());
        outputs.push(o.stderr.clone());
        o.status.code()
    };
    let s = state.to_str().unwrap();
    let sp = spec.to_str().unwrap();
    let p = pb.to_str().unwrap();
    let k = key.to_str().unwrap();
    let inst = [
        "-v",
        "-v",
        "install",
        "--yes",
        "-f",
        sp,
        "--state",
        s,
        "--playbook",
        p,
        "--quota-url",
        &url,
        "--quota-token-env",
        "REALMCTL_QUOTA_TOKEN",
        "--signing-key",
        k,
    ];
    assert_eq!(run(&inst, false), Some(3));
    assert_eq!(
        run(
            &["approve", "--state", s, "--phase", "5", "--by", "Ann"],
            true
        ),
        Some(0)
    );
    assert_eq!(run(&inst, false), Some(0));
    for f in ["html", "md", "json"] {
        let out = out_dir.join(format!("report.{f}"));
        let o = out.to_str().unwrap();
        assert_eq!(
            run(&["report", "--state", s, "--format", f, "-o", o], false),
            Some(0)
        );
    }
    assert_eq!(
        run(&["status", "--state", s, "--output", "json"], false),
        Some(0)
    );
    let public = format!("{k}.pub");
    assert_eq!(
        run(
            &["audit", "verify", "--state", s, "--public-key", &public],
            false
        ),
        Some(0)
    );
    assert_eq!(
        run(
            &["audit", "checkpoint", "--state", s, "--public-key", &public],
            false
        ),
        Some(0)
    );
    // The seed reached the core through the token.
    let o = realmctl()
        .args([
            "quota", "status", "--output", "json", "--realm", "acme", "--db",
        ])
        .arg(core_dir.join("core.db"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(text(&o).0.contains("acme"));
    drop(server);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let core_output = core.output.lock().unwrap().clone();
    assert!(
        !core_output.is_empty(),
        "the core printed its address at least"
    );
    outputs.push(core_output);
    assert!(
        outputs
            .iter()
            .any(|o| String::from_utf8_lossy(o).contains("signing journal records with ed25519:")),
        "the key id is announced"
    );

    let everything = files(&[&state, &out_dir, &core_dir]);
    assert!(everything.iter().any(|(p, _)| p.ends_with("journal.db")));
    assert!(everything.iter().any(|(p, _)| p.ends_with("report.md")));
    assert!(everything.iter().any(|(p, _)| p.ends_with("core.db")));
    let leaks = |bytes: &[u8]| {
        canaries
            .iter()
            .map(|c| c.as_bytes())
            .chain(std::iter::once(raw_seed.as_slice()))
            .find(|c| bytes.windows(c.len()).any(|w| w == *c))
            .map(|c| String::from_utf8_lossy(c).into_owned())
    };
    for (path, bytes) in &everything {
        assert_eq!(leaks(bytes), None, "{} leaks a credential", path.display());
    }
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(leaks(o), None, "process output {i} leaks a credential");
    }
}
