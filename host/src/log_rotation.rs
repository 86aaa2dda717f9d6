//! The log file's writer: `aperture.log` is always the current file; it is
//! rotated by size and at the first line of each new day (UTC) into
//! `aperture.log.YYYYMMDDTHHMMSS` files, of which `[logs] keep` are kept
//! (the `file-rotate` crate does the renaming and the retention). On SIGUSR1
//! the file is reopened, for operators whose logrotate moves it away.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use file_rotate::compression::Compression;
use file_rotate::suffix::{AppendTimestamp, FileLimit};
use file_rotate::{ContentLimit, FileRotate};

use crate::config::observability::Logs;

/// Set to ask the writer to reopen the file before its next line.
#[derive(Clone, Default)]
pub struct Reopen(Arc<AtomicBool>);

impl Reopen {
    /// Ask for a reopen.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A `Write` for the log writer thread.
pub struct RotatingFile {
    path: PathBuf,
    settings: Logs,
    file: Option<FileRotate<AppendTimestamp>>,
    day: NaiveDate,
    reopen: Reopen,
}

impl RotatingFile {
    /// The writer for `path` (its directory must exist); opens the file now, so an
    /// unwritable log is reported at start-up.
    pub fn open(path: &Path, settings: Logs, reopen: Reopen) -> io::Result<RotatingFile> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // A file last written on an earlier day (a restart across midnight) rotates at the first line.
        let day = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(|t| chrono::DateTime::<Utc>::from(t).date_naive())
            .unwrap_or_else(|_| Utc::now().date_naive());
        let mut w = RotatingFile {
            path: path.to_path_buf(),
            settings,
            file: None,
            day,
            reopen,
        };
        w.file = Some(w.make());
        Ok(w)
    }

    fn make(&self) -> FileRotate<AppendTimestamp> {
        let limit = match self.settings.max_bytes {
            0 => ContentLimit::None,
            n => ContentLimit::BytesSurpassed(n.min(usize::MAX as u64) as usize),
        };
        FileRotate::new(
            &self.path,
            AppendTimestamp::default(FileLimit::MaxFiles(self.settings.keep)),
            limit,
            Compression::None,
            None,
        )
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.reopen.0.swap(false, Ordering::SeqCst) {
            if let Some(mut f) = self.file.take() {
                let _ = f.flush();
            }
        }
        if self.file.is_none() {
            let _ = std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")));
            self.file = Some(self.make());
        }
        let today = Utc::now().date_naive();
        let file = self.file.as_mut().expect("opened above");
        if self.settings.rotate_daily && today != self.day {
            self.day = today;
            let has_lines = std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0);
            if has_lines {
                file.rotate()?;
            }
        }
        file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Reopen the log file on each SIGUSR1 (Unix); ends with the runtime.
pub fn reopen_on_sigusr1(reopen: Reopen) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            return;
        };
        while usr1.recv().await.is_some() {
            reopen.request();
            tracing::info!("SIGUSR1: log file reopened");
        }
    });
    #[cfg(not(unix))]
    let _ = reopen;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rotation_keeps_the_current_name_and_the_retention_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aperture.log");
        let settings = Logs {
            max_bytes: 100,
            rotate_daily: true,
            keep: 2,
        };
        let reopen = Reopen::default();
        let mut w = RotatingFile::open(&path, settings, reopen.clone()).unwrap();
        for i in 0..10 {
            w.write_all(format!("line {i} {}\n", "x".repeat(60)).as_bytes())
                .unwrap();
        }
        w.flush().unwrap();
        let rotated: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("aperture.log."))
            .collect();
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        assert!(path.exists());
        // Reopen after the file was moved away: a new aperture.log.
        std::fs::rename(&path, dir.path().join("moved.log")).unwrap();
        reopen.request();
        w.write_all(b"after reopen\n").unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after reopen\n");
    }
}
