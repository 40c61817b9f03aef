//! Shared by the bench binaries: writing a result section into `docs/benchmarks.md`.

/// Replaces the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`.
pub fn write_section(path: &str, name: &str, body: &str) {
    let (start, end) = (
        format!("<!-- bench:{name}:start -->"),
        format!("<!-- bench:{name}:end -->"),
    );
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let new = match (old.find(&start), old.find(&end)) {
        (Some(s), Some(e)) if e > s => format!("{}{start}\n{body}{}", &old[..s], &old[e..]),
        _ => format!("{old}\n{start}\n{body}{end}\n"),
    };
    std::fs::write(path, new).unwrap();
}

/// Whether the binary runs under `cargo bench` (not `cargo test --benches`).
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A header line saying when and where the numbers were measured.
pub fn stamp(bench: &str) -> String {
    format!(
        "Measured {} on {} CPU(s) by `cargo bench --bench {bench}` (release build).\n\n",
        time::OffsetDateTime::now_utc().date(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// `program` run under GNU time (Debian package `time`, installed by `scripts/test.sh`), which
/// writes the process's peak resident set size (`ru_maxrss`, KiB) to `rss_file` when it exits.
#[allow(dead_code)]
pub fn under_time(program: &std::ffi::OsStr, rss_file: &std::path::Path) -> std::process::Command {
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "the peak-memory rows need GNU time: apt-get install time (scripts/test.sh does)"
    );
    let mut c = std::process::Command::new("/usr/bin/time");
    c.arg("-o")
        .arg(rss_file)
        .args(["-f", "%M", "--"])
        .arg(program);
    c
}

/// The peak RSS GNU time wrote, in MiB.
#[allow(dead_code)]
pub fn peak_rss_mib(rss_file: &std::path::Path) -> f64 {
    let text = std::fs::read_to_string(rss_file).unwrap();
    let kib: f64 = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak RSS in {text:?}"));
    kib / 1024.0
}

/// The process id of the one child of `pid` (the program GNU time runs).
#[allow(dead_code)]
pub fn only_child(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("a child process")
        .parse()
        .unwrap()
}
