//! Semantic validation: raw spec in, [`Spec`] or every problem found out.
//!
//! Pure functions over the raw structs plus one kind of I/O: checking that referenced files
//! exist (relative to the spec file's folder). Syntax helpers are unit-tested below.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::raw::{self, Located, NodeImageType, Pos, Provider, RawSpec, RawTargets};
use super::{
    Acceptance, ApiAccess, CertificateSpec, Cloud, CloudAccount, ClusterSpec, Diagnostic, Domains,
    NodeImage, OutboundSpec, ProxySpec, Spec, SubscriptionSpec, Target, VpnSpec,
};
use crate::requirements;

use super::syntax::{
    is_cluster_name, is_dns_name, is_env_name, is_gcp_project, is_k8s_version, is_label,
    is_realm_name, is_uuid, parse_nameserver, parse_net, parse_proxy, redact_userinfo,
    role_arn_account,
};

struct Ctx<'a> {
    file: &'a Path,
    dir: PathBuf,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, pos: Pos, message: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            pos,
            message: message.into(),
            help: Some(help.into()),
            source_line: None,
        });
    }

    /// Resolves a path relative to the spec file and reports it when missing.
    fn existing_file(&mut self, key: &str, v: &Located<String>) -> PathBuf {
        let p = self.dir.join(&v.value);
        match crate::fsutil::check_regular(&p) {
            Ok(()) => {}
            Err(crate::fsutil::ReadError::NotFound { .. }) => self.err(
                v.pos,
                format!("{key}: file not found: {}", p.display()),
                "paths are relative to the folder of the spec file; fix the path or create the file",
            ),
            Err(e @ crate::fsutil::ReadError::NotRegular { .. }) => self.err(
                v.pos,
                format!("{key}: {e}"),
                "name the PEM file itself, not a folder or a device",
            ),
            Err(e) => self.err(
                v.pos,
                format!("{key}: {e}"),
                "make the file readable by the user running realmctl",
            ),
        }
        p
    }
}

pub(super) fn resolve(raw: RawSpec, file: &Path) -> Result<Spec, Vec<Diagnostic>> {
    let dir = file.parent().map(Path::to_owned).unwrap_or_default();
    let mut cx = Ctx {
        file,
        dir,
        diags: Vec::new(),
    };

    if raw.api_version.value != "realmctl/v1" {
        cx.err(
            raw.api_version.pos,
            format!("unsupported apiVersion `{}`", raw.api_version.value),
            "use `apiVersion: realmctl/v1`",
        );
    }
    if raw.kind.value != "Realm" {
        cx.err(
            raw.kind.pos,
            format!("unsupported kind `{}`", raw.kind.value),
            "use `kind: Realm`",
        );
    }
    if raw.name.value == "admin" {
        cx.err(
            raw.name.pos,
            "the realm name `admin` is reserved",
            "choose another name: `admin` is the quota service's administrator scope",
        );
    } else if !is_realm_name(&raw.name.value) {
        cx.err(raw.name.pos, format!("invalid realm name `{}`", raw.name.value), "use 2 to 31 characters: a lowercase letter, then lowercase letters, digits or `-` ([a-z][a-z0-9-]{1,30})");
    }
    let cloud = cloud(&mut cx, raw.cloud);
    let domains = domains(&mut cx, raw.domains);
    let certificate = certificate(&mut cx, raw.certificate);
    let outbound = outbound(&mut cx, raw.outbound);
    let vpn = vpn(&mut cx, raw.vpn);
    let subscription = subscription(&mut cx, raw.subscription);
    let artifacts_bucket = raw.artifacts.and_then(|a| bucket(&mut cx, a.bucket));
    let platform = platform(&mut cx, raw.platform);

    if !cx.diags.is_empty() {
        cx.diags.sort_by_key(|d| (d.pos.line, d.pos.column));
        return Err(cx.diags);
    }
    Ok(Spec {
        path: file.to_owned(),
        name: raw.name.value,
        cloud,
        domains,
        certificate,
        outbound,
        vpn,
        subscription,
        artifacts_bucket,
        platform,
    })
}

/// `platform.bundle`: the folder is read and checked now, so the definition built from the
/// spec is a pure function of it.
fn platform(cx: &mut Ctx, p: Option<raw::RawPlatform>) -> crate::platform::bundle::Bundle {
    use crate::platform::bundle::Bundle;
    let Some(p) = p else {
        return Bundle::embedded();
    };
    let dir = cx.dir.join(&p.bundle.value);
    match Bundle::from_folder(&dir) {
        Ok(b) => b,
        Err(e) => {
            cx.err(
                p.bundle.pos,
                format!("platform.bundle: {e}"),
                "name a folder (relative to the spec file) holding bundle.yaml and the manifests it lists",
            );
            Bundle::embedded()
        }
    }
}

/// `artifacts.bucket`: `s3://`, `az://` or `gs://` followed by a bucket name.
fn bucket(cx: &mut Ctx, b: Located<String>) -> Option<String> {
    if has_userinfo(&b.value) {
        cx.err(
            b.pos,
            format!(
                "artifacts.bucket `{}` holds credentials",
                redact_userinfo(&b.value)
            ),
            "remove user:password@ from the URL: credentials never go in the spec; they come from the cloud's standard chain",
        );
        return None;
    }
    let url = b.value.trim_end_matches('/');
    let ok = ["s3://", "az://", "gs://"].iter().any(|scheme| {
        url.strip_prefix(scheme).is_some_and(|rest| {
            let name = rest.split('/').next().unwrap_or("");
            (3..=63).contains(&name.len())
                && name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        })
    });
    if ok {
        Some(url.to_owned())
    } else {
        cx.err(
            b.pos,
            format!("artifacts.bucket `{}` is not an object storage URL", b.value),
            "write s3://BUCKET[/prefix], az://CONTAINER[/prefix] or gs://BUCKET[/prefix]; credentials come from the environment",
        );
        None
    }
}

fn cloud(cx: &mut Ctx, c: raw::RawCloud) -> Cloud {
    let provider = c.provider.value;
    if c.region.value.is_empty()
        || !c
            .region
            .value
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        cx.err(
            c.region.pos,
            format!("invalid region `{}`", c.region.value),
            "use the provider's region name, e.g. us-east-1 (EKS), eastus (AKS), us-central1 (GKE)",
        );
    }
    if let Some(e) = &c.endpoint {
        if has_userinfo(&e.value) {
            cx.err(
                e.pos,
                format!("endpoint `{}` holds credentials", redact_userinfo(&e.value)),
                "remove user:password@ from the URL: credentials never go in the spec; they come from the cloud's standard chain",
            );
        } else if !(e.value.starts_with("http://") || e.value.starts_with("https://"))
            || e.value.len() < 10
        {
            cx.err(
                e.pos,
                format!("invalid endpoint `{}`", e.value),
                "use a full URL such as https://eks.us-east-1.amazonaws.com, or remove the key",
            );
        } else if let Err(why) = crate::secret::may_carry_credentials(&e.value) {
            cx.err(
                e.pos,
                format!("endpoint `{}`: {why}", e.value),
                "use https:// (plain http:// only for an emulator on 127.0.0.1)",
            );
        }
    }
    // Exactly the block matching `provider` must be present.
    let blocks = [
        (Provider::Eks, c.eks.as_ref().map(|b| b.pos)),
        (Provider::Aks, c.aks.as_ref().map(|b| b.pos)),
        (Provider::Gke, c.gke.as_ref().map(|b| b.pos)),
    ];
    for (p, pos) in blocks {
        if let Some(pos) = pos.filter(|_| p != provider) {
            cx.err(
                pos,
                format!("cloud.{p} block given but cloud.provider is `{provider}`"),
                format!("remove cloud.{p}, or set `provider: {p}`"),
            );
        }
    }
    let missing = |cx: &mut Ctx| {
        cx.err(
            c.provider.pos,
            format!("cloud.provider is `{provider}` but the cloud.{provider} block is missing"),
            format!("add a `cloud.{provider}:` block (see `realmctl init --cloud {provider}`)"),
        );
    };
    let account = match provider {
        Provider::Eks => match c.eks {
            Some(b) => eks(cx, b.value),
            None => {
                missing(cx);
                placeholder(provider)
            }
        },
        Provider::Aks => match c.aks {
            Some(b) => aks(cx, b.value),
            None => {
                missing(cx);
                placeholder(provider)
            }
        },
        Provider::Gke => match c.gke {
            Some(b) => gke(cx, b.value),
            None => {
                missing(cx);
                placeholder(provider)
            }
        },
    };
    let cl = c.cluster;
    if !is_cluster_name(&cl.name.value) {
        cx.err(cl.name.pos, format!("invalid cluster name `{}`", cl.name.value), "use 2-40 characters: a lowercase letter, then lowercase letters, digits or `-`, ending with a letter or digit (valid on EKS, AKS and GKE)");
    }
    if !is_k8s_version(&cl.kubernetes_version.value) {
        cx.err(
            cl.kubernetes_version.pos,
            format!(
                "invalid kubernetesVersion `{}`",
                cl.kubernetes_version.value
            ),
            "use MAJOR.MINOR in quotes, e.g. kubernetesVersion: \"1.31\"",
        );
    }
    let node_image = match cl.node_image {
        None => NodeImage::Default,
        Some(n) => node_image(cx, n),
    };
    let api_access = match cl.api_access {
        None => ApiAccess::Private,
        Some(a) => api_access(cx, a),
    };
    Cloud {
        provider,
        region: c.region.value,
        endpoint: c.endpoint.map(|e| e.value),
        account,
        cluster: ClusterSpec {
            name: cl.name.value,
            kubernetes_version: cl.kubernetes_version.value,
            node_image,
            api_access,
        },
    }
}

/// Stand-in after an error was recorded; never reaches a caller because resolve fails.
fn placeholder(p: Provider) -> CloudAccount {
    match p {
        Provider::Gke => CloudAccount::Gke {
            project: String::new(),
            network: String::new(),
            subnetwork: String::new(),
            secondary_ranges: None,
            impersonate: None,
        },
        _ => CloudAccount::Aks {
            subscription_id: String::new(),
            resource_group: String::new(),
            tenant_id: String::new(),
            subnet_id: String::new(),
            identity: None,
        },
    }
}

fn eks(cx: &mut Ctx, b: raw::RawEks) -> CloudAccount {
    let account_ok =
        b.account_id.value.len() == 12 && b.account_id.value.bytes().all(|c| c.is_ascii_digit());
    if !account_ok {
        cx.err(b.account_id.pos, format!("invalid AWS account ID `{}`", b.account_id.value), "an AWS account ID is 12 digits; quote it so YAML keeps leading zeros: accountId: \"012345678901\"");
    }
    for (key, arn) in [
        ("clusterRoleArn", &b.cluster_role_arn),
        ("nodeRoleArn", &b.node_role_arn),
    ] {
        match role_arn_account(&arn.value) {
            None => cx.err(
                arn.pos,
                format!("cloud.eks.{key}: `{}` is not an IAM role ARN", arn.value),
                "use arn:aws:iam::<account-id>:role/<name>",
            ),
            Some(acct) if account_ok && acct != b.account_id.value => cx.err(
                arn.pos,
                format!(
                    "cloud.eks.{key} belongs to account {acct}, but cloud.eks.accountId is {}",
                    b.account_id.value
                ),
                "the roles must live in the realm's account; fix the ARN or the accountId",
            ),
            Some(_) => {}
        }
    }
    if b.subnet_ids.len() < 2 {
        cx.err(
            b.account_id.pos,
            format!("cloud.eks.subnetIds lists {} subnet(s)", b.subnet_ids.len()),
            "EKS needs at least two subnets in different availability zones",
        );
    }
    let mut seen = HashSet::new();
    for s in &b.subnet_ids {
        let hex = s.value.strip_prefix("subnet-").unwrap_or("");
        if !(8..=17).contains(&hex.len())
            || !hex
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            cx.err(
                s.pos,
                format!("invalid subnet ID `{}`", s.value),
                "use the subnet ID as AWS shows it, e.g. subnet-0123456789abcdef0",
            );
        } else if !seen.insert(&s.value) {
            cx.err(
                s.pos,
                format!("subnet `{}` is listed twice", s.value),
                "list each subnet once",
            );
        }
    }
    CloudAccount::Eks {
        account_id: b.account_id.value,
        cluster_role_arn: b.cluster_role_arn.value,
        node_role_arn: b.node_role_arn.value,
        subnet_ids: b.subnet_ids.into_iter().map(|s| s.value).collect(),
    }
}

fn gke(cx: &mut Ctx, b: raw::RawGke) -> CloudAccount {
    let p = &b.project;
    if !is_gcp_project(&p.value) {
        cx.err(p.pos, format!("invalid GCP project ID `{}`", p.value), "a project ID is 6-30 characters: a lowercase letter, then lowercase letters, digits or `-`, not ending with `-`");
    }
    let names = [
        ("network", Some(&b.network)),
        ("subnetwork", Some(&b.subnetwork)),
        ("podsRange", b.pods_range.as_ref()),
        ("servicesRange", b.services_range.as_ref()),
    ];
    for (key, v) in names {
        if let Some(v) = v
            && !is_google_name(&v.value)
        {
            cx.err(
                v.pos,
                format!("cloud.gke.{key}: `{}` is not a Compute Engine name", v.value),
                "use the name as `gcloud compute networks subnets describe` shows it: 1-63 characters, a lowercase letter, then lowercase letters, digits or `-`, not ending with `-`",
            );
        }
    }
    let secondary_ranges = match (b.pods_range, b.services_range) {
        (Some(p), Some(s)) => Some((p.value, s.value)),
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => {
            cx.err(
                one.pos,
                "cloud.gke names one secondary range but not the other",
                "name both podsRange and servicesRange (secondary ranges of the subnetwork), or neither for ranges GKE creates",
            );
            None
        }
    };
    if let Some(i) = &b.impersonate
        && !is_service_account_email(&i.value)
    {
        cx.err(
            i.pos,
            format!("cloud.gke.impersonate: `{}` is not a service account's email", i.value),
            "use <name>@<project>.iam.gserviceaccount.com, or leave it out to act as the credentials' own identity",
        );
    }
    CloudAccount::Gke {
        project: b.project.value,
        network: b.network.value,
        subnetwork: b.subnetwork.value,
        secondary_ranges,
        impersonate: b.impersonate.map(|i| i.value),
    }
}

/// A Compute Engine resource name (RFC 1035 label, at most 63 characters).
fn is_google_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
}

/// A service account's email: `<6-30 character name>@<domain>.gserviceaccount.com`.
fn is_service_account_email(s: &str) -> bool {
    let Some((name, domain)) = s.split_once('@') else {
        return false;
    };
    (6..=30).contains(&name.len())
        && is_google_name(name)
        && domain.ends_with(".gserviceaccount.com")
        && domain
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
}

fn aks(cx: &mut Ctx, b: raw::RawAks) -> CloudAccount {
    for (key, v) in [
        ("subscriptionId", &b.subscription_id),
        ("tenantId", &b.tenant_id),
    ] {
        if !is_uuid(&v.value) {
            cx.err(
                v.pos,
                format!("cloud.aks.{key}: `{}` is not a UUID", v.value),
                "copy the ID from the Azure portal, e.g. 00000000-0000-0000-0000-000000000000",
            );
        }
    }
    let rg = &b.resource_group.value;
    let rg_ok = (1..=90).contains(&rg.len())
        && rg
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
        && !rg.ends_with('.');
    if !rg_ok {
        cx.err(
            b.resource_group.pos,
            format!("invalid resource group name `{rg}`"),
            "use 1-90 letters, digits, `-`, `_`, `.`, `(`, `)`, not ending with `.`",
        );
    }
    if !azure_id(
        &b.subnet_id.value,
        "Microsoft.Network/virtualNetworks",
        Some("subnets"),
    ) {
        cx.err(
            b.subnet_id.pos,
            format!("cloud.aks.subnetId: `{}` is not a subnet resource id", b.subnet_id.value),
            "use the subnet's resource id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet> (`az network vnet subnet show --query id`)",
        );
    }
    if let Some(i) = &b.identity
        && !azure_id(
            &i.value,
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            None,
        )
    {
        cx.err(
            i.pos,
            format!("cloud.aks.identity: `{}` is not a user-assigned identity's resource id", i.value),
            "use /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name> (`az identity show --query id`), or leave it out for a system-assigned identity",
        );
    }
    CloudAccount::Aks {
        subscription_id: b.subscription_id.value,
        resource_group: b.resource_group.value,
        tenant_id: b.tenant_id.value,
        subnet_id: b.subnet_id.value,
        identity: b.identity.map(|i| i.value),
    }
}

/// Whether `id` is an Azure resource id of `provider/type` (`/subscriptions/<uuid>/resourceGroups/
/// <group>/providers/<ns>/<type>/<name>[/<child>/<name>]`), compared without regard to case as
/// ARM compares them.
fn azure_id(id: &str, provider_type: &str, child: Option<&str>) -> bool {
    let seg: Vec<&str> = id.split('/').collect();
    let want: Vec<&str> = provider_type.split('/').collect();
    let n = 8 + if child.is_some() { 2 } else { 0 };
    let name_ok = |s: &str| !s.is_empty() && s.len() <= 90 && !s.contains(char::is_whitespace);
    seg.len() == n + 1
        && seg[0].is_empty()
        && seg[1].eq_ignore_ascii_case("subscriptions")
        && is_uuid(seg[2])
        && seg[3].eq_ignore_ascii_case("resourceGroups")
        && name_ok(seg[4])
        && seg[5].eq_ignore_ascii_case("providers")
        && seg[6].eq_ignore_ascii_case(want[0])
        && seg[7].eq_ignore_ascii_case(want[1])
        && name_ok(seg[8])
        && child.is_none_or(|c| seg[9].eq_ignore_ascii_case(c) && name_ok(seg[10]))
}

/// Whether a URL carries `user[:password]@` before its host.
fn has_userinfo(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return url.contains('@');
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// `cloud.cluster.apiAccess`: private by default; a public endpoint only with the networks
/// that may reach it.
fn api_access(cx: &mut Ctx, a: Located<raw::RawApiAccess>) -> ApiAccess {
    use raw::ApiAccessKind as K;
    let mut cidrs = Vec::new();
    for c in &a.value.allowed_cidrs {
        match c.value.parse::<IpNet>() {
            Ok(n) if n.trunc() == n => cidrs.push(n),
            Ok(n) => cx.err(
                c.pos,
                format!("apiAccess.allowedCidrs: `{}` has host bits set", c.value),
                format!("use the network address: {}", n.trunc()),
            ),
            Err(_) => cx.err(
                c.pos,
                format!("apiAccess.allowedCidrs: `{}` is not a CIDR", c.value),
                "use network/prefix, e.g. 203.0.113.0/24",
            ),
        }
    }
    let kind = a.value.access.value;
    match kind {
        K::Private => {
            if !a.value.allowed_cidrs.is_empty() {
                cx.err(
                    a.pos,
                    "apiAccess.allowedCidrs is given but access is `private` (there is no public endpoint to restrict)",
                    "remove allowedCidrs, or use `access: both` to add a public endpoint for them",
                );
            }
            ApiAccess::Private
        }
        K::Public | K::Both => {
            if a.value.allowed_cidrs.is_empty() {
                cx.err(
                    a.value.access.pos,
                    "a public API endpoint needs apiAccess.allowedCidrs: the networks that may reach it",
                    "list them, e.g. allowedCidrs: [203.0.113.0/24]; or use `access: private`",
                );
            }
            if kind == K::Public {
                ApiAccess::Public { cidrs }
            } else {
                ApiAccess::Both { cidrs }
            }
        }
    }
}

fn node_image(cx: &mut Ctx, n: Located<raw::RawNodeImage>) -> NodeImage {
    let n_pos = n.pos;
    let n = n.value;
    match n.kind.value {
        NodeImageType::Default => {
            for (key, v) in [
                ("image", &n.image),
                ("acceptedBy", &n.accepted_by),
                ("acceptedAt", &n.accepted_at),
            ] {
                if let Some(v) = v {
                    cx.err(
                        v.pos,
                        format!("nodeImage.{key} is only meaningful with `type: custom`"),
                        "remove it, or set `type: custom`",
                    );
                }
            }
            NodeImage::Default
        }
        NodeImageType::Custom => {
            let image = match &n.image {
                Some(i) if !i.value.trim().is_empty() => i.value.clone(),
                _ => {
                    cx.err(
                        n_pos,
                        "nodeImage `type: custom` needs `image`",
                        "add `image:` with the AMI ID, Azure image resource ID or GKE image type",
                    );
                    String::new()
                }
            };
            let at = n.accepted_at.as_ref().and_then(|a| {
                match OffsetDateTime::parse(&a.value, &Rfc3339) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        cx.err(
                            a.pos,
                            format!("nodeImage.acceptedAt `{}` is not an RFC 3339 time", a.value),
                            "use e.g. 2026-11-20T14:00:00Z",
                        );
                        None
                    }
                }
            });
            let acceptance = match (&n.accepted_by, at) {
                (Some(by), Some(at)) if !by.value.trim().is_empty() => Some(Acceptance {
                    by: by.value.clone(),
                    at,
                }),
                (Some(by), None) if n.accepted_at.is_none() => {
                    cx.err(
                        by.pos,
                        "nodeImage.acceptedBy is given without acceptedAt",
                        "record when the acceptance was given: acceptedAt: 2026-11-20T14:00:00Z",
                    );
                    None
                }
                (None, Some(_)) => {
                    cx.err(
                        n_pos,
                        "nodeImage.acceptedAt is given without acceptedBy",
                        "record who accepted: acceptedBy: \"Jane Doe (ACME cloud lead)\"",
                    );
                    None
                }
                _ => None,
            };
            NodeImage::Custom { image, acceptance }
        }
    }
}

fn domains(cx: &mut Ctx, d: raw::RawDomains) -> Domains {
    let base = d.base.value.trim_end_matches('.').to_ascii_lowercase();
    if !is_dns_name(&base) || !base.contains('.') {
        cx.err(d.base.pos, format!("invalid base domain `{}`", d.base.value), "use a DNS name with at least two labels, e.g. digibee.acme.com (no wildcard, no scheme)");
    }
    let req = &requirements::embedded().domains;
    let mut seen: HashSet<String> = HashSet::new();
    let mut list = |cx: &mut Ctx,
                    key: &str,
                    given: Option<Vec<Located<String>>>,
                    defaults: &[requirements::DomainPrefix]|
     -> Vec<String> {
        let Some(given) = given else {
            return defaults.iter().map(|p| p.prefix.clone()).collect();
        };
        let mut out = Vec::new();
        for p in given {
            let v = p.value.to_ascii_lowercase();
            if !is_label(&v) {
                cx.err(
                    p.pos,
                    format!("domains.{key}: `{}` is not a single DNS label", p.value),
                    "a prefix is one label such as `core` (no dots, no `*`)",
                );
            } else if !seen.insert(v.clone()) {
                cx.err(
                    p.pos,
                    format!("domains.{key}: prefix `{v}` is listed more than once"),
                    "list each prefix once across designTime and runTime",
                );
            }
            out.push(v);
        }
        out
    };
    let design_time = list(cx, "designTime", d.design_time, &req.design_time);
    let run_time = list(cx, "runTime", d.run_time, &req.run_time);
    for r in req.all() {
        if !design_time.contains(&r.prefix) && !run_time.contains(&r.prefix) {
            cx.err(
                d.base.pos,
                format!(
                    "required prefix `{}` is missing from domains.designTime/runTime",
                    r.prefix
                ),
                format!(
                    "add `{}` ({}); the platform needs *.{}.<base>",
                    r.prefix, r.purpose, r.prefix
                ),
            );
        }
    }
    let mut nameservers = Vec::new();
    for ns in &d.nameservers {
        match parse_nameserver(&ns.value) {
            Some(a) => nameservers.push(a),
            None => cx.err(
                ns.pos,
                format!("invalid nameserver `{}`", ns.value),
                "use ip:port (e.g. 127.0.0.1:53 or [::1]:53) or a bare IP for port 53",
            ),
        }
    }
    Domains {
        base,
        design_time,
        run_time,
        nameservers,
    }
}

fn certificate(cx: &mut Ctx, c: raw::RawCertificate) -> CertificateSpec {
    let cert = cx.existing_file("certificate.cert", &c.cert);
    let key = cx.existing_file("certificate.key", &c.key);
    let ca =
        c.ca.as_ref()
            .map(|ca| cx.existing_file("certificate.ca", ca));
    let min_days_valid = c.min_days_valid.map_or(30, |m| m.value);
    CertificateSpec {
        cert,
        key,
        ca,
        min_days_valid,
    }
}

fn outbound(cx: &mut Ctx, o: raw::RawOutbound) -> OutboundSpec {
    let proxy = o.proxy.as_ref().and_then(|p| match parse_proxy(&p.value) {
        Ok((host, port)) => Some(ProxySpec {
            host,
            port,
            credentials_env: None,
        }),
        Err(help) => {
            cx.err(
                p.pos,
                format!("invalid proxy `{}`", redact_userinfo(&p.value)),
                help,
            );
            None
        }
    });
    let proxy = match (proxy, &o.proxy_credentials_env) {
        (Some(mut p), Some(env)) => {
            if is_env_name(&env.value) {
                p.credentials_env = Some(env.value.clone());
            } else {
                cx.err(env.pos, format!("invalid environment variable name `{}`", env.value), "name the variable holding user:password, e.g. proxyCredentialsEnv: REALM_PROXY_AUTH");
            }
            Some(p)
        }
        (None, Some(env)) if o.proxy.is_none() => {
            cx.err(
                env.pos,
                "outbound.proxyCredentialsEnv is set but outbound.proxy is not",
                "set outbound.proxy or remove proxyCredentialsEnv",
            );
            None
        }
        (p, _) => p,
    };
    let timeout_ms = match &o.timeout_ms {
        Some(t) if !(1..=600_000).contains(&t.value) => {
            cx.err(
                t.pos,
                format!("outbound.timeoutMs {} is out of range", t.value),
                "use 1 to 600000 milliseconds (default 5000)",
            );
            5000
        }
        Some(t) => t.value,
        None => 5000,
    };
    let targets = match o.targets {
        None => default_targets(),
        Some(Located {
            value: RawTargets::Keyword(k),
            pos,
        }) => {
            if k != "default" {
                cx.err(
                    pos,
                    format!("outbound.targets: unknown keyword `{k}`"),
                    "use `default` or a list of {host, port, tls}",
                );
            }
            default_targets()
        }
        Some(Located {
            value: RawTargets::List(list),
            ..
        }) => list
            .into_iter()
            .map(|t| {
                let host = t.host.value.trim_end_matches('.').to_ascii_lowercase();
                if host.parse::<IpAddr>().is_err() && !is_dns_name(&host) {
                    cx.err(
                        t.host.pos,
                        format!("invalid target host `{}`", t.host.value),
                        "use a DNS name or an IP address, without scheme or port",
                    );
                }
                if t.port.value == 0 {
                    cx.err(
                        t.port.pos,
                        "target port 0 is not a valid TCP port",
                        "use 1-65535",
                    );
                }
                Target {
                    tls: t.tls.unwrap_or(t.port.value == 443),
                    host,
                    port: t.port.value,
                }
            })
            .collect(),
    };
    OutboundSpec {
        proxy,
        timeout: Duration::from_millis(timeout_ms),
        targets,
    }
}

/// The platform's outbound list (`playbooks/requirements/outbound.yaml`) as targets.
pub fn default_targets() -> Vec<Target> {
    requirements::embedded()
        .outbound
        .targets
        .iter()
        .flat_map(|h| {
            h.ports.iter().map(|&port| Target {
                host: h.host.clone(),
                port,
                tls: port == 443,
            })
        })
        .collect()
}

fn vpn(cx: &mut Ctx, v: Option<Located<raw::RawVpn>>) -> VpnSpec {
    let Some(Located {
        value: v,
        pos: block,
    }) = v
    else {
        return VpnSpec {
            enabled: false,
            peer: None,
            routing: None,
            remote_cidrs: Vec::new(),
            subnet: None,
        };
    };
    let peer = v.peer.as_ref().and_then(|p| match parse_net(&p.value) {
        Some(n) => Some(n),
        None => {
            cx.err(
                p.pos,
                format!("vpn.peer `{}` is not an IP address or CIDR", p.value),
                "use the customer gateway's public address, e.g. 198.51.100.7/32",
            );
            None
        }
    });
    let mut remote_cidrs = Vec::new();
    for c in &v.remote_cidrs {
        match c.value.parse::<IpNet>() {
            Ok(n) if n.trunc() == n => remote_cidrs.push(n),
            Ok(n) => cx.err(
                c.pos,
                format!("vpn.remoteCidrs: `{}` has host bits set", c.value),
                format!("use the network address: {}", n.trunc()),
            ),
            Err(_) => cx.err(
                c.pos,
                format!("vpn.remoteCidrs: `{}` is not a CIDR", c.value),
                "use network/prefix, e.g. 192.168.10.0/24",
            ),
        }
    }
    if v.enabled {
        if v.peer.is_none() {
            cx.err(
                block,
                "vpn.enabled is true but vpn.peer is missing",
                "add `peer:` with the customer gateway's public /32",
            );
        }
        if v.routing.is_none() {
            cx.err(
                block,
                "vpn.enabled is true but vpn.routing is missing",
                "add `routing: route-based` (the only mode the platform supports)",
            );
        }
        if v.remote_cidrs.is_empty() {
            cx.err(
                block,
                "vpn.enabled is true but vpn.remoteCidrs is empty",
                "list the customer networks to reach through the tunnel",
            );
        }
    }
    VpnSpec {
        enabled: v.enabled,
        peer,
        routing: v.routing.map(|r| r.value),
        remote_cidrs,
        subnet: v.subnet.map(|s| s.value),
    }
}

fn subscription(cx: &mut Ctx, s: raw::RawSubscription) -> SubscriptionSpec {
    let mut count = |v: &Located<i64>, key: &str, min: i64| -> u32 {
        if v.value < min || v.value > i64::from(u32::MAX) {
            cx.err(
                v.pos,
                format!("subscription.{key} is {}", v.value),
                format!("use a whole number of at least {min}"),
            );
            0
        } else {
            v.value as u32
        }
    };
    let pipeline_subscriptions = count(&s.pipeline_subscriptions, "pipelineSubscriptions", 1);
    let extra_test_rtus = s
        .extra_test_rtus
        .as_ref()
        .map_or(0, |v| count(v, "extraTestRtus", 0));
    let extra_prod_rtus = s
        .extra_prod_rtus
        .as_ref()
        .map_or(0, |v| count(v, "extraProdRtus", 0));
    SubscriptionSpec {
        pipeline_subscriptions,
        extra_test_rtus,
        extra_prod_rtus,
    }
}

#[cfg(test)]
mod tests {
    use super::{azure_id, is_google_name, is_service_account_email};

    /// The errors of loading the init GKE spec with its `gke:` block replaced by `block`.
    fn gke_errors(block: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let text = crate::spec::init::render(crate::spec::Provider::Gke, "acme", "x.com").unwrap();
        let start = text.find("  gke:").unwrap();
        let end = text.find("  cluster:").unwrap();
        let text = format!("{}{block}\n{}", &text[..start], &text[end..]);
        let line = text[..start].lines().count() + 1;
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/wildcard.pem"), "c").unwrap();
        std::fs::write(dir.path().join("certs/wildcard.key"), "k").unwrap();
        let path = dir.path().join("realm.yaml");
        std::fs::write(&path, text).unwrap();
        match crate::spec::load(&path) {
            Ok(_) => String::new(),
            // Every error of the block points into its line.
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains(&format!("realm.yaml:{line}:")), "{e}");
                e
            }
        }
    }

    #[test]
    fn the_gke_block_is_checked_field_by_field_with_positions() {
        let ok = "  gke: {project: acme-realm, network: vpc, subnetwork: nodes, podsRange: pods, servicesRange: svc, impersonate: installer@acme-realm.iam.gserviceaccount.com}";
        assert_eq!(gke_errors(ok), "");
        for (block, want) in [
            (
                "  gke: {project: acme-realm, network: Vpc_1, subnetwork: nodes}",
                "cloud.gke.network: `Vpc_1` is not a Compute Engine name",
            ),
            (
                "  gke: {project: acme-realm, network: vpc, subnetwork: nodes-}",
                "cloud.gke.subnetwork: `nodes-` is not a Compute Engine name",
            ),
            (
                "  gke: {project: acme-realm, network: vpc, subnetwork: nodes, podsRange: pods}",
                "names one secondary range but not the other",
            ),
            (
                "  gke: {project: acme-realm, network: vpc, subnetwork: nodes, impersonate: someone@example.com}",
                "cloud.gke.impersonate: `someone@example.com` is not a service account's email",
            ),
            ("  gke: {project: acme-realm}", "missing field `network`"),
        ] {
            let e = gke_errors(block);
            assert!(e.contains(want), "{block}: {e}");
        }
    }

    #[test]
    fn google_names_and_service_account_emails_follow_their_rules() {
        assert!(is_google_name("a"));
        assert!(is_google_name("digibee-vpc-2"));
        for bad in ["", "2vpc", "vpc-", "Vpc", "v_p", &"a".repeat(64)] {
            assert!(!is_google_name(bad), "{bad}");
        }
        assert!(is_service_account_email(
            "installer@p.iam.gserviceaccount.com"
        ));
        assert!(is_service_account_email(
            "service-123456@compute-system.iam.gserviceaccount.com"
        ));
        for bad in [
            "inst@p.iam.gserviceaccount.com",
            "installer@example.com",
            "installer",
        ] {
            assert!(!is_service_account_email(bad), "{bad}");
        }
    }

    #[test]
    fn azure_resource_ids_are_checked_in_form_without_regard_to_case() {
        let sub = "00000000-0000-0000-0000-000000000000";
        let subnet = format!(
            "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/nodes"
        );
        let net = "Microsoft.Network/virtualNetworks";
        assert!(azure_id(&subnet, net, Some("subnets")));
        assert!(azure_id(&subnet.to_ascii_lowercase(), net, Some("subnets")));
        for bad in [
            format!(
                "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
            ),
            "/subscriptions/not-a-uuid/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
                .to_owned(),
            format!(
                "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualNetworks/v/subnets/s"
            ),
            format!(
                "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/"
            ),
            format!(
                "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s/extra"
            ),
            format!(
                "subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
            ),
            format!(
                "/subscriptions/{sub}/resourceGroups/r g/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
            ),
        ] {
            assert!(!azure_id(&bad, net, Some("subnets")), "{bad}");
        }
        let identity = format!(
            "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks"
        );
        assert!(azure_id(
            &identity,
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            None
        ));
        assert!(!azure_id(
            &subnet,
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            None
        ));
    }
}
