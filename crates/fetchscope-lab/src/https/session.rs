//! [`Session`]: what carries HTTP on a connection — TLS (a rustls `ServerConnection`) on
//! port 443, or nothing at all (plain TCP) on port 80 — behind the few calls a
//! connection makes, with rustls's meaning: "TLS bytes" are the bytes on the socket,
//! "plaintext" the HTTP bytes.

use std::io::{self, Read, Write};

use rustls::ServerConnection;

/// The most request bytes a plain session buffers before the connection parses them.
const PLAIN_BUFFER: usize = 16 * 1024;

/// How HTTP travels on one connection.
#[derive(Debug)]
pub(crate) enum Session {
    /// HTTPS: TLS with rustls.
    Tls(Box<ServerConnection>),
    /// Plain HTTP: the socket's bytes are the HTTP bytes.
    Plain(PlainSession),
}

/// The buffers of a plain HTTP session.
#[derive(Debug, Default)]
pub(crate) struct PlainSession {
    /// Bytes read from the socket, not yet taken as requests (at most [`PLAIN_BUFFER`]).
    incoming: Vec<u8>,
    /// Response bytes not yet handed to the socket.
    outgoing: Vec<u8>,
}

impl Session {
    /// A plain HTTP session.
    pub fn plain() -> Self {
        Session::Plain(PlainSession::default())
    }

    /// True for TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Session::Tls(_))
    }

    /// True while more socket bytes are welcome.
    pub fn wants_read(&self) -> bool {
        match self {
            Session::Tls(tls) => tls.wants_read(),
            Session::Plain(p) => p.incoming.len() < PLAIN_BUFFER,
        }
    }

    /// Takes socket bytes from `rd` (at most what fits).
    pub fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        match self {
            Session::Tls(tls) => tls.read_tls(rd),
            Session::Plain(p) => {
                let room = PLAIN_BUFFER.saturating_sub(p.incoming.len());
                let before = p.incoming.len();
                rd.take(room as u64).read_to_end(&mut p.incoming)?;
                Ok(p.incoming.len() - before)
            }
        }
    }

    /// Processes what was read; `Ok(true)` when the peer sent close_notify.
    pub fn process_new_packets(&mut self) -> Result<bool, rustls::Error> {
        match self {
            Session::Tls(tls) => tls.process_new_packets().map(|s| s.peer_has_closed()),
            Session::Plain(_) => Ok(false),
        }
    }

    /// True until the TLS handshake is done (never for plain HTTP).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Session::Tls(tls) => tls.is_handshaking(),
            Session::Plain(_) => false,
        }
    }

    /// Reads HTTP bytes: `Ok(0)` after close_notify, `WouldBlock` when there are none.
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Session::Tls(tls) => tls.reader().read(buf),
            Session::Plain(p) => {
                if p.incoming.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = buf.len().min(p.incoming.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), p.incoming.get(..n)) {
                    dst.copy_from_slice(src);
                }
                p.incoming.drain(..n);
                Ok(n)
            }
        }
    }

    /// Hands HTTP bytes over for sending.
    pub fn write_plaintext(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Session::Tls(tls) => tls.writer().write(buf),
            Session::Plain(p) => {
                p.outgoing.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    /// True when bytes wait to go to the socket.
    pub fn wants_write(&self) -> bool {
        match self {
            Session::Tls(tls) => tls.wants_write(),
            Session::Plain(p) => !p.outgoing.is_empty(),
        }
    }

    /// Moves bytes for the socket into `out`.
    pub fn write_tls(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Session::Tls(tls) => tls.write_tls(out),
            Session::Plain(p) => {
                let n = p.outgoing.len();
                out.append(&mut p.outgoing);
                Ok(n)
            }
        }
    }

    /// Takes the socket bytes a plain session read but did not hand over as HTTP bytes
    /// yet (what follows a `CONNECT` head belongs to the tunnel); nothing for TLS.
    pub fn take_plain_input(&mut self) -> Vec<u8> {
        match self {
            Session::Tls(_) => Vec::new(),
            Session::Plain(p) => std::mem::take(&mut p.incoming),
        }
    }

    /// Queues close_notify (TLS only; plain HTTP just closes TCP).
    pub fn send_close_notify(&mut self) {
        if let Session::Tls(tls) = self {
            tls.send_close_notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sessions_pass_bytes_through_bounded() {
        let mut s = Session::plain();
        assert!(!s.is_tls() && !s.is_handshaking() && s.wants_read());
        let mut buf = [0u8; 8];
        assert_eq!(
            s.read_plaintext(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let big = vec![b'x'; PLAIN_BUFFER + 100];
        assert_eq!(s.read_tls(&mut &big[..]).unwrap(), PLAIN_BUFFER);
        assert!(!s.wants_read());
        assert_eq!(s.read_plaintext(&mut buf).unwrap(), 8);
        assert!(s.wants_read());
        assert_eq!(s.process_new_packets(), Ok(false));
        assert!(!s.wants_write());
        assert_eq!(s.write_plaintext(b"HTTP/1.1").unwrap(), 8);
        s.send_close_notify();
        let mut out = Vec::new();
        assert_eq!(s.write_tls(&mut out).unwrap(), 8);
        assert_eq!(out, b"HTTP/1.1");
        assert!(!s.wants_write());
        assert_eq!(s.take_plain_input().len(), PLAIN_BUFFER - 8);
        assert!(s.take_plain_input().is_empty());
    }
}
