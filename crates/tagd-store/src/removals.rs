//! The journal of customers whose existence this process changed (deleted,
//! merged away, brought back by an unmerge or not by a revert), kept until the
//! segment index takes them.
//!
//! Such a change may leave no change row for the index's follower to read. With
//! the ids at hand the follower reloads just those customers; without them it
//! would have to compare the whole customer set (every id) after each one, which
//! during a dedupe run of a million customers is most of the server's work.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ids held at most before the journal gives up and asks for a full comparison
/// (a process that removes customers and has no segment index to take them).
const MAX_JOURNALED: usize = 200_000;

/// What the segment index gets when it takes the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenRemovals {
    /// The removal generation these changes bring the taker up to.
    pub generation: u64,
    /// The customers to reload (gone ones are dropped); `None` when more
    /// changed than the journal holds: compare the whole customer set.
    pub customer_ids: Option<Vec<String>>,
}

#[derive(Debug, Default)]
pub(crate) struct RemovalJournal {
    /// Moves with every journaled change; read without the lock.
    generation: AtomicU64,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    ids: Vec<String>,
    overflowed: bool,
}

impl RemovalJournal {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a committed change of these customers' existence.
    pub(crate) fn note(&self, ids: impl IntoIterator<Item = String>) {
        let mut pending = self.lock();
        if !pending.overflowed {
            pending.ids.extend(ids);
            if pending.ids.len() > MAX_JOURNALED {
                pending.ids = Vec::new();
                pending.overflowed = true;
            }
        }
        // Moved under the lock: a taker never sees the generation without its ids.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn take(&self) -> TakenRemovals {
        let mut pending = self.lock();
        let Pending { ids, overflowed } = std::mem::take(&mut *pending);
        TakenRemovals {
            generation: self.generation.load(Ordering::Acquire),
            customer_ids: (!overflowed).then_some(ids),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Nothing panics while holding it; a poisoned journal is still a valid list of ids.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_returns_the_ids_noted_since_the_last_take_with_their_generation() {
        let journal = RemovalJournal::default();
        journal.note(["a".to_owned()]);
        journal.note(["b".to_owned(), "c".to_owned()]);
        let taken = journal.take();
        assert_eq!(taken.generation, 2);
        assert_eq!(
            taken.customer_ids,
            Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
        );
        let again = journal.take();
        assert_eq!(again.generation, 2);
        assert_eq!(again.customer_ids, Some(Vec::new()));
    }

    #[test]
    fn an_overflowing_journal_asks_for_a_full_comparison_once() {
        let journal = RemovalJournal::default();
        journal.note((0..=MAX_JOURNALED).map(|n| n.to_string()));
        journal.note(["late".to_owned()]);
        let taken = journal.take();
        assert_eq!(taken.generation, 2);
        assert_eq!(taken.customer_ids, None);
        journal.note(["next".to_owned()]);
        assert_eq!(journal.take().customer_ids, Some(vec!["next".to_owned()]));
    }
}
