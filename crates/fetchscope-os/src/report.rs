//! The words of the event stream, shared by the kernel run's machine: the same stage names
//! and sentences as fetchscope's own fetch, so the two streams read alike.

use fetchscope_flow::event::{CertificateInfo, HttpResponseEvent, TcpStateChange};
use fetchscope_flow::http::HttpProgress;
use fetchscope_flow::tls::TlsProgress;

/// What a TLS progress report becomes: stage, sentence, certificates; `None` for progress
/// that is only a note (`Err(note)`).
pub fn tls_stage(
    p: TlsProgress,
    host: &str,
) -> Result<(&'static str, String, Vec<CertificateInfo>), String> {
    Ok(match p {
        TlsProgress::ClientHelloQueued => (
            "client_hello_sent",
            format!("ClientHello for {host} offering TLS 1.3 and 1.2, ALPN http/1.1"),
            Vec::new(),
        ),
        TlsProgress::ServerHello {
            version,
            suite,
            group,
        } => (
            "server_hello",
            format!(
                "the server chose {version} with {suite}{}",
                group
                    .map(|g| format!(" and key exchange {g}"))
                    .unwrap_or_default()
            ),
            Vec::new(),
        ),
        TlsProgress::ChainVerified { chain } => (
            "certificate_verified",
            format!(
                "certificate chain ({} certificate{}) verified for {host}",
                chain.len(),
                if chain.len() == 1 { "" } else { "s" },
            ),
            chain
                .iter()
                .filter_map(|c| fetchscope_flow::certinfo::describe(c))
                .collect(),
        ),
        TlsProgress::SignatureVerified => (
            "certificate_verify_ok",
            "the server proved it holds the certificate's private key (CertificateVerify)"
                .to_string(),
            Vec::new(),
        ),
        TlsProgress::ServerFinished => (
            "server_finished",
            "the server's Finished checked out: the handshake was not tampered with".to_string(),
            Vec::new(),
        ),
        TlsProgress::HandshakeComplete { alpn } => (
            "handshake_complete",
            format!(
                "client Finished sent; handshake complete{}",
                alpn.map(|a| format!(", ALPN {a}")).unwrap_or_default()
            ),
            Vec::new(),
        ),
        TlsProgress::TicketsReceived(n) => (
            "session_ticket",
            format!("the server sent a session ticket ({n} so far), for resuming later"),
            Vec::new(),
        ),
        TlsProgress::AppDataQueued(n) => {
            return Err(format!(
                "{n} bytes of HTTP encrypted into TLS application data"
            ));
        }
        TlsProgress::CloseNotifyQueued => (
            "close_notify_sent",
            "close_notify alert sent: no more data from us".to_string(),
            Vec::new(),
        ),
        TlsProgress::PeerClosed => (
            "close_notify_received",
            "the server sent close_notify: no more data from it".to_string(),
            Vec::new(),
        ),
    })
}

/// The response head event of an HTTP progress report, or a note for an interim response.
pub fn http_event(p: &HttpProgress) -> Option<Result<HttpResponseEvent, String>> {
    match p {
        HttpProgress::Interim(h) => Some(Err(format!(
            "interim response {} {} skipped, as requests does",
            h.status, h.reason
        ))),
        HttpProgress::Head(h) => Some(Ok(HttpResponseEvent {
            status: h.status,
            reason: h.reason.clone(),
            version: h.version.clone(),
            headers: h
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        })),
        _ => None,
    }
}

/// A state change of the kernel's socket, as `TCP_INFO` (or `/proc/net/tcp`) showed it.
pub fn tcp_change(from: &str, to: &str, cause: Option<&str>) -> TcpStateChange {
    let derived = match (from, to) {
        ("SYN-SENT", "ESTABLISHED") => {
            Some("SYN-ACK received; the kernel's ACK completes the handshake and connect() returns")
        }
        ("SYN-SENT", "CLOSED") => Some("the connection attempt failed (RST or timeout)"),
        ("ESTABLISHED", "CLOSE-WAIT") => Some("the server's FIN arrived"),
        ("FIN-WAIT-1", "FIN-WAIT-2") => Some("our FIN was acknowledged"),
        ("FIN-WAIT-1", "CLOSING") => Some("the server's FIN crossed ours"),
        ("LAST-ACK", "CLOSED") => Some("our FIN was acknowledged"),
        (_, "CLOSED") => Some("the connection was reset or aborted"),
        _ => None,
    };
    TcpStateChange {
        from: from.to_string(),
        to: to.to_string(),
        cause: cause.or(derived).map(str::to_string),
    }
}
