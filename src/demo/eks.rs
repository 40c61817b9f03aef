//! The EKS part of the demo: the stand-in crate's AWS adapter over a sample account, and the
//! real AWS SDK talking to it with throw-away keys (never the operator's credentials).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use realmctl_standins::{StandIn, aws};

use super::{CREATE_DELAY, CloudDemo, DemoCloud, DemoError};
use crate::spec::Provider;

/// The demo's AWS account (the stand-in's).
pub const ACCOUNT: &str = "123456789012";
/// The demo's region.
pub const REGION: &str = "us-east-1";

/// The EKS demo.
pub struct EksDemo;

impl CloudDemo for EksDemo {
    fn provider(&self) -> Provider {
        Provider::Eks
    }

    fn start(&self) -> BoxFuture<'_, Result<DemoCloud, DemoError>> {
        async move {
            let mut world = aws::sample(ACCOUNT, REGION);
            world.create_delay = CREATE_DELAY;
            let subnets: Vec<String> = world.subnets.iter().map(|s| s.id.clone()).collect();
            let standin = StandIn::aws(world)
                .await
                .map_err(|e| DemoError::Peer(e.to_string()))?;
            let spec_block = crate::templates::render(
                "demo-cloud-eks.yaml",
                &serde_json::json!({
                    "endpoint": standin.url(), "region": REGION, "account": ACCOUNT,
                    "clusterRole": aws::role_arn(ACCOUNT, "digibee-eks-cluster"),
                    "nodeRole": aws::role_arn(ACCOUNT, "digibee-eks-node"),
                    "subnets": subnets,
                }),
            )
            .map_err(|e| DemoError::Peer(e.to_string()))?;
            // Throw-away keys for the stand-in: the demo never reads the operator's AWS
            // credentials.
            let provider = crate::cloud::eks::EksProvider::with_static_credentials(
                crate::cloud::eks::EksSettings {
                    endpoint: Some(standin.url()),
                    ..crate::cloud::eks::EksSettings::new(REGION)
                },
                "AKIADEMODEMODEMODEMO",
                &crate::secret::Secret::new("demo-key-for-the-loopback-stand-in-only"),
                None,
            )
            .await?;
            let cloud = Arc::new(crate::cloud::retry::Retrying::new(
                provider,
                crate::cloud::retry::RetryPolicy::default(),
            ));
            Ok(DemoCloud {
                cloud,
                standin,
                spec_block,
                how: "the real AWS SDK talks to it with throw-away keys",
            })
        }
        .boxed()
    }
}
