//! The closed-loop load generator: a fixed number of callers, each issuing one call after another.
//!
//! A run stops when either the call budget or the time budget is used up. Latency is recorded per
//! call in an HDR histogram (microseconds); calls that fail are counted but not timed.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

/// How much load one run applies.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Calls in flight at once (one task per caller).
    pub concurrency: usize,
    /// Stop after this many calls have been started.
    pub max_calls: u64,
    /// Stop starting calls after this long.
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug)]
pub struct Measurement {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Wall time from the first call started to the last call finished.
    pub elapsed: Duration,
    /// Latency of successful calls, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Measurement {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        per_second(self.ok, self.elapsed)
    }

    /// Latency at `quantile` (0..=1) in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// `count` per second over `elapsed`.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating latency histogram")
}

/// Runs `call(caller, i)` for i = 0, 1, 2, ... from `limits.concurrency` callers until a limit is
/// reached.
///
/// `caller` is the index of the calling task (0..concurrency), so a caller can own a connection;
/// `i` is unique per call and increases in the order calls are started.
pub async fn run<F, Fut>(limits: Limits, call: F) -> Result<Measurement>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    anyhow::ensure!(limits.concurrency > 0, "concurrency must be at least 1");
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + limits.duration;

    let mut workers = Vec::with_capacity(limits.concurrency);
    for caller in 0..limits.concurrency {
        let call = Arc::clone(&call);
        let next = Arc::clone(&next);
        let first_error = Arc::clone(&first_error);
        workers.push(tokio::spawn(async move {
            let mut hist = new_histogram()?;
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limits.max_calls || Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                match call(caller, i).await {
                    Ok(()) => {
                        let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                        hist.saturating_record(us.max(1));
                    }
                    Err(err) => {
                        errors += 1;
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert_with(|| format!("{err:#}"));
                        }
                    }
                }
            }
            anyhow::Ok((hist, errors))
        }));
    }

    let mut latency_us = new_histogram()?;
    let mut errors = 0;
    for worker in workers {
        let (hist, worker_errors) = worker.await.context("load worker panicked")??;
        latency_us.add(&hist).context("merging histograms")?;
        errors += worker_errors;
    }
    let elapsed = start.elapsed();
    let first_error = first_error.lock().ok().and_then(|mut slot| slot.take());
    Ok(Measurement {
        ok: latency_us.len(),
        errors,
        first_error,
        elapsed,
        latency_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_at_the_call_budget() {
        let limits = Limits {
            concurrency: 4,
            max_calls: 1000,
            duration: Duration::from_secs(60),
        };
        let m = run(limits, |_, _| async { Ok(()) }).await.unwrap();
        assert_eq!(m.ok, 1000);
        assert_eq!(m.errors, 0);
    }

    #[tokio::test]
    async fn stops_at_the_time_budget_and_counts_errors() {
        let limits = Limits {
            concurrency: 2,
            max_calls: u64::MAX,
            duration: Duration::from_millis(200),
        };
        let m = run(limits, |_, i| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if i % 2 == 0 {
                Ok(())
            } else {
                anyhow::bail!("odd call {i}")
            }
        })
        .await
        .unwrap();
        assert!(m.elapsed < Duration::from_secs(2));
        assert!(m.ok > 5 && m.errors > 5, "{m:?}");
        assert!(m.first_error.as_deref().unwrap().starts_with("odd call"));
        assert!(m.latency_ms(0.5) >= 5.0);
    }
}
