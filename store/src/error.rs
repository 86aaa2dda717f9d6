//! Why storage calls fail: redb's own error types, plus the cases this crate detects itself (undecodable
//! rows, duplicates, unknown selectors, invalid input, damaged files, a wrong secret key). Nothing in this
//! crate panics on stored data; it returns [`StoreError::Corrupt`] or [`StoreError::Damaged`] instead.

/// Every error this crate returns. redb's errors are boxed to keep `Result`s small.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("storage: cannot open the database: {0}")]
    Database(#[source] Box<redb::DatabaseError>),
    /// Another process holds the database file's lock (redb's `DatabaseAlreadyOpen`).
    #[error("storage: the database is locked by another process")]
    Locked,
    /// The database file is damaged: empty, not a redb file, or failing redb's own checks. The
    /// message says what was found.
    #[error("storage: the database file is damaged: {0}")]
    Damaged(String),
    /// The database could not be reopened after an I/O failure; the next call tries again.
    #[error("storage: unavailable: {0}")]
    Unavailable(String),
    /// The secret key is missing, malformed or not the one the secrets were encrypted with.
    #[error("secret key: {0}")]
    SecretKey(String),
    /// A file operation around the database (permissions, rename, copy) failed.
    #[error("storage: {what}: {source}")]
    File {
        /// What was being done, with the path.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A read or write transaction could not be started.
    #[error("storage: cannot start a transaction: {0}")]
    Transaction(#[source] Box<redb::TransactionError>),
    /// A table could not be opened (missing, or stored with different key/value types).
    #[error("storage: cannot open a table: {0}")]
    Table(#[source] Box<redb::TableError>),
    /// An I/O or consistency failure while reading or writing pages.
    #[error("storage: {0}")]
    Storage(#[source] Box<redb::StorageError>),
    /// A write transaction could not be committed.
    #[error("storage: commit failed: {0}")]
    Commit(#[source] Box<redb::CommitError>),
    /// A stored row could not be decoded (or the file was written by a newer schema).
    #[error("storage: corrupt stored data: {0}")]
    Corrupt(String),
    /// A value could not be encoded for storage.
    #[error("storage: cannot encode a row: {0}")]
    Encode(#[source] serde_json::Error),
    /// Something with this name (an account label, a client-key label) already exists.
    #[error("already exists: {0}")]
    Duplicate(String),
    /// No account or key matches the given id or label.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller passed something unusable (empty secret, empty label, ...).
    #[error("invalid: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether this is an I/O failure of the database file (a full disk, a failed write or fsync, or
    /// redb refusing work after one: `PreviousIo`). The store reopens the database after one.
    pub fn is_io(&self) -> bool {
        fn storage(e: &redb::StorageError) -> bool {
            matches!(
                e,
                redb::StorageError::Io(_) | redb::StorageError::PreviousIo
            )
        }
        match self {
            StoreError::Storage(e) => storage(e),
            StoreError::Commit(e) => matches!(&**e, redb::CommitError::Storage(s) if storage(s)),
            StoreError::Transaction(e) => {
                matches!(&**e, redb::TransactionError::Storage(s) if storage(s))
            }
            StoreError::Table(e) => matches!(&**e, redb::TableError::Storage(s) if storage(s)),
            StoreError::Database(e) => {
                matches!(&**e, redb::DatabaseError::Storage(s) if storage(s))
            }
            StoreError::Unavailable(_) => true,
            _ => false,
        }
    }

    pub(crate) fn file(what: impl Into<String>, source: std::io::Error) -> StoreError {
        StoreError::File {
            what: what.into(),
            source,
        }
    }
}

macro_rules! from_redb {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                StoreError::$variant(Box::new(e))
            }
        })*
    };
}

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
            other => StoreError::Database(Box::new(other)),
        }
    }
}

from_redb!(
    Transaction(redb::TransactionError),
    Table(redb::TableError),
    Storage(redb::StorageError),
    Commit(redb::CommitError),
);
