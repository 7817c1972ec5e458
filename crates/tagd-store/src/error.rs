//! The storage crate's one error type.

use tagd_core::DomainError;

/// Why a storage operation failed. The gRPC layer maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The input breaks a domain rule (checked here because it needs stored data,
    /// such as a value against its tag's type).
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// `field` is the request path that named the missing thing ("" when obvious).
    #[error("{}", not_found_message(field, entity, id))]
    NotFound {
        entity: &'static str,
        id: String,
        field: String,
    },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error(
        "unsupported database_url {0:?}: expected sqlite://<path> or mysql://user:pass@host/db"
    )]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// The store is closing and takes no more writes.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Stored data the code cannot read back (a bug or a hand-edited row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub(crate) fn not_found(entity: &'static str, id: &str) -> Self {
        Self::NotFound {
            entity,
            id: id.to_owned(),
            field: String::new(),
        }
    }

    /// Whether the failure lies in the data an operation read or wrote (a constraint its rows
    /// break, a stored row that cannot be read back, a rule the input breaks) rather than in
    /// the database being unreachable or failing: a job working through many items may then
    /// skip the one at fault and go on.
    pub fn is_data_fault(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Corrupt(_)
            | Self::Invalid(_)
            | Self::AlreadyExists(_)
            | Self::NotFound { .. }
            | Self::FailedPrecondition(_) => true,
            Self::Database(Error::DatabaseError(kind, _)) => matches!(
                kind,
                DatabaseErrorKind::UniqueViolation
                    | DatabaseErrorKind::ForeignKeyViolation
                    | DatabaseErrorKind::NotNullViolation
                    | DatabaseErrorKind::CheckViolation
            ),
            _ => false,
        }
    }

    /// Whether the database gave up waiting for a lock another transaction
    /// held (a MariaDB deadlock or lock-wait timeout, SQLite's busy timeout):
    /// the transaction was rolled back whole and the same call may succeed if
    /// made again. diesel-async keeps only the server's message for these, so
    /// they are told apart by it (MariaDB's messages are fixed English text).
    pub fn is_lock_conflict(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        const LOCK_CONFLICTS: [&str; 3] = [
            // ER_LOCK_DEADLOCK (1213)
            "Deadlock found when trying to get lock",
            // ER_LOCK_WAIT_TIMEOUT (1205)
            "Lock wait timeout exceeded",
            // SQLITE_BUSY once `busy_timeout` has passed
            "database is locked",
        ];
        match self {
            Self::Database(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                LOCK_CONFLICTS
                    .iter()
                    .any(|prefix| info.message().starts_with(prefix))
            }
            _ => false,
        }
    }

    /// The same error naming the request field it came from.
    pub(crate) fn at(self, path: &str) -> Self {
        match self {
            Self::NotFound { entity, id, .. } => Self::NotFound {
                entity,
                id,
                field: path.to_owned(),
            },
            Self::Invalid(error) => Self::Invalid(error),
            other => other,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

fn not_found_message(field: &str, entity: &str, id: &str) -> String {
    if field.is_empty() {
        format!("{entity} {id:?} not found")
    } else {
        format!("{field}: {entity} {id:?} not found")
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use super::StoreError;

    fn database(kind: DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::Database(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn lock_conflicts_are_told_from_other_database_errors() {
        for message in [
            "Deadlock found when trying to get lock; try restarting transaction",
            "Lock wait timeout exceeded; try restarting transaction",
            "database is locked",
        ] {
            assert!(
                database(DatabaseErrorKind::Unknown, message).is_lock_conflict(),
                "{message}"
            );
        }
        assert!(
            !database(
                DatabaseErrorKind::Unknown,
                "Table 'tagd.tags' doesn't exist"
            )
            .is_lock_conflict()
        );
        assert!(
            !database(DatabaseErrorKind::UniqueViolation, "database is locked").is_lock_conflict()
        );
        assert!(!StoreError::ShuttingDown.is_lock_conflict());
    }
}
