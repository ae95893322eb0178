//! Decoders that panic on corrupt input, contained: a panic while a file is read ends that
//! file's stream with an error that names the file, instead of a "task panicked" failure.
//!
//! orc-rust trusts the lengths a file states: a flipped bit in a string column's length stream
//! makes it ask for more memory than exists ("capacity overflow"). Found by the corrupted-files
//! fuzz target (`engine/src/fuzz.rs`).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use datafusion::error::{DataFusionError, Result};
use futures::{FutureExt, Stream, StreamExt};

/// What a panic said, as far as it can be told.
fn said(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

fn corrupt(error: &dyn Fn(String) -> DataFusionError, panic: &(dyn Any + Send)) -> DataFusionError {
    error(format!("the file is corrupt: its reader failed ({})", said(panic)))
}

/// `future`, with a panic in it turned into `error(reason)`.
pub async fn future<T>(
    future: impl Future<Output = Result<T>>,
    error: impl Fn(String) -> DataFusionError,
) -> Result<T> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => Err(corrupt(&error, panic.as_ref())),
    }
}

/// `inner`, ended by `error(reason)` at its first panic (and not polled again).
pub struct Contained<S, F> {
    inner: Pin<Box<S>>,
    error: F,
    done: bool,
}

impl<S, F> Contained<S, F> {
    pub fn new(inner: S, error: F) -> Self {
        Self { inner: Box::pin(inner), error, done: false }
    }
}

impl<T, S: Stream<Item = Result<T>>, F: Fn(String) -> DataFusionError + Unpin> Stream for Contained<S, F> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match std::panic::catch_unwind(AssertUnwindSafe(|| this.inner.poll_next_unpin(cx))) {
            Ok(polled) => polled,
            Err(panic) => {
                this.done = true;
                Poll::Ready(Some(Err(corrupt(&this.error, panic.as_ref()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(reason: String) -> DataFusionError {
        DataFusionError::Execution(format!("ORC object 'x.orc': {reason}"))
    }

    #[tokio::test]
    async fn a_decoder_that_panics_ends_its_stream_with_an_error_naming_the_file() {
        let batches = futures::stream::iter([1, 2, 3]).map(|n: usize| {
            if n == 2 {
                // what orc-rust does with a length read from a corrupt file
                let _ = Vec::<u8>::with_capacity(usize::MAX);
            }
            Ok(n)
        });
        let got: Vec<Result<usize>> = Contained::new(batches, named).collect().await;
        assert_eq!(got.len(), 2, "the stream ends at the panic");
        assert_eq!(*got[0].as_ref().unwrap(), 1);
        let err = got[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("x.orc") && err.contains("corrupt") && err.contains("capacity overflow"), "{err}");
        let failed = future(async { Err::<(), _>(named("x".into())).map(|_| panic!("unreachable")) }, named).await;
        assert!(failed.is_err());
        let panicked = future(async { Ok::<u8, DataFusionError>(u8::try_from(300).expect("a byte")) }, named).await;
        assert!(panicked.unwrap_err().to_string().contains("a byte"));
    }
}
