//! Teardown: TLS close_notify, then FIN; wait until the peer's FIN is acknowledged (or
//! the socket is CLOSED), then finish — or start the next hop of a redirect.

use fetchscope_net::Link;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;

use super::Fetch;
use fetchscope_core::TcpState;
use fetchscope_core::error::FetchError;
use fetchscope_core::event::Phase;

/// How long teardown may wait for the server to close its side.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(5);

impl<L: Link> Fetch<L> {
    /// Sends close_notify (TLS) and FIN.
    pub(super) fn begin_teardown(&mut self) {
        if self.phase == Phase::Teardown || self.phase == Phase::Done {
            return;
        }
        self.enter(Phase::Teardown);
        self.teardown_until = Some((self.now() + TEARDOWN_LIMIT).min(self.deadline));
        if let Some(tls) = self.conn.as_mut().and_then(|c| c.tls.as_mut()) {
            tls.close();
            self.process_tls();
            // close() below queues the FIN after what the socket holds: hand it the
            // close_notify first.
            self.write_tls_outgoing();
        }
        if let Some(h) = self.conn.as_ref().map(|c| c.tcp) {
            self.sockets.get_mut::<tcp::Socket>(h).close();
            self.observe_tcp(Some("close() called: FIN queued after our last data"));
        }
    }

    /// Ends the teardown once both FINs are through, or after [`TEARDOWN_LIMIT`].
    pub(super) fn drive_teardown(&mut self) -> Result<(), FetchError> {
        if self.phase != Phase::Teardown {
            return Ok(());
        }
        let Some(conn) = self.conn.as_ref() else {
            return self.teardown_done();
        };
        // Don't stop while ciphertext (close_notify) is still queued for the socket.
        if conn.tls.as_ref().is_some_and(|t| !t.outgoing().is_empty()) {
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
            return self.teardown_done();
        }
        if self.teardown_until.is_some_and(|t| self.now() >= t) {
            let state = conn.state;
            self.note(format!(
                "the server did not finish closing within {} s; stopping in {state}",
                TEARDOWN_LIMIT.total_millis() / 1000,
            ));
            return self.teardown_done();
        }
        Ok(())
    }

    fn teardown_done(&mut self) -> Result<(), FetchError> {
        self.teardown_until = None;
        match self.next_hop.take() {
            Some(target) => self.start_next_hop(target),
            None => {
                self.finish();
                Ok(())
            }
        }
    }
}
