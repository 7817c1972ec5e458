//! Read combining for GetCustomer on MySQL: reads that arrive while others are
//! on their way to the database wait in a queue, and the next statement fetches
//! all of them at once (`WHERE id IN (…)`).
//!
//! On MySQL a primary-key read is a round trip whose cost is mostly fixed — the
//! statement's execution in mariadbd, the packets, the wake-ups — and tagd, the
//! database and the callers share the same cores. A busy server's concurrent
//! reads then cost one statement between them instead of one each; a lone read
//! goes out at once, as before. SQLite reads run inline on the caller's thread
//! (microseconds) and do not use this.
//!
//! A read joins only a statement not yet sent, so it sees every write that
//! committed before the call arrived, as a read of its own would.

use std::collections::HashMap;
use std::sync::Arc;

use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use tagd_core::customers::Customer;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::customers::CustomerQueries as _;
use crate::db::MysqlConn;
use crate::error::StoreResult;

/// Reads that may wait for a statement before callers are slowed down.
const QUEUE_CAPACITY: usize = 4_096;
/// Ids fetched by one statement at most.
const MAX_IDS_PER_READ: usize = 64;
/// Combined statements running at once. One would batch the most, but every
/// read would then queue behind a single statement (one slow statement stalls
/// them all); two batch nearly as well. `bench --backends mysql --phases get
/// --seconds 6`, 2 vCPUs, 32 callers, six alternated runs each (GetCustomer
/// req/s): no combining 11,248–18,063 (mean 15,057); one slot 21,079–24,816
/// (22,730); two slots 18,392–24,636 (21,835). See docs/BENCHMARKS.md.
const STATEMENTS_IN_FLIGHT: usize = 2;

/// What a combined read found for one id.
pub(crate) enum Read {
    /// Boxed: the enum crosses a oneshot channel, and the other variants are empty.
    Found(Box<Customer>),
    Missing,
    /// The combined statement failed: the caller reads alone, and meets (and
    /// reports) the error itself if it was not a passing one.
    Failed,
}

struct Pending {
    id: String,
    reply: oneshot::Sender<Read>,
}

/// The front of the combiner; dropping it stops the combiner.
pub(crate) struct CustomerReads {
    sender: mpsc::Sender<Pending>,
}

impl CustomerReads {
    /// Starts the combiner on the current tokio runtime.
    pub(crate) fn start(pool: DeadPool<MysqlConn>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(combine(pool, receiver, STATEMENTS_IN_FLIGHT));
        Self { sender }
    }

    /// Reads one customer, fetched together with whatever other reads are waiting.
    pub(crate) async fn read(&self, id: &str) -> Read {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            id: id.to_owned(),
            reply,
        };
        if self.sender.send(pending).await.is_err() {
            return Read::Failed;
        }
        answer.await.unwrap_or(Read::Failed)
    }
}

/// The combiner's loop: wait for a free statement slot, take what is queued,
/// send it, repeat. Reads that arrive while every slot is busy form the next
/// statement.
async fn combine(
    pool: DeadPool<MysqlConn>,
    mut receiver: mpsc::Receiver<Pending>,
    in_flight: usize,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        // The semaphore is never closed, so acquiring fails only if that changes.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_IDS_PER_READ {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            fetch(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Runs one combined read and answers every caller in it.
async fn fetch(pool: &DeadPool<MysqlConn>, batch: Vec<Pending>) {
    let mut waiting: HashMap<String, Vec<oneshot::Sender<Read>>> =
        HashMap::with_capacity(batch.len());
    for pending in batch {
        waiting.entry(pending.id).or_default().push(pending.reply);
    }
    let ids: Vec<String> = waiting.keys().cloned().collect();
    let loaded = load(pool, &ids).await;
    let Ok(customers) = loaded else {
        for reply in waiting.into_values().flatten() {
            // A caller that went away no longer needs its answer.
            let _ = reply.send(Read::Failed);
        }
        return;
    };
    for customer in customers {
        let Some(mut replies) = waiting.remove(&customer.id) else {
            continue;
        };
        let last = replies.pop();
        for reply in replies {
            let _ = reply.send(Read::Found(Box::new(customer.clone())));
        }
        if let Some(reply) = last {
            let _ = reply.send(Read::Found(Box::new(customer)));
        }
    }
    for reply in waiting.into_values().flatten() {
        let _ = reply.send(Read::Missing);
    }
}

async fn load(pool: &DeadPool<MysqlConn>, ids: &[String]) -> StoreResult<Vec<Customer>> {
    let mut pooled = pool.get().await.map_err(crate::db::pool_error)?;
    let result = pooled.load_customers(ids).await;
    crate::db::release(pooled, &result);
    result
}
