//! Amazon EKS through the AWS SDK for Rust (feature `eks`): STS for the caller, IAM for roles
//! and permission simulation, EC2 for subnets, Service Quotas for the vCPU quota, EKS for the
//! cluster and its managed node group, Elastic Load Balancing for what `destroy` sweeps. SDK types stay in this folder; the engine sees the
//! provider-neutral facts of [`crate::cloud::facts`].
//!
//! Credentials come from the AWS standard chain (environment, profile and SSO, web identity,
//! IMDS) or, for the demo and tests, from explicit static keys. The SDK's own retries are off:
//! retries are a decorator ([`crate::cloud::retry`]) and the engine's step policy, both deciding
//! by [`crate::cloud::CloudErrorKind`].

mod errors;
mod teardown;
mod token;
pub mod transport;
mod vpn;
mod vpn_teardown;

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_eks::types::{
    AmiTypes, ClusterStatus, NodegroupScalingConfig, NodegroupStatus, VpcConfigRequest,
};
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
use aws_smithy_types::retry::RetryConfig;
use futures::FutureExt;
use time::OffsetDateTime;

use errors::classify;
pub use errors::kind_of;

use super::definition::{
    ApiAccess, ClusterDefinition, ClusterShape, NetworkDef, NodeImageDef, PoolDefinition, PoolShape,
};
use super::facts::{
    AccountFacts, AccountQuery, ClusterFacts, Identity, IdentityFacts, IdentityQuery, KubeAccess,
    KubeToken, Lookup, NodePoolFacts, PermissionFacts, QuotaFacts, QuotaQuery, RequiredPermission,
    Status, SubnetFacts,
};
use super::{
    AccountInspector, Cloud, CloudError, CloudErrorKind, CloudFuture, ClusterManager,
    IdentitySource, PermissionChecker,
};
use crate::secret::Secret;
use crate::spec::Provider;

/// Where and how to reach AWS.
#[derive(Debug, Clone)]
pub struct EksSettings {
    /// The region.
    pub region: String,
    /// An endpoint for every service (emulators, private endpoints); `None`: AWS's own (the
    /// SDK also honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`). Either way,
    /// credentials go only over https or to loopback ([`transport`]).
    pub endpoint: Option<String>,
    /// A named profile of the shared config files.
    pub profile: Option<String>,
    /// How long a connection may take to open.
    pub connect_timeout: std::time::Duration,
    /// How long one call (its answer read whole) may take.
    pub call_timeout: std::time::Duration,
}

impl EksSettings {
    /// Settings for `region` with the default deadlines (connect 10 s, one call 60 s).
    pub fn new(region: &str) -> Self {
        EksSettings {
            region: region.to_owned(),
            endpoint: None,
            profile: None,
            connect_timeout: std::time::Duration::from_secs(10),
            call_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// EKS and the AWS services around it.
#[derive(Clone)]
pub struct EksProvider {
    settings: EksSettings,
    credentials: SharedCredentialsProvider,
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
    ec2: aws_sdk_ec2::Client,
    eks: aws_sdk_eks::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    quotas: aws_sdk_servicequotas::Client,
    secrets: aws_sdk_secretsmanager::Client,
    /// Where the credentials come from when not from the standard chain.
    source: Option<&'static str>,
}

impl std::fmt::Debug for EksProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksProvider")
            .field("settings", &self.settings)
            .finish()
    }
}

impl EksProvider {
    /// A provider on the AWS standard credential chain. Loads configuration (region defaults,
    /// profiles) but makes no call and resolves no credentials yet, so `plan` works offline.
    pub async fn standard_chain(settings: EksSettings) -> Result<Self, CloudError> {
        Self::load(settings, None).await
    }

    /// A provider with explicit static credentials (the demo and tests).
    pub async fn with_static_credentials(
        settings: EksSettings,
        access_key_id: &str,
        secret_access_key: &Secret,
        session_token: Option<&Secret>,
    ) -> Result<Self, CloudError> {
        let creds = Credentials::new(
            access_key_id,
            secret_access_key.expose(),
            session_token.map(|t| t.expose().to_owned()),
            None,
            "static",
        );
        let mut p = Self::load(settings, Some(SharedCredentialsProvider::new(creds))).await?;
        p.source = Some("keys given to realmctl");
        Ok(p)
    }

    async fn load(
        settings: EksSettings,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Self, CloudError> {
        if let Some(e) = &settings.endpoint {
            transport::check_destination(e, true).map_err(|e| {
                CloudError::new(
                    CloudErrorKind::RefusedDestination,
                    "aws:endpoint",
                    e.to_string(),
                )
            })?;
        }
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.call_timeout)
            .operation_attempt_timeout(settings.call_timeout)
            .operation_timeout(settings.call_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .http_client(transport::Guarded::client());
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &settings.endpoint {
            loader = loader.endpoint_url(e);
        }
        if let Some(c) = credentials {
            loader = loader.credentials_provider(c);
        }
        let config = loader.load().await;
        Self::from_config(&config, settings)
    }

    fn from_config(config: &SdkConfig, settings: EksSettings) -> Result<Self, CloudError> {
        let credentials = config.credentials_provider().ok_or_else(|| {
            CloudError::new(
                CloudErrorKind::ExpiredCredentials,
                "aws:credentials",
                "no AWS credential provider is configured",
            )
        })?;
        Ok(EksProvider {
            sts: aws_sdk_sts::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            quotas: aws_sdk_servicequotas::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            credentials,
            settings,
            source: None,
        })
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.settings.region
    }

    /// The credentials of this provider's chain, for clients that must use the same identity
    /// (the S3 artifact store). Never logged.
    pub async fn credentials(&self) -> Result<Credentials, CloudError> {
        self.credentials.provide_credentials().await.map_err(|e| {
            CloudError::new(
                CloudErrorKind::ExpiredCredentials,
                "aws:credentials",
                error_text(&e),
            )
        })
    }

    async fn caller(&self) -> Result<(String, String), CloudError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("sts:GetCallerIdentity", &e))?;
        Ok((
            out.arn().unwrap_or_default().to_owned(),
            out.account().unwrap_or_default().to_owned(),
        ))
    }

    /// The principal whose policies decide the caller's permissions: an assumed role's role
    /// (with its path, from IAM), or the caller itself.
    async fn policy_subject(&self, arn: &str) -> String {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let (partition, account, resource) = match parts.as_slice() {
            [_, p, _, _, a, r] => (*p, *a, *r),
            _ => return arn.to_owned(),
        };
        let Some(role) = resource
            .strip_prefix("assumed-role/")
            .and_then(|r| r.split('/').next())
        else {
            return arn.to_owned();
        };
        match self.iam.get_role().role_name(role).send().await {
            Ok(out) => out
                .role()
                .map(|r| r.arn().to_owned())
                .unwrap_or_else(|| format!("arn:{partition}:iam::{account}:role/{role}")),
            Err(_) => format!("arn:{partition}:iam::{account}:role/{role}"),
        }
    }

    async fn role(&self, q: &IdentityQuery) -> Result<IdentityFacts, CloudError> {
        let arn = q.id.as_str();
        let name = arn.rsplit('/').next().unwrap_or(arn);
        let facts = |exists, trusted_services| IdentityFacts {
            purpose: q.purpose.clone(),
            id: arn.to_owned(),
            exists,
            trusted_services,
        };
        match self.iam.get_role().role_name(name).send().await {
            Ok(out) => {
                let doc = out
                    .role()
                    .and_then(|r| r.assume_role_policy_document())
                    .unwrap_or_default();
                Ok(facts(true, trusted_services(doc)))
            }
            Err(e) => {
                let e = classify("iam:GetRole", &e);
                if e.kind == CloudErrorKind::NotFound {
                    Ok(facts(false, Vec::new()))
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn subnets(&self, ids: &[String]) -> Result<Vec<SubnetFacts>, CloudError> {
        // A filter (not SubnetIds) so that missing subnets are simply absent.
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("subnet-id")
            .set_values(Some(ids.to_vec()))
            .build();
        let out = self
            .ec2
            .describe_subnets()
            .filters(filter)
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeSubnets", &e))?;
        Ok(out
            .subnets()
            .iter()
            .map(|s| SubnetFacts {
                id: s.subnet_id().unwrap_or_default().to_owned(),
                network: s.vpc_id().unwrap_or_default().to_owned(),
                zone: s.availability_zone().map(str::to_owned),
                free_addresses: u64::try_from(s.available_ip_address_count().unwrap_or(0))
                    .unwrap_or(0),
                secondary_ranges: Vec::new(),
            })
            .collect())
    }

    async fn versions(&self) -> Result<Lookup<Vec<String>>, CloudError> {
        let mut versions = Vec::new();
        let mut pages = self.eks.describe_cluster_versions().into_paginator().send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => versions.extend(
                    p.cluster_versions()
                        .iter()
                        .filter_map(|v| v.cluster_version().map(str::to_owned)),
                ),
                Err(e) => {
                    let e = classify("eks:DescribeClusterVersions", &e);
                    return match e.kind {
                        CloudErrorKind::ExpiredCredentials => Err(e),
                        _ => Ok(Lookup::Unknown(e.to_string())),
                    };
                }
            }
        }
        Ok(Lookup::Found(versions))
    }

    /// An EC2 quota's value (AWS reports limits only; usage is not part of the answer).
    async fn quota(&self, q: &QuotaQuery) -> Result<QuotaFacts, CloudError> {
        let limit = match self
            .quotas
            .get_service_quota()
            .service_code("ec2")
            .quota_code(&q.code)
            .send()
            .await
        {
            Ok(out) => match out.quota().and_then(|q| q.value()) {
                Some(v) => Lookup::Found(v),
                None => Lookup::Unknown("the quota has no value".into()),
            },
            Err(e) => {
                let e = classify("servicequotas:GetServiceQuota", &e);
                match e.kind {
                    CloudErrorKind::ExpiredCredentials => return Err(e),
                    _ => Lookup::Unknown(e.to_string()),
                }
            }
        };
        Ok(QuotaFacts {
            code: q.code.clone(),
            limit,
            usage: None,
        })
    }
}

/// The services a role's trust policy (URL-encoded JSON, as IAM returns it) lets assume it.
fn trusted_services(doc: &str) -> Vec<String> {
    let decoded = percent_decode(doc);
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&decoded) else {
        return Vec::new();
    };
    let statements = match &v["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for s in statements {
        if s["Effect"] != "Allow" {
            continue;
        }
        match &s["Principal"]["Service"] {
            serde_json::Value::String(x) => out.push(x.clone()),
            serde_json::Value::Array(a) => {
                out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_owned)))
            }
            _ => {}
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What EKS's endpoint flags and public CIDRs say about API access.
fn api_access(private: bool, public: bool, cidrs: Vec<String>) -> ApiAccess {
    let cidrs = cidrs.iter().filter_map(|c| c.parse().ok()).collect();
    match (private, public) {
        (true, false) => ApiAccess::Private,
        (false, _) => ApiAccess::Public { cidrs },
        (true, true) => ApiAccess::Both { cidrs },
    }
}

/// EKS's health issue messages joined, or `default` when it gives none.
fn health_text<'a>(messages: impl Iterator<Item = &'a str>, default: &str) -> String {
    let text = messages.collect::<Vec<_>>().join("; ");
    if text.is_empty() {
        default.to_owned()
    } else {
        text
    }
}

/// A describe's answer, with "not found" as `None` (the resource does not exist yet).
fn absent_as_none<T>(r: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind == CloudErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Which source of the standard chain gave the credentials, from the features the chain
/// records on them.
fn credential_source(c: &Credentials) -> String {
    use aws_credential_types::credential_feature::AwsCredentialFeature as F;
    let features = c.get_property::<Vec<F>>().cloned().unwrap_or_default();
    let name = features.iter().rev().find_map(|f| {
        Some(match f {
            F::CredentialsEnvVars => "environment variables",
            F::CredentialsEnvVarsStsWebIdToken | F::CredentialsStsAssumeRoleWebId => {
                "web identity token"
            }
            F::CredentialsProfileSso | F::CredentialsSso => "SSO (profile)",
            F::CredentialsProfile => "shared profile",
            F::CredentialsProfileSourceProfile | F::CredentialsStsAssumeRole => {
                "assumed role (profile)"
            }
            F::CredentialsProfileProcess | F::CredentialsProcess => "credential process",
            F::CredentialsImds => "instance metadata (IMDS)",
            F::CredentialsHttp => "container credentials endpoint",
            F::CredentialsCode => "explicit credentials",
            _ => return None,
        })
    });
    name.unwrap_or("the AWS standard chain").to_owned()
}

fn tags_map(t: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    t.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn cluster_status(s: Option<&ClusterStatus>, reason: impl FnOnce() -> String) -> Status {
    match s {
        Some(ClusterStatus::Active) => Status::Active,
        Some(ClusterStatus::Creating | ClusterStatus::Pending) => Status::Creating,
        Some(ClusterStatus::Updating) => Status::Updating,
        Some(ClusterStatus::Deleting) => Status::Deleting,
        Some(ClusterStatus::Failed) => Status::Failed(reason()),
        Some(other) => Status::Other(other.as_str().to_owned()),
        None => Status::Other("unknown".into()),
    }
}

fn pool_status(s: Option<&NodegroupStatus>, reason: impl FnOnce() -> String) -> Status {
    match s {
        Some(NodegroupStatus::Active) => Status::Active,
        Some(NodegroupStatus::Creating) => Status::Creating,
        Some(NodegroupStatus::Updating) => Status::Updating,
        Some(NodegroupStatus::Deleting) => Status::Deleting,
        Some(
            NodegroupStatus::CreateFailed
            | NodegroupStatus::DeleteFailed
            | NodegroupStatus::Degraded,
        ) => Status::Failed(reason()),
        Some(other) => Status::Other(other.as_str().to_owned()),
        None => Status::Other("unknown".into()),
    }
}

impl IdentitySource for EksProvider {
    fn identity(&self) -> CloudFuture<'_, Identity> {
        async move {
            let creds = self.credentials().await?;
            let (principal, account) = self.caller().await?;
            Ok(Identity {
                principal,
                account,
                source: self
                    .source
                    .map_or_else(|| credential_source(&creds), str::to_owned),
                expires_at: creds
                    .expiry()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .and_then(|d| {
                        OffsetDateTime::from_unix_timestamp(i64::try_from(d.as_secs()).ok()?).ok()
                    }),
            })
        }
        .boxed()
    }
}

impl AccountInspector for EksProvider {
    fn account<'a>(&'a self, q: &'a AccountQuery) -> CloudFuture<'a, AccountFacts> {
        async move {
            let (_, account) = self.caller().await?;
            let subnets = self.subnets(&q.subnets).await?;
            let mut identities = Vec::new();
            for i in &q.identities {
                identities.push(self.role(i).await?);
            }
            let mut quotas = Vec::new();
            for quota in &q.quotas {
                quotas.push(self.quota(quota).await?);
            }
            Ok(AccountFacts {
                account,
                subnets,
                identities,
                // AWS services need no enabling; a profile asking for one gets "unknown".
                services: q
                    .services
                    .iter()
                    .map(|name| super::facts::ServiceFacts {
                        name: name.clone(),
                        enabled: Lookup::Unknown("AWS has no service registration".into()),
                    })
                    .collect(),
                versions: self.versions().await?,
                quotas,
            })
        }
        .boxed()
    }
}

impl PermissionChecker for EksProvider {
    fn missing_permissions<'a>(
        &'a self,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts> {
        async move {
            let (caller, _) = self.caller().await?;
            let subject = self.policy_subject(&caller).await;
            let subject = subject.as_str();
            // One simulation per (resource, context): IAM evaluates every action against every
            // resource of a call.
            type Group<'r> = (&'r str, &'r BTreeMap<String, Vec<String>>, Vec<&'r str>);
            let mut groups: Vec<Group<'_>> = Vec::new();
            for p in required {
                match groups
                    .iter_mut()
                    .find(|(r, c, _)| *r == p.resource && **c == p.context)
                {
                    Some(g) => g.2.push(&p.action),
                    None => groups.push((&p.resource, &p.context, vec![&p.action])),
                }
            }
            let mut denied: Vec<(String, String)> = Vec::new();
            for (resource, context, actions) in groups {
                let mut marker: Option<String> = None;
                loop {
                    let mut call = self
                        .iam
                        .simulate_principal_policy()
                        .policy_source_arn(subject)
                        .set_action_names(Some(actions.iter().map(|a| (*a).to_owned()).collect()))
                        .set_marker(marker.clone());
                    if resource != "*" {
                        call = call.resource_arns(resource);
                    }
                    for (k, v) in context {
                        call = call.context_entries(
                            ContextEntry::builder()
                                .context_key_name(k)
                                .set_context_key_values(Some(v.clone()))
                                .context_key_type(ContextKeyTypeEnum::String)
                                .build(),
                        );
                    }
                    let out = call
                        .send()
                        .await
                        .map_err(|e| classify("iam:SimulatePrincipalPolicy", &e))?;
                    for r in out.evaluation_results() {
                        if *r.eval_decision() != PolicyEvaluationDecisionType::Allowed {
                            denied.push((
                                r.eval_action_name().to_owned(),
                                r.eval_resource_name().unwrap_or(resource).to_owned(),
                            ));
                        }
                    }
                    if out.is_truncated() {
                        marker = out.marker().map(str::to_owned);
                        if marker.is_some() {
                            continue;
                        }
                    }
                    break;
                }
            }
            let missing = required
                .iter()
                .filter(|p| {
                    denied
                        .iter()
                        .any(|(a, r)| *a == p.action && (*r == p.resource || r == "*"))
                })
                .cloned()
                .collect();
            Ok(PermissionFacts {
                principal: subject.to_owned(),
                missing,
                checked: required.len(),
            })
        }
        .boxed()
    }
}

impl ClusterManager for EksProvider {
    fn cluster<'a>(&'a self, name: &'a str) -> CloudFuture<'a, Option<ClusterFacts>> {
        async move {
            let sent = self.eks.describe_cluster().name(name).send().await;
            let Some(out) = absent_as_none(sent.map_err(|e| classify("eks:DescribeCluster", &e)))?
            else {
                return Ok(None);
            };
            let Some(c) = out.cluster() else {
                return Ok(None);
            };
            let reason = || {
                health_text(
                    c.health()
                        .into_iter()
                        .flat_map(|h| h.issues().iter().filter_map(|i| i.message())),
                    "EKS reports the cluster FAILED",
                )
            };
            let vpc = c.resources_vpc_config();
            Ok(Some(ClusterFacts {
                id: c.arn().unwrap_or_default().to_owned(),
                status: cluster_status(c.status(), reason),
                described: ClusterShape {
                    name: c.name().unwrap_or_default().to_owned(),
                    kubernetes_version: c.version().unwrap_or_default().to_owned(),
                    api_access: api_access(
                        vpc.is_some_and(|v| v.endpoint_private_access()),
                        vpc.is_some_and(|v| v.endpoint_public_access()),
                        vpc.map(|v| v.public_access_cidrs().to_vec())
                            .unwrap_or_default(),
                    ),
                    network: NetworkDef {
                        network: None,
                        subnets: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
                        secondary_ranges: None,
                    },
                    control_plane_identity: c.role_arn().map(str::to_owned),
                    tags: tags_map(c.tags()),
                },
                endpoint: c.endpoint().map(str::to_owned),
                certificate_authority: c
                    .certificate_authority()
                    .and_then(|a| a.data())
                    .map(str::to_owned),
            }))
        }
        .boxed()
    }

    fn create_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            if let Some(p) = def.initial_pools().next() {
                return Err(CloudError::new(
                    CloudErrorKind::Invalid,
                    "eks:CreateCluster",
                    format!(
                        "EKS creates no node group with a cluster; pool {} must be created after it",
                        p.nodes.name
                    ),
                ));
            }
            let mut vpc = VpcConfigRequest::builder()
                .set_subnet_ids(Some(def.cluster.network.subnets.clone()))
                .endpoint_private_access(def.cluster.api_access.private())
                .endpoint_public_access(def.cluster.api_access.public_cidrs().is_some());
            if let Some(cidrs) = def.cluster.api_access.public_cidrs() {
                vpc = vpc.set_public_access_cidrs(Some(
                    cidrs.iter().map(ToString::to_string).collect(),
                ));
            }
            let mut call = self
                .eks
                .create_cluster()
                .name(&def.cluster.name)
                .version(&def.cluster.kubernetes_version)
                .resources_vpc_config(vpc.build())
                .set_tags(Some(def.cluster.tags.clone().into_iter().collect()));
            if let Some(role) = &def.cluster.control_plane_identity {
                call = call.role_arn(role);
            }
            call.send()
                .await
                .map_err(|e| classify("eks:CreateCluster", &e))?;
            Ok(())
        }
        .boxed()
    }

    fn node_pool<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Option<NodePoolFacts>> {
        async move {
            let sent = self
                .eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await;
            let Some(out) =
                absent_as_none(sent.map_err(|e| classify("eks:DescribeNodegroup", &e)))?
            else {
                return Ok(None);
            };
            let Some(n) = out.nodegroup() else {
                return Ok(None);
            };
            let reason = || {
                health_text(
                    n.health()
                        .into_iter()
                        .flat_map(|h| h.issues().iter().filter_map(|i| i.message())),
                    "EKS reports the node group failed",
                )
            };
            let scaling = n.scaling_config();
            let num = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
            let image = match n.ami_type() {
                Some(AmiTypes::Custom) => NodeImageDef::Custom(
                    n.launch_template()
                        .and_then(|l| l.id())
                        .unwrap_or("launch template")
                        .to_owned(),
                ),
                Some(t) => NodeImageDef::Default(t.as_str().to_owned()),
                None => NodeImageDef::Default(String::new()),
            };
            Ok(Some(NodePoolFacts {
                version: n.version().unwrap_or_default().to_owned(),
                status: pool_status(n.status(), reason),
                described: PoolShape {
                    name: n.nodegroup_name().unwrap_or_default().to_owned(),
                    shape: n.instance_types().first().cloned().unwrap_or_default(),
                    min: num(scaling.and_then(|s| s.min_size())),
                    desired: num(scaling.and_then(|s| s.desired_size())),
                    max: num(scaling.and_then(|s| s.max_size())),
                    node_identity: n.node_role().map(str::to_owned),
                    subnets: n.subnets().to_vec(),
                    image,
                    labels: tags_map(n.labels()),
                    tags: tags_map(n.tags()),
                },
            }))
        }
        .boxed()
    }

    fn create_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        async move {
            let ami = match &pool.nodes.image {
                NodeImageDef::Default(t) => AmiTypes::from(t.as_str()),
                NodeImageDef::Custom(image) => {
                    return Err(CloudError::new(
                        CloudErrorKind::Invalid,
                        "eks:CreateNodegroup",
                        format!(
                            "the custom node image {image} needs an EC2 launch template, which this realmctl does not create; use nodeImage.type: default, or create the node group from the rendered cluster definition by hand"
                        ),
                    ));
                }
            };
            let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
            let mut call = self
                .eks
                .create_nodegroup()
                .cluster_name(&def.cluster.name)
                .nodegroup_name(&pool.nodes.name)
                .set_subnets(Some(if pool.nodes.subnets.is_empty() {
                    def.cluster.network.subnets.clone()
                } else {
                    pool.nodes.subnets.clone()
                }))
                .instance_types(&pool.nodes.shape)
                .ami_type(ami)
                .scaling_config(
                    NodegroupScalingConfig::builder()
                        .min_size(as_i32(pool.nodes.min))
                        .desired_size(as_i32(pool.nodes.desired))
                        .max_size(as_i32(pool.nodes.max))
                        .build(),
                )
                .set_labels(Some(pool.nodes.labels.clone().into_iter().collect()))
                .set_tags(Some(pool.nodes.tags.clone().into_iter().collect()));
            if let Some(role) = &pool.nodes.node_identity {
                call = call.node_role(role);
            }
            call.send()
                .await
                .map_err(|e| classify("eks:CreateNodegroup", &e))?;
            Ok(())
        }
        .boxed()
    }

    fn upgrade_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            self.eks
                .update_cluster_version()
                .name(&def.cluster.name)
                .version(&def.cluster.kubernetes_version)
                .send()
                .await
                .map_err(|e| classify("eks:UpdateClusterVersion", &e))?;
            Ok(())
        }
        .boxed()
    }

    fn upgrade_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        async move {
            // Without `force`: EKS stops at a PodDisruptionBudget rather than evict past it.
            self.eks
                .update_nodegroup_version()
                .cluster_name(&def.cluster.name)
                .nodegroup_name(&pool.nodes.name)
                .version(&def.cluster.kubernetes_version)
                .send()
                .await
                .map_err(|e| classify("eks:UpdateNodegroupVersion", &e))?;
            Ok(())
        }
        .boxed()
    }

    fn kube_token<'a>(&'a self, c: &'a ClusterFacts) -> CloudFuture<'a, KubeToken> {
        async move {
            let creds = self.credentials().await?;
            let now = SystemTime::now();
            let t = token::token(creds, &self.settings.region, c.name(), now).map_err(|e| {
                CloudError::new(CloudErrorKind::Invalid, "kube:token", e.to_string())
            })?;
            Ok(KubeToken {
                token: Secret::new(t),
                expires: Some(now + token::VALID_FOR),
            })
        }
        .boxed()
    }

    fn kube_access<'a>(&'a self, c: &'a ClusterFacts) -> CloudFuture<'a, KubeAccess> {
        async move {
            let name = c.name();
            let missing = |what: &str| {
                CloudError::new(
                    CloudErrorKind::Unavailable,
                    "eks:DescribeCluster",
                    format!(
                        "the cluster {} reports no {what} yet",
                        crate::text::one_line(name)
                    ),
                )
            };
            let mut args = vec![
                "eks".to_owned(),
                "get-token".to_owned(),
                "--cluster-name".to_owned(),
                name.to_owned(),
                "--region".to_owned(),
                self.settings.region.clone(),
            ];
            if let Some(p) = &self.settings.profile {
                args.extend(["--profile".to_owned(), p.clone()]);
            }
            Ok(KubeAccess {
                name: name.to_owned(),
                server: c.endpoint.clone().ok_or_else(|| missing("API endpoint"))?,
                certificate_authority: c
                    .certificate_authority
                    .clone()
                    .ok_or_else(|| missing("certificate authority"))?,
                command: "aws".into(),
                args,
                env: BTreeMap::new(),
            })
        }
        .boxed()
    }
}

impl Cloud for EksProvider {
    fn provider(&self) -> Provider {
        Provider::Eks
    }

    fn describe(&self) -> String {
        match &self.settings.endpoint {
            Some(e) => format!("AWS {} via {e}", self.settings.region),
            None => format!("AWS {}", self.settings.region),
        }
    }

    fn storage_credentials(&self) -> CloudFuture<'_, Option<super::StorageCredentials>> {
        async move {
            let c = self.credentials().await?;
            Ok(Some(super::StorageCredentials::Aws {
                key_id: c.access_key_id().to_owned(),
                secret: Secret::new(c.secret_access_key()),
                token: c.session_token().map(Secret::new),
            }))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policies_name_their_services() {
        let doc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%5B%22eks.amazonaws.com%22%2C%22ec2.amazonaws.com%22%5D%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        assert_eq!(
            trusted_services(doc),
            ["eks.amazonaws.com", "ec2.amazonaws.com"]
        );
        let single =
            r#"{"Statement": {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}}}"#;
        assert_eq!(trusted_services(single), ["eks.amazonaws.com"]);
        let deny =
            r#"{"Statement": [{"Effect": "Deny", "Principal": {"Service": "eks.amazonaws.com"}}]}"#;
        assert!(trusted_services(deny).is_empty());
        assert!(trusted_services("not json").is_empty());
    }
}
