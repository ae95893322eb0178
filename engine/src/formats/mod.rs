//! File formats glaux adds to DataFusion's own (CSV, JSON and Parquet come with DataFusion).

mod contained;
pub mod orc;
pub(crate) mod parquet_chunks;
pub mod wrapped;

use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;

/// The file scan `plan` is, if it is one (a `DataSourceExec` over files).
pub(crate) fn file_scan(plan: &dyn ExecutionPlan) -> Option<&FileScanConfig> {
    plan.downcast_ref::<DataSourceExec>()?.data_source().downcast_ref::<FileScanConfig>()
}
