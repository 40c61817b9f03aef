//! The clouds' published naming rules, as pure checks (each table-tested against the rule's
//! own examples): AWS tags, Azure tag names, Google labels, Kubernetes labels, and the name
//! patterns of clusters and node pools. The profiles combine them.

/// AWS tags (Tagging AWS resources, "Tag naming limits and requirements"): keys 1–128
/// characters, values up to 256, letters, digits, spaces and `_ . : / = + - @`; keys may not
/// start with `aws:`.
pub fn aws_tag(s: &str, max: usize, key: bool) -> Result<(), String> {
    let n = s.chars().count();
    if key && n == 0 {
        return Err("a tag key may not be empty".into());
    }
    if n > max {
        return Err(format!("longer than {max} characters"));
    }
    if key && s.to_ascii_lowercase().starts_with("aws:") {
        return Err("the aws: prefix is reserved for AWS".into());
    }
    match s
        .chars()
        .find(|c| !(c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(*c)))
    {
        Some(c) => Err(format!(
            "`{}` is not allowed (letters, digits, spaces and _ . : / = + - @ are)",
            c.escape_default()
        )),
        None => Ok(()),
    }
}

/// Azure tags (Use tags to organize your Azure resources, "Limits"): names 1–512 characters
/// without `< > % & \ ? /`; values up to 256 characters.
pub fn azure_tag_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("a tag name may not be empty".into());
    }
    if s.chars().count() > 512 {
        return Err("longer than 512 characters".into());
    }
    match s
        .chars()
        .find(|c| "<>%&\\?/".contains(*c) || c.is_control())
    {
        Some(c) => Err(format!(
            "`{}` is not allowed in an Azure tag name (< > % & \\ ? / are not)",
            c.escape_default()
        )),
        None => Ok(()),
    }
}

/// Azure tag values: up to 256 characters.
pub fn azure_tag_value(s: &str) -> Result<(), String> {
    if s.chars().count() > 256 {
        return Err("longer than 256 characters".into());
    }
    if s.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    Ok(())
}

/// Google labels (Creating and managing labels, "Requirements for labels"): keys 1–63
/// characters, starting with a lowercase letter, of lowercase letters, digits, `_` and `-`;
/// values up to 63 characters of the same (may be empty).
pub fn google_label(s: &str, key: bool) -> Result<(), String> {
    if key && s.is_empty() {
        return Err("a label key may not be empty".into());
    }
    if s.chars().count() > 63 {
        return Err("longer than 63 characters".into());
    }
    if key && !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("a label key starts with a lowercase letter".into());
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        Some(c) => Err(format!(
            "`{}` is not allowed (lowercase letters, digits, _ and - are)",
            c.escape_default()
        )),
        None => Ok(()),
    }
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most `max` characters, optionally
/// required to start with a letter.
pub fn dns_label(s: &str, max: usize, letter_first: bool) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if letter_first && !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("only lowercase letters, digits and - are allowed".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// An AWS EKS name (cluster, node group): 1 to `max` characters, alphanumeric first, then
/// letters, digits, `-` and `_`.
pub fn eks_name(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("only letters, digits, - and _ are allowed".into());
    }
    Ok(())
}

/// An AKS agent pool name (Linux): `^[a-z][a-z0-9]{0,11}$`.
pub fn aks_pool_name(s: &str) -> Result<(), String> {
    let ok = s.len() <= 12
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(
            "an AKS pool name is 1 to 12 lowercase letters and digits, starting with a letter"
                .into(),
        )
    }
}

/// An AKS managed cluster name: 1–63 characters, letters, digits, `_` and `-`, starting and
/// ending with a letter or digit.
pub fn aks_cluster_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("an AKS cluster name is 1 to 63 letters, digits, - and _, starting and ending with a letter or digit".into())
    }
}

/// A Kubernetes label (Labels and Selectors, "Syntax and character set"): an optional DNS
/// subdomain prefix (≤ 253) and `/`, a name of ≤ 63 alphanumerics, `-`, `_`, `.` starting and
/// ending alphanumeric; a value of the same (≤ 63, may be empty).
pub fn kubernetes_label(key: &str, value: &str) -> Result<(), String> {
    fn name(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    }
    let (prefix, n) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| dns_label(l, 63, false).is_ok());
        if !ok {
            return Err("the key's prefix is not a DNS subdomain".into());
        }
    }
    if !name(n) {
        return Err("the key's name is not a valid label name".into());
    }
    if !value.is_empty() && !name(value) {
        return Err("the value is not a valid label value".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_tags_follow_the_tagging_limits() {
        for ok in [
            "realmctl.digibee.com/realm",
            "Team Name",
            "a:b=c+d-e@f_g",
            "é",
        ] {
            assert_eq!(aws_tag(ok, 128, true), Ok(()), "{ok}");
        }
        assert!(aws_tag("", 128, true).is_err());
        assert!(aws_tag("aws:cloudformation", 128, true).is_err());
        assert!(aws_tag("AWS:x", 128, true).is_err());
        assert!(aws_tag(&"k".repeat(129), 128, true).is_err());
        assert!(aws_tag("a|b", 128, true).is_err());
        assert!(aws_tag("a\nb", 256, false).is_ok(), "whitespace is allowed");
        assert_eq!(aws_tag("", 256, false), Ok(()), "values may be empty");
    }

    #[test]
    fn azure_tag_names_refuse_the_published_characters() {
        assert_eq!(azure_tag_name("realmctl-realm"), Ok(()));
        assert_eq!(azure_tag_name("digibee.io:realm"), Ok(()));
        for c in ['<', '>', '%', '&', '\\', '?', '/'] {
            let name = format!("realmctl{c}realm");
            let e = azure_tag_name(&name).unwrap_err();
            assert!(e.contains("not allowed"), "{name}: {e}");
        }
        assert!(azure_tag_name("realmctl.digibee.com/realm").is_err());
        assert!(azure_tag_name(&"n".repeat(513)).is_err());
        assert!(azure_tag_value(&"v".repeat(257)).is_err());
    }

    #[test]
    fn google_labels_are_lowercase_and_short() {
        assert_eq!(google_label("realmctl-realm", true), Ok(()));
        assert_eq!(google_label("acme_2", false), Ok(()));
        assert_eq!(google_label("", false), Ok(()));
        for bad in ["Realm", "1realm", "realm.digibee", "realm/x", ""] {
            assert!(google_label(bad, true).is_err(), "{bad}");
        }
        assert!(google_label(&"a".repeat(64), false).is_err());
        assert!(google_label("Acme", false).is_err());
    }

    #[test]
    fn pool_and_cluster_names_follow_each_cloud() {
        assert_eq!(aks_pool_name("workers"), Ok(()));
        assert_eq!(aks_pool_name("w1"), Ok(()));
        for bad in ["acme-workers", "Workers", "1pool", "averyverylongname", ""] {
            assert!(aks_pool_name(bad).is_err(), "{bad}");
        }
        assert_eq!(eks_name("acme-workers_1", 63), Ok(()));
        assert!(eks_name("-x", 63).is_err());
        assert!(eks_name("a.b", 63).is_err());
        assert!(eks_name(&"a".repeat(64), 63).is_err());
        assert_eq!(dns_label("workers", 40, true), Ok(()));
        assert!(dns_label("workers-", 40, true).is_err());
        assert!(dns_label("9workers", 40, true).is_err());
        assert!(dns_label(&"a".repeat(41), 40, true).is_err());
        assert_eq!(aks_cluster_name("digibee_acme-1"), Ok(()));
        assert!(aks_cluster_name("digibee-").is_err());
    }

    #[test]
    fn kubernetes_labels_follow_the_label_syntax() {
        assert_eq!(kubernetes_label("digibee.io/realm", "acme"), Ok(()));
        assert_eq!(kubernetes_label("tier", ""), Ok(()));
        assert!(kubernetes_label("digibee.io/", "x").is_err());
        assert!(kubernetes_label("-bad.io/x", "x").is_err());
        assert!(kubernetes_label("x", "has space").is_err());
        assert!(kubernetes_label("x", &"v".repeat(64)).is_err());
        assert!(kubernetes_label("x", "a\nb").is_err());
    }
}
