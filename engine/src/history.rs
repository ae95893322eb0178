//! The query history: every finished query's record, kept durably in the warehouse as one JSON
//! line per query in a file per UTC day, and readable as `system.query_history`.
//!
//! Appends take an exclusive lock on the day's file, so concurrent processes never interleave
//! lines; a line is written whole or, after a crash, left as a fragment the reader skips.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::catalog::TableScan;
use crate::error::{Error, Result};
use crate::model::QueryExecution;
use glaux_catalog::warehouse_file;

/// One line of the history: the QueryExecution plus who ran it and what it read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEntry {
    #[serde(flatten)]
    pub execution: QueryExecution,
    /// The front end that ran it: `cli`, `serve`, `lambda`, …
    pub source: String,
    #[serde(default)]
    pub user: Option<String>,
    /// The database unqualified names resolved in.
    #[serde(default)]
    pub database: Option<String>,
    /// Catalog tables read: partitions kept and files, per table.
    #[serde(default)]
    pub tables: Vec<TableRead>,
}

/// What one query read of one catalog table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableRead {
    pub table: String,
    pub partitioned: bool,
    pub partitions_total: usize,
    pub partitions_scanned: usize,
    pub files: usize,
    pub file_bytes: u64,
}

impl From<&TableScan> for TableRead {
    fn from(s: &TableScan) -> Self {
        Self {
            table: s.table.clone(),
            partitioned: s.partitioned,
            partitions_total: s.partitions_total,
            partitions_scanned: s.partitions_scanned,
            files: s.files,
            file_bytes: s.file_bytes,
        }
    }
}

/// The history of one warehouse.
#[derive(Debug, Clone)]
pub struct QueryHistory {
    dir: PathBuf,
    /// Days of history kept; older day files are removed as new queries are recorded.
    retention_days: Option<u32>,
    /// What was read of each day file, so a server's lookups read only what was appended since.
    cache: Arc<Mutex<Cache>>,
}

/// Parsed day files (bytes consumed, entries) and an index of entries by query id.
#[derive(Debug, Default)]
struct Cache {
    files: BTreeMap<PathBuf, (u64, Vec<HistoryEntry>)>,
    by_id: HashMap<String, (PathBuf, usize)>,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("query history {}: {e}", path.display()))
}

impl QueryHistory {
    /// The history under `<warehouse>/_glaux_history`, created if needed.
    pub fn open(warehouse: impl AsRef<Path>, retention_days: Option<u32>) -> Result<Self> {
        let dir = warehouse.as_ref().join("_glaux_history");
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(Self { dir, retention_days, cache: Arc::default() })
    }

    /// The history of a warehouse that must already have one (for reading: nothing is created).
    pub fn existing(warehouse: impl AsRef<Path>) -> Result<Self> {
        let dir = warehouse.as_ref().join("_glaux_history");
        if !dir.is_dir() {
            return Err(Error::Internal(format!(
                "no query history in {}: no query has run with this warehouse",
                warehouse.as_ref().display()
            )));
        }
        Ok(Self { dir, retention_days: None, cache: Arc::default() })
    }

    /// Appends one entry to its submission day's file.
    pub fn record(&self, entry: &HistoryEntry) -> Result<()> {
        let day = day_of(entry.execution.status.submission_date_time);
        let path = self.dir.join(format!("{day}.jsonl"));
        let mut line = serde_json::to_vec(entry).map_err(|e| Error::Internal(format!("query history: {e}")))?;
        line.push(b'\n');
        warehouse_file::append_line(&path, &line).map_err(|e| io(&path, e))?;
        self.expire(day)
    }

    /// Removes day files older than the retention.
    fn expire(&self, today: NaiveDate) -> Result<()> {
        let Some(days) = self.retention_days else { return Ok(()) };
        let oldest = today - chrono::Duration::days(i64::from(days));
        for (day, path) in self.day_files()? {
            if day < oldest {
                let _ = fs::remove_file(path);
            }
        }
        Ok(())
    }

    fn day_files(&self) -> Result<Vec<(NaiveDate, PathBuf)>> {
        let mut out = vec![];
        for entry in fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let path = entry.map_err(|e| io(&self.dir, e))?.path();
            let day = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            if let Some(day) = day {
                out.push((day, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Bytes scanned on the UTC day of `epoch_seconds` by queries of `work_group`.
    pub fn bytes_on_day(&self, epoch_seconds: f64, work_group: &str) -> Result<u64> {
        let path = self.dir.join(format!("{}.jsonl", day_of(epoch_seconds)));
        let cache = self.refreshed()?;
        Ok(cache.files.get(&path).map_or(0, |(_, entries)| {
            entries
                .iter()
                .filter(|e| e.execution.work_group == work_group)
                .map(|e| e.execution.statistics.data_scanned_in_bytes)
                .sum()
        }))
    }

    /// Every entry, oldest day first. A line that does not parse (a crash mid-write) is skipped.
    pub fn entries(&self) -> Result<Vec<HistoryEntry>> {
        let cache = self.refreshed()?;
        Ok(cache.files.values().flat_map(|(_, entries)| entries.iter().cloned()).collect())
    }

    /// The entry of one query, from the index (only what was appended since the last look is read).
    pub fn find(&self, id: &str) -> Result<Option<HistoryEntry>> {
        let cache = self.refreshed()?;
        Ok(cache.by_id.get(id).and_then(|(path, i)| cache.files.get(path)?.1.get(*i)).cloned())
    }

    /// The cache brought up to date with the day files: new files read, grown ones read from
    /// where the last read stopped (whole lines only), shrunk or removed ones dropped.
    fn refreshed(&self) -> Result<std::sync::MutexGuard<'_, Cache>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let files = self.day_files()?;
        let present: std::collections::HashSet<&PathBuf> = files.iter().map(|(_, p)| p).collect();
        let mut reindex = false;
        cache.files.retain(|path, _| {
            let keep = present.contains(path);
            reindex |= !keep;
            keep
        });
        for (_, path) in &files {
            let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let done = cache.files.get(path).map_or(0, |(n, _)| *n);
            if len == done {
                continue;
            }
            let from = if len < done {
                // rewritten: read it again
                reindex = true;
                cache.files.remove(path);
                0
            } else {
                done
            };
            let tail = warehouse_file::read_locked_from(path, from).map_err(|e| io(path, e))?;
            // only whole lines: a line being written is read next time
            let whole = tail.rfind('\n').map_or(0, |i| i + 1);
            let parsed: Vec<HistoryEntry> =
                tail[..whole].lines().filter_map(|l| serde_json::from_str::<HistoryEntry>(l).ok()).collect();
            let entry = cache.files.entry(path.clone()).or_insert((0, vec![]));
            entry.0 = from + whole as u64;
            let start = entry.1.len();
            entry.1.extend(parsed);
            let ids: Vec<(String, usize)> = entry.1[start..]
                .iter()
                .enumerate()
                .map(|(i, e)| (e.execution.query_execution_id.clone(), start + i))
                .collect();
            for (id, i) in ids {
                cache.by_id.insert(id, (path.clone(), i));
            }
        }
        if reindex {
            let Cache { files, by_id } = &mut *cache;
            by_id.clear();
            for (path, (_, entries)) in files.iter() {
                for (i, e) in entries.iter().enumerate() {
                    by_id.insert(e.execution.query_execution_id.clone(), (path.clone(), i));
                }
            }
        }
        Ok(cache)
    }
}

fn day_of(epoch_seconds: f64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis((epoch_seconds * 1000.0) as i64).unwrap_or_default().date_naive()
}

/// `system.query_history`: read afresh by every query that names it.
#[derive(Debug)]
pub struct HistoryTable {
    history: Arc<QueryHistory>,
    schema: SchemaRef,
    /// Only this principal's queries (a server's `user` role sees its own), or all.
    only_user: Option<String>,
}

impl HistoryTable {
    pub fn new(history: Arc<QueryHistory>) -> Self {
        let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Schema::new(vec![
            Field::new("query_execution_id", DataType::Utf8, false),
            Field::new("query", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("state_change_reason", DataType::Utf8, true),
            Field::new("statement_type", DataType::Utf8, false),
            Field::new("workgroup", DataType::Utf8, false),
            Field::new("database", DataType::Utf8, true),
            Field::new("source", DataType::Utf8, false),
            Field::new("user", DataType::Utf8, true),
            Field::new("submitted", ts(), false),
            Field::new("completed", ts(), true),
            Field::new("data_scanned_bytes", DataType::UInt64, false),
            Field::new("billed_bytes", DataType::UInt64, false),
            Field::new("cost_usd", DataType::Float64, false),
            Field::new("planning_ms", DataType::UInt64, false),
            Field::new("total_ms", DataType::UInt64, false),
            Field::new("tables", DataType::Utf8, false),
        ]);
        Self { history, schema: Arc::new(schema), only_user: None }
    }

    /// The table as `user` sees it: their own queries only.
    pub fn only_user(mut self, user: Option<String>) -> Self {
        self.only_user = user;
        self
    }

    /// The rows, serialized by arrow-json into the table's schema (one row struct, named by
    /// the columns, instead of a builder per column).
    fn batch(&self) -> Result<RecordBatch> {
        let entries = self.history.entries()?;
        let millis = |s: f64| (s * 1000.0) as i64;
        let rows: Vec<HistoryRow<'_>> = entries
            .iter()
            .filter(|e| self.only_user.as_ref().is_none_or(|u| e.user.as_deref() == Some(u.as_str())))
            .map(|e| {
                let x = &e.execution;
                HistoryRow {
                    query_execution_id: &x.query_execution_id,
                    query: &x.query,
                    state: x.status.state.to_string(),
                    state_change_reason: x.status.state_change_reason.as_deref(),
                    statement_type: x.statement_type.to_string(),
                    workgroup: &x.work_group,
                    database: e.database.as_deref(),
                    source: &e.source,
                    user: e.user.as_deref(),
                    submitted: millis(x.status.submission_date_time),
                    completed: x.status.completion_date_time.map(millis),
                    data_scanned_bytes: x.statistics.data_scanned_in_bytes,
                    billed_bytes: x.statistics.billed_bytes,
                    cost_usd: x.statistics.cost_usd,
                    planning_ms: x.statistics.query_planning_time_in_millis,
                    total_ms: x.statistics.total_execution_time_in_millis,
                    tables: e.tables.iter().map(|t| t.table.as_str()).collect::<Vec<_>>().join(","),
                }
            })
            .collect();
        let df = |e: ArrowError| Error::from(DataFusionError::from(e));
        let mut decoder = ReaderBuilder::new(Arc::clone(&self.schema))
            .with_batch_size(rows.len().max(1))
            .build_decoder()
            .map_err(df)?;
        decoder.serialize(&rows).map_err(df)?;
        Ok(decoder.flush().map_err(df)?.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&self.schema))))
    }
}

/// One row of `system.query_history`; its field names are the table's columns.
#[derive(Serialize)]
struct HistoryRow<'a> {
    query_execution_id: &'a str,
    query: &'a str,
    state: String,
    state_change_reason: Option<&'a str>,
    statement_type: String,
    workgroup: &'a str,
    database: Option<&'a str>,
    source: &'a str,
    user: Option<&'a str>,
    /// Milliseconds since the epoch.
    submitted: i64,
    completed: Option<i64>,
    data_scanned_bytes: u64,
    billed_bytes: u64,
    cost_usd: f64,
    planning_ms: u64,
    total_ms: u64,
    tables: String,
}

#[async_trait]
impl TableProvider for HistoryTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = self.batch().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let table = MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use super::*;
    use crate::model::{QueryExecutionState, QueryExecutionStatistics, QueryExecutionStatus, StatementType};

    fn entry(id: &str, submitted: f64) -> HistoryEntry {
        HistoryEntry {
            execution: QueryExecution {
                query_execution_id: id.into(),
                query: "SELECT 1".into(),
                statement_type: StatementType::Dml,
                result_configuration: None,
                query_execution_context: None,
                status: QueryExecutionStatus {
                    state: QueryExecutionState::Succeeded,
                    state_change_reason: None,
                    submission_date_time: submitted,
                    completion_date_time: Some(submitted + 1.0),
                    athena_error: None,
                },
                statistics: QueryExecutionStatistics::default(),
                work_group: "primary".into(),
                warnings: vec![],
            },
            source: "test".into(),
            user: None,
            database: Some("default".into()),
            tables: vec![],
        }
    }

    #[test]
    fn concurrent_writers_lose_nothing_and_fragments_are_skipped() {
        let dir = std::env::temp_dir().join(format!("glaux-history-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let history = Arc::new(QueryHistory::open(&dir, None).unwrap());
        let now = Utc::now().timestamp() as f64;
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let h = Arc::clone(&history);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        h.record(&entry(&format!("{t}-{i}"), now)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // a crash mid-write leaves a fragment: skipped, the rest still read
        let day = history.day_files().unwrap().pop().unwrap().1;
        OpenOptions::new().append(true).open(&day).unwrap().write_all(b"{\"QueryExecutionId\": \"tru").unwrap();
        assert_eq!(history.entries().unwrap().len(), 400);
        // the next writer starts a fresh line: only the fragment is lost
        history.record(&entry("after-crash", now)).unwrap();
        let entries = history.entries().unwrap();
        assert_eq!(entries.len(), 401);
        assert_eq!(entries.last().unwrap().execution.query_execution_id, "after-crash");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn retention_removes_old_days() {
        let dir = std::env::temp_dir().join(format!("glaux-history-ret-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let history = QueryHistory::open(&dir, Some(7)).unwrap();
        let now = Utc::now().timestamp() as f64;
        history.record(&entry("old", now - 30.0 * 86400.0)).unwrap();
        history.record(&entry("recent", now - 2.0 * 86400.0)).unwrap();
        history.record(&entry("today", now)).unwrap();
        let ids: Vec<String> = history.entries().unwrap().into_iter().map(|e| e.execution.query_execution_id).collect();
        assert_eq!(ids, ["recent", "today"]);
        let _ = fs::remove_dir_all(&dir);
    }
}
