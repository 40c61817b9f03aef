//! The one registry of clouds: for each provider, how this build connects to it (its client on
//! the cloud's standard credential chain) and its demo stand-in. A provider this build has no
//! client for has neither, and every command says so; nothing else in the CLI matches on the
//! provider. What a cloud *is* (its profile) comes from the library's
//! `realmctl::cloud::profile::for_provider`.

use std::sync::Arc;

use realmctl::cloud::{Cloud, CloudError};
use realmctl::demo::CloudDemo;
use realmctl::spec::{CloudAccount, Provider};

/// The cloud provider of the spec's cloud, on that cloud's standard credential chain (which the
/// SDK reads from the environment and shared config files), wrapped in the retry decorator;
/// `None` when this build has no client for that cloud (the registry says which). Makes no
/// call: `plan` stays offline.
pub fn connect(
    runtime: &tokio::runtime::Runtime,
    spec: &realmctl::spec::Spec,
) -> Result<Option<Arc<dyn Cloud>>, super::BadInput> {
    match entry(spec.cloud.provider).connect {
        None => Ok(None),
        Some(connect) => connect(
            runtime,
            &Target {
                region: &spec.cloud.region,
                endpoint: spec.cloud.endpoint.as_deref(),
                account: &spec.cloud.account,
            },
        )
        .map(Some)
        .map_err(super::bad),
    }
}

/// Where a client talks to.
#[cfg_attr(
    not(any(feature = "eks", feature = "aks", feature = "gke")),
    allow(dead_code)
)]
pub struct Target<'a> {
    /// Region or location.
    pub region: &'a str,
    /// The endpoint override, if any (checked by the client: https, or http to loopback).
    pub endpoint: Option<&'a str>,
    /// The spec's account block (subscription, project…).
    pub account: &'a CloudAccount,
}

/// Builds a client on the cloud's standard chain (no call made: `plan` stays offline).
pub type Connect = fn(&tokio::runtime::Runtime, &Target<'_>) -> Result<Arc<dyn Cloud>, CloudError>;

/// What this build has for one cloud.
pub struct Entry {
    /// Its client.
    pub connect: Option<Connect>,
    /// Its demo.
    pub demo: Option<&'static dyn CloudDemo>,
}

/// The registry.
pub fn entry(provider: Provider) -> Entry {
    match provider {
        #[cfg(feature = "eks")]
        Provider::Eks => Entry {
            connect: Some(eks),
            demo: Some(&realmctl::demo::eks::EksDemo),
        },
        #[cfg(feature = "aks")]
        Provider::Aks => Entry {
            connect: Some(aks),
            demo: Some(&realmctl::demo::aks::AksDemo),
        },
        #[cfg(feature = "gke")]
        Provider::Gke => Entry {
            connect: Some(gke),
            demo: Some(&realmctl::demo::gke::GkeDemo),
        },
        #[allow(unreachable_patterns)]
        _ => Entry {
            connect: None,
            demo: None,
        },
    }
}

/// EKS on the AWS standard chain, behind the retry decorator.
#[cfg(feature = "eks")]
fn eks(runtime: &tokio::runtime::Runtime, t: &Target<'_>) -> Result<Arc<dyn Cloud>, CloudError> {
    use realmctl::cloud::eks::{EksProvider, EksSettings};
    use realmctl::cloud::retry::{RetryPolicy, Retrying};
    let settings = EksSettings {
        endpoint: t.endpoint.map(str::to_owned),
        ..EksSettings::new(t.region)
    };
    let p = runtime.block_on(EksProvider::standard_chain(settings))?;
    Ok(Arc::new(Retrying::new(p, RetryPolicy::default())))
}

/// AKS on the Azure credential chain (`AZURE_*` variables, managed identity, Azure CLI),
/// behind the retry decorator.
#[cfg(feature = "aks")]
fn aks(_runtime: &tokio::runtime::Runtime, t: &Target<'_>) -> Result<Arc<dyn Cloud>, CloudError> {
    use realmctl::cloud::aks::{AksProvider, AksSettings};
    use realmctl::cloud::retry::{RetryPolicy, Retrying};
    let CloudAccount::Aks {
        subscription_id,
        resource_group,
        tenant_id,
        ..
    } = t.account
    else {
        return Err(CloudError::new(
            realmctl::cloud::CloudErrorKind::Invalid,
            "aks:settings",
            "the spec has no cloud.aks block",
        ));
    };
    let settings = AksSettings {
        endpoint: t.endpoint.map(str::to_owned),
        env: super::env::azure(),
        ..AksSettings::new(t.region, subscription_id, resource_group, tenant_id)
    };
    Ok(Arc::new(Retrying::new(
        AksProvider::new(settings)?,
        RetryPolicy::default(),
    )))
}

/// GKE on Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's file, the
/// metadata server), impersonating `cloud.gke.impersonate` when given, behind the retry
/// decorator. `cloud.endpoint`, when given, serves every Google API realmctl calls.
#[cfg(feature = "gke")]
fn gke(_runtime: &tokio::runtime::Runtime, t: &Target<'_>) -> Result<Arc<dyn Cloud>, CloudError> {
    use realmctl::cloud::gke::{Endpoints, GkeProvider, GkeSettings};
    use realmctl::cloud::retry::{RetryPolicy, Retrying};
    let CloudAccount::Gke {
        project,
        impersonate,
        ..
    } = t.account
    else {
        return Err(CloudError::new(
            realmctl::cloud::CloudErrorKind::Invalid,
            "gke:settings",
            "the spec has no cloud.gke block",
        ));
    };
    let env = super::env::google().map_err(|why| {
        CloudError::new(
            realmctl::cloud::CloudErrorKind::ExpiredCredentials,
            "login:credentials",
            why,
        )
    })?;
    let settings = GkeSettings {
        endpoints: t.endpoint.map_or_else(Endpoints::public, Endpoints::all_at),
        env,
        impersonate: impersonate.clone(),
        ..GkeSettings::new(project, t.region)
    };
    Ok(Arc::new(Retrying::new(
        GkeProvider::new(settings)?,
        RetryPolicy::default(),
    )))
}
