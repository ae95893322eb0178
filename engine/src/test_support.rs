//! What the optimizer rules' tests share: small Parquet files to plan over, and what the
//! nodes of a plan hold.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::ExecutionPlan;

/// One row group of `columns`, each declared `nullable` or not (a catalog table's columns all
/// are; a writer's own schema often says NOT NULL).
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, nullable: bool) {
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), nullable)).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// `look` of each node of type `T` in `plan`, top down, where it gives something.
pub fn each_node<T: ExecutionPlan + 'static, R>(
    plan: &Arc<dyn ExecutionPlan>,
    look: impl Fn(&T) -> Option<R>,
) -> Vec<R> {
    let mut found = vec![];
    plan.apply(|node| {
        if let Some(value) = node.downcast_ref::<T>().and_then(&look) {
            found.push(value);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    found
}

/// A new folder for one test's files.
pub fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("glaux-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A context on `state` with each of `tables` read from `<dir>/<table>.parquet`.
pub async fn parquet_context(
    state: datafusion::execution::SessionState,
    dir: &Path,
    tables: &[&str],
) -> datafusion::prelude::SessionContext {
    let ctx = datafusion::prelude::SessionContext::new_with_state(state);
    for table in tables {
        let path = dir.join(format!("{table}.parquet"));
        ctx.register_parquet(*table, path.to_str().unwrap(), Default::default()).await.unwrap();
    }
    ctx
}

/// `sql`'s physical plan and the one integer it answers.
pub async fn plan_and_number(ctx: &datafusion::prelude::SessionContext, sql: &str) -> (Arc<dyn ExecutionPlan>, i64) {
    use datafusion::arrow::array::Int64Array;
    let frame = ctx.sql(sql).await.unwrap();
    let plan = frame.clone().create_physical_plan().await.unwrap();
    let rows = frame.collect().await.unwrap();
    (plan, rows[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0))
}
