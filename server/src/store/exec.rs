//! The store's own threads. Every store call made while serving (token
//! checks, audit writes, handlers' queries, the persist loop) runs here,
//! never on the runtime's workers, where a slow query would stall every
//! request, nor on tokio's blocking pool, which other work can fill.
//!
//! A few named OS threads (`ql-store-N`) take closures from a channel and
//! send each result back through a `oneshot`. They run outside any tokio
//! runtime, so the blocking PostgreSQL client runs its queries in place
//! (see `backend::off_runtime`) instead of on a thread spawned per query.

use std::sync::Arc;

use super::{Store, StoreError};

type Task = Box<dyn FnOnce(&Store) + Send>;

/// Runs closures against the [`Store`] on its own threads. Cheap to clone;
/// the threads end when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct StoreThreads {
    tx: crossbeam_channel::Sender<Task>,
}

impl StoreThreads {
    /// Starts `threads` threads serving `store`.
    pub fn start(store: Arc<Store>, threads: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Task>();
        for i in 0..threads.max(1) {
            let (rx, store) = (rx.clone(), store.clone());
            std::thread::Builder::new()
                .name(format!("ql-store-{i}"))
                .spawn(move || {
                    while let Ok(task) = rx.recv() {
                        task(&store);
                    }
                })
                .expect("spawn a store thread");
        }
        Self { tx }
    }

    /// Runs `f` on a store thread and awaits its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Store) -> R + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move |store| {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(store)));
            // The caller may have gone (a cancelled request): nothing to do.
            let _ = done.send(out.map_err(|_| ()));
        });
        self.tx
            .send(task)
            .map_err(|_| StoreError::Unavailable("the store's threads have stopped".into()))?;
        match result.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(())) => Err(StoreError::Unavailable("a store call panicked".into())),
            Err(_) => Err(StoreError::Unavailable(
                "the store's threads have stopped".into(),
            )),
        }
    }

    /// [`StoreThreads::run`] for a call that may fail itself.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(f).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn calls_run_on_named_threads_outside_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("q.db")).unwrap());
        let threads = StoreThreads::start(store, 2);
        let (name, in_runtime) = threads
            .run(|_| {
                (
                    std::thread::current().name().map(str::to_owned),
                    tokio::runtime::Handle::try_current().is_ok(),
                )
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("ql-store-"));
        assert!(!in_runtime, "no runtime on a store thread");
        threads
            .call(|s| s.add_token("t", "viewer", "h"))
            .await
            .unwrap();
        assert_eq!(
            threads.call(|s| s.find_token("h")).await.unwrap(),
            Some(("t".into(), "viewer".into()))
        );
        let panicked = threads.run(|_| -> u32 { panic!("boom") }).await;
        assert!(matches!(panicked, Err(StoreError::Unavailable(_))));
        assert!(threads.run(|_| 1).await.is_ok(), "a panic kills no thread");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn postgres_queries_run_in_place_on_the_store_threads() {
        let db = crate::store::tests::PgDb::new();
        let store = Arc::new(Store::open_postgres(&db.url).unwrap());
        let threads = StoreThreads::start(store, 2);
        threads
            .call(|s| s.add_token("pg", "admin", "hp"))
            .await
            .unwrap();
        // No runtime there, so `off_runtime` spawns no thread per query.
        let (found, in_runtime) = threads
            .run(|s| {
                (
                    s.find_token("hp"),
                    tokio::runtime::Handle::try_current().is_ok(),
                )
            })
            .await
            .unwrap();
        assert_eq!(found.unwrap(), Some(("pg".into(), "admin".into())));
        assert!(!in_runtime);
        drop(threads);
    }
}
