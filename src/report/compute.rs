//! Scan-cost reports from the query history: totals, groups by day, workgroup, user, table or
//! query, the most expensive queries and partition-pruning misses.

use std::collections::BTreeMap;
use std::sync::Arc;

use glaux_engine::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use glaux_engine::arrow::datatypes::{DataType, Field, Schema};
use glaux_engine::chrono::{DateTime, NaiveDate, Utc};
use glaux_engine::datafusion::error::DataFusionError;
use glaux_engine::{Error, HistoryEntry, QueryExecutionState, Result};
use serde::Serialize;

/// What rows of a report stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportBy {
    Day,
    Workgroup,
    User,
    Table,
    Query,
}

impl std::str::FromStr for ReportBy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "day" => Ok(Self::Day),
            "workgroup" => Ok(Self::Workgroup),
            "user" => Ok(Self::User),
            "table" => Ok(Self::Table),
            "query" => Ok(Self::Query),
            other => Err(Error::InvalidInput(format!(
                "unknown report grouping '{other}' (day, workgroup, user, table or query)"
            ))),
        }
    }
}

impl std::fmt::Display for ReportBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Day => "day",
            Self::Workgroup => "workgroup",
            Self::User => "user",
            Self::Table => "table",
            Self::Query => "query",
        })
    }
}

/// Which part of the history a report covers and how it groups it.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// First UTC day included; default: the oldest day in the history.
    pub since: Option<NaiveDate>,
    /// Last UTC day included; default: today.
    pub until: Option<NaiveDate>,
    pub by: ReportBy,
    /// How many of the most expensive queries to list.
    pub top: usize,
    /// Only queries of this workgroup.
    pub workgroup: Option<String>,
}

/// Counts and bill of a set of queries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub queries: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub data_scanned_bytes: u64,
    pub billed_bytes: u64,
    pub cost_usd: f64,
}

impl Totals {
    fn add(&mut self, state: QueryExecutionState, scanned: u64, billed: u64, cost: f64) {
        self.queries += 1;
        match state {
            QueryExecutionState::Succeeded => self.succeeded += 1,
            QueryExecutionState::Failed => self.failed += 1,
            QueryExecutionState::Cancelled => self.cancelled += 1,
            QueryExecutionState::Queued | QueryExecutionState::Running => {}
        }
        self.data_scanned_bytes += scanned;
        self.billed_bytes += billed;
        self.cost_usd += cost;
    }
}

/// One row of a report: a day, workgroup, user, table or query and its totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// One of the most expensive queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostlyQuery {
    pub query_execution_id: String,
    pub submitted: String,
    pub workgroup: String,
    pub user: Option<String>,
    pub state: String,
    pub data_scanned_bytes: u64,
    pub billed_bytes: u64,
    pub cost_usd: f64,
    pub query: String,
}

/// A query that read every partition of a partitioned table: no partition filter pruned it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruningMiss {
    pub query_execution_id: String,
    pub submitted: String,
    pub table: String,
    pub partitions: usize,
    pub data_scanned_bytes: u64,
    pub cost_usd: f64,
    pub query: String,
}

/// A scan-cost report over a span of days.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub by: ReportBy,
    pub workgroup: Option<String>,
    pub totals: Totals,
    pub groups: Vec<Group>,
    /// Every day of the span, including days without queries (the chart's bars).
    pub daily: Vec<Group>,
    pub top_queries: Vec<CostlyQuery>,
    pub pruning_misses: Vec<PruningMiss>,
}

/// The longest span a report covers (its chart has a bar per day).
const MAX_DAYS: i64 = 3660;

/// Queries that read no catalog table (URL tables, `SELECT 1`) group under this key by table.
pub const NO_TABLE: &str = "(no catalog table)";
/// Queries recorded without a user group under this key by user.
pub const NO_USER: &str = "(unknown)";

fn day_of(epoch_seconds: f64) -> NaiveDate {
    timestamp(epoch_seconds).date_naive()
}

fn timestamp(epoch_seconds: f64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis((epoch_seconds * 1000.0) as i64).unwrap_or_default()
}

fn rfc3339(epoch_seconds: f64) -> String {
    timestamp(epoch_seconds).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Splits `total` over `weights` in proportion, exactly (the remainder goes to the largest share).
fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if weights.is_empty() {
        return vec![];
    }
    if sum == 0 {
        let mut even = vec![total / weights.len() as u64; weights.len()];
        even[0] += total % weights.len() as u64;
        return even;
    }
    let mut shares: Vec<u64> = weights.iter().map(|&w| (u128::from(total) * u128::from(w) / sum) as u64).collect();
    let rest = total - shares.iter().sum::<u64>();
    let largest = (0..weights.len()).max_by_key(|&i| weights[i]).unwrap_or(0);
    shares[largest] += rest;
    shares
}

impl Report {
    /// Builds the report from history entries (in any order).
    pub fn build(entries: &[HistoryEntry], request: &ReportRequest) -> Result<Self> {
        let until = request.until.unwrap_or_else(|| Utc::now().date_naive());
        let oldest = entries.iter().map(|e| day_of(e.execution.status.submission_date_time)).min();
        let since = request.since.unwrap_or_else(|| oldest.unwrap_or(until).min(until));
        if since > until {
            let end = if request.until.is_some() { "its end" } else { "today," };
            return Err(Error::InvalidInput(format!("the report's start {since} (--since) is after {end} {until}")));
        }
        if (until - since).num_days() > MAX_DAYS {
            return Err(Error::InvalidInput(format!(
                "a report covers at most {MAX_DAYS} days; {since} to {until} is {} days",
                (until - since).num_days() + 1
            )));
        }
        let mut chosen: Vec<&HistoryEntry> = entries
            .iter()
            .filter(|e| {
                let day = day_of(e.execution.status.submission_date_time);
                day >= since && day <= until && request.workgroup.as_ref().is_none_or(|w| &e.execution.work_group == w)
            })
            .collect();
        chosen.sort_by(|a, b| {
            a.execution.status.submission_date_time.total_cmp(&b.execution.status.submission_date_time)
        });

        let mut totals = Totals::default();
        let mut groups: BTreeMap<String, Totals> = BTreeMap::new();
        let mut daily: BTreeMap<NaiveDate, Totals> = BTreeMap::new();
        let mut day = since;
        while day <= until {
            daily.insert(day, Totals::default());
            day += glaux_engine::chrono::Duration::days(1);
        }
        let mut pruning_misses = vec![];
        for entry in &chosen {
            let e = &entry.execution;
            let (state, scanned, billed, cost) =
                (e.status.state, e.statistics.data_scanned_in_bytes, e.statistics.billed_bytes, e.statistics.cost_usd);
            totals.add(state, scanned, billed, cost);
            daily.entry(day_of(e.status.submission_date_time)).or_default().add(state, scanned, billed, cost);
            let mut add = |key: String, scanned: u64, billed: u64, cost: f64| {
                groups.entry(key).or_default().add(state, scanned, billed, cost);
            };
            match request.by {
                ReportBy::Day => add(day_of(e.status.submission_date_time).to_string(), scanned, billed, cost),
                ReportBy::Workgroup => add(e.work_group.clone(), scanned, billed, cost),
                ReportBy::User => add(entry.user.clone().unwrap_or_else(|| NO_USER.into()), scanned, billed, cost),
                ReportBy::Query => add(e.query_execution_id.clone(), scanned, billed, cost),
                ReportBy::Table if entry.tables.is_empty() => add(NO_TABLE.into(), scanned, billed, cost),
                ReportBy::Table => {
                    // a query over several tables counts for each; its bytes and cost are split
                    // by the tables' file bytes so that the groups add up to the totals
                    let weights: Vec<u64> = entry.tables.iter().map(|t| t.file_bytes).collect();
                    let scanned_shares = apportion(scanned, &weights);
                    let billed_shares = apportion(billed, &weights);
                    for (i, table) in entry.tables.iter().enumerate() {
                        let share = if billed == 0 { 0.0 } else { cost * billed_shares[i] as f64 / billed as f64 };
                        add(table.table.clone(), scanned_shares[i], billed_shares[i], share);
                    }
                }
            }
            for table in &entry.tables {
                if table.partitioned && table.partitions_total > 1 && table.partitions_scanned == table.partitions_total
                {
                    pruning_misses.push(PruningMiss {
                        query_execution_id: e.query_execution_id.clone(),
                        submitted: rfc3339(e.status.submission_date_time),
                        table: table.table.clone(),
                        partitions: table.partitions_total,
                        data_scanned_bytes: scanned,
                        cost_usd: cost,
                        query: e.query.clone(),
                    });
                }
            }
        }
        let mut groups: Vec<Group> = groups.into_iter().map(|(key, totals)| Group { key, totals }).collect();
        if request.by != ReportBy::Day {
            groups.sort_by(|a, b| b.totals.cost_usd.total_cmp(&a.totals.cost_usd).then_with(|| a.key.cmp(&b.key)));
        }
        let mut top: Vec<&&HistoryEntry> = chosen.iter().filter(|e| e.execution.statistics.billed_bytes > 0).collect();
        top.sort_by(|a, b| {
            b.execution.statistics.cost_usd.total_cmp(&a.execution.statistics.cost_usd).then_with(|| {
                b.execution.statistics.data_scanned_in_bytes.cmp(&a.execution.statistics.data_scanned_in_bytes)
            })
        });
        let top_queries = top
            .into_iter()
            .take(request.top)
            .map(|entry| {
                let e = &entry.execution;
                CostlyQuery {
                    query_execution_id: e.query_execution_id.clone(),
                    submitted: rfc3339(e.status.submission_date_time),
                    workgroup: e.work_group.clone(),
                    user: entry.user.clone(),
                    state: e.status.state.to_string(),
                    data_scanned_bytes: e.statistics.data_scanned_in_bytes,
                    billed_bytes: e.statistics.billed_bytes,
                    cost_usd: e.statistics.cost_usd,
                    query: e.query.clone(),
                }
            })
            .collect();
        pruning_misses.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd));
        Ok(Self {
            since,
            until,
            by: request.by,
            workgroup: request.workgroup.clone(),
            totals,
            groups,
            daily: daily.into_iter().map(|(day, totals)| Group { key: day.to_string(), totals }).collect(),
            top_queries,
            pruning_misses,
        })
    }

    /// The groups as rows, with the totals last (key `total`).
    pub fn groups_batch(&self) -> Result<RecordBatch> {
        let mut rows: Vec<&Group> = self.groups.iter().collect();
        let total = Group { key: "total".into(), totals: self.totals.clone() };
        rows.push(&total);
        let count = |f: &dyn Fn(&Totals) -> u64| -> ArrayRef {
            Arc::new(UInt64Array::from(rows.iter().map(|g| f(&g.totals)).collect::<Vec<_>>()))
        };
        batch(
            vec![
                (self.by.to_string(), DataType::Utf8),
                ("queries".into(), DataType::UInt64),
                ("succeeded".into(), DataType::UInt64),
                ("failed".into(), DataType::UInt64),
                ("cancelled".into(), DataType::UInt64),
                ("data_scanned_bytes".into(), DataType::UInt64),
                ("billed_bytes".into(), DataType::UInt64),
                ("cost_usd".into(), DataType::Float64),
            ],
            vec![
                Arc::new(StringArray::from(rows.iter().map(|g| g.key.clone()).collect::<Vec<_>>())),
                count(&|t| t.queries),
                count(&|t| t.succeeded),
                count(&|t| t.failed),
                count(&|t| t.cancelled),
                count(&|t| t.data_scanned_bytes),
                count(&|t| t.billed_bytes),
                Arc::new(Float64Array::from(rows.iter().map(|g| g.totals.cost_usd).collect::<Vec<_>>())),
            ],
        )
    }

    /// The most expensive queries as rows.
    pub fn top_batch(&self) -> Result<RecordBatch> {
        let q = &self.top_queries;
        let text = |f: &dyn Fn(&CostlyQuery) -> String| -> ArrayRef {
            Arc::new(StringArray::from(q.iter().map(f).collect::<Vec<_>>()))
        };
        batch(
            vec![
                ("query_execution_id".into(), DataType::Utf8),
                ("submitted".into(), DataType::Utf8),
                ("workgroup".into(), DataType::Utf8),
                ("state".into(), DataType::Utf8),
                ("data_scanned_bytes".into(), DataType::UInt64),
                ("cost_usd".into(), DataType::Float64),
                ("query".into(), DataType::Utf8),
            ],
            vec![
                text(&|c| c.query_execution_id.clone()),
                text(&|c| c.submitted.clone()),
                text(&|c| c.workgroup.clone()),
                text(&|c| c.state.clone()),
                Arc::new(UInt64Array::from(q.iter().map(|c| c.data_scanned_bytes).collect::<Vec<_>>())),
                Arc::new(Float64Array::from(q.iter().map(|c| c.cost_usd).collect::<Vec<_>>())),
                text(&|c| one_line(&c.query, 80)),
            ],
        )
    }

    /// The pruning misses as rows.
    pub fn misses_batch(&self) -> Result<RecordBatch> {
        let m = &self.pruning_misses;
        let text = |f: &dyn Fn(&PruningMiss) -> String| -> ArrayRef {
            Arc::new(StringArray::from(m.iter().map(f).collect::<Vec<_>>()))
        };
        batch(
            vec![
                ("query_execution_id".into(), DataType::Utf8),
                ("table".into(), DataType::Utf8),
                ("partitions".into(), DataType::UInt64),
                ("data_scanned_bytes".into(), DataType::UInt64),
                ("cost_usd".into(), DataType::Float64),
                ("query".into(), DataType::Utf8),
            ],
            vec![
                text(&|p| p.query_execution_id.clone()),
                text(&|p| p.table.clone()),
                Arc::new(UInt64Array::from(m.iter().map(|p| p.partitions as u64).collect::<Vec<_>>())),
                Arc::new(UInt64Array::from(m.iter().map(|p| p.data_scanned_bytes).collect::<Vec<_>>())),
                Arc::new(Float64Array::from(m.iter().map(|p| p.cost_usd).collect::<Vec<_>>())),
                text(&|p| one_line(&p.query, 80)),
            ],
        )
    }

    /// The report as one self-contained HTML page: a bar chart of cost per day and the tables.
    pub fn html(&self) -> String {
        super::html::page(self)
    }
}

fn batch(fields: Vec<(String, DataType)>, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    let schema = Schema::new(fields.into_iter().map(|(name, t)| Field::new(name, t, true)).collect::<Vec<_>>());
    RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| Error::from(DataFusionError::from(e)))
}

/// A query on one line, cut to `max` characters.
pub(super) fn one_line(query: &str, max: usize) -> String {
    let flat = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max { flat } else { format!("{}…", flat.chars().take(max - 1).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_is_exact_and_proportional() {
        assert_eq!(apportion(10, &[1, 1, 2]), vec![2, 2, 6]);
        assert_eq!(apportion(7, &[0, 0]), vec![4, 3]);
        assert_eq!(
            apportion(u64::MAX, &[u64::MAX, 1]).iter().map(|&v| u128::from(v)).sum::<u128>(),
            u128::from(u64::MAX)
        );
        assert!(apportion(5, &[]).is_empty());
    }

    #[test]
    fn groupings_parse_and_unknown_ones_are_named() {
        assert_eq!("Workgroup".parse::<ReportBy>().unwrap(), ReportBy::Workgroup);
        let err = "month".parse::<ReportBy>().unwrap_err().to_string();
        assert!(err.contains("'month'") && err.contains("day, workgroup, user, table or query"), "{err}");
    }
}
