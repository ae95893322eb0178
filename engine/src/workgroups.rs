//! Workgroups as Athena has them, kept in the warehouse and shared by every front end: a scan
//! limit per query, a price override, an enforced output location and a daily bytes budget
//! that warns. `primary` always exists.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use glaux_catalog::warehouse_file;

use crate::error::{Error, Result};
use crate::model::ResultConfiguration;

pub const PRIMARY: &str = "primary";

/// Athena's WorkGroup shape, with glaux's pricing and budget in its configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkGroup {
    pub name: String,
    /// `ENABLED` or `DISABLED`; a disabled workgroup runs no queries.
    #[serde(default = "enabled")]
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub configuration: WorkGroupConfiguration,
}

fn enabled() -> String {
    "ENABLED".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkGroupConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_configuration: Option<ResultConfiguration>,
    /// The workgroup's OutputLocation wins over the query's.
    #[serde(default)]
    pub enforce_work_group_configuration: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_scanned_cutoff_per_query: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_tib_usd: Option<f64>,
    /// Bytes a day (UTC) past which queries carry a warning; they are not stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_bytes_scanned_budget: Option<u64>,
}

impl WorkGroup {
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), state: enabled(), ..Default::default() }
    }

    pub fn is_enabled(&self) -> bool {
        self.state.eq_ignore_ascii_case("ENABLED")
    }
}

/// The workgroups of one warehouse: one JSON document, changed under a lock and renamed into place.
#[derive(Debug, Clone)]
pub struct WorkGroups {
    path: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("workgroups {}: {e}", path.display()))
}

fn valid_name(name: &str) -> Result<()> {
    // Athena: 1–128 of letters, digits, '.', '-' and '_'
    if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(Error::InvalidInput(format!(
            "workgroup name '{name}' must be 1 to 128 letters, digits, '.', '-' or '_'"
        )));
    }
    Ok(())
}

/// The primary workgroup is always there, stored or not.
fn with_primary(groups: &mut Vec<WorkGroup>) {
    if !groups.iter().any(|g| g.name == PRIMARY) {
        groups.insert(0, WorkGroup::new(PRIMARY));
    }
}

impl WorkGroups {
    pub fn open(warehouse: impl AsRef<Path>) -> Result<Self> {
        let dir = warehouse.as_ref();
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Self { path: dir.join("_glaux_workgroups.json") })
    }

    fn read(&self) -> Result<Vec<WorkGroup>> {
        let mut groups = warehouse_file::read_json(&self.path).map_err(|e| io(&self.path, e))?;
        with_primary(&mut groups);
        Ok(groups)
    }

    /// Reads, changes and writes back the document while holding the lock.
    fn change<T>(&self, f: impl FnOnce(&mut Vec<WorkGroup>) -> Result<T>) -> Result<T> {
        warehouse_file::update_json(
            &self.path,
            |e| io(&self.path, e),
            |groups| {
                with_primary(groups);
                f(groups)
            },
        )
    }

    pub fn list(&self) -> Result<Vec<WorkGroup>> {
        self.read()
    }

    pub fn get(&self, name: &str) -> Result<Option<WorkGroup>> {
        Ok(self.read()?.into_iter().find(|g| g.name == name))
    }

    pub fn create(&self, group: WorkGroup) -> Result<()> {
        valid_name(&group.name)?;
        self.change(|groups| {
            if groups.iter().any(|g| g.name == group.name) {
                return Err(Error::AlreadyExists(format!("workgroup {} already exists", group.name)));
            }
            groups.push(group);
            Ok(())
        })
    }

    /// Applies `f` to the named workgroup.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut WorkGroup)) -> Result<WorkGroup> {
        self.change(|groups| {
            let group = groups
                .iter_mut()
                .find(|g| g.name == name)
                .ok_or_else(|| Error::NotFound(format!("workgroup {name} does not exist")))?;
            f(group);
            Ok(group.clone())
        })
    }

    /// The prepared statements of this warehouse's workgroups.
    pub fn prepared_statements(&self) -> Result<crate::prepared::PreparedStatements> {
        crate::prepared::PreparedStatements::open(self.path.parent().unwrap_or(Path::new(".")))
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        if name == PRIMARY {
            return Err(Error::InvalidInput("the primary workgroup cannot be deleted".into()));
        }
        self.change(|groups| {
            let before = groups.len();
            groups.retain(|g| g.name != name);
            if groups.len() == before {
                return Err(Error::NotFound(format!("workgroup {name} does not exist")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_always_exists_and_cannot_go() {
        let dir = std::env::temp_dir().join(format!("glaux-wg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let wg = WorkGroups::open(&dir).unwrap();
        assert_eq!(wg.list().unwrap().iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), [PRIMARY]);
        assert!(wg.delete(PRIMARY).unwrap_err().to_string().contains("cannot be deleted"));
        let mut etl = WorkGroup::new("etl");
        etl.configuration.bytes_scanned_cutoff_per_query = Some(10 << 20);
        wg.create(etl.clone()).unwrap();
        assert!(wg.create(etl).unwrap_err().to_string().contains("already exists"));
        let updated = wg.update("etl", |g| g.configuration.price_per_tib_usd = Some(7.0)).unwrap();
        assert_eq!(updated.configuration.bytes_scanned_cutoff_per_query, Some(10 << 20));
        assert_eq!(wg.get("etl").unwrap().unwrap().configuration.price_per_tib_usd, Some(7.0));
        assert!(wg.create(WorkGroup::new("bad name!")).unwrap_err().to_string().contains("'bad name!'"));
        wg.delete("etl").unwrap();
        assert!(wg.delete("etl").unwrap_err().to_string().contains("does not exist"));
        let _ = fs::remove_dir_all(&dir);
    }
}
