//! A dedupe run's merges, batch after batch, with the next batch read ahead on SQLite.
//!
//! A merge batch spends about a fifth of its time reading the customers and tags it
//! plans from. SQLite has one writer, so on SQLite [`MergeRun`] reads the *next*
//! batch's customers on a second connection while the current batch writes, and the
//! next batch uses those reads only when it can prove nothing else wrote in between:
//!
//! - every batch of the run writes on one connection, which takes the write lock at
//!   `BEGIN IMMEDIATE`; the read-ahead starts only after that, so until this batch
//!   commits, no one else can commit anything the read-ahead might see or miss;
//! - `PRAGMA data_version` on that connection changes exactly when *another*
//!   connection (of any process) commits. The next batch reads it again once it holds
//!   the write lock: unchanged means the only commit since the read-ahead began is this
//!   batch's own, which touches none of the next batch's customers (clusters are
//!   disjoint), so the reads are what the next batch would read itself.
//!
//! Otherwise — another writer got in, the read-ahead failed, or the writer connection
//! was replaced — the batch reads inside its own transaction, as [`Store::merge_batch`]
//! does. MySQL merges without read-ahead: its writers lock rows, not the database, and
//! it has no such commit counter.

use diesel::QueryableByName;
use diesel::connection::AnsiTransactionManager;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use tagd_core::merges::check_merge_ids;
use tokio::task::JoinHandle;

use crate::Store;
use crate::db::{Pool, SqliteConn, begin, end, pool_error, write_guard};
use crate::error::StoreResult;
use crate::merges::{BatchReads, MergeQueries, MergeRecord, MergeRequest};

/// Merges batches one after another (see the module docs).
///
/// Its two SQLite connections are taken out of the pool for the run and closed
/// with it, so a run dropped mid-batch (a cancelled future) rolls its
/// transaction back by closing the connection.
pub struct MergeRun<'s> {
    store: &'s Store,
    /// The connection every batch of the run writes on, kept between batches
    /// because `data_version` is counted per connection.
    writer: Option<SqliteConn>,
    /// The connection reads ahead run on, while it is not lent to one.
    reader: Option<SqliteConn>,
    /// The next batch's reads, under way.
    ahead: Option<JoinHandle<(SqliteConn, StoreResult<ReadAhead>)>>,
    /// Batches that used their read-ahead, and batches that read again.
    reads_ahead_used: u64,
    reads_again: u64,
}

/// Reads made ahead of a batch, and the writer's `data_version` when they began.
struct ReadAhead {
    writer_version: i64,
    reads: BatchReads,
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

async fn data_version(conn: &mut SqliteConn) -> StoreResult<i64> {
    let row: DataVersion = diesel::sql_query("PRAGMA data_version")
        .get_result(conn)
        .await?;
    Ok(row.data_version)
}

/// Sorted, each once: the form [`BatchReads`] are made for.
fn batch_ids<'a>(ids: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().cloned().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A connection of the pool's, taken out of it for good.
async fn own_connection(pool: &DeadPool<SqliteConn>) -> StoreResult<SqliteConn> {
    Ok(Object::take(pool.get().await.map_err(pool_error)?))
}

impl Store {
    /// Starts a run of merge batches (a dedupe job's): see [`MergeRun`].
    pub fn merge_run(&self) -> MergeRun<'_> {
        MergeRun {
            store: self,
            writer: None,
            reader: None,
            ahead: None,
            reads_ahead_used: 0,
            reads_again: 0,
        }
    }
}

impl MergeRun<'_> {
    /// Merges several disjoint clusters in one transaction, exactly as
    /// [`Store::merge_batch`] does; `next` names the customers of the batch that will
    /// follow (empty for the last), which SQLite reads meanwhile.
    pub async fn merge_batch(
        &mut self,
        requests: &[MergeRequest<'_>],
        next: &[String],
    ) -> StoreResult<Vec<StoreResult<MergeRecord>>> {
        let Pool::Sqlite(pool) = &self.store.pool else {
            return self.store.merge_batch(requests).await;
        };
        for request in requests {
            check_merge_ids(request.field, request.customer_ids, request.survivor_id)?;
        }
        let all = batch_ids(requests.iter().flat_map(|r| r.customer_ids.iter()));
        let started = std::time::Instant::now();
        let ahead = match self.ahead.take() {
            Some(handle) => match handle.await {
                Ok((reader, ahead)) => {
                    // A reader whose read failed may be inside its transaction still.
                    if ahead.is_ok() {
                        self.reader = Some(reader);
                    }
                    ahead.ok()
                }
                Err(error) => {
                    tracing::debug!(%error, "a merge batch's read-ahead did not finish");
                    None
                }
            },
            None => None,
        };
        let _writer = write_guard(self.store.write_lock.as_ref()).await;
        let (mut conn, ahead) = match self.writer.take() {
            Some(conn) => (conn, ahead),
            // A new writer counts its own data versions: reads made while another
            // connection wrote prove nothing to it.
            None => (own_connection(pool).await?, None),
        };
        let outcomes = self
            .merge_on(&mut conn, pool, requests, &all, ahead, next)
            .await?;
        // Kept only after a commit: a failed batch's connection is closed, and with
        // it whatever the failure left of its transaction.
        self.writer = Some(conn);
        self.store.note_write();
        self.store.note_removals(all);
        tracing::debug!(
            millis = started.elapsed().as_secs_f64() * 1e3,
            "merge batch committed (the write lock's wait, reads, writes and commit)"
        );
        Ok(outcomes)
    }

    /// One batch's transaction on the writer connection.
    async fn merge_on(
        &mut self,
        conn: &mut SqliteConn,
        pool: &DeadPool<SqliteConn>,
        requests: &[MergeRequest<'_>],
        all: &[String],
        ahead: Option<ReadAhead>,
        next: &[String],
    ) -> StoreResult<Vec<StoreResult<MergeRecord>>> {
        // IMMEDIATE: the write lock is taken now, before the read-ahead starts. Begun
        // through diesel's transaction manager, which then makes any transaction a
        // statement opens inside (SQLite's multi-row inserts do) a savepoint.
        conn.spawn_blocking(|inner| {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
        })
        .await?;
        let body = async {
            let version = data_version(conn).await?;
            if !next.is_empty() {
                let reader = match self.reader.take() {
                    Some(reader) => reader,
                    None => own_connection(pool).await?,
                };
                self.ahead = Some(tokio::spawn(read_ahead(reader, batch_ids(next), version)));
            }
            let reads = match ahead {
                Some(ahead) if ahead.writer_version == version && ahead.reads.covers(all) => {
                    self.reads_ahead_used += 1;
                    ahead.reads
                }
                ahead => {
                    if ahead.is_some() {
                        tracing::debug!(
                            "merge batch read again: another writer committed since its read-ahead"
                        );
                    }
                    self.reads_again += 1;
                    conn.read_batch(all.to_vec()).await?
                }
            };
            conn.merge_read_batch(requests, reads).await
        }
        .await;
        end(conn, true, body).await
    }
}

impl Drop for MergeRun<'_> {
    fn drop(&mut self) {
        if self.reads_ahead_used + self.reads_again > 0 {
            tracing::debug!(
                reads_ahead_used = self.reads_ahead_used,
                reads_again = self.reads_again,
                "merge run ended"
            );
        }
    }
}

/// Reads `ids` for the next batch in one read transaction (one snapshot) on `reader`,
/// and hands the connection back with the reads.
async fn read_ahead(
    mut reader: SqliteConn,
    ids: Vec<String>,
    writer_version: i64,
) -> (SqliteConn, StoreResult<ReadAhead>) {
    let result = async {
        begin(&mut reader).await?;
        let reads = reader.read_batch(ids).await;
        let reads = end(&mut reader, false, reads).await?;
        Ok(ReadAhead {
            writer_version,
            reads,
        })
    }
    .await;
    (reader, result)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tagd_core::customers::{CustomerField, CustomerFields};
    use tagd_core::merges::SurvivorRule;

    use super::*;
    use crate::PoolOptions;

    impl MergeRun<'_> {
        /// Waits until the read-ahead under way has read, keeping its result for the next batch.
        async fn finish_read_ahead(&mut self) {
            if let Some(handle) = self.ahead.take() {
                let done = handle.await.expect("the read-ahead task ran");
                self.ahead = Some(tokio::spawn(async move { done }));
            }
        }
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("merge-run.db").display());
        Store::open(&url, PoolOptions::default())
            .await
            .expect("the store opens")
    }

    fn fields(name: &str, company: &str) -> CustomerFields {
        CustomerFields {
            name: name.to_owned(),
            company: company.to_owned(),
            ..CustomerFields::default()
        }
    }

    fn request(ids: &[String]) -> MergeRequest<'_> {
        MergeRequest {
            field: "cluster",
            customer_ids: ids,
            survivor_id: None,
            rule: SurvivorRule::MostComplete,
            actor: "test",
            job_id: "",
            reason: "test",
        }
    }

    /// Creates pairs of same-named customers, the first of each with a company (so
    /// it survives a most-complete merge).
    async fn pairs(store: &Store, count: usize) -> Vec<Vec<String>> {
        let mut clusters = Vec::new();
        for index in 0..count {
            let name = format!("客户{index}");
            let first = store
                .create_customer(fields(&name, "旧公司"))
                .await
                .expect("created");
            let second = store
                .create_customer(fields(&name, ""))
                .await
                .expect("created");
            clusters.push(vec![first.id, second.id]);
        }
        clusters
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_read_ahead_merge_as_batches_read_in_their_transaction() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = sqlite_store(&dir).await;
        let clusters = pairs(&store, 3).await;
        let mut run = store.merge_run();
        for (index, cluster) in clusters.iter().enumerate() {
            let next = clusters.get(index + 1).cloned().unwrap_or_default();
            let outcomes = run
                .merge_batch(&[request(cluster)], &next)
                .await
                .expect("the batch commits");
            let merge = outcomes[0].as_ref().expect("the cluster merges");
            assert_eq!(merge.survivor_id, cluster[0]);
            assert_eq!(merge.merged_ids, vec![cluster[1].clone()]);
            assert_eq!(
                store.merged_into(&cluster[1]).await.expect("read"),
                Some((merge.id.clone(), cluster[0].clone())),
                "the merged-away id resolves to its survivor"
            );
        }
        assert_eq!(
            (run.reads_ahead_used, run.reads_again),
            (2, 1),
            "every batch but the first used the reads made while the one before wrote"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_after_the_read_ahead_is_not_lost_to_the_next_batch() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = sqlite_store(&dir).await;
        let clusters = pairs(&store, 2).await;
        let mut run = store.merge_run();
        run.merge_batch(&[request(&clusters[0])], &clusters[1])
            .await
            .expect("the first batch commits");
        run.finish_read_ahead().await;
        // Another writer changes the next batch's survivor after the read-ahead read it.
        store
            .update_customer(
                &clusters[1][0],
                &fields("客户1", "新公司"),
                &BTreeSet::from([CustomerField::Company]),
            )
            .await
            .expect("updated");
        let outcomes = run
            .merge_batch(&[request(&clusters[1])], &[])
            .await
            .expect("the second batch commits");
        let merge = outcomes[0].as_ref().expect("the cluster merges");
        let survivor = store
            .get_customer(&merge.survivor_id)
            .await
            .expect("the survivor is there");
        assert_eq!(
            survivor.fields.company, "新公司",
            "the merge planned from what the update wrote, not from the read before it"
        );
        assert_eq!((run.reads_ahead_used, run.reads_again), (0, 2));
    }
}
