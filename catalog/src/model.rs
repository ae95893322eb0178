//! Glue's shapes with Glue's field names (PascalCase on the wire), so tables that crawlers,
//! Terraform or boto3 created read unchanged and tables glaux writes look right to Athena.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Database {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Column {
    pub name: String,
    /// A Hive type name: `string`, `bigint`, `decimal(10,2)`, `array<struct<a:int>>`, …
    #[serde(rename = "Type", default)]
    pub type_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SerDeInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialization_library: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageDescriptor {
    #[serde(default)]
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serde_info: Option<SerDeInfo>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Hive bucketing: the columns rows are hashed by, and how many buckets (files per partition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bucket_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_buckets: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Table {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_descriptor: Option<StorageDescriptor>,
    #[serde(default)]
    pub partition_keys: Vec<Column>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// A view's definition (Athena's `/* Presto View: <base64 JSON> */`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_original_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_expanded_text: Option<String>,
}

/// The table type of a view, as Glue and Athena name it.
pub const VIRTUAL_VIEW: &str = "VIRTUAL_VIEW";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Partition {
    /// One value per partition key, in the table's key order, always as strings.
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_descriptor: Option<StorageDescriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

impl Table {
    /// Whether this is a view rather than a table of files.
    pub fn is_view(&self) -> bool {
        self.table_type.as_deref() == Some(VIRTUAL_VIEW)
    }

    fn fail(&self, reason: impl Into<String>) -> Error {
        Error::Table {
            database: self.database_name.clone().unwrap_or_else(|| "default".into()),
            table: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The table's data location, which every queryable table needs.
    pub fn location(&self) -> Result<&str> {
        self.storage_descriptor
            .as_ref()
            .and_then(|sd| sd.location.as_deref())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| self.fail("has no StorageDescriptor.Location"))
    }

    /// Checks that a partition fits this table: one value per partition key.
    pub fn check_partition(&self, partition: &Partition) -> Result<()> {
        if partition.values.len() != self.partition_keys.len() {
            let keys: Vec<&str> = self.partition_keys.iter().map(|k| k.name.as_str()).collect();
            return Err(self.fail(format!(
                "partition ({}) has {} values but the table is partitioned by {} key(s) ({})",
                partition.values.join(", "),
                partition.values.len(),
                keys.len(),
                keys.join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table as a Glue crawler writes it (GetTable's `Table`).
    const CRAWLED: &str = r#"{
      "Name": "access_logs", "DatabaseName": "web", "TableType": "EXTERNAL_TABLE",
      "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
      "PartitionKeys": [{"Name": "year", "Type": "string"}, {"Name": "month", "Type": "string"}],
      "StorageDescriptor": {
        "Columns": [{"Name": "ip", "Type": "string"}, {"Name": "bytes", "Type": "bigint"},
                    {"Name": "tags", "Type": "array<struct<k:string,v:int>>"}],
        "Location": "s3://logs/access/",
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "Compressed": false,
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                      "Parameters": {"serialization.format": "1"}},
        "StoredAsSubDirectories": false
      },
      "CreateTime": 1732406400.0
    }"#;

    #[test]
    fn reads_what_a_crawler_wrote() {
        let t: Table = serde_json::from_str(CRAWLED).unwrap();
        assert_eq!(t.location().unwrap(), "s3://logs/access/");
        let sd = t.storage_descriptor.as_ref().unwrap();
        assert_eq!(sd.columns[2].type_name, "array<struct<k:string,v:int>>");
        assert_eq!(
            sd.serde_info.as_ref().unwrap().serialization_library.as_deref(),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
        assert_eq!(t.partition_keys.len(), 2);
        // written back with Glue's field names
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(back["StorageDescriptor"]["SerdeInfo"]["Parameters"]["serialization.format"], "1");
        assert_eq!(back["PartitionKeys"][1]["Name"], "month");
    }

    #[test]
    fn partition_must_match_the_keys() {
        let t: Table = serde_json::from_str(CRAWLED).unwrap();
        let ok = Partition { values: vec!["2026".into(), "11".into()], ..Default::default() };
        t.check_partition(&ok).unwrap();
        let bad = Partition { values: vec!["2026".into()], ..Default::default() };
        let err = t.check_partition(&bad).unwrap_err().to_string();
        assert!(err.contains("web.access_logs") && err.contains("(year, month)"), "{err}");
        let nowhere = Table { name: "t".into(), ..Default::default() };
        assert!(nowhere.location().unwrap_err().to_string().contains("default.t"));
    }
}
