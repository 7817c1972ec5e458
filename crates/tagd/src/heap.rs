//! Hands freed heap memory back to the operating system on a timer (glibc only).
//!
//! On SQLite every statement runs on a blocking-pool thread, and glibc gives
//! each thread its own arena. Batch work (an import's 1,000-row statements,
//! the segment follower's reloads) frees large buffers in those arenas, which
//! glibc keeps: mid-way through a 1,000,000-row import `malloc_stats` showed
//! 145 MB held by the allocator for 58 MB in use. `malloc_trim` releases the
//! free pages of every arena by walking their free lists; its cost did not
//! stand out from run-to-run noise in a 1,000,000-row import (BENCHMARKS.md).

use std::time::Duration;

/// How often the heap is trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Trims the heap every [`TRIM_EVERY`] until the runtime stops.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Off the async workers: a trim of a large heap takes a few milliseconds.
            if tokio::task::spawn_blocking(trim).await.is_err() {
                return;
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "malloc_trim is glibc's C API; it takes no pointers"
)]
fn trim() {
    // SAFETY: malloc_trim only reorganises the allocator's own free lists and is
    // thread-safe (it takes each arena's lock); the argument is a byte count.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
