//! `-o FILE`: the body is written to `FILE.part` and renamed to `FILE` only when the fetch
//! completed, so a failed fetch never destroys a file that was already there; what a
//! failed fetch received is removed, or kept in `FILE.part` with `--keep-partial`.
//!
//! A path that is not a regular file (`/dev/null`, a FIFO, a terminal) is written in
//! place: there is nothing to keep and renaming onto it would replace the device.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Where the body goes, and how it gets to its name.
#[derive(Debug)]
pub struct BodyOutput {
    path: PathBuf,
    /// The temporary file while the fetch runs, or `None` when written in place.
    part: Option<PathBuf>,
}

/// What became of the body file after a failed fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abandoned {
    /// Nothing was received; nothing was left behind.
    Nothing,
    /// Bytes were received: they stay in this file; the output path is untouched.
    KeptPart(PathBuf, u64),
    /// Bytes were received and removed (no `--keep-partial`).
    Removed(u64),
    /// The path is not a regular file and was written in place.
    InPlace,
}

impl BodyOutput {
    /// Opens the file the body is written to while the fetch runs.
    pub fn create(path: &Path) -> io::Result<(BodyOutput, File)> {
        let regular = match fs::metadata(path) {
            Ok(m) => m.is_file(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        if !regular {
            let f = OpenOptions::new().write(true).open(path)?;
            return Ok((
                BodyOutput {
                    path: path.to_path_buf(),
                    part: None,
                },
                f,
            ));
        }
        let part = part_path(path);
        let f = File::create(&part)?;
        Ok((
            BodyOutput {
                path: path.to_path_buf(),
                part: Some(part),
            },
            f,
        ))
    }

    /// The fetch completed: the body takes its name (replacing what was there).
    pub fn commit(self) -> io::Result<()> {
        match &self.part {
            Some(part) => fs::rename(part, &self.path),
            None => Ok(()),
        }
    }

    /// The fetch failed: the output path stays as it was; received bytes are kept beside
    /// it when `keep`, else removed; an empty temporary file is always removed.
    pub fn abandon(self, keep: bool) -> Abandoned {
        let Some(part) = self.part else {
            return Abandoned::InPlace;
        };
        match fs::metadata(&part).map(|m| m.len()) {
            Ok(n) if n > 0 && keep => Abandoned::KeptPart(part, n),
            Ok(n) if n > 0 => {
                let _ = fs::remove_file(&part);
                Abandoned::Removed(n)
            }
            _ => {
                let _ = fs::remove_file(&part);
                Abandoned::Nothing
            }
        }
    }

    /// The path asked for.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fetch is over: the body takes its name when it `completed`, else it is
    /// abandoned (kept in FILE.part with `keep`); returns the note for stderr, if any. An
    /// error is the rename's.
    pub fn settle(self, completed: bool, keep: bool) -> io::Result<Option<String>> {
        if completed {
            return self.commit().map(|()| None);
        }
        let path = self.path.clone();
        Ok(match self.abandon(keep) {
            Abandoned::KeptPart(part, n) => Some(format!(
                "the {n} body bytes received before the failure are in {} (--keep-partial); {} was not touched",
                part.display(),
                path.display()
            )),
            Abandoned::Removed(n) => Some(format!(
                "the {n} body bytes received before the failure were removed (--keep-partial keeps them); {} was not touched",
                path.display()
            )),
            Abandoned::Nothing | Abandoned::InPlace => None,
        })
    }
}

/// `dir/name` → `dir/name.part`.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileTypeExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fetchscope-body-output-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn a_failed_fetch_leaves_the_existing_file_alone() {
        let dir = scratch("fail");
        let keep = dir.join("keep.txt");
        fs::write(&keep, "precious").expect("write");
        let (out, _f) = BodyOutput::create(&keep).expect("create");
        assert_eq!(out.abandon(true), Abandoned::Nothing);
        assert_eq!(fs::read_to_string(&keep).expect("read"), "precious");
        assert!(!dir.join("keep.txt.part").exists());

        let (out, mut f) = BodyOutput::create(&keep).expect("create");
        f.write_all(b"half").expect("write");
        drop(f);
        assert_eq!(
            out.abandon(true),
            Abandoned::KeptPart(dir.join("keep.txt.part"), 4)
        );
        assert_eq!(fs::read_to_string(&keep).expect("read"), "precious");

        let (out, mut f) = BodyOutput::create(&keep).expect("create");
        f.write_all(b"half").expect("write");
        drop(f);
        assert_eq!(out.abandon(false), Abandoned::Removed(4));
        assert!(!dir.join("keep.txt.part").exists());
        assert_eq!(fs::read_to_string(&keep).expect("read"), "precious");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_completed_fetch_replaces_it() {
        let dir = scratch("ok");
        let keep = dir.join("keep.txt");
        fs::write(&keep, "old").expect("write");
        let (out, mut f) = BodyOutput::create(&keep).expect("create");
        f.write_all(b"new").expect("write");
        drop(f);
        out.commit().expect("commit");
        assert_eq!(fs::read_to_string(&keep).expect("read"), "new");
        assert!(!dir.join("keep.txt.part").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn devices_are_written_in_place() {
        let (out, _f) = BodyOutput::create(Path::new("/dev/null")).expect("create");
        assert_eq!(out.abandon(false), Abandoned::InPlace);
        let (out, _f) = BodyOutput::create(Path::new("/dev/null")).expect("create");
        out.commit().expect("commit");
        assert!(
            fs::metadata("/dev/null")
                .expect("null")
                .file_type()
                .is_char_device()
        );
    }
}
