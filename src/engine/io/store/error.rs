//! Why an artifact store operation failed (shared by the local and object stores).

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Local file system.
    #[error("artifact {}: {}", path.display(), crate::fsutil::describe_io(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A recorded location that does not name a file inside the store.
    #[error(
        "artifact location `{location}` is not inside the artifact store (absolute, or with `..`); refusing to read it"
    )]
    OutsideStore {
        /// The location as recorded.
        location: String,
    },
    /// Object storage.
    #[error("artifact {location}: {detail}")]
    Object {
        /// The object URL.
        location: String,
        /// What went wrong.
        detail: String,
        /// Whether another attempt may succeed.
        retryable: bool,
    },
    /// Not found.
    #[error("artifact {location} is missing from the store")]
    Missing {
        /// Where it should be.
        location: String,
    },
    /// Larger than any artifact realmctl writes.
    #[error("artifact {location} is larger than {max} bytes; refusing to read it")]
    TooLarge {
        /// Where.
        location: String,
        /// The cap.
        max: u64,
    },
}

impl StoreError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            StoreError::Object { retryable, .. } => *retryable,
            StoreError::OutsideStore { .. }
            | StoreError::Missing { .. }
            | StoreError::TooLarge { .. } => false,
        }
    }
}
