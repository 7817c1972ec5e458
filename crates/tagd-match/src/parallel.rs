//! Splitting work over a few scoped threads, results kept in input order
//! so the output never depends on scheduling.

/// Runs `work` on `threads` contiguous chunks of `items` and concatenates
/// the results in chunk order.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let threads = threads.max(1);
    if threads == 1 || items.len() < 2 * threads {
        return work(items);
    }
    let chunk = items.len().div_ceil(threads);
    let parts: Vec<Vec<R>> = std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    parts.into_iter().flatten().collect()
}

/// Runs `work(t)` for t in 0..threads and concatenates the results in t order.
pub fn map_threads<R: Send>(threads: usize, work: impl Fn(usize) -> Vec<R> + Sync) -> Vec<R> {
    let threads = threads.max(1);
    if threads == 1 {
        return work(0);
    }
    let parts: Vec<Vec<R>> = std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..threads).map(|t| scope.spawn(move || work(t))).collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    parts.into_iter().flatten().collect()
}
