//! How long a cloud supports each Kubernetes minor version, as data (`versions/<cloud>.yaml`,
//! each naming the provider's published calendar it was read from), and the pure judgement of
//! a version on a given day: supported, in the cloud's limited period (EKS extended support,
//! GKE maintenance), ended, or not in the data. `fleet` shows it per realm; `upgrade` will use
//! the same table. Dates are the provider's, as published; nothing here reads a clock.

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

/// One cloud's support calendar, as its data file states it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Calendar {
    /// The provider's page the rows were read from.
    pub source: String,
    /// When they were read (YYYY-MM-DD).
    pub read: String,
    /// What the period after standard support is called on this cloud, if it has one.
    #[serde(default)]
    pub limited: Option<String>,
    /// One row per minor version, oldest first.
    pub versions: Vec<MinorRow>,
}

/// One minor version's dates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MinorRow {
    /// `MAJOR.MINOR`.
    pub minor: String,
    /// Last day of standard support (YYYY-MM-DD).
    pub standard_until: String,
    /// Last day of the limited period after it, if the cloud has one.
    #[serde(default)]
    pub limited_until: Option<String>,
}

/// Where a version stands on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "support")]
pub enum Support {
    /// Under standard support until `until` (inclusive).
    Standard {
        /// Last day.
        until: String,
    },
    /// Past standard support, in the cloud's limited period (`what`) until `until`.
    Limited {
        /// What the period is (e.g. extended support, billed per cluster hour).
        what: String,
        /// Its last day.
        until: String,
    },
    /// No longer supported since the day after `ended`.
    Ended {
        /// The last supported day.
        ended: String,
    },
    /// The calendar has no row for this version (newer than the data, or not a version).
    Unknown {
        /// Where the data came from and when it was read.
        calendar: String,
    },
}

impl Support {
    /// Whether the cloud still supports the version (standard or limited).
    pub fn supported(&self) -> bool {
        matches!(self, Support::Standard { .. } | Support::Limited { .. })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Support::Standard { until } => format!("supported until {until}"),
            Support::Limited { what, until } => format!("{what} until {until}"),
            Support::Ended { ended } => format!("support ended {ended}"),
            Support::Unknown { calendar } => format!("no date on record ({calendar})"),
        }
    }
}

/// A calendar's data is wrong (a build defect, caught by the unit tests).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    /// The YAML does not parse.
    #[error("the support calendar does not parse: {0}")]
    Syntax(String),
    /// A date is not YYYY-MM-DD.
    #[error("`{value}` in row {minor} is not a YYYY-MM-DD date")]
    Date {
        /// The row.
        minor: String,
        /// The text.
        value: String,
    },
    /// Rows out of order, or a limited period ending before standard support.
    #[error("row {minor}: {problem}")]
    Order {
        /// The row.
        minor: String,
        /// What is wrong.
        problem: String,
    },
}

fn date(minor: &str, value: &str) -> Result<Date, CalendarError> {
    Date::parse(value, format_description!("[year]-[month]-[day]")).map_err(|_| {
        CalendarError::Date {
            minor: minor.to_owned(),
            value: value.to_owned(),
        }
    })
}

/// `MAJOR.MINOR` as numbers.
pub fn minor_number(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

impl Calendar {
    /// Parses and checks a calendar: every date a date, rows in version order, a limited
    /// period never ending before standard support.
    pub fn parse(yaml: &str) -> Result<Calendar, CalendarError> {
        let c: Calendar =
            serde_saphyr::from_str(yaml).map_err(|e| CalendarError::Syntax(e.to_string()))?;
        date("read", &c.read)?;
        let mut last: Option<(u32, u32)> = None;
        for r in &c.versions {
            let order = |problem: &str| CalendarError::Order {
                minor: r.minor.clone(),
                problem: problem.to_owned(),
            };
            let n = minor_number(&r.minor).ok_or_else(|| order("not MAJOR.MINOR"))?;
            if last.is_some_and(|l| l >= n) {
                return Err(order("rows must be in version order, each once"));
            }
            last = Some(n);
            let standard = date(&r.minor, &r.standard_until)?;
            if let Some(l) = &r.limited_until {
                if c.limited.is_none() {
                    return Err(order("a limited period on a cloud that names none"));
                }
                if date(&r.minor, l)? < standard {
                    return Err(order("the limited period ends before standard support"));
                }
            }
        }
        Ok(c)
    }

    /// Where `version` (`MAJOR.MINOR`, or a longer version whose minor is read) stands on
    /// `today` (pure).
    pub fn judge(&self, version: &str, today: Date) -> Support {
        let unknown = || Support::Unknown {
            calendar: format!("{} as read {}", self.source, self.read),
        };
        let Some(n) = minor_number(version) else {
            return unknown();
        };
        let Some(row) = self
            .versions
            .iter()
            .find(|r| minor_number(&r.minor) == Some(n))
        else {
            return unknown();
        };
        // Rows were checked when the calendar was parsed.
        let standard = date(&row.minor, &row.standard_until).expect("checked on parse");
        if today <= standard {
            return Support::Standard {
                until: row.standard_until.clone(),
            };
        }
        match (&row.limited_until, &self.limited) {
            (Some(l), Some(what)) if today <= date(&row.minor, l).expect("checked on parse") => {
                Support::Limited {
                    what: what.clone(),
                    until: l.clone(),
                }
            }
            (Some(l), _) => Support::Ended { ended: l.clone() },
            (None, _) => Support::Ended {
                ended: row.standard_until.clone(),
            },
        }
    }
}

/// A profile's embedded calendar, parsed once into `cell` (every profile's is parsed by the
/// unit tests, so a wrong row fails the build's tests, not an operator's `fleet`).
pub fn embedded(cell: &'static std::sync::OnceLock<Calendar>, yaml: &str) -> &'static Calendar {
    cell.get_or_init(|| Calendar::parse(yaml).expect("the embedded calendars parse (unit-tested)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const SAMPLE: &str = "source: https://example.test/calendar\nread: 2026-12-06\nlimited: extended support\nversions:\n  - {minor: \"1.33\", standardUntil: 2026-07-29, limitedUntil: 2027-07-29}\n  - {minor: \"1.34\", standardUntil: 2026-12-02}\n";

    #[test]
    fn a_version_is_standard_through_its_last_day_then_limited_then_ended() {
        let c = Calendar::parse(SAMPLE).unwrap();
        let standard = Support::Standard {
            until: "2026-07-29".into(),
        };
        assert_eq!(c.judge("1.33", date!(2026 - 07 - 29)), standard);
        assert_eq!(c.judge("1.33.5-eks-1", date!(2026 - 07 - 29)), standard);
        assert_eq!(
            c.judge("1.33", date!(2026 - 07 - 30)),
            Support::Limited {
                what: "extended support".into(),
                until: "2027-07-29".into()
            }
        );
        let ended = c.judge("1.33", date!(2027 - 07 - 30));
        assert_eq!(
            ended,
            Support::Ended {
                ended: "2027-07-29".into()
            }
        );
        assert!(!ended.supported());
        // No limited period: ended the day after standard support.
        assert_eq!(
            c.judge("1.34", date!(2026 - 12 - 03)),
            Support::Ended {
                ended: "2026-12-02".into()
            }
        );
    }

    #[test]
    fn a_version_missing_from_the_calendar_is_unknown_naming_the_source() {
        let c = Calendar::parse(SAMPLE).unwrap();
        for v in ["1.36", "latest", ""] {
            let s = c.judge(v, date!(2026 - 12 - 06));
            assert!(
                matches!(&s, Support::Unknown { calendar } if calendar.contains("example.test") && calendar.contains("2026-12-06")),
                "{v}: {s:?}"
            );
            assert!(!s.supported());
        }
    }

    #[test]
    fn every_cloud_has_a_calendar_that_parses_and_covers_a_supported_version() {
        for p in crate::spec::Provider::ALL {
            let c = crate::cloud::profile::for_provider(p).kubernetes_support();
            assert!(c.source.starts_with("https://"), "{p:?}");
            assert!(
                c.versions
                    .iter()
                    .any(|r| r.standard_until.as_str() >= c.read.as_str()),
                "{p:?}: no version under standard support on the day the data was read"
            );
        }
    }

    #[test]
    fn calendars_out_of_order_or_with_bad_dates_are_refused() {
        let bad_date = SAMPLE.replace("2026-12-02", "2026-13-02");
        assert!(matches!(
            Calendar::parse(&bad_date),
            Err(CalendarError::Date { .. })
        ));
        let swapped = "source: s\nread: 2026-12-06\nversions:\n  - {minor: \"1.34\", standardUntil: 2026-12-02}\n  - {minor: \"1.33\", standardUntil: 2026-07-29}\n";
        assert!(matches!(
            Calendar::parse(swapped),
            Err(CalendarError::Order { .. })
        ));
        let backwards = SAMPLE.replace("2027-07-29", "2026-01-01");
        assert!(matches!(
            Calendar::parse(&backwards),
            Err(CalendarError::Order { .. })
        ));
        let unnamed = SAMPLE.replace("limited: extended support\n", "");
        assert!(matches!(
            Calendar::parse(&unnamed),
            Err(CalendarError::Order { .. })
        ));
    }
}
