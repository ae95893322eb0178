//! Settings of the generated-input tests (proptest): how many cases, from which seed.
//!
//! The suite runs a few hundred cases per target from a fixed seed, so a run is repeatable;
//! `bench/run fuzz` runs a million per target (`GLAUX_FUZZ_CASES`) from a seed of its choosing
//! (`GLAUX_FUZZ_SEED`). A case that fails is printed shrunk, ready to become a regression test.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The runner's settings, from `GLAUX_FUZZ_CASES` (default 256) and `GLAUX_FUZZ_SEED`.
pub(crate) fn config() -> Config {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
    Config {
        cases: var("GLAUX_FUZZ_CASES").unwrap_or(256) as u32,
        rng_seed: RngSeed::Fixed(var("GLAUX_FUZZ_SEED").unwrap_or(20261129)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text made of `pieces` and short words, `0..len` of them joined by spaces or nothing: the
/// shape of the input a parser expects, broken in the ways people break it.
pub(crate) fn shaped(pieces: &'static [&'static str], len: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(str::to_string),
        1 => "[a-zA-Z0-9_]{1,6}",
        1 => "\\PC{1,3}",
    ];
    (proptest::collection::vec(piece, 0..len), any::<bool>())
        .prop_map(|(parts, spaced)| parts.join(if spaced { " " } else { "" }))
}

/// A nesting `depth` deep: `open` repeated, `inner`, `close` repeated.
pub(crate) fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// Data files broken as storage and writers break them — cut short, bits flipped, replaced by
/// garbage — read through a catalog table: an error, or rows, never a panic or a hang.
mod corrupted_files {
    use std::sync::{Arc, OnceLock};

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::config;
    use crate::{Engine, EngineConfig, S3Settings, StartQueryExecution};

    const FORMATS: [&str; 5] = ["parquet", "orc", "csv", "csv.gz", "json"];

    /// A valid file of each format: a few hundred rows of a number and a text column.
    fn base(format: &str) -> Vec<u8> {
        let ids: Vec<i64> = (0..300).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
        let csv = ids.iter().zip(&names).map(|(i, n)| format!("{i},{n}\n")).collect::<String>().into_bytes();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(ids.clone())), Arc::new(StringArray::from(names.clone()))],
        )
        .unwrap();
        match format {
            "parquet" => {
                let mut out = vec![];
                let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
                writer.write(&batch).unwrap();
                writer.close().unwrap();
                out
            }
            "orc" => {
                let mut out = vec![];
                let mut writer = orc_rust::arrow_writer::ArrowWriterBuilder::new(&mut out, schema).try_build().unwrap();
                writer.write(&batch).unwrap();
                writer.close().unwrap();
                out
            }
            "csv.gz" => {
                use std::io::Write;
                let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
                gz.write_all(&csv).unwrap();
                gz.finish().unwrap()
            }
            "csv" => csv,
            _ => ids
                .iter()
                .zip(&names)
                .map(|(i, n)| format!("{{\"id\":{i},\"name\":\"{n}\"}}\n"))
                .collect::<String>()
                .into_bytes(),
        }
    }

    /// The table of a format: `csv.gz` → `t_csv_gz`.
    fn table(format: &str) -> String {
        format.replace('.', "_")
    }

    struct Fixture {
        runtime: tokio::runtime::Runtime,
        engine: Engine,
        dir: std::path::PathBuf,
        bases: Vec<Vec<u8>>,
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let dir = std::env::temp_dir().join(format!("glaux-it-corrupt-{}", std::process::id()));
            let engine = Engine::new(EngineConfig {
                s3: S3Settings::from_lookup(|_| None),
                allow_local_files: true,
                ..Default::default()
            })
            .unwrap();
            for format in FORMATS {
                std::fs::create_dir_all(dir.join(format)).unwrap();
                std::fs::write(dir.join(format).join(format!("data.{format}")), base(format)).unwrap();
                let (stored, options) = match format {
                    "csv" => ("CSV", " OPTIONS ('format.has_header' 'false')"),
                    "csv.gz" => ("CSV", " OPTIONS ('format.has_header' 'false', 'format.compression' 'gzip')"),
                    "json" => ("JSON", ""),
                    "orc" => ("ORC", ""),
                    _ => ("PARQUET", ""),
                };
                let ddl = format!(
                    "CREATE EXTERNAL TABLE t_{} (id BIGINT, name VARCHAR) STORED AS {stored} LOCATION '{}/'{options}",
                    table(format),
                    dir.join(format).display()
                );
                let request = StartQueryExecution { query_string: ddl, ..Default::default() };
                runtime.block_on(engine.run(&request)).map_err(|f| f.error.to_string()).unwrap();
                // whole, the file reads: what the cases break is a file that works
                let count = StartQueryExecution {
                    query_string: format!("SELECT count(*) FROM t_{}", table(format)),
                    ..Default::default()
                };
                let (batches, _) = runtime.block_on(engine.run(&count)).map_err(|f| f.error.to_string()).unwrap();
                let n = datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap();
                assert_eq!(n, "300", "{format}");
            }
            Fixture { runtime, engine, dir, bases: FORMATS.iter().map(|f| base(f)).collect() }
        })
    }

    /// A query per case makes this the slowest target (about 45 minutes for a million on two
    /// cores): `GLAUX_FUZZ_FILE_CASES` sets its own count, for shorter runs.
    fn file_config() -> proptest::test_runner::Config {
        let cases = std::env::var("GLAUX_FUZZ_FILE_CASES").ok().and_then(|v| v.trim().parse().ok());
        proptest::test_runner::Config { cases: cases.unwrap_or(config().cases), ..config() }
    }

    proptest! {
        #![proptest_config(file_config())]

        #[test]
        fn a_broken_file_reads_or_fails_cleanly(
            format in 0..FORMATS.len(),
            cut in any::<Index>(),
            flips in proptest::collection::vec((any::<Index>(), 1..=255u8), 0..6),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
            how in 0..3u8,
        ) {
            let f = fixture();
            let mut bytes = f.bases[format].clone();
            match how {
                0 => bytes.truncate(cut.index(bytes.len() + 1)),
                1 => for (at, mask) in &flips { let i = at.index(bytes.len()); bytes[i] ^= mask },
                _ => { let at = cut.index(bytes.len() + 1); bytes.splice(at.., garbage.iter().copied()); }
            }
            let name = FORMATS[format];
            let file = f.dir.join(name).join(format!("data.{name}"));
            std::fs::write(&file, &bytes).unwrap();
            let request = StartQueryExecution {
                query_string: format!("SELECT count(*), max(id), max(name) FROM t_{}", table(name)),
                ..Default::default()
            };
            let outcome = f.runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(30), f.engine.run(&request)).await
            });
            prop_assert!(outcome.is_ok(), "{}: a read that hung", FORMATS[format]);
            if let Ok(Err(failure)) = outcome {
                let message = failure.error.to_string();
                prop_assert!(!message.contains("panic"), "{name}, {how}: {message}");
                prop_assert!(!message.is_empty());
            }
        }
    }
}
