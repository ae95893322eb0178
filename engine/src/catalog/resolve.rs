//! Per-query table resolution: the catalog tables a statement names are fetched once, before
//! planning (the catalog is async, DataFusion's planner is not), and laid over the session's own.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SessionState;
use datafusion::sql::parser::Statement;
use glaux_catalog::Catalog;

use super::scan_log::ScanLog;
use super::table::CatalogTable;
use super::view::PrestoView;
use crate::error::{Error, Result};
use crate::session::CATALOG;

/// Resolved tables by database, then table (lower-case names).
type Resolved = HashMap<String, HashMap<String, Arc<dyn TableProvider>>>;

/// How deep views may nest on views (a deeper chain is a view that refers to itself).
const MAX_VIEW_DEPTH: usize = 16;

/// A state whose `awsdatacatalog` also holds the catalog tables `statement` references; a
/// catalog view becomes its query, planned with the tables it names in turn.
pub async fn with_catalog_tables(
    state: SessionState,
    statement: &Statement,
    catalog: &Arc<dyn Catalog>,
    log: &Arc<ScanLog>,
) -> Result<SessionState> {
    resolve(state, statement, catalog, log, 0).await
}

/// The query of catalog view `table` (in `db`) as a table provider: planned in the database
/// it was created in, its own tables and views resolved first.
async fn view_provider(
    state: &SessionState,
    db: &str,
    table: &glaux_catalog::Table,
    catalog: &Arc<dyn Catalog>,
    log: &Arc<ScanLog>,
    depth: usize,
) -> Result<Arc<dyn TableProvider>> {
    let named = |e: &dyn std::fmt::Display| Error::InvalidInput(format!("view {db}.{}: {e}", table.name));
    if depth >= MAX_VIEW_DEPTH {
        return Err(named(&format!("views nest more than {MAX_VIEW_DEPTH} deep; does one refer to itself?")));
    }
    let view = PrestoView::of(db, table)?;
    let mut inner = state.clone();
    inner.config_mut().options_mut().catalog.default_schema = view.schema.clone().unwrap_or_else(|| db.to_string());
    let statement = crate::script::single(&view.original_sql).map_err(|e| named(&e))?;
    let inner = Box::pin(resolve(inner, &statement, catalog, log, depth + 1)).await?;
    let plan = inner.statement_to_plan(statement).await.map_err(|e| named(&e))?;
    Ok(Arc::new(ViewTable::new(plan, Some(view.original_sql))))
}

async fn resolve(
    mut state: SessionState,
    statement: &Statement,
    catalog: &Arc<dyn Catalog>,
    log: &Arc<ScanLog>,
    depth: usize,
) -> Result<SessionState> {
    let references = state.resolve_table_references(statement)?;
    let options = state.config_options();
    let (default_catalog, default_schema) =
        (options.catalog.default_catalog.clone(), options.catalog.default_schema.clone());
    let mut resolved: Resolved = HashMap::new();
    for reference in references {
        let full = reference.resolve(&default_catalog, &default_schema);
        if !full.catalog.eq_ignore_ascii_case(CATALOG) {
            continue;
        }
        let (db, name) = (full.schema.to_ascii_lowercase(), full.table.to_ascii_lowercase());
        // Tables of this session (DataFusion-style CREATE EXTERNAL TABLE … OPTIONS) come first.
        let in_session = state
            .catalog_list()
            .catalog(CATALOG)
            .and_then(|c| c.schema(&full.schema))
            .is_some_and(|s| s.table_exist(&full.table));
        if in_session || resolved.get(&db).is_some_and(|t| t.contains_key(&name)) {
            continue;
        }
        // Athena's `"t$partitions"` lists a table's partitions
        if let Some(base) = name.strip_suffix("$partitions")
            && let Some(table) = catalog.get_table(&db, base).await.map_err(Error::Catalog)?
        {
            let provider = CatalogTable::try_new(Arc::clone(catalog), &db, table)?.partitions_table().await?;
            resolved.entry(db).or_default().insert(name, provider);
            continue;
        }
        if let Some(table) = catalog.get_table(&db, &name).await.map_err(Error::Catalog)? {
            let provider: Arc<dyn TableProvider> = if table.is_view() {
                view_provider(&state, &db, &table, catalog, log, depth).await?
            } else {
                Arc::new(CatalogTable::try_new(Arc::clone(catalog), &db, table)?.with_log(Arc::clone(log)))
            };
            resolved.entry(db).or_default().insert(name, provider);
        }
    }
    if resolved.is_empty() {
        return Ok(state);
    }
    let list = Arc::new(OverlayList { base: Arc::clone(state.catalog_list()), resolved: Arc::new(resolved) });
    // set in place: rebuilding the state (`SessionStateBuilder::new_from_existing`) registers
    // every function again, a tenth of a millisecond a statement
    state.register_catalog_list(list);
    Ok(state)
}

#[derive(Debug)]
struct OverlayList {
    base: Arc<dyn CatalogProviderList>,
    resolved: Arc<Resolved>,
}

impl CatalogProviderList for OverlayList {
    fn register_catalog(&self, name: String, catalog: Arc<dyn CatalogProvider>) -> Option<Arc<dyn CatalogProvider>> {
        self.base.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.base.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let base = self.base.catalog(name);
        if name.eq_ignore_ascii_case(CATALOG) {
            Some(Arc::new(OverlayCatalog { base, resolved: Arc::clone(&self.resolved) }))
        } else {
            base
        }
    }
}

#[derive(Debug)]
struct OverlayCatalog {
    base: Option<Arc<dyn CatalogProvider>>,
    resolved: Arc<Resolved>,
}

impl CatalogProvider for OverlayCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.base.as_ref().map(|b| b.schema_names()).unwrap_or_default();
        names.extend(self.resolved.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let base = self.base.as_ref().and_then(|b| b.schema(name));
        match self.resolved.get(&name.to_ascii_lowercase()) {
            Some(tables) => Some(Arc::new(OverlaySchema { base, tables: tables.clone() })),
            None => base,
        }
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        match &self.base {
            Some(b) => b.register_schema(name, schema),
            None => Ok(None),
        }
    }
}

#[derive(Debug)]
struct OverlaySchema {
    base: Option<Arc<dyn SchemaProvider>>,
    tables: HashMap<String, Arc<dyn TableProvider>>,
}

#[async_trait]
impl SchemaProvider for OverlaySchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.base.as_ref().map(|b| b.table_names()).unwrap_or_default();
        names.extend(self.tables.keys().cloned());
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(base) = &self.base
            && let Some(t) = base.table(name).await?
        {
            return Ok(Some(t));
        }
        Ok(self.tables.get(&name.to_ascii_lowercase()).cloned())
    }

    fn register_table(&self, name: String, table: Arc<dyn TableProvider>) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match &self.base {
            Some(b) => b.register_table(name, table),
            None => Ok(None),
        }
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match &self.base {
            Some(b) => b.deregister_table(name),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(&name.to_ascii_lowercase()) || self.base.as_ref().is_some_and(|b| b.table_exist(name))
    }
}
