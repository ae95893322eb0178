//! The catalog interface every backend implements: databases, tables and partitions as Glue has them.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Database, Partition, Table};

/// A Glue-compatible catalog. Names are case-insensitive, as in Athena; backends store them lower-case.
#[async_trait]
pub trait Catalog: Send + Sync + std::fmt::Debug {
    async fn list_databases(&self) -> Result<Vec<Database>>;
    async fn get_database(&self, name: &str) -> Result<Option<Database>>;
    async fn create_database(&self, database: Database, if_not_exists: bool) -> Result<()>;
    /// Drops a database; with `cascade` its tables go too, otherwise it must be empty.
    async fn drop_database(&self, name: &str, if_exists: bool, cascade: bool) -> Result<()>;

    async fn list_tables(&self, database: &str) -> Result<Vec<Table>>;
    async fn get_table(&self, database: &str, name: &str) -> Result<Option<Table>>;
    async fn create_table(&self, database: &str, table: Table, if_not_exists: bool) -> Result<()>;
    async fn drop_table(&self, database: &str, name: &str, if_exists: bool) -> Result<()>;
    /// Replaces table `table.name`'s definition (its partitions stay); it must exist.
    async fn update_table(&self, database: &str, table: Table) -> Result<()>;

    /// All partitions of a table. `expression` is a Glue partition expression the backend may
    /// use to narrow the answer; callers still evaluate their predicate exactly on the result.
    async fn get_partitions(&self, database: &str, table: &str, expression: Option<&str>) -> Result<Vec<Partition>>;
    /// Adds partitions and returns those that were new. An existing one is an error unless
    /// `if_not_exists`, in which case it is skipped.
    async fn add_partitions(
        &self,
        database: &str,
        table: &str,
        partitions: Vec<Partition>,
        if_not_exists: bool,
    ) -> Result<Vec<Partition>>;
    /// Drops the partitions with these values; a missing one is an error unless `if_exists`.
    async fn drop_partitions(
        &self,
        database: &str,
        table: &str,
        values: Vec<Vec<String>>,
        if_exists: bool,
    ) -> Result<()>;
}
