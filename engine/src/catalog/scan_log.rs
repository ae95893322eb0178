//! What a query's catalog tables scanned: partitions kept of those considered and files read.
//! EXPLAIN shows it; the query record keeps it.

use std::sync::Mutex;

use serde::Serialize;

/// One scan of a catalog table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableScan {
    pub table: String,
    pub partitioned: bool,
    /// Partitions considered: all of the catalog's, those a Glue expression returned, or every
    /// projected combination.
    pub partitions_total: usize,
    pub partitions_scanned: usize,
    /// How the partitions were found: `catalog`, `catalog expression` or `projection`.
    pub source: &'static str,
    pub files: usize,
    pub file_bytes: u64,
}

impl TableScan {
    /// One line for EXPLAIN.
    pub fn describe(&self) -> String {
        let files =
            format!("{} file{} ({} bytes)", self.files, if self.files == 1 { "" } else { "s" }, self.file_bytes);
        if !self.partitioned {
            return format!("{}: {files}", self.table);
        }
        format!(
            "{}: {} of {} partitions ({}), {files}",
            self.table, self.partitions_scanned, self.partitions_total, self.source
        )
    }
}

/// The scans of one query, in planning order.
#[derive(Debug, Default)]
pub struct ScanLog(Mutex<Vec<TableScan>>);

impl ScanLog {
    pub fn record(&self, scan: TableScan) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(scan);
    }

    pub fn scans(&self) -> Vec<TableScan> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
