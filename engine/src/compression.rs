//! Compression of text tables from their objects' extensions, as Athena does: a CSV or JSON table
//! over `*.csv.gz` reads gzip without being told. Decided once, at `CREATE EXTERNAL TABLE`.

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionState;
use datafusion::sql::parser::{CreateExternalTable, Statement};
use datafusion::sql::sqlparser::ast::Value;
use futures::TryStreamExt;

use crate::error::{Error, Result};

/// The codec an object's name implies (`None`: uncompressed).
pub fn from_extension(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    [(".gz", "gzip"), (".gzip", "gzip"), (".bz2", "bzip2"), (".zst", "zstd"), (".zstd", "zstd"), (".xz", "xz")]
        .into_iter()
        .find(|(ext, _)| lower.ends_with(ext))
        .map(|(_, codec)| codec)
}

/// Adds `format.compression` to a text-format `CREATE EXTERNAL TABLE` that does not say it,
/// when the objects at its location agree on one codec. Mixed codecs are refused by name.
pub async fn infer_for_ddl(statement: &mut Statement, state: &SessionState) -> Result<()> {
    let Statement::CreateExternalTable(CreateExternalTable { file_type, locations, options, .. }) = statement else {
        return Ok(());
    };
    let text = matches!(file_type.to_ascii_uppercase().as_str(), "CSV" | "JSON" | "NDJSON" | "TSV");
    if !text || options.iter().any(|(k, _)| k.eq_ignore_ascii_case("format.compression")) {
        return Ok(());
    }
    let mut found: Option<(&'static str, String)> = None;
    let mut plain: Option<String> = None;
    for location in locations.iter() {
        let url = ListingTableUrl::parse(location)?;
        let store = state.runtime_env().object_store(&url)?;
        let objects: Vec<_> = store.list(Some(url.prefix())).try_collect().await.map_err(Error::Storage)?;
        for object in objects {
            let key = object.location.to_string();
            if key.ends_with('/') || object.size == 0 {
                continue;
            }
            match (from_extension(&key), &found) {
                (None, _) => plain = Some(key),
                (Some(codec), None) => found = Some((codec, key)),
                (Some(codec), Some((other, first))) if codec != *other => {
                    return Err(mixed(location, first, &key));
                }
                _ => {}
            }
        }
    }
    match (found, plain) {
        (Some((_, compressed)), Some(plain)) => Err(mixed(&locations.join(", "), &compressed, &plain)),
        (Some((codec, _)), None) => {
            options.push(("format.compression".into(), Value::SingleQuotedString(codec.into())));
            Ok(())
        }
        _ => Ok(()),
    }
}

fn mixed(location: &str, a: &str, b: &str) -> Error {
    Error::Location {
        location: location.to_string(),
        reason: format!(
            "objects use different compression ('{a}' and '{b}'); put each kind under its own location or set OPTIONS ('format.compression' '…')"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_by_extension() {
        assert_eq!(from_extension("logs/a.csv.gz"), Some("gzip"));
        assert_eq!(from_extension("a.JSON.BZ2"), Some("bzip2"));
        assert_eq!(from_extension("a.csv.zst"), Some("zstd"));
        assert_eq!(from_extension("a.csv"), None);
    }
}
