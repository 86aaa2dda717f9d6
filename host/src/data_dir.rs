//! The data dir on disk: created private (0700, tightened at start if others may read it, since the store
//! in it holds account secrets), and the mapping of store open failures to start-up errors that say what
//! to do.

use std::path::Path;

use aperture_store::StoreError;

use crate::app::StartError;

/// Creates the data dir (mode 0700) or makes an existing one private.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            return Ok(());
        }
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            tracing::info!(
                data_dir = %dir.display(),
                "Data dir permissions tightened from {mode:o} to 700 (the store holds account secrets)"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// The start-up error for a store that would not open: a lock, damage and a key problem each say what
/// to do.
pub fn start_error(dir: &Path, path: &Path, e: StoreError) -> StartError {
    let path = path.display().to_string();
    match e {
        StoreError::Locked => StartError::StoreLocked { path },
        StoreError::Damaged(why) => StartError::StoreDamaged {
            path,
            dir: dir.display().to_string(),
            why,
        },
        e @ StoreError::SecretKey(_) => StartError::SecretKey { path, source: e },
        source => StartError::Store { path, source },
    }
}
