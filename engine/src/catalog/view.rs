//! Views kept in the catalog as Athena keeps them: a Glue table of type VIRTUAL_VIEW whose
//! ViewOriginalText is `/* Presto View: <base64 of a JSON document> */` holding the SQL, the
//! catalog and schema it resolves in, and its columns with Presto type names — so a view glaux
//! creates opens in Athena, and one Athena created works here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use datafusion::arrow::datatypes::{DataType, Schema};
use glaux_catalog::{Column, StorageDescriptor, Table, VIRTUAL_VIEW};
use serde::{Deserialize, Serialize};

use super::types::arrow_to_hive;
use crate::error::{Error, Result};
use crate::session::CATALOG;

const PREFIX: &str = "/* Presto View: ";
const SUFFIX: &str = " */";

/// The JSON document inside ViewOriginalText.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrestoView {
    pub original_sql: String,
    #[serde(default)]
    pub catalog: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub columns: Vec<ViewColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub run_as_invoker: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

impl PrestoView {
    /// The definition kept in `table`, a view; names the view when it cannot be read.
    pub fn of(database: &str, table: &Table) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("view {database}.{}: {why}", table.name));
        let text = table.view_original_text.as_deref().ok_or_else(|| bad("it has no ViewOriginalText"))?;
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|t| t.strip_suffix(SUFFIX))
            .ok_or_else(|| bad("ViewOriginalText is not a Presto view (/* Presto View: … */)"))?;
        let json = STANDARD.decode(encoded.trim()).map_err(|e| bad(&format!("ViewOriginalText is not base64: {e}")))?;
        serde_json::from_slice(&json).map_err(|e| bad(&format!("the Presto view document is not valid: {e}")))
    }

    /// The catalog table for view `name` in `database`: `sql` and the columns it yields.
    pub fn table(database: &str, name: &str, sql: &str, schema: &Schema) -> Result<Table> {
        let view = PrestoView {
            original_sql: sql.trim().to_string(),
            catalog: Some(CATALOG.to_string()),
            schema: Some(database.to_string()),
            columns: schema
                .fields()
                .iter()
                .map(|f| ViewColumn { name: f.name().clone(), type_name: presto_type(f.data_type()) })
                .collect(),
            owner: None,
            run_as_invoker: false,
        };
        let json = serde_json::to_vec(&view).map_err(|e| Error::Internal(format!("view document: {e}")))?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column { name: f.name().clone(), type_name: arrow_to_hive(f.data_type()), comment: None })
            .collect();
        Ok(Table {
            name: name.to_ascii_lowercase(),
            database_name: Some(database.to_string()),
            table_type: Some(VIRTUAL_VIEW.to_string()),
            storage_descriptor: Some(StorageDescriptor {
                columns,
                location: Some(String::new()),
                serde_info: Some(Default::default()),
                ..Default::default()
            }),
            partition_keys: vec![],
            parameters: [("presto_view".to_string(), "true".to_string()), ("comment".into(), "Presto View".into())]
                .into(),
            view_original_text: Some(format!("{PREFIX}{}{SUFFIX}", STANDARD.encode(json))),
            view_expanded_text: Some("/* Presto View */".to_string()),
        })
    }
}

/// The Presto (Trino) name of an Arrow type, as Athena writes view columns.
fn presto_type(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Int32 => "integer".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "varbinary".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("array({})", presto_type(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> =
                fields.iter().map(|f| format!("{} {}", f.name(), presto_type(f.data_type()))).collect();
            format!("row({})", inner.join(", "))
        }
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map({}, {})", presto_type(kv[0].data_type()), presto_type(kv[1].data_type()))
            }
            _ => "map(varchar, varchar)".into(),
        },
        DataType::Timestamp(_, Some(_)) => "timestamp(3) with time zone".into(),
        DataType::Timestamp(..) => "timestamp(3)".into(),
        other => arrow_to_hive(other),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Field;

    use super::*;

    #[test]
    fn a_view_reads_back_as_written_and_bad_texts_are_named() {
        let schema = Schema::new(vec![
            Field::new("page", DataType::Utf8, true),
            Field::new("hits", DataType::Int64, true),
            Field::new("day", DataType::Date32, true),
        ]);
        let table =
            PrestoView::table("web", "Daily", "SELECT page, count(*) AS hits, day FROM logs GROUP BY 2, 3", &schema)
                .unwrap();
        assert_eq!(table.name, "daily");
        assert!(table.is_view());
        let view = PrestoView::of("web", &table).unwrap();
        assert_eq!(view.original_sql, "SELECT page, count(*) AS hits, day FROM logs GROUP BY 2, 3");
        assert_eq!(view.schema.as_deref(), Some("web"));
        let types: Vec<&str> = view.columns.iter().map(|c| c.type_name.as_str()).collect();
        assert_eq!(types, ["varchar", "bigint", "date"]);

        let mut broken = table.clone();
        broken.view_original_text = Some("/* Presto View: %%% */".into());
        let e = PrestoView::of("web", &broken).unwrap_err().to_string();
        assert!(e.contains("web.daily") && e.contains("base64"), "{e}");
        broken.view_original_text = Some("SELECT 1".into());
        let e = PrestoView::of("web", &broken).unwrap_err().to_string();
        assert!(e.contains("not a Presto view"), "{e}");
    }
}
