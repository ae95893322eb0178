//! Athena's DDL and utility statements, parsed into what the catalog needs.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::tokenizer::Token;
use glaux_catalog::{Column, SerDeInfo, StorageDescriptor, Table};

use super::cursor::{Cursor, Property};
use crate::catalog::hive_to_arrow;
use crate::error::{Error, Result};
use crate::model::StatementType;

/// `(database, table)`; `None` means the current database.
pub type TableName = (Option<String>, String);

/// A partition spec: `(key, value)` pairs in the order written.
pub type Spec = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub enum AthenaStatement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        comment: Option<String>,
        location: Option<String>,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
        cascade: bool,
    },
    CreateTable {
        database: Option<String>,
        table: Box<Table>,
        if_not_exists: bool,
    },
    DropTable {
        table: TableName,
        if_exists: bool,
    },
    ShowDatabases {
        like: Option<String>,
    },
    ShowTables {
        database: Option<String>,
        like: Option<String>,
    },
    ShowPartitions {
        table: TableName,
    },
    ShowCreateTable {
        table: TableName,
    },
    ShowTblProperties {
        table: TableName,
    },
    ShowColumns {
        table: TableName,
    },
    Describe {
        table: TableName,
    },
    AddPartitions {
        table: TableName,
        partitions: Vec<(Spec, Option<String>)>,
        if_not_exists: bool,
    },
    DropPartitions {
        table: TableName,
        partitions: Vec<Spec>,
        if_exists: bool,
    },
    MsckRepair {
        table: TableName,
    },
    Use {
        database: String,
    },
    /// `PREPARE name FROM statement`: kept in the session.
    Prepare {
        name: String,
        sql: String,
    },
    /// `EXECUTE name [USING literal, …]`: the literals are SQL text, checked to be values.
    Execute {
        name: String,
        using: Vec<String>,
    },
    /// `DEALLOCATE PREPARE name`
    Deallocate {
        name: String,
    },
    /// `ALTER TABLE t ADD COLUMNS | REPLACE COLUMNS | SET TBLPROPERTIES | SET LOCATION | RENAME TO`
    AlterTable {
        table: TableName,
        change: TableChange,
    },
    /// `CREATE TABLE [IF NOT EXISTS] t [WITH (…)] AS query [WITH NO DATA]`
    CreateTableAs {
        table: TableName,
        if_not_exists: bool,
        properties: Vec<(String, Property)>,
        query: String,
        with_data: bool,
    },
    /// `INSERT INTO t [(columns)] query`, into a catalog table.
    InsertInto {
        table: TableName,
        columns: Vec<String>,
        query: String,
    },
    /// `UNLOAD (query) TO 'location' WITH (…)`
    Unload {
        query: String,
        location: String,
        properties: Vec<(String, Property)>,
    },
    /// `CREATE [OR REPLACE] VIEW name AS query`: kept in the catalog.
    CreateView {
        view: TableName,
        or_replace: bool,
        query: String,
    },
    DropView {
        view: TableName,
        if_exists: bool,
    },
    ShowViews {
        database: Option<String>,
        like: Option<String>,
    },
    ShowCreateView {
        view: TableName,
    },
    /// `ANALYZE [TABLE] t [COMPUTE STATISTICS [FOR ALL COLUMNS | FOR COLUMNS a, b]]`: the
    /// columns' distinct and null counts, kept with the table for the optimizer. `None`: every
    /// column.
    Analyze {
        table: TableName,
        columns: Option<Vec<String>>,
    },
}

/// What an ALTER TABLE changes in a table's definition.
#[derive(Debug, Clone, PartialEq)]
pub enum TableChange {
    AddColumns(Vec<Column>),
    ReplaceColumns(Vec<Column>),
    SetProperties(Vec<(String, String)>),
    SetLocation(String),
    RenameTo(TableName),
}

impl AthenaStatement {
    /// Athena's StatementType: DDL changes the catalog, UTILITY only reads it (SHOW, DESCRIBE, USE).
    pub fn statement_type(&self) -> StatementType {
        use AthenaStatement::*;
        match self {
            ShowDatabases { .. }
            | ShowTables { .. }
            | ShowPartitions { .. }
            | ShowCreateTable { .. }
            | ShowTblProperties { .. }
            | ShowViews { .. }
            | ShowCreateView { .. }
            | Describe { .. }
            | Use { .. }
            | Prepare { .. }
            | Execute { .. }
            | Deallocate { .. } => StatementType::Utility,
            CreateTableAs { .. } | InsertInto { .. } | Unload { .. } | Analyze { .. } => StatementType::Dml,
            _ => StatementType::Ddl,
        }
    }
}

/// Hive's backslash escapes for quotes and backslashes; other sequences (`\d`, `\s`) stay as
/// written, so regexes work whether or not their backslashes were doubled.
fn hive_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next)) if matches!(next, '\\' | '"' | '\'') => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Input and output formats and SerDes Hive and Athena use for each `STORED AS`.
pub fn stored_as(format: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match format.to_ascii_uppercase().as_str() {
        "PARQUET" => (
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        ),
        "ORC" => (
            "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
        ),
        "TEXTFILE" => (
            "org.apache.hadoop.mapred.TextInputFormat",
            "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        ),
        "JSON" | "JSONFILE" => (
            "org.apache.hadoop.mapred.TextInputFormat",
            "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "org.apache.hive.hcatalog.data.JsonSerDe",
        ),
        _ => return None,
    })
}

/// SHOW TABLES' and SHOW VIEWS' `[IN database] [[LIKE] 'pattern']`.
fn in_database_like(c: &mut Cursor) -> Result<(Option<String>, Option<String>)> {
    let database = if c.keyword("IN") || c.keyword("FROM") { Some(c.name()?) } else { None };
    let like = if c.keyword("LIKE") || matches!(c.peek(), Some(Token::SingleQuotedString(_))) {
        Some(c.string()?)
    } else {
        None
    };
    Ok((database, like))
}

/// Parses `sql` if it is one of Athena's DDL or utility statements; `Ok(None)` leaves it to DataFusion.
pub fn parse(sql: &str) -> Result<Option<AthenaStatement>> {
    let mut c = Cursor::new(sql)?;
    let statement = if c.keyword("CREATE") {
        if c.keyword("DATABASE") || c.keyword("SCHEMA") {
            create_database(&mut c)?
        } else if let Some(or_replace) = match () {
            _ if c.keywords(&["OR", "REPLACE", "VIEW"]) => Some(true),
            _ if c.keyword("VIEW") => Some(false),
            _ => None,
        } {
            let view = c.qualified_name()?;
            c.expect_keywords(&["AS"])?;
            let query = c.rest(sql).trim().trim_end_matches(';').trim().to_string();
            if query.is_empty() {
                return Err(c.error("Expected: the view's query after AS"));
            }
            return Ok(Some(AthenaStatement::CreateView { view, or_replace, query }));
        } else if c.keyword("TABLE") {
            // Athena's CTAS; DataFusion's `CREATE TABLE t (columns)` stays a session table
            let if_not_exists = c.keywords(&["IF", "NOT", "EXISTS"]);
            let table = c.qualified_name()?;
            let properties = if c.keyword("WITH") { c.with_properties()? } else { vec![] };
            if !c.keyword("AS") {
                return Ok(None);
            }
            let mut query = c.rest(sql).trim().trim_end_matches(';').trim_end();
            let upper = query.to_ascii_uppercase();
            let with_data = !upper.ends_with("WITH NO DATA");
            if let Some(body) = upper.strip_suffix("WITH NO DATA").or_else(|| upper.strip_suffix("WITH DATA")) {
                query = query[..body.len()].trim_end();
            }
            if query.is_empty() {
                return Err(c.error("Expected: the query after AS"));
            }
            let query = query.to_string();
            return Ok(Some(AthenaStatement::CreateTableAs { table, if_not_exists, properties, query, with_data }));
        } else if c.keywords(&["EXTERNAL", "TABLE"]) {
            // DataFusion's own form (with OPTIONS) stays a session table.
            if sql.to_ascii_uppercase().contains("OPTIONS") && !sql.to_ascii_uppercase().contains("TBLPROPERTIES") {
                return Ok(None);
            }
            create_table(&mut c)?
        } else {
            return Ok(None);
        }
    } else if c.keyword("DROP") {
        if c.keyword("DATABASE") || c.keyword("SCHEMA") {
            let if_exists = c.keywords(&["IF", "EXISTS"]);
            let name = c.name()?;
            let cascade = c.keyword("CASCADE");
            if !cascade {
                c.keyword("RESTRICT");
            }
            AthenaStatement::DropDatabase { name, if_exists, cascade }
        } else if c.keyword("TABLE") {
            let if_exists = c.keywords(&["IF", "EXISTS"]);
            AthenaStatement::DropTable { table: c.qualified_name()?, if_exists }
        } else if c.keyword("VIEW") {
            let if_exists = c.keywords(&["IF", "EXISTS"]);
            AthenaStatement::DropView { view: c.qualified_name()?, if_exists }
        } else {
            return Ok(None);
        }
    } else if c.keyword("SHOW") {
        if c.keyword("DATABASES") || c.keyword("SCHEMAS") {
            let like = if c.keyword("LIKE") { Some(c.string()?) } else { None };
            AthenaStatement::ShowDatabases { like }
        } else if c.keyword("TABLES") {
            let (database, like) = in_database_like(&mut c)?;
            AthenaStatement::ShowTables { database, like }
        } else if c.keyword("PARTITIONS") {
            AthenaStatement::ShowPartitions { table: c.qualified_name()? }
        } else if c.keywords(&["CREATE", "TABLE"]) {
            AthenaStatement::ShowCreateTable { table: c.qualified_name()? }
        } else if c.keywords(&["CREATE", "VIEW"]) {
            AthenaStatement::ShowCreateView { view: c.qualified_name()? }
        } else if c.keyword("VIEWS") {
            let (database, like) = in_database_like(&mut c)?;
            AthenaStatement::ShowViews { database, like }
        } else if c.keyword("TBLPROPERTIES") {
            AthenaStatement::ShowTblProperties { table: c.qualified_name()? }
        } else if c.keyword("COLUMNS") {
            let _ = c.keyword("IN") || c.keyword("FROM");
            AthenaStatement::ShowColumns { table: c.qualified_name()? }
        } else {
            return Ok(None);
        }
    } else if c.keyword("DESCRIBE") || c.keyword("DESC") {
        // DESCRIBE SELECT … / DESCRIBE OUTPUT are not table descriptions
        let _ = c.keyword("EXTENDED") || c.keyword("FORMATTED");
        AthenaStatement::Describe { table: c.qualified_name()? }
    } else if c.keywords(&["ALTER", "TABLE"]) {
        let table = c.qualified_name()?;
        if c.keywords(&["ADD", "COLUMNS"]) {
            AthenaStatement::AlterTable { table, change: TableChange::AddColumns(columns(&mut c)?) }
        } else if c.keyword("ADD") {
            let if_not_exists = c.keywords(&["IF", "NOT", "EXISTS"]);
            let mut partitions = vec![];
            while c.keyword("PARTITION") {
                let spec = spec(&mut c)?;
                let location = if c.keyword("LOCATION") { Some(c.string()?) } else { None };
                partitions.push((spec, location));
            }
            if partitions.is_empty() {
                return Err(c.error("Expected: PARTITION (key = value, …)"));
            }
            AthenaStatement::AddPartitions { table, partitions, if_not_exists }
        } else if c.keyword("DROP") {
            let if_exists = c.keywords(&["IF", "EXISTS"]);
            let mut partitions = vec![];
            loop {
                c.expect_keywords(&["PARTITION"])?;
                partitions.push(spec(&mut c)?);
                if !c.token(&Token::Comma) {
                    break;
                }
            }
            AthenaStatement::DropPartitions { table, partitions, if_exists }
        } else if c.keywords(&["REPLACE", "COLUMNS"]) {
            AthenaStatement::AlterTable { table, change: TableChange::ReplaceColumns(columns(&mut c)?) }
        } else if c.keywords(&["SET", "TBLPROPERTIES"]) {
            AthenaStatement::AlterTable { table, change: TableChange::SetProperties(c.properties()?) }
        } else if c.keywords(&["SET", "LOCATION"]) {
            AthenaStatement::AlterTable { table, change: TableChange::SetLocation(c.string()?) }
        } else if c.keywords(&["RENAME", "TO"]) {
            AthenaStatement::AlterTable { table, change: TableChange::RenameTo(c.qualified_name()?) }
        } else {
            return Err(c.error(
                "Expected: ADD PARTITION, DROP PARTITION, ADD COLUMNS, REPLACE COLUMNS, SET TBLPROPERTIES, SET LOCATION or RENAME TO",
            ));
        }
    } else if c.keywords(&["INSERT", "INTO"]) {
        let table = c.qualified_name()?;
        let mut columns = vec![];
        // a column list, unless the parenthesis opens the query itself
        if c.peek() == Some(&Token::LParen) && !c.word_after_paren(&["SELECT", "WITH", "VALUES"]) {
            c.expect(&Token::LParen)?;
            loop {
                columns.push(c.name()?.to_ascii_lowercase());
                if !c.token(&Token::Comma) {
                    break;
                }
            }
            c.expect(&Token::RParen)?;
        }
        let query = c.rest(sql).trim().trim_end_matches(';').trim_end().to_string();
        if query.is_empty() {
            return Err(c.error("Expected: the rows to insert (SELECT … or VALUES …)"));
        }
        return Ok(Some(AthenaStatement::InsertInto { table, columns, query }));
    } else if c.keyword("UNLOAD") {
        let query = c.parenthesized(sql)?.trim().to_string();
        c.expect_keywords(&["TO"])?;
        let location = c.string()?;
        let properties = if c.keyword("WITH") { c.with_properties()? } else { vec![] };
        c.expect_end()?;
        return Ok(Some(AthenaStatement::Unload { query, location, properties }));
    } else if c.keyword("ANALYZE") {
        // Trino's `ANALYZE t`, and Hive's and Spark's `ANALYZE TABLE t COMPUTE STATISTICS …`
        c.keyword("TABLE");
        let table = c.qualified_name()?;
        let mut columns = None;
        if c.keywords(&["COMPUTE", "STATISTICS"]) && c.keyword("FOR") && !c.keywords(&["ALL", "COLUMNS"]) {
            c.expect_keywords(&["COLUMNS"])?;
            let mut names = vec![];
            loop {
                names.push(c.name()?.to_ascii_lowercase());
                if !c.token(&Token::Comma) {
                    break;
                }
            }
            columns = Some(names);
        }
        AthenaStatement::Analyze { table, columns }
    } else if c.keywords(&["MSCK", "REPAIR", "TABLE"]) {
        AthenaStatement::MsckRepair { table: c.qualified_name()? }
    } else if c.keyword("PREPARE") {
        // DataFusion's own `PREPARE name(types) AS …` stays DataFusion's
        let name = c.name()?;
        if !c.keyword("FROM") {
            return Ok(None);
        }
        let statement = c.rest(sql).trim().trim_end_matches(';').trim_end();
        if statement.is_empty() {
            return Err(c.error("Expected: the statement to prepare after FROM"));
        }
        return Ok(Some(AthenaStatement::Prepare { name, sql: statement.to_string() }));
    } else if c.keyword("EXECUTE") {
        let name = c.name()?;
        let mut using = vec![];
        if c.keyword("USING") {
            loop {
                using.push(c.literal()?);
                if !c.token(&Token::Comma) {
                    break;
                }
            }
        } else if !c.at_end() {
            // DataFusion's `EXECUTE name(values)`
            return Ok(None);
        }
        AthenaStatement::Execute { name, using }
    } else if c.keywords(&["DEALLOCATE", "PREPARE"]) {
        AthenaStatement::Deallocate { name: c.name()? }
    } else if c.keyword("USE") {
        let (db, name) = c.qualified_name()?;
        // `USE awsdatacatalog.db` and `USE db`
        AthenaStatement::Use {
            database: if db.as_ref().is_some_and(|d| d.eq_ignore_ascii_case("awsdatacatalog")) {
                name
            } else {
                db.unwrap_or(name)
            },
        }
    } else {
        return Ok(None);
    };
    c.expect_end()?;
    Ok(Some(statement))
}

fn spec(c: &mut Cursor) -> Result<Spec> {
    c.expect(&Token::LParen)?;
    let mut out = vec![];
    loop {
        let key = c.name()?.to_ascii_lowercase();
        c.expect(&Token::Eq)?;
        out.push((key, c.value()?));
        if !c.token(&Token::Comma) {
            break;
        }
    }
    c.expect(&Token::RParen)?;
    Ok(out)
}

fn create_database(c: &mut Cursor) -> Result<AthenaStatement> {
    let if_not_exists = c.keywords(&["IF", "NOT", "EXISTS"]);
    let name = c.name()?;
    let (mut comment, mut location) = (None, None);
    loop {
        if c.keyword("COMMENT") {
            comment = Some(c.string()?);
        } else if c.keyword("LOCATION") {
            location = Some(c.string()?);
        } else if c.keywords(&["WITH", "DBPROPERTIES"]) {
            c.properties()?;
        } else {
            break;
        }
    }
    Ok(AthenaStatement::CreateDatabase { name, if_not_exists, comment, location })
}

fn columns(c: &mut Cursor) -> Result<Vec<Column>> {
    c.expect(&Token::LParen)?;
    let mut out = vec![];
    loop {
        let name = c.name()?.to_ascii_lowercase();
        let type_name = c.type_text()?.to_ascii_lowercase().replace(' ', "");
        // check it now: a bad type must not reach the catalog
        hive_to_arrow(&type_name).map_err(|e| Error::Syntax(format!("column {name}: {e}")))?;
        let comment = if c.keyword("COMMENT") { Some(c.string()?) } else { None };
        out.push(Column { name, type_name, comment });
        if !c.token(&Token::Comma) {
            break;
        }
    }
    c.expect(&Token::RParen)?;
    Ok(out)
}

fn create_table(c: &mut Cursor) -> Result<AthenaStatement> {
    let if_not_exists = c.keywords(&["IF", "NOT", "EXISTS"]);
    let (database, name) = c.qualified_name()?;
    let mut table =
        Table { name: name.to_ascii_lowercase(), table_type: Some("EXTERNAL_TABLE".into()), ..Default::default() };
    let mut sd = StorageDescriptor::default();
    let mut serde = SerDeInfo::default();
    if c.peek() == Some(&Token::LParen) {
        sd.columns = columns(c)?;
    }
    loop {
        if c.keyword("COMMENT") {
            table.parameters.insert("comment".into(), c.string()?);
        } else if c.keywords(&["PARTITIONED", "BY"]) {
            table.partition_keys = columns(c)?;
        } else if c.keywords(&["ROW", "FORMAT", "DELIMITED"]) {
            serde.serialization_library = Some("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe".into());
            loop {
                if c.keywords(&["FIELDS", "TERMINATED", "BY"]) {
                    let d = c.string()?;
                    serde.parameters.insert("field.delim".into(), d.clone());
                    serde.parameters.insert("serialization.format".into(), d);
                    if c.keywords(&["ESCAPED", "BY"]) {
                        serde.parameters.insert("escape.delim".into(), c.string()?);
                    }
                } else if c.keywords(&["COLLECTION", "ITEMS", "TERMINATED", "BY"]) {
                    serde.parameters.insert("collection.delim".into(), c.string()?);
                } else if c.keywords(&["MAP", "KEYS", "TERMINATED", "BY"]) {
                    serde.parameters.insert("mapkey.delim".into(), c.string()?);
                } else if c.keywords(&["LINES", "TERMINATED", "BY"]) {
                    serde.parameters.insert("line.delim".into(), c.string()?);
                } else if c.keywords(&["NULL", "DEFINED", "AS"]) {
                    serde.parameters.insert("serialization.null.format".into(), c.string()?);
                } else {
                    break;
                }
            }
        } else if c.keywords(&["ROW", "FORMAT", "SERDE"]) {
            serde.serialization_library = Some(c.string()?);
            if c.keywords(&["WITH", "SERDEPROPERTIES"]) {
                serde.parameters.extend(c.properties()?);
            }
            // Hive unescapes string literals: a regex written `\\[` or `\"` (as Athena's
            // examples do) means `\[` and `"`
            if let Some(regex) = serde.parameters.get_mut("input.regex") {
                *regex = hive_unescape(regex);
            }
        } else if c.keywords(&["STORED", "AS"]) {
            if c.keyword("INPUTFORMAT") {
                sd.input_format = Some(c.string()?);
                c.expect_keywords(&["OUTPUTFORMAT"])?;
                sd.output_format = Some(c.string()?);
            } else {
                let format = c.name()?;
                let (input, output, library) = stored_as(&format).ok_or_else(|| {
                    c.error(&format!("unsupported STORED AS {format} (PARQUET, ORC, TEXTFILE, JSON)"))
                })?;
                sd.input_format = Some(input.into());
                sd.output_format = Some(output.into());
                serde.serialization_library.get_or_insert_with(|| library.into());
                table.parameters.entry("classification".into()).or_insert_with(|| classification(&format));
            }
        } else if c.keyword("LOCATION") {
            sd.location = Some(c.string()?);
        } else if c.keyword("TBLPROPERTIES") {
            table.parameters.extend(c.properties()?);
        } else {
            break;
        }
    }
    if serde.serialization_library.is_none() && sd.input_format.is_none() {
        // Hive's default: text with ^A-separated fields
        serde.serialization_library = Some("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe".into());
        sd.input_format = Some("org.apache.hadoop.mapred.TextInputFormat".into());
    }
    if sd.location.is_none() {
        return Err(c.error("Expected: LOCATION 's3://…' (an external table needs one)"));
    }
    table.parameters.insert("EXTERNAL".into(), "TRUE".into());
    sd.serde_info = Some(serde);
    table.storage_descriptor = Some(sd);
    Ok(AthenaStatement::CreateTable { database, table: Box::new(table), if_not_exists })
}

fn classification(format: &str) -> String {
    match format.to_ascii_uppercase().as_str() {
        "TEXTFILE" => "csv".into(),
        "JSONFILE" => "json".into(),
        f => f.to_ascii_lowercase(),
    }
}

/// `key=value/key=value` as Hive names partitions.
pub fn partition_name(keys: &[Column], values: &[String]) -> String {
    keys.iter().zip(values).map(|(k, v)| format!("{}={v}", k.name)).collect::<Vec<_>>().join("/")
}

/// Orders a spec's values by the table's partition keys; a spec that names other keys, or not
/// all of them, is an error naming the table and the keys.
pub fn ordered_values(table: &Table, spec: &Spec) -> Result<Vec<String>> {
    let given: BTreeMap<&str, &str> = spec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let keys: Vec<&str> = table.partition_keys.iter().map(|k| k.name.as_str()).collect();
    let wanted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    if given.len() != keys.len() || keys.iter().any(|k| !given.contains_key(k)) {
        return Err(Error::InvalidInput(format!(
            "table {}: partition ({}) does not match the partition keys ({})",
            table.name,
            spec.iter().map(|(k, v)| format!("{k}='{v}'")).collect::<Vec<_>>().join(", "),
            wanted.join(", ")
        )));
    }
    Ok(keys.iter().map(|k| given[k].to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_create_table() {
        let sql = "CREATE EXTERNAL TABLE IF NOT EXISTS web.logs (
              ip string COMMENT 'client', bytes bigint, tags array<struct<k:string,v:int>>, price decimal(10, 2))
            PARTITIONED BY (year string, month int)
            ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
            LOCATION 's3://bucket/logs/'
            TBLPROPERTIES ('has_encrypted_data' = 'false', 'skip.header.line.count' = '0')";
        let Some(AthenaStatement::CreateTable { database, table, if_not_exists }) = parse(sql).unwrap() else {
            panic!("not a CREATE TABLE")
        };
        assert!(if_not_exists);
        assert_eq!(database.as_deref(), Some("web"));
        let sd = table.storage_descriptor.as_ref().unwrap();
        let types: Vec<&str> = sd.columns.iter().map(|c| c.type_name.as_str()).collect();
        assert_eq!(types, ["string", "bigint", "array<struct<k:string,v:int>>", "decimal(10,2)"]);
        assert_eq!(sd.columns[0].comment.as_deref(), Some("client"));
        assert_eq!(table.partition_keys[1].type_name, "int");
        assert_eq!(sd.location.as_deref(), Some("s3://bucket/logs/"));
        let serde = sd.serde_info.as_ref().unwrap();
        assert_eq!(serde.serialization_library.as_deref(), Some("org.openx.data.jsonserde.JsonSerDe"));
        assert_eq!(table.parameters["skip.header.line.count"], "0");
    }

    #[test]
    fn regexes_are_unescaped_as_hive_does() {
        assert_eq!(hive_unescape(r#"(-|\\[[^\\]]*\\]) (\"[^\"]*\") \d+"#), r#"(-|\[[^\]]*\]) ("[^"]*") \d+"#);
    }

    #[test]
    fn delimited_text_and_stored_as() {
        let sql = "CREATE EXTERNAL TABLE t (a int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' STORED AS TEXTFILE LOCATION 's3://b/t/'";
        let Some(AthenaStatement::CreateTable { table, .. }) = parse(sql).unwrap() else { panic!() };
        let serde = table.storage_descriptor.unwrap().serde_info.unwrap();
        assert_eq!(serde.parameters["field.delim"], "\\t");
        assert_eq!(serde.serialization_library.as_deref(), Some("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"));
    }

    #[test]
    fn partitions_and_utilities() {
        let sql = "ALTER TABLE logs ADD IF NOT EXISTS PARTITION (year='2024', month=1) LOCATION 's3://b/2024/1/' PARTITION (year='2024', month=2)";
        let Some(AthenaStatement::AddPartitions { partitions, if_not_exists, .. }) = parse(sql).unwrap() else {
            panic!()
        };
        assert!(if_not_exists);
        assert_eq!(partitions[0].0, vec![("year".to_string(), "2024".to_string()), ("month".into(), "1".into())]);
        assert_eq!(partitions[0].1.as_deref(), Some("s3://b/2024/1/"));
        assert_eq!(partitions[1].1, None);
        assert!(matches!(parse("MSCK REPAIR TABLE web.logs").unwrap(), Some(AthenaStatement::MsckRepair { .. })));
        assert_eq!(
            parse("analyze web.logs").unwrap(),
            Some(AthenaStatement::Analyze { table: (Some("web".into()), "logs".into()), columns: None })
        );
        assert_eq!(
            parse("ANALYZE TABLE logs COMPUTE STATISTICS FOR COLUMNS Status, bytes").unwrap(),
            Some(AthenaStatement::Analyze {
                table: (None, "logs".into()),
                columns: Some(vec!["status".into(), "bytes".into()])
            })
        );
        let e = parse("ANALYZE logs COMPUTE STATISTICS FOR status").unwrap_err().to_string();
        assert!(e.contains("COLUMNS") && e.contains("Column: 37"), "{e}");
        assert!(matches!(parse("show partitions logs").unwrap(), Some(AthenaStatement::ShowPartitions { .. })));
        assert!(
            matches!(parse("USE awsdatacatalog.web").unwrap(), Some(AthenaStatement::Use { database }) if database == "web")
        );
        assert_eq!(parse("SELECT 1").unwrap(), None);
        // DataFusion's own syntax stays with DataFusion
        assert_eq!(
            parse("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 'x' OPTIONS ('format.has_header' 'true')").unwrap(),
            None
        );
    }

    #[test]
    fn errors_say_where() {
        let e = parse("CREATE EXTERNAL TABLE t (a strin) LOCATION 's3://b/'").unwrap_err().to_string();
        assert!(e.contains("unknown type 'strin'"), "{e}");
        let e = parse("CREATE EXTERNAL TABLE t (a int) STORED AS AVRO LOCATION 's3://b/'").unwrap_err().to_string();
        assert!(e.contains("unsupported STORED AS AVRO") && e.contains("Line: 1"), "{e}");
        let e = parse("ALTER TABLE t ADD PARTITION year='1'").unwrap_err().to_string();
        assert!(e.contains("Expected: ("), "{e}");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{config, nested, shaped};
    use proptest::prelude::*;

    const DDL: &[&str] = &[
        "CREATE",
        "EXTERNAL",
        "TABLE",
        "DATABASE",
        "VIEW",
        "OR REPLACE",
        "IF NOT EXISTS",
        "ALTER",
        "ADD",
        "DROP",
        "PARTITION",
        "PARTITIONED BY",
        "(",
        ")",
        ",",
        "'",
        "=",
        "LOCATION",
        "'s3://b/p/'",
        "STORED AS",
        "PARQUET",
        "ORC",
        "TEXTFILE",
        "ROW FORMAT",
        "DELIMITED",
        "FIELDS TERMINATED BY",
        "SERDE",
        "WITH SERDEPROPERTIES",
        "TBLPROPERTIES",
        "MSCK REPAIR TABLE",
        "SHOW",
        "PARTITIONS",
        "COLUMNS",
        "DESCRIBE",
        "t",
        "db.t",
        "a int",
        "b string",
        "array<int>",
        "struct<",
        ">",
        "AS",
        "SELECT 1",
        "PREPARE",
        "EXECUTE",
        "USING",
        "?",
        "UNLOAD",
        "TO",
        "INSERT INTO",
        "VALUES",
        "`",
        "\"",
        ";",
    ];

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_is_parsed_or_refused(sql in "\\PC{0,200}") {
            let _ = parse(&sql);
        }

        /// DDL-shaped text: a statement, DataFusion's to read, or an error that says where.
        #[test]
        fn ddl_shaped_text_is_parsed_or_refused_with_a_position(sql in shaped(DDL, 30)) {
            if let Err(Error::Syntax(message)) = parse(&sql) {
                prop_assert!(
                    ["Line:", "end of statement", "position"].iter().any(|w| message.contains(w)),
                    "{sql}: {message}"
                );
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let column =
            format!("CREATE EXTERNAL TABLE t (a {}) LOCATION 's3://b/t/'", nested("array<", "int", ">", 100_000));
        assert!(parse(&column).is_err());
        let partition = format!("ALTER TABLE t ADD PARTITION {}", nested("(", "k='v'", ")", 100_000));
        let _ = parse(&partition);
    }
}
