//! Folds SQLite's write-ahead log back into the database file on a thread of its
//! own, so that a commit never waits for it.
//!
//! By default the connection that commits past 1,000 WAL pages copies the log
//! into the database file and syncs it before its call returns. A dedupe run's
//! merge batch or an import batch dirties thousands of pages, so every one of
//! their commits paid for a checkpoint: about a third of a merge batch's time.
//! Here a dedicated connection checkpoints in `PASSIVE` mode (it never blocks
//! readers or the writer) every [`INTERVAL`], on the second core; with no new
//! frames in the log such a checkpoint only reads the log's header. Commits
//! keep `synchronous = FULL`: each one is durable in the log before it returns,
//! as before. The connections' own auto-checkpoint stays on with a larger
//! threshold ([`AUTO_CHECKPOINT_PAGES`]), so the log stays bounded even if this
//! thread falls behind or is gone.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::sql_types::Integer;
use diesel::{Connection as _, QueryableByName, RunQueryDsl as _, SqliteConnection};

/// How often the log is checked for frames to fold in.
const INTERVAL: Duration = Duration::from_millis(50);

/// Pages (4 KiB) past which a committing connection checkpoints itself: the
/// fallback when the background checkpoints do not keep up.
pub(crate) const AUTO_CHECKPOINT_PAGES: u32 = 16_384;

/// The size the log file is cut back to once it has been folded in and restarted.
pub(crate) const JOURNAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Stops the checkpoint thread when dropped (with the store).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = Integer)]
    busy: i32,
    #[diesel(sql_type = Integer)]
    log: i32,
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` until the returned handle is dropped.
    pub(crate) fn start(path: &str) -> std::io::Result<Self> {
        let (stop, stopped) = channel();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("tagd-checkpoint".to_owned())
            .spawn(move || run(&path, &stopped))?;
        Ok(Self { _stop: stop })
    }
}

fn run(path: &str, stopped: &Receiver<()>) {
    let mut conn = match connect(path) {
        Ok(conn) => conn,
        Err(error) => {
            // The committing connections still checkpoint themselves.
            tracing::warn!(%error, path, "the background checkpoint cannot open the database");
            return;
        }
    };
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        match diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<Outcome>(&mut conn) {
            Ok(outcome) if outcome.checkpointed > 0 && outcome.busy == 0 => tracing::trace!(
                log = outcome.log,
                checkpointed = outcome.checkpointed,
                "checkpointed"
            ),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "background checkpoint failed; retrying"),
        }
    }
}

fn connect(path: &str) -> Result<SqliteConnection, Box<dyn std::error::Error>> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA synchronous = FULL;",
        super::db::SQLITE_BUSY_TIMEOUT_MS
    ))?;
    Ok(conn)
}
