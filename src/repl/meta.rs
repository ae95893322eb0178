//! The prompt's backslash commands: `\l`, `\dt`, `\d table`, `\use db`, `\timing`, `\format`,
//! `\cost`, `\x`, `\q`, `\?`.

use glaux_engine::OutputFormat;
use glaux_engine::glaux_catalog::Catalog;

use super::{Session, Settings};

/// What the loop does after a command.
pub enum Next {
    Prompt,
    /// The database changed: completion needs the new names.
    Refresh,
    Quit,
}

const HELP: &str = "\
  \\l               databases
  \\dt              tables of the current database
  \\d TABLE         columns of a table (db.table for another database)
  \\use DB          make DB the current database
  \\timing          show elapsed time after each query (on/off)
  \\format F        results as table, csv or json
  \\cost on|off     show bytes scanned, billed bytes and cost after each query
  \\x               vertical display of rows (on/off)
  \\q               quit (Ctrl-D too)
  \\?               this help
SQL runs when a line ends with ';'. Ctrl-C cancels a running query.";

fn on_off(arg: Option<&str>, current: bool) -> Result<bool, String> {
    match arg.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(!current),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(format!("expected on or off, not '{other}'")),
    }
}

fn print_rows(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!(" {}", padded.join(" | ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    println!("{}", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let n = rows.len();
    for row in rows {
        line(row);
    }
    println!("({n} row{})", if n == 1 { "" } else { "s" });
}

pub async fn run(command: &str, session: &Session, catalog: &dyn Catalog, settings: &mut Settings) -> Next {
    match execute(command, session, catalog, settings).await {
        Ok(next) => next,
        Err(message) => {
            eprintln!("error: {message}");
            Next::Prompt
        }
    }
}

async fn execute(
    command: &str,
    session: &Session,
    catalog: &dyn Catalog,
    settings: &mut Settings,
) -> Result<Next, String> {
    let engine = &session.engine;
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or_default();
    let arg = words.next();
    match name {
        "q" | "quit" => return Ok(Next::Quit),
        "?" | "h" | "help" => println!("{HELP}"),
        "l" => {
            let databases = catalog.list_databases().await.map_err(|e| e.to_string())?;
            let rows = databases.into_iter().map(|d| vec![d.name, d.description.unwrap_or_default()]).collect();
            print_rows(&["database", "description"], rows);
        }
        "dt" => {
            let database = arg.map(str::to_string).unwrap_or_else(|| engine.database());
            let tables = catalog.list_tables(&database).await.map_err(|e| e.to_string())?;
            let rows = tables
                .into_iter()
                .map(|t| {
                    let location = t.storage_descriptor.as_ref().and_then(|s| s.location.clone()).unwrap_or_default();
                    let keys: Vec<String> = t.partition_keys.iter().map(|k| k.name.clone()).collect();
                    vec![t.name, keys.join(", "), location]
                })
                .collect();
            print_rows(&["table", "partitioned by", "location"], rows);
        }
        "d" => {
            let target = arg.ok_or("\\d needs a table: \\d TABLE")?;
            let (database, table) = match target.split_once('.') {
                Some((d, t)) => (d.to_string(), t.to_string()),
                None => (engine.database(), target.to_string()),
            };
            let found = catalog.get_table(&database, &table).await.map_err(|e| e.to_string())?;
            let found = found.ok_or_else(|| format!("table {database}.{table} does not exist"))?;
            let stored = found.storage_descriptor.iter().flat_map(|s| s.columns.iter()).map(|c| (c, ""));
            let keys = found.partition_keys.iter().map(|c| (c, "partition key"));
            let rows = stored
                .chain(keys)
                .map(|(c, note)| vec![c.name.clone(), c.type_name.clone(), note.to_string()])
                .collect();
            print_rows(&["column", "type", ""], rows);
        }
        "use" | "c" => {
            let database = arg.ok_or("\\use needs a database: \\use DB")?;
            super::run_statement(session, &format!("USE {database}"), settings).await?;
            return Ok(Next::Refresh);
        }
        "timing" => {
            settings.timing = on_off(arg, settings.timing)?;
            println!("timing is {}", if settings.timing { "on" } else { "off" });
        }
        "cost" => {
            settings.cost = on_off(arg, settings.cost)?;
            println!("cost is {}", if settings.cost { "on" } else { "off" });
        }
        "x" => {
            settings.vertical = on_off(arg, settings.vertical)?;
            println!("vertical display is {}", if settings.vertical { "on" } else { "off" });
        }
        "format" => {
            let format = arg.ok_or("\\format needs table, csv or json")?;
            settings.format = format.parse::<OutputFormat>().map_err(|e| e.to_string())?;
            println!("results as {}", format.to_ascii_lowercase());
        }
        other => return Err(format!("unknown command \\{other} (\\? lists them)")),
    }
    Ok(Next::Prompt)
}
