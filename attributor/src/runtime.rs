//! Threads that own a runtime: the service's background loops (attribution workers, the
//! shipper, the click journaler, dedup look-ups, bloom sync) each run on an OS thread of
//! their own with a single-threaded tokio runtime, so that their blocking work (fsync,
//! waiting on a channel) never occupies the HTTP tier's threads, and their ClickHouse
//! connections stay with the runtime that opened them.

use std::future::Future;
use std::thread::JoinHandle;

/// Runs the future `task` makes on a new thread named `name`, with its own current-thread
/// runtime, and returns the thread's handle.
pub fn spawn_with_runtime<F, Fut>(name: &str, task: F) -> JoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a current-thread runtime")
                .block_on(task())
        })
        .expect("spawning a background thread")
}
