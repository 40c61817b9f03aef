//! Certificate name coverage under RFC 6125 §6.4.3 (pure).
//!
//! A wildcard `*` may only be the whole left-most label and matches exactly one label:
//! `*.digibee.acme.com` covers `x.digibee.acme.com` but not `x.core.digibee.acme.com`.
//! A required name may itself be a wildcard (`*.core.<base>`); it is covered only by a SAN
//! that covers every name it stands for, i.e. the same wildcard.

/// Lowercases and drops a trailing dot.
fn norm(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

/// Does the SAN `pattern` cover `name` (which may be a wildcard)?
pub fn covers(pattern: &str, name: &str) -> bool {
    let (p, n) = (norm(pattern), norm(name));
    if p.is_empty() || n.is_empty() {
        return false;
    }
    let p_wild = p.strip_prefix("*.");
    if p.contains('*') && (p_wild.is_none() || p_wild.is_some_and(|rest| rest.contains('*'))) {
        return false; // partial or nested wildcards are not honoured
    }
    if let Some(n_rest) = n.strip_prefix("*.") {
        // A wildcard requirement is only covered by the identical wildcard.
        return p_wild == Some(n_rest);
    }
    match p_wild {
        None => p == n,
        Some(rest) => match n.split_once('.') {
            Some((first, n_rest)) => !first.is_empty() && n_rest == rest && rest.contains('.'),
            None => false,
        },
    }
}

/// The required names no SAN covers, in the order given.
pub fn uncovered<'a>(required: &'a [String], sans: &[String]) -> Vec<&'a str> {
    required
        .iter()
        .filter(|r| !sans.iter().any(|s| covers(s, r)))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_label_rule() {
        assert!(covers("*.digibee.acme.com", "x.digibee.acme.com"));
        assert!(!covers("*.digibee.acme.com", "x.core.digibee.acme.com"));
        assert!(!covers("*.digibee.acme.com", "digibee.acme.com"));
        assert!(covers("*.core.digibee.acme.com", "*.core.digibee.acme.com"));
        assert!(covers(
            "*.CORE.digibee.acme.com.",
            "*.core.digibee.acme.com"
        ));
        assert!(!covers("*.digibee.acme.com", "*.core.digibee.acme.com"));
        assert!(!covers(
            "x.core.digibee.acme.com",
            "*.core.digibee.acme.com"
        ));
        assert!(!covers("f*.core.acme.com", "foo.core.acme.com"));
        assert!(!covers("*.*.acme.com", "*.core.acme.com"));
        assert!(
            !covers("*.com", "acme.com"),
            "a wildcard over a single label is never honoured"
        );
        assert!(covers("api.acme.com", "API.acme.com"));
    }

    #[test]
    fn reports_exactly_the_missing_names() {
        let req: Vec<String> = ["core", "static", "auth"]
            .iter()
            .map(|p| format!("*.{p}.d.acme.com"))
            .collect();
        let sans = vec![
            "*.core.d.acme.com".to_string(),
            "*.d.acme.com".into(),
            "*.auth.d.acme.com".into(),
        ];
        assert_eq!(uncovered(&req, &sans), vec!["*.static.d.acme.com"]);
    }

    proptest! {
        #[test]
        fn a_wildcard_never_covers_two_labels(a in "[a-z]{1,8}", b in "[a-z]{1,8}", base in "[a-z]{1,8}\\.[a-z]{2,3}") {
            let covered = covers(&format!("*.{base}"), &format!("{a}.{b}.{base}"));
            prop_assert!(!covered);
            let one = covers(&format!("*.{base}"), &format!("{a}.{base}"));
            prop_assert!(one);
        }
    }
}
