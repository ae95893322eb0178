//! File formats glaux adds to DataFusion's own (CSV, JSON and Parquet come with DataFusion).

mod contained;
pub mod orc;
pub mod wrapped;
