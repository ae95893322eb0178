//! How an engine is set up: stores, pricing, catalog, history, workgroups, limits and policy.

use std::sync::Arc;

use glaux_catalog::Catalog;

use crate::billing::Pricing;
use crate::gate::StatementPolicy;
use crate::history::QueryHistory;
use crate::storage::S3Settings;
use crate::workgroups::WorkGroups;

/// How an engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub s3: S3Settings,
    pub pricing: Pricing,
    /// The database unqualified table names resolve in.
    pub database: String,
    /// Whether SQL may read local paths (`file://`, bare paths). Off for servers.
    pub allow_local_files: bool,
    /// With `allow_local_files`, the one folder local reads must stay in (a server's allowed
    /// root); `None` leaves the whole disk readable, as a CLI on one's own machine does.
    pub local_root: Option<std::path::PathBuf>,
    /// Whether SQL may name files directly in FROM (`FROM 's3://b/k.csv'`).
    pub allow_url_tables: bool,
    /// Per-query scan limit in bytes (a workgroup's BytesScannedCutoffPerQuery).
    pub bytes_scanned_cutoff: Option<u64>,
    pub work_group: String,
    /// Where tables live (Athena DDL goes here); `None` leaves only session tables and paths.
    pub catalog: Option<Arc<dyn Catalog>>,
    /// The warehouse's workgroups; `None` runs every query under `work_group` with the
    /// settings above.
    pub workgroups: Option<Arc<WorkGroups>>,
    /// Where finished queries are recorded (and `system.query_history` reads from).
    pub history: Option<Arc<QueryHistory>>,
    /// The front end running queries (`cli`, `serve`, `lambda`), as the history shows it.
    pub source: String,
    /// Who runs them, when the front end knows.
    pub user: Option<String>,
    /// What statements may do: where they may write, whether local result folders may be used.
    pub policy: StatementPolicy,
    /// The memory queries may hold at once (sorts, joins and aggregations past it spill to
    /// disk); `None` leaves memory unbounded. Lambda sizes it from the function's memory.
    pub memory_limit: Option<usize>,
    /// Where spilled data goes (the OS temporary folder if `None`; `/tmp` on Lambda).
    pub spill_dir: Option<std::path::PathBuf>,
    /// The workers large plans are spread over; `None` runs every query in this process.
    pub cluster: Option<crate::distributed::Cluster>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            s3: S3Settings::from_env(),
            pricing: Pricing::default(),
            database: "default".into(),
            allow_local_files: true,
            local_root: None,
            allow_url_tables: true,
            bytes_scanned_cutoff: None,
            work_group: "primary".into(),
            catalog: None,
            workgroups: None,
            history: None,
            source: "sdk".into(),
            user: None,
            policy: StatementPolicy::default(),
            memory_limit: None,
            spill_dir: None,
            cluster: None,
        }
    }
}
