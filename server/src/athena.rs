//! Athena's JSON API: `POST /` with `X-Amz-Target: AmazonAthena.<Operation>` and AWS JSON 1.1
//! bodies — queries, their results, workgroups and the catalog — as boto3 and PyAthena call it.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use glaux_engine::glaux_catalog::Table;
use glaux_engine::{
    PreparedStatement, Put, QueryExecution, QueryExecutionState, StartQueryExecution, StatementType, WorkGroup,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::runs::{QueueFull, Results, Run, SessionSpec};
use crate::values;
use crate::{Authenticated, Principal, Server};

/// Athena's limit on QueryString.
const MAX_QUERY_BYTES: usize = 262_144;
/// Athena's catalog name; glaux has one catalog, named this, any case.
pub const CATALOG: &str = "AwsDataCatalog";

fn reply(body: Value) -> Response {
    let mut response = body.to_string().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
    response
}

/// Parses an operation's body into its shape, naming the field that is wrong.
fn body<T: for<'de> Deserialize<'de>>(operation: &str, value: &Value) -> Result<T> {
    // the error names the field that is wrong (`QueryString: invalid type …`)
    serde_path_to_error::deserialize(value.clone())
        .map_err(|e| Error::Serialization(format!("{operation}: {}: {}", e.path(), e.inner())))
}

fn string_field<'a>(value: &'a Value, field: &str) -> Result<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::InvalidRequest(format!("{field} is required")))
}

pub async fn handle(
    server: Arc<Server>,
    authenticated: Authenticated,
    headers: HeaderMap,
    raw: bytes::Bytes,
) -> Response {
    let caller = principal(&authenticated, &headers);
    match dispatch(&server, &caller, &headers, &raw).await {
        Ok(value) => reply(value),
        Err(e) => e.athena(),
    }
}

/// Who an Athena request is from: the authenticated principal or, on a server without
/// credentials (loopback only), the access key it was signed with, as an admin.
fn principal(authenticated: &Authenticated, headers: &HeaderMap) -> Principal {
    match &authenticated.0 {
        Some(p) => p.clone(),
        None => Principal { name: caller(headers).unwrap_or_else(|| "anonymous".into()), admin: true, manages: vec![] },
    }
}

async fn dispatch(server: &Arc<Server>, caller: &Principal, headers: &HeaderMap, raw: &[u8]) -> Result<Value> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::UnknownOperation("the X-Amz-Target header is missing".into()))?;
    let operation = target
        .strip_prefix("AmazonAthena.")
        .ok_or_else(|| Error::UnknownOperation(format!("unknown operation {target}")))?;
    let value: Value = if raw.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(raw).map_err(|e| Error::Serialization(format!("the request body is not JSON: {e}")))?
    };
    if !value.is_object() {
        return Err(Error::Serialization("the request body must be a JSON object".into()));
    }
    match operation {
        "StartQueryExecution" => start(server, caller, &value),
        "GetQueryExecution" => {
            let id = string_field(&value, "QueryExecutionId")?;
            Ok(json!({"QueryExecution": execution(server, caller, id)?}))
        }
        "BatchGetQueryExecution" => batch_get(server, caller, &value),
        "GetQueryResults" => results(server, caller, &value),
        "StopQueryExecution" => {
            let id = string_field(&value, "QueryExecutionId")?;
            match server.run(id, caller) {
                Some(run) => run.cancel(),
                // a query that ended before this server started: stopping it changes nothing
                None => _ = server.history_entry(id, caller)?.ok_or_else(|| not_found(id))?,
            }
            Ok(json!({}))
        }
        "ListQueryExecutions" => list(server, caller, &value),
        "CreateWorkGroup" | "GetWorkGroup" | "ListWorkGroups" | "UpdateWorkGroup" | "DeleteWorkGroup" => {
            workgroup(server, caller, operation, &value)
        }
        "CreatePreparedStatement"
        | "GetPreparedStatement"
        | "ListPreparedStatements"
        | "UpdatePreparedStatement"
        | "DeletePreparedStatement" => prepared_statement(server, caller, operation, &value),
        "GetDatabase" | "ListDatabases" | "GetTableMetadata" | "ListTableMetadata" | "GetDataCatalog"
        | "ListDataCatalogs" => catalog(server, operation, &value).await,
        other => Err(Error::UnknownOperation(format!("unknown operation AmazonAthena.{other}"))),
    }
}

fn not_found(id: &str) -> Error {
    Error::QueryNotFound(format!("QueryExecution {id} was not found"))
}

/// The user an Athena request is from: the access key it was signed with, if any.
fn caller(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_string)
}

fn start(server: &Arc<Server>, caller: &Principal, value: &Value) -> Result<Value> {
    let request = start_request(server, value)?;
    // Athena has no session beyond the query: each starts from a new one. PREPARE keeps its
    // statement in the workgroup for those who may change the workgroup (the statements are
    // its other users' too); for anyone else it lasts the query, as a session's does
    let work_group = request.work_group.as_deref().unwrap_or(glaux_engine::PRIMARY);
    let session = SessionSpec { prepare_in_workgroup: caller.manages(work_group), ..Default::default() };
    let run = server.runs.submit(request, caller.clone(), session).map_err(throttled)?;
    Ok(json!({"QueryExecutionId": run.id}))
}

/// The error of a submission past the queue's bound.
pub(crate) fn throttled(full: QueueFull) -> Error {
    Error::Throttled(format!("the server has {} queries waiting already; try again later", full.0))
}

/// A StartQueryExecution body, checked as Athena checks it before it accepts a query.
pub(crate) fn start_request(server: &Server, value: &Value) -> Result<StartQueryExecution> {
    let request: StartQueryExecution = body("StartQueryExecution", value)?;
    if request.query_string.trim().is_empty() {
        return Err(Error::InvalidRequest("QueryString is required".into()));
    }
    if request.query_string.len() > MAX_QUERY_BYTES {
        return Err(Error::InvalidRequest(format!(
            "QueryString is {} bytes, over Athena's limit of {MAX_QUERY_BYTES}",
            request.query_string.len()
        )));
    }
    if let Some(catalog) = request.query_execution_context.as_ref().and_then(|c| c.catalog.as_deref())
        && !catalog.eq_ignore_ascii_case(CATALOG)
    {
        return Err(Error::InvalidRequest(format!("catalog {catalog} does not exist; glaux's catalog is {CATALOG}")));
    }
    if let Some(group) = &request.work_group {
        server.workgroup(group)?;
    }
    Ok(request)
}

/// A query's record from this server's runs or, for older ones, the history — if `caller`
/// may see it.
fn execution(server: &Server, caller: &Principal, id: &str) -> Result<QueryExecution> {
    if let Some(run) = server.run(id, caller) {
        return Ok(run.execution());
    }
    server.history_entry(id, caller)?.ok_or_else(|| not_found(id))
}

fn batch_get(server: &Server, caller: &Principal, value: &Value) -> Result<Value> {
    let ids: Vec<String> = value
        .get("QueryExecutionIds")
        .cloned()
        .map(|v| body("BatchGetQueryExecution", &v))
        .transpose()?
        .ok_or_else(|| Error::InvalidRequest("QueryExecutionIds is required".into()))?;
    if ids.is_empty() || ids.len() > 50 {
        return Err(Error::InvalidRequest(format!("QueryExecutionIds must hold 1 to 50 ids, not {}", ids.len())));
    }
    let (mut found, mut missing) = (vec![], vec![]);
    for id in ids {
        match execution(server, caller, &id) {
            Ok(e) => found.push(serde_json::to_value(e).unwrap_or_default()),
            Err(_) => {
                missing.push(json!({"QueryExecutionId": id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": "not found"}))
            }
        }
    }
    Ok(json!({"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}))
}

/// A page token: the next row's position, opaque to clients.
fn token(position: usize) -> String {
    format!("glaux-{position}")
}

fn position(token: &str) -> Result<usize> {
    token
        .strip_prefix("glaux-")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::InvalidRequest(format!("NextToken {token} is not one this server gave out")))
}

fn results(server: &Server, caller: &Principal, value: &Value) -> Result<Value> {
    let id = string_field(value, "QueryExecutionId")?;
    let run: Arc<Run> = match server.run(id, caller) {
        Some(run) => run,
        None => {
            let done = server.history_entry(id, caller)?.ok_or_else(|| not_found(id))?;
            return Err(Error::InvalidRequest(format!(
                "the results of query {id} are no longer held by this server{}",
                done.result_configuration
                    .and_then(|r| r.output_location)
                    .map(|l| format!("; read them from {l}"))
                    .unwrap_or_default()
            )));
        }
    };
    let execution = run.execution();
    match execution.status.state {
        QueryExecutionState::Succeeded => {}
        QueryExecutionState::Queued | QueryExecutionState::Running => {
            return Err(Error::InvalidRequest(format!(
                "Query has not yet finished. Current state: {}",
                execution.status.state
            )));
        }
        state => {
            return Err(Error::InvalidRequest(format!(
                "Query did not finish successfully. Final query state: {state}{}",
                execution.status.state_change_reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )));
        }
    }
    let max = match value.get("MaxResults") {
        None => 1000,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| Error::InvalidRequest("MaxResults must be between 1 and 1000".into()))?
            as usize,
    };
    let from = value.get("NextToken").and_then(Value::as_str).map(position).transpose()?.unwrap_or(0);
    let Some(results) = run.results() else {
        // DDL, statements that read nothing, and writes (UNLOAD answers no rows) have none
        let wrote = execution.statistics.rows_written.is_some();
        if execution.statement_type != StatementType::Dml || execution.statistics.data_scanned_in_bytes == 0 || wrote {
            return Ok(json!({"UpdateCount": 0, "ResultSet": {"Rows": [], "ResultSetMetadata": {"ColumnInfo": []}}}));
        }
        return Err(Error::InvalidRequest(format!(
            "the results of query {id} are no longer held by this server; read them from {}",
            execution.result_configuration.and_then(|r| r.output_location).unwrap_or_default()
        )));
    };
    let header = execution.statement_type == StatementType::Dml;
    let rows = page(&results, header, from, max)?;
    let next = from + rows.len();
    let total = results.rows + usize::from(header);
    let mut out = json!({"UpdateCount": 0, "ResultSet": result_set(&results, rows)});
    if next < total {
        out["NextToken"] = json!(token(next));
    }
    Ok(out)
}

/// GetQueryResults' ResultSet: the rows given and the columns' metadata.
pub(crate) fn result_set(results: &Results, rows: Vec<Value>) -> Value {
    json!({
        "Rows": rows,
        "ResultSetMetadata": {"ColumnInfo": results.schema.fields().iter().map(|f| values::column_info(f)).collect::<Vec<_>>()},
    })
}

/// Up to `max` rows from position `from` as Athena's `{"Data": [{"VarCharValue": …}]}` (no
/// VarCharValue for NULL); with `header`, position 0 is a row of the column names, as a
/// SELECT's first page has.
pub(crate) fn page(results: &Results, header: bool, from: usize, max: usize) -> Result<Vec<Value>> {
    let mut rows = vec![];
    let mut take = max;
    let mut data_from = from;
    if header {
        if from == 0 {
            rows.push(json!({"Data": results.schema.fields().iter().map(|f| json!({"VarCharValue": f.name()})).collect::<Vec<_>>()}));
            take = take.saturating_sub(1);
        } else {
            data_from = from - 1;
        }
    }
    for batch in results.slice(data_from, take)? {
        let columns: Vec<Vec<Option<String>>> =
            batch.columns().iter().map(|c| values::athena_texts(c.as_ref())).collect();
        for r in 0..batch.num_rows() {
            let cells: Vec<Value> = columns
                .iter()
                .map(|c| match &c[r] {
                    Some(v) => json!({"VarCharValue": v}),
                    None => json!({}),
                })
                .collect();
            rows.push(json!({"Data": cells}));
        }
    }
    Ok(rows)
}

fn list(server: &Server, caller: &Principal, value: &Value) -> Result<Value> {
    let group = value.get("WorkGroup").and_then(Value::as_str).unwrap_or(glaux_engine::PRIMARY).to_string();
    server.workgroup(&group)?;
    let max = value.get("MaxResults").and_then(Value::as_u64).unwrap_or(50).clamp(1, 50) as usize;
    let from = value.get("NextToken").and_then(Value::as_str).map(position).transpose()?.unwrap_or(0);
    // newest first: queries still running, then the history
    let mut ids: Vec<(f64, String)> = server
        .runs
        .in_flight()
        .into_iter()
        .filter(|r| caller.sees(Some(r.owner.name.as_str())))
        .filter(|r| r.request.work_group.as_deref().unwrap_or(glaux_engine::PRIMARY) == group)
        .map(|r| (r.submitted, r.id.clone()))
        .collect();
    ids.extend(
        server
            .history_entries(caller)?
            .into_iter()
            .filter(|e| e.work_group == group)
            .map(|e| (e.status.submission_date_time, e.query_execution_id)),
    );
    ids.sort_by(|a, b| b.0.total_cmp(&a.0));
    ids.dedup_by(|a, b| a.1 == b.1);
    let page: Vec<&String> = ids.iter().skip(from).take(max).map(|(_, id)| id).collect();
    let mut out = json!({"QueryExecutionIds": page});
    if from + max < ids.len() {
        out["NextToken"] = json!(token(from + max));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateWorkGroup {
    work_group: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    configuration_updates: Option<ConfigurationUpdates>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConfigurationUpdates {
    #[serde(default)]
    enforce_work_group_configuration: Option<bool>,
    #[serde(default)]
    bytes_scanned_cutoff_per_query: Option<u64>,
    #[serde(default)]
    remove_bytes_scanned_cutoff_per_query: Option<bool>,
    #[serde(default)]
    result_configuration_updates: Option<ResultConfigurationUpdates>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ResultConfigurationUpdates {
    #[serde(default)]
    output_location: Option<String>,
    #[serde(default)]
    remove_output_location: Option<bool>,
}

fn workgroup(server: &Server, caller: &Principal, operation: &str, value: &Value) -> Result<Value> {
    let groups = server.workgroups()?;
    let engine = |e: glaux_engine::Error| Error::InvalidRequest(e.to_string());
    // changing a workgroup changes every user's limits: admins, or a principal granted it
    if matches!(operation, "CreateWorkGroup" | "UpdateWorkGroup" | "DeleteWorkGroup") {
        let name = value.get("Name").or_else(|| value.get("WorkGroup")).and_then(Value::as_str).unwrap_or_default();
        if !caller.manages(name) {
            return Err(Error::AccessDenied(format!(
                "{} may not {} workgroup {name}: that needs the admin role or a grant for it",
                caller.name,
                operation.trim_end_matches("WorkGroup").to_ascii_lowercase()
            )));
        }
    }
    match operation {
        "CreateWorkGroup" => {
            let group: WorkGroup = body(operation, value)?;
            groups.create(group).map_err(engine)?;
            Ok(json!({}))
        }
        "GetWorkGroup" => {
            let name = string_field(value, "WorkGroup")?;
            Ok(json!({"WorkGroup": server.workgroup(name)?}))
        }
        "ListWorkGroups" => {
            let list = groups.list().map_err(engine)?;
            Ok(
                json!({"WorkGroups": list.iter().map(|g| json!({"Name": g.name, "State": g.state, "Description": g.description.clone().unwrap_or_default()})).collect::<Vec<_>>()}),
            )
        }
        "UpdateWorkGroup" => {
            let update: UpdateWorkGroup = body(operation, value)?;
            server.workgroup(&update.work_group)?;
            groups
                .update(&update.work_group, |g| {
                    if let Some(d) = update.description {
                        g.description = Some(d);
                    }
                    if let Some(s) = update.state {
                        g.state = s;
                    }
                    let c = update.configuration_updates.unwrap_or_default();
                    if let Some(e) = c.enforce_work_group_configuration {
                        g.configuration.enforce_work_group_configuration = e;
                    }
                    if let Some(cutoff) = c.bytes_scanned_cutoff_per_query {
                        g.configuration.bytes_scanned_cutoff_per_query = Some(cutoff);
                    }
                    if c.remove_bytes_scanned_cutoff_per_query == Some(true) {
                        g.configuration.bytes_scanned_cutoff_per_query = None;
                    }
                    if let Some(r) = c.result_configuration_updates {
                        if let Some(location) = r.output_location {
                            g.configuration.result_configuration =
                                Some(glaux_engine::ResultConfiguration { output_location: Some(location) });
                        }
                        if r.remove_output_location == Some(true) {
                            g.configuration.result_configuration = None;
                        }
                    }
                })
                .map_err(engine)?;
            Ok(json!({}))
        }
        _ => {
            let name = string_field(value, "WorkGroup")?;
            groups.delete(name).map_err(engine)?;
            Ok(json!({}))
        }
    }
}

/// Athena's prepared-statement operations: statements kept per workgroup in the warehouse,
/// read by every user of the workgroup, changed only by those who may change the workgroup.
fn prepared_statement(server: &Server, caller: &Principal, operation: &str, value: &Value) -> Result<Value> {
    let store = server.workgroups()?.prepared_statements().map_err(|e| Error::Internal(e.to_string()))?;
    let engine = |e: glaux_engine::Error| match e.kind() {
        glaux_engine::ErrorKind::NotFound => Error::ResourceNotFound(e.to_string()),
        _ => Error::InvalidRequest(e.to_string()),
    };
    let work_group = string_field(value, "WorkGroup")?;
    server.workgroup(work_group)?;
    if !matches!(operation, "GetPreparedStatement" | "ListPreparedStatements") && !caller.manages(work_group) {
        return Err(Error::AccessDenied(format!(
            "{} may not change the prepared statements of workgroup {work_group}: that needs the admin role or a grant for it",
            caller.name
        )));
    }
    let name = || string_field(value, "StatementName");
    let missing = |name: &str| {
        Error::ResourceNotFound(format!("prepared statement {name} does not exist in workgroup {work_group}"))
    };
    match operation {
        "CreatePreparedStatement" | "UpdatePreparedStatement" => {
            let statement = PreparedStatement {
                statement_name: name()?.to_string(),
                query_statement: string_field(value, "QueryStatement")?.to_string(),
                work_group_name: work_group.to_string(),
                description: value.get("Description").and_then(Value::as_str).map(str::to_string),
                last_modified_time: 0.0,
            };
            let mode = if operation == "CreatePreparedStatement" { Put::Create } else { Put::Update };
            store.put(statement, mode).map_err(engine)?;
            Ok(json!({}))
        }
        "GetPreparedStatement" => {
            let name = name()?;
            let statement = store.get(work_group, name).map_err(engine)?.ok_or_else(|| missing(name))?;
            Ok(json!({"PreparedStatement": statement}))
        }
        "ListPreparedStatements" => {
            let list = store.list(work_group).map_err(engine)?;
            let list: Vec<Value> = list
                .iter()
                .map(|s| json!({"StatementName": s.statement_name, "LastModifiedTime": s.last_modified_time}))
                .collect();
            Ok(json!({"PreparedStatements": list}))
        }
        _ => {
            let name = name()?;
            if !store.delete(work_group, name).map_err(engine)? {
                return Err(missing(name));
            }
            Ok(json!({}))
        }
    }
}

fn table_metadata(table: &Table) -> Value {
    let columns = |cols: &[glaux_engine::glaux_catalog::Column]| {
        cols.iter()
            .map(|c| {
                let mut v = json!({"Name": c.name, "Type": c.type_name});
                if let Some(comment) = &c.comment {
                    v["Comment"] = json!(comment);
                }
                v
            })
            .collect::<Vec<_>>()
    };
    json!({
        "Name": table.name,
        "TableType": table.table_type.clone().unwrap_or_else(|| "EXTERNAL_TABLE".into()),
        "Columns": columns(table.storage_descriptor.as_ref().map(|s| s.columns.as_slice()).unwrap_or_default()),
        "PartitionKeys": columns(&table.partition_keys),
        "Parameters": table.parameters,
    })
}

async fn catalog(server: &Server, operation: &str, value: &Value) -> Result<Value> {
    if operation == "ListDataCatalogs" {
        return Ok(json!({"DataCatalogsSummary": [{"CatalogName": CATALOG, "Type": "GLUE"}]}));
    }
    let name = value.get("CatalogName").or_else(|| value.get("Name")).and_then(Value::as_str).unwrap_or(CATALOG);
    if !name.eq_ignore_ascii_case(CATALOG) {
        return Err(Error::Metadata(format!("catalog {name} does not exist; glaux's catalog is {CATALOG}")));
    }
    if operation == "GetDataCatalog" {
        return Ok(json!({"DataCatalog": {"Name": CATALOG, "Type": "GLUE", "Parameters": {}}}));
    }
    let catalog = server.catalog()?;
    let meta = |e: glaux_engine::glaux_catalog::Error| Error::Metadata(e.to_string());
    match operation {
        "ListDatabases" => {
            let list = catalog.list_databases().await.map_err(meta)?;
            Ok(
                json!({"DatabaseList": list.iter().map(|d| json!({"Name": d.name, "Description": d.description, "Parameters": d.parameters})).collect::<Vec<_>>()}),
            )
        }
        "GetDatabase" => {
            let db = string_field(value, "DatabaseName")?;
            let d = catalog
                .get_database(db)
                .await
                .map_err(meta)?
                .ok_or_else(|| Error::Metadata(format!("database {db} does not exist")))?;
            Ok(json!({"Database": {"Name": d.name, "Description": d.description, "Parameters": d.parameters}}))
        }
        "ListTableMetadata" => {
            let db = string_field(value, "DatabaseName")?;
            if catalog.get_database(db).await.map_err(meta)?.is_none() {
                return Err(Error::Metadata(format!("database {db} does not exist")));
            }
            let tables = catalog.list_tables(db).await.map_err(meta)?;
            Ok(json!({"TableMetadataList": tables.iter().map(table_metadata).collect::<Vec<_>>()}))
        }
        _ => {
            let db = string_field(value, "DatabaseName")?;
            let name = string_field(value, "TableName")?;
            let table = catalog
                .get_table(db, name)
                .await
                .map_err(meta)?
                .ok_or_else(|| Error::Metadata(format!("table {db}.{name} does not exist")))?;
            Ok(json!({"TableMetadata": table_metadata(&table)}))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use glaux_engine::arrow::array::{Int64Array, RecordBatch, StringArray};
    use glaux_engine::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn results(rows: i64) -> Results {
        let schema =
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        let dir = std::env::temp_dir().join(format!("glaux-athena-page-{}", std::process::id()));
        let mut r = Results::new(Arc::clone(&schema), 1 << 20, dir.join("r.arrow"));
        for start in (0..rows).step_by(7) {
            let n: Vec<i64> = (start..(start + 7).min(rows)).collect();
            let s: Vec<Option<String>> = n.iter().map(|v| (v % 2 == 0).then(|| format!("v{v}"))).collect();
            let columns: Vec<glaux_engine::arrow::array::ArrayRef> =
                vec![Arc::new(Int64Array::from(n)), Arc::new(StringArray::from(s))];
            r.push(RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()).unwrap();
        }
        r.finish().unwrap();
        r
    }

    fn texts(rows: &[Value]) -> Vec<Vec<Option<String>>> {
        rows.iter()
            .map(|r| {
                r["Data"].as_array().unwrap().iter().map(|c| c["VarCharValue"].as_str().map(str::to_string)).collect()
            })
            .collect()
    }

    #[test]
    fn pages_start_with_the_header_and_continue_where_the_token_says() {
        let r = results(20);
        let first = page(&r, true, 0, 5).unwrap();
        assert_eq!(texts(&first)[0], [Some("n".to_string()), Some("s".to_string())]);
        assert_eq!(texts(&first)[1], [Some("0".to_string()), Some("v0".to_string())]);
        // NULL has no VarCharValue; the empty string would have one
        assert_eq!(texts(&first)[2], [Some("1".to_string()), None]);
        // the next page starts at position 5: the header took a place, so row 4
        let next = page(&r, true, position(&token(5)).unwrap(), 1000).unwrap();
        assert_eq!(next.len(), 16);
        assert_eq!(texts(&next)[0][0].as_deref(), Some("4"));
        assert_eq!(texts(&next)[15][0].as_deref(), Some("19"));
        // without a header (DDL and utility results) positions are rows
        assert_eq!(texts(&page(&r, false, 3, 2).unwrap())[0][0].as_deref(), Some("3"));
        assert!(page(&r, true, 21, 10).unwrap().is_empty());
    }

    #[test]
    fn tokens_are_checked_and_bodies_name_the_wrong_field() {
        assert!(position("glaux-12").is_ok_and(|p| p == 12));
        for bad in ["12", "glaux-", "glaux--1", "other-3"] {
            let e = position(bad).unwrap_err().to_string();
            assert!(e.contains("NextToken") && e.contains(bad), "{e}");
        }
        let e = body::<StartQueryExecution>("StartQueryExecution", &json!({"QueryString": 42})).unwrap_err();
        assert!(e.to_string().contains("QueryString"), "{e}");
        let e = string_field(&json!({"QueryExecutionId": ""}), "QueryExecutionId").unwrap_err();
        assert!(e.to_string().contains("QueryExecutionId is required"), "{e}");
    }
}
