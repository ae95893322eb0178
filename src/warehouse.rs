//! What every front end opens first: the catalog, the query history and the workgroups of one
//! warehouse, and the engine over them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use glaux_engine::glaux_catalog::{self, Catalog, CatalogKind};
use glaux_engine::{Engine, EngineConfig, QueryHistory, WorkGroups};

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

/// The settings `glaux query` and `glaux repl` share: where tables live and who pays.
#[derive(Args, Clone)]
pub struct SessionArgs {
    /// The database unqualified table names resolve in.
    #[arg(long, env = "GLAUX_DATABASE", default_value = "default")]
    pub database: String,
    /// Which catalog holds the tables: local (in the warehouse) or glue (AWS Glue, configured
    /// from the AWS environment: AWS_ENDPOINT_URL_GLUE, AWS_REGION, credentials).
    #[arg(long, env = "GLAUX_CATALOG", default_value = "local")]
    pub catalog: String,
    /// The warehouse: where the local catalog keeps databases, tables and partitions.
    #[arg(long, env = "GLAUX_WAREHOUSE", default_value = "./warehouse")]
    pub warehouse: PathBuf,
    /// Days of query history the warehouse keeps (default: all).
    #[arg(long, env = "GLAUX_HISTORY_RETENTION_DAYS")]
    pub history_retention_days: Option<u32>,
    /// The workgroup queries are recorded and billed under.
    #[arg(long, env = "GLAUX_WORKGROUP", default_value = "primary")]
    pub workgroup: String,
    /// Read S3 without signing requests (public buckets), as the AWS CLI's --no-sign-request;
    /// otherwise credentials come from the AWS default chain.
    #[arg(long, env = "GLAUX_S3_ANONYMOUS")]
    pub no_sign_request: bool,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

impl SessionArgs {
    /// The engine of a front end on the user's own machine (`source` as the history shows it).
    pub async fn engine(&self, source: &str) -> Result<(Engine, Arc<dyn Catalog>), String> {
        let warehouse = Warehouse::open(&self.catalog, &self.warehouse, self.history_retention_days).await?;
        let catalog = Arc::clone(&warehouse.catalog);
        let mut s3 = glaux_engine::S3Settings::from_env();
        s3.anonymous |= self.no_sign_request;
        let config = EngineConfig {
            s3,
            workgroups: Some(warehouse.workgroups),
            history: Some(warehouse.history),
            source: source.into(),
            user: std::env::var("USER").ok(),
            database: self.database.clone(),
            work_group: self.workgroup.clone(),
            catalog: Some(warehouse.catalog),
            cluster: self.cluster.cluster().await?,
            ..Default::default()
        };
        Ok((Engine::new(config).map_err(|e| e.to_string())?, catalog))
    }
}
