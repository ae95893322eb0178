//! Column statistics a table keeps in its catalog parameters — distinct and null counts, as
//! `ANALYZE` writes them — given to its scans, so that filters and joins are estimated from the
//! values a column really holds.
//!
//! Parquet footers carry row counts and value ranges but no distinct counts. Without them
//! DataFusion takes `p_brand = 'Brand#23'` to keep a fifth of `part` (it keeps a twenty-fifth)
//! and sizes joins by their key ranges. The keys are Spark's, which Spark writes to the Hive
//! metastore and Glue for its own tables, so statistics written by either are read by the other.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;

/// The table's row count when it was analyzed.
pub const ROWS: &str = "spark.sql.statistics.numRows";

/// The parameter that holds one statistic of one column.
pub fn key(column: &str, statistic: &str) -> String {
    format!("spark.sql.statistics.colStats.{column}.{statistic}")
}

/// The distinct-count statistic's name.
pub const DISTINCT: &str = "distinctCount";
/// The null-count statistic's name.
pub const NULLS: &str = "nullCount";

/// Puts the distinct counts the parameters hold into a scan's statistics (`schema` names the
/// statistics' columns). A count is an estimate of the whole table, so it is inexact and never
/// more than the rows the scan reads; a parameter that is not a number is ignored, as a table
/// written by another tool may hold anything.
pub fn apply(parameters: &BTreeMap<String, String>, schema: &Schema, statistics: &mut Statistics) {
    let rows = statistics.num_rows.get_value().copied();
    for (field, column) in schema.fields().iter().zip(statistics.column_statistics.iter_mut()) {
        let Some(distinct) = parameters.get(&key(field.name(), DISTINCT)).and_then(|v| v.trim().parse::<usize>().ok())
        else {
            continue;
        };
        let distinct = rows.map_or(distinct, |r| distinct.min(r));
        if column.distinct_count.get_value().is_none() {
            column.distinct_count = Precision::Inexact(distinct);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};

    #[test]
    fn distinct_counts_come_from_the_parameters_and_never_exceed_the_rows() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Utf8, true),
        ]);
        let mut statistics = Statistics::new_unknown(&schema);
        statistics.num_rows = Precision::Exact(1000);
        let parameters = BTreeMap::from([
            (key("a", DISTINCT), "5000".to_string()),
            (key("b", DISTINCT), "25".to_string()),
            (key("c", DISTINCT), "many".to_string()),
        ]);
        apply(&parameters, &schema, &mut statistics);
        let counts: Vec<_> = statistics.column_statistics.iter().map(|c| c.distinct_count).collect();
        assert_eq!(counts, vec![Precision::Inexact(1000), Precision::Inexact(25), Precision::Absent]);
    }
}
