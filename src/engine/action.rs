//! The catalogue of step actions: their names, whether this build can run them, and their
//! default timeout and retry budget.
//!
//! The catalogue is a closed enum so a playbook naming an unknown action is rejected when it is
//! loaded, before anything runs. Actions that belong to later work (cloud calls) are known by
//! name but unavailable: `plan` shows them as such and `install` stops there with exit 1.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// Every action a playbook step can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
pub enum Action {
    /// Validates the realm spec (phase 1).
    SpecValidate,
    /// Checks the realm VPN prerequisites (phase 1).
    VpnPrerequisites,
    /// The custom-node-image acceptance gate (phase 1).
    NodeImageAcceptance,
    /// Cloud account, region, quota and service checks (phase 1; cloud support).
    CloudAccount,
    /// Credential intake (phase 2; cloud support).
    CloudCredentials,
    /// Cloud identity and permission checks (phase 3; cloud support).
    CloudPermissions,
    /// The wildcard certificate checks (phase 3).
    ChecksCertificate,
    /// The DNS checks (phase 3).
    ChecksDns,
    /// The outbound-host checks (phase 3).
    ChecksOutbound,
    /// Renders and stores every install artifact (phase 4).
    ArtifactsRender,
    /// Renders the roles-and-resources document (phase 5).
    RolesRender,
    /// Creates or adopts the managed cluster and node pools (phase 6; cloud support).
    ClusterApply,
    /// Waits until the cluster is ready (phase 6; cloud support).
    ClusterWait,
    /// Seeds the realm's quota config into the enforcement core (phase 6).
    QuotaSeed,
    /// Test only: an idempotent side effect with a counter.
    #[cfg(feature = "test-actions")]
    TestEffect,
    /// Test only: fails with a retryable error a given number of times.
    #[cfg(feature = "test-actions")]
    TestFlaky,
    /// Test and benchmark only: does nothing (measures the engine's own cost per step).
    #[cfg(feature = "test-actions")]
    TestNoop,
}

/// Whether this build can run an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Availability {
    /// Runs in this build.
    Available,
    /// Known, but arrives with later work; the reason says which.
    Unavailable(&'static str),
}

impl Action {
    /// Every action of this build.
    pub const ALL: &'static [Action] = &[
        Action::SpecValidate,
        Action::VpnPrerequisites,
        Action::NodeImageAcceptance,
        Action::CloudAccount,
        Action::CloudCredentials,
        Action::CloudPermissions,
        Action::ChecksCertificate,
        Action::ChecksDns,
        Action::ChecksOutbound,
        Action::ArtifactsRender,
        Action::RolesRender,
        Action::ClusterApply,
        Action::ClusterWait,
        Action::QuotaSeed,
        #[cfg(feature = "test-actions")]
        Action::TestEffect,
        #[cfg(feature = "test-actions")]
        Action::TestFlaky,
        #[cfg(feature = "test-actions")]
        Action::TestNoop,
    ];

    /// The name used in playbooks.
    pub fn name(self) -> &'static str {
        match self {
            Action::SpecValidate => "spec.validate",
            Action::VpnPrerequisites => "vpn.prerequisites",
            Action::NodeImageAcceptance => "node_image.acceptance",
            Action::CloudAccount => "cloud.account",
            Action::CloudCredentials => "cloud.credentials",
            Action::CloudPermissions => "cloud.permissions",
            Action::ChecksCertificate => "checks.certificate",
            Action::ChecksDns => "checks.dns",
            Action::ChecksOutbound => "checks.outbound",
            Action::ArtifactsRender => "artifacts.render",
            Action::RolesRender => "roles.render",
            Action::ClusterApply => "cluster.apply",
            Action::ClusterWait => "cluster.wait",
            Action::QuotaSeed => "quota.seed",
            #[cfg(feature = "test-actions")]
            Action::TestEffect => "test.effect",
            #[cfg(feature = "test-actions")]
            Action::TestFlaky => "test.flaky",
            #[cfg(feature = "test-actions")]
            Action::TestNoop => "test.noop",
        }
    }

    /// Whether this build can run it.
    pub fn availability(self) -> Availability {
        const CLOUD: &str = "needs cloud provider support, which is not in this build";
        match self {
            Action::CloudAccount
            | Action::CloudCredentials
            | Action::CloudPermissions
            | Action::ClusterApply
            | Action::ClusterWait => Availability::Unavailable(CLOUD),
            _ => Availability::Available,
        }
    }

    /// How long one attempt may take unless the step says otherwise.
    pub fn default_timeout(self) -> Duration {
        match self {
            Action::ChecksDns | Action::ChecksOutbound => Duration::from_secs(10 * 60),
            Action::ClusterApply | Action::ClusterWait => Duration::from_secs(45 * 60),
            _ => Duration::from_secs(5 * 60),
        }
    }

    /// Whether the action's inputs include the contents of the certificate files.
    pub fn reads_certificate_files(self) -> bool {
        matches!(self, Action::ChecksCertificate | Action::ChecksDns)
    }
}

impl From<Action> for &'static str {
    fn from(a: Action) -> Self {
        a.name()
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
    fn cloud_actions_are_unavailable_and_the_rest_run() {
        assert!(matches!(
            Action::ClusterApply.availability(),
            Availability::Unavailable(_)
        ));
        assert_eq!(Action::QuotaSeed.availability(), Availability::Available);
        assert_eq!(
            Action::ChecksCertificate.availability(),
            Availability::Available
        );
    }
}
