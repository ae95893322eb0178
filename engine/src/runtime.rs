//! A tokio runtime of its own for query work: a CPU-heavy query keeps its threads busy without
//! starving the threads of the front end (HTTP polls, cancels and health checks in a server;
//! the progress line and Ctrl-C at the prompt).

use std::future::Future;

use tokio::runtime::{Builder, Handle};

use crate::error::{Error, Result};

/// Where queries run. Its runtime lives on a thread of its own for the life of the process, so
/// dropping this handle (even from async code) never tears a runtime down mid-request.
#[derive(Clone)]
pub struct QueryRuntime {
    handle: Handle,
}

impl QueryRuntime {
    /// A runtime with `threads` workers (the machine's cores when 0).
    pub fn start(threads: usize) -> Result<Self> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { threads };
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("glaux-queries".into())
            .spawn(move || {
                let runtime =
                    Builder::new_multi_thread().worker_threads(threads).thread_name("glaux-query").enable_all().build();
                match runtime {
                    Ok(runtime) => {
                        let _ = sender.send(Ok(runtime.handle().clone()));
                        runtime.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e));
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the query threads: {e}")))?;
        let handle = receiver
            .recv()
            .map_err(|e| Error::Internal(format!("the query threads did not start: {e}")))?
            .map_err(|e| Error::Internal(format!("cannot start the query runtime: {e}")))?;
        Ok(Self { handle })
    }

    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        self.handle.spawn(future);
    }

    /// Runs `future` on the query threads and waits for it from the caller's. What it spawns
    /// (DataFusion's partitions, the task that drives a query's stream) stays on those threads.
    pub async fn run<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> Result<T> {
        self.handle.spawn(future).await.map_err(|e| Error::Internal(format!("a query task failed: {e}")))
    }
}
