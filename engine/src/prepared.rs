//! Prepared statements kept per workgroup in the warehouse, as Athena keeps them: what the
//! Athena API's Create/Get/List/Update/DeletePreparedStatement manage, what `PREPARE` through
//! the Athena API creates, and what `EXECUTE` finds when its session has no statement of that
//! name. One JSON document, changed under a lock and renamed into place.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use glaux_catalog::warehouse_file;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Athena's PreparedStatement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PreparedStatement {
    pub statement_name: String,
    pub query_statement: String,
    pub work_group_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds since the epoch.
    pub last_modified_time: f64,
}

/// Statements by workgroup, then by name (lower-case).
type Document = BTreeMap<String, BTreeMap<String, PreparedStatement>>;

/// The prepared statements of one warehouse.
#[derive(Debug, Clone)]
pub struct PreparedStatements {
    path: PathBuf,
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("prepared statements {}: {e}", path.display()))
}

fn missing(work_group: &str, name: &str) -> Error {
    Error::NotFound(format!("prepared statement {name} does not exist in workgroup {work_group}"))
}

impl PreparedStatements {
    pub fn open(warehouse: impl AsRef<Path>) -> Result<Self> {
        let dir = warehouse.as_ref();
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Self { path: dir.join("_glaux_prepared_statements.json") })
    }

    fn read(&self) -> Result<Document> {
        warehouse_file::read_json(&self.path).map_err(|e| io(&self.path, e))
    }

    fn change<T>(&self, f: impl FnOnce(&mut Document) -> Result<T>) -> Result<T> {
        warehouse_file::update_json(&self.path, |e| io(&self.path, e), f)
    }

    pub fn get(&self, work_group: &str, name: &str) -> Result<Option<PreparedStatement>> {
        Ok(self.read()?.get(work_group).and_then(|s| s.get(&name.to_ascii_lowercase())).cloned())
    }

    /// The workgroup's statements, by name.
    pub fn list(&self, work_group: &str) -> Result<Vec<PreparedStatement>> {
        Ok(self.read()?.remove(work_group).map(|s| s.into_values().collect()).unwrap_or_default())
    }

    /// Keeps `statement`: `create` refuses one that exists, an update one that does not, and
    /// neither (`PREPARE`) replaces or adds.
    pub fn put(&self, mut statement: PreparedStatement, mode: Put) -> Result<()> {
        check_name(&statement.statement_name)?;
        statement.last_modified_time = crate::query::now_epoch_seconds();
        self.change(|document| {
            let statements = document.entry(statement.work_group_name.clone()).or_default();
            let key = statement.statement_name.to_ascii_lowercase();
            match (mode, statements.contains_key(&key)) {
                (Put::Create, true) => {
                    return Err(Error::AlreadyExists(format!(
                        "prepared statement {} already exists in workgroup {}",
                        statement.statement_name, statement.work_group_name
                    )));
                }
                (Put::Update, false) => return Err(missing(&statement.work_group_name, &statement.statement_name)),
                _ => {}
            }
            statements.insert(key, statement);
            Ok(())
        })
    }

    /// Removes statement `name` of `work_group`; false if there was none.
    pub fn delete(&self, work_group: &str, name: &str) -> Result<bool> {
        self.change(|document| {
            Ok(document.get_mut(work_group).and_then(|s| s.remove(&name.to_ascii_lowercase())).is_some())
        })
    }
}

/// How [`PreparedStatements::put`] treats an existing statement of the same name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Put {
    Create,
    Update,
    Replace,
}

/// Athena: 1–256 letters, digits and `_`.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 256 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::InvalidInput(format!(
            "prepared statement name '{name}' must be 1 to 256 letters, digits or '_'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(name: &str, sql: &str) -> PreparedStatement {
        PreparedStatement {
            statement_name: name.into(),
            query_statement: sql.into(),
            work_group_name: "primary".into(),
            description: None,
            last_modified_time: 0.0,
        }
    }

    #[test]
    fn statements_are_kept_per_workgroup() {
        let dir = std::env::temp_dir().join(format!("glaux-prepared-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = PreparedStatements::open(&dir).unwrap();
        store.put(statement("by_day", "SELECT ?"), Put::Create).unwrap();
        let again = store.put(statement("BY_DAY", "SELECT 2"), Put::Create).unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");
        assert!(
            store.put(statement("nope", "SELECT 1"), Put::Update).unwrap_err().to_string().contains("does not exist")
        );
        store.put(statement("by_day", "SELECT ? + 1"), Put::Update).unwrap();
        let got = store.get("primary", "By_Day").unwrap().unwrap();
        assert_eq!(got.query_statement, "SELECT ? + 1");
        assert!(got.last_modified_time > 0.0);
        assert!(store.get("etl", "by_day").unwrap().is_none(), "another workgroup has its own");
        assert_eq!(store.list("primary").unwrap().len(), 1);
        assert!(
            store.put(statement("bad name", "SELECT 1"), Put::Create).unwrap_err().to_string().contains("'bad name'")
        );
        assert!(store.delete("primary", "by_day").unwrap());
        assert!(!store.delete("primary", "by_day").unwrap());
        let _ = fs::remove_dir_all(&dir);
    }
}
