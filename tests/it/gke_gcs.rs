//! Artifacts in Google Cloud Storage with the identity of the GKE calls (issue #18), against
//! `gcp-storage-emulator` (PyPI, pinned in `scripts/test.sh`), the GCS emulator nobody here
//! wrote. The emulator does not check bearer tokens, so the identity is shown where it is
//! checked: the token the store is given is one the Google stand-in accepts as the installer,
//! and every request that reaches the emulator carries it.
//!
//! The emulator's XML API answers an object upload and download without the `ETag` and
//! `Last-Modified` headers Cloud Storage sends (XML API reference, "PUT Object" and "GET
//! Object" response headers), which object_store requires. A forwarder in front of it adds
//! exactly those two — an opaque ETag from the body's SHA-256 and `Last-Modified` from its
//! `Date` — and records each request's `Authorization`; nothing else is changed
//! (`docs/google-standin.md`).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use realmctl::cloud::{Cloud, StorageCredentials};
use realmctl::engine::io::store::object::{CloudAccess, ObjectStore};
use realmctl_standins::google;

use crate::common::free_port;
use crate::engine_support::{approve, cloud_playbook, text};
use crate::gke::{Google, install_cmd, write_spec};

/// The emulator, killed on drop.
struct Gcs {
    child: Child,
    port: u16,
}

impl Drop for Gcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A forwarder to the emulator that adds the two headers GCS sends and it does not, and keeps
/// every `Authorization` it saw.
struct Forwarder {
    url: String,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn forwarder(upstream: u16) -> Forwarder {
    use axum::body::Bytes;
    use axum::extract::Request;
    use axum::http::HeaderValue;
    use axum::response::{IntoResponse, Response};
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let client = client.clone();
        let log = log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body: Bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap();
            log.lock().unwrap().push(
                parts
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned(),
            );
            let url = format!(
                "http://127.0.0.1:{upstream}{}",
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            );
            let mut fwd = client.request(parts.method.clone(), url);
            for (k, v) in &parts.headers {
                if k != "host" {
                    fwd = fwd.header(k, v);
                }
            }
            let put_body = body.clone();
            let r = fwd.body(body).send().await.unwrap();
            let status = r.status();
            let headers = r.headers().clone();
            let got = r.bytes().await.unwrap();
            let mut resp: Response = (status, got.clone()).into_response();
            for (k, v) in &headers {
                resp.headers_mut().insert(k, v.clone());
            }
            let tagged = if parts.method == axum::http::Method::PUT {
                put_body
            } else {
                got
            };
            let etag = format!("\"{}\"", realmctl::crypto::sha256_hex(&tagged));
            let h = resp.headers_mut();
            if !h.contains_key("etag") && status.is_success() {
                h.insert("etag", HeaderValue::from_str(&etag).unwrap());
            }
            if !h.contains_key("last-modified")
                && let Some(d) = headers.get("date")
            {
                h.insert("last-modified", d.clone());
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Forwarder {
        url,
        seen,
        _stop: stop,
    }
}

fn gcs() -> Gcs {
    let port = free_port();
    let child = Command::new("gcp-storage-emulator")
        .args(["start", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--default-bucket", "artifacts", "--in-memory", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gcp-storage-emulator is missing: run ./scripts/test.sh, which installs it");
    let mut g = Gcs { child, port };
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return g;
        }
        if let Ok(Some(status)) = g.child.try_wait() {
            panic!("gcp-storage-emulator exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("gcp-storage-emulator did not listen on {port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_uses_the_gke_identity_and_round_trips_an_artifact() {
    let emulator = gcs();
    let g = Google::start(Duration::ZERO);
    let cloud: Arc<dyn Cloud> = Arc::new(g.provider_now().await);
    // The token the store is given is one Google's APIs accept as the installer.
    let Some(StorageCredentials::GoogleBearer { token }) =
        cloud.storage_credentials().await.unwrap()
    else {
        panic!("GKE gives a Google bearer token");
    };
    let http = reqwest::Client::new();
    let url = format!("{}/v3/projects/{}", g.standin.url(), crate::gke::PROJECT);
    let ok = http
        .get(&url)
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let other = http
        .get(&url)
        .bearer_auth("ya29.not-issued")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 401);
    let _ = google::installer("x");

    let access = CloudAccess {
        cloud,
        region: "europe-west1".into(),
        endpoint: None,
        extra_roots: Vec::new(),
    };
    let fwd = forwarder(emulator.port).await;
    let base = fwd.url.clone();
    let store = ObjectStore::with_cloud(
        "gs://artifacts/realms",
        vec![
            ("google_base_url".into(), base.clone()),
            // Credential keys are ignored: the store cannot act as another identity.
            ("google_service_account_key".into(), "{}".into()),
        ],
        &access,
    )
    .unwrap();
    let at = store
        .put("acme", "run-1/x.json", b"{\"a\":1}".to_vec())
        .await
        .unwrap();
    assert_eq!(at, "gs://artifacts/realms/acme/run-1/x.json");
    assert_eq!(store.get(&at).await.unwrap(), b"{\"a\":1}");
    // Every request to the bucket carried the GKE identity's token.
    let seen = fwd.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|a| a == &format!("Bearer {}", token.expose())),
        "{seen:?}"
    );
    // A plain-http endpoint off loopback is refused before anything is sent.
    let e = ObjectStore::with_cloud(
        "gs://artifacts/realms",
        vec![(
            "google_base_url".into(),
            "http://storage.example.com".into(),
        )],
        &access,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("plain http"), "{e}");
}

/// The binary stores the phase-4 and phase-5 artifacts in a `gs://` bucket with the GKE
/// identity (the emulator's endpoint from `GOOGLE_BASE_URL`), nothing locally, and
/// `audit verify` reads every one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stores_artifacts_in_a_gs_bucket_and_audit_reads_them_back() {
    let emulator = gcs();
    let fwd = forwarder(emulator.port).await;
    let g = Google::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&g, dir.path(), "digibee-acme", "");
    let mut s = std::fs::read_to_string(&spec).unwrap();
    s.push_str("artifacts: {bucket: \"gs://artifacts/realms\"}\n");
    std::fs::write(&spec, s).unwrap();
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let base = fwd.url.clone();
    let o = install_cmd(&g, &spec, &state, &pb)
        .env("GOOGLE_BASE_URL", &base)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let o = install_cmd(&g, &spec, &state, &pb)
        .env("GOOGLE_BASE_URL", &base)
        .args(["--until", "5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(!state.join("artifacts").exists(), "nothing stored locally");
    let mut c = crate::common::realmctl_std();
    for (k, v) in g.env() {
        c.env(k, v);
    }
    let o = c
        .env("GOOGLE_BASE_URL", &base)
        .args(["audit", "verify", "--state"])
        .arg(&state)
        .arg("-f")
        .arg(&spec)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("5 artifact checksums hold"), "{out}");
}
