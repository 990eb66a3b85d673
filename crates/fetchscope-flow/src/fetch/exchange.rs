//! The session's side of the driver: what happened goes to the core's [`Session`]
//! (`tell`), its events join the step's stream in order, and its commands (look up,
//! connect, close, release, finish) are carried out over smoltcp.
//!
//! [`Session`]: fetchscope_core::session::Session

use fetchscope_core::error::FetchError;
use fetchscope_core::event::EventKind;
use fetchscope_core::session::{SessionCommand, SessionInput};
use fetchscope_net::Link;

use super::{Fetch, Pending, at, stack_time};

impl<L: Link> Fetch<L> {
    /// Tells the session what happened now, passes on its events (also those before a
    /// failure: the ServerHello before a certificate error) and carries out its commands.
    pub(super) fn tell(&mut self, input: SessionInput) -> Result<(), FetchError> {
        let r = self.session.handle(at(self.now()), input);
        self.drain_session_events();
        r?;
        self.run_commands()
    }

    /// Moves the session's events into this step's stream.
    pub(super) fn drain_session_events(&mut self) {
        while let Some((t, kind)) = self.session.poll_event() {
            if let (EventKind::HttpRequest(_), Some(conn)) = (&kind, self.conn.as_mut()) {
                // Retransmissions after this point are the request's (for a stall).
                conn.retransmissions_before = conn.track.retransmissions_tx;
            }
            self.pending.push(Pending::Event(stack_time(t), kind));
        }
    }

    /// Carries out the session's commands, in order.
    pub(super) fn run_commands(&mut self) -> Result<(), FetchError> {
        loop {
            self.drain_session_events();
            let Some(cmd) = self.session.poll_command() else {
                return Ok(());
            };
            match cmd {
                SessionCommand::Lookup { host, port } => self.start_dns(&host, port)?,
                SessionCommand::Connect { remote } => self.connect(remote)?,
                SessionCommand::Close => self.close(),
                // The old socket stays in the set (a late segment still gets its answer).
                SessionCommand::Release => self.conn = None,
                SessionCommand::Finish => self.finish(),
            }
        }
    }
}
