//! The fleet view (pure): one row per realm's state folder, built from what its journal
//! proves. The row says where the realm stands (phase, who acts next and since when), which
//! Kubernetes version it runs and whether its cloud still supports that version on the day
//! asked about, its last run, and whether its journal verifies. A journal that breaks is shown
//! as of its last verified record and says so: nothing past a break is trusted.
//!
//! [`crate::engine::fleet`] gathers the facts (read-only); rendering is in `templates/` and
//! the CLI.

use serde::{Deserialize, Serialize};
use time::Date;

use super::next::{Next, standing};
use super::report::{PhaseStatus, phase_status};
use super::state::{RunInfo, State};
use crate::cloud::profile::{self, support::Support};
use crate::spec::Provider;

/// What a journal walk concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Journal {
    /// Every record chains (and, with trusted keys, carries a valid signature by one of them).
    Verified {
        /// Records.
        records: u64,
        /// The head an auditor can keep (`SEQ:HASH`).
        head: String,
        /// Whether signatures were checked against trusted keys.
        signatures_checked: bool,
    },
    /// The chain breaks: the row shows the realm as of the last record before the break.
    Broken {
        /// Records that verified before the break.
        verified: u64,
        /// The break, in words.
        problem: String,
    },
    /// The folder holds no readable journal.
    Unreadable {
        /// Why.
        problem: String,
    },
}

impl Journal {
    /// Whether the journal verified.
    pub fn ok(&self) -> bool {
        matches!(self, Journal::Verified { .. })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Journal::Verified {
                records,
                signatures_checked,
                ..
            } => format!(
                "verified ({records} records{})",
                if *signatures_checked {
                    ", signatures checked"
                } else {
                    ", signatures not checked"
                }
            ),
            Journal::Broken { verified, problem } => {
                format!("BROKEN: {problem} (shown as of record {verified})")
            }
            Journal::Unreadable { problem } => format!("UNREADABLE: {problem}"),
        }
    }
}

/// Where the realm stands in its playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseCell {
    /// The first phase not done (`None`: every phase is done).
    pub number: Option<u8>,
    /// Its title, or "complete".
    pub title: String,
    /// Its status.
    pub status: Option<PhaseStatus>,
}

/// The cluster's Kubernetes version and what its cloud says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeCell {
    /// `MAJOR.MINOR`.
    pub version: String,
    /// Whether it was built (from the cloud step's output) or only asked for (the spec).
    pub built: bool,
    /// What the cloud's published calendar says on the day asked about.
    #[serde(flatten)]
    pub support: Support,
    /// The same in words ([`Support::describe`]).
    pub support_line: String,
}

/// One realm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetRow {
    /// The state folder, as given.
    pub folder: String,
    /// The realm's name (from its journal).
    pub realm: Option<String>,
    /// The cloud.
    pub cloud: Option<Provider>,
    /// Region or location.
    pub region: Option<String>,
    /// Where it stands.
    pub phase: Option<PhaseCell>,
    /// One line.
    pub summary: String,
    /// Who acts next (`None`: nobody, the install is complete, or the journal is unreadable).
    pub next: Option<Next>,
    /// Since when the realm has stood there (RFC 3339, from the journal).
    pub since: Option<String>,
    /// The cluster's version.
    pub kubernetes: Option<KubeCell>,
    /// The last run.
    pub last_run: Option<RunInfo>,
    /// The journal's verification.
    pub journal: Journal,
    /// The same in words ([`Journal::describe`]).
    pub journal_line: String,
    /// The process holding the realm's lock, if any (as its lock file says).
    pub lock: Option<String>,
}

/// The fleet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// The day support was judged for (YYYY-MM-DD).
    pub today: String,
    /// realmctl's version.
    pub version: String,
    /// Rows, in folder order.
    pub rows: Vec<FleetRow>,
    /// Realms per "who acts next" (owner, count), for the page's summary.
    pub waiting_on: Vec<(String, usize)>,
    /// Journals that do not verify.
    pub broken: usize,
    /// Realms whose Kubernetes version their cloud no longer supports (or has no date for).
    pub unsupported: usize,
}

/// The spec fields the row needs, read typed from the spec the last run recorded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedSpec {
    cloud: RecordedCloud,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedCloud {
    cluster: RecordedCluster,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedCluster {
    kubernetes_version: String,
}

/// Facts gathered for one folder.
#[derive(Debug, Default)]
pub struct Facts {
    /// The state folded from the verified records.
    pub state: State,
    /// The `at` of the last verified record.
    pub last_at: Option<String>,
    /// A live lock holder, described.
    pub running: Option<String>,
    /// Any lock holder, described.
    pub lock: Option<String>,
}

fn kube(state: &State, today: Date) -> Option<KubeCell> {
    let subject = state.subject.as_ref()?;
    let built = state
        .steps
        .values()
        .filter_map(|s| s.output.as_ref()?.built.as_ref())
        .next_back()
        .map(|d| d.cluster.kubernetes_version.clone());
    let asked = state
        .spec
        .as_ref()
        .and_then(|v| RecordedSpec::deserialize(v).ok())
        .map(|s| s.cloud.cluster.kubernetes_version);
    let (version, built) = match (built, asked) {
        (Some(v), _) => (v, true),
        (None, Some(v)) => (v, false),
        (None, None) => return None,
    };
    let support = profile::for_provider(subject.provider)
        .kubernetes_support()
        .judge(&version, today);
    Some(KubeCell {
        version,
        built,
        support_line: support.describe(),
        support,
    })
}

fn phase(state: &State) -> Option<PhaseCell> {
    let playbook = state.playbook.as_ref()?;
    let open = playbook
        .phases
        .iter()
        .map(|p| (p, phase_status(p, state)))
        .find(|(_, s)| !matches!(s, PhaseStatus::Done | PhaseStatus::Empty));
    Some(match open {
        Some((p, s)) => PhaseCell {
            number: Some(p.number),
            title: p.title.clone(),
            status: Some(s),
        },
        None => PhaseCell {
            number: None,
            title: "complete".into(),
            status: None,
        },
    })
}

/// Since when the realm has stood where it stands: a run in progress since it started, a
/// stopped one since it stopped, a dead one since its last record.
fn since(state: &State, facts: &Facts) -> Option<String> {
    let last = state.runs.last()?;
    if facts.running.is_some() && last.outcome.is_none() {
        return Some(last.started_at.clone());
    }
    last.stopped_at.clone().or_else(|| facts.last_at.clone())
}

/// The row of one folder (pure).
pub fn row(folder: &str, journal: Journal, facts: Facts, today: Date) -> FleetRow {
    let state = &facts.state;
    let empty = || FleetRow {
        folder: folder.to_owned(),
        realm: None,
        cloud: None,
        region: None,
        phase: None,
        summary: String::new(),
        next: None,
        since: None,
        kubernetes: None,
        last_run: None,
        journal_line: journal.describe(),
        journal: journal.clone(),
        lock: facts.lock.clone(),
    };
    let Some(subject) = &state.subject else {
        let mut r = empty();
        r.summary = match &journal {
            Journal::Unreadable { problem } => format!("no journal to read: {problem}"),
            Journal::Broken { problem, .. } => {
                format!("nothing verifies before the break: {problem}")
            }
            Journal::Verified { .. } => "no install has run yet".into(),
        };
        return r;
    };
    let (summary, next) = match &state.playbook {
        Some(pb) => {
            let s = standing(pb, state, facts.running.as_deref());
            (s.summary, s.next)
        }
        None => ("no run recorded its playbook".to_owned(), None),
    };
    let summary = match &journal {
        Journal::Broken { verified, .. } => {
            format!("as of record {verified}, before the journal breaks: {summary}")
        }
        _ => summary,
    };
    FleetRow {
        folder: folder.to_owned(),
        realm: Some(subject.realm.clone()),
        cloud: Some(subject.provider),
        region: Some(subject.region.clone()),
        phase: phase(state),
        summary,
        next,
        since: since(state, &facts),
        kubernetes: kube(state, today),
        last_run: state.runs.last().cloned(),
        journal_line: journal.describe(),
        journal,
        lock: facts.lock.clone(),
    }
}

/// The fleet of `rows` (pure): the counts the page's summary shows.
pub fn fleet(rows: Vec<FleetRow>, today: Date) -> Fleet {
    let mut waiting_on: Vec<(String, usize)> = Vec::new();
    for r in &rows {
        if let Some(n) = &r.next {
            let who = n.owner.as_str().to_owned();
            match waiting_on.iter_mut().find(|(o, _)| *o == who) {
                Some((_, c)) => *c += 1,
                None => waiting_on.push((who, 1)),
            }
        }
    }
    waiting_on.sort();
    Fleet {
        today: today.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        broken: rows.iter().filter(|r| !r.journal.ok()).count(),
        unsupported: rows
            .iter()
            .filter(|r| {
                r.kubernetes
                    .as_ref()
                    .is_some_and(|k| !k.support.supported())
            })
            .count(),
        rows,
        waiting_on,
    }
}

/// The fleet as a self-contained HTML page (no script, no external asset; every value
/// escaped by the template engine).
pub fn html(f: &Fleet) -> Result<String, crate::templates::TemplateError> {
    crate::templates::render("fleet.html", f)
}

/// The fleet as a text table, one realm per line (values are the journal's own words, made
/// one line each; the CLI makes them safe for a terminal).
pub fn table(f: &Fleet) -> String {
    let header = [
        "REALM", "CLOUD", "REGION", "PHASE", "NEXT", "SINCE", "K8S", "SUPPORT", "LAST RUN",
        "JOURNAL",
    ];
    let cells: Vec<[String; 10]> = f
        .rows
        .iter()
        .map(|r| {
            [
                r.realm.clone().unwrap_or_else(|| r.folder.clone()),
                r.cloud.map(|c| c.to_string()).unwrap_or_default(),
                r.region.clone().unwrap_or_default(),
                r.phase
                    .as_ref()
                    .map(|p| match p.number {
                        Some(n) => format!("{n} {}", p.title),
                        None => p.title.clone(),
                    })
                    .unwrap_or_default(),
                r.next
                    .as_ref()
                    .map(|n| n.owner.as_str().to_owned())
                    .unwrap_or_else(|| "-".into()),
                r.since.clone().unwrap_or_default(),
                r.kubernetes
                    .as_ref()
                    .map(|k| k.version.clone())
                    .unwrap_or_default(),
                r.kubernetes
                    .as_ref()
                    .map(|k| k.support_line.clone())
                    .unwrap_or_default(),
                r.last_run
                    .as_ref()
                    .map(|l| {
                        let how = l
                            .outcome
                            .map(|o| format!("{o:?}").to_lowercase())
                            .unwrap_or_else(|| "interrupted".into());
                        format!("#{} {how} by {}", l.run, l.operator)
                    })
                    .unwrap_or_default(),
                r.journal_line.clone(),
            ]
            .map(|c| crate::text::one_line(&c))
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: Vec<&str>| {
        let mut out = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push_str(&format!(
        "{} realms; journals that do not verify: {}; Kubernetes versions past support or without a date: {} (as of {})\n",
        f.rows.len(),
        f.broken,
        f.unsupported,
        f.today
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::event::{Event, RunSubject, StopOutcome};
    use crate::engine::model::playbook;
    use time::macros::date;

    fn verified() -> Journal {
        Journal::Verified {
            records: 3,
            head: "3:ab".into(),
            signatures_checked: false,
        }
    }

    fn started(version: &str) -> State {
        let mut spec = serde_json::json!({"cloud": {"cluster": {"kubernetesVersion": version}}});
        spec["name"] = "acme".into();
        let events = [
            Event::RunStarted {
                run: 1,
                operator: "ops".into(),
                version: "0".into(),
                host: "h".into(),
                lock_id: "l".into(),
                until: None,
                subject: RunSubject {
                    realm: "acme".into(),
                    provider: Provider::Eks,
                    region: "eu-west-1".into(),
                    artifacts_bucket: None,
                    endpoint: None,
                },
                spec,
                spec_digest: "d".into(),
                playbook: playbook::embedded(),
            },
            Event::RunStopped {
                run: 1,
                outcome: StopOutcome::Failed,
                message: "step preflight failed".into(),
            },
        ];
        let mut s = State::default();
        for (i, e) in events.iter().enumerate() {
            s.apply(i as u64 + 1, &format!("2026-12-0{}T10:00:00Z", i + 1), e);
        }
        s
    }

    #[test]
    fn a_stopped_realm_shows_its_first_open_phase_who_acts_next_since_it_stopped_and_its_version_support()
     {
        let facts = Facts {
            state: started("1.33"),
            last_at: Some("2026-12-02T10:00:00Z".into()),
            ..Facts::default()
        };
        let r = row("/s/acme", verified(), facts, date!(2026 - 12 - 06));
        assert_eq!(r.realm.as_deref(), Some("acme"));
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.phase.as_ref().unwrap().number, Some(1));
        assert!(r.next.is_some(), "a failed install names who acts next");
        assert_eq!(r.since.as_deref(), Some("2026-12-02T10:00:00Z"));
        let k = r.kubernetes.unwrap();
        assert_eq!((k.version.as_str(), k.built), ("1.33", false));
        // EKS 1.33: standard support ended 2026-07-29; extended support until 2027-07-29.
        assert!(
            matches!(&k.support, Support::Limited { until, .. } if until == "2027-07-29"),
            "{:?}",
            k.support
        );
    }

    #[test]
    fn a_broken_journal_says_so_and_shows_only_what_verified() {
        let facts = Facts {
            state: started("1.35"),
            ..Facts::default()
        };
        let j = Journal::Broken {
            verified: 2,
            problem: "record 3 was modified".into(),
        };
        let r = row("/s/acme", j, facts, date!(2026 - 12 - 06));
        assert!(r.summary.starts_with("as of record 2"), "{}", r.summary);
        assert!(!r.journal.ok());
        assert!(r.journal.describe().contains("BROKEN"));
        let f = fleet(vec![r], date!(2026 - 12 - 06));
        assert_eq!((f.broken, f.unsupported), (1, 0));
    }

    #[test]
    fn an_unreadable_folder_is_a_row_that_names_the_problem() {
        let j = Journal::Unreadable {
            problem: "no journal in /s/x".into(),
        };
        let r = row("/s/x", j, Facts::default(), date!(2026 - 12 - 06));
        assert!(r.realm.is_none() && r.next.is_none());
        assert!(r.summary.contains("no journal in /s/x"), "{}", r.summary);
    }

    #[test]
    fn versions_past_support_are_counted() {
        let facts = Facts {
            state: started("1.28"),
            ..Facts::default()
        };
        let r = row("/s/old", verified(), facts, date!(2026 - 12 - 06));
        assert!(!r.kubernetes.as_ref().unwrap().support.supported());
        let f = fleet(vec![r], date!(2026 - 12 - 06));
        assert_eq!(f.unsupported, 1);
        assert_eq!(f.waiting_on.len(), 1);
    }
}
