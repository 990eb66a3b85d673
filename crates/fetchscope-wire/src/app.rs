//! The application protocol carried by a TCP connection (TLS, DNS, HTTP/1.x), chosen from
//! the ports and the first bytes, and fed with the reassembled streams.

use crate::dns::{DnsLayer, DnsTcpHalf};
use crate::http::{self, HttpConn, HttpLine};
use crate::problem::{DecodeProblem, Layer, malformed};
use crate::tls::conn::TlsConn;
use crate::tls::keylog::SecretStore;
use crate::tls::record::TlsRecord;
use crate::tunnel::Tunnel;

/// Ports whose traffic is TLS unless the bytes say otherwise.
const TLS_PORTS: [u16; 8] = [443, 465, 636, 853, 993, 995, 5223, 8443];
/// Ports whose traffic is cleartext HTTP unless the bytes say otherwise.
const HTTP_PORTS: [u16; 3] = [80, 8000, 8080];
/// DNS.
const DNS_PORT: u16 = 53;

/// Everything the application decoder found in one segment.
#[derive(Debug, Default)]
pub(crate) struct AppOutput {
    /// TLS records completed.
    pub tls: Vec<TlsRecord>,
    /// The first DNS message completed.
    pub dns: Option<DnsLayer>,
    /// The first HTTP start line completed.
    pub http: Option<HttpLine>,
    /// What could not be decoded.
    pub problems: Vec<DecodeProblem>,
    /// Whether the application bytes are collected into `app_data`.
    pub keep_app_data: bool,
    /// The application bytes delivered in order (cleartext HTTP, decrypted TLS
    /// application data), when `keep_app_data` is set.
    pub app_data: Vec<u8>,
}

/// The decoder of one connection.
#[derive(Debug, Default)]
pub(crate) enum App {
    /// No payload seen yet.
    #[default]
    Undecided,
    /// TLS.
    Tls(Box<TlsConn>),
    /// DNS over TCP, one framer per direction.
    Dns(Box<[DnsTcpHalf; 2]>),
    /// Cleartext HTTP/1.x.
    Http(Box<HttpConn>),
    /// An HTTP proxy's `CONNECT` tunnel: the two heads, then TLS.
    Tunnel(Box<Tunnel>),
    /// Something this crate does not decode.
    Opaque,
}

impl App {
    /// Chooses the decoder from the ports and the first payload bytes (sent by `side`).
    /// `from_start` says whether the stream is known from its first byte (the SYN was
    /// seen).
    pub fn choose(
        ports: (u16, u16),
        first: &[u8],
        from_start: bool,
        client: Option<usize>,
        side: usize,
    ) -> App {
        let has = |list: &[u16]| list.contains(&ports.0) || list.contains(&ports.1);
        let tls_like = matches!(first, [20..=24, 3, ..] | [20..=24]);
        if from_start && first.starts_with(b"CONNECT ") {
            App::Tunnel(Box::new(Tunnel::new(side)))
        } else if ports.0 == DNS_PORT || ports.1 == DNS_PORT {
            App::Dns(Box::default())
        } else if tls_like || (from_start && has(&TLS_PORTS) && !http::looks_like_start(first)) {
            App::Tls(Box::new(TlsConn::new(client)))
        } else if http::looks_like_start(first) || (from_start && has(&HTTP_PORTS)) {
            App::Http(Box::default())
        } else {
            App::Opaque
        }
    }

    /// Feeds in-order bytes sent by `side`.
    pub fn data(&mut self, side: usize, bytes: &[u8], secrets: &SecretStore, out: &mut AppOutput) {
        match self {
            App::Tls(tls) => {
                if out.keep_app_data {
                    tls.app_out = Some(std::mem::take(&mut out.app_data));
                }
                tls.feed(side, bytes, secrets, &mut out.tls, &mut out.problems);
                if let Some(data) = tls.app_out.take() {
                    out.app_data = data;
                }
            }
            App::Dns(halves) => {
                let Some(half) = halves.get_mut(side) else {
                    return;
                };
                for msg in half.feed(bytes) {
                    match msg {
                        Ok(dns) => {
                            out.dns.get_or_insert(dns);
                        }
                        Err(e) => out.problems.push(malformed(Layer::Dns, &e)),
                    }
                }
            }
            App::Http(conn) => {
                if out.keep_app_data {
                    out.app_data.extend_from_slice(bytes);
                }
                let (lines, problems) = conn.feed(side, bytes);
                if let Some(first) = lines.into_iter().next() {
                    out.http.get_or_insert(first);
                }
                out.problems
                    .extend(problems.iter().map(|e| malformed(Layer::Http, e)));
            }
            App::Tunnel(t) => {
                if out.keep_app_data {
                    t.tls.app_out = Some(std::mem::take(&mut out.app_data));
                }
                let o = t.feed(side, bytes, secrets, &mut out.tls, &mut out.problems);
                if let Some(data) = t.tls.app_out.take() {
                    out.app_data = data;
                }
                if let Some(line) = o.http {
                    out.http.get_or_insert(line);
                }
            }
            App::Undecided | App::Opaque => {}
        }
    }

    /// Bytes held in the decoder's buffers.
    pub fn buffered(&self) -> usize {
        match self {
            App::Tls(tls) => tls.buffered(),
            App::Dns(halves) => halves.iter().map(DnsTcpHalf::buffered).sum(),
            App::Http(conn) => conn.buffered(),
            App::Tunnel(t) => t.buffered(),
            App::Undecided | App::Opaque => 0,
        }
    }

    /// Bytes sent by `side` will never be seen: its framing is lost, and so is the start
    /// of a stream not yet recognised.
    pub fn gap(&mut self, side: usize) {
        match self {
            App::Tls(tls) => tls.lose(side),
            App::Dns(halves) => {
                if let Some(half) = halves.get_mut(side) {
                    half.lose_sync();
                }
            }
            App::Http(conn) => conn.lose(side),
            App::Tunnel(t) => t.lose(side),
            App::Undecided => *self = App::Opaque,
            App::Opaque => {}
        }
    }
}
