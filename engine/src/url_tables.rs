//! Files named directly in FROM (`FROM 's3://bucket/logs/'`), with errors that say why a path
//! could not be read instead of "table not found".

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{TableProvider, UrlTableFactory};
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableConfigExt, ListingTableUrl};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;

use crate::error::{Error, ErrorKind};

/// Resolves URL-like table names against the query's own (metered) session state.
#[derive(Debug)]
pub struct UrlTables {
    state: SessionState,
}

impl UrlTables {
    pub fn new(state: SessionState) -> Self {
        Self { state }
    }
}

/// Names that mean a location rather than a catalog table.
fn looks_like_location(name: &str) -> bool {
    name.contains("://") || name.starts_with('/') || name.starts_with("./") || name.starts_with("../")
}

#[async_trait]
impl UrlTableFactory for UrlTables {
    async fn try_new(&self, url: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if !looks_like_location(url) {
            return Ok(None);
        }
        // the error names the location and keeps its kind (missing, refused, storage failing)
        let cannot = |e: DataFusionError| {
            let cause = crate::error::tidy(&e.find_root().strip_backtrace());
            let kind = crate::error::Error::Query(e).kind();
            // DataFusion calls an empty location an internal error; it is the user's to fix.
            let (cause, kind) = if cause.contains("No files for table") {
                ("no such object or prefix".to_string(), ErrorKind::NotFound)
            } else {
                (cause, kind)
            };
            let message = format!("cannot read '{url}': {cause}");
            let error = match kind {
                ErrorKind::NotFound => Error::NotFound(message),
                ErrorKind::Permission => Error::Permission(message),
                ErrorKind::Storage => {
                    Error::Storage(object_store::Error::Generic { store: "S3", source: message.into() })
                }
                _ => Error::InvalidInput(message),
            };
            DataFusionError::External(Box::new(error))
        };
        let table_url = ListingTableUrl::parse(url).map_err(cannot)?;
        let config = ListingTableConfig::new(table_url).infer_options(&self.state).await.map_err(cannot)?;
        let config = config.infer_partitions_from_path(&self.state).await.map_err(cannot)?;
        let config = config.infer_schema(&self.state).await.map_err(cannot)?;
        Ok(Some(Arc::new(ListingTable::try_new(config)?)))
    }
}
