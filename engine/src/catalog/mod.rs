//! Catalog tables in queries: Hive types, SerDe mapping, partition pruning, the table provider
//! and per-query resolution.

pub mod column_stats;
pub(crate) mod footers;
mod projection;
mod pruning;
mod resolve;
mod scan_log;
mod serde;
mod table;
mod types;
mod view;

pub(crate) use projection::Projection;
pub use pruning::NULL_PARTITION;
pub use resolve::with_catalog_tables;
pub use scan_log::{ScanLog, TableScan};
pub use serde::StorageFormat;
pub use table::CatalogTable;
pub(crate) use table::{is_data, objects_at, split_location};
pub use types::{arrow_to_hive, hive_to_arrow};
pub use view::PrestoView;
