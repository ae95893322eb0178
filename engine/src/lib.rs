//! glaux-engine: SQL over files in S3 or on disk, with an exact scan meter and Athena's query model.
#![deny(clippy::clone_on_ref_ptr)]

mod athena;
mod billing;
mod bucketing;
mod build_side;
mod catalog;
mod cheap_conjuncts;
mod clustered_aggregate;
mod compression;
mod config;
mod decimal_arithmetic;
mod distributed;
mod dry_run;
mod error;
mod execution;
mod expression_rewrite;
mod few_groups;
mod filter_output;
mod filter_statistics;
mod formats;
#[cfg(test)]
mod fuzz;
mod gate;
mod history;
mod integer_casts;
mod join_filters;
mod join_key_bitmap;
mod join_order;
mod join_statistics;
mod like_segments;
mod merged_topk;
mod model;
mod not_in_nulls;
mod output;
mod prepared;
mod query;
mod runtime;
mod script;
mod session;
mod shared_subplans;
mod short_circuit;
mod startup;
mod storage;
mod string_equality;
#[cfg(test)]
mod test_support;
mod url_tables;
mod workgroups;
mod write;
mod write_orc;

pub use athena::literal as sql_literal;
pub use athena::run::percent_decode;
pub use billing::Pricing;
pub use config::EngineConfig;
pub use distributed::{
    Cluster, DEFAULT_DISTRIBUTE_ABOVE, GlauxCodec, GlauxWorker, SECRET_HEADER, SECRET_VARIABLE, WorkerConfig,
    WorkerSource, Workers, cluster_secret, new_worker, serve_worker,
};
pub use error::{Error, ErrorKind, Result};
pub use execution::{Engine, Failure, Origin};
pub use formats::orc::{OrcFormat, OrcFormatFactory};
pub use gate::{StatementPolicy, is_under, real_path};
pub use history::{HistoryEntry, QueryHistory, TableRead};
pub use model::{
    AthenaError, QueryExecution, QueryExecutionContext, QueryExecutionState, QueryExecutionStatistics,
    QueryExecutionStatus, ResultConfiguration, StartQueryExecution, StatementType,
};
pub use output::{OutputFormat, ResultWriter, human_bytes};
pub use prepared::{PreparedStatement, PreparedStatements, Put};
pub use query::Query;
pub use runtime::QueryRuntime;
pub use session::tune as tune_session;
pub use session::{Session, SessionChange};
pub use startup::{build_cpu_features, check_cpu, without_transparent_huge_pages};
pub use storage::{MeteredStore, S3Settings, ScanMeter, StoreRegistry};
pub use workgroups::{PRIMARY, WorkGroup, WorkGroupConfiguration, WorkGroups};

pub use chrono;
pub use glaux_catalog;

/// Arrow and DataFusion as glaux uses them, so front ends need no direct dependency.
pub use datafusion;
pub use datafusion::arrow;
