//! The Trino client protocol: `POST /v1/statement` starts a query, its `nextUri` pages through
//! the results (bounded pages), `DELETE` on it cancels; `GET /v1/info`. glaux's one catalog is
//! `AwsDataCatalog` (any case); `X-Trino-Schema` picks the database; `USE` answers with
//! `X-Trino-Set-Catalog` / `X-Trino-Set-Schema`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use glaux_engine::arrow::datatypes::Schema;
use glaux_engine::{
    ErrorKind, QueryExecutionContext, QueryExecutionState, SessionChange, StartQueryExecution, StatementType,
};
use serde_json::{Value, json};

use crate::athena::CATALOG;
use crate::error::{Error, trino_error};
use crate::runs::{Run, SessionSpec, VIEW_PROPERTY};
use crate::sigv4;
use crate::values;
use crate::{Authenticated, Principal, Server};

/// Rows per page of results.
const PAGE_ROWS: usize = 1000;
/// How long a GET on nextUri waits for a running query before answering "still running".
const POLL_WAIT: Duration = Duration::from_millis(500);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn base_url(headers: &HeaderMap) -> String {
    let host = header(headers, "host").unwrap_or("127.0.0.1");
    let scheme = header(headers, "x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{host}")
}

fn json_response(body: Value) -> Response {
    let mut response = body.to_string().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn stats(run: Option<&Run>, state: &str) -> Value {
    let (bytes, rows, elapsed) = run.map(|r| (r.bytes_scanned(), r.rows(), r.elapsed_ms())).unwrap_or_default();
    json!({
        "state": state,
        "queued": state == "QUEUED",
        "scheduled": state != "QUEUED",
        "nodes": 1,
        "totalSplits": 0, "queuedSplits": 0, "runningSplits": 0, "completedSplits": 0,
        "cpuTimeMillis": 0,
        "wallTimeMillis": elapsed,
        "queuedTimeMillis": 0,
        "elapsedTimeMillis": elapsed,
        "processedRows": rows,
        "processedBytes": bytes,
        "physicalInputBytes": bytes,
        "peakMemoryBytes": 0,
        "spilledBytes": 0,
    })
}

fn trino_state(state: QueryExecutionState) -> &'static str {
    match state {
        QueryExecutionState::Queued => "QUEUED",
        QueryExecutionState::Running => "RUNNING",
        QueryExecutionState::Succeeded => "FINISHED",
        QueryExecutionState::Failed | QueryExecutionState::Cancelled => "FAILED",
    }
}

/// `USE schema` or `USE catalog.schema`: (catalog, schema).
fn use_statement(sql: &str) -> Option<(Option<String>, String)> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let mut words = sql.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("USE") {
        return None;
    }
    let target = words.next()?;
    if words.next().is_some() {
        return None;
    }
    let unquote = |s: &str| s.trim_matches('"').to_string();
    match target.split_once('.') {
        Some((c, s)) => Some((Some(unquote(c)), unquote(s))),
        None => Some((None, unquote(target))),
    }
}

/// A query that ended before it started (bad catalog, USE): its one and only response.
fn immediate(id: &str, base: &str, error: Option<Value>, update: Option<&str>) -> Value {
    let state = if error.is_some() { "FAILED" } else { "FINISHED" };
    let mut body =
        json!({"id": id, "infoUri": format!("{base}/v1/query/{id}"), "stats": stats(None, state), "warnings": []});
    if let Some(e) = error {
        body["error"] = e;
    }
    if let Some(u) = update {
        body["updateType"] = json!(u);
    }
    body
}

/// Who a Trino request is from. X-Trino-User must name the authenticated principal, unless an
/// admin runs the query as that user (impersonation); on a server without credentials
/// (loopback only) the header is taken as it is.
fn principal(authenticated: &Authenticated, headers: &HeaderMap) -> Result<Principal, Error> {
    let user = header(headers, "x-trino-user")
        .ok_or_else(|| Error::InvalidRequest("the X-Trino-User header is required".into()))?;
    match &authenticated.0 {
        None => Ok(Principal { name: user.to_string(), admin: true, manages: vec![] }),
        Some(p) if p.name == user => Ok(p.clone()),
        Some(p) if p.admin => Ok(Principal { name: user.to_string(), admin: false, manages: vec![] }),
        Some(p) => {
            Err(Error::AccessDenied(format!("Access Denied: principal {} cannot run queries as user {user}", p.name)))
        }
    }
}

/// `name=value,name=value` pairs of a session header, values percent-decoded (`plus` also
/// turns '+' into a space, as the prepared-statement header is encoded).
fn pairs(headers: &HeaderMap, name: &str, plus: bool) -> Vec<(String, String)> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let v = if plus { v.trim().replace('+', " ") } else { v.trim().to_string() };
            (k.trim().to_string(), glaux_engine::percent_decode(&v))
        })
        .collect()
}

/// The session a Trino client sends with each request: schema, properties (settings and
/// session views), prepared statements.
fn session_spec(headers: &HeaderMap) -> SessionSpec {
    SessionSpec {
        database: header(headers, "x-trino-schema").map(str::to_string),
        properties: pairs(headers, "x-trino-session", false),
        prepared: pairs(headers, "x-trino-prepared-statement", true),
        // a Trino client keeps its prepared statements itself
        prepare_in_workgroup: false,
    }
}

/// What a statement changed in its session, as the headers that tell the client to keep it.
fn session_headers(response: &mut Response, changes: &[SessionChange]) {
    let h = response.headers_mut();
    let mut add = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.append(name, v);
        }
    };
    for change in changes {
        match change {
            SessionChange::Set { name, value } => {
                add("x-trino-set-session", format!("{name}={}", sigv4::encode(value)))
            }
            SessionChange::Reset { name } => add("x-trino-clear-session", name.clone()),
            SessionChange::Use { database } => add("x-trino-set-schema", database.clone()),
            SessionChange::Prepare { name, sql } => {
                add("x-trino-added-prepare", format!("{name}={}", sigv4::encode(sql)))
            }
            SessionChange::Deallocate { name } => add("x-trino-deallocated-prepare", name.clone()),
            SessionChange::View { name, sql } => {
                add("x-trino-set-session", format!("{VIEW_PROPERTY}{name}={}", sigv4::encode(sql)))
            }
            SessionChange::DropView { name } => add("x-trino-clear-session", format!("{VIEW_PROPERTY}{name}")),
        }
    }
}

pub async fn post_statement(
    server: Arc<Server>,
    authenticated: Authenticated,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let caller = match principal(&authenticated, &headers) {
        Ok(p) => p,
        Err(e) => return e.trino(),
    };
    let Ok(sql) = String::from_utf8(body.to_vec()) else {
        return Error::InvalidRequest("the request body must be the SQL text in UTF-8".into()).trino();
    };
    if sql.trim().is_empty() {
        return Error::InvalidRequest("the request body must hold the SQL to run".into()).trino();
    }
    let base = base_url(&headers);
    let id = uuid::Uuid::new_v4().to_string();
    let catalog = header(&headers, "x-trino-catalog");
    if let Some(c) = catalog
        && !c.eq_ignore_ascii_case(CATALOG)
    {
        let e =
            trino_error(&format!("catalog '{c}' does not exist; glaux's catalog is {CATALOG}"), ErrorKind::NotFound);
        return json_response(immediate(&id, &base, Some(e), None));
    }
    if let Some((use_catalog, schema)) = use_statement(&sql) {
        if let Some(c) = &use_catalog
            && !c.eq_ignore_ascii_case(CATALOG)
        {
            let e = trino_error(
                &format!("catalog '{c}' does not exist; glaux's catalog is {CATALOG}"),
                ErrorKind::NotFound,
            );
            return json_response(immediate(&id, &base, Some(e), None));
        }
        let exists = match server.catalog() {
            Ok(catalog) => catalog.get_database(&schema).await.map(|d| d.is_some()).unwrap_or(false),
            Err(_) => false,
        };
        if !exists {
            let e = trino_error(&format!("schema '{schema}' does not exist"), ErrorKind::NotFound);
            return json_response(immediate(&id, &base, Some(e), None));
        }
        let mut response = json_response(immediate(&id, &base, None, Some("USE")));
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&schema) {
            h.insert("x-trino-set-schema", v);
        }
        if let Some(c) = use_catalog.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert("x-trino-set-catalog", c);
        }
        return response;
    }
    let request = StartQueryExecution {
        query_string: sql,
        query_execution_context: Some(QueryExecutionContext { database: None, catalog: Some(CATALOG.into()) }),
        ..Default::default()
    };
    let run = match server.runs.submit(request, caller, session_spec(&headers)) {
        Ok(run) => run,
        Err(full) => {
            let message = format!("Too many queued queries: the server has {} waiting already", full.0);
            let e = trino_error(&message, ErrorKind::Throttled);
            return json_response(immediate(&id, &base, Some(e), None));
        }
    };
    json_response(json!({
        "id": run.id,
        "infoUri": format!("{base}/v1/query/{}", run.id),
        "nextUri": format!("{base}/v1/statement/executing/{}/{}/0", run.id, run.slug),
        "stats": stats(Some(&run), "QUEUED"),
        "warnings": [],
    }))
}

/// Trino's column descriptions: name, type and typeSignature.
fn columns(schema: &Schema) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| {
                let (name, signature) = values::trino_type(f.data_type());
                json!({"name": f.name(), "type": name, "typeSignature": signature})
            })
            .collect(),
    )
}

/// The run a nextUri names, if the caller is its owner (or an admin).
fn find(
    server: &Server,
    authenticated: &Authenticated,
    headers: &HeaderMap,
    id: &str,
    slug: &str,
) -> Result<Arc<Run>, Error> {
    let caller = principal(authenticated, headers)?;
    server
        .run(id, &caller)
        .filter(|r| r.slug == slug)
        .ok_or_else(|| Error::QueryNotFound(format!("query {id} was not found")))
}

pub async fn get_page(
    server: Arc<Server>,
    authenticated: Authenticated,
    headers: HeaderMap,
    Path((id, slug, page)): Path<(String, String, usize)>,
) -> Response {
    let run = match find(&server, &authenticated, &headers, &id, &slug) {
        Ok(r) => r,
        Err(e) => return e.trino(),
    };
    let base = base_url(&headers);
    let next = |page: usize| format!("{base}/v1/statement/executing/{id}/{slug}/{page}");
    run.wait(POLL_WAIT).await;
    let execution = run.execution();
    let state = execution.status.state;
    let mut body = json!({"id": id, "infoUri": format!("{base}/v1/query/{id}"), "warnings": []});
    match state {
        QueryExecutionState::Queued | QueryExecutionState::Running => {
            body["nextUri"] = json!(next(page));
            body["stats"] = stats(Some(&run), trino_state(state));
            // as Trino does, the columns come as soon as the query is planned
            if let Some(schema) = run.schema() {
                body["columns"] = columns(&schema);
            }
        }
        QueryExecutionState::Failed | QueryExecutionState::Cancelled => {
            let reason = execution.status.state_change_reason.unwrap_or_else(|| state.to_string());
            body["stats"] = stats(Some(&run), "FAILED");
            // the kind the record carries; a record without one (from before kinds) is a user error
            let kind = execution.status.athena_error.as_ref().map_or(
                if state == QueryExecutionState::Cancelled { ErrorKind::Cancelled } else { ErrorKind::InvalidInput },
                |e| e.error_kind,
            );
            body["error"] = trino_error(&reason, kind);
        }
        QueryExecutionState::Succeeded => {
            body["stats"] = stats(Some(&run), "FINISHED");
            if execution.statement_type == StatementType::Ddl {
                body["updateType"] =
                    json!(execution.query.split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_uppercase());
            }
            if let Some(results) = run.results() {
                body["columns"] = columns(&results.schema);
                let batches = match results.slice(page * PAGE_ROWS, PAGE_ROWS) {
                    Ok(b) => b,
                    Err(e) => return e.trino(),
                };
                let data: Vec<Value> = batches
                    .iter()
                    .flat_map(|batch| {
                        (0..batch.num_rows()).map(move |r| {
                            Value::Array(batch.columns().iter().map(|c| values::trino_value(c.as_ref(), r)).collect())
                        })
                    })
                    .collect();
                if !data.is_empty() {
                    body["data"] = Value::Array(data);
                }
                if (page + 1) * PAGE_ROWS < results.rows {
                    body["nextUri"] = json!(next(page + 1));
                    body["stats"]["state"] = json!("RUNNING");
                }
            }
        }
    }
    let mut response = json_response(body);
    if state == QueryExecutionState::Succeeded {
        session_headers(&mut response, &run.session_changes());
    }
    response
}

pub async fn delete(
    server: Arc<Server>,
    authenticated: Authenticated,
    headers: HeaderMap,
    Path((id, slug, _page)): Path<(String, String, usize)>,
) -> Response {
    match find(&server, &authenticated, &headers, &id, &slug) {
        Ok(run) => {
            run.cancel();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.trino(),
    }
}

pub async fn info(server: Arc<Server>) -> Response {
    json_response(json!({
        "nodeVersion": {"version": format!("glaux-{}", env!("CARGO_PKG_VERSION"))},
        "environment": "glaux",
        "coordinator": true,
        "starting": false,
        "uptime": format!("{:.2}s", server.started.elapsed().as_secs_f64()),
    }))
}
