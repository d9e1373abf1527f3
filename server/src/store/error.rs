//! What a store call can fail with, below everything else in the store
//! so its backend and its queries share it.

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// PostgreSQL said no.
    #[error("store: {0}")]
    Postgres(#[from] postgres::Error),
    /// A stored document no longer reads.
    #[error("store: corrupt record: {0}")]
    Json(#[from] serde_json::Error),
    /// The store's threads could not run the call.
    #[error("store: {0}")]
    Unavailable(String),
}
