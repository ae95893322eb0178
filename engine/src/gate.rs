//! The statement gate: every plan passes here before it runs, whichever front end sent it. It
//! knows where the front end lets statements write (COPY TO, INSERT into a session's external
//! tables, result files) and refuses the rest with an error that names the location.

use std::path::{Component, Path, PathBuf};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::memory::MemTable;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;

use crate::error::{Error, Result};

/// Where statements may write.
#[derive(Debug, Clone, Default)]
pub struct StatementPolicy {
    /// `None`: anywhere the process's credentials reach (the CLI on one's own machine).
    /// `Some(list)`: only under these prefixes (`s3://bucket/prefix/`, or absolute folders).
    write_locations: Option<Vec<String>>,
}

impl StatementPolicy {
    /// Writes anywhere: the CLI and the REPL, run by the owner of the credentials.
    pub fn anywhere() -> Self {
        Self { write_locations: None }
    }

    /// Writes only under `locations` (a shared server's `--allow-write`); none means no writes.
    /// Local folders are taken as they really are (symlinks resolved) so a link cannot widen them.
    pub fn only(locations: &[String]) -> Result<Self> {
        let mut out = vec![];
        for location in locations {
            let normal = normalise(location)
                .map_err(|why| Error::Config(format!("allowed write location '{location}': {why}")))?;
            out.push(normal);
        }
        Ok(Self { write_locations: Some(out) })
    }

    /// Whether writes are limited at all.
    pub fn is_limited(&self) -> bool {
        self.write_locations.is_some()
    }

    /// Fails unless `location` lies under an allowed write location.
    pub fn check_write(&self, location: &str) -> Result<()> {
        let Some(allowed) = &self.write_locations else { return Ok(()) };
        let refused = |why: String| Err(Error::Permission(format!("writing to '{location}' {why}")));
        let target = match normalise(location) {
            Ok(t) => t,
            Err(why) => return refused(why),
        };
        if allowed.iter().any(|a| is_under(&target, a)) {
            return Ok(());
        }
        if allowed.is_empty() {
            return refused("is refused: this server allows no writes (start it with --allow-write LOCATION)".into());
        }
        refused(format!("is outside the locations this server allows writes to ({})", allowed.join(", ")))
    }

    /// Checks every write a plan would make: COPY TO targets and INSERTs into tables that keep
    /// their data somewhere (a session's in-memory tables are the session's own and free).
    pub fn verify(&self, plan: &LogicalPlan) -> Result<()> {
        let mut outcome = Ok(());
        plan.apply(|node| {
            let checked = match node {
                LogicalPlan::Copy(copy) => self.check_write(&copy.output_url),
                LogicalPlan::Dml(dml) => self.check_insert(dml),
                _ => Ok(()),
            };
            if let Err(e) = checked {
                outcome = Err(e);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        outcome
    }

    fn check_insert(&self, dml: &datafusion::logical_expr::DmlStatement) -> Result<()> {
        if !self.is_limited() {
            return Ok(());
        }
        let provider = source_as_provider(&dml.target)?;
        if provider.downcast_ref::<MemTable>().is_some() {
            return Ok(());
        }
        match provider.downcast_ref::<ListingTable>() {
            Some(listing) => {
                for url in listing.table_paths() {
                    self.check_write(url.as_str())?;
                }
                Ok(())
            }
            None => Err(Error::Permission(format!("writing into table {} is not supported here", dml.table_name))),
        }
    }
}

/// Whether `location` is `base` or lies below it (`s3://b/p/x` is under `s3://b/p/`, not under
/// `s3://b/pp`).
pub fn is_under(location: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    location.trim_end_matches('/') == base || location.starts_with(&format!("{base}/"))
}

/// A location in one comparable form: `s3://bucket/key…` as written (no `.`/`..` segments), a
/// local path (`file://` or absolute) with its existing part resolved through symlinks.
fn normalise(location: &str) -> std::result::Result<String, String> {
    if let Some(rest) = location.strip_prefix("s3://").or_else(|| location.strip_prefix("s3a://")) {
        if rest.split('/').any(|segment| segment == "." || segment == "..") {
            return Err("has '.' or '..' segments".into());
        }
        if rest.split('/').next().is_none_or(str::is_empty) {
            return Err("names no bucket".into());
        }
        return Ok(format!("s3://{rest}"));
    }
    let path = location.strip_prefix("file://").unwrap_or(location);
    if location.contains("://") && !location.starts_with("file://") {
        return Err("is not an s3:// or local location".into());
    }
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err("is not an absolute path".into());
    }
    real_path(path).map(|p| p.to_string_lossy().into_owned())
}

/// `path` with its longest existing ancestor resolved through symlinks and the rest appended;
/// `..` in the rest is refused (it could climb out once the folders exist).
pub fn real_path(path: &Path) -> std::result::Result<PathBuf, String> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("has '..' segments".into());
    }
    let mut existing = path.to_path_buf();
    let mut rest = vec![];
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(_) => {
                let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
                    return Err(format!("{} cannot be resolved", path.display()));
                };
                rest.push(name);
                if !existing.pop() {
                    return Err(format!("{} cannot be resolved", path.display()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_under_allowed_prefixes() {
        let policy = StatementPolicy::only(&["s3://results/team-a/".into()]).unwrap();
        assert!(policy.check_write("s3://results/team-a/x.csv").is_ok());
        assert!(policy.check_write("s3://results/team-a").is_ok());
        let outside = policy.check_write("s3://results/team-ab/x.csv").unwrap_err().to_string();
        assert!(outside.contains("'s3://results/team-ab/x.csv'") && outside.contains("outside"), "{outside}");
        assert!(policy.check_write("s3://results/team-a/../team-b/x").is_err());
        assert!(policy.check_write("s3://data/table/part-0.parquet").is_err());
        let none = StatementPolicy::only(&[]).unwrap().check_write("s3://a/b").unwrap_err().to_string();
        assert!(none.contains("--allow-write"), "{none}");
        assert!(StatementPolicy::anywhere().check_write("s3://a/b").is_ok());
    }

    #[test]
    fn local_links_are_followed_before_comparing() {
        let base = std::env::temp_dir().join(format!("glaux-gate-{}", std::process::id()));
        let (allowed, outside) = (base.join("allowed"), base.join("outside"));
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
        let policy = StatementPolicy::only(&[allowed.to_string_lossy().into_owned()]).unwrap();
        assert!(policy.check_write(&allowed.join("new/file.csv").to_string_lossy()).is_ok());
        let escaped = policy.check_write(&allowed.join("link/file.csv").to_string_lossy());
        assert!(escaped.is_err(), "a link inside the folder that points outside is refused");
        assert!(policy.check_write(&format!("{}/../outside/x", allowed.display())).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
