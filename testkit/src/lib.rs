//! What glaux's end-to-end tests and benchmarks share: the environment `scripts/test` sets up,
//! child processes that cannot outlive or outwait a test, a proxy that counts what S3 served,
//! and a Lambda Runtime API for the `bootstrap` binary.

pub mod child;
pub mod env;
pub mod proxy;
pub mod rng;
pub mod runtime_api;

pub use child::{Guarded, free_port, output_within};
pub use env::{Env, env, scratch};
