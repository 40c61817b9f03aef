//! The SQLite ledger's decision-log rows, and how they are written: the admissions of one
//! group commit go in as a few multi-row `INSERT`s rather than one statement each.
//!
//! Why (issue #21): on SQLite every admission runs in the one writer thread, and its log row
//! was more than half of its writer time — most of it not the row itself but the statement
//! around it: the statement-cache lookup, the `AUTOINCREMENT` counter read from and written
//! back to `sqlite_sequence`, the cursor opened and seeked to the table's end, the statement's
//! halt and reset. A statement of many rows pays those once. The rows, their order and their
//! ids are exactly those of one statement per row: a multi-row `INSERT` assigns ids in the
//! order of its `VALUES`, and [`Log`] keeps the order in which decisions were made.
//!
//! A [`Log`] holds the rows of the decisions made so far in a transaction and must be
//! [flushed](Log::flush) before anything reads the log or the tables folded from it (a fold,
//! a seed, an undeploy, a retirement, the log's own pages) and before the commit: the ledger
//! flushes before every operation that is not decided from what the connection knows, before
//! a fold, and before it commits. A failed flush fails the whole transaction, as a failed
//! single-row insert did: nothing of it is acknowledged.

use std::sync::LazyLock;

use rusqlite::Connection;

/// One decision-log row. `before` and `after` are the environment's usage as JSON.
#[derive(Debug)]
pub(super) struct LogRow<'a> {
    pub at: &'a str,
    pub actor: &'a str,
    pub realm: &'a str,
    pub action: &'a str,
    pub request: &'a str,
    pub admitted: bool,
    pub reason: Option<&'a str>,
    pub detail: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The log's columns, in the order of [`LogRow`]'s fields and of [`bind`].
const COLUMNS: &str =
    "at, actor, realm, action, request, admitted, reason, detail, usage_before, usage_after";
/// Values per row.
const PER_ROW: usize = 10;
/// Rows per statement, largest first: a flush writes as many of the largest as fit, then the
/// next size down, so `n` rows take at most a handful of statements (each prepared once per
/// connection and cached).
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The `INSERT` of `n` rows.
fn insert_sql(n: usize) -> String {
    let row = format!("({})", ["?"; PER_ROW].join(", "));
    format!(
        "INSERT INTO decisions ({COLUMNS}) VALUES {}",
        vec![row; n].join(", ")
    )
}

/// The statement of each size in [`CHUNKS`], built once.
static SQL: LazyLock<[String; CHUNKS.len()]> = LazyLock::new(|| CHUNKS.map(insert_sql));

/// How `n` rows are split into statements: (size index in [`CHUNKS`], how many of that size).
fn plan(mut n: usize) -> impl Iterator<Item = (usize, usize)> {
    CHUNKS.iter().enumerate().map(move |(i, &size)| {
        let k = n / size;
        n %= size;
        (i, k)
    })
}

/// Binds `row` as the `first`-th..`first + PER_ROW - 1`-th parameters (1-based).
fn bind(st: &mut rusqlite::Statement<'_>, first: usize, row: &LogRow<'_>) -> rusqlite::Result<()> {
    st.raw_bind_parameter(first, row.at)?;
    st.raw_bind_parameter(first + 1, row.actor)?;
    st.raw_bind_parameter(first + 2, row.realm)?;
    st.raw_bind_parameter(first + 3, row.action)?;
    st.raw_bind_parameter(first + 4, row.request)?;
    st.raw_bind_parameter(first + 5, i64::from(row.admitted))?;
    st.raw_bind_parameter(first + 6, row.reason)?;
    st.raw_bind_parameter(first + 7, row.detail.as_str())?;
    st.raw_bind_parameter(first + 8, row.before.as_deref())?;
    st.raw_bind_parameter(first + 9, row.after.as_deref())
}

/// Appends `rows` to the log, in order, inside the caller's transaction.
pub(super) fn write(c: &Connection, rows: &[LogRow<'_>]) -> rusqlite::Result<()> {
    let mut rest = rows;
    for (i, k) in plan(rows.len()) {
        if k == 0 {
            continue;
        }
        let size = CHUNKS[i];
        let mut st = c.prepare_cached(&SQL[i])?;
        for _ in 0..k {
            let (now, later) = rest.split_at(size);
            for (j, row) in now.iter().enumerate() {
                bind(&mut st, 1 + j * PER_ROW, row)?;
            }
            st.raw_execute()?;
            rest = later;
        }
    }
    Ok(())
}

/// The rows of a transaction's decisions not yet written.
#[derive(Debug, Default)]
pub(super) struct Log<'a> {
    rows: Vec<LogRow<'a>>,
}

impl<'a> Log<'a> {
    /// Queues a row (written at the next [`Log::flush`]).
    pub fn push(&mut self, row: LogRow<'a>) {
        self.rows.push(row);
    }

    /// Writes every queued row, in order.
    pub fn flush(&mut self, c: &Connection) -> rusqlite::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let r = write(c, &self.rows);
        self.rows.clear();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_into_the_largest_statements_first() {
        let split = |n| plan(n).map(|(i, k)| (CHUNKS[i], k)).collect::<Vec<_>>();
        assert_eq!(split(0), [(64, 0), (16, 0), (4, 0), (1, 0)]);
        assert_eq!(split(1), [(64, 0), (16, 0), (4, 0), (1, 1)]);
        assert_eq!(split(87), [(64, 1), (16, 1), (4, 1), (1, 3)]);
        assert_eq!(split(128), [(64, 2), (16, 0), (4, 0), (1, 0)]);
        for n in 0..300 {
            assert_eq!(plan(n).map(|(i, k)| CHUNKS[i] * k).sum::<usize>(), n);
        }
    }

    #[test]
    fn a_statement_has_ten_placeholders_per_row() {
        for (i, sql) in SQL.iter().enumerate() {
            assert_eq!(sql.matches('?').count(), CHUNKS[i] * PER_ROW, "{sql}");
            assert_eq!(sql.matches("(?").count(), CHUNKS[i]);
        }
        assert_eq!(COLUMNS.split(", ").count(), PER_ROW);
    }

    fn row(i: usize, detail: &str) -> LogRow<'static> {
        LogRow {
            at: "2026-12-07T00:00:00Z",
            actor: "t",
            realm: "acme",
            action: "deploy",
            request: if i.is_multiple_of(2) {
                "{}"
            } else {
                "{\"x\":1}"
            },
            admitted: !i.is_multiple_of(3),
            reason: i.is_multiple_of(3).then_some("no_subscription"),
            detail: format!("{detail} {i}"),
            before: (!i.is_multiple_of(5)).then(|| format!("{{\"n\":{i}}}")),
            after: None,
        }
    }

    /// Every row written, in order, with each value in its column, however the rows were split.
    #[test]
    fn a_flush_writes_every_row_in_order_with_its_values() {
        let c = Connection::open_in_memory().unwrap();
        for sql in crate::quota::ledger_schema::MIGRATIONS {
            c.execute_batch(sql).unwrap();
        }
        let mut log = Log::default();
        for i in 0..87 {
            log.push(row(i, "first"));
        }
        log.flush(&c).unwrap();
        log.flush(&c).unwrap();
        log.push(row(87, "second"));
        log.flush(&c).unwrap();
        let mut st = c
            .prepare(&format!("SELECT id, {COLUMNS} FROM decisions ORDER BY id"))
            .unwrap();
        let got: Vec<(i64, String)> = st
            .query_map([], |r| {
                let mut s = String::new();
                for k in 1..=PER_ROW {
                    s.push_str(&format!("{:?}|", r.get_ref(k)?));
                }
                Ok((r.get(0)?, s))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 88);
        for (i, (id, values)) in got.iter().enumerate() {
            assert_eq!(*id, i as i64 + 1);
            let r = row(i, if i < 87 { "first" } else { "second" });
            let text = |s: &str| format!("Text({:?})|", s.as_bytes());
            let opt = |s: Option<&str>| s.map_or("Null|".to_owned(), text);
            let want = [
                text(r.at),
                text(r.actor),
                text(r.realm),
                text(r.action),
                text(r.request),
                format!("Integer({})|", i64::from(r.admitted)),
                opt(r.reason),
                text(&r.detail),
                opt(r.before.as_deref()),
                opt(r.after.as_deref()),
            ]
            .concat();
            assert_eq!(values, &want, "row {i}");
        }
    }
}
