//! How a source fails: at open ([`OpenError`]) or while it runs
//! ([`RunError`], [`OffsetSaveError`]). Below the sources, which return
//! them, and the dispatch in `source`, which passes them on.

use std::path::PathBuf;

use crate::confine::UncheckedPath;
use crate::fail::Failure;

/// Why a source could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    /// Its file was never checked against the files policy.
    #[error("source file {path}: {error}")]
    Unchecked {
        /// The file, as the spec names it.
        path: String,
        /// The refusal.
        error: UncheckedPath,
    },
    /// Its offset file was never checked against the files policy.
    #[error("source offset file: {0}")]
    UncheckedOffset(UncheckedPath),
    /// Its file or port could not be opened.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// Why a running source stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// Its file could not be read.
    #[error("reading source file: {0}")]
    Read(std::io::Error),
    /// Its offset could not be saved.
    #[error(transparent)]
    SaveOffset(#[from] OffsetSaveError),
}

/// Why a file source's offset could not be saved.
#[derive(Debug, thiserror::Error)]
#[error("cannot save the offset to {}: {error}", path.display())]
pub(crate) struct OffsetSaveError {
    /// The offset file.
    pub(super) path: PathBuf,
    /// What the file system said.
    #[source]
    pub(super) error: std::io::Error,
}
