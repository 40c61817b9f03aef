//! The Kubernetes API stand-in kept honest by clients nobody here wrote: kubectl (server-side
//! apply, get, wait, delete, a conflict between field managers, the service proxy through
//! `get --raw`) and the Python `kubernetes`
//! client (list and read what was applied), over HTTPS with the stand-in's CA and a bearer
//! token. Any disagreement is a stand-in bug. kubectl runs with `--validate=false`: its
//! client-side validation needs the protobuf OpenAPI document, which the stand-in does not
//! serve (docs/kube-standin.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use realmctl_standins::KubeStandIn;
use realmctl_standins::kube::KubeWorld;

const TOKEN: &str = "kube-standin-test-token";

fn kubeconfig(dir: &Path, server: &str, ca_pem: &str) -> std::path::PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {TOKEN}\ncontexts:\n- name: c\n  context: {{cluster: s, user: u}}\ncurrent-context: c\n"
    );
    let p = dir.join("kubeconfig");
    std::fs::write(&p, text).unwrap();
    p
}

fn kubectl(dir: &Path, kc: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KUBECONFIG", kc)
        .env("KUBECACHEDIR", dir.join("cache"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("kubectl is installed by scripts/test.sh");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "kubectl failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const MANIFESTS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: live
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example/web:1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: idle
  namespace: shop
spec:
  selector: {app: nothing-runs-this}
  ports:
    - {name: http, port: 80}
"#;

/// A loopback HTTP service that answers every request with what it received: the request
/// line and whether an `Authorization` header arrived (the service proxy must remove it).
fn echo_service() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut authorization = false;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                authorization |= h.to_ascii_lowercase().starts_with("authorization:");
            }
            let body = serde_json::json!({
                "request": line.trim_end(),
                "authorization": authorization,
            })
            .to_string();
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_and_the_python_client_agree_with_the_stand_in() {
    let mut world =
        KubeWorld::with_tokens(BTreeMap::from([(TOKEN.to_owned(), "admin".to_owned())]));
    let echo = echo_service();
    world.serve_service(
        "shop",
        "web",
        std::sync::Arc::new(move |_: &realmctl_standins::kube::Cluster| Some(echo)),
    );
    let api = KubeStandIn::start(world).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url(), api.ca_pem());
    let d = dir.path().to_owned();
    let run = move |args: Vec<&'static str>, stdin: Option<&'static str>| {
        let (d, kc) = (d.clone(), kc.clone());
        tokio::task::spawn_blocking(move || kubectl(&d, &kc, &args, stdin))
    };

    // Server-side apply of three objects, as kubectl's own field manager.
    let out = run(
        vec!["apply", "--server-side", "--validate=false", "-f", "-"],
        Some(MANIFESTS),
    )
    .await
    .unwrap();
    let text = ok(&out);
    assert!(text.contains("namespace/shop serverside-applied"), "{text}");
    assert!(
        text.contains("deployment.apps/web serverside-applied"),
        "{text}"
    );

    // Read back: managedFields name kubectl's manager and operation Apply.
    let out = run(
        vec![
            "get",
            "deployment",
            "web",
            "-n",
            "shop",
            "-o",
            "json",
            "--show-managed-fields",
        ],
        None,
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(v["metadata"]["managedFields"][0]["operation"], "Apply");
    assert_eq!(v["metadata"]["generation"], 1);

    // The rollout finishes after the stand-in's delay; kubectl wait sees Available.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let out = run(
        vec![
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "-n",
            "shop",
            "--timeout=10s",
        ],
        None,
    )
    .await
    .unwrap();
    assert!(ok(&out).contains("condition met"));

    // The service proxy, as kubectl reaches it: the request arrives at the Service's backend
    // with its path and query, without the caller's Authorization; a Service nothing runs
    // behind is 503 "no endpoints", as the API server says it.
    let out = run(
        vec![
            "get",
            "--raw",
            "/api/v1/namespaces/shop/services/http:web:http/proxy/echo/path?q=1",
        ],
        None,
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["request"], "GET /echo/path?q=1 HTTP/1.1", "{v}");
    assert_eq!(v["authorization"], false, "{v}");
    let out = run(
        vec![
            "get",
            "--raw",
            "/api/v1/namespaces/shop/services/idle:http/proxy/",
        ],
        None,
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ServiceUnavailable") && err.contains("no endpoints available"),
        "{err}"
    );

    // Another manager changing a field kubectl owns: a conflict naming both.
    let changed: &'static str = Box::leak(
        MANIFESTS
            .replace("replicas: 2", "replicas: 5")
            .into_boxed_str(),
    );
    let out = run(
        vec![
            "apply",
            "--server-side",
            "--validate=false",
            "--field-manager=someone-else",
            "-f",
            "-",
        ],
        Some(changed),
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    assert!(err.contains("\"kubectl\""), "{err}");

    // The Python client lists and reads what was applied.
    let py = format!(
        r#"
import base64, json, kubernetes, os, tempfile
c = kubernetes.client.Configuration()
c.host = "{url}"
c.api_key = {{"authorization": "Bearer {TOKEN}"}}
f = tempfile.NamedTemporaryFile(delete=False, suffix=".pem"); f.write(os.environ["CA"].encode()); f.close()
c.ssl_ca_cert = f.name
api = kubernetes.client.ApiClient(c)
apps = kubernetes.client.AppsV1Api(api)
core = kubernetes.client.CoreV1Api(api)
deps = apps.list_namespaced_deployment("shop")
cm = core.read_namespaced_config_map("settings", "shop")
print(json.dumps({{"deployments": [d.metadata.name for d in deps.items],
                  "available": deps.items[0].status.available_replicas,
                  "mode": cm.data["mode"],
                  "namespaces": sorted(n.metadata.name for n in core.list_namespace().items)}}))
"#,
        url = api.url()
    );
    let ca = api.ca_pem().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", &py])
            .env("CA", ca)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deployments"], serde_json::json!(["web"]));
    assert_eq!(v["available"], 2);
    assert_eq!(v["mode"], "live");
    assert!(v["namespaces"].as_array().unwrap().contains(&"shop".into()));

    // Delete, then the object is gone; a wrong token is refused.
    let out = run(vec!["delete", "configmap", "settings", "-n", "shop"], None)
        .await
        .unwrap();
    assert!(ok(&out).contains("deleted"));
    let out = run(vec!["get", "configmap", "settings", "-n", "shop"], None)
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound")
            || String::from_utf8_lossy(&out.stderr).contains("not found")
    );
    let calls = api.world().calls.len();
    assert!(calls > 5, "{calls}");
}
