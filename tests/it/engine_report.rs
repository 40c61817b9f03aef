//! Auditor reports of the install engine (issue #4): insta snapshots of the Markdown, HTML
//! and JSON reports of a deterministic run (fixed clock, fixed certificate dates), the HTML
//! rendered in headless Chromium and checked not to be blank, and a canary secret (the quota
//! core's admin token) that never reaches the state folder, the output or the reports.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::common::{Pki, SpecOpts, required, write_spec};
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

fn fixed_clock() -> realmctl::engine::Clock {
    let tick = Arc::new(AtomicI64::new(0));
    Arc::new(move || NOW + time::Duration::milliseconds(250 * tick.fetch_add(1, Ordering::SeqCst)))
}

/// A finished deterministic install; returns (temp dir, state folder).
fn finished_install() -> (tempfile::TempDir, std::path::PathBuf) {
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(run::install(&state, &spec, &pb, &opts, &Quiet))
        .unwrap();
    assert_eq!(format!("{:?}", r.outcome), "Waiting");
    run::approve(
        &state,
        5,
        "Ann Customer",
        Some("read and accepted"),
        datetime!(2026-11-23 13:00 UTC),
    )
    .unwrap();
    let r = rt
        .block_on(run::install(&state, &spec, &pb, &opts, &Quiet))
        .unwrap();
    assert_eq!(format!("{:?}", r.outcome), "Completed");
    (dir, state)
}

fn rendered(state: &Path, format: ReportFormat) -> String {
    let rep = run::report(state).unwrap();
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
    for external in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(",
    ] {
        assert!(
            !html.contains(external),
            "external asset `{external}` in the report"
        );
    }
    let file = dir.path().join("report.html");
    std::fs::write(&file, &html).unwrap();
    let png = dir.path().join("shot.png");
    let pdf = dir.path().join("print.pdf");
    let chromium = |extra: &[String]| {
        let profile = tempfile::tempdir().unwrap();
        let o = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,1800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", file.display()))
            .output()
            .expect("chromium is installed by the README test command (apt-get install chromium)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    chromium(&[format!("--screenshot={}", png.display())]);
    chromium(&[
        format!("--print-to-pdf={}", pdf.display()),
        "--no-pdf-header-footer".into(),
    ]);

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let (mut ink, mut green, mut total) = (0usize, 0usize, 0usize);
    for px in pixels.chunks(channels) {
        total += 1;
        let (r, g, b) = (px[0], px[1], px[2]);
        if u16::from(r) + u16::from(g) + u16::from(b) < 600 {
            ink += 1;
        }
        if g > 100 && r < 60 && b < 90 {
            green += 1;
        }
    }
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

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The quota core's admin token is used by `quota.seed` and must not appear anywhere.
#[test]
fn a_canary_secret_never_reaches_state_logs_or_reports() {
    use realmctl::quota::tokens::{Scope, mint};
    let dir = tempfile::tempdir().unwrap();
    let (canary, line) = mint(&Scope::Admin);
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(&tokens, format!("{line}\n")).unwrap();
    let (child, url) = crate::common::quota_serve(&dir.path().join("core.db"), &tokens);
    let _server = Server(child);

    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let o = realmctl()
            .env("REALMCTL_QUOTA_TOKEN", &canary)
            .args(args)
            .output()
            .unwrap();
        outputs.push(String::from_utf8_lossy(&o.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&o.stderr).into_owned());
        o.status.code()
    };
    let s = state.to_str().unwrap();
    let sp = spec.to_str().unwrap();
    let p = pb.to_str().unwrap();
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
    ];
    assert_eq!(run(&inst), Some(3));
    assert_eq!(
        run(&["approve", "--state", s, "--phase", "5", "--by", "Ann"]),
        Some(0)
    );
    assert_eq!(run(&inst), Some(0));
    for f in ["html", "md", "json"] {
        assert_eq!(run(&["report", "--state", s, "--format", f]), Some(0));
    }
    assert_eq!(run(&["status", "--state", s, "--output", "json"]), Some(0));
    assert_eq!(run(&["audit", "verify", "--state", s]), Some(0));
    // The seed reached the core through the token.
    let o = realmctl()
        .args([
            "quota", "status", "--output", "json", "--realm", "acme", "--db",
        ])
        .arg(dir.path().join("core.db"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    for (i, out) in outputs.iter().enumerate() {
        assert!(!out.contains(&canary), "output {i} leaks the token: {out}");
    }
    let mut files = Vec::new();
    files_under(&state, &mut files);
    assert!(files.iter().any(|f| f.ends_with("journal.db")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{} contains the token",
            f.display()
        );
    }
}
