//! glaux-lambda: glaux as an AWS Lambda function. A direct invocation is a StartQueryExecution
//! event answered with the query's record and rows; a Function URL or API Gateway event goes
//! to the same Athena API router `glaux serve` runs. The engine is built once per cold start.

mod error;
mod function;
#[cfg(test)]
mod fuzz;
mod http;
mod settings;

pub use error::{Error, Result};
pub use function::Function;
pub use settings::Settings;
