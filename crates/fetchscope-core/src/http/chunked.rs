//! The chunked transfer coding (RFC 9112 §7.1), decoded as bytes arrive.
//!
//! Chunk-size lines are bounded and parsed without overflow; extensions are ignored;
//! the CRLF after each chunk's data is checked (a bare LF is accepted, as `http.client`
//! reads lines); trailer fields are counted against a limit and ignored.

use super::error::{HttpError, quote};

/// How many bytes of a bad size line an error message quotes.
const QUOTE_LEN: usize = 40;

/// Where the decoder is within the chunked body.
#[derive(Debug)]
enum State {
    /// Reading a chunk-size line (bytes so far, without the line feed).
    Size { line: Vec<u8> },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// After chunk data: a CR or LF must follow.
    DataEnd,
    /// After chunk data and its CR: the LF must follow.
    DataEndLf,
    /// After the last (zero-size) chunk: reading trailer lines until an empty one.
    Trailers { line_len: usize },
    /// The empty line after the trailers was read.
    Done,
}

/// Removes chunk framing from a body, streaming the data out.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    max_line: usize,
    max_trailers: usize,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder that allows size lines of `max_line` bytes and `max_trailers` bytes of trailers.
    pub(crate) fn new(max_line: usize, max_trailers: usize) -> Self {
        Self {
            state: State::Size { line: Vec::new() },
            max_line,
            max_trailers,
            trailer_bytes: 0,
        }
    }

    /// Whether the whole chunked body, trailers included, has been read.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether the last chunk has been read and only trailers remain.
    pub(crate) fn in_trailers(&self) -> bool {
        matches!(self.state, State::Trailers { .. })
    }

    /// Decodes from `input`, passing chunk data to `on_data`. Returns the bytes consumed;
    /// stops right after the body's final empty line, leaving any later bytes.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        on_data: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<usize, HttpError> {
        let mut rest = input;
        while !rest.is_empty() && !self.is_done() {
            let used = self.step(rest, on_data)?;
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(input.len().saturating_sub(rest.len()))
    }

    /// Makes progress on non-empty `input`; returns the bytes consumed (at least one).
    fn step(
        &mut self,
        input: &[u8],
        on_data: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<usize, HttpError> {
        match &mut self.state {
            State::Size { line } => {
                let (piece, used, complete) = match input.iter().position(|&b| b == b'\n') {
                    Some(lf) => (
                        input.get(..lf).unwrap_or_default(),
                        lf.saturating_add(1),
                        true,
                    ),
                    None => (input, input.len(), false),
                };
                if line.len().saturating_add(piece.len()) > self.max_line {
                    return Err(HttpError::BadChunkSize(format!(
                        "a chunk-size line is longer than {} bytes",
                        self.max_line
                    )));
                }
                line.extend_from_slice(piece);
                if complete {
                    let size = parse_size_line(line)?;
                    self.state = if size == 0 {
                        State::Trailers { line_len: 0 }
                    } else {
                        State::Data { remaining: size }
                    };
                }
                Ok(used)
            }
            State::Data { remaining } => {
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                let data = input.get(..take).unwrap_or(input);
                on_data(data)?;
                *remaining = remaining.saturating_sub(u64::try_from(take).unwrap_or(u64::MAX));
                if *remaining == 0 {
                    self.state = State::DataEnd;
                }
                Ok(data.len())
            }
            State::DataEnd | State::DataEndLf => {
                let byte = input.first().copied().unwrap_or_default();
                let after_cr = matches!(self.state, State::DataEndLf);
                self.state = match (byte, after_cr) {
                    (b'\r', false) => State::DataEndLf,
                    (b'\n', _) => State::Size { line: Vec::new() },
                    _ => {
                        return Err(HttpError::MalformedChunk(format!(
                            "expected CRLF after a chunk's data, found `{}`",
                            quote(&[byte], 1)
                        )));
                    }
                };
                Ok(1)
            }
            State::Trailers { line_len } => {
                let byte = input.first().copied().unwrap_or_default();
                self.trailer_bytes = self.trailer_bytes.saturating_add(1);
                if self.trailer_bytes > self.max_trailers {
                    return Err(HttpError::TrailersTooLarge {
                        limit: self.max_trailers,
                    });
                }
                match byte {
                    b'\n' if *line_len == 0 => self.state = State::Done,
                    b'\n' => *line_len = 0,
                    b'\r' => {}
                    _ => *line_len = line_len.saturating_add(1),
                }
                Ok(1)
            }
            State::Done => Ok(0),
        }
    }
}

/// Parses `chunk-size [ BWS ; ext ... ] [CR]` into the size.
fn parse_size_line(line: &[u8]) -> Result<u64, HttpError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(HttpError::BadChunkSize(format!(
            "`{}` is not a hexadecimal chunk size",
            quote(line, QUOTE_LEN)
        )));
    }
    size.iter()
        .try_fold(0u64, |acc, &b| {
            let digit = char::from(b).to_digit(16)?;
            acc.checked_mul(16)?.checked_add(u64::from(digit))
        })
        .ok_or_else(|| {
            HttpError::BadChunkSize(format!(
                "chunk size `{}` does not fit in 64 bits",
                quote(size, QUOTE_LEN)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut decoder = ChunkedDecoder::new(64, 64);
        let mut out = Vec::new();
        let used = decoder.decode(input, &mut |d| {
            out.extend_from_slice(d);
            Ok(())
        })?;
        Ok((out, used, decoder.is_done()))
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let input = b"5;name=v\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (out, used, done) = decode_all(input).unwrap();
        assert_eq!(out, b"hello, world!!!");
        assert_eq!(used, input.len() - 4);
        assert!(done);
    }

    #[test]
    fn bare_line_feeds_are_accepted() {
        let (out, _, done) = decode_all(b"3\nabc\n0\n\n").unwrap();
        assert_eq!(out, b"abc");
        assert!(done);
    }

    #[test]
    fn every_split_point_gives_the_same_data() {
        let input = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
        for split in 0..=input.len() {
            let mut decoder = ChunkedDecoder::new(64, 64);
            let mut out = Vec::new();
            let mut sink = |d: &[u8]| {
                out.extend_from_slice(d);
                Ok(())
            };
            let (a, b) = input.split_at(split);
            assert_eq!(decoder.decode(a, &mut sink).unwrap(), a.len());
            assert_eq!(decoder.decode(b, &mut sink).unwrap(), b.len());
            assert!(decoder.is_done());
            assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        }
    }

    #[test]
    fn bad_sizes() {
        for line in [&b"\r\n"[..], b"-5\r\n", b"0x5\r\n", b"g\r\n", b"; ext\r\n"] {
            assert_eq!(
                decode_all(line).unwrap_err().kind(),
                "bad-chunk-size",
                "{line:?}"
            );
        }
        let err = decode_all(b"1ffffffffffffffff\r\n").unwrap_err();
        assert!(err.to_string().contains("64 bits"), "{err}");
        let err = decode_all(&[b'1'; 65]).unwrap_err();
        assert!(err.to_string().contains("longer than 64"), "{err}");
    }

    #[test]
    fn missing_crlf_after_data() {
        let err = decode_all(b"3\r\nabcX\r\n").unwrap_err();
        assert_eq!(err.kind(), "malformed-chunk");
        let err = decode_all(b"3\r\nabc\rX").unwrap_err();
        assert_eq!(err.kind(), "malformed-chunk");
    }

    #[test]
    fn trailers_are_bounded() {
        let mut input = b"0\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', 70));
        assert_eq!(decode_all(&input).unwrap_err().kind(), "trailers-too-large");
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut decoder = ChunkedDecoder::new(64, 64);
        let used = decoder
            .decode(b"ffffffffffffffff\r\nabc", &mut |_| Ok(()))
            .unwrap();
        assert_eq!(used, 21);
        assert!(!decoder.is_done());
    }
}
