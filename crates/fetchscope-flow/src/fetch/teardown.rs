//! Teardown over smoltcp: the session's close_notify, then FIN; the teardown is over once
//! the peer's FIN is acknowledged (or the socket is CLOSED), or when the session's time
//! for it runs out.

use fetchscope_core::TcpState;
use fetchscope_core::error::FetchError;
use fetchscope_core::event::Phase;
use fetchscope_core::session::SessionDriver;
use fetchscope_core::session::SessionInput;
use fetchscope_net::Link;
use smoltcp::socket::tcp;

use super::{Fetch, at};

impl<L: Link> Fetch<L> {
    /// Hands the socket what the session still sends (its close_notify), then closes it:
    /// the FIN is queued after it.
    pub(super) fn close(&mut self) {
        self.write_outgoing();
        if let Some(h) = self.conn.as_ref().map(|c| c.tcp) {
            self.sockets.get_mut::<tcp::Socket>(h).close();
            self.observe_tcp(Some("close() called: FIN queued after our last data"));
        }
    }

    /// Tells the session once both FINs are through, or lets it stop waiting.
    pub(super) fn drive_teardown(&mut self) -> Result<(), FetchError> {
        if self.session.phase() != Phase::Teardown {
            return Ok(());
        }
        let Some(conn) = self.conn.as_ref() else {
            return self.tell(SessionInput::Closed);
        };
        // Don't stop while ciphertext (close_notify) is still queued for a socket that can
        // send it (one the server reset, or closed after answering early, cannot).
        let can_send = self.sockets.get::<tcp::Socket>(conn.tcp).may_send();
        if !self.session.outgoing().is_empty() && can_send {
            return Ok(());
        }
        let done = match conn.state {
            TcpState::Closed => true,
            TcpState::TimeWait => match (conn.peer_fin_end, conn.last_tx_ack) {
                (Some(fin), Some(ack)) => ack == fin,
                _ => false,
            },
            _ => false,
        };
        if done {
            return self.tell(SessionInput::Closed);
        }
        self.session.handle_timeout(at(self.now()));
        self.run_commands()
    }
}
