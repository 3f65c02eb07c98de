//! What every process shares, `serve` or a single role: the stop signal and a processor
//! running alongside the HTTP port.

use anyhow::anyhow;
use clicktrail_api::Lifecycle;
use clicktrail_processor::pipeline::PipelineError;
use std::future::Future;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A processor running in this process.
pub struct ProcessorTask {
    stop: CancellationToken,
    exited: CancellationToken,
    task: JoinHandle<Result<Result<(), PipelineError>, tokio::task::JoinError>>,
}

impl ProcessorTask {
    /// Spawns the processor `run(stop)`. Should it end on its own, the process shuts down:
    /// nothing else would stop it, and a processor that cannot go on must not look healthy.
    /// A panic counts as ending: it runs in a task of its own whose end is always observed.
    pub fn spawn<F>(run: impl FnOnce(CancellationToken) -> F, lifecycle: &Lifecycle) -> Self
    where
        F: Future<Output = Result<(), PipelineError>> + Send + 'static,
    {
        let (stop, exited) = (CancellationToken::new(), CancellationToken::new());
        let inner = tokio::spawn(run(stop.clone()));
        let task = tokio::spawn({
            let (exited, lifecycle) = (exited.clone(), lifecycle.clone());
            async move {
                let outcome = inner.await;
                if !matches!(outcome, Ok(Ok(()))) {
                    tracing::error!("the processor stopped on its own; shutting down");
                }
                exited.cancel();
                lifecycle.shutdown();
                outcome
            }
        });
        ProcessorTask { stop, exited, task }
    }

    /// Stops it once its last batch is written and committed; an error if it had stopped
    /// before or failed.
    pub async fn finish(self) -> anyhow::Result<()> {
        let failed_early = self.exited.is_cancelled();
        self.stop.cancel();
        let reason = match self.task.await {
            Ok(Ok(Ok(()))) if !failed_early => return Ok(()),
            Ok(Ok(Ok(()))) => "it returned before shutdown".to_string(),
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(e)) | Err(e) => format!("it panicked: {e}"),
        };
        Err(anyhow!("the processor stopped: {reason}"))
    }
}
