//! The cloud actions: `cloud.account` (phase 1), `cloud.credentials` (phase 2),
//! `cloud.permissions` (phase 3), `cluster.apply` and `cluster.wait` (phase 6). They need a cloud
//! provider for the realm's cloud; a run without one cannot carry them out, and `plan` says so.

use std::time::Duration;

use super::{ActionDef, Input, NO_CLOUD_PROVIDER, Needs, SpecPart, run_fn};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::FailureKind;

const INPUTS: &[Input] = &[Input::Part(SpecPart::Name), Input::Part(SpecPart::Cloud)];

/// `cloud.account`.
pub const ACCOUNT: ActionDef = ActionDef {
    name: "cloud.account",
    summary: "checks the cloud account, region, quotas and services the spec names",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(unavailable),
};

/// `cloud.credentials`.
pub const CREDENTIALS: ActionDef = ActionDef {
    name: "cloud.credentials",
    summary: "records which identity the install runs as and when its credentials expire",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(unavailable),
};

/// `cloud.permissions`.
pub const PERMISSIONS: ActionDef = ActionDef {
    name: "cloud.permissions",
    summary: "checks that the install identity has every permission the install needs",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(unavailable),
};

/// `cluster.apply`.
pub const CLUSTER_APPLY: ActionDef = ActionDef {
    name: "cluster.apply",
    summary: "creates or adopts the managed cluster and its node pools",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(45 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(unavailable),
};

/// `cluster.wait`.
pub const CLUSTER_WAIT: ActionDef = ActionDef {
    name: "cluster.wait",
    summary: "waits until the cluster and its node pools are ready",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(45 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(unavailable),
};

async fn unavailable(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    Err(Failure {
        kind: FailureKind::Unavailable,
        message: format!("step {}: {NO_CLOUD_PROVIDER}", ctx.step),
        output: None,
    })
}
