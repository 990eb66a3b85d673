//! An HTTP `CONNECT` tunnel: each side's cleartext head (the client's `CONNECT host:port`,
//! the proxy's answer), then TLS in both directions once the proxy said 2xx.

use crate::http::{HttpLine, start_line};
use crate::problem::{DecodeProblem, Layer, malformed};
use crate::tls::conn::TlsConn;
use crate::tls::keylog::SecretStore;
use crate::tls::record::TlsRecord;

/// The longest head either side may send before the tunnel carries TLS.
const MAX_TUNNEL_HEAD: usize = 64 * 1024;

/// Where one side of the tunnel is.
#[derive(Debug, Default)]
enum HalfState {
    /// Reading its head (the bytes so far).
    #[default]
    Head,
    /// Its head is over: what follows is TLS.
    Tls,
    /// Its head was not followed by a tunnel (a refusal's body, or a broken head).
    Opaque,
}

/// A CONNECT tunnel's decoder.
#[derive(Debug)]
pub(crate) struct Tunnel {
    heads: [Vec<u8>; 2],
    states: [HalfState; 2],
    /// The side that sent `CONNECT`.
    client: usize,
    pub(crate) tls: TlsConn,
}

/// What one segment of the tunnel carried.
#[derive(Debug, Default)]
pub(crate) struct TunnelOutput {
    /// The head's start line, when a head ended here.
    pub http: Option<HttpLine>,
}

impl Tunnel {
    /// A tunnel whose `CONNECT` came from `client`.
    pub fn new(client: usize) -> Tunnel {
        Tunnel {
            heads: Default::default(),
            states: Default::default(),
            client,
            tls: TlsConn::new(Some(client)),
        }
    }

    /// Feeds in-order bytes sent by `side`.
    pub fn feed(
        &mut self,
        side: usize,
        bytes: &[u8],
        secrets: &SecretStore,
        tls: &mut Vec<TlsRecord>,
        problems: &mut Vec<DecodeProblem>,
    ) -> TunnelOutput {
        let mut out = TunnelOutput::default();
        let (Some(head), Some(state)) = (self.heads.get_mut(side), self.states.get_mut(side))
        else {
            return out;
        };
        let mut rest = bytes;
        if matches!(state, HalfState::Head) {
            let before = head.len();
            head.extend_from_slice(bytes);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                if head.len() > MAX_TUNNEL_HEAD {
                    problems.push(malformed(
                        Layer::Http,
                        &crate::error::DecodeError::field("tunnel head over", MAX_TUNNEL_HEAD),
                    ));
                    *state = HalfState::Opaque;
                    head.clear();
                }
                return out;
            };
            let head_end = end + 4;
            let line = start_line(head);
            let ok = side == self.client
                || line
                    .as_deref()
                    .and_then(|l| l.split(' ').nth(1))
                    .is_some_and(|code| code.starts_with('2'));
            out.http = line.map(|line| HttpLine { line });
            *state = if ok {
                HalfState::Tls
            } else {
                HalfState::Opaque
            };
            let consumed = head_end.saturating_sub(before);
            rest = bytes.get(consumed..).unwrap_or_default();
            head.clear();
            head.shrink_to_fit();
        }
        if matches!(self.states.get(side), Some(HalfState::Tls)) && !rest.is_empty() {
            self.tls.feed(side, rest, secrets, tls, problems);
        }
        out
    }

    /// Bytes held in the decoder's buffers.
    pub fn buffered(&self) -> usize {
        self.heads.iter().map(Vec::len).sum::<usize>() + self.tls.buffered()
    }

    /// Bytes sent by `side` will never be seen.
    pub fn lose(&mut self, side: usize) {
        match self.states.get(side) {
            Some(HalfState::Tls) => self.tls.lose(side),
            _ => {
                if let Some(s) = self.states.get_mut(side) {
                    *s = HalfState::Opaque;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An application-data record with `n` bytes of (opaque) payload.
    fn record(n: u8) -> Vec<u8> {
        let mut r = vec![23, 3, 3, 0, n];
        r.extend(std::iter::repeat_n(0xab, n as usize));
        r
    }

    #[test]
    fn heads_then_tls_in_both_directions() {
        let secrets = SecretStore::default();
        let mut t = Tunnel::new(0);
        let (mut tls, mut problems) = (Vec::new(), Vec::new());
        let mut seg = b"CONNECT h.test:443 HTTP/1.1\r\nHost: h.test:443\r\n\r\n".to_vec();
        seg.extend(record(5));
        let out = t.feed(0, &seg, &secrets, &mut tls, &mut problems);
        assert_eq!(
            out.http.map(|h| h.line).as_deref(),
            Some("CONNECT h.test:443 HTTP/1.1")
        );
        assert_eq!(tls.len(), 1, "the record after the head is TLS");
        // The proxy's answer in two pieces, then a record.
        let out = t.feed(
            1,
            b"HTTP/1.1 200 Connection est",
            &secrets,
            &mut tls,
            &mut problems,
        );
        assert!(out.http.is_none());
        let mut seg = b"ablished\r\n\r\n".to_vec();
        seg.extend(record(7));
        let out = t.feed(1, &seg, &secrets, &mut tls, &mut problems);
        assert_eq!(
            out.http.map(|h| h.line).as_deref(),
            Some("HTTP/1.1 200 Connection established")
        );
        assert_eq!(tls.len(), 2);
        assert_eq!(t.buffered(), 0);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_refusal_is_not_read_as_tls() {
        let secrets = SecretStore::default();
        let mut t = Tunnel::new(0);
        let (mut tls, mut problems) = (Vec::new(), Vec::new());
        let seg = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!";
        let out = t.feed(1, seg, &secrets, &mut tls, &mut problems);
        assert!(out.http.is_some());
        assert!(tls.is_empty() && problems.is_empty());
        // An endless head is bounded.
        let mut t = Tunnel::new(0);
        for _ in 0..100 {
            t.feed(0, &[b'a'; 1024], &secrets, &mut tls, &mut problems);
        }
        assert!(t.buffered() <= MAX_TUNNEL_HEAD + 1024);
        assert_eq!(problems.len(), 1);
    }
}
