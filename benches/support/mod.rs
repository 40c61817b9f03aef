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
