//! `aperture store backup | restore | repair | rotate-key`: a backup is taken from a running gateway
//! through the admin API (a consistent snapshot); the other three work offline on a stopped gateway's data
//! dir and refuse while a gateway holds the store's lock.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use aperture_store::{Inventory, RepairOutcome, SecretKey, StoreError};
use bytes::Bytes;
use http::Method;

use crate::app::STORE_FILE;
use crate::cli::{Remote, StoreAction};

/// Print one line on stdout (quietly ending on a closed pipe, like the other admin commands).
macro_rules! out {
    ($($arg:tt)*) => {
        crate::admin_client::write_line(format_args!($($arg)*))
    };
}

/// Run one `aperture store …` command.
pub async fn run(action: &StoreAction) -> Result<()> {
    match action {
        StoreAction::Backup {
            file,
            no_cache,
            remote,
        } => backup(remote, file, !*no_cache).await,
        StoreAction::Restore { file, data_dir } => {
            let (file, dir) = (file.clone(), data_dir.clone());
            offline(move || restore(&file, dir)).await
        }
        StoreAction::Repair { data_dir } => {
            let dir = data_dir.clone();
            offline(move || repair(dir)).await
        }
        StoreAction::RotateKey { data_dir } => {
            let dir = data_dir.clone();
            offline(move || rotate_key(dir)).await
        }
    }
}

async fn offline(f: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("store task failed: {e}"))?
}

/// `--data-dir`, else `APERTURE_DATA_DIR`, else the default; and the store file in it.
fn store_file(data_dir: Option<PathBuf>) -> (PathBuf, PathBuf) {
    let dir = data_dir
        .or_else(|| std::env::var_os("APERTURE_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(crate::config::default_data_dir);
    let file = dir.join(STORE_FILE);
    (dir, file)
}

/// The secret key from `APERTURE_SECRET_KEY` or the file named by `APERTURE_SECRET_KEY_FILE`, if set.
fn current_key() -> Result<Option<SecretKey>> {
    key_from_env("APERTURE_SECRET_KEY", "APERTURE_SECRET_KEY_FILE")
}

fn key_from_env(var: &str, file_var: &str) -> Result<Option<SecretKey>> {
    let text = match (std::env::var(var).ok(), std::env::var_os(file_var)) {
        (Some(_), Some(_)) => bail!("set {var} or {file_var}, not both"),
        (Some(k), None) => k,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .with_context(|| format!("reading {file_var} {}", Path::new(&path).display()))?,
        (None, None) => return Ok(None),
    };
    SecretKey::parse(&text)
        .map(Some)
        .map_err(|e| anyhow!("{var}: {e}"))
}

/// A store error as the operator should read it: a lock means the gateway is running.
fn explain(e: StoreError, file: &Path) -> anyhow::Error {
    match e {
        StoreError::Locked => anyhow!(
            "{} is in use (a gateway is running on this data dir): stop it first",
            file.display()
        ),
        other => anyhow!("{}: {other}", file.display()),
    }
}

fn describe(inv: &Inventory) -> String {
    format!(
        "{} account(s) ({} with encrypted secrets), {} client key(s), {} cache entries ({} bytes)",
        inv.accounts, inv.sealed_secrets, inv.client_keys, inv.cache_entries, inv.cache_bytes
    )
}

async fn backup(remote: &Remote, file: &Path, include_cache: bool) -> Result<()> {
    if file.exists() {
        bail!("{} already exists; choose a new file name", file.display());
    }
    let path = format!("/admin/store/backup?cache={include_cache}");
    let bytes = fetch(remote, &path).await?;
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    write_private(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    let checked = {
        let partial = partial.clone();
        tokio::task::spawn_blocking(move || aperture_store::verify(&partial, None))
            .await
            .map_err(|e| anyhow!("check task failed: {e}"))?
    };
    let inventory = match checked {
        Ok(inv) => inv,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            bail!("the backup received from the gateway does not check out: {e}");
        }
    };
    std::fs::rename(&partial, file)
        .with_context(|| format!("renaming {} to {}", partial.display(), file.display()))?;
    out!(
        "backup written to {}: {}",
        file.display(),
        describe(&inventory)
    );
    if inventory.sealed_secrets > 0 {
        out!("account secrets in it are encrypted: restoring it needs the same secret key");
    }
    Ok(())
}

/// Writes `bytes` to a new file only its owner may read, synced.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// GET `path` on the admin API; the raw body.
async fn fetch(remote: &Remote, path: &str) -> Result<Bytes> {
    crate::admin_client::request(remote, Method::GET, path, None).await
}

fn restore(backup: &Path, data_dir: Option<PathBuf>) -> Result<()> {
    let (dir, file) = store_file(data_dir);
    if !dir.is_dir() {
        bail!("the data dir {} does not exist", dir.display());
    }
    let key = current_key()?;
    let outcome = aperture_store::restore(backup, &file, key.as_ref()).map_err(|e| match e {
        StoreError::Locked => explain(e, &file),
        other => anyhow!("not restored ({other}); {} is unchanged", file.display()),
    })?;
    out!(
        "restored {} from {}: {}",
        file.display(),
        backup.display(),
        describe(&outcome.inventory)
    );
    if let Some(previous) = &outcome.previous {
        out!("the replaced store was kept as {}", previous.display());
    }
    if outcome.inventory.sealed_secrets > 0 && key.is_none() {
        out!("its account secrets are encrypted: start the gateway with the secret key they were encrypted with (APERTURE_SECRET_KEY)");
    }
    Ok(())
}

fn repair(data_dir: Option<PathBuf>) -> Result<()> {
    let (_, file) = store_file(data_dir);
    let outcome = aperture_store::repair(&file).map_err(|e| explain(e, &file))?;
    match outcome {
        RepairOutcome::Intact { inventory } => {
            out!("{} is intact: {}", file.display(), describe(&inventory))
        }
        RepairOutcome::Repaired { inventory } => out!(
            "{} was repaired (redb rolled it back to its last intact commit; recent changes may be lost): {}",
            file.display(),
            describe(&inventory)
        ),
        RepairOutcome::MovedAside { moved_to, reason } => {
            out!(
                "{} could not be repaired ({reason}); it was moved to {}",
                file.display(),
                moved_to.display()
            );
            out!("the next start creates an empty store: restore a backup with `aperture store restore BACKUP --data-dir {}`, or add the accounts and client keys again",
                file.parent().unwrap_or(Path::new(".")).display());
        }
    }
    Ok(())
}

fn rotate_key(data_dir: Option<PathBuf>) -> Result<()> {
    let (_, file) = store_file(data_dir);
    let old = current_key()?;
    let new = match key_from_env("APERTURE_NEW_SECRET_KEY", "APERTURE_NEW_SECRET_KEY_FILE")? {
        Some(k) => k,
        None => {
            let text = crate::admin_client::read_secret(None, "new secret key")?;
            SecretKey::parse(&text).map_err(|e| anyhow!("the new key: {e}"))?
        }
    };
    if old.as_ref() == Some(&new) {
        bail!("the new key is the same as the old one");
    }
    let n = aperture_store::rotate_key(&file, old, &new).map_err(|e| explain(e, &file))?;
    out!(
        "re-encrypted {n} account secret(s) in {} with the new key; start the gateway with it (APERTURE_SECRET_KEY or secret_key_file)",
        file.display()
    );
    Ok(())
}
