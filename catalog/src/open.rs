//! Choosing a backend: `--catalog local|glue` / GLAUX_CATALOG on every front end.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::glue::GlueCatalog;
use crate::local::LocalCatalog;

/// The catalog backends glaux knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatalogKind {
    /// JSON documents under the warehouse directory: the zero-setup default.
    #[default]
    Local,
    /// AWS Glue, or any server speaking its API (AWS_ENDPOINT_URL_GLUE).
    Glue,
}

impl FromStr for CatalogKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "glue" => Ok(Self::Glue),
            other => Err(Error::Invalid(format!("unknown catalog '{other}': expected local or glue"))),
        }
    }
}

/// Opens the chosen catalog; `warehouse` is where the local one lives.
pub async fn open(kind: CatalogKind, warehouse: &Path) -> Result<Arc<dyn Catalog>> {
    Ok(match kind {
        CatalogKind::Local => Arc::new(LocalCatalog::open(warehouse)?),
        CatalogKind::Glue => Arc::new(GlueCatalog::from_env().await),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_case_insensitively() {
        assert_eq!("GLUE".parse::<CatalogKind>().unwrap(), CatalogKind::Glue);
        assert_eq!("local".parse::<CatalogKind>().unwrap(), CatalogKind::Local);
        let err = "hive".parse::<CatalogKind>().unwrap_err().to_string();
        assert!(err.contains("'hive'") && err.contains("local or glue"), "{err}");
    }
}
