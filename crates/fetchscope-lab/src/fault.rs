//! [`LabFault`]: the ways the built-in lab misbehaves on request, one failure mode each.
//!
//! A fault changes only what it must: `refused` removes the HTTPS listener but DNS still
//! answers, `cert-expired` swaps the server certificate but the CA the client trusts stays
//! the same, the HTTP faults change the answer to `/` and every other path is served as
//! usual. With a fixed seed a faulty lab repeats exactly, like a healthy one.

use std::fmt;
use std::str::FromStr;

/// One way the lab misbehaves (`fetchscope fetch --lab-fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabFault {
    /// DNS answers NXDOMAIN for every name.
    Nxdomain,
    /// DNS answers SERVFAIL for every query.
    Servfail,
    /// DNS never answers, over UDP or TCP.
    DnsSilent,
    /// DNS first answers with a wrong message id, then with the right one.
    DnsWrongId,
    /// DNS over UDP answers with the TC bit and no records; TCP port 53 answers in full.
    DnsTruncated,
    // DNS aliases and big answers (issue 11).
    /// DNS answers `www.example.test` with only a CNAME to `example.test`.
    DnsCnameOnly,
    /// DNS answers `www.example.test` with only a CNAME to a name that points back.
    DnsCnameLoop,
    /// DNS answers over UDP are padded to about 3.7 KB: IP fragments at MTU 1500.
    DnsBigAnswer,
    /// As `dns-big-answer`, and the router loses the second fragment of each UDP answer.
    DnsFragmentLost,
    /// Nothing listens on TCP port 443: SYNs get a RST.
    Refused,
    /// SYNs to TCP port 443 are dropped: no SYN-ACK ever comes.
    SynSilent,
    /// The server certificate is issued by a CA the client does not trust.
    CertUnknownCa,
    /// The server certificate is issued by the lab CA for `other.test` only.
    CertWrongName,
    /// The server certificate expired before the lab's clock started.
    CertExpired,
    /// The server certificate is self-signed.
    CertSelfSigned,
    /// The server certificate reaches the lab CA through 8 intermediate CAs.
    CertChainTooLong,
    /// The server certificate is for client authentication only (EKU clientAuth).
    CertClientAuthOnly,
    /// The server answers the ClientHello with a fatal `handshake_failure` alert.
    TlsAlert,
    /// The server answers the ClientHello with a TLS record announcing 65535 bytes.
    GiantTlsRecord,
    /// The answer to `/` starts with a malformed status line.
    BadStatusLine,
    /// The answer to `/` has more than 64 KiB of header fields.
    HugeHeaders,
    /// The answer to `/` is chunked with an invalid chunk-size line.
    BadChunk,
    /// The answer to `/` is shorter than its `Content-Length`; then the server closes.
    Truncated,
    /// The answer to `/` is gzip-encoded with corrupted compressed bytes.
    CorruptGzip,
    /// `/` redirects to itself.
    RedirectLoop,
    /// `/` starts a chain of 31 redirects.
    TooManyRedirects,
    /// The server waits 5 s (virtual) before answering each request.
    Slow,
    /// The answer to `/` sends header fields forever; the head never ends.
    EndlessHeaders,
    /// The answer to `/` is chunked, and its first chunk-size line never ends.
    EndlessChunkLine,
    /// The answer to `/` has no length and a body that never ends; the server never closes.
    EndlessBody,
}

/// The protocol layer a fault breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultLayer {
    /// The DNS server.
    Dns,
    /// TCP on port 443.
    Tcp,
    /// The TLS handshake.
    Tls,
    /// The HTTP response.
    Http,
}

impl fmt::Display for FaultLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultLayer::Dns => "DNS",
            FaultLayer::Tcp => "TCP",
            FaultLayer::Tls => "TLS",
            FaultLayer::Http => "HTTP",
        })
    }
}

/// Every fault, in the order of a fetch (DNS, TCP, TLS, HTTP).
const ALL: &[LabFault] = &[
    LabFault::Nxdomain,
    LabFault::Servfail,
    LabFault::DnsSilent,
    LabFault::DnsWrongId,
    LabFault::DnsTruncated,
    LabFault::DnsCnameOnly,
    LabFault::DnsCnameLoop,
    LabFault::DnsBigAnswer,
    LabFault::DnsFragmentLost,
    LabFault::Refused,
    LabFault::SynSilent,
    LabFault::CertUnknownCa,
    LabFault::CertWrongName,
    LabFault::CertExpired,
    LabFault::CertSelfSigned,
    LabFault::CertChainTooLong,
    LabFault::CertClientAuthOnly,
    LabFault::TlsAlert,
    LabFault::GiantTlsRecord,
    LabFault::BadStatusLine,
    LabFault::HugeHeaders,
    LabFault::BadChunk,
    LabFault::Truncated,
    LabFault::CorruptGzip,
    LabFault::RedirectLoop,
    LabFault::TooManyRedirects,
    LabFault::Slow,
    LabFault::EndlessHeaders,
    LabFault::EndlessChunkLine,
    LabFault::EndlessBody,
];

impl LabFault {
    /// Every fault, in the order of a fetch (DNS, TCP, TLS, HTTP).
    pub fn all() -> &'static [LabFault] {
        ALL
    }

    /// The fault's name on the command line, e.g. `dns-wrong-id`.
    pub fn name(self) -> &'static str {
        match self {
            LabFault::Nxdomain => "nxdomain",
            LabFault::Servfail => "servfail",
            LabFault::DnsSilent => "dns-silent",
            LabFault::DnsWrongId => "dns-wrong-id",
            LabFault::DnsTruncated => "dns-truncated",
            LabFault::DnsCnameOnly => "dns-cname-only",
            LabFault::DnsCnameLoop => "dns-cname-loop",
            LabFault::DnsBigAnswer => "dns-big-answer",
            LabFault::DnsFragmentLost => "dns-fragment-lost",
            LabFault::Refused => "refused",
            LabFault::SynSilent => "syn-silent",
            LabFault::CertUnknownCa => "cert-unknown-ca",
            LabFault::CertWrongName => "cert-wrong-name",
            LabFault::CertExpired => "cert-expired",
            LabFault::CertSelfSigned => "cert-self-signed",
            LabFault::CertChainTooLong => "cert-chain-too-long",
            LabFault::CertClientAuthOnly => "cert-client-auth-only",
            LabFault::TlsAlert => "tls-alert",
            LabFault::GiantTlsRecord => "giant-tls-record",
            LabFault::BadStatusLine => "bad-status-line",
            LabFault::HugeHeaders => "huge-headers",
            LabFault::BadChunk => "bad-chunk",
            LabFault::Truncated => "truncated",
            LabFault::CorruptGzip => "corrupt-gzip",
            LabFault::RedirectLoop => "redirect-loop",
            LabFault::TooManyRedirects => "too-many-redirects",
            LabFault::Slow => "slow",
            LabFault::EndlessHeaders => "endless-headers",
            LabFault::EndlessChunkLine => "endless-chunk-line",
            LabFault::EndlessBody => "endless-body",
        }
    }

    /// One line saying what the lab does wrong.
    pub fn description(self) -> &'static str {
        match self {
            LabFault::Nxdomain => "DNS answers NXDOMAIN (no such name) for every name",
            LabFault::Servfail => "DNS answers SERVFAIL (server failure) for every query",
            LabFault::DnsSilent => {
                "DNS never answers, over UDP or TCP: the client retries, then times out"
            }
            LabFault::DnsWrongId => {
                "DNS first sends an answer with the wrong id (a stub resolver must ignore it), then the right one"
            }
            LabFault::DnsTruncated => {
                "DNS over UDP answers with the TC (truncated) bit and no records; TCP port 53 gives the full answer"
            }
            LabFault::DnsCnameOnly => {
                "DNS answers www.example.test with only a CNAME to example.test (like unbound's local-data); the client asks for the target itself"
            }
            LabFault::DnsCnameLoop => {
                "DNS answers www.example.test with only a CNAME to loop.example.test, which is a CNAME back to www.example.test: an alias loop"
            }
            LabFault::DnsBigAnswer => {
                "DNS answers are padded to about 3.7 KB (TXT records), over the 1500-byte MTU: they arrive as three IP fragments"
            }
            LabFault::DnsFragmentLost => {
                "as dns-big-answer, and the router loses the second IP fragment of every UDP answer: the client must ask over TCP"
            }
            LabFault::Refused => {
                "nothing listens on TCP port 443: the SYN is answered with a RST (connection refused)"
            }
            LabFault::SynSilent => "SYNs to TCP port 443 are dropped: no SYN-ACK ever comes",
            LabFault::CertUnknownCa => {
                "the server's certificate is issued by a CA the client does not trust"
            }
            LabFault::CertWrongName => {
                "the server's certificate comes from the trusted lab CA but names only other.test"
            }
            LabFault::CertExpired => {
                "the server's certificate expired 30 days before the lab's clock started"
            }
            LabFault::CertSelfSigned => {
                "the server's certificate is self-signed: it is its own issuer, no CA vouches for it"
            }
            LabFault::CertChainTooLong => {
                "the server's certificate reaches the trusted lab CA only through 8 intermediate CAs (verifiers follow at most 6)"
            }
            LabFault::CertClientAuthOnly => {
                "the server's certificate comes from the trusted lab CA but is for client authentication only (EKU clientAuth)"
            }
            LabFault::TlsAlert => {
                "the server answers the ClientHello with a fatal handshake_failure alert and closes"
            }
            LabFault::GiantTlsRecord => {
                "the server answers the ClientHello with a TLS record announcing 65535 bytes (TLS allows 18432)"
            }
            LabFault::BadStatusLine => {
                "the response to / starts with a malformed status line (HTTP/1.1 2OO OK)"
            }
            LabFault::HugeHeaders => {
                "the response to / has 80 KiB of header fields (clients stop at 64 KiB)"
            }
            LabFault::BadChunk => {
                "the response to / is chunked, and its second chunk-size line is not hexadecimal"
            }
            LabFault::Truncated => {
                "the response to / announces twice the bytes it sends (Content-Length), then the server closes"
            }
            LabFault::CorruptGzip => {
                "the response to / is gzip-encoded, with bytes of the compressed stream corrupted"
            }
            LabFault::RedirectLoop => "/ redirects (302) to itself, forever",
            LabFault::TooManyRedirects => {
                "/ starts a chain of 31 redirects, one more than requests follows (30)"
            }
            LabFault::Slow => {
                "the server waits 5 s (virtual time) before answering each HTTP request"
            }
            LabFault::EndlessHeaders => {
                "the response to / sends header fields forever: its head never ends (clients stop at 64 KiB)"
            }
            LabFault::EndlessChunkLine => {
                "the response to / is chunked, and its first chunk-size line never ends (clients stop at 4 KiB)"
            }
            LabFault::EndlessBody => {
                "the response to / has no length and a body that never ends; the server never closes"
            }
        }
    }

    /// The protocol layer the fault breaks.
    pub fn layer(self) -> FaultLayer {
        match self {
            LabFault::Nxdomain
            | LabFault::Servfail
            | LabFault::DnsSilent
            | LabFault::DnsWrongId
            | LabFault::DnsTruncated
            | LabFault::DnsCnameOnly
            | LabFault::DnsCnameLoop
            | LabFault::DnsBigAnswer
            | LabFault::DnsFragmentLost => FaultLayer::Dns,
            LabFault::Refused | LabFault::SynSilent => FaultLayer::Tcp,
            LabFault::CertUnknownCa
            | LabFault::CertWrongName
            | LabFault::CertExpired
            | LabFault::CertSelfSigned
            | LabFault::CertChainTooLong
            | LabFault::CertClientAuthOnly
            | LabFault::TlsAlert
            | LabFault::GiantTlsRecord => FaultLayer::Tls,
            LabFault::BadStatusLine
            | LabFault::HugeHeaders
            | LabFault::BadChunk
            | LabFault::Truncated
            | LabFault::CorruptGzip
            | LabFault::RedirectLoop
            | LabFault::TooManyRedirects
            | LabFault::Slow
            | LabFault::EndlessHeaders
            | LabFault::EndlessChunkLine
            | LabFault::EndlessBody => FaultLayer::Http,
        }
    }

    /// Every fault with its description, one per line, aligned (for `--lab-fault help`).
    pub fn help_text() -> String {
        let width = ALL.iter().map(|f| f.name().len()).max().unwrap_or(0);
        let mut out = String::new();
        for f in ALL {
            out.push_str(&format!(
                "  {:<width$}  {:<4}  {}\n",
                f.name(),
                f.layer().to_string(),
                f.description()
            ));
        }
        out
    }
}

impl fmt::Display for LabFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name the lab does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lab fault '{name}'; the lab knows: {}", known_names())]
pub struct UnknownFault {
    /// The name given.
    pub name: String,
}

fn known_names() -> String {
    ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

impl FromStr for LabFault {
    type Err = UnknownFault;

    /// Parses a fault name, ignoring ASCII case and accepting `_` for `-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        ALL.iter()
            .copied()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| UnknownFault { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_parse_back() {
        let names: HashSet<&str> = LabFault::all().iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), LabFault::all().len());
        for f in LabFault::all() {
            assert_eq!(f.name().parse::<LabFault>(), Ok(*f));
            assert_eq!(f.to_string(), f.name());
            assert!(!f.description().is_empty() && !f.description().contains('\n'));
        }
        assert_eq!("DNS_Wrong_ID".parse::<LabFault>(), Ok(LabFault::DnsWrongId));
        let err = "nope".parse::<LabFault>().unwrap_err();
        assert!(err.to_string().contains("nxdomain, servfail"), "{err}");
    }

    #[test]
    fn help_lists_every_fault_on_its_own_line() {
        let help = LabFault::help_text();
        assert_eq!(help.lines().count(), LabFault::all().len());
        for (line, f) in help.lines().zip(LabFault::all()) {
            assert!(line.trim_start().starts_with(f.name()), "{line}");
            assert!(line.ends_with(f.description()), "{line}");
        }
    }
}
