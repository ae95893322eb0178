//! Builds DataFusion sessions: one shared base, and a per-query copy whose stores feed its own meter.

use std::sync::Arc;

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::SchemaProvider;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, DynamicFileCatalog, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider,
};
use datafusion::config::ConfigField;
use datafusion::datasource::file_format::csv::CsvFormatFactory;
use datafusion::datasource::file_format::json::JsonFormatFactory;
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::formats::orc::OrcFormatFactory;
use crate::formats::wrapped::WrappedFactory;
use crate::history::{HistoryTable, QueryHistory};
use crate::storage::{MeteredRegistry, ScanMeter, StoreRegistry};
use crate::url_tables::UrlTables;

/// The catalog name Athena uses; table names resolve as `awsdatacatalog.<database>.<table>`.
pub const CATALOG: &str = "awsdatacatalog";

/// The state every query starts from: settings, formats, functions and the shared stores. It
/// holds no tables: session tables and views live in each [`Session`]'s own catalog list.
pub(crate) struct BaseSession {
    pub state: SessionState,
    pub runtime: Arc<RuntimeEnv>,
    pub stores: Arc<StoreRegistry>,
    history: Option<Arc<QueryHistory>>,
    allow_url_tables: bool,
    cluster: Option<crate::distributed::Cluster>,
}

/// What one client has changed — settings (SET), its database (USE), session tables and views,
/// prepared statements — on top of the engine's shared base, which it never writes to. The
/// CLI and REPL keep one for their whole run; `glaux serve` makes one per Athena request and
/// rebuilds a Trino client's from the headers it sends.
pub struct Session {
    pub(crate) state: SessionState,
    prepared: BTreeMap<String, String>,
    user: Option<String>,
    /// PREPARE and DEALLOCATE act on the workgroup's statements too (the Athena API).
    prepare_in_workgroup: bool,
}

/// A change a statement made to its session, for front ends that hand session state back to
/// their clients (Trino's X-Trino-Set-Session, X-Trino-Added-Prepare, …).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionChange {
    Set {
        name: String,
        value: String,
    },
    Reset {
        name: String,
    },
    Use {
        database: String,
    },
    Prepare {
        name: String,
        sql: String,
    },
    Deallocate {
        name: String,
    },
    /// A session view: the statement that creates it, to be replayed in a later request.
    View {
        name: String,
        sql: String,
    },
    DropView {
        name: String,
    },
}

impl Session {
    /// The database unqualified names resolve in.
    pub fn database(&self) -> String {
        self.state.config().options().catalog.default_schema.clone()
    }

    /// Makes `database` the current one (USE).
    pub fn set_database(&mut self, database: &str) {
        self.state.config_mut().options_mut().catalog.default_schema = database.to_string();
        self.ensure_schema(database);
    }

    /// A place for this session's own tables and views in `database`.
    pub(crate) fn ensure_schema(&self, database: &str) {
        let catalog = self.state.catalog_list().catalog(CATALOG);
        if let Some(catalog) = catalog
            && catalog.schema(database).is_none()
        {
            let _ = catalog.register_schema(database, Arc::new(MemorySchemaProvider::new()));
        }
    }

    /// Who the session belongs to (recorded in the history).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Sets one setting, as `SET name = value` does. DataFusion's runtime settings (memory
    /// limit, spill folder) belong to the process, not to a session, and are refused.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        refuse_runtime(name)?;
        self.state.config_mut().options_mut().set(name, value)?;
        self.refresh_functions()
    }

    /// Back to the default, as `RESET name` does.
    pub fn reset(&mut self, name: &str) -> Result<()> {
        refuse_runtime(name)?;
        self.state.config_mut().options_mut().reset(name)?;
        self.refresh_functions()
    }

    /// Functions that read settings (the time zone, say) see the new ones.
    fn refresh_functions(&mut self) -> Result<()> {
        let options = self.state.config().options();
        let updated: Vec<_> =
            self.state.scalar_functions().values().filter_map(|f| f.inner().with_updated_config(options)).collect();
        for udf in updated {
            self.state.register_udf(Arc::new(udf))?;
        }
        Ok(())
    }

    /// Keeps `sql` as prepared statement `name` (replacing one of that name).
    pub fn prepare(&mut self, name: &str, sql: &str) {
        self.prepared.insert(name.to_ascii_lowercase(), sql.to_string());
    }

    /// The text of prepared statement `name`.
    pub fn prepared(&self, name: &str) -> Option<&str> {
        self.prepared.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// From now on PREPARE and DEALLOCATE also change the workgroup's prepared statements, as
    /// Athena's do.
    pub fn prepare_in_workgroup(&mut self) {
        self.prepare_in_workgroup = true;
    }

    pub fn prepares_in_workgroup(&self) -> bool {
        self.prepare_in_workgroup
    }

    /// Forgets prepared statement `name`; false if there was none.
    pub fn deallocate(&mut self, name: &str) -> bool {
        self.prepared.remove(&name.to_ascii_lowercase()).is_some()
    }
}

/// DataFusion's physical optimizer rules with glaux's: NOT IN's NULL handling dropped where the
/// files show no NULL, and inner joins reordered, before join selection (which can then swap the
/// sides); the rest after
/// DataFusion's own, whose results they adjust.
fn physical_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    rules.insert(0, Arc::new(crate::not_in_nulls::NotInWithoutNulls));
    rules.insert(1, Arc::new(crate::join_order::JoinOrder));
    crate::build_side::BuildSideByRows::place(&mut rules);
    rules.push(Arc::new(crate::merged_topk::FullOrderingTopK));
    rules.push(Arc::new(crate::cheap_conjuncts::CheapConjunctsFirst::default()));
    rules.push(Arc::new(crate::decimal_arithmetic::FAST_DECIMAL_ARITHMETIC));
    rules.push(Arc::new(crate::string_equality::VIEW_EQUALITY));
    rules.push(Arc::new(crate::like_segments::LIKE_SEGMENTS));
    rules.push(Arc::new(crate::short_circuit::SHORT_CIRCUITS));
    // after the rules that place and order filters: its test goes first in the filter it joins
    rules.push(Arc::new(crate::join_key_bitmap::JoinKeyBitmaps));
    // after the bitmaps, whose joins' filters it leaves to them; before the clustered
    // aggregates, which hide the aggregates it looks for
    rules.push(Arc::new(crate::join_filters::JoinFiltersInScans::default()));
    // last: it hides partial aggregates from rules that rewrite their arguments
    rules.push(Arc::new(crate::clustered_aggregate::ClusteredAggregates));
    // after everything: it adds a node no other rule knows
    rules.push(Arc::new(crate::filter_output::GatherFilterOutput));
    rules
}

fn refuse_runtime(name: &str) -> Result<()> {
    if name.to_ascii_lowercase().starts_with("datafusion.runtime.") {
        return Err(Error::Permission(format!(
            "{name} is a setting of the glaux process (memory limit, spill folder), not of a session; set it when starting glaux"
        )));
    }
    Ok(())
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
    // A Parquet footer is read with one guess at its size: DataFusion guesses 512 KiB, a quarter
    // of a 2 MB file, billed whether or not the query needs it. Footers of files with a few row
    // groups are a few KiB; a larger one costs a second request, not more bytes.
    options.execution.parquet.metadata_size_hint = Some(PARQUET_FOOTER_HINT);
    // A join's filter on its probe side lists the build side's keys when they are few, else looks
    // them up in the join's hash table. A partitioned join's lists are looked up as one
    // (join_filters::unrouted), far cheaper than routing each row to its partition's table: TPC-H
    // q18 at SF10 has 624 keys, 150 to 160 per partition, and DataFusion's limit of 150 left half
    // of them as tables (1.87 s of CPU to filter lineitem; with lists, 0.25 s). Joins on an
    // integer key now leave that filtering to a bitmap of their keys (join_key_bitmap); the
    // lists serve joins on other keys.
    options.optimizer.hash_join_inlist_pushdown_max_distinct_values = JOIN_FILTER_LIST_KEYS;
    // A join on one integer key finds a probing row's match at the key's place in an array (a
    // perfect hash join) rather than through a hash table. DataFusion does so only when the build
    // side's keys fill 15% of their range or span under 1024 values; a few thousand of TPC-H's 2 M
    // part keys or 100 k customer keys fill far less, yet an array of 4 bytes a key over that range
    // is looked up faster than a hash table of the keys is probed (q09 at SF10: lineitem's 59 M rows
    // met 109 k green parts in 0.91 s of CPU instead of 1.45 s). Each partition of a join builds
    // one, so the range is kept to a 256th of the memory limit.
    let array_keys = memory_limit.map_or(ARRAY_JOIN_KEY_RANGE, |limit| (limit / 256).min(ARRAY_JOIN_KEY_RANGE));
    options.execution.perfect_hash_join_small_build_threshold = array_keys;
    // DataFusion proves some CASE expressions non-nullable in the logical plan but not in the
    // physical one, and then refuses the aggregate of an EXCEPT or DISTINCT over them ("Physical
    // input schema should be the same …", tests/known-differences.md). A column the physical plan
    // calls nullable is only more permissive; the check is skipped, as DataFusion's option allows.
    options.execution.skip_physical_aggregate_schema_check = true;
}

const PARQUET_FOOTER_HINT: usize = 64 * 1024;

const BROADCAST_JOIN_BYTES: usize = 100 * 1024 * 1024;

/// Keys per partition up to which a join's filter lists them (DataFusion: 150). Lists also stay
/// under DataFusion's own 128 KiB per partition.
const JOIN_FILTER_LIST_KEYS: usize = 1000;

/// Key ranges under which a join on one integer key is looked up in an array (16 MiB of it at
/// most; DataFusion: 1024).
const ARRAY_JOIN_KEY_RANGE: usize = 4 << 20;

impl BaseSession {
    pub fn new(stores: Arc<StoreRegistry>, engine: &EngineConfig) -> Result<Self> {
        let (database, allow_url_tables, history) =
            (engine.database.as_str(), engine.allow_url_tables, engine.history.clone());
        // the base's own catalog list stays empty: every session gets a list of its own
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(true)
            .with_default_catalog_and_schema(CATALOG, database);
        tune(&mut config, engine.memory_limit);
        // joins sized by their rows when a join's build side is chosen (join_statistics)
        config.options_mut().optimizer.use_statistics_registry = true;
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
            .with_analyzer_rule(Arc::new(crate::integer_casts::RoundingIntegerCasts))
            .with_analyzer_rule(Arc::new(crate::shared_subplans::ShareRepeatedSubplans))
            .with_query_planner(Arc::new(crate::shared_subplans::GlauxQueryPlanner))
            .with_physical_optimizer_rules(physical_rules())
            .with_statistics_registry(crate::join_statistics::registry())
            .build();
        if std::env::var_os("GLAUX_TEST_PANIC_FUNCTION").is_some() {
            // a test hook: a function that panics when run, to show that a panic fails only its
            // own query (never set outside tests)
            state.register_udf(Arc::new(create_udf(
                "glaux_test_panic",
                vec![],
                DataType::Int64,
                Volatility::Volatile,
                Arc::new(|_: &[ColumnarValue]| panic!("glaux_test_panic() was called")),
            )))?;
        }
        state.register_file_format(Arc::new(OrcFormatFactory), true)?;
        state.table_factories_mut().insert("ORC".into(), Arc::new(ListingTableFactory::new()));
        // CSV and JSON parse errors name the object they came from.
        state.register_file_format(Arc::new(WrappedFactory(Arc::new(CsvFormatFactory::new()))), true)?;
        state.register_file_format(Arc::new(WrappedFactory(Arc::new(JsonFormatFactory::new()))), true)?;
        Ok(Self { state, runtime, stores, history, allow_url_tables, cluster: engine.cluster.clone() })
    }

    /// A new session on this base: a catalog list of its own (so its tables and views are seen
    /// by nobody else), `database` current, and `system.query_history` — only `user`'s own
    /// queries when `own_history_only`.
    pub fn session(&self, database: &str, user: Option<String>, own_history_only: bool) -> Result<Session> {
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog.register_schema(database, Arc::new(MemorySchemaProvider::new()))?;
        if let Some(history) = &self.history {
            // `system.query_history`, read afresh by each query that names it
            let system = Arc::new(MemorySchemaProvider::new());
            let seen = own_history_only.then(|| user.clone().unwrap_or_default());
            let table = HistoryTable::new(Arc::clone(history)).only_user(seen);
            system.register_table("query_history".into(), Arc::new(table))?;
            catalog.register_schema("system", system)?;
        }
        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        catalogs.register_catalog(CATALOG.into(), catalog);
        let mut state = SessionStateBuilder::new_from_existing(self.state.clone()).with_catalog_list(catalogs).build();
        state.config_mut().options_mut().catalog.default_schema = database.to_string();
        Ok(Session { state, prepared: BTreeMap::new(), user, prepare_in_workgroup: false })
    }

    /// A context for one query: same catalogs and settings, stores wrapped in `meter`.
    pub fn for_query(&self, state: &SessionState, meter: &Arc<ScanMeter>) -> Result<SessionContext> {
        let registry = Arc::new(MeteredRegistry::new(Arc::clone(&self.stores), Arc::clone(meter)));
        let runtime =
            RuntimeEnvBuilder::from_runtime_env(&self.runtime).with_object_store_registry(registry).build_arc()?;
        let mut state = SessionStateBuilder::new_from_existing(state.clone()).with_runtime_env(runtime).build();
        if let Some(cluster) = &self.cluster {
            state = cluster.coordinate(state, meter)?;
        }
        if !self.allow_url_tables {
            return Ok(SessionContext::new_with_state(state));
        }
        // Querying a path directly (`SELECT * FROM 's3://bucket/key.parquet'`), resolved with
        // this query's stores so those reads are metered too.
        let urls = Arc::new(UrlTables::new(state.clone()));
        let catalogs = Arc::new(DynamicFileCatalog::new(Arc::clone(state.catalog_list()), urls));
        // set in place, as `resolve` does: a rebuilt state registers every function again
        state.register_catalog_list(catalogs);
        Ok(SessionContext::new_with_state(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, scratch_dir, write_parquet};
    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::physical_plan::joins::HashJoinExec;

    /// What `SELECT sum(f.v) FROM fact f JOIN dim d ON f.k = d.k` answers on `config`, and how
    /// many of its joins' build sides were made arrays.
    async fn sum_and_arrays(dir: &std::path::Path, config: SessionConfig) -> (i64, usize) {
        let state = SessionStateBuilder::new().with_default_features().with_config(config).build();
        let ctx = parquet_context(state, dir, &["fact", "dim"]).await;
        let frame = ctx.sql("SELECT sum(f.v) FROM fact f JOIN dim d ON f.k = d.k").await.unwrap();
        let plan = frame.create_physical_plan().await.unwrap();
        let rows = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        let sum = rows[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
        let arrays = each_node::<HashJoinExec, _>(&plan, |join| {
            join.metrics()?.sum_by_name("array_map_created_count").map(|count| count.as_usize())
        });
        (sum, arrays.iter().sum())
    }

    /// 2 000 keys spread over 2 M values fill 0.1% of their range: DataFusion hashes them, glaux's
    /// settings look them up in an array, unless a small memory limit rules the array out. The
    /// answer is the same each way.
    #[tokio::test]
    async fn a_join_on_keys_over_a_modest_range_is_looked_up_in_an_array() {
        let dir = scratch_dir("array-join");
        let dim = Arc::new(Int64Array::from_iter_values((0..2_000).map(|i| i * 1_000))) as Arc<dyn Array>;
        write_parquet(&dir.join("dim.parquet"), vec![("k", dim)], false);
        let keys = Arc::new(Int64Array::from_iter_values((0..200_000).map(|i| i * 10))) as Arc<dyn Array>;
        let values = Arc::new(Int64Array::from_iter_values(0..200_000)) as Arc<dyn Array>;
        write_parquet(&dir.join("fact.parquet"), vec![("k", keys), ("v", values)], false);
        // fact's k = 10 i meets dim when i is a multiple of 100 under 200 000
        let expected: i64 = (0..2_000).map(|i| i * 100).sum();
        let tuned = |limit: Option<usize>| {
            let mut config = SessionConfig::new();
            tune(&mut config, limit);
            config
        };
        assert_eq!(sum_and_arrays(&dir, SessionConfig::new()).await, (expected, 0));
        let (sum, arrays) = sum_and_arrays(&dir, tuned(None)).await;
        assert_eq!(sum, expected);
        assert!(arrays > 0, "the join's build side was hashed");
        assert_eq!(sum_and_arrays(&dir, tuned(Some(64 << 20))).await, (expected, 0));
        let _ = std::fs::remove_dir_all(dir);
    }
}
