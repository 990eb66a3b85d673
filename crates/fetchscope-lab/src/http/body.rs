//! Decoding request bodies as their bytes arrive: `Content-Length` and
//! `Transfer-Encoding: chunked` (RFC 9112 sections 6 and 7.1), bounded in size.

use super::request::BodyFraming;

/// The largest request body the server reads (16 MiB, as decoded): a longer
/// `Content-Length` gets 413 at once, a chunked body 413 as soon as its chunks add up to
/// more. Either way the connection closes after the answer.
pub(crate) const MAX_BODY_LEN: u64 = 16 * 1024 * 1024;

/// The longest chunk-size line (with its extensions) or trailer line; longer ones get 400.
const MAX_CHUNK_LINE: usize = 4096;

/// The most trailer bytes after the last chunk; more get 400.
const MAX_TRAILERS: usize = 16 * 1024;

/// The most hexadecimal digits of a chunk size (16 fill a `u64`).
const MAX_SIZE_DIGITS: usize = 16;

/// Why a body cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Longer than [`MAX_BODY_LEN`] (answer 413).
    TooLarge,
    /// Not valid chunked coding (answer 400).
    Malformed(&'static str),
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line: its bytes so far.
    Size(Vec<u8>),
    /// Reading chunk data: this many bytes are left.
    Data(u64),
    /// After chunk data: how many bytes of its CRLF have been seen.
    DataEnd(u8),
    /// After the last chunk: the current trailer line and the trailer bytes so far.
    Trailer(Vec<u8>, usize),
}

/// A body decoder for one request: feed it bytes, it appends the body's bytes and says
/// when the body has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyDecoder {
    /// `Content-Length`: this many bytes are left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
    /// The body has ended.
    Done,
}

impl BodyDecoder {
    /// A decoder for `framing`; [`BodyError::TooLarge`] when a `Content-Length` is over
    /// [`MAX_BODY_LEN`].
    pub fn new(framing: BodyFraming) -> Result<Self, BodyError> {
        match framing {
            BodyFraming::None | BodyFraming::Length(0) => Ok(BodyDecoder::Done),
            BodyFraming::Length(n) if n > MAX_BODY_LEN => Err(BodyError::TooLarge),
            BodyFraming::Length(n) => Ok(BodyDecoder::Length(n)),
            BodyFraming::Chunked => Ok(BodyDecoder::Chunked(ChunkedDecoder::default())),
        }
    }

    /// True when the whole body has been read.
    pub fn is_done(&self) -> bool {
        *self == BodyDecoder::Done
    }

    /// Decodes from `input` into `body`; returns how many bytes of `input` belong to the
    /// body (the rest is the next request).
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, BodyError> {
        match self {
            BodyDecoder::Done => Ok(0),
            BodyDecoder::Length(left) => {
                let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                body.extend_from_slice(input.get(..n).unwrap_or_default());
                *left -= n as u64;
                if *left == 0 {
                    *self = BodyDecoder::Done;
                }
                Ok(n)
            }
            BodyDecoder::Chunked(chunked) => {
                let used = chunked.feed(input, body)?;
                if chunked.is_done() {
                    *self = BodyDecoder::Done;
                }
                Ok(used)
            }
        }
    }
}

/// A `Transfer-Encoding: chunked` decoder that takes its input in pieces of any size.
/// Chunk extensions and trailer fields are read and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    done: bool,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size(Vec::new()),
            done: false,
        }
    }
}

impl ChunkedDecoder {
    /// True after the last chunk and the trailer section's empty line.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes from `input` into `body`; returns how many bytes of `input` it used (all of
    /// them, unless the body ended before).
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, BodyError> {
        let mut used = 0;
        while !self.done {
            let Some(rest) = input.get(used..).filter(|r| !r.is_empty()) else {
                break;
            };
            used += self.step(rest, body)?;
        }
        Ok(used)
    }

    /// Consumes at least one byte of `input` (not empty); returns how many.
    fn step(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, BodyError> {
        match &mut self.state {
            ChunkState::Size(line) => {
                let (n, complete) = take_line(line, input)?;
                if complete {
                    let size = chunk_size(line)?;
                    if (body.len() as u64).saturating_add(size) > MAX_BODY_LEN {
                        return Err(BodyError::TooLarge);
                    }
                    self.state = if size == 0 {
                        ChunkState::Trailer(Vec::new(), 0)
                    } else {
                        ChunkState::Data(size)
                    };
                }
                Ok(n)
            }
            ChunkState::Data(left) => {
                let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                body.extend_from_slice(input.get(..n).unwrap_or_default());
                *left -= n as u64;
                if *left == 0 {
                    self.state = ChunkState::DataEnd(0);
                }
                Ok(n)
            }
            ChunkState::DataEnd(seen) => {
                let expected = if *seen == 0 { b'\r' } else { b'\n' };
                if input.first() != Some(&expected) {
                    return Err(BodyError::Malformed("chunk data not followed by CRLF"));
                }
                *seen += 1;
                if *seen == 2 {
                    self.state = ChunkState::Size(Vec::new());
                }
                Ok(1)
            }
            ChunkState::Trailer(line, total) => {
                let (n, complete) = take_line(line, input)?;
                *total += n;
                if *total > MAX_TRAILERS {
                    return Err(BodyError::Malformed("trailer section too long"));
                }
                if complete {
                    if line.is_empty() {
                        self.done = true;
                    }
                    line.clear();
                }
                Ok(n)
            }
        }
    }
}

/// Appends `input` to `line` up to and including the first LF; returns the bytes used and
/// whether the line is complete, in which case `line` holds it without its CRLF. A line
/// longer than [`MAX_CHUNK_LINE`], or ending in a bare LF, is malformed.
fn take_line(line: &mut Vec<u8>, input: &[u8]) -> Result<(usize, bool), BodyError> {
    let (n, complete) = match input.iter().position(|b| *b == b'\n') {
        Some(lf) => (lf + 1, true),
        None => (input.len(), false),
    };
    line.extend_from_slice(input.get(..n).unwrap_or_default());
    if line.len() > MAX_CHUNK_LINE {
        return Err(BodyError::Malformed("chunk line too long"));
    }
    if complete {
        if !line.ends_with(b"\r\n") {
            return Err(BodyError::Malformed("chunk line not ended by CRLF"));
        }
        line.truncate(line.len() - 2);
    }
    Ok((n, complete))
}

/// The size of a chunk-size line (without CRLF): hexadecimal digits, then optional
/// whitespace and `;extensions`.
fn chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = line.get(digits..).unwrap_or_default().trim_ascii_start();
    if digits == 0 || digits > MAX_SIZE_DIGITS || !(rest.is_empty() || rest.starts_with(b";")) {
        return Err(BodyError::Malformed("bad chunk size"));
    }
    let hex = std::str::from_utf8(line.get(..digits).unwrap_or_default())
        .map_err(|_| BodyError::Malformed("bad chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| BodyError::Malformed("bad chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a chunked decoder `piece` bytes at a time.
    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, usize), BodyError> {
        let mut d = BodyDecoder::new(BodyFraming::Chunked)?;
        let mut body = Vec::new();
        let mut used = 0;
        for part in wire.chunks(piece) {
            used += d.feed(part, &mut body)?;
            if d.is_done() {
                break;
            }
        }
        assert!(d.is_done(), "not done after {used} bytes");
        Ok((body, used))
    }

    #[test]
    fn chunked_bodies_decode_in_pieces_of_any_size() {
        let wire =
            b"5;name=value\r\nhello\r\n1 \r\n,\r\nB\r\n 0123456789\r\n0\r\nX-T: 1\r\n\r\nGET /";
        let end = wire.len() - b"GET /".len();
        for piece in [1, 2, 3, 7, 100] {
            let (body, used) = decode_in_pieces(wire, piece).expect("valid");
            assert_eq!(body, b"hello, 0123456789", "piece {piece}");
            // bytes after the body are left for the next request
            if piece == 100 {
                assert_eq!(used, end);
            }
        }
        let (body, _) = decode_in_pieces(b"0\r\n\r\n", 1).expect("empty body");
        assert_eq!(body, b"");
    }

    #[test]
    fn malformed_chunking_is_refused() {
        for bad in [
            &b"zz\r\nab\r\n0\r\n\r\n"[..],
            b"2\r\nabc\r\n0\r\n\r\n",
            b"2\nab\r\n0\r\n\r\n",
            b"-1\r\n",
            b"2 x\r\nab\r\n",
            b"11111111111111111\r\n",
        ] {
            let err = decode_in_pieces(bad, 3).expect_err("malformed");
            assert!(matches!(err, BodyError::Malformed(_)), "{bad:?}: {err:?}");
        }
        let mut long = b"1;".to_vec();
        long.resize(MAX_CHUNK_LINE + 10, b'a');
        assert_eq!(
            decode_in_pieces(&long, 512),
            Err(BodyError::Malformed("chunk line too long"))
        );
    }

    #[test]
    fn bodies_over_the_limit_are_too_large() {
        assert_eq!(
            BodyDecoder::new(BodyFraming::Length(MAX_BODY_LEN + 1)),
            Err(BodyError::TooLarge)
        );
        assert_eq!(
            BodyDecoder::new(BodyFraming::Length(MAX_BODY_LEN)),
            Ok(BodyDecoder::Length(MAX_BODY_LEN))
        );
        // one chunk announcing more than the limit is refused at its size line
        let wire = format!("{:x}\r\n", MAX_BODY_LEN + 1);
        assert_eq!(
            decode_in_pieces(wire.as_bytes(), 4),
            Err(BodyError::TooLarge)
        );
    }

    #[test]
    fn content_length_bodies_stop_at_their_length() {
        let mut d = BodyDecoder::new(BodyFraming::Length(5)).expect("small");
        let mut body = Vec::new();
        assert_eq!(d.feed(b"he", &mut body), Ok(2));
        assert!(!d.is_done());
        assert_eq!(d.feed(b"lloGET", &mut body), Ok(3));
        assert!(d.is_done());
        assert_eq!(body, b"hello");
        assert!(BodyDecoder::new(BodyFraming::None).expect("none").is_done());
    }
}
