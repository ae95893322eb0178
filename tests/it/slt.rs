//! Runs every tests/slt/*.slt file against an engine with a fresh local catalog and the test S3
//! server. `${BUCKET}` in a file is the test bucket, `${RUN}` a token of this run.

use std::sync::Arc;

use async_trait::async_trait;
use glaux_engine::arrow::array::Array;
use glaux_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use glaux_engine::glaux_catalog::LocalCatalog;
use glaux_engine::{Engine, EngineConfig, StartQueryExecution};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::support;

struct Glaux {
    engine: Engine,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SltError(String);

#[async_trait]
impl sqllogictest::AsyncDB for Glaux {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let request = StartQueryExecution { query_string: sql.into(), ..Default::default() };
        let (batches, _) = self.engine.run(&request).await.map_err(|f| SltError(f.error.to_string()))?;
        let width = batches.first().map(|b| b.num_columns()).unwrap_or(0);
        if width == 0 {
            return Ok(DBOutput::StatementComplete(0));
        }
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = vec![];
        for batch in &batches {
            let formatters: Vec<_> =
                batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .zip(batch.columns())
                        .map(|(f, c)| {
                            let v = f.value(row).to_string();
                            // empty strings would vanish in the file format
                            if c.is_valid(row) && v.is_empty() { "(empty)".into() } else { v }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; width], rows })
    }

    async fn shutdown(&mut self) {}
}

fn engine(endpoint: &str) -> Engine {
    let s3 = support::s3_settings(endpoint);
    let catalog = LocalCatalog::open(support::scratch("slt")).unwrap();
    Engine::new(EngineConfig { s3, catalog: Some(Arc::new(catalog)), ..Default::default() }).unwrap()
}

/// Runs one file of tests/slt against a fresh engine and catalog.
async fn run_file(name: &str) {
    let env = support::env();
    let file = support::repo_path("tests/slt").join(name);
    // `${RUN}` differs from run to run: what a file writes never meets an earlier run's objects
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    let text = std::fs::read_to_string(&file).unwrap().replace("${BUCKET}", &env.bucket).replace("${RUN}", &run);
    let resolved = support::scratch("slt-file").join(name);
    std::fs::write(&resolved, text).unwrap();
    let endpoint = env.endpoint.clone();
    let mut runner = sqllogictest::Runner::new(move || {
        let endpoint = endpoint.clone();
        async move { Ok(Glaux { engine: engine(&endpoint) }) }
    });
    if let Err(e) = runner.run_file_async(&resolved).await {
        panic!("{}: {e}", file.display());
    }
}

/// One test per file, so each is reported on its own.
macro_rules! slt_files {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                run_file($file).await;
            }
        )*

        /// Every file in tests/slt has its test above.
        #[test]
        fn every_slt_file_has_a_test() {
            let dir = crate::support::repo_path("tests/slt");
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".slt"))
                .collect();
            on_disk.sort();
            let mut listed = vec![$($file.to_string()),*];
            listed.sort();
            assert_eq!(on_disk, listed, "add the new .slt file to slt_files! in tests/it/slt.rs");
        }
    };
}

slt_files! {
    alter => "alter.slt",
    analyze => "analyze.slt",
    casts => "casts.slt",
    catalog => "catalog.slt",
    found => "found.slt",
    join_keys => "join_keys.slt",
    like => "like.slt",
    partitions => "partitions.slt",
    projection => "projection.slt",
    session => "session.slt",
    views => "views.slt",
    writes => "writes.slt",
    weblogs => "weblogs.slt",
}
