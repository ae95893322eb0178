//! glaux's end-to-end tests: the `glaux` binary and the engine against a real S3 server (moto),
//! started by scripts/test. Expected answers come from DuckDB (tests/data/generate.py).

mod catalog;
mod cluster;
mod credentials;
mod dry_run;
mod errors;
mod faults;
mod formats;
mod glue;
mod history;
mod metering;
mod repl;
mod report;
mod serve;
mod slt;
mod support;
mod workgroups;
mod writes;
