//! What the realm's enforcement core Pod would run, for a cluster stand-in that runs no Pods:
//! this build's own `quota serve` (the same router, the same SQLite ledger code), on loopback,
//! with the tokens file read from the Secret the Deployment mounts. The stand-in's service
//! proxy sends requests for Service `digibee-system/digibee-quota` here once the Deployment is
//! available. Started on first use; started again (like a new Pod) when the mounted tokens
//! change; stopped when the stand-in drops it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use realmctl_standins::kube::Cluster;
use realmctl_standins::kube::proxy::Backend;

use crate::platform::quota::{NAMESPACE, TOKENS_SECRET};
use crate::quota::http::{AppState, Limits};
use crate::quota::store::{DbUrl, Open, Store, StoreOptions};
use crate::quota::tokens::Tokens;

/// The running "Pod": its tokens file, address and stop switch.
struct Running {
    tokens: String,
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The tokens file the Pod would mount, from the cluster's Secret.
fn mounted_tokens(c: &Cluster) -> Option<String> {
    let t = c.find("", "secrets")?;
    let list = c
        .list(
            &t,
            Some(NAMESPACE),
            Some(&format!("metadata.name={TOKENS_SECRET}")),
            None,
        )
        .ok()?;
    let b64 = list["items"][0]["data"]["tokens.yaml"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// Starts the service on a loopback port with `tokens` over the ledger at `db`.
fn start(db: PathBuf, tokens: Tokens) -> Option<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    std_listener.set_nonblocking(true).ok()?;
    let addr = std_listener.local_addr().ok()?;
    let listener = tokio::net::TcpListener::from_std(std_listener).ok()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok(store) = Store::open(
            &DbUrl::Sqlite(db),
            Open::CreateOrMigrate,
            StoreOptions::default(),
        )
        .await
        else {
            return;
        };
        let state = AppState::new(store, tokens, Limits::default());
        let _ = crate::quota::http::serve(listener, state, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Some((addr, stop))
}

/// The backend of the core's Service: its ledger lives at `db` (the Pod's volume).
pub fn quota_backend(db: PathBuf) -> Backend {
    let running: Arc<Mutex<Option<Running>>> = Arc::new(Mutex::new(None));
    Arc::new(move |c: &Cluster| {
        let text = mounted_tokens(c)?;
        let mut r = running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(run) = r.as_ref().filter(|run| run.tokens == text) {
            return Some(run.addr);
        }
        let tokens = Tokens::parse(&text, std::path::Path::new("tokens.yaml")).ok()?;
        let (addr, stop) = start(db.clone(), tokens)?;
        *r = Some(Running {
            tokens: text,
            addr,
            _stop: stop,
        });
        Some(addr)
    })
}
