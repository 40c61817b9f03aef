//! Serving HTTP/1 with every connection bounded, for the quota service and the loopback
//! stand-ins: the request head must arrive within [`Bounds::header_read`] (hyper restarts that
//! timer while a keep-alive connection waits for its next request, so it is also the idle
//! timeout), at most [`Bounds::max_connections`] are open at once, and a shutdown waits at most
//! [`Bounds::shutdown_grace`] for requests in flight. `axum::serve` has none of these.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

/// The bounds of every connection.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The request head must arrive within this (also the keep-alive idle timeout).
    pub header_read: Duration,
    /// On shutdown, requests in flight get this long.
    pub shutdown_grace: Duration,
    /// Connections open at once; more wait in the listen queue.
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

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn http1(
    listener: tokio::net::TcpListener,
    app: Router,
    bounds: Bounds,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(bounds.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
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
        let _ = stream.set_nodelay(true);
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(bounds.header_read)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tasks.spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
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
