//! [`FileKeyLog`]: TLS secrets appended to a file in NSS key log format.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Appends each TLS secret to a file as an NSS key log line (`SSLKEYLOGFILE` format).
/// The file is created with mode 0600: whoever reads it can decrypt the traffic.
#[derive(Debug)]
pub struct FileKeyLog {
    file: Mutex<File>,
}

impl FileKeyLog {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        Ok(FileKeyLog {
            file: Mutex::new(opts.open(path)?),
        })
    }
}

/// The key log the user asked for: `--keylog FILE`, else `SSLKEYLOGFILE` when set and
/// not empty (as curl and requests honour it), else none.
pub fn requested_key_log(explicit: Option<&Path>) -> anyhow::Result<Option<FileKeyLog>> {
    use anyhow::Context;
    let path: Option<std::path::PathBuf> = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("SSLKEYLOGFILE")
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    let Some(path) = path else {
        return Ok(None);
    };
    FileKeyLog::open(&path)
        .map(Some)
        .with_context(|| format!("cannot open the key log file {}", path.display()))
}

impl rustls::KeyLog for FileKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!(
            "{label} {} {}\n",
            hex::encode(client_random),
            hex::encode(secret)
        );
        let mut f = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        // A key log that can't be written must not break the fetch; the error shows up
        // as a missing line, as with curl and browsers.
        let _ = f.write_all(line.as_bytes());
    }
}
