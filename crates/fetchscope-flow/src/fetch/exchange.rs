//! The session's side of the driver: what happened goes to the core's [`Session`]
//! (`tell`), its events join the step's stream in order, and its commands (look up,
//! connect, close, release, finish) are carried out over smoltcp.

use fetchscope_core::error::FetchError;
use fetchscope_core::event::EventKind;
use fetchscope_core::session::{Session, SessionCommand, SessionDriver};
use fetchscope_net::Link;

use super::{Fetch, Pending, at, stack_time};

impl<L: Link> SessionDriver for Fetch<L> {
    fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    fn clock(&self) -> fetchscope_core::Instant {
        at(self.now())
    }

    /// Into this step's stream.
    fn event(&mut self, t: fetchscope_core::Instant, kind: EventKind) {
        if let EventKind::HttpRequest(_) = &kind {
            // Retransmissions after this point are the request's (for a stall).
            let sent_again = self.tcp_space().retransmissions_tx;
            if let Some(conn) = self.conn.as_mut() {
                conn.retransmissions_before = sent_again;
            }
        }
        self.pending
            .push(Pending::Event(stack_time(t), Box::new(kind)));
    }

    fn command(&mut self, command: SessionCommand) -> Result<(), FetchError> {
        match command {
            SessionCommand::Lookup { host, port } => self.start_dns(&host, port)?,
            SessionCommand::Connect { remote } => self.connect(remote)?,
            SessionCommand::Close => self.close(),
            // The old socket stays in the set (a late segment still gets its answer).
            SessionCommand::Release => self.conn = None,
            SessionCommand::Finish => self.finish(),
        }
        Ok(())
    }
}
