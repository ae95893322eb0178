//! `bootstrap`: the Lambda function's executable. Builds the function once, then serves
//! events from the Runtime API until the environment is shut down.

use std::sync::Arc;

use glaux_lambda::{Function, Settings};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

// The system allocator, not the mimalloc of glaux's other binaries: with mimalloc the scans of
// `bench/run lambda` ran no faster (q1_pricing_summary 1,453 ms against 1,301) and peaked at
// 325 MB of RSS in a 256 MB function (164 MB with glibc's malloc); Lambda stops a function that
// goes over its memory.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // logs in Lambda's format (AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL)
    lambda_runtime::tracing::init_default_subscriber();
    let function = match glaux_engine::check_cpu() {
        Ok(()) => match Settings::from_env() {
            Ok(settings) => Function::start(&settings).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(message) => Err(message),
    };
    let function = Arc::new(function.inspect_err(|e| {
        lambda_runtime::tracing::error!("glaux could not start: {e}");
    }));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move {
            Ok::<Value, lambda_runtime::Error>(match function.as_ref() {
                Ok(f) => f.handle(event).await,
                // every event is answered, with the reason glaux is not working
                Err(reason) => json!({"QueryExecution": {"Status": {"State": "FAILED",
                    "StateChangeReason": format!("glaux could not start: {reason}")}}}),
            })
        }
    }))
    .await
}
