//! [`ByteStream`]: where a [`Connection`](super::connection::Connection) takes the client's
//! bytes from and puts its own: a TCP socket it accepted, or a tunnel through the lab's
//! proxy ([`Tunnel`]), whose bytes arrive on the proxy's socket after a `CONNECT`.

use std::net::IpAddr;

use smoltcp::socket::tcp;

/// A bidirectional byte stream with TCP's end-of-stream and close semantics: what a
/// connection needs of its socket.
pub(crate) trait ByteStream {
    /// The TCP state of the underlying connection.
    fn state(&self) -> tcp::State;
    /// The address of the peer as the server sees it (`origin` in `/anything`).
    fn remote_addr(&self) -> Option<IpAddr>;
    /// True when bytes are waiting to be read.
    fn can_recv(&self) -> bool;
    /// False once the peer's FIN arrived and every byte before it was read.
    fn may_recv(&self) -> bool;
    /// Hands the waiting bytes (one contiguous piece of them) to `f`, which returns how
    /// many it used; `None` when the stream cannot be read.
    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> (usize, R)) -> Option<R>;
    /// Queues bytes for sending; how many were taken (0 when there is no room), or an
    /// error when the stream no longer sends.
    fn send(&mut self, data: &[u8]) -> Result<usize, tcp::SendError>;
    /// Closes the sending half (FIN once everything queued is sent).
    fn close(&mut self);
}

impl ByteStream for tcp::Socket<'_> {
    fn state(&self) -> tcp::State {
        tcp::Socket::state(self)
    }

    fn remote_addr(&self) -> Option<IpAddr> {
        self.remote_endpoint().map(|e| e.addr.into())
    }

    fn can_recv(&self) -> bool {
        tcp::Socket::can_recv(self)
    }

    fn may_recv(&self) -> bool {
        tcp::Socket::may_recv(self)
    }

    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> (usize, R)) -> Option<R> {
        tcp::Socket::recv(self, |buf: &mut [u8]| f(buf)).ok()
    }

    fn send(&mut self, data: &[u8]) -> Result<usize, tcp::SendError> {
        self.send_slice(data)
    }

    fn close(&mut self) {
        tcp::Socket::close(self);
    }
}

/// The inner side of a `CONNECT` tunnel: the proxy's socket to the client, read after the
/// bytes that came with the `CONNECT` head (`early`). The server on the far end sees the
/// proxy's address (`via`) as its peer, as an origin server behind a real proxy does.
#[derive(Debug)]
pub(crate) struct Tunnel<'a, S: ByteStream> {
    /// The proxy's socket to the client.
    pub socket: &'a mut S,
    /// Tunnel bytes the proxy read before the tunnel was open (after the `CONNECT`
    /// head, in the same segment or soon after); they come first.
    pub early: &'a mut Vec<u8>,
    /// The proxy's own address on the client's connection.
    pub via: Option<IpAddr>,
}

impl<S: ByteStream> ByteStream for Tunnel<'_, S> {
    fn state(&self) -> tcp::State {
        self.socket.state()
    }

    fn remote_addr(&self) -> Option<IpAddr> {
        self.via
    }

    fn can_recv(&self) -> bool {
        !self.early.is_empty() || self.socket.can_recv()
    }

    fn may_recv(&self) -> bool {
        !self.early.is_empty() || self.socket.may_recv()
    }

    fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> (usize, R)) -> Option<R> {
        if self.early.is_empty() {
            return self.socket.recv(f);
        }
        let (used, r) = f(self.early);
        self.early.drain(..used.min(self.early.len()));
        Some(r)
    }

    fn send(&mut self, data: &[u8]) -> Result<usize, tcp::SendError> {
        self.socket.send(data)
    }

    fn close(&mut self) {
        self.socket.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream over two byte vectors.
    #[derive(Default)]
    struct Pipe {
        input: Vec<u8>,
        output: Vec<u8>,
        fin: bool,
        closed: bool,
    }

    impl ByteStream for Pipe {
        fn state(&self) -> tcp::State {
            tcp::State::Established
        }
        fn remote_addr(&self) -> Option<IpAddr> {
            None
        }
        fn can_recv(&self) -> bool {
            !self.input.is_empty()
        }
        fn may_recv(&self) -> bool {
            !self.fin || !self.input.is_empty()
        }
        fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> (usize, R)) -> Option<R> {
            let (n, r) = f(&self.input);
            self.input.drain(..n);
            Some(r)
        }
        fn send(&mut self, data: &[u8]) -> Result<usize, tcp::SendError> {
            self.output.extend_from_slice(data);
            Ok(data.len())
        }
        fn close(&mut self) {
            self.closed = true;
        }
    }

    #[test]
    fn a_tunnel_reads_its_early_bytes_first_and_passes_the_rest_through() {
        let mut pipe = Pipe {
            input: b"world".to_vec(),
            fin: true,
            ..Pipe::default()
        };
        let mut early = b"hello ".to_vec();
        let via = Some(IpAddr::from([10, 88, 0, 4]));
        let mut t = Tunnel {
            socket: &mut pipe,
            early: &mut early,
            via,
        };
        assert_eq!(t.remote_addr(), via);
        let mut got = Vec::new();
        while t.can_recv() {
            t.recv(|b| {
                let n = b.len().min(4);
                got.extend_from_slice(&b[..n]);
                (n, ())
            });
        }
        assert_eq!(got, b"hello world");
        assert!(!t.may_recv());
        assert_eq!(t.send(b"x"), Ok(1));
        t.close();
        assert!(pipe.closed && pipe.output == b"x");
    }
}
