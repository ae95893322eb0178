//! The embedded catalog: JSON documents under the warehouse directory, one per table with its
//! partitions. Every change is a locked read-modify-write that lands by rename, so two glaux
//! processes can write at once and a crash mid-write leaves the previous version intact.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::model::{Database, Partition, Table};
use crate::warehouse_file::{self, Locked};

/// What is stored for one table: the table and its partitions by their values.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableDocument {
    table: Table,
    #[serde(default)]
    partitions: Vec<Partition>,
}

/// The local catalog rooted at `<warehouse>/_glaux_catalog`.
#[derive(Debug, Clone)]
pub struct LocalCatalog {
    root: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{}: {e}", path.display()))
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Names become file names: refuse what could escape the catalog directory.
fn checked(kind: &str, name: &str) -> Result<String> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with('-');
    if valid {
        Ok(key(name))
    } else {
        Err(Error::Invalid(format!("{kind} name '{name}': use letters, digits, '_' or '-'")))
    }
}

impl LocalCatalog {
    /// Opens (creating if needed) the catalog of a warehouse; the `default` database always exists.
    pub fn open(warehouse: impl AsRef<Path>) -> Result<Self> {
        let root = warehouse.as_ref().join("_glaux_catalog");
        fs::create_dir_all(&root).map_err(|e| io(&root, e))?;
        let catalog = Self { root };
        let default = catalog.database_dir("default");
        if !default.exists() {
            catalog.write_database(&Database { name: "default".into(), ..Default::default() })?;
        }
        Ok(catalog)
    }

    fn database_dir(&self, name: &str) -> PathBuf {
        self.root.join(key(name))
    }

    fn table_file(&self, database: &str, table: &str) -> PathBuf {
        self.database_dir(database).join(format!("{}.table.json", key(table)))
    }

    /// Holds the catalog-wide write lock until dropped (an exclusive `flock`).
    fn lock(&self) -> Result<Locked> {
        let path = self.root.join(".lock");
        Locked::exclusive(&path).map_err(|e| io(&path, e))
    }

    fn write_database(&self, database: &Database) -> Result<()> {
        let dir = self.database_dir(&database.name);
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        write_atomically(&dir.join("database.json"), database)
    }

    fn read_table(&self, database: &str, table: &str) -> Result<Option<TableDocument>> {
        read_json(&self.table_file(database, table))
    }

    fn require_database(&self, name: &str) -> Result<()> {
        if self.database_dir(name).join("database.json").exists() {
            Ok(())
        } else {
            Err(Error::NotFound(format!("database '{name}'")))
        }
    }

    fn require_table(&self, database: &str, table: &str) -> Result<TableDocument> {
        self.require_database(database)?;
        self.read_table(database, table)?.ok_or_else(|| Error::NotFound(format!("table '{database}.{table}'")))
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Storage(format!("{} is not a valid catalog document: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Writes beside the target, syncs, then renames over it: readers see the old or the new
/// document, never half of one.
fn write_atomically<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Storage(e.to_string()))?;
    warehouse_file::write_atomically(path, &bytes).map_err(|e| io(path, e))
}

fn partition_key(values: &[String]) -> String {
    values.join("\u{1}")
}

#[async_trait]
impl Catalog for LocalCatalog {
    async fn list_databases(&self) -> Result<Vec<Database>> {
        let mut out = vec![];
        for entry in fs::read_dir(&self.root).map_err(|e| io(&self.root, e))? {
            let dir = entry.map_err(|e| io(&self.root, e))?.path();
            // only directories hold databases; the lock file and temporaries sit beside them
            if !dir.is_dir() {
                continue;
            }
            if let Some(db) = read_json::<Database>(&dir.join("database.json"))? {
                out.push(db);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_database(&self, name: &str) -> Result<Option<Database>> {
        read_json(&self.database_dir(name).join("database.json"))
    }

    async fn create_database(&self, mut database: Database, if_not_exists: bool) -> Result<()> {
        database.name = checked("database", &database.name)?;
        let _lock = self.lock()?;
        if self.database_dir(&database.name).join("database.json").exists() {
            return if if_not_exists {
                Ok(())
            } else {
                Err(Error::AlreadyExists(format!("database '{}'", database.name)))
            };
        }
        self.write_database(&database)
    }

    async fn drop_database(&self, name: &str, if_exists: bool, cascade: bool) -> Result<()> {
        let _lock = self.lock()?;
        let dir = self.database_dir(name);
        if !dir.join("database.json").exists() {
            return if if_exists { Ok(()) } else { Err(Error::NotFound(format!("database '{name}'"))) };
        }
        let tables = self.list_tables(name).await?;
        if !tables.is_empty() && !cascade {
            return Err(Error::Invalid(format!(
                "database '{name}' is not empty ({} tables); use DROP DATABASE {name} CASCADE",
                tables.len()
            )));
        }
        fs::remove_dir_all(&dir).and_then(|_| warehouse_file::sync_dir(&self.root)).map_err(|e| io(&dir, e))
    }

    async fn list_tables(&self, database: &str) -> Result<Vec<Table>> {
        self.require_database(database)?;
        let dir = self.database_dir(database);
        let mut out = vec![];
        for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let path = entry.map_err(|e| io(&dir, e))?.path();
            if path.to_string_lossy().ends_with(".table.json")
                && let Some(doc) = read_json::<TableDocument>(&path)?
            {
                out.push(doc.table);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_table(&self, database: &str, name: &str) -> Result<Option<Table>> {
        Ok(self.read_table(database, name)?.map(|d| d.table))
    }

    async fn create_table(&self, database: &str, mut table: Table, if_not_exists: bool) -> Result<()> {
        table.name = checked("table", &table.name)?;
        table.database_name = Some(key(database));
        let _lock = self.lock()?;
        self.require_database(database)?;
        let path = self.table_file(database, &table.name);
        if path.exists() {
            return if if_not_exists {
                Ok(())
            } else {
                Err(Error::AlreadyExists(format!("table '{database}.{}'", table.name)))
            };
        }
        write_atomically(&path, &TableDocument { table, partitions: vec![] })
    }

    async fn drop_table(&self, database: &str, name: &str, if_exists: bool) -> Result<()> {
        let _lock = self.lock()?;
        let path = self.table_file(database, name);
        match fs::remove_file(&path) {
            Ok(()) => warehouse_file::sync_dir(&self.database_dir(database)).map_err(|e| io(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && if_exists => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(format!("table '{database}.{name}'")))
            }
            Err(e) => Err(io(&path, e)),
        }
    }

    async fn update_table(&self, database: &str, mut table: Table) -> Result<()> {
        table.name = checked("table", &table.name)?;
        table.database_name = Some(key(database));
        let _lock = self.lock()?;
        let mut doc = self.require_table(database, &table.name)?;
        doc.table = table;
        write_atomically(&self.table_file(database, &doc.table.name), &doc)
    }

    async fn get_partitions(&self, database: &str, table: &str, _expression: Option<&str>) -> Result<Vec<Partition>> {
        Ok(self.require_table(database, table)?.partitions)
    }

    async fn add_partitions(
        &self,
        database: &str,
        table: &str,
        partitions: Vec<Partition>,
        if_not_exists: bool,
    ) -> Result<Vec<Partition>> {
        let _lock = self.lock()?;
        let mut doc = self.require_table(database, table)?;
        // Check everything before writing anything: a bad partition leaves the catalog as it was.
        for p in &partitions {
            doc.table.check_partition(p)?;
        }
        let mut existing: BTreeMap<String, usize> =
            doc.partitions.iter().enumerate().map(|(i, p)| (partition_key(&p.values), i)).collect();
        let mut added = vec![];
        for mut p in partitions {
            let k = partition_key(&p.values);
            if existing.contains_key(&k) {
                if if_not_exists {
                    continue;
                }
                return Err(Error::AlreadyExists(format!(
                    "partition ({}) of table '{database}.{table}'",
                    p.values.join(", ")
                )));
            }
            p.database_name = Some(key(database));
            p.table_name = Some(key(table));
            existing.insert(k, doc.partitions.len() + added.len());
            added.push(p);
        }
        if !added.is_empty() {
            doc.partitions.extend(added.iter().cloned());
            write_atomically(&self.table_file(database, table), &doc)?;
        }
        Ok(added)
    }

    async fn drop_partitions(
        &self,
        database: &str,
        table: &str,
        values: Vec<Vec<String>>,
        if_exists: bool,
    ) -> Result<()> {
        let _lock = self.lock()?;
        let mut doc = self.require_table(database, table)?;
        for v in &values {
            let before = doc.partitions.len();
            doc.partitions.retain(|p| &p.values != v);
            if doc.partitions.len() == before && !if_exists {
                return Err(Error::NotFound(format!("partition ({}) of table '{database}.{table}'", v.join(", "))));
            }
        }
        write_atomically(&self.table_file(database, table), &doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, StorageDescriptor};

    fn warehouse(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("glaux-local-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn logs_table() -> Table {
        Table {
            name: "Logs".into(),
            storage_descriptor: Some(StorageDescriptor {
                location: Some("s3://b/logs/".into()),
                columns: vec![Column { name: "ip".into(), type_name: "string".into(), comment: None }],
                ..Default::default()
            }),
            partition_keys: vec![
                Column { name: "year".into(), type_name: "string".into(), comment: None },
                Column { name: "month".into(), type_name: "string".into(), comment: None },
            ],
            ..Default::default()
        }
    }

    fn partition(y: u32, m: u32) -> Partition {
        Partition { values: vec![y.to_string(), format!("{m:02}")], ..Default::default() }
    }

    #[tokio::test]
    async fn databases_tables_and_names_are_case_insensitive() {
        let dir = warehouse("names");
        let c = LocalCatalog::open(&dir).unwrap();
        assert_eq!(c.list_databases().await.unwrap()[0].name, "default");
        c.create_database(Database { name: "Web".into(), ..Default::default() }, false).await.unwrap();
        assert!(c.create_database(Database { name: "web".into(), ..Default::default() }, false).await.is_err());
        c.create_database(Database { name: "WEB".into(), ..Default::default() }, true).await.unwrap();
        c.create_table("web", logs_table(), false).await.unwrap();
        let t = c.get_table("WEB", "LOGS").await.unwrap().unwrap();
        assert_eq!((t.name.as_str(), t.database_name.as_deref()), ("logs", Some("web")));
        let err = c.drop_database("web", false, false).await.unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        assert!(c.create_table("web", Table { name: "../evil".into(), ..Default::default() }, false).await.is_err());
        c.drop_database("web", false, true).await.unwrap();
        assert!(c.get_database("web").await.unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_bad_partition_leaves_nothing_half_written() {
        let dir = warehouse("atomic");
        let c = LocalCatalog::open(&dir).unwrap();
        c.create_table("default", logs_table(), false).await.unwrap();
        let bad = Partition { values: vec!["2026".into()], ..Default::default() };
        let err = c.add_partitions("default", "logs", vec![partition(2026, 1), bad], false).await.unwrap_err();
        assert!(err.to_string().contains("(year, month)"), "{err}");
        assert!(c.get_partitions("default", "logs", None).await.unwrap().is_empty());
        let added = c.add_partitions("default", "logs", vec![partition(2026, 1), partition(2026, 2)], false).await;
        assert_eq!(added.unwrap().len(), 2);
        assert!(c.add_partitions("default", "logs", vec![partition(2026, 1)], false).await.is_err());
        let again = c.add_partitions("default", "logs", vec![partition(2026, 1), partition(2026, 3)], true).await;
        assert_eq!(again.unwrap().len(), 1);
        c.drop_partitions("default", "logs", vec![vec!["2026".into(), "02".into()]], false).await.unwrap();
        assert_eq!(c.get_partitions("default", "logs", None).await.unwrap().len(), 2);
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_lose_nothing() {
        let dir = warehouse("concurrent");
        LocalCatalog::open(&dir).unwrap().create_table("default", logs_table(), false).await.unwrap();
        let mut tasks = vec![];
        for writer in 0..8u32 {
            // a separate catalog handle each, as separate processes would have
            let c = LocalCatalog::open(&dir).unwrap();
            tasks.push(tokio::spawn(async move {
                for m in 0..25u32 {
                    c.add_partitions("default", "logs", vec![partition(2000 + writer, m)], false).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let c = LocalCatalog::open(&dir).unwrap();
        assert_eq!(c.get_partitions("default", "logs", None).await.unwrap().len(), 200);
        fs::remove_dir_all(dir).unwrap();
    }
}
