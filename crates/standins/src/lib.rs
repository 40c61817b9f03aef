//! Loopback stand-ins of the clouds realmctl installs into, for `realmctl demo` and the tests:
//! one neutral [`World`] (accounts, networks, identities, services, quotas, versions, a policy
//! of what the caller may do, clusters and pools with creation delays, throttling, a call log)
//! and a thin wire adapter per cloud that follows that cloud's published protocol, so the real
//! SDKs and tools nobody here wrote (the AWS SDK, boto3) talk to it unchanged. Today:
//! [`aws`]. Nothing here knows realmctl; realmctl's product code does not depend on this crate
//! except its demo, which says it is a simulation.
//!
//! Every stand-in listens on 127.0.0.1 only, served by the same bounded server as the quota
//! service (`realmctl-serve`).

pub mod aws;
pub mod policy;
pub mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub use policy::Policy;
pub use world::{ApiEndpoint, Call, Cluster, Identity, Phase, Pool, Quota, Subnet, World};

/// A running stand-in; it stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl StandIn {
    /// Starts the AWS adapter over `world` on 127.0.0.1 (any free port) on the current runtime.
    pub async fn aws(world: World) -> std::io::Result<Self> {
        let world = Arc::new(Mutex::new(world));
        let app = aws::router(world.clone(), Instant::now());
        Self::serve(world, app).await
    }

    async fn serve(world: Arc<Mutex<World>>, app: axum::Router) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(realmctl_serve::http1(
            listener,
            app,
            realmctl_serve::Bounds::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(StandIn {
            addr,
            world,
            stop: Some(stop),
        })
    }

    /// Its base URL, for an endpoint override.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The clusters it holds, each with its pools: `name (node pools: a, b)`.
    pub fn clusters(&self) -> Vec<String> {
        self.world().describe_clusters()
    }

    /// The world, to shape or inspect it.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
