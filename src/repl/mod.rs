//! `glaux repl` (and plain `glaux` on a terminal): an interactive prompt with line editing,
//! history, completion from the catalog, aligned results, a progress line and Ctrl-C to cancel.

mod helper;
mod meta;
mod render;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::glaux_catalog::Catalog;
use glaux_engine::{
    Engine, OutputFormat, QueryExecutionContext, QueryRuntime, StartQueryExecution, StatementType, human_bytes,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use crate::warehouse::SessionArgs;
use helper::{Helper, Names};

#[derive(Args, Clone)]
pub struct ReplArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// Where the prompt's history is kept between sessions.
    #[arg(long, env = "GLAUX_HISTORY_FILE")]
    history_file: Option<PathBuf>,
}

impl ReplArgs {
    /// The settings of plain `glaux`: everything from the environment or its defaults.
    pub fn from_env() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: ReplArgs,
        }
        <Only as clap::Parser>::parse_from(["glaux"]).args
    }
}

/// What the prompt remembers between statements.
pub(crate) struct Settings {
    pub format: OutputFormat,
    pub vertical: bool,
    pub timing: bool,
    pub cost: bool,
}

/// The engine and the threads its queries run on, apart from the prompt's own so that a heavy
/// query never holds up the progress line or Ctrl-C.
pub(crate) struct Session {
    pub engine: Arc<Engine>,
    pub queries: QueryRuntime,
}

/// Queries running longer than this get a progress line.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

pub async fn run(args: ReplArgs) -> Result<(), String> {
    let (engine, catalog) = args.session.engine("repl").await?;
    let session = Session { engine: Arc::new(engine), queries: QueryRuntime::start(0).map_err(|e| e.to_string())? };
    let engine = Arc::clone(&session.engine);
    let names = Names::default();
    names.refresh(catalog.as_ref(), &engine.database()).await;
    let config = Config::builder().auto_add_history(false).max_history_size(10_000).map_err(|e| e.to_string())?.build();
    let mut editor: Editor<Helper, FileHistory> = Editor::with_config(config).map_err(|e| e.to_string())?;
    editor.set_helper(Some(Helper::new(names.clone())));
    let history =
        args.history_file.clone().or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".glaux_history")));
    if let Some(file) = &history
        && file.exists()
    {
        editor.load_history(file).map_err(|e| format!("cannot read the history {}: {e}", file.display()))?;
    }
    println!("glaux {} — SQL over files in S3 or on disk. \\? for help, \\q to quit.", env!("CARGO_PKG_VERSION"));
    let mut settings = Settings { format: OutputFormat::Table, vertical: false, timing: true, cost: true };
    loop {
        let prompt = format!("glaux:{}> ", engine.database());
        let line = tokio::task::block_in_place(|| editor.readline(&prompt));
        let input = match line {
            Ok(text) => text,
            // Ctrl-C at the prompt drops what was typed; Ctrl-D leaves
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("cannot read the prompt: {e}")),
        };
        let input = input.trim();
        if input.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(input);
        if let Some(file) = &history {
            // saved after every entry so that a killed session keeps what it had
            let _ = editor.save_history(file);
        }
        if let Some(command) = input.strip_prefix('\\') {
            match meta::run(command, &session, catalog.as_ref(), &mut settings).await {
                meta::Next::Quit => break,
                meta::Next::Refresh => names.refresh(catalog.as_ref(), &engine.database()).await,
                meta::Next::Prompt => {}
            }
            continue;
        }
        let statements = match engine.split_statements(input) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                continue;
            }
        };
        let mut changed_catalog = false;
        for statement in statements {
            match run_statement(&session, &statement, &settings).await {
                Ok(kind) => changed_catalog |= kind == StatementType::Ddl,
                // the first failure stops the rest of the line, as a script would
                Err(e) => {
                    eprintln!("error: {e}");
                    break;
                }
            }
        }
        if changed_catalog {
            names.refresh(catalog.as_ref(), &engine.database()).await;
        }
    }
    if let Some(file) = &history {
        editor.save_history(file).map_err(|e| format!("cannot save the history {}: {e}", file.display()))?;
    }
    Ok(())
}

/// Runs one statement with a progress line and Ctrl-C to cancel, then prints its rows and cost.
pub(crate) async fn run_statement(session: &Session, sql: &str, settings: &Settings) -> Result<StatementType, String> {
    let engine = &session.engine;
    let request = StartQueryExecution {
        query_string: sql.to_string(),
        query_execution_context: Some(QueryExecutionContext { database: None, catalog: Some("AwsDataCatalog".into()) }),
        work_group: Some(engine.config().work_group.clone()),
        ..Default::default()
    };
    let started = Instant::now();
    // planned on the query threads, so what the plan spawns runs there too
    let start = {
        let (engine, request) = (Arc::clone(engine), request.clone());
        session.queries.run(async move { engine.start(&request).await }).await.map_err(|e| e.to_string())?
    };
    let mut query = start.map_err(|f| f.error.to_string())?;
    let schema = query.schema().filter(|s| !s.fields().is_empty());
    let mut batches: Vec<RecordBatch> = vec![];
    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    // one listener for the whole run: a new one at each turn of the loop missed a Ctrl-C that came
    // between a batch or a tick and the next turn (a loaded machine let a query run on to its end)
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let outcome = loop {
        tokio::select! {
            next = query.next_batch() => match next {
                Some(Ok(batch)) => batches.push(batch),
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
            _ = &mut ctrl_c => {
                progress.finish_and_clear();
                let execution = query.cancel("Query was cancelled by its user (Ctrl-C)");
                let s = &execution.statistics;
                eprintln!("cancelled after {:.1} s; scanned {}, billed {}, cost ${:.8}",
                    started.elapsed().as_secs_f64(), human_bytes(s.data_scanned_in_bytes), human_bytes(s.billed_bytes), s.cost_usd);
                return Ok(StatementType::Dml);
            }
            _ = tick.tick() => {
                if started.elapsed() >= PROGRESS_AFTER {
                    progress.set_message(format!("running {:.1} s, scanned {}", started.elapsed().as_secs_f64(), human_bytes(query.bytes_scanned())));
                    progress.tick();
                }
            }
        }
    };
    progress.finish_and_clear();
    if let Err(error) = outcome {
        return Err(query.fail(error).error.to_string());
    }
    let execution = query.succeed();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if let Some(schema) = schema {
        render::print(&schema, &batches, settings).map_err(|e| e.to_string())?;
    }
    for warning in &execution.warnings {
        eprintln!("warning: {warning}");
    }
    let s = &execution.statistics;
    let mut parts = vec![format!("{rows} row{}", if rows == 1 { "" } else { "s" })];
    if settings.timing {
        parts.push(format!("{:.3} s", started.elapsed().as_secs_f64()));
    }
    if settings.cost && execution.statement_type != StatementType::Ddl {
        parts.push(format!(
            "scanned {}, billed {}, cost ${:.8}",
            human_bytes(s.data_scanned_in_bytes),
            human_bytes(s.billed_bytes),
            s.cost_usd
        ));
    }
    println!("({})", parts.join("; "));
    Ok(execution.statement_type)
}

/// Names the completer offers, from the catalog.
pub(crate) async fn catalog_names(catalog: &dyn Catalog, database: &str) -> helper::NameLists {
    let databases: Vec<String> =
        catalog.list_databases().await.unwrap_or_default().into_iter().map(|d| d.name).collect();
    let tables = catalog.list_tables(database).await.unwrap_or_default();
    let mut columns: Vec<String> = tables
        .iter()
        .flat_map(|t| {
            let stored = t.storage_descriptor.iter().flat_map(|sd| sd.columns.iter());
            stored.chain(t.partition_keys.iter()).map(|c| c.name.clone())
        })
        .collect();
    columns.sort();
    columns.dedup();
    (databases, tables.into_iter().map(|t| t.name).collect(), columns)
}
