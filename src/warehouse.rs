//! What every front end opens first: the catalog, the query history and the workgroups of one
//! warehouse.

use std::path::Path;
use std::sync::Arc;

use glaux_engine::glaux_catalog::{self, Catalog, CatalogKind};
use glaux_engine::{QueryHistory, WorkGroups};

pub struct Warehouse {
    pub catalog: Arc<dyn Catalog>,
    pub history: Arc<QueryHistory>,
    pub workgroups: Arc<WorkGroups>,
}

impl Warehouse {
    /// Opens the `catalog` kind (`local` or `glue`) and the warehouse's history and workgroups.
    pub async fn open(catalog: &str, warehouse: &Path, retention_days: Option<u32>) -> Result<Self, String> {
        let kind: CatalogKind = catalog.parse().map_err(|e: glaux_catalog::Error| e.to_string())?;
        let opened = glaux_catalog::open(kind, warehouse)
            .await
            .map_err(|e| format!("cannot open the {catalog} catalog: {e}"))?;
        let history = QueryHistory::open(warehouse, retention_days)
            .map_err(|e| format!("cannot open the query history in {}: {e}", warehouse.display()))?;
        let workgroups = WorkGroups::open(warehouse).map_err(|e| e.to_string())?;
        Ok(Self { catalog: opened, history: Arc::new(history), workgroups: Arc::new(workgroups) })
    }
}
