//! Reading step commands: single keys on a terminal (raw mode, restored on drop), one
//! command per line otherwise — so `printf 'n\nn\nc\n' | fetchscope step` is scriptable.

use std::io::{self, BufRead, IsTerminal};
use std::os::fd::{AsRawFd, RawFd};

/// A command at a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Something else, as typed (answered with a hint; the step stays paused).
    Unknown(String),
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
            other => StepCommand::Unknown(other.escape_debug().to_string()),
        }
    }

    /// The command a line stands for: empty (Enter), one key, or the key's word
    /// (`next`, `packet`, `state`, `phase`, `continue`, `ladder`, `quit`, `help`).
    pub fn from_line(line: &str) -> StepCommand {
        let word = line.trim();
        let mut chars = word.chars();
        match (chars.next(), chars.next()) {
            (None, _) => StepCommand::Next,
            (Some(c), None) => StepCommand::from_char(c),
            _ => match word.to_ascii_lowercase().as_str() {
                "next" => StepCommand::Next,
                "packet" => StepCommand::Packet,
                "state" => StepCommand::State,
                "phase" => StepCommand::Phase,
                "continue" => StepCommand::Continue,
                "ladder" => StepCommand::Ladder,
                "quit" | "exit" => StepCommand::Quit,
                "help" => StepCommand::Help,
                _ => StepCommand::Unknown(word.escape_debug().to_string()),
            },
        }
    }

    /// The command of the key that `bytes` (what a terminal sent, at least one byte)
    /// starts with, and how many bytes the key took: an escape sequence (an arrow or
    /// function key) and a UTF-8 character are one key each.
    pub fn from_key_bytes(bytes: &[u8]) -> (StepCommand, usize) {
        let Some(&first) = bytes.first() else {
            return (StepCommand::Next, 0);
        };
        if first == 0x1b {
            // ESC [ params final, or ESC O x (SS3); a lone ESC is the Escape key.
            let len = match bytes.get(1) {
                Some(b'[') => bytes[2..]
                    .iter()
                    .position(|b| (0x40..=0x7e).contains(b))
                    .map_or(bytes.len(), |i| i + 3),
                Some(b'O') if bytes.len() > 2 => 3,
                _ => 1,
            };
            let name = match &bytes[..len] {
                b"\x1b[A" => "↑",
                b"\x1b[B" => "↓",
                b"\x1b[C" => "→",
                b"\x1b[D" => "←",
                [0x1b] => "Esc",
                _ => "an escape sequence",
            };
            return (StepCommand::Unknown(name.to_string()), len);
        }
        let len = match first {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        }
        .min(bytes.len());
        match std::str::from_utf8(&bytes[..len])
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) => (StepCommand::from_char(c), len),
            None => (StepCommand::Unknown(format!("\\x{first:02x}")), 1),
        }
    }
}

/// The help text shown with `?`.
pub const HELP: &str = concat!(
    "  Enter, n   next event\n",
    "  p          next packet\n",
    "  s          next TCP or TLS state change\n",
    "  f          next phase\n",
    "  c          continue to the end\n",
    "  b          the packets so far as a ladder diagram\n",
    "  q          quit: nothing new is sent, but a RST for a connection whose SYN went out\n",
    "  ?          this help\n",
    "  (piped, one command a line: the key or its word, e.g. next, packet, quit)",
);

/// What waiting for a command ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            // A key's bytes arrive together (one read fills the buffer with them).
            let bytes = self.lines.fill_buf()?;
            if bytes.is_empty() {
                return Ok(Waited::End);
            }
            let (command, used) = StepCommand::from_key_bytes(bytes);
            self.lines.consume(used.max(1));
            return Ok(Waited::Command(command));
        }
        let mut line = String::new();
        if self.lines.read_line(&mut line)? == 0 {
            return Ok(Waited::End);
        }
        Ok(Waited::Command(StepCommand::from_line(&line)))
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
        assert_eq!(
            StepCommand::from_char('x'),
            StepCommand::Unknown("x".into())
        );
    }

    #[test]
    fn lines_are_whole_commands() {
        assert_eq!(StepCommand::from_line("\n"), StepCommand::Next);
        assert_eq!(StepCommand::from_line(" n \n"), StepCommand::Next);
        assert_eq!(StepCommand::from_line("next"), StepCommand::Next);
        assert_eq!(StepCommand::from_line("Quit\n"), StepCommand::Quit);
        // Not the first letter of anything: "foo" is no `f`.
        assert_eq!(
            StepCommand::from_line("foo\n"),
            StepCommand::Unknown("foo".into())
        );
        assert_eq!(
            StepCommand::from_line("x"),
            StepCommand::Unknown("x".into())
        );
    }

    #[test]
    fn an_escape_sequence_or_a_utf8_character_is_one_key() {
        assert_eq!(
            StepCommand::from_key_bytes(b"\x1b[A"),
            (StepCommand::Unknown("↑".into()), 3)
        );
        assert_eq!(
            StepCommand::from_key_bytes(b"\x1b[15~n"),
            (StepCommand::Unknown("an escape sequence".into()), 5)
        );
        assert_eq!(
            StepCommand::from_key_bytes(b"\x1b"),
            (StepCommand::Unknown("Esc".into()), 1)
        );
        assert_eq!(
            StepCommand::from_key_bytes("é".as_bytes()),
            (StepCommand::Unknown("é".into()), 2)
        );
        assert_eq!(StepCommand::from_key_bytes(b"nn"), (StepCommand::Next, 1));
    }
}
