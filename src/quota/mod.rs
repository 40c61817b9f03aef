//! The enforcement core: subscription and RTU admission for every pipeline deployment.
//!
//! [`model`] holds the rules as pure functions; [`ledger`] stores each realm's config,
//! active deployments and an append-only decision log in SQLite, one `BEGIN IMMEDIATE`
//! transaction per admission so concurrent requests can never over-admit. [`Admission`] is the
//! JSON answer shared by the CLI and the HTTP service. See `docs/quota-model.md`.

pub mod batch;
pub mod http;
mod known;
pub mod ledger;
mod ledger_log;
mod ledger_rows;
mod ledger_schema;
pub mod model;
mod ops;
pub mod postgres;
pub mod request;
pub mod retire;
pub mod seed;
pub mod store;
pub mod tokens;
mod wire;

use serde::Deserialize;

use crate::requirements;
use crate::spec::SubscriptionSpec;
use model::{Decision, Deployment, Env, EnvUsage, RealmConfig, Size, Version};

/// A realm's config from its spec, with the default platform quotas.
pub fn config_from_spec(s: &SubscriptionSpec) -> RealmConfig {
    let d = &requirements::embedded().quota.defaults;
    RealmConfig {
        pipeline_subscriptions: u64::from(s.pipeline_subscriptions),
        extra_test_rtus: u64::from(s.extra_test_rtus),
        extra_prod_rtus: u64::from(s.extra_prod_rtus),
        max_replicas: d.max_replicas_per_deployment,
        max_size: d.max_size_per_deployment,
    }
}

/// The answer to a deployment request (CLI `--output json` and HTTP body, both written by
/// [`Admission::to_json`]; read back from a remote core's answer).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    /// Admitted or not.
    pub admitted: bool,
    /// `null`, `no_pipeline_subscription`, `insufficient_rtu` or `quota_exceeded`.
    pub reason: Option<model::Reason>,
    /// Explanation.
    pub detail: String,
    /// Realm.
    pub realm: String,
    /// Environment.
    pub environment: Env,
    /// Pipeline.
    pub pipeline: String,
    /// Requested version.
    pub version: Version,
    /// Size.
    pub size: Size,
    /// Replicas.
    pub replicas: u32,
    /// RTUs the deployment needs.
    pub rtus_requested: u64,
    /// The version it replaces, if any.
    pub replaces: Option<Version>,
    /// Environment usage before.
    pub usage_before: EnvUsage,
    /// Environment usage after (unchanged when denied).
    pub usage_after: EnvUsage,
}

impl Admission {
    /// Builds the answer for `request` and its decision.
    pub fn new(realm: &str, request: &Deployment, d: &Decision) -> Self {
        Admission {
            admitted: d.admitted,
            reason: d.reason,
            detail: d.detail.clone(),
            realm: realm.to_owned(),
            environment: request.environment,
            pipeline: request.pipeline.clone(),
            version: request.version,
            size: request.size,
            replicas: request.replicas,
            rtus_requested: d.rtus_requested,
            replaces: d.replaces.as_ref().map(|r| r.version),
            usage_before: d.before,
            usage_after: d.after,
        }
    }
}

/// Checks a pipeline name: 1-128 of letters, digits, `-`, `_`, `.`.
pub fn valid_pipeline(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}
