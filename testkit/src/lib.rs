//! What glaux's end-to-end tests and benchmarks share: the environment `scripts/test` sets up,
//! child processes that cannot outlive or outwait a test, a proxy that counts what S3 served,
//! a Lambda Runtime API for the `bootstrap` binary, and `glaux worker` processes.

pub mod child;
pub mod cluster;
pub mod env;
pub mod proxy;
pub mod rng;
pub mod runtime_api;

pub use child::{Guarded, free_port, glaux_binary, output_within};
pub use cluster::{TEST_SECRET, WorkerProcesses};
pub use env::{Env, env, scratch};
