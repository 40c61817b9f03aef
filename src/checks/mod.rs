//! Preflight checks and their common result shape.
//!
//! Each submodule gathers facts (files, DNS answers, sockets) and turns them into
//! [`CheckResult`]s through pure decision functions that are unit-tested in the same file.
//! Every `warn`/`fail` names its owner and carries a one-line fix.

pub mod certificate;
pub mod dns;
pub mod edge;
pub mod node_image;
pub mod outbound;
pub mod vpn;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Requirement met.
    Pass,
    /// Works, but someone should look (e.g. expiring soon, TLS interception).
    Warn,
    /// Requirement not met.
    Fail,
}

impl Status {
    /// Lowercase name as in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// The realm spec itself (node image acceptance, ...).
    Spec,
    /// The wildcard certificate.
    Certificate,
    /// DNS names.
    Dns,
    /// Outbound internet access.
    Outbound,
    /// Realm VPN prerequisites.
    Vpn,
    /// Cloud identity and permissions.
    Access,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 6] = [
        Category::Spec,
        Category::Certificate,
        Category::Dns,
        Category::Outbound,
        Category::Vpn,
        Category::Access,
    ];

    /// Heading for reports.
    pub fn title(self) -> &'static str {
        match self {
            Category::Spec => "Spec",
            Category::Certificate => "Certificate",
            Category::Dns => "DNS",
            Category::Outbound => "Outbound",
            Category::Vpn => "VPN",
            Category::Access => "Access",
        }
    }

    /// Lowercase name as in the JSON output and `--only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Spec => "spec",
            Category::Certificate => "certificate",
            Category::Dns => "dns",
            Category::Outbound => "outbound",
            Category::Vpn => "vpn",
            Category::Access => "access",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown check category `{s}` (use certificate, dns, outbound, vpn, access or spec)"))
    }
}

/// Who must act on a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// The customer (their network, certificate, DNS, account).
    Customer,
    /// Digibee's cloud team.
    Digibee,
}

impl Owner {
    /// Lowercase name as in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Customer => "customer",
            Owner::Digibee => "digibee",
        }
    }
}

/// One check result, in the shape of the brief's `preflight --output json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// Stable identifier, e.g. `certificate.coverage`.
    pub id: String,
    /// Category.
    pub category: Category,
    /// What was checked (a name, a host:port, a file).
    pub subject: String,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// One line saying how to fix a `warn`/`fail`; `null` on `pass`.
    pub fix: Option<String>,
    /// Who must act.
    pub owner: Owner,
    /// How long the check took.
    pub duration_ms: u64,
}

impl CheckResult {
    /// A passing, customer-owned result.
    pub fn pass(
        id: impl Into<String>,
        category: Category,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(id, category, subject, Status::Pass, message, None)
    }

    /// A warning with its fix.
    pub fn warn(
        id: impl Into<String>,
        category: Category,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(
            id,
            category,
            subject,
            Status::Warn,
            message,
            Some(fix.into()),
        )
    }

    /// A failure with its fix.
    pub fn fail(
        id: impl Into<String>,
        category: Category,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(
            id,
            category,
            subject,
            Status::Fail,
            message,
            Some(fix.into()),
        )
    }

    fn new(
        id: impl Into<String>,
        category: Category,
        subject: impl Into<String>,
        status: Status,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        CheckResult {
            id: id.into(),
            category,
            subject: subject.into(),
            status,
            message: message.into(),
            fix,
            owner: Owner::Customer,
            duration_ms: 0,
        }
    }

    /// Sets the owner.
    pub fn owned_by(mut self, owner: Owner) -> Self {
        self.owner = owner;
        self
    }

    /// Sets the duration.
    pub fn took(mut self, elapsed: std::time::Duration) -> Self {
        self.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self
    }
}

/// Who must fix the first failing result, if any failed.
pub fn first_failure_owner(results: &[CheckResult]) -> Option<Owner> {
    results
        .iter()
        .find(|r| r.status == Status::Fail)
        .map(|r| r.owner)
}

/// Receives progress while checks run; every method defaults to doing nothing.
pub trait Observer: Send + Sync {
    /// A category is about to run `checks` checks (an estimate for DNS/outbound).
    fn on_category_start(&self, _category: Category, _checks: usize) {}
    /// One check finished.
    fn on_check(&self, _result: &CheckResult) {}
}

/// An observer that ignores everything.
pub struct NoProgress;
impl Observer for NoProgress {}
