//! The EKS install against the AWS stand-in (issue #9), written into `docs/benchmarks.md`:
//!
//! - the API calls of a full install (the embedded playbook, all six phases, as `realmctl demo`
//!   runs it) with a fixed creation time per cluster and node group, under the shipped poll
//!   policy: polls per wait against the policy's own count and the bound
//!   ⌈log₂(deadline / first)⌉ + steady polls, and the delay between a resource becoming ACTIVE
//!   and realmctl noticing it, against the policy's cap;
//! - engine overhead: install wall time minus the stand-in's creation time for the whole six
//!   phases, with a poll interval short enough (20 ms, capped at 100 ms) that polling lag is
//!   not counted as engine time (goal ≤ 2 s).
//!
//! The stand-in's call log (`World::calls`, times since it started) gives every number; the
//! stand-in answers ACTIVE from the moment `create_delay` has passed since the create call.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use realmctl::cloud::poll::{Backoff, WAIT};

/// The `cluster.apply` / `cluster.wait` deadline (their `ActionDef` timeout).
const DEADLINE: Duration = Duration::from_secs(45 * 60);

/// One wait as the call log shows it.
struct Wait {
    what: &'static str,
    polls: usize,
    /// From ACTIVE (create call + creation time) to the describe that saw it.
    lag: Duration,
}

struct Install {
    wall: Duration,
    waits: Vec<Wait>,
    calls: BTreeMap<String, usize>,
}

/// The describes of the wait that followed `create` (the first describe at or after the moment
/// the resource became active ends it).
fn wait_of(
    calls: &[realmctl_standins::Call],
    create: &str,
    describe: &str,
    what: &'static str,
    delay: Duration,
) -> Wait {
    let created = calls
        .iter()
        .find(|c| c.op == create)
        .unwrap_or_else(|| panic!("no {create} in the call log"))
        .at;
    let active = created + delay;
    let polls: Vec<Duration> = calls
        .iter()
        .filter(|c| c.op == describe && c.at > created)
        .map(|c| c.at)
        .collect();
    let seen = polls
        .iter()
        .position(|&t| t >= active)
        .unwrap_or_else(|| panic!("no {describe} after the {what} became active"));
    Wait {
        what,
        polls: seen + 1,
        lag: polls[seen] - active,
    }
}

/// One full demo install (fresh folder, fresh stand-in) with `delay` per resource and `poll`.
fn install(rt: &tokio::runtime::Runtime, delay: Duration, poll: Backoff) -> Install {
    let (wall, w, calls) = super::demo_install(
        rt,
        &realmctl::demo::eks::EksDemo,
        |w| w.create_delay = delay,
        poll,
    );
    {
        let waits = vec![
            wait_of(
                &w.calls,
                "eks:CreateCluster",
                "eks:DescribeCluster",
                "cluster",
                delay,
            ),
            wait_of(
                &w.calls,
                "eks:CreateNodegroup",
                "eks:DescribeNodegroup",
                "node group",
                delay,
            ),
        ];
        Install { wall, waits, calls }
    }
}

fn policy(rt: &tokio::runtime::Runtime, out: &mut String) {
    let _ = writeln!(
        out,
        "### API calls of a full install under the shipped poll policy\n\nThe embedded playbook (six phases, approval at the phase-5 gate given at once), real AWS SDK against the stand-in; cluster and node group each CREATING for the creation time. Poll policy `cluster.wait`: first {} s, ×{}, cap {} s, deadline {} min. Bound = ⌈log₂(deadline / first)⌉ + steady polls (one per cap interval after the {}-interval ramp, plus the one that sees it).\n",
        WAIT.first.as_secs(),
        WAIT.factor,
        WAIT.cap.as_secs(),
        DEADLINE.as_secs() / 60,
        (1..)
            .take_while(|&n| WAIT.delay(n, false) < WAIT.cap)
            .count()
    );
    let _ = writeln!(
        out,
        "| creation time | wait | polls | policy's count | bound | met | ACTIVE → noticed | ≤ cap ({} s) |\n|---|---|---|---|---|---|---|---|",
        WAIT.cap.as_secs()
    );
    let mut last_calls = BTreeMap::new();
    for secs in [8u64, 45] {
        let delay = Duration::from_secs(secs);
        let r = install(rt, delay, WAIT);
        for w in &r.waits {
            let own = WAIT.polls_for(delay);
            let b = super::wait_bound(WAIT, delay, DEADLINE);
            let _ = writeln!(
                out,
                "| {secs} s | {} | {} | {own} | {b} | {} | {:.1} s | {} |",
                w.what,
                w.polls,
                if w.polls as u32 <= b && w.polls as u32 <= own {
                    "yes"
                } else {
                    "NO"
                },
                w.lag.as_secs_f64(),
                if w.lag <= WAIT.cap { "yes" } else { "NO" },
            );
        }
        last_calls = r.calls;
    }
    super::call_table(out, "the 45 s install", "", &last_calls);
}

fn overhead(rt: &tokio::runtime::Runtime, out: &mut String) {
    let fast = super::FAST_POLL;
    let delay = Duration::from_secs(3);
    let mut rows = Vec::new();
    for _ in 0..3 {
        let r = install(rt, delay, fast);
        let lag: Duration = r.waits.iter().map(|w| w.lag).sum();
        rows.push((r.wall, lag));
    }
    rows.sort();
    let (wall, lag) = rows[rows.len() / 2];
    let creation = delay * 2;
    let over = wall.saturating_sub(creation);
    let _ = writeln!(
        out,
        "### Engine overhead of a full install\n\nSame install, creation time {} s per resource (cluster, then node group: {} s in all), polls every 20 ms doubling to 100 ms so polling lag is not engine time. Median of 3 installs, each in a fresh folder against a fresh stand-in.\n",
        delay.as_secs(),
        creation.as_secs()
    );
    let _ = writeln!(
        out,
        "| install wall time | creation time | wall − creation (goal ≤ 2 s) | of which polling lag |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {:.2} s | {:.0} s | {:.2} s ({}) | {:.2} s |\n",
        wall.as_secs_f64(),
        creation.as_secs_f64(),
        over.as_secs_f64(),
        if over <= Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        },
        lag.as_secs_f64()
    );
}

/// The EKS section.
pub fn run(out: &mut String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    policy(&rt, out);
    overhead(&rt, out);
}
