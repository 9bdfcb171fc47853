//! The body of every service's `main`: a multi-threaded runtime, and a failure reported through
//! `tracing` like everything else the service says.

use std::future::Future;
use std::process::ExitCode;

/// Runs `main` on a multi-threaded tokio runtime (diesel's migration harness needs one) and
/// turns its outcome into the exit code. A failure is logged as an `error` event; when it
/// happened before [`crate::init`] set up logging (a refused configuration, say), a plain JSON
/// subscriber on stderr is installed first so the reason is not lost.
pub fn run_service<F>(service: &str, main: F) -> ExitCode
where
    F: Future<Output = Result<(), Box<dyn std::error::Error>>>,
{
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| runtime.block_on(main).map_err(|e| e.to_string()));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if !tracing::dispatcher::has_been_set() {
                let _ = tracing_subscriber::fmt()
                    .json()
                    .with_writer(std::io::stderr)
                    .try_init();
            }
            tracing::error!(service, error, "service failed");
            ExitCode::FAILURE
        }
    }
}
