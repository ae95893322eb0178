//! glaux-catalog: tables as AWS Glue describes them, shared by the local catalog and Glue itself.
#![deny(clippy::clone_on_ref_ptr)]

mod error;
mod model;

pub use error::{Error, Result};
pub use model::{Column, Database, Partition, SerDeInfo, StorageDescriptor, Table};
