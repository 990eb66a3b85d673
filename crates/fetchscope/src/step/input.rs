//! Reading step commands: single keys on a terminal (raw mode, restored on drop), one
//! command per line otherwise — so `printf 'n\nn\nc\n' | fetchscope step` is scriptable.

use std::io::{self, BufRead, IsTerminal, Read};
use std::os::fd::{AsRawFd, RawFd};

/// A command at a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepCommand {
    /// Enter or `n`: the next event.
    Next,
    /// `p`: the next packet.
    Packet,
    /// `s`: the next TCP or TLS state change.
    State,
    /// `f`: the next phase.
    Phase,
    /// `c`: continue to the end.
    Continue,
    /// `b`: the packets so far as a ladder.
    Ladder,
    /// `q`: quit (the connection is aborted with a RST).
    Quit,
    /// `?`: help.
    Help,
    /// Something else (ignored with a hint).
    Unknown(char),
}

impl StepCommand {
    /// The command a key or a line's first character stands for.
    pub fn from_char(c: char) -> StepCommand {
        match c {
            '\n' | '\r' | 'n' | ' ' => StepCommand::Next,
            'p' => StepCommand::Packet,
            's' => StepCommand::State,
            'f' => StepCommand::Phase,
            'c' => StepCommand::Continue,
            'b' => StepCommand::Ladder,
            'q' | '\u{3}' | '\u{4}' => StepCommand::Quit,
            '?' | 'h' => StepCommand::Help,
            other => StepCommand::Unknown(other),
        }
    }
}

/// The help text shown with `?`.
pub const HELP: &str = "\
  Enter, n   next event
  p          next packet
  s          next TCP or TLS state change
  f          next phase
  c          continue to the end
  b          the packets so far as a ladder diagram
  q          quit: the connection is aborted with a RST
  ?          this help";

/// What waiting for a command ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// A command arrived.
    Command(StepCommand),
    /// The other file descriptor (the link) became readable first.
    Link,
    /// Input ended (a pipe ran dry).
    End,
}

/// Where commands come from.
pub struct CommandInput {
    raw: Option<RawMode>,
    // As large as std's own stdin buffer, so reads bypass it and poll(2) on the
    // descriptor sees every byte not yet in `lines`.
    lines: io::BufReader<io::Stdin>,
}

impl CommandInput {
    /// Reads from stdin; single keys (raw mode) when `keys` and stdin is a terminal.
    pub fn new(keys: bool) -> io::Result<CommandInput> {
        let stdin = io::stdin();
        let raw = if keys && stdin.is_terminal() {
            Some(RawMode::enable(stdin.as_raw_fd())?)
        } else {
            None
        };
        Ok(CommandInput {
            raw,
            lines: io::BufReader::with_capacity(8192, stdin),
        })
    }

    /// Whether commands are single key presses (and the screen may be redrawn).
    pub fn is_terminal(&self) -> bool {
        self.raw.is_some()
    }

    /// Waits for the next command; when `also` (the link's descriptor) becomes readable
    /// first, returns [`Waited::Link`] so the caller can show what arrived.
    pub fn wait(&mut self, also: Option<RawFd>) -> io::Result<Waited> {
        let stdin_fd = io::stdin().as_raw_fd();
        // Bytes already buffered (typed ahead, or the rest of a piped script) need no
        // waiting.
        if !self.lines.buffer().is_empty() {
            return self.read_command();
        }
        if let Some(fd) = also {
            let mut fds = [
                libc::pollfd {
                    fd: stdin_fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd structs for the call's duration.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    return Ok(Waited::Link);
                }
                return Err(e);
            }
            if fds[0].revents == 0 && fds[1].revents != 0 {
                return Ok(Waited::Link);
            }
        }
        self.read_command()
    }

    /// One key (terminal) or one line (otherwise).
    fn read_command(&mut self) -> io::Result<Waited> {
        if self.raw.is_some() {
            let mut b = [0u8; 1];
            if self.lines.read(&mut b)? == 0 {
                return Ok(Waited::End);
            }
            return Ok(Waited::Command(StepCommand::from_char(char::from(b[0]))));
        }
        let mut line = String::new();
        if self.lines.read_line(&mut line)? == 0 {
            return Ok(Waited::End);
        }
        let c = line.trim().chars().next().unwrap_or('\n');
        Ok(Waited::Command(StepCommand::from_char(c)))
    }
}

/// A terminal in non-canonical, no-echo mode; the old settings come back on drop.
/// Ctrl-C arrives as a key (and quits the step cleanly) rather than as a signal.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    fn enable(fd: RawFd) -> io::Result<RawMode> {
        // SAFETY: termios is plain old data; tcgetattr fills it for a valid fd.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is stdin's descriptor and `saved` is a valid termios to fill.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: `raw` is a valid termios derived from the terminal's own settings.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enable` on the same descriptor.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_commands() {
        assert_eq!(StepCommand::from_char('\r'), StepCommand::Next);
        assert_eq!(StepCommand::from_char('n'), StepCommand::Next);
        assert_eq!(StepCommand::from_char('p'), StepCommand::Packet);
        assert_eq!(StepCommand::from_char('s'), StepCommand::State);
        assert_eq!(StepCommand::from_char('f'), StepCommand::Phase);
        assert_eq!(StepCommand::from_char('c'), StepCommand::Continue);
        assert_eq!(StepCommand::from_char('b'), StepCommand::Ladder);
        assert_eq!(StepCommand::from_char('q'), StepCommand::Quit);
        assert_eq!(StepCommand::from_char('\u{3}'), StepCommand::Quit);
        assert_eq!(StepCommand::from_char('?'), StepCommand::Help);
        assert_eq!(StepCommand::from_char('x'), StepCommand::Unknown('x'));
    }
}
