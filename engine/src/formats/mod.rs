//! File formats glaux adds to DataFusion's own (CSV, JSON and Parquet come with DataFusion).

pub mod orc;
pub mod wrapped;
