//! `platform.apply` with a bundle of 200 objects (issue #19), written into `docs/benchmarks.md`:
//! the GKE demo realm (the Google stand-in and its Kubernetes API, the install's own ADC
//! token) with `platform.bundle` naming a folder of 200 objects — one namespace, 120
//! ConfigMaps, 40 Deployments and 39 Services. From the Kubernetes stand-in's call log:
//!
//! - API calls per object: applies (goal: exactly one per object), reads (what readiness
//!   needs: objects whose apply answer was not yet ready are listed again, one LIST per kind and
//!   namespace, until they are), and discovery (once per kind);
//! - wall time of the step beyond the stand-in's own readiness delay (the Deployments' rollout
//!   delay; goal ≤ 2 s);
//! - a re-apply of the same bundle (the step re-run by a renewed certificate file): only the TLS
//!   Secret is sent again, everything else is compared with the inventory and read.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// How long the stand-in's Deployments take to roll out.
const ROLLOUT: Duration = Duration::from_millis(1500);

fn bundle(dir: &Path) -> usize {
    let mut docs = vec!["apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n".to_owned()];
    for i in 0..120 {
        docs.push(format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: bench}}\ndata: {{n: \"{i}\"}}\n"
        ));
    }
    for i in 0..40 {
        docs.push(format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d{i}, namespace: bench}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: d{i}}}}}\n  template:\n    metadata: {{labels: {{app: d{i}}}}}\n    spec: {{containers: [{{name: c, image: registry.example/d:{i}}}]}}\n"
        ));
    }
    for i in 0..39 {
        docs.push(format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: bench}}\nspec: {{selector: {{app: d{i}}}, ports: [{{port: 80}}]}}\n"
        ));
    }
    let n = docs.len();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("bundle.yaml"),
        "name: bench\nversion: \"1\"\nfiles: [objects.yaml]\nquota: {image: registry.example/realmctl, tag: \"1\"}\n",
    )
    .unwrap();
    std::fs::write(dir.join("objects.yaml"), docs.join("---\n")).unwrap();
    n
}

struct Apply {
    applies: usize,
    reads: usize,
    discovery: usize,
    wall: Duration,
}

fn measure(calls: &[realmctl_standins::kube::KubeCall]) -> Apply {
    let is_discovery = |p: &str| {
        p == "/api"
            || p == "/apis"
            || p == "/api/v1"
            || p.matches('/').count() == 3 && p.starts_with("/apis/")
    };
    let first = calls.iter().find(|c| c.method == "PATCH").map(|c| c.at);
    let last = calls.last().map(|c| c.at);
    Apply {
        applies: calls.iter().filter(|c| c.method == "PATCH").count(),
        reads: calls
            .iter()
            .filter(|c| c.method == "GET" && !is_discovery(&c.path))
            .count(),
        discovery: calls.iter().filter(|c| is_discovery(&c.path)).count(),
        wall: match (first, last) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        },
    }
}

pub fn run(out: &mut String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(".").unwrap();
    let objects = bundle(&dir.path().join("bundle"));
    let (first, again, total) = rt.block_on(async {
        let demo_dir = dir.path().join("demo");
        let mut demo = realmctl::demo::prepare(&demo_dir, &realmctl::demo::gke::GkeDemo)
            .await
            .unwrap();
        demo.standin.world().create_delay = Duration::from_secs(1);
        demo.standin.kube().world().cluster.delays.rollout = ROLLOUT;
        demo.poll = super::FAST_POLL;
        let mut text = std::fs::read_to_string(&demo.spec).unwrap();
        text.push_str(&format!(
            "platform:\n  bundle: {}\n",
            dir.path().join("bundle").display()
        ));
        std::fs::write(&demo.spec, text).unwrap();
        let spec = realmctl::spec::load(&demo.spec).unwrap();
        let total = realmctl::platform::definition::desired(&spec).len();
        let walk = realmctl::demo::install(&demo_dir, &demo, &realmctl::engine::Quiet)
            .await
            .unwrap();
        assert!(walk.verified.ok);
        let first = measure(&demo.standin.kube().world().calls);
        // The same bundle again, the step re-run by a renewed certificate file (one more
        // newline: same certificate, another digest): everything unchanged is only read.
        let n = demo.standin.kube().world().calls.len();
        let mut cert = std::fs::read(&spec.certificate.cert).unwrap();
        cert.push(b'\n');
        std::fs::write(&spec.certificate.cert, cert).unwrap();
        let walk = realmctl::demo::install(&demo_dir, &demo, &realmctl::engine::Quiet)
            .await
            .unwrap();
        assert!(walk.verified.ok);
        let again = measure(&demo.standin.kube().world().calls[n..]);
        (first, again, total)
    });
    let _ = writeln!(
        out,
        "### `platform.apply` of a 200-object bundle\n\nThe GKE demo realm with `platform.bundle` naming {objects} objects (1 namespace, 120 ConfigMaps, 40 Deployments of 2 replicas, 39 Services) — {total} with the realm's own (namespaces, TLS Secret, ingress, and the enforcement core: Deployment, Service, volume claim, settings, three token Secrets) — applied by the install through the Google stand-in's Kubernetes API with the install's ADC token. Deployments roll out {:.1} s after they are applied. Counted from the Kubernetes stand-in's call log; wall time from the first apply to the last call of the step.\n",
        ROLLOUT.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| run | objects | applies | reads | discovery | applies per object | wall | beyond the rollout delay | goal ≤ 2 s |\n|---|---|---|---|---|---|---|---|---|"
    );
    // The second run rolls nothing out: all of its wall time counts.
    for (name, a, delay) in [
        ("first apply", &first, ROLLOUT),
        (
            "same bundle again (certificate file renewed)",
            &again,
            Duration::ZERO,
        ),
    ] {
        let beyond = a.wall.saturating_sub(delay);
        let _ = writeln!(
            out,
            "| {name} | {total} | {} | {} | {} | {:.2} | {:.2} s | {:.2} s | {} |",
            a.applies,
            a.reads,
            a.discovery,
            a.applies as f64 / total as f64,
            a.wall.as_secs_f64(),
            beyond.as_secs_f64(),
            if beyond <= Duration::from_secs(2) {
                "met"
            } else {
                "NO"
            }
        );
    }
    let _ = writeln!(
        out,
        "\nReads are what readiness needs: an object whose apply answer was already ready (ConfigMaps, Services, namespaces) is not read again; the rest are read with one LIST per kind and namespace (by the realm label) on each poll until they are ready (here Deployments in two namespaces and the core's volume claim), so reads follow the poll policy and the number of kinds and namespaces, not the number of objects (here the fast test policy, 20 ms doubling to 100 ms, through a 1.5 s rollout). The second run has the first one's inventory: it sends only the Secrets filled at apply time (the TLS Secret, whose data is read from the certificate files, and the core's three token Secrets, whose tokens are first read back from the cluster so they never change) and reads the rest once for readiness. A run whose inputs did not change does not run the step at all (the engine skips a step whose input digest is unchanged).\n"
    );
}
