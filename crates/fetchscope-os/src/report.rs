//! The words of the kernel run's TCP state changes. TLS stages and HTTP heads use the
//! same words as fetchscope's own fetch (`TlsProgress::into_stage`,
//! `fetchscope_core::event::http_progress_event`), so the two streams read alike.

use fetchscope_core::TcpState;
use fetchscope_core::event::TcpStateChange;

/// A state change of the kernel's socket, as `TCP_INFO` (or `/proc/net/tcp`) showed it.
pub fn tcp_change(from: TcpState, to: TcpState, cause: Option<&str>) -> TcpStateChange {
    use TcpState::*;
    let derived = match (from, to) {
        (SynSent, Established) => {
            Some("SYN-ACK received; the kernel's ACK completes the handshake and connect() returns")
        }
        (SynSent, Closed) => Some("the connection attempt failed (RST or timeout)"),
        (Established, CloseWait) => Some("the server's FIN arrived"),
        (FinWait1, FinWait2) => Some("our FIN was acknowledged"),
        (FinWait1, Closing) => Some("the server's FIN crossed ours"),
        (LastAck, Closed) => Some("our FIN was acknowledged"),
        (_, Closed) => Some("the connection was reset or aborted"),
        _ => None,
    };
    TcpStateChange {
        from,
        to,
        cause: cause.or(derived).map(str::to_string),
    }
}
