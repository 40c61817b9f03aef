//! The catalogue of step actions: one [`ActionDef`] per action, holding everything about it —
//! its name, what it needs to run, its default timeout and retries, the parameters it takes,
//! the inputs its digest covers, and the function that carries it out.
//!
//! Each family has its own file (`spec`, `checks`, `render`, `quota`, `cloud`, `platform`,
//! `realm`, `vpn`, `test`) with its definitions next to their implementations. Adding an action means writing its `ActionDef`
//! there and one line in the [`catalogue!`] below: the compiler then insists on every field
//! (inputs included), and the tests below check names, inputs and parameters.
//!
//! The catalogue is closed: a playbook naming an unknown action is rejected when it is loaded,
//! before anything runs.

mod checks;
mod cloud;
mod cluster_api;
mod destroy;
mod destroy_core;
mod destroy_objects;
mod platform;
mod quota;
mod realm;
pub mod render;
mod spec;
#[cfg(feature = "test-actions")]
mod test;
mod upgrade;
mod vpn;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use serde::Serialize;
use serde_json::{Value, json};

use super::ctx::{Ctx, Failure, Outcome};
pub use super::options::Capabilities;
use crate::spec::Spec;

/// Carries out one attempt of an action. The future need not be `Send`: the engine awaits it
/// in place (never spawns it), and blocking work inside goes through the context's gate.
pub type RunFn = for<'a> fn(&'a Ctx<'a>) -> LocalBoxFuture<'a, Result<Outcome, Failure>>;

/// Everything about one action.
pub struct ActionDef {
    /// The name playbooks use, e.g. `checks.dns`.
    pub name: &'static str,
    /// One line on what it does (plans, docs).
    pub summary: &'static str,
    /// What this run must have for the action to run.
    pub needs: Needs,
    /// Which workflow's playbooks may name it: an install playbook never deletes, a destroy
    /// playbook never builds.
    pub workflow: Workflow,
    /// How long one attempt may take unless the step says otherwise.
    pub timeout: Duration,
    /// Extra attempts after a retryable failure unless the step says otherwise.
    pub retries: u32,
    /// The parameters it takes.
    pub params: &'static [ParamDef],
    /// What its input digest covers (besides its name and parameters).
    pub inputs: &'static [Input],
    /// The implementation.
    pub run: RunFn,
}

/// The two workflows a playbook can be: building a realm or tearing it down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Workflow {
    /// `install`: the six phases of the brief (`kind: Playbook`).
    #[default]
    Install,
    /// `destroy`: tearing the realm down (`kind: DestroyPlaybook`).
    Destroy,
    /// `upgrade`: moving the realm's cluster one Kubernetes minor up (`kind: UpgradePlaybook`).
    Upgrade,
}

impl Workflow {
    /// The playbook `kind` of this workflow.
    pub fn kind(self) -> &'static str {
        match self {
            Workflow::Install => "Playbook",
            Workflow::Destroy => "DestroyPlaybook",
            Workflow::Upgrade => "UpgradePlaybook",
        }
    }

    /// The command that runs it.
    pub fn command(self) -> &'static str {
        match self {
            Workflow::Install => "install",
            Workflow::Destroy => "destroy",
            Workflow::Upgrade => "upgrade",
        }
    }
}

/// What an action needs beyond this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Runs anywhere.
    Nothing,
    /// Talks to the realm's cloud through a cloud provider.
    Cloud,
}

pub use super::ctx::NO_CLOUD_PROVIDER;

/// Whether an action can run in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Availability {
    /// It can.
    Available,
    /// It cannot; the reason says why.
    Unavailable(&'static str),
}

impl ActionDef {
    /// Whether the action can run with `caps` for a realm on `cloud`.
    pub fn availability(&self, caps: Capabilities, cloud: crate::spec::Provider) -> Availability {
        match self.needs {
            Needs::Cloud if caps.cloud != Some(cloud) => {
                Availability::Unavailable(NO_CLOUD_PROVIDER)
            }
            _ => Availability::Available,
        }
    }
}

/// One parameter of an action.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    /// Its key.
    pub name: &'static str,
    /// Its kind of value.
    pub kind: ParamKind,
    /// Whether a step must give it.
    pub required: bool,
}

/// The kind of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A string.
    Text,
    /// A whole number ≥ 0.
    Count,
}

impl ParamKind {
    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::Text => "a string",
            ParamKind::Count => "a whole number",
        }
    }
}

/// Something an action's result depends on: when it changes, a succeeded step runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The whole resolved spec.
    Spec,
    /// One part of the spec.
    Part(SpecPart),
    /// The contents of the certificate, key and CA files.
    CertificateFiles,
    /// The realm's cluster definition (built by its cloud's profile from the spec and the
    /// sizing data): whatever changes it — size, version, network, exposure, roles — re-runs
    /// the step.
    Definition,
    /// Where `quota.seed` writes.
    QuotaTarget,
    /// What `destroy` was asked to delete beyond the default (`--delete-volumes`).
    Teardown,
}

/// A part of the resolved spec an action reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecPart {
    /// `name`.
    Name,
    /// `cloud`.
    Cloud,
    /// `cloud.cluster.nodeImage`.
    NodeImage,
    /// `domains`.
    Domains,
    /// `certificate`.
    Certificate,
    /// `outbound`.
    Outbound,
    /// `outbound.timeoutMs` alone (the DNS deadline).
    NetTimeout,
    /// `vpn`.
    Vpn,
    /// `subscription`.
    Subscription,
}

impl SpecPart {
    /// The key and value of this part of `spec`.
    pub fn value(self, spec: &Spec) -> (&'static str, Value) {
        fn v<T: Serialize>(x: &T) -> Value {
            serde_json::to_value(x).expect("spec parts serialise")
        }
        match self {
            SpecPart::Name => ("name", json!(spec.name)),
            SpecPart::Cloud => ("cloud", v(&spec.cloud)),
            SpecPart::NodeImage => ("nodeImage", v(&spec.cloud.cluster.node_image)),
            SpecPart::Domains => ("domains", v(&spec.domains)),
            SpecPart::Certificate => ("certificate", v(&spec.certificate)),
            SpecPart::Outbound => ("outbound", v(&spec.outbound)),
            SpecPart::NetTimeout => (
                "timeoutMs",
                json!(u64::try_from(spec.outbound.timeout.as_millis()).unwrap_or(u64::MAX)),
            ),
            SpecPart::Vpn => ("vpn", v(&spec.vpn)),
            SpecPart::Subscription => ("subscription", v(&spec.subscription)),
        }
    }
}

/// Declares the closed set of actions: the enum, the list of all of them, and where each one's
/// definition is. One line per action.
macro_rules! catalogue {
    ($( $(#[cfg($c:meta)])? $variant:ident => $def:path ),* $(,)?) => {
        /// Every action a playbook step can name; each one's facts are its [`ActionDef`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $(
                $(#[cfg($c)])?
                #[doc = concat!("Defined by `", stringify!($def), "`.")]
                $variant,
            )*
        }

        impl Action {
            /// Every action of this build.
            pub const ALL: &'static [Action] = &[ $( $(#[cfg($c)])? Action::$variant, )* ];

            /// Its definition.
            pub fn def(self) -> &'static ActionDef {
                match self {
                    $( $(#[cfg($c)])? Action::$variant => &$def, )*
                }
            }
        }
    };
}

catalogue! {
    SpecValidate => spec::VALIDATE,
    VpnPrerequisites => checks::VPN,
    NodeImageAcceptance => spec::NODE_IMAGE,
    CloudAccount => cloud::ACCOUNT,
    CloudCredentials => cloud::CREDENTIALS,
    CloudPermissions => cloud::PERMISSIONS,
    ChecksCertificate => checks::CERTIFICATE,
    ChecksDns => checks::DNS,
    ChecksOutbound => checks::OUTBOUND,
    ArtifactsRender => render::ARTIFACTS,
    RolesRender => render::ROLES,
    ClusterApply => cloud::CLUSTER_APPLY,
    ClusterWait => cloud::CLUSTER_WAIT,
    PlatformApply => platform::APPLY,
    QuotaSeed => quota::SEED,
    RealmLive => realm::LIVE,
    VpnApply => vpn::APPLY,
    VpnCustomer => vpn::CUSTOMER,
    DestroyPlan => destroy::PLAN,
    DestroyRetire => destroy_core::RETIRE,
    DestroyInCluster => destroy_objects::IN_CLUSTER,
    DestroyNodePools => destroy::NODE_POOLS,
    DestroyCluster => destroy::CLUSTER,
    DestroyVpn => destroy::VPN,
    DestroySweep => destroy::SWEEP,
    UpgradePlan => upgrade::PLAN,
    UpgradeControlPlane => upgrade::CONTROL_PLANE,
    UpgradeNodePools => upgrade::NODE_POOLS,
    #[cfg(feature = "test-actions")] TestEffect => test::EFFECT,
    #[cfg(feature = "test-actions")] TestFlaky => test::FLAKY,
    #[cfg(feature = "test-actions")] TestNoop => test::NOOP,
    #[cfg(feature = "test-actions")] TestBlocking => test::BLOCKING,
}

impl Action {
    /// The name used in playbooks.
    pub fn name(self) -> &'static str {
        self.def().name
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or(())
    }
}

/// Boxes an action's future: the one adapter from `async fn(&Ctx)` to [`RunFn`].
macro_rules! run_fn {
    ($f:path) => {{
        fn boxed<'a>(
            ctx: &'a $crate::engine::ctx::Ctx<'a>,
        ) -> futures::future::LocalBoxFuture<
            'a,
            Result<$crate::engine::ctx::Outcome, $crate::engine::ctx::Failure>,
        > {
            Box::pin($f(ctx))
        }
        boxed
    }};
}
pub(crate) use run_fn;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>(), Ok(*a));
            assert!(seen.insert(a.name()), "duplicate action name {a}");
        }
        assert!("cluster.create".parse::<Action>().is_err());
    }

    #[test]
    fn every_real_action_digests_some_input_and_declares_sane_defaults() {
        for a in Action::ALL {
            let d = a.def();
            assert!(!d.summary.is_empty(), "{a} has no summary");
            assert!(!d.timeout.is_zero(), "{a} has no timeout");
            if !a.name().starts_with("test.") {
                assert!(
                    !d.inputs.is_empty(),
                    "{a} declares no inputs: a changed spec would never re-run it"
                );
            }
            let mut keys = std::collections::HashSet::new();
            for p in d.params {
                assert!(keys.insert(p.name), "{a} declares {} twice", p.name);
            }
        }
    }

    #[test]
    fn cloud_actions_need_a_provider_and_the_rest_run_anywhere() {
        use crate::spec::Provider;
        let none = Capabilities::default();
        let cloud = Capabilities {
            cloud: Some(Provider::Eks),
        };
        for a in [
            Action::CloudAccount,
            Action::CloudCredentials,
            Action::CloudPermissions,
            Action::ClusterApply,
            Action::ClusterWait,
        ] {
            assert_eq!(
                a.def().availability(none, Provider::Eks),
                Availability::Unavailable(NO_CLOUD_PROVIDER)
            );
            assert_eq!(
                a.def().availability(cloud, Provider::Eks),
                Availability::Available
            );
            assert_eq!(
                a.def().availability(cloud, Provider::Gke),
                Availability::Unavailable(NO_CLOUD_PROVIDER),
                "an EKS provider does not run a GKE realm's steps"
            );
        }
        assert_eq!(
            Action::QuotaSeed.def().availability(none, Provider::Eks),
            Availability::Available
        );
    }
}
