//! Syntax rules for spec values (pure): names, labels, IDs, addresses, proxy URLs, and the
//! masking of credentials in text shown back to the user.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

pub(crate) fn is_realm_name(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=31).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub(crate) fn is_cluster_name(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=40).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub(crate) fn is_gcp_project(s: &str) -> bool {
    (6..=30).contains(&s.len()) && is_cluster_name(s)
}

pub(crate) fn is_k8s_version(s: &str) -> bool {
    match s.split_once('.') {
        Some((maj, min)) => {
            maj == "1"
                && !min.is_empty()
                && min.len() <= 3
                && min.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<_> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|c| c.is_ascii_hexdigit()))
}

pub(crate) fn role_arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (arn_kw, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let ok = arn_kw == "arn"
        && partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|c| c.is_ascii_digit())
        && resource
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty());
    ok.then_some(account)
}

/// One DNS label: 1-63 of `[a-z0-9-]`, not starting or ending with `-`.
pub(crate) fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A lowercase DNS name of valid labels, at most 253 characters.
pub(crate) fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

pub(crate) fn is_env_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

pub(crate) fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
        .filter(|a| a.port() != 0)
}

pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Parses `http://host:port[/]`; the error is the help line.
pub(crate) fn parse_proxy(s: &str) -> Result<(String, u16), &'static str> {
    let Some(rest) = s.strip_prefix("http://") else {
        return Err(
            "use http://host:port (HTTP CONNECT proxy); https:// and socks proxies are not supported",
        );
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(
            "credentials never go in the spec: remove user:password@ and set proxyCredentialsEnv to the name of an environment variable holding user:password",
        );
    }
    if rest.contains('/') || rest.contains('?') {
        return Err("use http://host:port without a path");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => return Err("add the proxy port: http://host:port"),
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or("the proxy port must be 1-65535")?;
    let host = host.to_ascii_lowercase();
    if host.parse::<IpAddr>().is_err() && !is_dns_name(&host) {
        return Err("the proxy host must be a DNS name or an IP address");
    }
    Ok((host, port))
}

/// Removes `user:password@` from a URL so an error message never repeats a secret.
pub(crate) fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Masks `user:password@` in every URL of a line of text (for source snippets in errors).
pub(crate) fn redact_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || "\"',}]/".contains(c))
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_source_lines_are_masked() {
        assert_eq!(
            redact_line(r#"  proxy: "http://u:hunter2@p:3128" # x"#),
            r#"  proxy: "http://***@p:3128" # x"#
        );
        assert_eq!(
            redact_line("a: http://p:1, b: https://x:y@h/"),
            "a: http://p:1, b: https://***@h/"
        );
    }

    #[test]
    fn names_and_labels() {
        assert!(is_realm_name("acme"));
        assert!(!is_realm_name("a"));
        assert!(!is_realm_name("1acme"));
        assert!(!is_realm_name("Acme"));
        assert!(!is_realm_name(&"a".repeat(32)));
        assert!(is_dns_name("digibee.acme.com"));
        assert!(!is_dns_name("*.acme.com"));
        assert!(!is_dns_name("acme..com"));
        assert!(!is_dns_name("-acme.com"));
        assert!(is_k8s_version("1.31"));
        assert!(!is_k8s_version("2.1"));
        assert!(!is_k8s_version("1.31.2"));
        assert!(is_uuid("0b2f3c1e-1111-4a2b-9c3d-abcdefabcdef"));
        assert!(!is_uuid("0b2f3c1e11114a2b9c3dabcdefabcdef"));
    }

    #[test]
    fn role_arns() {
        assert_eq!(
            role_arn_account("arn:aws:iam::123456789012:role/eks"),
            Some("123456789012")
        );
        assert_eq!(
            role_arn_account("arn:aws-cn:iam::123456789012:role/a/b"),
            Some("123456789012")
        );
        assert_eq!(role_arn_account("arn:aws:iam::123456789012:user/x"), None);
        assert_eq!(role_arn_account("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn proxies_and_nameservers() {
        assert_eq!(
            parse_proxy("http://proxy.corp:3128"),
            Ok(("proxy.corp".into(), 3128))
        );
        assert_eq!(
            parse_proxy("http://127.0.0.1:8888/"),
            Ok(("127.0.0.1".into(), 8888))
        );
        assert!(
            parse_proxy("http://u:p@proxy:3128")
                .unwrap_err()
                .contains("proxyCredentialsEnv")
        );
        assert!(parse_proxy("https://proxy:3128").is_err());
        assert!(parse_proxy("http://proxy").is_err());
        assert_eq!(
            redact_userinfo("http://u:secret@proxy:1"),
            "http://***@proxy:1"
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(parse_nameserver("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_nameserver("dns.google:53"), None);
    }
}
