//! The words of the kernel run's TCP state changes. TLS stages and HTTP heads use the
//! same words as fetchscope's own fetch (`TlsProgress::into_stage`,
//! `fetchscope_flow::event::http_progress_event`), so the two streams read alike.

use fetchscope_flow::event::TcpStateChange;

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
