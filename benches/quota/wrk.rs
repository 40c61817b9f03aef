//! Durable HTTP admissions against the same server's `/healthz`, measured with `wrk` (issue
//! #21, item 5): a load generator nobody here wrote, in its own process, against the real
//! `realmctl quota serve` binary (SQLite, `synchronous=FULL`, group commit).
//!
//! Like for like: both sides are `wrk -t1 -c64` (64 keep-alive connections, one wrk thread on
//! this machine's two cores) with the same per-request Lua call returning a request built in
//! `init`, against the same server process, in rounds that alternate `/healthz` and admissions
//! so the machine's noise falls on both. Every admission redeploys one of 2,000 pipelines of
//! one realm with a new minor version and replica count (a realm's steady state: pipelines
//! redeployed, not a new pipeline per request), and is answered only after its commit is on
//! disk. After the rounds the ledger is read back: it must hold at least as many admissions as
//! wrk saw answered, and wrk must have seen no answer but 200.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Pipelines the admissions redeploy.
const PIPELINES: usize = 2000;
/// Rounds of (`/healthz`, admissions).
const ROUNDS: usize = 5;
/// Seconds per wrk run.
const SECS: u32 = 8;

/// The admissions: request `n` redeploys pipeline `n % PIPELINES` with minor `n / PIPELINES`
/// and 1 to 10 replicas.
const ADMISSIONS: &str = r#"
local token = os.getenv("QUOTA_TOKEN")
local reqs, n, count = {}, 0, 10 * PIPELINES
init = function(args)
  for i = 0, count - 1 do
    local k = math.floor(i / PIPELINES)
    local body = string.format('{"environment":"prod","pipeline":"p%d","version":"1.%d","size":"small","replicas":%d}', i % PIPELINES, k, 1 + (k % 10))
    reqs[i + 1] = wrk.format("POST", "/v1/realms/bench0/deployments",
      {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
  end
end
request = function()
  n = n % count + 1
  return reqs[n]
end
"#;

/// `/healthz` through the same per-request Lua call.
const HEALTHZ: &str = r#"
local token = os.getenv("QUOTA_TOKEN")
local req
init = function(args)
  req = wrk.format("GET", "/healthz", {["Authorization"] = "Bearer " .. token}, nil)
end
request = function()
  return req
end
"#;

/// One wrk run: (requests/s, requests completed). Panics on any non-2xx answer or socket error.
fn wrk(base: &str, script: &Path, token: &str, secs: u32) -> (f64, u64) {
    let o = Command::new("wrk")
        .args(["-t1", "-c64", &format!("-d{secs}s"), "-s"])
        .arg(script)
        .arg(base)
        .env("QUOTA_TOKEN", token)
        .output()
        .expect("wrk (Debian package `wrk`) runs");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        !text.contains("Non-2xx") && !text.contains("Socket errors"),
        "{text}"
    );
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let done = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    (rate, done)
}

/// The section: every round's pair, the median and the lowest ratio.
pub fn measure(out: &mut String, dir: &Path) {
    if Command::new("wrk").arg("--version").output().is_err() {
        let _ = writeln!(
            out,
            "### SQLite over HTTP with wrk\n\nnot measured: `wrk` is not installed (Debian package `wrk`).\n"
        );
        return;
    }
    let db = dir.join("wrk.db");
    let adm = dir.join("admissions.lua");
    let hz = dir.join("healthz.lua");
    std::fs::write(
        &adm,
        ADMISSIONS.replace("PIPELINES", &PIPELINES.to_string()),
    )
    .unwrap();
    std::fs::write(&hz, HEALTHZ).unwrap();
    let (mut child, token, base) =
        super::spawn_serve(Command::new(env!("CARGO_BIN_EXE_realmctl")), &db);
    // Warm-up: every pipeline deployed once, the writer's knowledge filled.
    let mut answered = wrk(&base, &adm, &token, 3).1;
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let (h, _) = wrk(&base, &hz, &token, SECS);
        let (a, n) = wrk(&base, &adm, &token, SECS);
        answered += n;
        rounds.push((a, h));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    // Every admission wrk saw answered is in the ledger (wrk may stop before reading answers
    // that were already committed, so the ledger may hold more).
    let logged: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM decisions WHERE action = 'deploy' AND admitted = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        u64::try_from(logged).unwrap() >= answered,
        "{logged} logged, {answered} answered"
    );
    let mut ratios: Vec<f64> = rounds.iter().map(|(a, h)| a / h).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let lowest = ratios[0];
    let below = ratios.iter().filter(|r| **r < 0.5).count();
    let verdict = if median >= 0.5 { "met" } else { "MISSED" };
    let _ = writeln!(
        out,
        "### SQLite over HTTP with wrk: admissions vs the HTTP ceiling\n\nThe real `realmctl quota serve` (SQLite `synchronous=FULL`, group commit) under `wrk -t1 -c64` ({SECS} s per run) in its own process on the same two cores; each round runs `/healthz`, then admissions (each redeploys one of {PIPELINES} pipelines of one realm with a new minor and replica count, acknowledged only after its commit is on disk); both through the same per-request Lua call. {ROUNDS} rounds after a 3 s warm-up; the ledger held every admission wrk saw answered ({answered}), and no answer was other than 200.\n"
    );
    let _ = writeln!(
        out,
        "| round | admissions/s | `/healthz` requests/s | ratio |\n|---|---|---|---|"
    );
    for (i, (a, h)) in rounds.iter().enumerate() {
        let _ = writeln!(out, "| {} | {a:.0} | {h:.0} | {:.2}× |", i + 1, a / h);
    }
    let _ = writeln!(
        out,
        "\nMedian ratio **{median:.2}×** (goal ≥ 0.5×: {verdict}); lowest {lowest:.2}×; {below} of {ROUNDS} rounds below 0.5×.\n"
    );
}
