//! Athena's SQL beyond DataFusion's: DDL and utility statements that go to the catalog.

mod analyze;
mod cursor;
mod params;
mod parse;
pub(crate) mod run;
mod writes;

pub use params::{bind, literal};
pub use parse::{AthenaStatement, parse};
pub use run::Runner;
pub use writes::WriteStats;
