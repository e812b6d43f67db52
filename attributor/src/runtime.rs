//! Threads that own a runtime: the service's background loops (attribution workers, the
//! shipper, the click journaler, dedup look-ups, bloom sync) each run on an OS thread of
//! their own with a single-threaded tokio runtime, so that their blocking work (fsync,
//! waiting on a channel) never occupies the HTTP tier's threads, and their ClickHouse
//! connections stay with the runtime that opened them.

use std::future::Future;
use std::thread::JoinHandle;

/// The nice value of background threads: shipping, bloom sync and catalog refreshes yield
/// the CPU to the request path. On a shared two-core box, their bursts (a second's records
/// decoded and sent at once) otherwise showed in the p99 of every request.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to that of background work. Best effort: where
/// the system refuses, the thread runs at normal priority.
pub fn run_as_background() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), BACKGROUND_NICE) {
        tracing::debug!(%error, "could not lower a background thread's priority");
    }
}

/// Like [`spawn_with_runtime`], for work no request waits for, at background priority.
pub fn spawn_background<F, Fut>(name: &str, task: F) -> JoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    spawn_with_runtime(name, move || {
        run_as_background();
        task()
    })
}

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
        .spawn(move || current_thread_runtime().block_on(task()))
        .expect("spawning a background thread")
}

/// A single-threaded runtime with timers and I/O, for a thread of its own (or a command
/// that does one thing and exits).
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a current-thread runtime")
}
