//! `realmctl fleet` over 1,000 state folders (issue #20), section `fleet` of
//! `docs/benchmarks.md`: one real install's folder (the engine run in-process over a playbook of
//! 40 no-op steps, so its journal holds what a finished install journals) copied into 1,000
//! folders; the release binary reads them all (`--output json` to /dev/null), timed end to end
//! under GNU time for its peak memory. Goal: under a second.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use realmctl::engine::{Quiet, run};

use super::{install_options, median, multi_thread, noop_playbook, spec};
use crate::support;

const FOLDERS: usize = 1_000;
const ROUNDS: usize = 5;

/// One finished install's state folder at `dir/template`; its journal's record count.
fn template(dir: &Path) -> (std::path::PathBuf, u64) {
    let state = dir.join("template");
    let spec = spec(dir);
    let pb = noop_playbook(40);
    let opts = install_options(&state);
    let rt = multi_thread();
    rt.block_on(run::install(
        &state.clone().into(),
        &spec,
        &pb,
        &opts,
        &Quiet,
    ))
    .unwrap();
    let records = realmctl::engine::io::journal::Journal::open_read_only(&state)
        .unwrap()
        .head()
        .unwrap()
        .unwrap()
        .0;
    (state, records)
}

pub fn run(out: &mut String) {
    let dir = tempfile::tempdir().unwrap();
    let (template, records) = template(dir.path());
    let root = dir.path().join("realms");
    for i in 0..FOLDERS {
        let d = root.join(format!("realm-{i:04}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(template.join("journal.db"), d.join("journal.db")).unwrap();
    }
    let rss = dir.path().join("rss");
    let mut walls = Vec::new();
    let mut peak = 0f64;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let o = support::under_time(env!("CARGO_BIN_EXE_realmctl").as_ref(), &rss)
            .args(["fleet", "--output", "json", "--on", "2026-12-06"])
            .arg(&root)
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap();
        walls.push(t.elapsed().as_secs_f64());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        peak = peak.max(support::peak_rss_mib(&rss));
    }
    let wall = median(walls);
    let _ = writeln!(out, "### `fleet` over {FOLDERS} state folders\n");
    let _ = writeln!(
        out,
        "{FOLDERS} folders, each a copy of one finished install's journal ({records} records: runs, 40 steps, their results). The release binary reads every folder (chain check of every record, fold, lock file) and prints JSON to /dev/null; wall time of the whole process, median of {ROUNDS} rounds, warm page cache; peak RSS from GNU time.\n"
    );
    let _ = writeln!(
        out,
        "| folders | records read | wall time (goal < 1 s) | peak RSS |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(
        out,
        "| {FOLDERS} | {} | {:.0} ms ({}) | {peak:.1} MiB |\n",
        FOLDERS as u64 * records,
        wall * 1000.0,
        if wall < 1.0 { "met" } else { "MISSED" }
    );
}
