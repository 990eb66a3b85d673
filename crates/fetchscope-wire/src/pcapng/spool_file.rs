//! An anonymous temporary file: created private, unlinked at once where the platform
//! allows, so nothing is left behind however the process ends.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Attempts at finding an unused name before giving up.
const ATTEMPTS: u32 = 32;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A read-write temporary file without a name (or, where unlinking an open file is not
/// possible, one removed on drop).
#[derive(Debug)]
pub(crate) struct SpoolFile {
    /// The open file.
    pub file: File,
    /// The path still to remove on drop, if the file could not be unlinked at once.
    leftover: Option<PathBuf>,
}

impl SpoolFile {
    /// Creates one in `dir`.
    pub fn create_in(dir: &Path) -> io::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for _ in 0..ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".fetchscope-spool-{}-{nanos:x}-{n}",
                std::process::id()
            ));
            let mut options = OpenOptions::new();
            options.read(true).write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(file) => {
                    let leftover = match std::fs::remove_file(&path) {
                        Ok(()) => None,
                        Err(_) => Some(path),
                    };
                    return Ok(SpoolFile { file, leftover });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no unused temporary file name found",
        ))
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if let Some(path) = self.leftover.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn nameless_read_write() {
        let dir = std::env::temp_dir();
        let mut spool = SpoolFile::create_in(&dir).expect("created");
        spool.file.write_all(b"hello").expect("written");
        spool.file.seek(SeekFrom::Start(0)).expect("rewound");
        let mut back = String::new();
        spool.file.read_to_string(&mut back).expect("read");
        assert_eq!(back, "hello");
        #[cfg(unix)]
        assert!(spool.leftover.is_none(), "unlinked at once");
    }
}
