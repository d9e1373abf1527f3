//! One-shot flags that both worlds can wait on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// A one-way switch (stop the source, abort the job) that threads can poll
/// cheaply, park on with a timeout, and async tasks can await: a plain
/// atomic for the hot path, a condvar to wake sleeping threads, and a
/// cancellation token for tasks.
#[derive(Debug, Default)]
pub struct Flag {
    set: AtomicBool,
    lock: Mutex<bool>,
    cv: Condvar,
    token: CancellationToken,
}

impl Flag {
    /// A flag not set yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the flag was set (one relaxed load: fine per item).
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// Sets the flag and wakes every waiter; returns false if it was set already.
    pub fn set(&self) -> bool {
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let first = !*guard;
        *guard = true;
        self.set.store(true, Ordering::Relaxed);
        self.cv.notify_all();
        self.token.cancel();
        first
    }

    /// Parks the calling thread for `dur` or until the flag is set;
    /// returns true if the flag is set.
    pub fn wait_timeout(&self, dur: Duration) -> bool {
        let deadline = Instant::now() + dur;
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*guard {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .cv
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Resolves when the flag is set.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waiters_wake_when_set() {
        let flag = Arc::new(Flag::new());
        assert!(!flag.wait_timeout(Duration::from_millis(1)));
        let f = flag.clone();
        let waiter = std::thread::spawn(move || f.wait_timeout(Duration::from_secs(60)));
        assert!(flag.set());
        assert!(!flag.set(), "second set reports it was already set");
        assert!(waiter.join().unwrap());
        assert!(flag.is_set());
    }
}
