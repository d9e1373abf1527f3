//! How to run a job beyond its spec: its id and data directory, the
//! runtime's threads, and what the spec may touch (files, egress, listening
//! addresses).

use std::path::PathBuf;

use shared::spec::{PipelineSpec, SourceSpec, SpecError};

use crate::confine::{Files, SpecPaths};
use crate::egress::Egress;

/// How to run a job, beyond its spec.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Job id, unique within the data directory.
    pub id: String,
    /// Where the job's files (leftovers) go: `<data_dir>/jobs/<id>/`.
    pub data_dir: PathBuf,
    /// Worker threads of the job's own tokio runtime.
    pub runtime_threads: usize,
    /// Where the spec's paths may lead (anywhere, relative to the working
    /// directory, unless a server confines them).
    pub files: Files,
    /// Where the job may connect (anywhere unless a server says otherwise).
    pub egress: Egress,
    /// Whether a `tcp` source may listen on any address, or on loopback
    /// only (what a shared server allows unless told otherwise: a spec
    /// must not open the host to the network).
    pub listen_anywhere: bool,
    /// The base (`http://127.0.0.1:8080`) that `/target…` URLs in a spec
    /// are resolved against: the built-in test target of whatever runs the
    /// job. `None`: there is none, and such a spec is refused.
    pub builtin_target: Option<String>,
    /// The broker a stage's `transport = { kind = "nats" }` means when its
    /// URL is `env:QUEUELAB_NATS_URL` (else that variable is read).
    pub nats_url: Option<String>,
    /// Asked before an automatic limit starts more workers (a shared
    /// server's cap over all its jobs); `None`: only the spec's range.
    pub worker_budget: Option<std::sync::Arc<dyn crate::auto::WorkerBudget>>,
}

impl JobOptions {
    /// Options with a runtime thread per core (at least two).
    pub fn new(id: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            id: id.into(),
            data_dir: data_dir.into(),
            runtime_threads: cores.max(2),
            files: Files::default(),
            egress: Egress::default(),
            listen_anywhere: true,
            builtin_target: None,
            nats_url: None,
            worker_budget: None,
        }
    }

    /// Turns the spec's `/target…` URLs into absolute ones against
    /// [`JobOptions::builtin_target`]; each one is an error when there is
    /// no built-in target.
    pub fn resolve_builtin_target(
        &self,
        mut spec: PipelineSpec,
    ) -> Result<PipelineSpec, SpecError> {
        let base = self
            .builtin_target
            .as_deref()
            .map(|b| b.trim_end_matches('/'));
        let mut errors = Vec::new();
        for (path, url) in spec.builtin_target_urls() {
            match base {
                Some(base) => *url = format!("{base}{url}"),
                None => errors.push(shared::spec::FieldError {
                    path,
                    message: format!("`{url}`: no built-in test target runs alongside this job"),
                }),
            }
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(SpecError { errors })
        }
    }

    /// Checks what `spec` would touch against [`JobOptions::files`] and
    /// [`JobOptions::egress`]: every refusal with its field, or the
    /// resolved paths [`start`](crate::start) opens.
    pub fn check(&self, spec: &PipelineSpec) -> Result<SpecPaths, SpecError> {
        let mut errors = Vec::new();
        // `/target…` URLs are checked as what they resolve to.
        let resolved = match self.resolve_builtin_target(spec.clone()) {
            Ok(resolved) => resolved,
            Err(e) => {
                errors.extend(e.errors);
                spec.clone()
            }
        };
        let spec = &resolved;
        let paths = self
            .files
            .resolve_spec(spec)
            .map_err(|e| errors.extend(e.errors))
            .ok();
        if let Err(e) = self.egress.check_spec(spec) {
            errors.extend(e.errors);
        }
        if let SourceSpec::Tcp { bind, .. } = &spec.source
            && !self.listen_anywhere
            && !bind
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
        {
            errors.push(shared::spec::FieldError {
                path: "source.bind".into(),
                message: format!(
                    "`{bind}`: this server lets a tcp source listen on a loopback address only (127.0.0.1:PORT or [::1]:PORT); its operator can allow more with --listen-anywhere"
                ),
            });
        }
        match paths {
            Some(paths) if errors.is_empty() => Ok(paths),
            _ => Err(SpecError { errors }),
        }
    }
}
