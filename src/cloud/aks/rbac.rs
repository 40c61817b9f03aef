//! Azure RBAC's evaluation of `Microsoft.Authorization/permissions` (pure): the caller's
//! permissions at a scope are one entry per role it holds there (directly or inherited); an
//! action is allowed when some entry lists it in `actions` and does not take it back in that
//! same entry's `notActions` ("Understand Azure role definitions": `NotActions` subtract from
//! the `Actions` of their own role, and are not a deny). Names compare without regard to case;
//! `*` matches any run of characters, `/` included.

use serde::Deserialize;

/// One entry of `Microsoft.Authorization/permissions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Permission {
    /// Action patterns granted.
    pub actions: Vec<String>,
    /// Action patterns of this entry taken back.
    pub not_actions: Vec<String>,
}

/// Whether `pattern` (with `*`) matches `action`, without regard to case.
pub fn matches(pattern: &str, action: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let a = action.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == a;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !a.starts_with(first)
        || !a[first.len()..].ends_with(last)
        || a.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &a[first.len()..a.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `permissions` allow `action`.
pub fn allows(permissions: &[Permission], action: &str) -> bool {
    permissions.iter().any(|p| {
        p.actions.iter().any(|a| matches(a, action))
            && !p.not_actions.iter().any(|n| matches(n, action))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(actions: &[&str], not: &[&str]) -> Permission {
        Permission {
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            not_actions: not.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn wildcards_match_any_run_and_ignore_case() {
        let cases = [
            (
                "*",
                "Microsoft.ContainerService/managedClusters/write",
                true,
            ),
            (
                "Microsoft.ContainerService/*",
                "microsoft.containerservice/managedClusters/write",
                true,
            ),
            (
                "Microsoft.ContainerService/*/read",
                "Microsoft.ContainerService/managedClusters/agentPools/read",
                true,
            ),
            (
                "Microsoft.ContainerService/*/read",
                "Microsoft.ContainerService/managedClusters/write",
                false,
            ),
            ("*/read", "Microsoft.Resources/subscriptions/read", true),
            (
                "Microsoft.Compute/*",
                "Microsoft.ContainerService/managedClusters/read",
                false,
            ),
            (
                "Microsoft.Resources/subscriptions/read",
                "MICROSOFT.RESOURCES/SUBSCRIPTIONS/READ",
                true,
            ),
            (
                "Microsoft.Resources/subscriptions/read",
                "Microsoft.Resources/subscriptions/resourceGroups/read",
                false,
            ),
            (
                "Microsoft.Network/*/join/action",
                "Microsoft.Network/virtualNetworks/subnets/join/action",
                true,
            ),
            ("a*b*c", "abc", true),
            ("a*b*c", "ac", false),
            ("ab*ba", "aba", false),
        ];
        for (p, a, want) in cases {
            assert_eq!(matches(p, a), want, "{p} vs {a}");
        }
    }

    #[test]
    fn not_actions_take_back_only_their_own_entry() {
        let write = "Microsoft.ContainerService/managedClusters/write";
        // Contributor-like: everything but authorization writes.
        let contributor = perm(&["*"], &["Microsoft.Authorization/*/Write"]);
        assert!(allows(std::slice::from_ref(&contributor), write));
        assert!(!allows(
            std::slice::from_ref(&contributor),
            "Microsoft.Authorization/roleAssignments/write"
        ));
        // A notAction of one role does not deny what another role grants.
        let reader_no_aks = perm(&["*/read"], &["Microsoft.ContainerService/*"]);
        let aks_writer = perm(&["Microsoft.ContainerService/managedClusters/*"], &[]);
        assert!(allows(&[reader_no_aks.clone(), aks_writer], write));
        assert!(!allows(
            std::slice::from_ref(&reader_no_aks),
            "Microsoft.ContainerService/managedClusters/read"
        ));
        assert!(allows(
            &[reader_no_aks],
            "Microsoft.Network/virtualNetworks/subnets/read"
        ));
        // Nothing held: nothing allowed.
        assert!(!allows(&[], write));
        // notActions are case-insensitive too.
        assert!(!allows(
            &[perm(
                &["*"],
                &["microsoft.containerservice/MANAGEDCLUSTERS/write"]
            )],
            write
        ));
    }
}
