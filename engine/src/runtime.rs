//! The engine's dedicated tokio runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why the engine's runtime could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `workers` must be at least 1.
    #[error("the engine runtime needs at least one worker thread")]
    NoWorkers,
    /// The OS refused to create the runtime's threads or its I/O driver.
    #[error("could not start the engine runtime: {0}")]
    Io(#[from] std::io::Error),
}

/// A multi-thread tokio runtime owned by the engine, separate from any
/// runtime the caller (the server) runs on, so blocking inside a pipeline
/// never stalls the caller's tasks.
#[derive(Debug)]
pub struct EngineRuntime {
    /// `None` once shut down.
    runtime: Option<tokio::runtime::Runtime>,
}

/// Prefix of the engine runtime's worker thread names (`ql-async-0`, ...),
/// so they are easy to find in `top -H`, `/proc` and thread metrics.
#[cfg(test)]
pub const THREAD_PREFIX: &str = "ql-async";

impl EngineRuntime {
    /// Starts a runtime with `workers` worker threads, named
    /// `ql-async-<n>` (jobs name theirs with [`EngineRuntime::named`]).
    #[cfg(test)]
    pub fn new(workers: usize) -> Result<Self, RuntimeError> {
        Self::named(workers, THREAD_PREFIX)
    }

    /// Starts a runtime whose threads are named `<prefix>-<n>`.
    pub fn named(workers: usize, prefix: &str) -> Result<Self, RuntimeError> {
        if workers == 0 {
            return Err(RuntimeError::NoWorkers);
        }
        // A counter shared by the thread-name closure: names must be unique
        // and the closure runs on whichever thread spawns a worker.
        let next = Arc::new(AtomicUsize::new(0));
        let prefix = prefix.to_owned();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name_fn(move || {
                let n = next.fetch_add(1, Ordering::Relaxed);
                format!("{prefix}-{n}")
            })
            .enable_time()
            .enable_io()
            .build()?;
        tracing::debug!(workers, "engine runtime started");
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// A handle for spawning onto the engine's runtime from any thread,
    /// including from inside another runtime.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("runtime not shut down")
            .handle()
    }

    /// Shuts the runtime down, giving tasks still running up to `timeout`.
    /// Must not be called from inside an async context.
    pub fn shutdown(mut self, timeout: std::time::Duration) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(timeout);
        }
    }
}

impl Drop for EngineRuntime {
    /// Dropped without [`EngineRuntime::shutdown`] (say, a job that failed
    /// to start inside a server handler): shut down in the background,
    /// which, unlike a plain drop, is allowed inside an async context.
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_workers_is_refused() {
        assert!(matches!(
            EngineRuntime::new(0),
            Err(RuntimeError::NoWorkers)
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tasks_run_on_engine_threads_not_the_callers() {
        let engine = EngineRuntime::new(2).unwrap();
        let caller = std::thread::current().id();
        let (id, name) = engine
            .handle()
            .spawn(async {
                let t = std::thread::current();
                (t.id(), t.name().map(str::to_owned))
            })
            .await
            .unwrap();
        assert_ne!(id, caller);
        assert!(name.unwrap().starts_with(THREAD_PREFIX));
        // Dropping inside an async context is allowed.
        drop(engine);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn blocking_the_engine_does_not_block_the_caller() {
        let engine = EngineRuntime::new(1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Occupy the engine's only worker with a blocking wait: the
        // pitfall of a blocking call on an event loop.
        engine.handle().spawn(async move {
            let _ = rx.recv();
        });
        // The caller's runtime still makes progress.
        tokio::task::yield_now().await;
        let sum = tokio::spawn(async { 2 + 2 }).await.unwrap();
        assert_eq!(sum, 4);
        tx.send(()).unwrap();
        drop(engine);
    }
}
