//! Starting a worker thread so that it runs before the next is asked for.
//!
//! The system sets up a new thread's signal stack once the thread runs.
//! A burst of spawns against an address-space limit could otherwise take
//! the room those stacks need, and a thread refused its signal stack
//! aborts the whole process, where a refused spawn is a clean error the
//! stage answers by scaling back.

use std::thread::JoinHandle;

/// Spawns `f` on a thread named `name` and returns once that thread runs.
pub(crate) fn spawn_running<F>(name: String, f: F) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    // Why a channel: the one-shot "I am up" from the new thread, which
    // the spawner waits for (a dropped sender, if the thread dies first,
    // ends the wait as well).
    let (up, is_up) = std::sync::mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new().name(name).spawn(move || {
        fault::before_up();
        let _ = up.send(());
        f()
    })?;
    let _ = is_up.recv();
    Ok(handle)
}

/// The fault-injection point of the tests: a thread whose name starts
/// with `slow-start` is slow to come up, and says when it is.
#[cfg(test)]
mod fault {
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(super) static SLOW_ONE_UP: AtomicBool = AtomicBool::new(false);

    pub(super) fn before_up() {
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("slow-start"))
        {
            std::thread::sleep(std::time::Duration::from_millis(100));
            SLOW_ONE_UP.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(not(test))]
mod fault {
    #[inline(always)]
    pub(super) fn before_up() {}
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn a_thread_runs_before_spawn_returns() {
        let handle = spawn_running("slow-start-1".into(), || {}).unwrap();
        // Without the handshake the spawner is back long before the slow
        // thread is up.
        assert!(fault::SLOW_ONE_UP.load(Ordering::SeqCst));
        handle.join().unwrap();
    }
}
