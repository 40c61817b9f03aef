//! The realm spec (`realm.yaml`): loading, validation and the resolved types.
//!
//! Loading happens in two stages (see `docs/spec.md`): [`raw`] mirrors the file with source
//! positions, [`resolve`] checks its meaning and produces a [`Spec`] whose required fields are
//! never optional. Every problem is reported as a [`Diagnostic`] naming file, line and column,
//! and all problems of a file are reported at once.

pub mod init;
pub mod raw;
mod resolve;
mod syntax;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use raw::{Pos, Provider, Routing};

/// One problem in a spec, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The spec file.
    pub file: PathBuf,
    /// Where in the file.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The offending source line, shown under the message.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.pos.line,
            self.pos.column,
            self.message
        )?;
        if let Some(line) = &self.source_line {
            let num = self.pos.line.to_string();
            let pad = " ".repeat(num.len());
            let caret = " ".repeat(usize::try_from(self.pos.column.saturating_sub(1)).unwrap_or(0));
            write!(f, "\n{pad} |\n{num} | {line}\n{pad} | {caret}^")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read the spec: {source}\n  help: {}", read_help(source))]
    Read {
        /// The spec path.
        path: PathBuf,
        /// Why.
        source: crate::fsutil::ReadError,
    },
    /// The file was read but is not a valid spec.
    #[error("{}", DiagnosticList(diagnostics))]
    Invalid {
        /// The spec path.
        path: PathBuf,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

fn read_help(e: &crate::fsutil::ReadError) -> &'static str {
    match e {
        crate::fsutil::ReadError::NotRegular { .. } | crate::fsutil::ReadError::TooLarge { .. } => {
            "give -f the realm spec file (YAML, at most 1 MiB); `realmctl init` writes a new one"
        }
        _ => "check the path given with -f; `realmctl init` writes a new spec",
    }
}

struct DiagnosticList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A validated realm spec.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// Path of the spec file as given.
    pub path: PathBuf,
    /// Realm name.
    pub name: String,
    /// Cloud account and cluster.
    pub cloud: Cloud,
    /// Domain names.
    pub domains: Domains,
    /// Certificate files.
    pub certificate: CertificateSpec,
    /// Outbound access.
    pub outbound: OutboundSpec,
    /// Realm VPN.
    pub vpn: VpnSpec,
    /// Commercial limits.
    pub subscription: SubscriptionSpec,
    /// Object storage for install artifacts (`s3://`, `az://`, `gs://`); `None` = the state folder.
    pub artifacts_bucket: Option<String>,
    /// The platform bundle phase 6 applies (loaded and checked when the spec is read).
    #[serde(serialize_with = "platform_source")]
    pub platform: crate::platform::bundle::Bundle,
}

/// A spec's JSON names the bundle by source, name, version and digest (its files' digests are
/// in the definition).
fn platform_source<S: serde::Serializer>(
    b: &crate::platform::bundle::Bundle,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde_json::json!({"source": b.source, "name": b.name, "version": b.version, "digest": b.digest()})
        .serialize(s)
}

/// `cloud:` resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cloud {
    /// The provider.
    pub provider: Provider,
    /// Region or location.
    pub region: String,
    /// API endpoint override.
    pub endpoint: Option<String>,
    /// The provider-specific account block.
    pub account: CloudAccount,
    /// The cluster.
    pub cluster: ClusterSpec,
}

/// The provider-specific account block.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "provider")]
pub enum CloudAccount {
    /// AWS.
    #[serde(rename_all = "camelCase")]
    Eks {
        /// Account ID.
        account_id: String,
        /// Control-plane role.
        cluster_role_arn: String,
        /// Node role.
        node_role_arn: String,
        /// Subnets.
        subnet_ids: Vec<String>,
    },
    /// Azure.
    #[serde(rename_all = "camelCase")]
    Aks {
        /// Subscription ID.
        subscription_id: String,
        /// Resource group.
        resource_group: String,
        /// Tenant ID.
        tenant_id: String,
        /// The node subnet's resource id.
        subnet_id: String,
        /// The user-assigned identity of the cluster, if any.
        identity: Option<String>,
    },
    /// Google Cloud.
    #[serde(rename_all = "camelCase")]
    Gke {
        /// Project ID.
        project: String,
        /// The VPC network's name.
        network: String,
        /// The nodes' subnetwork's name (in the spec's region).
        subnetwork: String,
        /// The secondary ranges for pods and Services, by name, if the spec names them.
        secondary_ranges: Option<(String, String)>,
        /// The service account the installer impersonates, if any.
        impersonate: Option<String>,
    },
}

/// `cloud.cluster:` resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Cluster name.
    pub name: String,
    /// `MAJOR.MINOR`.
    pub kubernetes_version: String,
    /// Node image.
    pub node_image: NodeImage,
    /// Who may reach the API server (`cloud.cluster.apiAccess`; default: private).
    pub api_access: ApiAccess,
}

/// Who may reach the cluster's Kubernetes API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "access")]
pub enum ApiAccess {
    /// Only from inside the cluster's network (and networks peered with it).
    Private,
    /// Only from the internet, and only from the listed CIDRs.
    Public {
        /// The networks allowed to reach the public endpoint.
        cidrs: Vec<IpNet>,
    },
    /// Privately from the network, and publicly from the listed CIDRs.
    Both {
        /// The networks allowed to reach the public endpoint.
        cidrs: Vec<IpNet>,
    },
}

impl ApiAccess {
    /// Whether the private endpoint is on.
    pub fn private(&self) -> bool {
        matches!(self, ApiAccess::Private | ApiAccess::Both { .. })
    }

    /// The CIDRs of the public endpoint, `None` when there is no public endpoint.
    pub fn public_cidrs(&self) -> Option<&[IpNet]> {
        match self {
            ApiAccess::Private => None,
            ApiAccess::Public { cidrs } | ApiAccess::Both { cidrs } => Some(cidrs),
        }
    }

    /// In words, for documents and messages.
    pub fn describe(&self) -> String {
        let list = |c: &[IpNet]| {
            c.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            ApiAccess::Private => "private endpoint only".to_owned(),
            ApiAccess::Public { cidrs } => format!("public endpoint only, from {}", list(cidrs)),
            ApiAccess::Both { cidrs } => {
                format!("private endpoint, and public endpoint from {}", list(cidrs))
            }
        }
    }

    /// The same access with the CIDRs in one order (clouds may list them in any order).
    pub(crate) fn normalised(&self) -> ApiAccess {
        let sort = |c: &[IpNet]| {
            let mut c = c.to_vec();
            c.sort();
            c.dedup();
            c
        };
        match self {
            ApiAccess::Private => ApiAccess::Private,
            ApiAccess::Public { cidrs } => ApiAccess::Public { cidrs: sort(cidrs) },
            ApiAccess::Both { cidrs } => ApiAccess::Both { cidrs: sort(cidrs) },
        }
    }
}

/// The node image choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum NodeImage {
    /// Provider default.
    Default,
    /// Customer-supplied image.
    Custom {
        /// Image reference.
        image: String,
        /// The recorded acceptance of the customer's responsibility, if any.
        acceptance: Option<Acceptance>,
    },
}

/// Who accepted responsibility for a custom node image, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    /// Person or role.
    pub by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// `domains:` resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Domains {
    /// Base domain.
    pub base: String,
    /// Design-time prefixes.
    pub design_time: Vec<String>,
    /// Run-time prefixes.
    pub run_time: Vec<String>,
    /// Name servers; empty = system resolver.
    pub nameservers: Vec<SocketAddr>,
}

impl Domains {
    /// Every required wildcard name, `*.<prefix>.<base>`, design time first.
    pub fn required_names(&self) -> Vec<String> {
        self.design_time
            .iter()
            .chain(&self.run_time)
            .map(|p| format!("*.{p}.{}", self.base))
            .collect()
    }
}

/// `certificate:` resolved; paths are relative to the current directory.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Optional CA bundle.
    pub ca: Option<PathBuf>,
    /// Minimum days of validity left.
    pub min_days_valid: u32,
}

/// `outbound:` resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundSpec {
    /// HTTP CONNECT proxy.
    pub proxy: Option<ProxySpec>,
    /// Per-target deadline.
    pub timeout: Duration,
    /// What to check.
    pub targets: Vec<Target>,
}

/// An HTTP CONNECT proxy. Credentials come from the environment variable it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// Proxy host.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// Environment variable holding `user:password`, if the proxy needs basic auth.
    pub credentials_env: Option<String>,
}

/// One outbound target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether to do a TLS handshake.
    pub tls: bool,
}

/// `vpn:` resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpnSpec {
    /// Whether a realm VPN is wanted.
    pub enabled: bool,
    /// Phase-1 peer as written (a bare address is a host prefix).
    pub peer: Option<IpNet>,
    /// Routing mode.
    pub routing: Option<Routing>,
    /// Remote networks.
    pub remote_cidrs: Vec<IpNet>,
    /// The subnet of the VPN instance, if the spec names one (else the cluster's first).
    /// Left out of the JSON when `None`, so specs without it digest as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
}

/// `subscription:` resolved.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// Pipeline subscriptions (≥ 1).
    pub pipeline_subscriptions: u32,
    /// Extra Test RTUs.
    pub extra_test_rtus: u32,
    /// Extra Prod RTUs.
    pub extra_prod_rtus: u32,
}

/// Reads and validates a spec file.
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    let text =
        crate::fsutil::read_capped_string(path, crate::fsutil::caps::SPEC).map_err(|source| {
            SpecError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
    parse(&text, path)
}

/// The longest message or quoted value a diagnostic shows: a huge value in a spec is cut, not
/// echoed whole.
pub const MAX_SHOWN: usize = 200;

/// `s` cut to at most [`MAX_SHOWN`] characters, marking the cut.
pub fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN {
        return s.to_owned();
    }
    let kept: String = s.chars().take(MAX_SHOWN).collect();
    format!("{kept}… ({} characters in all)", s.chars().count())
}

/// Validates spec text; `path` names the file in diagnostics and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Spec, SpecError> {
    let invalid = |diagnostics| SpecError::Invalid {
        path: path.to_owned(),
        diagnostics,
    };
    let with_lines = |mut diags: Vec<Diagnostic>| {
        for d in &mut diags {
            let idx = usize::try_from(d.pos.line).unwrap_or(0).checked_sub(1);
            d.source_line = idx
                .and_then(|i| text.lines().nth(i))
                .map(|l| syntax::redact_line(l).chars().take(160).collect());
            d.message = shorten(&d.message);
        }
        invalid(diags)
    };
    let raw: raw::RawSpec =
        serde_saphyr::from_str(text).map_err(|e| with_lines(vec![syntax_diagnostic(path, &e)]))?;
    resolve::resolve(raw, path).map_err(with_lines)
}

/// `url` with any `user:password@` replaced by `***@`, for messages.
pub fn redact_url(url: &str) -> String {
    syntax::redact_userinfo(url)
}

/// Whether `name` is a valid realm name (`[a-z][a-z0-9-]{1,30}`, not the reserved `admin`).
pub fn is_valid_realm_name(name: &str) -> bool {
    syntax::is_realm_name(name) && name != "admin"
}

/// The JSON Schema of the spec, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawSpec)).expect("a schema is always JSON")
}

fn syntax_diagnostic(path: &Path, e: &serde_saphyr::Error) -> Diagnostic {
    let pos = e
        .location()
        .map(|l| Pos {
            line: l.line(),
            column: l.column(),
        })
        .unwrap_or(Pos { line: 1, column: 1 });
    let full = e.without_snippet().to_string();
    // The parser appends the position it already gave us; keep the message short.
    let suffix = format!(" at line {}, column {}", pos.line, pos.column);
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    Diagnostic {
        file: path.to_owned(),
        pos,
        message,
        help: Some(
            "see docs/spec.md or `realmctl schema` for the spec format; keys are camelCase".into(),
        ),
        source_line: None,
    }
}
