//! Templates embedded in the binary, rendered from typed `Serialize` models.
//!
//! Tera errors on undefined variables, so a model missing a field is a render error, never a
//! silently empty value. HTML templates (`*.html`) are auto-escaped; Markdown cells go through
//! the `md_cell` filter so user text cannot break a table; every value a shell script uses goes
//! through `sh_quote`, so a hostile file name stays data.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use tera::{Context, Tera, Value};

const TEMPLATES: &[(&str, &str)] = &[
    ("realm.yaml", include_str!("../templates/realm.yaml.tera")),
    ("demo.yaml", include_str!("../templates/demo.yaml.tera")),
    (
        "demo-cloud-eks.yaml",
        include_str!("../templates/demo-cloud-eks.yaml.tera"),
    ),
    (
        "demo-cloud-aks.yaml",
        include_str!("../templates/demo-cloud-aks.yaml.tera"),
    ),
    (
        "demo-cloud-gke.yaml",
        include_str!("../templates/demo-cloud-gke.yaml.tera"),
    ),
    (
        "preflight.html",
        include_str!("../templates/preflight.html.tera"),
    ),
    (
        "preflight.md",
        include_str!("../templates/preflight.md.tera"),
    ),
    ("roles.md", include_str!("../templates/roles.md.tera")),
    (
        "install-report.html",
        include_str!("../templates/install-report.html.tera"),
    ),
    ("fleet.html", include_str!("../templates/fleet.html.tera")),
    (
        "install-report.md",
        include_str!("../templates/install-report.md.tera"),
    ),
    (
        "artifacts/cluster-eks.json",
        include_str!("../templates/artifacts/cluster-eks.json.tera"),
    ),
    (
        "artifacts/cluster-aks.json",
        include_str!("../templates/artifacts/cluster-aks.json.tera"),
    ),
    (
        "artifacts/cluster-gke.json",
        include_str!("../templates/artifacts/cluster-gke.json.tera"),
    ),
    (
        "artifacts/namespaces.yaml",
        include_str!("../templates/artifacts/namespaces.yaml.tera"),
    ),
    (
        "artifacts/ingress-tls.yaml",
        include_str!("../templates/artifacts/ingress-tls.yaml.tera"),
    ),
    (
        "artifacts/install.sh",
        include_str!("../templates/artifacts/install.sh.tera"),
    ),
    (
        "vpn/ipsec.conf",
        include_str!("../templates/vpn/ipsec.conf.tera"),
    ),
    (
        "vpn/cloud-init.yaml",
        include_str!("../templates/vpn/cloud-init.yaml.tera"),
    ),
    ("vpn/up.sh", include_str!("../templates/vpn/up.sh.tera")),
    (
        "policies/eks-installer.json",
        include_str!("../templates/policies/eks-installer.json.tera"),
    ),
    (
        "policies/aks-installer-role.json",
        include_str!("../templates/policies/aks-installer-role.json.tera"),
    ),
    (
        "policies/gke-installer-role.yaml",
        include_str!("../templates/policies/gke-installer-role.yaml.tera"),
    ),
    (
        "kubeconfig.yaml",
        include_str!("../templates/kubeconfig.yaml.tera"),
    ),
];

/// A template could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("rendering template `{template}` failed: {detail}")]
pub struct TemplateError {
    /// Template name.
    pub template: String,
    /// Tera's explanation, with its causes.
    pub detail: String,
}

fn engine() -> &'static Tera {
    static CELL: OnceLock<Tera> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut t = Tera::default();
        t.add_raw_templates(TEMPLATES.iter().copied())
            .unwrap_or_else(|e| panic!("embedded templates do not parse: {}", chain(&e)));
        t.register_filter("md_cell", md_cell);
        t.register_filter("sh_quote", sh_quote);
        t
    })
}

/// Renders the embedded template `name` from `model`.
pub fn render<T: Serialize>(name: &str, model: &T) -> Result<String, TemplateError> {
    let err = |detail| TemplateError {
        template: name.to_owned(),
        detail,
    };
    let ctx = Context::from_serialize(model).map_err(|e| err(chain(&e)))?;
    engine().render(name, &ctx).map_err(|e| err(chain(&e)))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn md_cell(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(Value::String(md_escape(&s)))
}

/// Markdown text that renders as exactly `s`: every character CommonMark (with GitHub's
/// tables and strikethrough) gives a meaning inline is backslash-escaped (emphasis, code,
/// link and image brackets, raw HTML, table cells, entities, a heading's `#`), and line breaks
/// become spaces, so user text can neither format the report nor break out of a table cell or
/// a paragraph. `(`, `)` and `!` need no escape once `[` and `]` have one. Control characters
/// other than line breaks (ESC and the rest of a terminal sequence's introducers) are written
/// as their escapes ([`crate::text::one_line`]), so a cloud's message cannot drive the
/// terminal of someone reading the file.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push_str(&crate::text::one_line(&c.to_string())),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Quotes a value for a POSIX shell: one single-quoted word, each `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn sh_quote(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    match v {
        Value::String(s) => Ok(Value::String(shell_quote(s))),
        other => Err(tera::Error::msg(format!(
            "sh_quote takes a string, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {

    /// Regression (issue #16): a cluster name from the cloud with a newline injected YAML into
    /// the kubeconfig's header comment.
    #[test]
    fn a_hostile_cluster_name_stays_inside_the_kubeconfig_values() {
        let access = crate::cloud::facts::KubeAccess {
            name: "acme\ninjected: true".into(),
            server: "https://x\ny: z".into(),
            certificate_authority: "Q0E=".into(),
            command: "aws".into(),
            args: vec!["eks".into()],
            env: Default::default(),
        };
        let text = render("kubeconfig.yaml", &access).unwrap();
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert!(
            v.get("injected").is_none() && v.get("y").is_none(),
            "{text}"
        );
        assert_eq!(v["clusters"][0]["name"], "acme\ninjected: true");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("injected")).count(),
            0
        );
    }

    use super::*;

    #[test]
    fn undefined_variables_are_errors() {
        #[derive(Serialize)]
        struct Partial {
            name: &'static str,
        }
        let e = render("realm.yaml", &Partial { name: "acme" }).unwrap_err();
        assert!(e.detail.contains("cloud"), "{e}");
    }

    #[test]
    fn shell_quoting_keeps_hostile_text_one_literal_word() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        for hostile in ["x$(touch pwned).pem", "`id`", "a'; rm -rf / #", "$HOME\n"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(hostile)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), hostile);
        }
    }

    #[test]
    fn markdown_cells_are_escaped() {
        let v = md_cell(&Value::String("a|b\nc".into()), &HashMap::new()).unwrap();
        assert_eq!(v, Value::String("a\\|b c".into()));
        assert_eq!(
            md_escape("**x** [l](u) <b>&amp;"),
            "\\*\\*x\\*\\* \\[l\\](u) \\<b\\>\\&amp;"
        );
    }
}
