//! smoltcp's TCP socket states as the core's [`TcpState`].

use fetchscope_core::TcpState;
use smoltcp::socket::tcp;

/// The [`TcpState`] a smoltcp socket is in.
pub(crate) fn tcp_state(state: tcp::State) -> TcpState {
    match state {
        tcp::State::Closed => TcpState::Closed,
        tcp::State::Listen => TcpState::Listen,
        tcp::State::SynSent => TcpState::SynSent,
        tcp::State::SynReceived => TcpState::SynReceived,
        tcp::State::Established => TcpState::Established,
        tcp::State::FinWait1 => TcpState::FinWait1,
        tcp::State::FinWait2 => TcpState::FinWait2,
        tcp::State::CloseWait => TcpState::CloseWait,
        tcp::State::Closing => TcpState::Closing,
        tcp::State::LastAck => TcpState::LastAck,
        tcp::State::TimeWait => TcpState::TimeWait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLTCP: [tcp::State; 11] = [
        tcp::State::Closed,
        tcp::State::Listen,
        tcp::State::SynSent,
        tcp::State::SynReceived,
        tcp::State::Established,
        tcp::State::FinWait1,
        tcp::State::FinWait2,
        tcp::State::CloseWait,
        tcp::State::Closing,
        tcp::State::LastAck,
        tcp::State::TimeWait,
    ];

    #[test]
    fn names_are_smoltcps() {
        for s in SMOLTCP {
            let t = tcp_state(s);
            assert_eq!(t.to_string(), s.to_string());
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{s}\""),
                "{s}"
            );
        }
    }
}
