//! Builds DataFusion sessions: one shared base, and a per-query copy whose stores feed its own meter.

use std::sync::Arc;

use datafusion::catalog::{DynamicFileCatalog, MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::file_format::csv::CsvFormatFactory;
use datafusion::datasource::file_format::json::JsonFormatFactory;
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;
use crate::execution::EngineConfig;
use crate::formats::orc::OrcFormatFactory;
use crate::formats::wrapped::WrappedFactory;
use crate::history::HistoryTable;
use crate::storage::{MeteredRegistry, ScanMeter, StoreRegistry};
use crate::url_tables::UrlTables;

/// The catalog name Athena uses; table names resolve as `awsdatacatalog.<database>.<table>`.
pub const CATALOG: &str = "awsdatacatalog";

/// The state every query starts from: catalogs, settings and the shared stores.
pub(crate) struct BaseSession {
    pub state: SessionState,
    pub runtime: Arc<RuntimeEnv>,
    pub stores: Arc<StoreRegistry>,
    allow_url_tables: bool,
}

/// Defaults for the machines glaux runs on — a Lambda's one or two vCPUs, a small server — where
/// DataFusion's own (partitions = cores, broadcast joins only under 1 MB) leave time on the table.
/// Measured with `bench/run tpch 1` on two cores: 1.38× DuckDB's total before, 1.14–1.17× after.
/// Each can still be changed with SET. (Public so the overhead benchmark gives bare DataFusion the
/// same settings.)
pub fn tune(config: &mut SessionConfig, memory_limit: Option<usize>) {
    let options = config.options_mut();
    // Scans wait on storage; a few more partitions than cores keep the cores busy meanwhile.
    options.execution.target_partitions = options.execution.target_partitions.max(4);
    // Build a join's small side once and share it rather than repartitioning both sides, up to
    // 100 MB or about ten million rows (a quarter of the memory pool when there is one).
    let broadcast = memory_limit.map_or(BROADCAST_JOIN_BYTES, |limit| (limit / 4).min(BROADCAST_JOIN_BYTES));
    options.optimizer.hash_join_single_partition_threshold = broadcast;
    options.optimizer.hash_join_single_partition_threshold_rows = broadcast / 10;
}

const BROADCAST_JOIN_BYTES: usize = 100 * 1024 * 1024;

impl BaseSession {
    pub fn new(stores: Arc<StoreRegistry>, engine: &EngineConfig) -> Result<Self> {
        let (database, allow_url_tables, history) =
            (engine.database.as_str(), engine.allow_url_tables, engine.history.clone());
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(true)
            .with_default_catalog_and_schema(CATALOG, database);
        tune(&mut config, engine.memory_limit);
        let mut runtime = RuntimeEnvBuilder::new().with_object_store_registry(Arc::clone(&stores) as _);
        if let Some(limit) = engine.memory_limit {
            // a fair share each for the operators that can spill, so one sort or aggregation
            // cannot take the whole pool and leave the others to fail
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
        }
        if let Some(dir) = &engine.spill_dir {
            runtime = runtime.with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![dir.clone()])),
            );
        }
        let runtime = runtime.build_arc()?;
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(Arc::clone(&runtime))
            .with_default_features()
            .build();
        state.register_file_format(Arc::new(OrcFormatFactory), true)?;
        state.table_factories_mut().insert("ORC".into(), Arc::new(ListingTableFactory::new()));
        // CSV and JSON parse errors name the object they came from.
        state.register_file_format(Arc::new(WrappedFactory(Arc::new(CsvFormatFactory::new()))), true)?;
        state.register_file_format(Arc::new(WrappedFactory(Arc::new(JsonFormatFactory::new()))), true)?;
        let ctx = SessionContext::new_with_state(state);
        if let Some(catalog) = ctx.catalog(CATALOG)
            && catalog.schema(database).is_none()
        {
            catalog.register_schema(database, Arc::new(MemorySchemaProvider::new()))?;
        }
        // `system.query_history`, read afresh by each query that names it
        if let (Some(history), Some(catalog)) = (history, ctx.catalog(CATALOG)) {
            let system = Arc::new(MemorySchemaProvider::new());
            system.register_table("query_history".into(), Arc::new(HistoryTable::new(history)))?;
            catalog.register_schema("system", system)?;
        }
        Ok(Self { state: ctx.state(), runtime, stores, allow_url_tables })
    }

    /// A context for one query: same catalogs and settings, stores wrapped in `meter`.
    pub fn for_query(&self, state: &SessionState, meter: &Arc<ScanMeter>) -> Result<SessionContext> {
        let registry = Arc::new(MeteredRegistry::new(Arc::clone(&self.stores), Arc::clone(meter)));
        let runtime =
            RuntimeEnvBuilder::from_runtime_env(&self.runtime).with_object_store_registry(registry).build_arc()?;
        let state = SessionStateBuilder::new_from_existing(state.clone()).with_runtime_env(runtime).build();
        if !self.allow_url_tables {
            return Ok(SessionContext::new_with_state(state));
        }
        // Querying a path directly (`SELECT * FROM 's3://bucket/key.parquet'`), resolved with
        // this query's stores so those reads are metered too.
        let urls = Arc::new(UrlTables::new(state.clone()));
        let catalogs = Arc::new(DynamicFileCatalog::new(Arc::clone(state.catalog_list()), urls));
        let state = SessionStateBuilder::new_from_existing(state).with_catalog_list(catalogs).build();
        Ok(SessionContext::new_with_state(state))
    }
}
