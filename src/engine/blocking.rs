//! Blocking work of a step attempt (SQLite, HTTP through a blocking client, fsync'd file
//! writes) runs on the blocking pool through a [`BlockingGate`]. After an attempt ends —
//! including by timeout, which drops the async part — the engine waits at the gate until every
//! blocking job of the attempt has finished, so a timed-out attempt never runs beside its retry.
//! A leaf module: the store and the step context both use it.

use std::sync::Arc;

/// Runs blocking work off the async runtime and lets the engine wait until all of it is done.
#[derive(Debug, Default, Clone)]
pub struct BlockingGate(Arc<tokio::sync::RwLock<()>>);

impl BlockingGate {
    /// Runs `f` on the blocking pool. While it runs, [`BlockingGate::drain`] waits.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, BlockingFailed> {
        let guard = self.0.clone().read_owned().await;
        tokio::task::spawn_blocking(move || {
            let _running = guard;
            f()
        })
        .await
        .map_err(|e| BlockingFailed(e.to_string()))
    }

    /// Waits until no blocking work started through this gate is running.
    pub async fn drain(&self) {
        let _ = self.0.write().await;
    }
}

/// The blocking job panicked or was cancelled.
#[derive(Debug, Clone, thiserror::Error)]
#[error("blocking work failed: {0}")]
pub struct BlockingFailed(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drain_waits_for_blocking_work_whose_caller_was_dropped() {
        let gate = BlockingGate::default();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let g = gate.clone();
        let work = async move {
            g.run(move || {
                std::thread::sleep(Duration::from_millis(300));
                d.store(true, Ordering::SeqCst);
            })
            .await
        };
        // The caller times out and drops its future; the blocking job keeps running.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), work)
                .await
                .is_err()
        );
        assert!(!done.load(Ordering::SeqCst));
        gate.drain().await;
        assert!(
            done.load(Ordering::SeqCst),
            "drain returned before the job ended"
        );
    }
}
