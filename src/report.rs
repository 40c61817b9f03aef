//! Rendering a preflight [`Report`]: a text table for terminals, JSON, and HTML/Markdown reports.
//!
//! Text is grouped by category with the owner and the one-line fix under every warn/fail.
//! It is styled with ANSI codes; the CLI prints through `anstream`, which drops them when
//! stdout is not a terminal or `NO_COLOR` is set. HTML and Markdown come from `templates/`.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::checks::{Category, CheckResult, Status};
use crate::preflight::{Report, Summary};
use crate::templates::{self, TemplateError};

fn status_style(s: Status) -> Style {
    let color = match s {
        Status::Pass => AnsiColor::Green,
        Status::Warn => AnsiColor::Yellow,
        Status::Fail => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

fn groups(report: &Report) -> Vec<(Category, Vec<&CheckResult>)> {
    Category::ALL
        .into_iter()
        .map(|c| {
            (
                c,
                report
                    .checks
                    .iter()
                    .filter(|r| r.category == c)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The text table (with ANSI styling).
pub fn text(report: &Report) -> String {
    let bold = Style::new().bold();
    let dim = Style::new().dimmed();
    let mut out = String::new();
    let _ = writeln!(out, "{bold}Preflight for realm {}{bold:#}", report.realm);
    for (cat, checks) in groups(report) {
        let _ = writeln!(out, "\n{bold}{}{bold:#}", cat.as_str().to_uppercase());
        let width = checks
            .iter()
            .map(|c| c.subject.chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        for c in checks {
            let st = status_style(c.status);
            let _ = writeln!(
                out,
                "  {st}{:<4}{st:#}  {:<width$}  {} {dim}({} ms){dim:#}",
                c.status.as_str().to_uppercase(),
                crate::text::one_line(&c.subject),
                crate::text::terminal(&c.message),
                c.duration_ms
            );
            if let Some(fix) = &c.fix {
                let _ = writeln!(
                    out,
                    "        {dim}fix ({}):{dim:#} {}",
                    c.owner.as_str(),
                    crate::text::terminal(fix)
                );
            }
        }
    }
    let Summary { pass, warn, fail } = report.summary;
    let verdict = if fail > 0 {
        status_style(Status::Fail)
    } else if warn > 0 {
        status_style(Status::Warn)
    } else {
        status_style(Status::Pass)
    };
    let _ = writeln!(
        out,
        "\n{verdict}{pass} passed, {warn} warnings, {fail} failed{verdict:#}"
    );
    out
}

/// Pretty JSON in the brief's shape.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report is always JSON")
}

#[derive(Serialize)]
struct Group<'a> {
    category: &'static str,
    title: &'static str,
    checks: Vec<&'a CheckResult>,
}

#[derive(Serialize)]
struct Model<'a> {
    realm: &'a str,
    generated_at: &'a str,
    version: &'static str,
    summary: Summary,
    groups: Vec<Group<'a>>,
}

/// An HTML (self-contained) or Markdown report; `generated_at` is shown as given.
pub fn document(
    report: &Report,
    format: DocFormat,
    generated_at: &str,
) -> Result<String, TemplateError> {
    let model = Model {
        realm: &report.realm,
        generated_at,
        version: env!("CARGO_PKG_VERSION"),
        summary: report.summary,
        groups: groups(report)
            .into_iter()
            .map(|(c, checks)| Group {
                category: c.as_str(),
                title: c.title(),
                checks,
            })
            .collect(),
    };
    templates::render(format.template(), &model)
}

/// Report document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    /// One self-contained HTML file.
    Html,
    /// Markdown.
    Markdown,
}

impl DocFormat {
    /// The format for a file name (`.html`/`.htm` or `.md`).
    pub fn for_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "html" | "htm" => Some(DocFormat::Html),
            "md" | "markdown" => Some(DocFormat::Markdown),
            _ => None,
        }
    }

    fn template(self) -> &'static str {
        match self {
            DocFormat::Html => "preflight.html",
            DocFormat::Markdown => "preflight.md",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut fail = CheckResult::fail(
            "dns.resolve.core",
            Category::Dns,
            "*.core.d.acme.com",
            "x | <b>NXDOMAIN</b>",
            "create the record",
        );
        fail.duration_ms = 12;
        Report::new(
            "acme",
            vec![
                CheckResult::pass(
                    "spec.node-image",
                    Category::Spec,
                    "cloud.cluster.nodeImage",
                    "default",
                ),
                fail,
            ],
        )
    }

    #[test]
    fn text_groups_and_shows_fixes() {
        let t = text(&sample());
        let plain = anstream::adapter::strip_str(&t).to_string();
        assert!(plain.contains("SPEC\n"));
        assert!(plain.contains("DNS\n"));
        assert!(plain.contains("fix (customer): create the record"));
        assert!(plain.contains("1 passed, 0 warnings, 1 failed"));
    }

    #[test]
    fn documents_escape_user_text() {
        let html = document(&sample(), DocFormat::Html, "2026-11-23T10:00:00Z").unwrap();
        assert!(html.contains("&lt;b&gt;NXDOMAIN&lt;&#x2F;b&gt;"), "{html}");
        assert!(!html.contains("<b>NXDOMAIN"));
        let md = document(&sample(), DocFormat::Markdown, "2026-11-23T10:00:00Z").unwrap();
        assert!(md.contains("x \\| \\<b\\>NXDOMAIN\\</b\\>"), "{md}");
        assert!(!md.contains("<b>"), "{md}");
        insta::assert_snapshot!("preflight_md", md);
    }
}
