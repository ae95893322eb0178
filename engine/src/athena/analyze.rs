//! `ANALYZE t`: each column's distinct values (HyperLogLog, as `approx_distinct` counts them)
//! and nulls counted in one scan of the table, and kept with it in the catalog, where scans give
//! them to the optimizer (`catalog::column_stats`).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::prelude::SessionContext;

use super::parse::TableName;
use super::run::{Outcome, Runner, catalog_error, rows};
use crate::catalog::column_stats::{self, DISTINCT, NULLS, ROWS};
use crate::catalog::hive_to_arrow;
use crate::error::{Error, Result};
use crate::model::StatementType;

impl Runner<'_> {
    /// Counts and keeps the statistics of `columns` (all of the table's data columns when
    /// `None`); answers the rows it read, as INSERT answers the rows it wrote.
    pub(super) async fn analyze(&self, name: TableName, columns: Option<Vec<String>>) -> Result<Outcome> {
        let mut table = self.table(&name).await?;
        let db = self.db(&name).to_ascii_lowercase();
        let what = format!("ANALYZE {db}.{}", table.name);
        if table.is_view() {
            return Err(Error::InvalidInput(format!("{what}: {db}.{} is a view, and views keep no data", table.name)));
        }
        let sd = table.storage_descriptor.clone().unwrap_or_default();
        let named = match &columns {
            None => sd.columns.iter().collect::<Vec<_>>(),
            Some(names) => names
                .iter()
                .map(|n| {
                    sd.columns.iter().find(|c| c.name.eq_ignore_ascii_case(n)).ok_or_else(|| {
                        let key = table.partition_keys.iter().any(|k| k.name.eq_ignore_ascii_case(n));
                        Error::InvalidInput(if key {
                            format!("{what}: {n} is a partition key; its values are the table's partitions")
                        } else {
                            format!("{what}: the table has no column {n}")
                        })
                    })
                })
                .collect::<Result<_>>()?,
        };
        // Columns whose values cannot be counted (arrays, maps, structs) are left out; floating
        // point values are counted by their text, which approx_distinct takes.
        let mut counted = vec![];
        let mut select = vec!["count(*)".to_string()];
        for column in named {
            let name = column.name.to_ascii_lowercase();
            let quoted = ident(&name);
            let value = match hive_to_arrow(&column.type_name)? {
                t if t.is_nested() => continue,
                DataType::Float16 | DataType::Float32 | DataType::Float64 => format!("CAST({quoted} AS VARCHAR)"),
                _ => quoted.clone(),
            };
            select.push(format!("approx_distinct({value})"));
            select.push(format!("count({quoted})"));
            counted.push(name);
        }
        let sql = format!("SELECT {} FROM {}.{}", select.join(", "), ident(&db), ident(&table.name));
        let plan = self.plan_query(&db, &sql).await?;
        let batches =
            SessionContext::new_with_state(self.state.clone()).execute_logical_plan(plan).await?.collect().await?;
        let row = batches.iter().find(|b| b.num_rows() == 1).ok_or_else(|| {
            Error::Internal(format!(
                "{what}: the counting query answered {} batches without its one row",
                batches.len()
            ))
        })?;
        let int = |i: usize| -> Result<u64> {
            let column = row.column(i);
            let value = match column.data_type() {
                DataType::Int64 => column.as_primitive::<Int64Type>().value(0) as u64,
                DataType::UInt64 => column.as_primitive::<UInt64Type>().value(0),
                other => return Err(Error::Internal(format!("{what}: a count came back as {other}"))),
            };
            Ok(if column.is_null(0) { 0 } else { value })
        };
        let total = int(0)?;
        table.parameters.insert(ROWS.to_string(), total.to_string());
        for (i, name) in counted.iter().enumerate() {
            let (distinct, values) = (int(1 + 2 * i)?, int(2 + 2 * i)?);
            table.parameters.insert(column_stats::key(name, DISTINCT), distinct.to_string());
            table.parameters.insert(column_stats::key(name, NULLS), total.saturating_sub(values).to_string());
        }
        self.catalog.update_table(&db, table).await.map_err(catalog_error)?;
        rows(StatementType::Dml, &["rows"], vec![vec![total.to_string()]])
    }
}

/// A name as an SQL identifier: in double quotes, quotes inside doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
