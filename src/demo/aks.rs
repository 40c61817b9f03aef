//! The AKS part of the demo: the stand-in crate's Azure adapter (ARM and the token endpoint,
//! over HTTPS with a test CA made for this run) over a sample subscription, and realmctl's ARM
//! client with azure_identity's client-secret credential talking to it. The client trusts the
//! stand-in's CA as one more root, verifying its certificate as any other; the secret is a
//! throw-away one for the stand-in, never the operator's.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use realmctl_standins::{StandIn, azure};

use super::{CREATE_DELAY, CloudDemo, DemoCloud, DemoError};
use crate::cloud::aks::credential::AzureEnv;
use crate::cloud::aks::{AksProvider, AksSettings};
use crate::spec::Provider;

/// The demo's subscription.
pub const SUBSCRIPTION: &str = "00000000-0000-4000-8000-0000000000a5";
/// The demo's tenant.
pub const TENANT: &str = "00000000-0000-4000-8000-00000000d1e0";
/// The demo's resource group.
pub const GROUP: &str = "digibee-demo";
/// The demo's region.
pub const REGION: &str = "eastus";
/// The throw-away client secret the stand-in accepts.
const DEMO_SECRET: &str = "demo-secret-for-the-loopback-stand-in-only";

/// The AKS demo.
pub struct AksDemo;

impl CloudDemo for AksDemo {
    fn provider(&self) -> Provider {
        Provider::Aks
    }

    fn start(&self) -> BoxFuture<'_, Result<DemoCloud, DemoError>> {
        async move {
            let mut world = azure::sample(SUBSCRIPTION, TENANT, REGION, GROUP, DEMO_SECRET);
            world.create_delay = CREATE_DELAY;
            let subnet = world.subnets[0].id.clone();
            let standin = StandIn::azure(world)
                .await
                .map_err(|e| DemoError::Peer(e.to_string()))?;
            let spec_block = crate::templates::render(
                "demo-cloud-aks.yaml",
                &serde_json::json!({
                    "endpoint": standin.url(), "region": REGION, "subscription": SUBSCRIPTION,
                    "group": GROUP, "tenant": TENANT, "subnet": subnet,
                }),
            )
            .map_err(|e| DemoError::Peer(e.to_string()))?;
            let settings = AksSettings {
                endpoint: Some(standin.url()),
                env: AzureEnv {
                    tenant_id: Some(TENANT.to_owned()),
                    client_id: Some(azure::INSTALLER_APP.to_owned()),
                    client_secret: Some(crate::secret::Secret::new(DEMO_SECRET)),
                    federated_token_file: None,
                    authority_host: Some(standin.url()),
                },
                extra_roots: standin.ca_pem().map(str::to_owned).into_iter().collect(),
                ..AksSettings::new(REGION, SUBSCRIPTION, GROUP, TENANT)
            };
            let provider = AksProvider::new(settings)?;
            let cloud = Arc::new(crate::cloud::retry::Retrying::new(
                provider,
                crate::cloud::retry::RetryPolicy::default(),
            ));
            Ok(DemoCloud {
                cloud,
                standin,
                spec_block,
                how: "realmctl's ARM client and azure_identity talk to it over HTTPS with a throw-away client secret",
            })
        }
        .boxed()
    }
}
