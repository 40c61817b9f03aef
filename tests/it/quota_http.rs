//! The quota HTTP service (issue #3), run as the real binary on loopback: auth (401/403),
//! bad input (400), unknown realm (404), body limit (413), racing clients, graceful shutdown,
//! and a SIGKILL during load that loses no acknowledged admission.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use realmctl::quota::ledger::{Ledger, Sync};
use realmctl::quota::tokens::{Scope, mint};
use serde_json::{Value, json};

struct Server {
    child: Child,
    base: String,
    db: PathBuf,
    tokens: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Tokens {
    admin: String,
    acme: String,
    other: String,
    file: String,
}

fn tokens() -> Tokens {
    let (admin, a) = mint(&Scope::Admin);
    let (acme, b) = mint(&Scope::Realm("acme".into()));
    let (other, c) = mint(&Scope::Realm("other".into()));
    Tokens {
        admin,
        acme,
        other,
        file: format!("{a}\n{b}\n{c}\n"),
    }
}

fn start(dir: &Path, t: &Tokens) -> Server {
    let db = dir.join("quota.db");
    let tokens = dir.join("tokens.yaml");
    std::fs::write(&tokens, &t.file).unwrap();
    spawn(db, tokens)
}

fn spawn(db: PathBuf, tokens: PathBuf) -> Server {
    let (child, base) = crate::common::quota_serve(&db, &tokens);
    Server {
        child,
        base,
        db,
        tokens,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = a.delete(url);
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.call()
        }
        (m, b) => {
            let mut r = if m == "PUT" { a.put(url) } else { a.post(url) };
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.content_type("application/json").send(b.unwrap_or(""))
        }
    };
    let mut resp = resp.unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn seed(s: &Server, t: &Tokens, realm: &str, subs: u64) {
    let (st, v) = call(
        "PUT",
        &format!("{}/v1/realms/{realm}/config", s.base),
        Some(&t.admin),
        Some(&json!({"pipelineSubscriptions": subs}).to_string()),
    );
    assert_eq!(st, 200, "{v}");
}

fn deploy_body(pipeline: &str, version: &str, size: &str, replicas: u32) -> String {
    json!({"environment": "prod", "pipeline": pipeline, "version": version, "size": size, "replicas": replicas}).to_string()
}

#[test]
fn auth_status_codes_and_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start(dir.path(), &t);
    let deployments = format!("{}/v1/realms/acme/deployments", s.base);
    let body = deploy_body("orders", "1.2", "medium", 1);

    assert_eq!(
        call("GET", &format!("{}/healthz", s.base), None, None).0,
        200
    );
    // Readiness needs no token and says the SQLite ledger answers (issue #10).
    let ready = call("GET", &format!("{}/readyz", s.base), None, None);
    assert_eq!(ready, (200, json!({"status": "ready"})));
    assert_eq!(call("POST", &deployments, None, Some(&body)).0, 401);
    assert_eq!(
        call("POST", &deployments, Some("not-a-token"), Some(&body)).0,
        401
    );
    assert_eq!(
        call("POST", &deployments, Some(&t.other), Some(&body)).0,
        403,
        "a token for another realm"
    );
    let (st, v) = call(
        "PUT",
        &format!("{}/v1/realms/acme/config", s.base),
        Some(&t.acme),
        Some(r#"{"pipelineSubscriptions": 1000}"#),
    );
    assert_eq!(st, 403, "a realm token may not change its own limits: {v}");
    let (st, v) = call("POST", &deployments, Some(&t.admin), Some(&body));
    assert_eq!(st, 404, "unknown realm: {v}");

    seed(&s, &t, "acme", 1);
    let (st, v) = call("POST", &deployments, Some(&t.acme), Some(&body));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["admitted"], true);
    assert_eq!(v["reason"], Value::Null);
    let (st, v) = call(
        "POST",
        &deployments,
        Some(&t.acme),
        Some(&deploy_body("billing", "1.0", "small", 1)),
    );
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["admitted"], false);
    assert_eq!(v["reason"], "no_pipeline_subscription");
    let (st, v) = call(
        "POST",
        &format!("{}/v1/realms/acme/what-if", s.base),
        Some(&t.acme),
        Some(&deploy_body("orders", "1.3", "large", 1)),
    );
    assert_eq!(
        (st, v["reason"].as_str()),
        (409, Some("insufficient_rtu")),
        "{v}"
    );

    for bad in [
        "{\"environment\": ",
        "[]",
        &deploy_body("orders", "0.1", "small", 1),
        &deploy_body("orders", "1.2.3", "small", 1),
        r#"{"environment":"prod","pipeline":"x","version":"1.0","size":"small","replicas":1,"extra":1}"#,
        &deploy_body("orders", "1.0", "huge", 1),
        &deploy_body("orders", "1.0", "small", 0),
    ] {
        let (st, v) = call("POST", &deployments, Some(&t.acme), Some(bad));
        assert_eq!(st, 400, "{bad}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let huge = format!(
        r#"{{"environment":"prod","pipeline":"{}","version":"1.0","size":"small","replicas":1}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(
        call("POST", &deployments, Some(&t.acme), Some(&huge)).0,
        413
    );

    let (st, v) = call(
        "GET",
        &format!("{}/v1/realms/acme/usage", s.base),
        Some(&t.acme),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(v["prod"]["rtusUsed"], 2);
    let del = format!("{}/v1/realms/acme/deployments/prod/orders/1", s.base);
    assert_eq!(call("DELETE", &del, Some(&t.other), None).0, 403);
    assert_eq!(call("DELETE", &del, Some(&t.acme), None).0, 200);
    assert_eq!(call("DELETE", &del, Some(&t.acme), None).0, 404);
    let (_, v) = call(
        "GET",
        &format!("{}/v1/realms/acme/usage", s.base),
        Some(&t.acme),
        None,
    );
    assert_eq!(
        (
            v["prod"]["rtusUsed"].as_u64(),
            v["prod"]["subscriptionsUsed"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn racing_http_clients_get_exactly_what_fits() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start(dir.path(), &t);
    seed(&s, &t, "acme", 40); // 80 Prod RTUs = 20 Large deployments.
    let clients = 16;
    let barrier = Arc::new(Barrier::new(clients));
    let url = format!("{}/v1/realms/acme/deployments", s.base);
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (barrier, url, token) = (barrier.clone(), url.clone(), t.acme.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..5)
                    .filter(|i| {
                        let (st, v) = call(
                            "POST",
                            &url,
                            Some(&token),
                            Some(&deploy_body(&format!("c{c}-{i}"), "1.0", "large", 1)),
                        );
                        // Every loser gets 409 for the one reason that applies; a 500 or
                        // anything else fails the test.
                        match st {
                            200 => assert_eq!(v["admitted"], true, "{v}"),
                            409 => assert_eq!(v["reason"], "insufficient_rtu", "{v}"),
                            other => panic!("HTTP {other}: {v}"),
                        }
                        st == 200
                    })
                    .count()
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, 20);
    let (_, v) = call(
        "GET",
        &format!("{}/v1/realms/acme/usage", s.base),
        Some(&t.acme),
        None,
    );
    assert_eq!(v["prod"]["rtusUsed"], 80);
    assert_eq!(v["deployments"].as_array().unwrap().len(), 20);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let mut s = start(dir.path(), &t);
    seed(&s, &t, "acme", 2);
    let st = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let started = Instant::now();
    loop {
        if let Some(code) = s.child.try_wait().unwrap() {
            assert!(code.success(), "exit {code:?}");
            break;
        }
        // Nothing in flight and no connection open: no grace period to wait out.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "did not stop at once"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut l = Ledger::open(&s.db, Sync::Full).unwrap();
    assert_eq!(l.status("acme").unwrap().config.pipeline_subscriptions, 2);
}

#[test]
fn sigkill_during_load_loses_no_acknowledged_admission() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let mut s = start(dir.path(), &t);
    seed(&s, &t, "acme", 100_000);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = format!("{}/v1/realms/acme/deployments", s.base);
    // 16 concurrent clients: admissions share group commits (issue #10), and a batch in flight
    // when the kill lands must not have been acknowledged.
    let clients = 16;
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (acked, sent, stop, url, token) = (
                acked.clone(),
                sent.clone(),
                stop.clone(),
                url.clone(),
                t.acme.clone(),
            );
            std::thread::spawn(move || {
                let a: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(5)))
                    .build()
                    .into();
                for i in 0..2000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("c{c}-{i}");
                    sent.lock().unwrap().push(name.clone());
                    let r = a
                        .post(&url)
                        .header("Authorization", &format!("Bearer {token}"))
                        .content_type("application/json")
                        .send(&deploy_body(&name, "1.0", "small", 1));
                    match r {
                        Ok(resp) if resp.status().as_u16() == 200 => {
                            acked.lock().unwrap().push(name)
                        }
                        Ok(resp) => panic!("unexpected status {}", resp.status()),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    // Let some admissions land, then kill the server without warning.
    let started = Instant::now();
    while acked.lock().unwrap().len() < 50 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(acked.len() >= 50, "load did not run: {}", acked.len());

    // After a restart, every acknowledged admission is there, and nothing that was not asked for
    // and logged as admitted.
    let restarted = spawn(s.db.clone(), s.tokens.clone());
    let (st, v) = call(
        "GET",
        &format!("{}/v1/realms/acme/usage", restarted.base),
        Some(&t.acme),
        None,
    );
    assert_eq!(st, 200);
    let present: Vec<String> = v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pipeline"].as_str().unwrap().to_owned())
        .collect();
    for a in &acked {
        assert!(present.contains(a), "acknowledged {a} was lost");
    }
    for p in &present {
        assert!(sent.contains(p), "{p} was never requested");
    }
    assert!(
        present.len() <= acked.len() + clients,
        "at most one unacknowledged in-flight admission per client"
    );
    let mut l = Ledger::open(&s.db, Sync::Full).unwrap();
    let logged = l
        .decisions("acme")
        .unwrap()
        .iter()
        .filter(|d| d.action == "deploy" && d.admitted)
        .count();
    assert_eq!(
        logged,
        present.len(),
        "the decision log and the deployments agree"
    );
}

#[test]
fn seed_a_running_core_from_the_spec_with_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start(dir.path(), &t);
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/c.pem"), "").unwrap();
    std::fs::write(dir.path().join("certs/k.pem"), "").unwrap();
    let spec = dir.path().join("realm.yaml");
    let write_spec = |subs: u32| {
        std::fs::write(
            &spec,
            format!("apiVersion: realmctl/v1\nkind: Realm\nname: acme\ncloud:\n  provider: gke\n  region: us-central1\n  gke: {{project: digibee-acme, network: vpc, subnetwork: nodes}}\n  cluster: {{name: digibee-acme, kubernetesVersion: \"1.31\"}}\ndomains: {{base: digibee.acme.com}}\ncertificate: {{cert: certs/c.pem, key: certs/k.pem}}\nsubscription: {{pipelineSubscriptions: {subs}}}\n"),
        )
        .unwrap();
    };
    let seed = |token: &str| {
        crate::common::realmctl()
            .env("CORE_TOKEN", token)
            .args([
                "quota",
                "seed",
                "--url",
                &s.base,
                "--token-env",
                "CORE_TOKEN",
                "-f",
            ])
            .arg(&spec)
            .output()
            .unwrap()
    };
    write_spec(3);
    let o = seed(&t.acme);
    assert_eq!(o.status.code(), Some(2), "a realm token may not seed");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refused the token (HTTP 403)") && !err.contains(&t.acme),
        "{err}"
    );
    let o = seed(&t.admin);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (_, v) = call(
        "GET",
        &format!("{}/v1/realms/acme/usage", s.base),
        Some(&t.acme),
        None,
    );
    assert_eq!(v["prod"]["rtusTotal"], 6);

    for i in 0..2 {
        let (st, _) = call(
            "POST",
            &format!("{}/v1/realms/acme/deployments", s.base),
            Some(&t.acme),
            Some(&deploy_body(&format!("p{i}"), "1.0", "small", 1)),
        );
        assert_eq!(st, 200);
    }
    write_spec(1);
    let o = seed(&t.admin);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("HTTP 409") && err.contains("p0 1.0") && err.contains("p1 1.0"),
        "{err}"
    );
}

fn start_with(dir: &Path, t: &Tokens, extra: &[&str]) -> Server {
    let db = dir.join("quota.db");
    let tokens = dir.join("tokens.yaml");
    std::fs::write(&tokens, &t.file).unwrap();
    let (child, base) = crate::common::quota_serve_with(&db, &tokens, extra);
    Server {
        child,
        base,
        db,
        tokens,
    }
}

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

/// Whether the server closed `c` (a read sees the end of the stream or a reset) within `wait`.
fn closed_within(c: &mut std::net::TcpStream, wait: Duration) -> bool {
    use std::io::Read;
    c.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar before closing is fine
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Regression (issue #8): 300 sockets that sent only a request line starved every real client
/// for as long as they stayed open, and were never closed.
#[test]
fn incomplete_connections_are_closed_and_never_starve_real_clients() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start_with(dir.path(), &t, &["--header-timeout", "1s"]);
    seed(&s, &t, "acme", 5);
    let mut idle: Vec<_> = (0..300)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(addr(&s)).unwrap();
            // From the established connection: a connect can itself wait a second when the
            // kernel drops a SYN under this burst (a client-side retransmit).
            let opened = Instant::now();
            c.write_all(b"GET /v1/realms/acme/usage HTTP/1.1\r\n")
                .unwrap();
            (opened, c)
        })
        .collect();
    let t0 = Instant::now();
    for _ in 0..20 {
        let (st, v) = call(
            "GET",
            &format!("{}/v1/realms/acme/usage", s.base),
            Some(&t.acme),
            None,
        );
        assert_eq!(st, 200, "{v}");
    }
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "real clients waited {:?}",
        t0.elapsed()
    );
    // Every half-sent request is closed once its head is late (1 s after it was opened),
    // within 1.5 × that + 0.5 s of its own opening (the connections open one after another).
    for (opened, c) in &mut idle {
        assert!(closed_within(c, Duration::from_secs(3)), "still open");
        let took = opened.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took <= Duration::from_millis(1500 + 500),
            "a half-sent request was closed {took:?} after it was opened"
        );
    }
    // A keep-alive connection that goes quiet after a request is closed the same way.
    let mut quiet = std::net::TcpStream::connect(addr(&s)).unwrap();
    quiet
        .write_all(
            format!(
                "GET /v1/realms/acme/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                t.acme
            )
            .as_bytes(),
        )
        .unwrap();
    let t0 = Instant::now();
    assert!(closed_within(&mut quiet, Duration::from_secs(4)));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_millis(1500 + 500),
        "idle keep-alive closed after {took:?}"
    );
}

/// Regression (issue #16): a client holding more slow connections than `--max-connections`
/// (silent, or trickling a request head) starved healthy requests until their header timeout;
/// now the idle ones are shed when a newcomer needs the slot.
#[test]
fn slow_connections_beyond_the_cap_never_starve_healthz() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start_with(
        dir.path(),
        &t,
        &["--max-connections", "32", "--header-timeout", "30s"],
    );
    let hogs: Vec<_> = (0..128)
        .map(|i| {
            let mut c = std::net::TcpStream::connect(addr(&s)).unwrap();
            if i % 2 == 0 {
                let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ");
            }
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..20 {
        let t0 = Instant::now();
        let (st, _) = call("GET", &format!("{}/healthz", s.base), None, None);
        assert_eq!(st, 200);
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "/healthz took {:?} behind slow connections",
            t0.elapsed()
        );
    }
    drop(hogs);
}

/// Regression (issue #8): a `Content-Length: 99999999999` request waited for its body instead
/// of getting 413 at once.
#[test]
fn an_oversized_content_length_gets_413_before_any_body() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start(dir.path(), &t);
    let mut c = std::net::TcpStream::connect(addr(&s)).unwrap();
    c.write_all(
        format!(
            "POST /v1/realms/acme/deployments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n",
            t.acme
        )
        .as_bytes(),
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let t0 = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).expect("an answer within 2 s");
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

/// Regression (issue #8): SIGTERM waited ~40 s for one half-sent request; the shutdown is now
/// bounded by `--shutdown-grace`.
#[test]
fn sigterm_with_a_half_sent_request_stops_within_the_grace_period() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let grace = Duration::from_secs(2);
    let mut s = start_with(
        dir.path(),
        &t,
        &[
            "--shutdown-grace",
            "2s",
            "--body-timeout",
            "60s",
            "--header-timeout",
            "60s",
        ],
    );
    seed(&s, &t, "acme", 2);
    let mut c = std::net::TcpStream::connect(addr(&s)).unwrap();
    c.write_all(
        format!(
            "POST /v1/realms/acme/deployments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"envir",
            t.acme
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let st = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    loop {
        if let Some(code) = s.child.try_wait().unwrap() {
            assert!(code.success(), "exit {code:?}");
            break;
        }
        assert!(
            t0.elapsed() <= grace.mul_f64(1.5) + Duration::from_millis(500),
            "still running after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut l = Ledger::open(&s.db, Sync::Full).unwrap();
    assert_eq!(
        l.status("acme").unwrap().deployments.len(),
        0,
        "nothing half-sent was admitted"
    );
}

/// Regression (issue #8): a count ≥ 2^63 in `PUT .../config` answered 500; and the `Bearer`
/// scheme in lower case was refused (RFC 7235 makes it case-insensitive).
#[test]
fn config_counts_beyond_63_bits_are_400_and_the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start(dir.path(), &t);
    let (st, v) = call(
        "PUT",
        &format!("{}/v1/realms/acme/config", s.base),
        Some(&t.admin),
        Some(r#"{"pipelineSubscriptions": 9223372036854775808}"#),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"], "pipelineSubscriptions: a whole number from 1 to 4294967295",
        "the field and its rule (issue #21), never a Rust type: {v}"
    );
    // Regression (issue #16): counts each within 63 bits whose Prod pool (2 × subscriptions
    // + extra) passed 2^64 wrapped the pool to almost nothing; every count is now bounded by
    // what a spec accepts, far below that.
    let (st, v) = call(
        "PUT",
        &format!("{}/v1/realms/acme/config", s.base),
        Some(&t.admin),
        Some(
            r#"{"pipelineSubscriptions": 9223372036854775807, "extraProdRtus": 9223372036854775807}"#,
        ),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"], "pipelineSubscriptions: a whole number from 1 to 4294967295",
        "{v}"
    );
    let (st, v) = call(
        "GET",
        &format!("{}/v1/realms/acme/usage", s.base),
        Some(&t.admin),
        None,
    );
    assert_eq!(st, 404, "nothing was seeded: {v}");
    seed(&s, &t, "acme", 2);
    let resp = agent()
        .get(format!("{}/v1/realms/acme/usage", s.base))
        .header("Authorization", &format!("bearer {}", t.acme))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Regression (issue #8): a tokens file listing one digest twice (any letter case), a bad realm
/// name or no token at all was accepted.
#[test]
fn quota_serve_refuses_a_tokens_file_with_duplicates_bad_realms_or_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = realmctl::quota::tokens::digest_hex("t");
    for (name, body, expect) in [
        (
            "dup",
            format!("{d}: acme\n{}: admin\n", d.to_uppercase()),
            "listed twice",
        ),
        (
            "realm",
            format!("{d}: ../etc\n"),
            "neither `admin` nor a realm name",
        ),
        ("empty", String::new(), "lists no token"),
        // Regression (issue #16): a file others may write lets them grant themselves admin.
        (
            "writable",
            format!("{d}: admin\n"),
            "other users may write it",
        ),
    ] {
        let f = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&f, body).unwrap();
        if name == "writable" {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let o = crate::common::realmctl_std()
            .args(["quota", "serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("q.db"))
            .arg("--tokens")
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{name}: {err}");
    }
}

/// Issue #10: a SQLite ledger held locked by another process past `--db-timeout` answers 503
/// with `Retry-After` within 1.5 × the timeout (+ slack), never a decision, and the request
/// that got the 503 is not recorded later; once the lock is gone, admissions are decided again.
#[test]
fn a_locked_sqlite_ledger_gets_503_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start_with(dir.path(), &t, &["--db-timeout", "500ms"]);
    seed(&s, &t, "acme", 10);
    let deployments = format!("{}/v1/realms/acme/deployments", s.base);
    let other = rusqlite::Connection::open(&s.db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let a = agent();
    let t0 = Instant::now();
    let mut r = a
        .post(&deployments)
        .header("Authorization", &format!("Bearer {}", t.acme))
        .content_type("application/json")
        .send(&deploy_body("locked", "1.0", "small", 1))
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(
        took >= Duration::from_millis(450) && took <= Duration::from_millis(500 * 3 / 2 + 500),
        "{took:?}"
    );
    let body = r.body_mut().read_to_string().unwrap();
    assert!(body.contains("nothing was acknowledged"), "{body}");
    other.execute_batch("ROLLBACK").unwrap();
    let t0 = Instant::now();
    loop {
        let (st, v) = call(
            "POST",
            &deployments,
            Some(&t.acme),
            Some(&deploy_body("after", "1.0", "small", 1)),
        );
        if st == 200 {
            assert_eq!(v["admitted"], true);
            break;
        }
        assert_eq!(st, 503, "{v}");
        assert!(t0.elapsed() < Duration::from_secs(40), "never recovered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (st, v) = call(
        "GET",
        &format!("{}/v1/realms/acme/usage", s.base),
        Some(&t.acme),
        None,
    );
    assert_eq!(st, 200);
    let pipelines: Vec<&str> = v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pipeline"].as_str().unwrap())
        .collect();
    assert_eq!(pipelines, ["after"], "the 503'd request was recorded");
}

/// Issue #11: the token `quota token` prints, with the line it says to add to the tokens file,
/// is accepted by a running `quota serve` for its own scope only.
#[test]
fn tokens_printed_by_quota_token_work_against_a_running_quota_serve() {
    let printed = |args: &[&str]| {
        let o = crate::common::realmctl_std()
            .args(["quota", "token"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        let token = out.lines().nth(1).unwrap().trim().to_owned();
        let line = out.lines().nth(3).unwrap().trim().to_owned();
        (token, line)
    };
    let (admin, admin_line) = printed(&["--admin"]);
    let (acme, acme_line) = printed(&["--realm", "acme"]);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(&tokens, format!("{admin_line}\n{acme_line}\n")).unwrap();
    let s = spawn(dir.path().join("quota.db"), tokens);
    let config = format!("{}/v1/realms/acme/config", s.base);
    let body = json!({"pipelineSubscriptions": 3}).to_string();
    let usage = format!("{}/v1/realms/acme/usage", s.base);
    // The realm token may not seed; the admin token may.
    assert_eq!(call("PUT", &config, Some(&acme), Some(&body)).0, 403);
    let (st, v) = call("PUT", &config, Some(&admin), Some(&body));
    assert_eq!(st, 200, "{v}");
    // The realm token reads its realm's usage; a token nobody listed is refused.
    let (st, v) = call("GET", &usage, Some(&acme), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["prod"]["rtusTotal"], 6, "{v}");
    let (stranger, _) = printed(&["--realm", "acme"]);
    assert_eq!(call("GET", &usage, Some(&stranger), None).0, 401);
}

/// A retired realm (issue #20): only an admin token retires, a second retirement keeps the
/// first one's time, every later deployment and what-if is 409 `realm_retired`, a new config
/// is 409, the usage names the time, and the whole log reads back page by page — through
/// HTTP and through the library's reader of a remote core (what `destroy.retire` uses).
#[test]
fn a_retired_realm_denies_admissions_refuses_seeds_and_its_log_reads_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens();
    let s = start(dir.path(), &t);
    seed(&s, &t, "acme", 5);
    let url = |p: &str| format!("{}/v1/realms/acme/{p}", s.base);
    for i in 0..3 {
        let body = deploy_body(&format!("p{i}"), "1.0", "small", 1);
        let (st, v) = call("POST", &url("deployments"), Some(&t.acme), Some(&body));
        assert_eq!(st, 200, "{v}");
    }
    let (st, _) = call("POST", &url("retire"), Some(&t.acme), None);
    assert_eq!(st, 403, "a realm token may not retire its realm");
    let (st, first) = call("POST", &url("retire"), Some(&t.admin), None);
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["now"], true);
    let (st, again) = call("POST", &url("retire"), Some(&t.admin), None);
    assert_eq!((st, &again["now"]), (200, &json!(false)), "{again}");
    assert_eq!(again["retiredAt"], first["retiredAt"]);
    let (st, _) = call(
        "POST",
        &format!("{}/v1/realms/nobody/retire", s.base),
        Some(&t.admin),
        None,
    );
    assert_eq!(st, 404);

    let body = deploy_body("p9", "1.0", "small", 1);
    for what in ["deployments", "what-if"] {
        let (st, v) = call("POST", &url(what), Some(&t.acme), Some(&body));
        assert_eq!(
            (st, &v["reason"]),
            (409, &json!("realm_retired")),
            "{what}: {v}"
        );
    }
    let (st, v) = call(
        "PUT",
        &url("config"),
        Some(&t.admin),
        Some(&json!({"pipelineSubscriptions": 9}).to_string()),
    );
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("was retired"), "{v}");
    let (_, usage) = call("GET", &url("usage"), Some(&t.acme), None);
    assert_eq!(usage["retiredAt"], first["retiredAt"], "{usage}");
    assert_eq!(usage["prod"]["subscriptionsUsed"], 3, "{usage}");

    // Pages of two: seed, three admissions, the retirement, the denied admission, the
    // refused seed (a what-if is never logged).
    let (st, _) = call("GET", &url("decisions"), Some(&t.acme), None);
    assert_eq!(st, 403, "the log is the admin's");
    let mut actions = Vec::new();
    let mut after = 0;
    loop {
        let (st, page) = call(
            "GET",
            &url(&format!("decisions?after={after}&limit=2")),
            Some(&t.admin),
            None,
        );
        assert_eq!(st, 200, "{page}");
        let entries = page["decisions"].as_array().unwrap();
        assert!(entries.len() <= 2, "{page}");
        actions.extend(
            entries
                .iter()
                .map(|d| d["action"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(
        actions,
        [
            "seed", "deploy", "deploy", "deploy", "retire", "deploy", "seed"
        ]
    );
    for (q, field) in [
        ("limit=0", "limit: a whole number from 1 to 1000"),
        ("limit=1001", "limit: a whole number from 1 to 1000"),
        ("after=-1", "after: a whole number from 0 to"),
        ("page=2", "\"page\": not a field of this request"),
    ] {
        let (st, v) = call("GET", &url(&format!("decisions?{q}")), Some(&t.admin), None);
        assert_eq!(st, 400, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{q}: {v}");
    }

    // The library's reader of a remote core: the same retirement, the same log.
    let target = realmctl::quota::seed::Target::remote(
        &s.base,
        realmctl::secret::Secret::new(t.admin.clone()),
    )
    .unwrap();
    let export =
        realmctl::quota::retire::retire(&target, "acme", "test", Duration::from_secs(10)).unwrap();
    assert!(!export.retirement.now);
    assert_eq!(json!(export.retirement.retired_at), first["retiredAt"]);
    let read: Vec<&str> = export.decisions.iter().map(|d| d.action.as_str()).collect();
    assert_eq!(read, actions);
}
