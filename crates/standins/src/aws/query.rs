//! STS, IAM and EC2 over the AWS query protocol: form-encoded `Action=…` requests, XML answers
//! (`<{Action}Response><{Action}Result>…` for STS and IAM; EC2's own `<{Action}Response>` with
//! lower-camel members and `<item>` lists).

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{AwsError, authorize, role_arn};
use crate::world::World;

/// Text percent-encoded as IAM writes policy documents (RFC 3986 unreserved kept).
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Text escaped for XML.
pub(crate) fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fields of a form-encoded body, in order.
pub(crate) fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

pub(crate) fn get<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The values of a list member (`Prefix.member.N` or `Prefix.N`), in N order.
pub(crate) fn list(form: &[(String, String)], prefix: &str) -> Vec<String> {
    let mut items: Vec<(u32, String)> = form
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
            let n = rest.strip_prefix("member.").unwrap_or(rest);
            n.parse().ok().map(|n: u32| (n, v.clone()))
        })
        .collect();
    items.sort_by_key(|(n, _)| *n);
    items.into_iter().map(|(_, v)| v).collect()
}

/// `ContextEntries.member.N.ContextKeyName` with `…ContextKeyValues.member.M`: key → first
/// value (realmctl sends one value per entry).
fn context(form: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in 1.. {
        let Some(key) = get(form, &format!("ContextEntries.member.{n}.ContextKeyName")) else {
            break;
        };
        if let Some(v) = list(form, &format!("ContextEntries.member.{n}.ContextKeyValues")).first()
        {
            out.insert(key.to_owned(), v.clone());
        }
    }
    out
}

pub(crate) fn ok(action: &str, result: &str, query_style: bool) -> Response {
    let body = if query_style {
        format!(
            "<{action}Response xmlns=\"https://aws.amazon.com/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>00000000-0000-4000-8000-000000000001</RequestId></ResponseMetadata></{action}Response>"
        )
    } else {
        format!(
            "<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>00000000-0000-4000-8000-000000000001</requestId>{result}</{action}Response>"
        )
    };
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// How IAM and STS refuse a call (query protocol).
pub(crate) const IAM_DENIED: (u16, &str) = (403, "AccessDenied");
/// How EC2 refuses a call.
pub(crate) const EC2_DENIED: (u16, &str) = (403, "UnauthorizedOperation");

/// Answers a query-protocol request of `service`.
pub(crate) fn answer(
    w: &mut World,
    service: &str,
    form: &[(String, String)],
) -> Result<Response, AwsError> {
    let action = get(form, "Action").unwrap_or_default().to_owned();
    match (service, action.as_str()) {
        ("sts", "GetCallerIdentity") => Ok(ok(
            "GetCallerIdentity",
            &format!(
                "<Arn>{}</Arn><UserId>AROADEMO0000000000000:demo</UserId><Account>{}</Account>",
                xml(&w.principal),
                xml(&w.account)
            ),
            true,
        )),
        ("iam", "GetRole") => {
            let name = get(form, "RoleName").unwrap_or_default();
            let arn = role_arn(&w.account, name);
            authorize(w, IAM_DENIED, "iam:GetRole", &arn, &[])?;
            let Some(identity) = w.identities.get(name) else {
                return Err(AwsError::new(
                    404,
                    "NoSuchEntity",
                    format!("The role with name {name} cannot be found."),
                ));
            };
            let services: Vec<_> = identity.trusts.iter().map(|s| format!("\"{s}\"")).collect();
            let trust = format!(
                "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":[{}]}},\"Action\":\"sts:AssumeRole\"}}]}}",
                services.join(",")
            );
            let encoded = url_encode(&trust);
            Ok(ok(
                "GetRole",
                &format!(
                    "<Role><Path>/</Path><RoleName>{n}</RoleName><RoleId>AROA{id:0>17}</RoleId><Arn>{arn}</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>{encoded}</AssumeRolePolicyDocument></Role>",
                    n = xml(name),
                    id = name.len(),
                    arn = xml(&arn),
                ),
                true,
            ))
        }
        ("iam", "SimulatePrincipalPolicy") => {
            let source = get(form, "PolicySourceArn").unwrap_or_default().to_owned();
            authorize(w, IAM_DENIED, "iam:SimulatePrincipalPolicy", &source, &[])?;
            let actions = list(form, "ActionNames");
            let resources = list(form, "ResourceArns");
            let resources = if resources.is_empty() {
                vec!["*".to_owned()]
            } else {
                resources
            };
            let ctx = context(form);
            let mut members = String::new();
            for a in &actions {
                for r in &resources {
                    let decision = w.policy.decide(a, r, &ctx);
                    members.push_str(&format!(
                        "<member><EvalActionName>{}</EvalActionName><EvalResourceName>{}</EvalResourceName><EvalDecision>{}</EvalDecision><MatchedStatements/><MissingContextValues/></member>",
                        xml(a),
                        xml(r),
                        decision.as_str()
                    ));
                }
            }
            Ok(ok(
                "SimulatePrincipalPolicy",
                &format!(
                    "<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
                ),
                true,
            ))
        }
        ("ec2", "DescribeSubnets") => {
            authorize(w, EC2_DENIED, "ec2:DescribeSubnets", "*", &[])?;
            let mut ids = list(form, "SubnetId");
            for n in 1.. {
                match get(form, &format!("Filter.{n}.Name")) {
                    Some("subnet-id") => ids.extend(list(form, &format!("Filter.{n}.Value"))),
                    Some(_) => {}
                    None => break,
                }
            }
            let items: String = w
                .subnets
                .iter()
                .filter(|s| ids.is_empty() || ids.contains(&s.id))
                .map(|s| {
                    format!(
                        "<item><subnetId>{}</subnetId><subnetArn>arn:aws:ec2:{}:{}:subnet/{}</subnetArn><state>available</state><vpcId>{}</vpcId><cidrBlock>{}</cidrBlock><availableIpAddressCount>{}</availableIpAddressCount><availabilityZone>{}</availabilityZone><defaultForAz>false</defaultForAz><mapPublicIpOnLaunch>false</mapPublicIpOnLaunch><ownerId>{}</ownerId></item>",
                        xml(&s.id),
                        xml(&w.region),
                        xml(&w.account),
                        xml(&s.id),
                        xml(&s.network),
                        xml(&s.cidr),
                        s.free,
                        xml(s.zone.as_deref().unwrap_or_default()),
                        xml(&w.account)
                    )
                })
                .collect();
            Ok(ok(
                "DescribeSubnets",
                &format!("<subnetSet>{items}</subnetSet>"),
                false,
            ))
        }
        (_, other) => Err(AwsError::new(
            400,
            "InvalidAction",
            format!("The action {other} is not valid for this web service ({service})."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_lists_and_context_decode() {
        let f = form(b"Action=SimulatePrincipalPolicy&ActionNames.member.2=eks%3ADescribeCluster&ActionNames.member.1=eks%3ACreateCluster&PolicySourceArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2FI&ContextEntries.member.1.ContextKeyName=iam%3APassedToService&ContextEntries.member.1.ContextKeyValues.member.1=eks.amazonaws.com&ContextEntries.member.1.ContextKeyType=string");
        assert_eq!(get(&f, "Action"), Some("SimulatePrincipalPolicy"));
        assert_eq!(
            list(&f, "ActionNames"),
            ["eks:CreateCluster", "eks:DescribeCluster"]
        );
        assert_eq!(get(&f, "PolicySourceArn"), Some("arn:aws:iam::1:role/I"));
        assert_eq!(
            context(&f).get("iam:PassedToService").map(String::as_str),
            Some("eks.amazonaws.com")
        );
        let ec2 =
            form(b"Filter.1.Name=subnet-id&Filter.1.Value.1=subnet-a&Filter.1.Value.2=subnet-b");
        assert_eq!(list(&ec2, "Filter.1.Value"), ["subnet-a", "subnet-b"]);
        assert_eq!(xml("a<b&'c'"), "a&lt;b&amp;&apos;c&apos;");
    }
}
