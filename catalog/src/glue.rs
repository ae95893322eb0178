//! The AWS Glue backend: the same catalog through aws-sdk-glue, configured from the standard
//! AWS environment (AWS_ENDPOINT_URL_GLUE / AWS_ENDPOINT_URL, AWS_REGION, the credential chain).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_glue::Client;
use aws_sdk_glue::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types as gt;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::model::{Column, Database, Partition, SerDeInfo, StorageDescriptor, Table};

/// Glue's limits per batch call.
const CREATE_BATCH: usize = 100;
const DELETE_BATCH: usize = 25;

/// A catalog kept in AWS Glue (or anything that speaks its API).
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: Client,
}

impl GlueCatalog {
    /// Connects with the configuration every AWS tool reads from the environment and profiles.
    pub async fn from_env() -> Self {
        Self { client: Client::new(crate::aws::sdk_config().await) }
    }
}

/// Turns an SDK error into the catalog's, keeping Glue's error code and message.
fn glue_error<E>(operation: &'static str, what: &str, e: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e.code() {
        Some("EntityNotFoundException") => Error::NotFound(what.to_string()),
        Some("AlreadyExistsException") => Error::AlreadyExists(what.to_string()),
        _ => Error::Glue { operation, message: DisplayErrorContext(&e).to_string() },
    }
}

fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("EntityNotFoundException")
}

fn build_error(e: aws_sdk_glue::error::BuildError) -> Error {
    Error::Invalid(e.to_string())
}

fn params(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

fn sdk_params(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn column(c: &gt::Column) -> Column {
    Column {
        name: c.name().to_ascii_lowercase(),
        type_name: c.r#type().unwrap_or_default().to_string(),
        comment: c.comment().map(str::to_string),
    }
}

fn sdk_column(c: &Column) -> Result<gt::Column> {
    gt::Column::builder().name(&c.name).r#type(&c.type_name).set_comment(c.comment.clone()).build().map_err(build_error)
}

fn storage(sd: &gt::StorageDescriptor) -> StorageDescriptor {
    StorageDescriptor {
        columns: sd.columns().iter().map(column).collect(),
        location: sd.location().map(str::to_string),
        input_format: sd.input_format().map(str::to_string),
        output_format: sd.output_format().map(str::to_string),
        compressed: Some(sd.compressed()),
        serde_info: sd.serde_info().map(|s| SerDeInfo {
            name: s.name().map(str::to_string),
            serialization_library: s.serialization_library().map(str::to_string),
            parameters: params(s.parameters()),
        }),
        parameters: params(sd.parameters()),
        bucket_columns: sd.bucket_columns().to_vec(),
        // Glue says -1 for a table without buckets
        number_of_buckets: Some(sd.number_of_buckets()).filter(|n| *n > 0),
    }
}

fn sdk_storage(sd: &StorageDescriptor) -> Result<gt::StorageDescriptor> {
    let serde_info = sd.serde_info.as_ref().map(|s| {
        gt::SerDeInfo::builder()
            .set_name(s.name.clone())
            .set_serialization_library(s.serialization_library.clone())
            .set_parameters(sdk_params(&s.parameters))
            .build()
    });
    Ok(gt::StorageDescriptor::builder()
        .set_columns(Some(sd.columns.iter().map(sdk_column).collect::<Result<_>>()?))
        .set_location(sd.location.clone())
        .set_input_format(sd.input_format.clone())
        .set_output_format(sd.output_format.clone())
        .set_compressed(sd.compressed)
        .set_serde_info(serde_info)
        .set_parameters(sdk_params(&sd.parameters))
        .set_bucket_columns(Some(sd.bucket_columns.clone()).filter(|c| !c.is_empty()))
        .set_number_of_buckets(sd.number_of_buckets)
        .build())
}

fn table(t: &gt::Table) -> Table {
    Table {
        name: t.name().to_ascii_lowercase(),
        database_name: t.database_name().map(str::to_ascii_lowercase),
        table_type: t.table_type().map(str::to_string),
        storage_descriptor: t.storage_descriptor().map(storage),
        partition_keys: t.partition_keys().iter().map(column).collect(),
        parameters: params(t.parameters()),
        view_original_text: t.view_original_text().map(str::to_string),
        view_expanded_text: t.view_expanded_text().map(str::to_string),
    }
}

/// A table as Glue's CreateTable and UpdateTable take it.
fn table_input(t: &Table) -> Result<gt::TableInput> {
    gt::TableInput::builder()
        .name(t.name.to_ascii_lowercase())
        .set_table_type(t.table_type.clone())
        .set_storage_descriptor(t.storage_descriptor.as_ref().map(sdk_storage).transpose()?)
        .set_partition_keys(Some(t.partition_keys.iter().map(sdk_column).collect::<Result<_>>()?))
        .set_parameters(sdk_params(&t.parameters))
        .set_view_original_text(t.view_original_text.clone())
        .set_view_expanded_text(t.view_expanded_text.clone())
        .build()
        .map_err(build_error)
}

fn partition(p: &gt::Partition) -> Partition {
    Partition {
        values: p.values().to_vec(),
        database_name: p.database_name().map(str::to_string),
        table_name: p.table_name().map(str::to_string),
        storage_descriptor: p.storage_descriptor().map(storage),
        parameters: params(p.parameters()),
    }
}

fn database(d: &gt::Database) -> Database {
    Database {
        name: d.name().to_ascii_lowercase(),
        description: d.description().map(str::to_string),
        location_uri: d.location_uri().map(str::to_string),
        parameters: params(d.parameters()),
    }
}

#[async_trait]
impl Catalog for GlueCatalog {
    async fn list_databases(&self) -> Result<Vec<Database>> {
        let mut out = vec![];
        let mut token = None;
        loop {
            let page = self
                .client
                .get_databases()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| glue_error("GetDatabases", "databases", e))?;
            out.extend(page.database_list().iter().map(database));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_database(&self, name: &str) -> Result<Option<Database>> {
        match self.client.get_database().name(name.to_ascii_lowercase()).send().await {
            Ok(out) => Ok(out.database().map(database)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(glue_error("GetDatabase", &format!("database {name}"), e)),
        }
    }

    async fn create_database(&self, db: Database, if_not_exists: bool) -> Result<()> {
        let what = format!("database {}", db.name);
        let input = gt::DatabaseInput::builder()
            .name(db.name.to_ascii_lowercase())
            .set_description(db.description)
            .set_location_uri(db.location_uri)
            .set_parameters(sdk_params(&db.parameters))
            .build()
            .map_err(build_error)?;
        match self.client.create_database().database_input(input).send().await {
            Ok(_) => Ok(()),
            Err(e) => match glue_error("CreateDatabase", &what, e) {
                Error::AlreadyExists(_) if if_not_exists => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn drop_database(&self, name: &str, if_exists: bool, cascade: bool) -> Result<()> {
        let name = name.to_ascii_lowercase();
        if self.get_database(&name).await?.is_none() {
            return if if_exists { Ok(()) } else { Err(Error::NotFound(format!("database {name}"))) };
        }
        // Glue drops a database's tables with it; Hive's RESTRICT (the default) refuses instead.
        if !cascade && !self.list_tables(&name).await?.is_empty() {
            return Err(Error::Invalid(format!("database {name} is not empty; use DROP DATABASE {name} CASCADE")));
        }
        self.client
            .delete_database()
            .name(&name)
            .send()
            .await
            .map_err(|e| glue_error("DeleteDatabase", &format!("database {name}"), e))?;
        Ok(())
    }

    async fn list_tables(&self, db: &str) -> Result<Vec<Table>> {
        let db = db.to_ascii_lowercase();
        let mut out = vec![];
        let mut token = None;
        loop {
            let page = self
                .client
                .get_tables()
                .database_name(&db)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| glue_error("GetTables", &format!("database {db}"), e))?;
            out.extend(page.table_list().iter().map(table));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_table(&self, db: &str, name: &str) -> Result<Option<Table>> {
        let (db, name) = (db.to_ascii_lowercase(), name.to_ascii_lowercase());
        match self.client.get_table().database_name(&db).name(&name).send().await {
            Ok(out) => Ok(out.table().map(table)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(glue_error("GetTable", &format!("table {db}.{name}"), e)),
        }
    }

    async fn create_table(&self, db: &str, t: Table, if_not_exists: bool) -> Result<()> {
        let db = db.to_ascii_lowercase();
        let what = format!("table {db}.{}", t.name);
        let input = table_input(&t)?;
        match self.client.create_table().database_name(&db).table_input(input).send().await {
            Ok(_) => Ok(()),
            Err(e) => match glue_error("CreateTable", &what, e) {
                Error::AlreadyExists(_) if if_not_exists => Ok(()),
                Error::NotFound(_) => Err(Error::NotFound(format!("database {db}"))),
                other => Err(other),
            },
        }
    }

    async fn update_table(&self, db: &str, t: Table) -> Result<()> {
        let db = db.to_ascii_lowercase();
        let what = format!("table {db}.{}", t.name);
        let input = table_input(&t)?;
        self.client
            .update_table()
            .database_name(&db)
            .table_input(input)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| glue_error("UpdateTable", &what, e))
    }

    async fn drop_table(&self, db: &str, name: &str, if_exists: bool) -> Result<()> {
        let (db, name) = (db.to_ascii_lowercase(), name.to_ascii_lowercase());
        match self.client.delete_table().database_name(&db).name(&name).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) && if_exists => Ok(()),
            Err(e) => Err(glue_error("DeleteTable", &format!("table {db}.{name}"), e)),
        }
    }

    async fn get_partitions(&self, db: &str, name: &str, expression: Option<&str>) -> Result<Vec<Partition>> {
        let (db, name) = (db.to_ascii_lowercase(), name.to_ascii_lowercase());
        let mut out = vec![];
        let mut token = None;
        loop {
            let page = self
                .client
                .get_partitions()
                .database_name(&db)
                .table_name(&name)
                .set_expression(expression.map(str::to_string))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| glue_error("GetPartitions", &format!("table {db}.{name}"), e))?;
            out.extend(page.partitions().iter().map(partition));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn add_partitions(
        &self,
        db: &str,
        name: &str,
        partitions: Vec<Partition>,
        if_not_exists: bool,
    ) -> Result<Vec<Partition>> {
        let (db, name) = (db.to_ascii_lowercase(), name.to_ascii_lowercase());
        let mut added = vec![];
        for chunk in partitions.chunks(CREATE_BATCH) {
            let inputs = chunk
                .iter()
                .map(|p| {
                    Ok(gt::PartitionInput::builder()
                        .set_values(Some(p.values.clone()))
                        .set_storage_descriptor(p.storage_descriptor.as_ref().map(sdk_storage).transpose()?)
                        .set_parameters(sdk_params(&p.parameters))
                        .build())
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .batch_create_partition()
                .database_name(&db)
                .table_name(&name)
                .set_partition_input_list(Some(inputs))
                .send()
                .await
                .map_err(|e| glue_error("BatchCreatePartition", &format!("table {db}.{name}"), e))?;
            let mut refused: Vec<Vec<String>> = vec![];
            for error in out.errors() {
                let values = error.partition_values().to_vec();
                let detail = error.error_detail();
                let code = detail.and_then(|d| d.error_code()).unwrap_or_default();
                if code == "AlreadyExistsException" && if_not_exists {
                    refused.push(values);
                    continue;
                }
                let message = detail.and_then(|d| d.error_message()).unwrap_or(code);
                return Err(Error::Table {
                    database: db.clone(),
                    table: name.clone(),
                    reason: format!("partition ({}): {message}", values.join(", ")),
                });
            }
            added.extend(chunk.iter().filter(|p| !refused.contains(&p.values)).cloned());
        }
        Ok(added)
    }

    async fn drop_partitions(&self, db: &str, name: &str, values: Vec<Vec<String>>, if_exists: bool) -> Result<()> {
        let (db, name) = (db.to_ascii_lowercase(), name.to_ascii_lowercase());
        for chunk in values.chunks(DELETE_BATCH) {
            let lists = chunk
                .iter()
                .map(|v| gt::PartitionValueList::builder().set_values(Some(v.clone())).build().map_err(build_error))
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .batch_delete_partition()
                .database_name(&db)
                .table_name(&name)
                .set_partitions_to_delete(Some(lists))
                .send()
                .await
                .map_err(|e| glue_error("BatchDeletePartition", &format!("table {db}.{name}"), e))?;
            for error in out.errors() {
                let detail = error.error_detail();
                let code = detail.and_then(|d| d.error_code()).unwrap_or_default();
                if code == "EntityNotFoundException" {
                    if if_exists {
                        continue;
                    }
                    // the same error the local catalog gives
                    let values = error.partition_values().join(", ");
                    return Err(Error::NotFound(format!("partition ({values}) of table '{db}.{name}'")));
                }
                let message = detail.and_then(|d| d.error_message()).unwrap_or(code);
                return Err(Error::Table {
                    database: db.clone(),
                    table: name.clone(),
                    reason: format!("partition ({}): {message}", error.partition_values().join(", ")),
                });
            }
        }
        Ok(())
    }
}
