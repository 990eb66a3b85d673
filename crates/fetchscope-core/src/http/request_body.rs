//! The request body: bytes given on the command line, or a file sent as the connection
//! takes it (bounded memory, whatever the file's size).

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

/// How much of a file body is read at a time.
pub const BODY_CHUNK: usize = 64 * 1024;

/// What the request carries after its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// Bytes held in memory (`-d`, `--json`, `--data-binary` without `@`).
    Bytes(Vec<u8>),
    /// A file read in [`BODY_CHUNK`]s while it is sent (`--data-binary @FILE`); `len` is
    /// its size when the fetch started, sent as `Content-Length`.
    File {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
}

/// A body could not be read while it was sent.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// The file could not be opened or read.
    #[error("could not read the request body from {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The file is not as long as it was when the fetch started.
    #[error(
        "the request body {path} changed while it was sent: {len} bytes announced in Content-Length, {got} read"
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// The length announced.
        len: u64,
        /// What could be read.
        got: u64,
    },
}

impl RequestBody {
    /// The body's length in bytes (its `Content-Length`).
    pub fn len(&self) -> u64 {
        match self {
            RequestBody::Bytes(b) => b.len() as u64,
            RequestBody::File { len, .. } => *len,
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body for a file, its length taken now.
    pub fn file(path: PathBuf) -> io::Result<RequestBody> {
        let len = std::fs::metadata(&path)?.len();
        Ok(RequestBody::File { path, len })
    }
}

/// Reads a [`RequestBody`] a piece at a time, from its start.
#[derive(Debug)]
pub struct BodyReader {
    source: Source,
    /// Bytes handed out so far.
    sent: u64,
    len: u64,
}

#[derive(Debug)]
enum Source {
    Bytes(std::sync::Arc<RequestBody>),
    File { file: File, path: PathBuf },
}

impl BodyReader {
    /// Starts reading `body` from its first byte.
    pub fn open(body: std::sync::Arc<RequestBody>) -> Result<BodyReader, BodyReadError> {
        let len = body.len();
        let source = match &*body {
            RequestBody::Bytes(_) => Source::Bytes(body.clone()),
            RequestBody::File { path, .. } => Source::File {
                file: File::open(path).map_err(|source| BodyReadError::Io {
                    path: path.clone(),
                    source,
                })?,
                path: path.clone(),
            },
        };
        Ok(BodyReader {
            source,
            sent: 0,
            len,
        })
    }

    /// Whether every byte has been handed out.
    pub fn is_done(&self) -> bool {
        self.sent >= self.len
    }

    /// The next piece, at most `max` bytes, appended to `out` (nothing once done). A file
    /// that ends early, or has grown, is an error: the length was announced.
    pub fn next_piece(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, BodyReadError> {
        let want = (self.len - self.sent).min(max as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = match &mut self.source {
            Source::Bytes(body) => {
                let RequestBody::Bytes(bytes) = &**body else {
                    return Ok(0);
                };
                let start = self.sent as usize;
                let piece = bytes.get(start..start + want).unwrap_or_default();
                out.extend_from_slice(piece);
                piece.len()
            }
            Source::File { file, path } => {
                let start = out.len();
                out.resize(start + want, 0);
                let mut got = 0;
                while got < want {
                    match file.read(&mut out[start + got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(source) => {
                            out.truncate(start);
                            return Err(BodyReadError::Io {
                                path: path.clone(),
                                source,
                            });
                        }
                    }
                }
                out.truncate(start + got);
                if got < want {
                    return Err(BodyReadError::Changed {
                        path: path.clone(),
                        len: self.len,
                        got: self.sent + got as u64,
                    });
                }
                got
            }
        };
        self.sent += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bytes_come_out_in_pieces() {
        let body = Arc::new(RequestBody::Bytes(b"hello world".to_vec()));
        let mut r = BodyReader::open(body).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.next_piece(&mut out, 5).unwrap(), 5);
        assert!(!r.is_done());
        assert_eq!(r.next_piece(&mut out, 100).unwrap(), 6);
        assert!(r.is_done());
        assert_eq!(r.next_piece(&mut out, 100).unwrap(), 0);
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn a_file_is_read_as_it_goes_and_must_keep_its_length() {
        let path = std::env::temp_dir().join(format!("fsc-body-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 200_000]).unwrap();
        let body = Arc::new(RequestBody::file(path.clone()).unwrap());
        assert_eq!(body.len(), 200_000);
        let mut r = BodyReader::open(body.clone()).unwrap();
        let mut out = Vec::new();
        while !r.is_done() {
            let before = out.len();
            r.next_piece(&mut out, BODY_CHUNK).unwrap();
            assert!(out.len() - before <= BODY_CHUNK);
        }
        assert_eq!(out.len(), 200_000);
        std::fs::write(&path, b"short").unwrap();
        let mut r = BodyReader::open(body).unwrap();
        let e = r.next_piece(&mut Vec::new(), BODY_CHUNK).unwrap_err();
        assert!(e.to_string().contains("changed while it was sent"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
}
