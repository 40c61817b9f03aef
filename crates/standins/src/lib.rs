//! Loopback stand-ins of the clouds realmctl installs into, for `realmctl demo` and the tests:
//! one neutral [`World`] (accounts, networks, identities, services, quotas, versions, a policy
//! of what the caller may do, clusters and pools with creation delays, throttling, a call log)
//! and a thin wire adapter per cloud that follows that cloud's published protocol, so the real
//! SDKs and tools nobody here wrote (the AWS SDK, boto3, azure_identity) talk to it unchanged:
//! [`aws`], [`azure`] (over HTTPS with its own test CA) and [`google`]; and a Kubernetes API
//! server ([`kube`], over HTTPS) that kubectl and the Python client work against. Nothing here knows realmctl; realmctl's product code does not depend on this crate
//! except its demo, which says it is a simulation.
//!
//! Every stand-in listens on 127.0.0.1 only, served by the same bounded server as the quota
//! service (`realmctl-serve`).

pub mod aws;
pub mod azure;
pub mod google;
pub mod kube;
pub mod policy;
pub mod upgrade;
pub mod vpn;
pub mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub use policy::Policy;
pub use world::{
    ApiEndpoint, App, Call, Cluster, Identity, Leftover, Operation, Phase, Pool, Quota,
    ServiceAccountKey, Subnet, Target, World,
};

/// A running stand-in; it stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    /// The test CA of an HTTPS stand-in.
    ca_pem: Option<String>,
    world: Arc<Mutex<World>>,
    /// The Kubernetes API every ready cluster of the world reports.
    kube: KubeStandIn,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl StandIn {
    /// Starts the AWS adapter over `world` on 127.0.0.1 (any free port) on the current runtime.
    pub async fn aws(world: World) -> std::io::Result<Self> {
        Self::serve(world, None, aws::kube_user, |w, _| {
            aws::router(w, Instant::now())
        })
        .await
    }

    /// Starts the Azure adapter (ARM and the token endpoint) over `world` on 127.0.0.1 over
    /// HTTPS, with a new test CA ([`StandIn::ca_pem`]).
    pub async fn azure(world: World) -> std::io::Result<Self> {
        let ca = azure::TestCa::new().map_err(std::io::Error::other)?;
        Self::serve(world, Some(ca), azure::kube_user, |w, addr| {
            azure::router(w, Instant::now(), format!("https://{addr}"))
        })
        .await
    }

    /// Starts the Google adapter (GKE, Resource Manager, Service Usage, Compute Engine, the
    /// token endpoint, IAM credentials, the metadata server) over `world` on 127.0.0.1 over
    /// plain HTTP.
    pub async fn google(world: World) -> std::io::Result<Self> {
        Self::serve(world, None, google::kube_user, |w, addr| {
            google::router(w, Instant::now(), format!("http://{addr}"))
        })
        .await
    }

    /// The PEM of the test CA an HTTPS stand-in's certificate chains to.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Serves the router `app` makes (from the world and the address it is reached at) on
    /// 127.0.0.1, over HTTPS with `tls` when given; and a Kubernetes API that every ready
    /// cluster reports, accepting the tokens `kube_user` recognises for this cloud.
    async fn serve(
        world: World,
        tls: Option<azure::TestCa>,
        kube_user: fn(&World, &str) -> Option<String>,
        app: impl FnOnce(Arc<Mutex<World>>, SocketAddr) -> axum::Router,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let world = Arc::new(Mutex::new(world));
        let w = world.clone();
        let kube = KubeStandIn::start(kube::KubeWorld::new(Arc::new(move |t| {
            kube_user(&w.lock().unwrap_or_else(|p| p.into_inner()), t)
        })))
        .await?;
        world.lock().unwrap_or_else(|p| p.into_inner()).kube_api =
            Some((kube.addr.to_string(), kube.ca_pem.clone()));
        let app = app(world.clone(), addr);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let bounds = realmctl_serve::Bounds::default();
        let ca_pem = match tls {
            Some(ca) => {
                tokio::spawn(realmctl_serve::https1(
                    listener, app, bounds, ca.server, shutdown,
                ));
                Some(ca.ca_pem)
            }
            None => {
                tokio::spawn(realmctl_serve::http1(listener, app, bounds, shutdown));
                None
            }
        };
        Ok(StandIn {
            addr,
            ca_pem,
            world,
            kube,
            stop: Some(stop),
        })
    }

    /// Its base URL, for an endpoint override (`https://` for an HTTPS stand-in).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The clusters it holds, each with its pools: `name (node pools: a, b)`.
    pub fn clusters(&self) -> Vec<String> {
        self.world().describe_clusters()
    }

    /// The world, to shape or inspect it.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The Kubernetes API its clusters report.
    pub fn kube(&self) -> &KubeStandIn {
        &self.kube
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A running Kubernetes API stand-in ([`kube`]) over HTTPS on 127.0.0.1; it stops when dropped.
pub struct KubeStandIn {
    addr: SocketAddr,
    edge: SocketAddr,
    ca_pem: String,
    world: Arc<Mutex<kube::KubeWorld>>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _stop_edge: tokio::sync::oneshot::Sender<()>,
}

impl KubeStandIn {
    /// Starts it over `world` (any free port, a new test CA) on the current runtime.
    pub async fn start(world: kube::KubeWorld) -> std::io::Result<Self> {
        let ca = azure::TestCa::new().map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let world = Arc::new(Mutex::new(world));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(realmctl_serve::https1(
            listener,
            kube::router(world.clone()),
            realmctl_serve::Bounds::default(),
            ca.server,
            async move {
                let _ = stopped.await;
            },
        ));
        // The edge: what the ingress controller serves (TLS by SNI from the Ingresses).
        let edge_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let edge = edge_listener.local_addr()?;
        let (stop_edge, edge_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(realmctl_serve::https1(
            edge_listener,
            axum::Router::new().fallback(|| async {
                (axum::http::StatusCode::NOT_FOUND, "default backend - 404")
            }),
            realmctl_serve::Bounds::default(),
            kube::edge_config(world.clone()),
            async move {
                let _ = edge_stopped.await;
            },
        ));
        Ok(KubeStandIn {
            addr,
            edge,
            ca_pem: ca.ca_pem,
            world,
            _stop: stop,
            _stop_edge: stop_edge,
        })
    }

    /// The port the cluster's edge serves HTTPS on at the Ingress address `127.0.0.1`
    /// (what a load balancer's 443 would be).
    pub fn edge_port(&self) -> u16 {
        self.edge.port()
    }

    /// The API server URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM of the CA its certificate chains to (the cluster CA a kubeconfig names).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The world, to shape or inspect it.
    pub fn world(&self) -> MutexGuard<'_, kube::KubeWorld> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}
