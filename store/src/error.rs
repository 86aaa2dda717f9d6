//! Why storage calls fail: redb's own error types, plus the cases this crate detects itself (undecodable
//! rows, duplicates, unknown selectors, invalid input). Nothing in this crate panics on stored data; it
//! returns [`StoreError::Corrupt`] instead.

/// Every error this crate returns. redb's errors are boxed to keep `Result`s small.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created (includes "already open by another process").
    #[error("storage: cannot open the database: {0}")]
    Database(#[source] Box<redb::DatabaseError>),
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

macro_rules! from_redb {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                StoreError::$variant(Box::new(e))
            }
        })*
    };
}

from_redb!(
    Database(redb::DatabaseError),
    Transaction(redb::TransactionError),
    Table(redb::TableError),
    Storage(redb::StorageError),
    Commit(redb::CommitError),
);
