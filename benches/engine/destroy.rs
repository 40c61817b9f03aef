//! `realmctl destroy` of a GKE realm with 50 leftovers on the Google stand-in (issue #20),
//! section `destroy` of `docs/benchmarks.md`: the demo realm installed (the embedded playbook,
//! without its VPN, whose teardown on GKE is still to come), then 50 resources its cluster's
//! controllers would leave — 20 forwarding rules and 15 persistent disks labelled for the
//! cluster, 15 `k8s-fw-…` firewall rules aimed at its nodes, each held by a forwarding rule —
//! and the destroy run in-process (the embedded destroy playbook, `--delete-volumes`, no wait
//! for controllers: none runs here), approved at its gate.
//!
//! Reported: every API call of the destroy by operation, and its wall time beyond the
//! stand-in's deletion delay and the GKE operation-polling lag (both read from the call log).
//! Goal: ≤ 2 s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use realmctl::cloud::teardown::SweepOptions;
use realmctl::engine::model::playbook;
use realmctl::engine::{Quiet, RunOptions, run};
use realmctl_standins::Leftover;

/// How long the stand-in takes to delete the cluster.
const DELETE_DELAY: Duration = Duration::from_secs(3);
const LEFTOVERS: (usize, usize, usize) = (20, 15, 15);

struct Destroy {
    wall: Duration,
    lag: Duration,
    calls: BTreeMap<String, usize>,
    swept: usize,
}

fn leftover(
    kind: &str,
    name: String,
    scope: &str,
    tags: &[(&str, &str)],
    held_by: Option<String>,
) -> Leftover {
    Leftover {
        kind: kind.into(),
        name,
        group: Some(scope.into()),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        held_by,
    }
}

fn destroy(rt: &tokio::runtime::Runtime) -> Destroy {
    let dir = tempfile::tempdir_in(".").unwrap();
    rt.block_on(async {
        let mut demo = realmctl::demo::prepare(dir.path(), &realmctl::demo::gke::GkeDemo)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&demo.spec).unwrap();
        let no_vpn = text
            .lines()
            .map(|l| {
                if l.starts_with("vpn:") {
                    "vpn: {enabled: false}"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&demo.spec, no_vpn).unwrap();
        demo.poll = super::FAST_POLL;
        demo.standin.world().create_delay = Duration::from_millis(200);
        realmctl::demo::install(dir.path(), &demo, &Quiet)
            .await
            .unwrap();
        let (cluster, region) = {
            let w = demo.standin.world();
            (w.clusters.keys().next().unwrap().clone(), w.region.clone())
        };
        {
            let mut w = demo.standin.world();
            w.delete_delay = DELETE_DELAY;
            let label = [("goog-k8s-cluster-name", cluster.as_str())];
            let node_tag = format!("targetTag:gke-{cluster}-1a2b3c4d-node");
            let (rules, disks, firewalls) = LEFTOVERS;
            for i in 0..rules {
                w.leftovers.insert(
                    format!("regions/{region}/forwardingRules/a{i:03}"),
                    leftover("forwardingRules", format!("a{i:03}"), &region, &label, None),
                );
            }
            for i in 0..disks {
                w.leftovers.insert(
                    format!("zones/{region}-a/disks/pvc-{i:03}"),
                    leftover(
                        "disks",
                        format!("pvc-{i:03}"),
                        &format!("{region}-a"),
                        &label,
                        None,
                    ),
                );
            }
            for i in 0..firewalls {
                w.leftovers.insert(
                    format!("global/firewalls/k8s-fw-a{i:03}"),
                    leftover(
                        "firewalls",
                        format!("k8s-fw-a{i:03}"),
                        "global",
                        &[(node_tag.as_str(), "")],
                        Some(format!("regions/{region}/forwardingRules/a{i:03}")),
                    ),
                );
            }
        }
        let spec = realmctl::spec::load(&demo.spec).unwrap();
        let state = dir.path().join("state");
        let pb = playbook::parse(
            &playbook::EMBEDDED_DESTROY.replace(
                "action: destroy.in_cluster",
                "action: destroy.in_cluster\n        params: {releaseWaitSeconds: 0}",
            ),
            "bench",
        )
        .unwrap();
        let mut opts = RunOptions::new(
            "bench",
            realmctl::engine::io::store::Store::local(&state),
            realmctl::quota::seed::Target::for_install(&state, false),
        );
        opts.cloud = Some(demo.cloud.clone());
        opts.poll = super::FAST_POLL;
        opts.retry_base = Duration::from_millis(1);
        opts.teardown = SweepOptions {
            delete_volumes: true,
        };
        let first = run::install(&state.clone().into(), &spec, &pb, &opts, &Quiet)
            .await
            .unwrap();
        assert_eq!(
            first.outcome,
            realmctl::engine::model::event::StopOutcome::Waiting
        );
        run::approve(
            &state.clone().into(),
            1,
            "bench",
            None,
            time::OffsetDateTime::now_utc(),
            None,
        )
        .unwrap();
        let from = demo.standin.world().calls.len();
        let t = Instant::now();
        let second = run::install(&state.clone().into(), &spec, &pb, &opts, &Quiet)
            .await
            .unwrap();
        let wall = t.elapsed();
        assert_eq!(
            second.outcome,
            realmctl::engine::model::event::StopOutcome::Completed,
            "{}",
            second.message
        );
        let w = demo.standin.world();
        assert!(w.clusters.is_empty() && w.leftovers.is_empty());
        let calls_now = &w.calls[from..];
        let delete = calls_now
            .iter()
            .find(|c| c.op == "gke:DeleteCluster")
            .expect("the cluster's delete")
            .at;
        let done = delete + DELETE_DELAY;
        let seen = calls_now
            .iter()
            .filter(|c| c.op == "gke:GetOperation" && c.at >= done)
            .map(|c| c.at)
            .next()
            .unwrap_or(done);
        let mut calls = BTreeMap::new();
        for c in calls_now {
            *calls.entry(c.op.clone()).or_insert(0) += 1;
        }
        let (a, b, c) = LEFTOVERS;
        Destroy {
            wall,
            lag: seen - done,
            calls,
            swept: a + b + c,
        }
    })
}

/// The destroy section.
pub fn run(out: &mut String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows: Vec<Destroy> = (0..3).map(|_| destroy(&rt)).collect();
    rows.sort_by_key(|r| r.wall);
    let r = &rows[rows.len() / 2];
    let over = r.wall.saturating_sub(DELETE_DELAY).saturating_sub(r.lag);
    let _ = writeln!(
        out,
        "### Destroy of a realm with {} leftovers on the Google stand-in\n\nThe GKE demo realm (without its VPN), then {} forwarding rules and {} persistent disks labelled for its cluster and {} `k8s-fw-…` firewall rules aimed at its nodes (each held by a forwarding rule); the embedded destroy playbook with `--delete-volumes` run in-process after its gate was approved: the in-cluster objects, the cluster (deleting for {} s), and the sweep. The cluster operation's polling lag is read from the call log and not counted as engine time. Median of 3 destroys, each of a fresh install.\n",
        r.swept,
        LEFTOVERS.0,
        LEFTOVERS.1,
        LEFTOVERS.2,
        DELETE_DELAY.as_secs()
    );
    let _ = writeln!(
        out,
        "| destroy wall time | deletion delay | operation-polling lag | wall − delay − lag (goal ≤ 2 s) |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {:.2} s | {:.0} s | {:.2} s | {:.2} s ({}) |",
        r.wall.as_secs_f64(),
        DELETE_DELAY.as_secs_f64(),
        r.lag.as_secs_f64(),
        over.as_secs_f64(),
        if over <= Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        }
    );
    let total: usize = r.calls.values().sum();
    let _ = writeln!(
        out,
        "\nEvery call of the destroy after the approval ({total} in all; the plan's survey ran before it):\n\n| call | count |\n|---|---|"
    );
    for (op, n) in &r.calls {
        let _ = writeln!(out, "| `{op}` | {n} |");
    }
    out.push('\n');
}
