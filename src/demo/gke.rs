//! The GKE part of the demo: the stand-in crate's Google adapter (GKE, Resource Manager, Service
//! Usage, Compute Engine; plain HTTP on loopback) over a sample project, and realmctl's GKE
//! provider — Google's GKE client and google-cloud-auth — talking to it with a service-account
//! key the stand-in made for this run (a throw-away key kept in memory, never the operator's).
//! Operations take several polls: the stand-in keeps each one RUNNING for the demo's creation
//! time, and the provider polls them with its production policy (2 s doubling).

use futures::FutureExt;
use futures::future::BoxFuture;
use realmctl_standins::{StandIn, google};
use std::sync::Arc;

use super::{CREATE_DELAY, CloudDemo, DemoCloud, DemoError};
use crate::cloud::gke::credential::{CredentialFile, GoogleEnv};
use crate::cloud::gke::{Endpoints, GkeProvider, GkeSettings};
use crate::spec::Provider;

/// The demo's project.
pub const PROJECT: &str = "digibee-demo-realm";
/// The demo's region.
pub const REGION: &str = "europe-west1";

/// The GKE demo.
pub struct GkeDemo;

impl CloudDemo for GkeDemo {
    fn provider(&self) -> Provider {
        Provider::Gke
    }

    fn start(&self) -> BoxFuture<'_, Result<DemoCloud, DemoError>> {
        async move {
            let mut world = google::sample(PROJECT, REGION);
            world.create_delay = CREATE_DELAY;
            let standin = StandIn::google(world)
                .await
                .map_err(|e| DemoError::Peer(e.to_string()))?;
            let key = google::service_account_key(
                &mut standin.world(),
                &google::installer(PROJECT),
                &format!("{}/token", standin.url()),
            )
            .map_err(DemoError::Peer)?;
            let spec_block = crate::templates::render(
                "demo-cloud-gke.yaml",
                &serde_json::json!({
                    "endpoint": standin.url(), "region": REGION, "project": PROJECT,
                }),
            )
            .map_err(|e| DemoError::Peer(e.to_string()))?;
            let settings = GkeSettings {
                endpoints: Endpoints::all_at(&standin.url()),
                env: GoogleEnv {
                    file: Some(CredentialFile {
                        origin: "a throw-away service-account key the stand-in made".into(),
                        json: key,
                    }),
                    metadata_root: None,
                },
                ..GkeSettings::new(PROJECT, REGION)
            };
            let provider = GkeProvider::new(settings)?;
            let cloud = Arc::new(crate::cloud::retry::Retrying::new(
                provider,
                crate::cloud::retry::RetryPolicy::default(),
            ));
            Ok(DemoCloud {
                cloud,
                standin,
                spec_block,
                how: "Google's GKE client and google-cloud-auth talk to it with a throw-away service-account key",
            })
        }
        .boxed()
    }
}
