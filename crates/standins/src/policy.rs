//! What the caller of a stand-in may do: statements of effect, actions, resources and string
//! conditions, evaluated the way the clouds document it for IAM-style policies (an explicit
//! deny wins, then an allow, else an implicit deny; `*` and `?` wildcards; action names match
//! without regard to case, resources exactly). Each wire adapter asks it with its own action
//! names (`eks:CreateCluster`, `Microsoft.ContainerService/managedClusters/write`) and
//! resource ids, for its permission-check call and to enforce every other call.

use std::collections::BTreeMap;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Refuses, whatever else grants.
    Deny,
}

/// A string condition on a request context key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The key's value equals one of these.
    Equals(String, Vec<String>),
    /// The key's value matches one of these patterns (`*`, `?`).
    Like(String, Vec<String>),
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Allow or deny.
    pub effect: Effect,
    /// Action patterns.
    pub actions: Vec<String>,
    /// Resource patterns.
    pub resources: Vec<String>,
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
}

/// The outcome for one action on one resource, named as IAM's simulation names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allowed,
    /// A statement denies it.
    ExplicitDeny,
    /// No statement allows it.
    ImplicitDeny,
}

impl Decision {
    /// As `SimulatePrincipalPolicy` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::ExplicitDeny => "explicitDeny",
            Decision::ImplicitDeny => "implicitDeny",
        }
    }
}

/// The caller's policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Its statements.
    pub statements: Vec<Statement>,
}

/// Whether `text` matches `pattern` with `*` (any run) and `?` (one character).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Statement {
    fn applies(&self, action: &str, resource: &str, context: &BTreeMap<String, String>) -> bool {
        let action = action.to_ascii_lowercase();
        self.actions
            .iter()
            .any(|a| wildcard(&a.to_ascii_lowercase(), &action))
            && self.resources.iter().any(|r| wildcard(r, resource))
            && self.conditions.iter().all(|c| match c {
                Condition::Equals(k, vs) => context.get(k).is_some_and(|v| vs.contains(v)),
                Condition::Like(k, vs) => context
                    .get(k)
                    .is_some_and(|v| vs.iter().any(|p| wildcard(p, v))),
            })
    }
}

impl Policy {
    /// Everything allowed.
    pub fn allow_all() -> Policy {
        Policy {
            statements: vec![Statement {
                effect: Effect::Allow,
                actions: vec!["*".into()],
                resources: vec!["*".into()],
                conditions: Vec::new(),
            }],
        }
    }

    /// Adds a deny of `action` on every resource.
    pub fn deny(&mut self, action: &str) {
        self.statements.push(Statement {
            effect: Effect::Deny,
            actions: vec![action.into()],
            resources: vec!["*".into()],
            conditions: Vec::new(),
        });
    }

    /// The decision for `action` on `resource` with the request `context`.
    pub fn decide(
        &self,
        action: &str,
        resource: &str,
        context: &BTreeMap<String, String>,
    ) -> Decision {
        let applying: Vec<&Statement> = self
            .statements
            .iter()
            .filter(|s| s.applies(action, resource, context))
            .collect();
        if applying.iter().any(|s| s.effect == Effect::Deny) {
            Decision::ExplicitDeny
        } else if applying.iter().any(|s| s.effect == Effect::Allow) {
            Decision::Allowed
        } else {
            Decision::ImplicitDeny
        }
    }

    /// An AWS IAM policy document (JSON: `Statement` of `Effect`, `Action`, `Resource`, and
    /// `Condition` with `StringEquals` / `StringLike`), as `realmctl plan` renders the
    /// installer's least-privilege policy.
    pub fn from_iam_json(text: &str) -> Result<Policy, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let list = |v: &serde_json::Value| -> Vec<String> {
            match v {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let statements = match &v["Statement"] {
            serde_json::Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let mut out = Vec::new();
        for s in statements {
            let effect = match s["Effect"].as_str() {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                other => return Err(format!("a statement's Effect is {other:?}")),
            };
            let mut conditions = Vec::new();
            if let Some(ops) = s["Condition"].as_object() {
                for (op, keys) in ops {
                    for (k, vals) in keys.as_object().into_iter().flatten() {
                        conditions.push(match op.as_str() {
                            "StringEquals" => Condition::Equals(k.clone(), list(vals)),
                            "StringLike" => Condition::Like(k.clone(), list(vals)),
                            other => {
                                return Err(format!("condition operator {other} is not modelled"));
                            }
                        });
                    }
                }
            }
            out.push(Statement {
                effect,
                actions: list(&s["Action"]),
                resources: list(&s["Resource"]),
                conditions,
            });
        }
        Ok(Policy { statements: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(wildcard("*", ""));
        assert!(wildcard(
            "arn:aws:eks:*:1:cluster/digibee-*",
            "arn:aws:eks:us-east-1:1:cluster/digibee-acme"
        ));
        assert!(!wildcard(
            "arn:aws:eks:*:1:cluster/digibee-*",
            "arn:aws:eks:us-east-1:2:cluster/digibee-acme"
        ));
        assert!(wildcard("eks:Describe?luster", "eks:DescribeCluster"));
        assert!(!wildcard("eks:Create", "eks:CreateCluster"));
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(!wildcard("a*b*c", "aXXbYY"));
    }

    #[test]
    fn explicit_deny_wins_then_allow_then_implicit_deny() {
        let doc = r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["eks:CreateCluster", "eks:Describe*"], "Resource": "arn:aws:eks:us-east-1:1:cluster/digibee-acme"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ["arn:aws:iam::1:role/c"], "Condition": {"StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}}},
            {"Effect": "Deny", "Action": "eks:DescribeNodegroup", "Resource": "*"}
        ]}"#;
        let p = Policy::from_iam_json(doc).unwrap();
        let none = ctx(&[]);
        let cluster = "arn:aws:eks:us-east-1:1:cluster/digibee-acme";
        assert_eq!(
            p.decide("eks:CreateCluster", cluster, &none),
            Decision::Allowed
        );
        assert_eq!(
            p.decide("EKS:createcluster", cluster, &none),
            Decision::Allowed,
            "actions ignore case"
        );
        assert_eq!(
            p.decide(
                "eks:CreateCluster",
                "arn:aws:eks:us-east-1:1:cluster/other",
                &none
            ),
            Decision::ImplicitDeny,
            "another resource"
        );
        assert_eq!(
            p.decide("eks:DescribeNodegroup", cluster, &none),
            Decision::ExplicitDeny
        );
        let role = "arn:aws:iam::1:role/c";
        assert_eq!(
            p.decide("iam:PassRole", role, &none),
            Decision::ImplicitDeny,
            "no context"
        );
        assert_eq!(
            p.decide(
                "iam:PassRole",
                role,
                &ctx(&[("iam:PassedToService", "eks.amazonaws.com")])
            ),
            Decision::Allowed
        );
        assert_eq!(
            p.decide(
                "iam:PassRole",
                role,
                &ctx(&[("iam:PassedToService", "ec2.amazonaws.com")])
            ),
            Decision::ImplicitDeny
        );
        let mut all = Policy::allow_all();
        assert_eq!(all.decide("x:Y", "z", &none), Decision::Allowed);
        all.deny("x:Y");
        assert_eq!(all.decide("x:Y", "z", &none), Decision::ExplicitDeny);
        assert!(Policy::from_iam_json(r#"{"Statement": [{"Effect": "Maybe"}]}"#).is_err());
    }
}
