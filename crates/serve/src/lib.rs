//! Serving HTTP/1 with every connection bounded, for realmctl's quota service and its loopback
//! stand-ins (one place for the concept, so both get the same limits).
//!
//! - The request head must arrive within [`Bounds::header_read`]; hyper restarts that timer
//!   while a keep-alive connection waits for its next request, so it is also the idle timeout.
//! - At most [`Bounds::max_connections`] connections are open at once. When a new connection
//!   arrives and every slot is taken, the oldest connection with no request in flight (one that
//!   has sent nothing, one trickling its request head, or one idle between keep-alive requests)
//!   is shed to make room, so a client holding many slow connections cannot starve healthy
//!   requests; only when every open connection is busy serving a request does a newcomer wait.
//! - A shutdown waits at most [`Bounds::shutdown_grace`] for requests in flight.
//!
//! `axum::serve` has none of these.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;

/// The bounds of every connection.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The request head must arrive within this (also the keep-alive idle timeout).
    pub header_read: Duration,
    /// On shutdown, requests in flight get this long.
    pub shutdown_grace: Duration,
    /// Connections open at once; beyond it idle connections are shed, then newcomers wait.
    pub max_connections: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            header_read: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// An open connection: how many of its requests are in flight, and how to drop it.
struct Open {
    busy: Arc<AtomicUsize>,
    handle: tokio::task::AbortHandle,
}

/// Counts a request in flight for as long as it lives (also when its task is aborted).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        InFlight(busy.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sheds the oldest open connection with no request in flight; whether one was found.
fn shed_one(open: &mut VecDeque<Open>) -> bool {
    open.retain(|c| !c.handle.is_finished());
    match open
        .iter()
        .position(|c| c.busy.load(Ordering::Acquire) == 0)
    {
        Some(i) => {
            if let Some(c) = open.remove(i) {
                c.handle.abort();
            }
            true
        }
        None => false,
    }
}

/// Serves `app` on `listener` over plain HTTP/1 until `shutdown` completes.
pub async fn http1(
    listener: tokio::net::TcpListener,
    app: Router,
    bounds: Bounds,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, app, bounds, None, shutdown).await
}

/// Serves `app` on `listener` over HTTPS (HTTP/1 inside TLS with `tls`) until `shutdown`
/// completes. The TLS handshake must finish within [`Bounds::header_read`], and a connection
/// still in its handshake holds no request, so it is the first to be shed.
pub async fn https1(
    listener: tokio::net::TcpListener,
    app: Router,
    bounds: Bounds,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve(listener, app, bounds, Some(acceptor), shutdown).await
}

async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    bounds: Bounds,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(bounds.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut open: VecDeque<Open> = VecDeque::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                // Out of file descriptors or a connection reset before accept: keep serving.
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            () = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                // Full: make room by dropping a connection that is doing nothing; if every
                // connection is serving a request, wait for one to finish.
                shed_one(&mut open);
                tokio::select! {
                    s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let busy = Arc::new(AtomicUsize::new(0));
        let service = {
            let app = app.clone();
            let busy = busy.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let in_flight = InFlight::new(&busy);
                let mut app = app.clone();
                let fut = tower_service::Service::call(&mut app, req);
                async move {
                    let r = fut.await;
                    drop(in_flight);
                    r
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(bounds.header_read);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handle = tasks.spawn(async move {
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    // A handshake that does not finish in time is dropped like a silent head.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(bounds.header_read, acceptor.accept(stream)).await
                    {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                }
            }
            drop(slot);
        });
        open.retain(|c| !c.handle.is_finished());
        open.push_back(Open { busy, handle });
    }
    drop(listener);
    // Requests in flight finish; idle connections close at once; whatever is still open after
    // the grace period is dropped.
    let _ = tokio::time::timeout(bounds.shutdown_grace, graceful.shutdown()).await;
    tasks.abort_all();
    Ok(())
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(
        max: usize,
        app: Router,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let bounds = Bounds {
            header_read: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(1),
            max_connections: max,
        };
        tokio::spawn(http1(l, app, bounds, async move {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_and_trickling_connections_are_shed_for_a_healthy_request() {
        let app = Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let (addr, _stop) = start(8, app).await;
        // Fill every slot: half silent, half trickling a request head they never finish.
        let mut hogs = Vec::new();
        for i in 0..8 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            if i % 2 == 1 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nx-slow: ")
                    .await
                    .unwrap();
            }
            hogs.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Header-read is 30 s: without shedding this request would wait that long.
        let t = Instant::now();
        for _ in 0..3 {
            let answer = tokio::time::timeout(Duration::from_secs(5), get(addr, "/healthz"))
                .await
                .expect("a healthy request is served while slow connections hold every slot");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        // The first healthy request made room by closing a hog; the later ones reused the slot
        // the earlier one freed.
        let mut closed = 0;
        for mut h in hogs {
            let mut b = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(200), h.read(&mut b)).await
            {
                closed += 1;
            }
        }
        assert!(closed >= 1, "{closed} hogs closed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_serving_a_request_is_never_shed() {
        let (release, held) = tokio::sync::watch::channel(false);
        let app = Router::new()
            .route(
                "/slow",
                axum::routing::get(move || {
                    let mut held = held.clone();
                    async move {
                        let _ = held.wait_for(|v| *v).await;
                        "done"
                    }
                }),
            )
            .route("/healthz", axum::routing::get(|| async { "ok" }));
        let (addr, _stop) = start(1, app).await;
        let slow = tokio::spawn(get(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The only slot serves /slow: a newcomer waits instead of cutting it off.
        let waiting = tokio::spawn(get(addr, "/healthz"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the newcomer waited");
        release.send(true).unwrap();
        let slow = tokio::time::timeout(Duration::from_secs(5), slow)
            .await
            .unwrap()
            .unwrap();
        assert!(slow.ends_with("done"), "{slow}");
        let ok = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(ok.ends_with("ok"), "{ok}");
    }
}
