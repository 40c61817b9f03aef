//! Raw realm spec: the YAML exactly as written, with source positions.
//!
//! These structs only describe the file format (`deny_unknown_fields`, camelCase keys); meaning is
//! given in [`super::resolve`], which turns them into the final types. Every value a semantic check
//! may complain about is wrapped in [`Located`] so the error can name its line and column.
//! The same structs generate the JSON Schema (`realmctl schema`).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A 1-based line and column in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

/// A value together with where it was written.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub pos: Pos,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Located {
            pos: Pos {
                line: s.referenced.line(),
                column: s.referenced.column(),
            },
            value: s.value,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// The whole `realm.yaml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "realmctl realm spec",
    description = "realm.yaml for realmctl (apiVersion realmctl/v1)"
)]
pub struct RawSpec {
    /// Always `realmctl/v1`.
    #[schemars(extend("const" = "realmctl/v1"))]
    pub api_version: Located<String>,
    /// Always `Realm`.
    #[schemars(extend("const" = "Realm"))]
    pub kind: Located<String>,
    /// Realm name: `[a-z][a-z0-9-]{1,30}`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{1,30}$"))]
    pub name: Located<String>,
    /// Cloud account and cluster.
    pub cloud: RawCloud,
    /// Domain names of the realm.
    pub domains: RawDomains,
    /// The wildcard certificate.
    pub certificate: RawCertificate,
    /// Outbound internet access.
    #[serde(default)]
    pub outbound: RawOutbound,
    /// Realm VPN.
    #[serde(default)]
    pub vpn: Option<Located<RawVpn>>,
    /// Commercial limits of the realm.
    pub subscription: RawSubscription,
    /// Where install artifacts are stored (default: a local folder under the state folder).
    #[serde(default)]
    pub artifacts: Option<RawArtifacts>,
    /// What phase 6 applies into the cluster (default: the bundle embedded in realmctl).
    #[serde(default)]
    pub platform: Option<RawPlatform>,
}

/// `platform:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPlatform {
    /// A folder holding a platform bundle (`bundle.yaml` and the manifests it lists), relative
    /// to the spec file; replaces the embedded bundle. Its files' digests are part of what the
    /// customer approves.
    pub bundle: Located<String>,
}

/// `artifacts:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawArtifacts {
    /// Object storage for artifacts: `s3://bucket/prefix`, `az://container/prefix` (Azure
    /// Blob) or `gs://bucket/prefix`. Credentials come from the provider's standard
    /// environment variables (AWS_*, AZURE_*, GOOGLE_*), never from the spec.
    pub bucket: Located<String>,
}

/// The cloud provider.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Amazon EKS.
    Eks,
    /// Azure AKS.
    Aks,
    /// Google GKE.
    Gke,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 3] = [Provider::Eks, Provider::Aks, Provider::Gke];
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eks" => Ok(Provider::Eks),
            "aks" => Ok(Provider::Aks),
            "gke" => Ok(Provider::Gke),
            _ => Err(format!("unknown cloud `{s}` (use eks, aks or gke)")),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Eks => "eks",
            Provider::Aks => "aks",
            Provider::Gke => "gke",
        })
    }
}

/// `cloud:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCloud {
    /// `eks`, `aks` or `gke`; the matching block must be present.
    pub provider: Located<Provider>,
    /// Region (AWS/GCP) or location (Azure).
    pub region: Located<String>,
    /// Optional API endpoint override (emulators, private endpoints).
    #[serde(default)]
    pub endpoint: Option<Located<String>>,
    /// AWS account details (provider `eks`).
    #[serde(default)]
    pub eks: Option<Located<RawEks>>,
    /// Azure subscription details (provider `aks`).
    #[serde(default)]
    pub aks: Option<Located<RawAks>>,
    /// Google Cloud project details (provider `gke`).
    #[serde(default)]
    pub gke: Option<Located<RawGke>>,
    /// The managed Kubernetes cluster.
    pub cluster: RawCluster,
}

/// `cloud.eks:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEks {
    /// 12-digit AWS account ID.
    pub account_id: Located<String>,
    /// IAM role ARN the EKS control plane assumes.
    pub cluster_role_arn: Located<String>,
    /// IAM role ARN the worker nodes assume.
    pub node_role_arn: Located<String>,
    /// At least two subnets in different availability zones.
    pub subnet_ids: Vec<Located<String>>,
}

/// `cloud.aks:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAks {
    /// Azure subscription ID (UUID).
    pub subscription_id: Located<String>,
    /// Resource group the cluster is created in.
    pub resource_group: Located<String>,
    /// Microsoft Entra tenant ID (UUID).
    pub tenant_id: Located<String>,
    /// Resource id of the VNet subnet the nodes join
    /// (`/subscriptions/…/resourceGroups/…/providers/Microsoft.Network/virtualNetworks/…/subnets/…`).
    pub subnet_id: Located<String>,
    /// Resource id of the user-assigned managed identity the cluster acts as; absent: a
    /// system-assigned identity AKS manages.
    #[serde(default)]
    pub identity: Option<Located<String>>,
}

/// `cloud.gke:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGke {
    /// Google Cloud project ID.
    pub project: Located<String>,
    /// The VPC network the cluster joins (its name, e.g. `digibee-vpc`).
    pub network: Located<String>,
    /// The subnetwork of that network in the spec's region the nodes join (its name).
    pub subnetwork: Located<String>,
    /// The name of the subnetwork's secondary range for pods; with `servicesRange`, or neither
    /// (then GKE creates the ranges itself).
    #[serde(default)]
    pub pods_range: Option<Located<String>>,
    /// The name of the subnetwork's secondary range for Services.
    #[serde(default)]
    pub services_range: Option<Located<String>>,
    /// A service account the installer impersonates
    /// (`installer@<project>.iam.gserviceaccount.com`); absent: it acts as its own identity.
    #[serde(default)]
    pub impersonate: Option<Located<String>>,
}

/// `cloud.cluster:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCluster {
    /// Cluster name.
    pub name: Located<String>,
    /// Kubernetes `MAJOR.MINOR`, e.g. "1.31" (quote it in YAML).
    pub kubernetes_version: Located<String>,
    /// Node image; a custom one needs the customer's recorded acceptance.
    #[serde(default)]
    pub node_image: Option<Located<RawNodeImage>>,
    /// Who may reach the Kubernetes API server; default `{access: private}`.
    #[serde(default)]
    pub api_access: Option<Located<RawApiAccess>>,
}

/// How the API server is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiAccessKind {
    /// A private endpoint only, reached from the cluster's network.
    Private,
    /// A public endpoint only, restricted to `allowedCidrs`.
    Public,
    /// Both: private, and public restricted to `allowedCidrs`.
    Both,
}

/// `cloud.cluster.apiAccess:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawApiAccess {
    /// `private` (default), `public` or `both`.
    pub access: Located<ApiAccessKind>,
    /// The networks that may reach the public endpoint (required for `public` and `both`).
    #[serde(default)]
    pub allowed_cidrs: Vec<Located<String>>,
}

/// Node image kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeImageType {
    /// The provider's default image.
    Default,
    /// A customer-supplied image (customer responsibility).
    Custom,
}

/// `cloud.cluster.nodeImage:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNodeImage {
    /// `default` or `custom`.
    #[serde(rename = "type")]
    pub kind: Located<NodeImageType>,
    /// Image reference (AMI ID, Azure image resource ID, GKE image type); required for `custom`.
    #[serde(default)]
    pub image: Option<Located<String>>,
    /// Who, on the customer's side, accepted responsibility for the custom image.
    #[serde(default)]
    pub accepted_by: Option<Located<String>>,
    /// When (RFC 3339) the acceptance was given.
    #[serde(default)]
    pub accepted_at: Option<Located<String>>,
}

/// `domains:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDomains {
    /// Base domain, e.g. `digibee.acme.com`; required names are `*.<prefix>.<base>`.
    pub base: Located<String>,
    /// Design-time prefixes (default: core, static, portal, auth).
    #[serde(default)]
    pub design_time: Option<Vec<Located<String>>>,
    /// Run-time prefixes (default: test, api).
    #[serde(default)]
    pub run_time: Option<Vec<Located<String>>>,
    /// Name servers as `ip:port` (or `ip`, port 53); empty means the system resolver.
    #[serde(default)]
    pub nameservers: Vec<Located<String>>,
}

/// `certificate:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCertificate {
    /// PEM chain, leaf first (path relative to the spec file).
    pub cert: Located<String>,
    /// PEM private key of the leaf (path relative to the spec file).
    pub key: Located<String>,
    /// Optional PEM CA bundle to verify against instead of the system roots.
    #[serde(default)]
    pub ca: Option<Located<String>>,
    /// Minimum days of validity left (default 30).
    #[serde(default)]
    pub min_days_valid: Option<Located<u32>>,
}

/// `outbound:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOutbound {
    /// Optional HTTP CONNECT proxy `http://host:port` (no credentials here).
    #[serde(default)]
    pub proxy: Option<Located<String>>,
    /// Name of the environment variable holding the proxy's `user:password`.
    #[serde(default)]
    pub proxy_credentials_env: Option<Located<String>>,
    /// Per-target deadline in milliseconds (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<Located<u64>>,
    /// `default` (the platform's list) or a list of targets.
    #[serde(default)]
    pub targets: Option<Located<RawTargets>>,
}

/// `outbound.targets`: the keyword `default` or an explicit list.
#[derive(Debug)]
pub enum RawTargets {
    /// A keyword; only `default` is valid.
    Keyword(String),
    /// An explicit list.
    List(Vec<RawTarget>),
}

impl<'de> Deserialize<'de> for RawTargets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTargets;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`default` or a list of {host, port, tls}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawTargets, E> {
                Ok(RawTargets::Keyword(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawTargets, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element::<RawTarget>()? {
                    out.push(t);
                }
                Ok(RawTargets::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RawTargets {
    fn schema_name() -> Cow<'static, str> {
        "Targets".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let list = generator.subschema_for::<Vec<RawTarget>>();
        json_schema!({
            "description": "`default` (the platform's outbound list) or an explicit list of targets",
            "oneOf": [{"const": "default"}, list]
        })
    }
}

/// One outbound target.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTarget {
    /// Host name or IP address.
    pub host: Located<String>,
    /// TCP port.
    pub port: Located<u16>,
    /// Attempt a TLS handshake with SNI (default: true for port 443).
    #[serde(default)]
    pub tls: Option<bool>,
}

/// Tunnel routing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// Route-based (VTI) tunnel: the only supported mode.
    RouteBased,
    /// Policy-based tunnel: not supported by the platform.
    PolicyBased,
}

/// `vpn:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVpn {
    /// Whether the realm VPN is wanted.
    #[serde(default)]
    pub enabled: bool,
    /// Phase-1 peer: the customer gateway's public address, a single /32.
    #[serde(default)]
    pub peer: Option<Located<String>>,
    /// `route-based` (required by the platform) or `policy-based`.
    #[serde(default)]
    pub routing: Option<Located<Routing>>,
    /// The customer's networks reached through the tunnel.
    #[serde(default)]
    pub remote_cidrs: Vec<Located<String>>,
    /// The subnet the realm's VPN instance lives in (one with a route to the internet, for its
    /// public address); default: the cluster's first subnet.
    #[serde(default)]
    pub subnet: Option<Located<String>>,
}

/// `subscription:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSubscription {
    /// Number of pipeline subscriptions (each = 1 Test RTU + 2 Prod RTU), at least 1.
    #[schemars(range(min = 1))]
    pub pipeline_subscriptions: Located<i64>,
    /// Test RTUs bought on top of the subscriptions.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub extra_test_rtus: Option<Located<i64>>,
    /// Prod RTUs bought on top of the subscriptions.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub extra_prod_rtus: Option<Located<i64>>,
}
