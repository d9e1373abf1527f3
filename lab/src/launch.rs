//! The in-process [`Launcher`]: jobs started straight on the engine, as
//! `queuelab sweep` and `queuelab soak` (and the lab's tests) run them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use engine::{JobHandle, JobOptions};
use shared::spec::PipelineSpec;

use crate::point::{LaunchError, Launcher};

/// Starts each run on the engine in this process.
///
/// Why: on one's own machine a sweep needs no server; the options hook
/// lets the CLI apply what `queuelab run` applies (files, the built-in
/// target).
pub struct LocalLauncher {
    data_dir: PathBuf,
    prefix: String,
    configure: Box<dyn Fn(&mut JobOptions) + Send>,
    /// Runs started, for unique ids.
    started: AtomicU64,
}

impl std::fmt::Debug for LocalLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLauncher")
            .field("data_dir", &self.data_dir)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl LocalLauncher {
    /// Jobs with ids `<prefix>-<n>` and their files under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, prefix: impl Into<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            prefix: prefix.into(),
            configure: Box::new(|_| {}),
            started: AtomicU64::new(0),
        }
    }

    /// Adjusts every job's options before it starts.
    pub fn configure(mut self, f: impl Fn(&mut JobOptions) + Send + 'static) -> Self {
        self.configure = Box::new(f);
        self
    }
}

impl Launcher for LocalLauncher {
    fn launch(&mut self, spec: PipelineSpec, label: &str) -> Result<JobHandle, LaunchError> {
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let mut opts = JobOptions::new(format!("{}-{n}", self.prefix), &self.data_dir);
        (self.configure)(&mut opts);
        tracing::debug!(job = %opts.id, run = label, "lab: starting a run");
        engine::start(spec, opts).map_err(|e| LaunchError(e.to_string()))
    }
}
