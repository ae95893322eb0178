//! glaux-catalog: tables as AWS Glue describes them, shared by the local catalog and Glue itself.
#![deny(clippy::clone_on_ref_ptr)]

pub mod aws;
mod catalog;
mod error;
mod glue;
mod local;
mod model;
mod open;
pub mod warehouse_file;

pub use catalog::Catalog;
pub use error::{Error, Result};
pub use glue::GlueCatalog;
pub use local::LocalCatalog;
pub use model::{Column, Database, Partition, SerDeInfo, StorageDescriptor, Table, VIRTUAL_VIEW};
pub use open::{CatalogKind, open};
