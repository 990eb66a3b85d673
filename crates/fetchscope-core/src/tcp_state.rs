//! [`TcpState`]: the TCP states (RFC 9293) as one type, for smoltcp's socket (mapped in
//! `fetchscope-flow`) and for the kernel's `TCP_INFO` alike.

use std::fmt;

use serde::{Serialize, Serializer};

/// A TCP connection state. It prints (and serializes) as the RFC name smoltcp uses:
/// `CLOSED`, `LISTEN`, `SYN-SENT`, `SYN-RECEIVED`, `ESTABLISHED`, `FIN-WAIT-1`,
/// `FIN-WAIT-2`, `CLOSE-WAIT`, `CLOSING`, `LAST-ACK`, `TIME-WAIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// No connection.
    Closed,
    /// Waiting for a SYN.
    Listen,
    /// Our SYN is out, waiting for the SYN-ACK.
    SynSent,
    /// A SYN came in and our SYN-ACK is out, waiting for its ACK.
    SynReceived,
    /// The handshake is done: data flows both ways.
    Established,
    /// Our FIN is out, not acknowledged yet.
    FinWait1,
    /// Our FIN is acknowledged, waiting for the peer's.
    FinWait2,
    /// The peer's FIN came in; we have not sent ours.
    CloseWait,
    /// Both FINs crossed; waiting for the ACK of ours.
    Closing,
    /// The peer closed first and our FIN is out, waiting for its ACK.
    LastAck,
    /// Both sides closed; waiting out stray segments.
    TimeWait,
}

impl TcpState {
    /// The RFC name, as smoltcp's `tcp::State` prints it (`SYN-SENT`, `FIN-WAIT-1`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
        }
    }

    /// The state a Linux `TCP_*` number names (`include/net/tcp_states.h`, the
    /// `tcpi_state` of `TCP_INFO`): 1 `TCP_ESTABLISHED` ... 11 `TCP_CLOSING`.
    /// `TCP_NEW_SYN_RECV` (12) is a request socket's state, never a full socket's, and
    /// gives `None` like any other number.
    pub const fn from_linux(state: u8) -> Option<TcpState> {
        Some(match state {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynReceived,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Closed,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => return None,
        })
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_numbers() {
        let names: Vec<_> = (1..=11)
            .map(|n| TcpState::from_linux(n).unwrap().name())
            .collect();
        assert_eq!(
            names,
            [
                "ESTABLISHED",
                "SYN-SENT",
                "SYN-RECEIVED",
                "FIN-WAIT-1",
                "FIN-WAIT-2",
                "TIME-WAIT",
                "CLOSED",
                "CLOSE-WAIT",
                "LAST-ACK",
                "LISTEN",
                "CLOSING",
            ]
        );
        assert_eq!(TcpState::from_linux(0), None);
        assert_eq!(TcpState::from_linux(12), None);
    }
}

/// Which stack a TCP state change happened in: a few transitions read differently when
/// the kernel does them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// fetchscope's own stack (smoltcp).
    Userspace,
    /// The operating system's stack.
    Kernel,
}

/// Why a TCP state changed, when the transition itself says it.
pub fn transition_cause(from: TcpState, to: TcpState, stack: Stack) -> Option<&'static str> {
    use TcpState::*;
    let kernel = stack == Stack::Kernel;
    Some(match (from, to) {
        (SynSent, Established) if kernel => {
            "SYN-ACK received; the kernel's ACK completes the handshake and connect() returns"
        }
        (SynSent, Established) => "SYN-ACK received; our ACK completes the handshake",
        (SynSent, Closed) if kernel => "the connection attempt failed (RST or timeout)",
        (SynSent, Closed) => "RST received: connection refused",
        (Established, CloseWait) => "the server's FIN arrived",
        (FinWait1, FinWait2) => "our FIN was acknowledged",
        (FinWait1, Closing) => "the server's FIN crossed ours",
        (FinWait1, TimeWait) => "the server acknowledged our FIN and sent its own",
        (FinWait2, TimeWait) => "the server's FIN arrived; we acknowledge it",
        (Closing, TimeWait) => "our FIN was acknowledged",
        (LastAck, Closed) => "our FIN was acknowledged",
        (_, Closed) => "the connection was reset or aborted",
        _ => return None,
    })
}
