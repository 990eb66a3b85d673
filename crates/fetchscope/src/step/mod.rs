//! `fetchscope step`: the same fetch, paused after each event, with the whole state shown
//! at each pause.
//!
//! On a terminal each command is one key and the state panel is redrawn in place; with
//! stdin not a terminal each line is one command, so `printf 'n\nn\nc\n' | fetchscope step`
//! is scriptable. In the built-in lab the virtual clock stands still while paused, so
//! nothing times out; over a TUN device real time goes on, and packets that arrive during
//! a pause are shown as they come (the stack processes them when the fetch resumes).

pub mod input;
mod panel;

use std::io::{self, IsTerminal};

use fetchscope_core::{Event, EventKind};
use fetchscope_flow::fetch::Poll;

use crate::cli::StepArgs;
use crate::render::ladder::LadderRecorder;
use crate::run::{Heading, OutputChoices, Session, SetupError, Source};
use input::{CommandInput, HELP, StepCommand, Waited};

/// Where the next pause is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// After the next event.
    Event,
    /// After the next packet.
    Packet,
    /// After the next TCP or TLS state change.
    State,
    /// At the next phase.
    Phase,
    /// Never again.
    End,
}

impl Until {
    fn stops_at(self, e: &Event) -> bool {
        // The fetch is over: its summary follows at once (the text shows no line for
        // this phase, so a pause would show a panel after nothing).
        if matches!(
            e.kind,
            EventKind::Phase {
                phase: fetchscope_core::Phase::Done
            }
        ) {
            return false;
        }
        match self {
            Until::Event => !matches!(e.kind, EventKind::Done(_) | EventKind::Error(_)),
            Until::Packet => matches!(e.kind, EventKind::Packet(_)),
            Until::State => matches!(e.kind, EventKind::TcpState(_) | EventKind::Tls(_)),
            Until::Phase => matches!(e.kind, EventKind::Phase { .. }),
            Until::End => false,
        }
    }
}

/// The terminal's width in columns, if stdout is a terminal that reports at least 40.
fn terminal_width() -> Option<usize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal descriptor.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col >= 40).then_some(usize::from(ws.ws_col))
}

/// The width a panel is laid out for (its title rule, the key bar) when stdout is not a
/// terminal: lines are printed whole, this only shapes the panel.
const PIPED_WIDTH: usize = 80;

/// Cuts `line` to `width` characters (so a redraw knows how many rows it used).
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        line.to_string()
    } else {
        let mut s: String = line.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// How a panel is laid out: on a terminal, for its width (one column spare, so no line
/// wraps) and each line cut to it; otherwise for [`PIPED_WIDTH`] with lines kept whole.
fn layout(stdout_terminal: bool, columns: Option<usize>) -> (usize, bool) {
    match (stdout_terminal, columns) {
        (true, Some(c)) => (c - 1, true),
        (true, None) => (PIPED_WIDTH - 1, true),
        (false, _) => (PIPED_WIDTH, false),
    }
}

/// The panel's lines as printed: cut to `width` when `cut`, whole otherwise.
fn shape(lines: &[String], width: usize, cut: bool) -> String {
    let mut text = String::new();
    for l in lines {
        if cut {
            text.push_str(&fit(l, width));
        } else {
            text.push_str(l);
        }
        text.push('\n');
    }
    text
}

/// The state panel of a pause, drawn on stdout; on a terminal it is erased again before
/// the next events are printed, so the screen stays tidy.
struct Screen {
    redraw: bool,
    width: usize,
    /// Cut lines to `width` (stdout is a terminal).
    cut: bool,
    panel_rows: usize,
    /// A one-line message shown under the panel until the next redraw (terminal only).
    notice: Option<String>,
}

impl Screen {
    fn erase(&mut self, session: &mut Session) {
        if self.redraw && self.panel_rows > 0 {
            session.say(&format!("\r\x1b[{}F\x1b[J", self.panel_rows));
        }
        self.panel_rows = 0;
    }

    fn draw(&mut self, session: &mut Session, lines: &[String]) {
        let mut lines = lines.to_vec();
        lines.extend(self.notice.take());
        session.say(&shape(&lines, self.width, self.cut));
        self.panel_rows = if self.redraw { lines.len() } else { 0 };
    }

    /// Text that stays on screen (help, ladder, messages).
    fn print(&mut self, session: &mut Session, text: &str) {
        self.erase(session);
        session.say(text);
    }
}

/// Runs `fetchscope step`; returns the exit status.
pub fn step(step_args: &StepArgs) -> Result<i32, SetupError> {
    let args = &step_args.fetch.common;
    let mut session = match &step_args.replay {
        Some(file) => replay_session(file, step_args)?,
        None => {
            let mut s = Session::start(&step_args.fetch.url, args)?;
            if let Source::Live(f) = &mut s.fetch {
                f.keep_snapshots(true);
            }
            s
        }
    };
    // Single keys only for people at a terminal reading text; NDJSON readers send lines.
    let mut input = CommandInput::new(!args.json)?;
    let stdout_terminal = io::stdout().is_terminal();
    let (width, cut) = layout(stdout_terminal, terminal_width());
    let mut screen = Screen {
        redraw: input.is_terminal() && stdout_terminal,
        width,
        cut,
        panel_rows: 0,
        notice: None,
    };
    if !args.json {
        let how = if input.is_terminal() {
            "press a key"
        } else {
            "one command per line on stdin"
        };
        session.say(&format!(
            "stepping: the fetch pauses after each event ({how}; ? for help)\n"
        ));
    }
    let link_fd = match &session.fetch {
        Source::Live(f) => f.link().readiness_fd(),
        Source::Replay(_) => None,
    };
    let mut until = Until::Event;
    let mut history: Vec<Event> = Vec::new();
    loop {
        let event = match session.fetch.poll_event() {
            Poll::Event(event) => event,
            // The fetch waits for the network: what is buffered goes out now.
            Poll::Waiting => {
                session.flush();
                continue;
            }
            Poll::Over => break,
        };
        screen.erase(&mut session);
        session.handle(&event);
        history.push(event.clone());
        if !until.stops_at(&event) {
            continue;
        }
        until = pause(
            &mut session,
            &mut input,
            &mut screen,
            &mut history,
            link_fd,
            args.json,
        )?;
    }
    screen.erase(&mut session);
    session.finish()
}

/// The session of `step --replay FILE`: the capture's events, the outputs asked for.
fn replay_session(file: &std::path::Path, step_args: &StepArgs) -> Result<Session, SetupError> {
    let args = &step_args.fetch.common;
    if step_args.fetch.url != crate::cli::DEFAULT_URL {
        return Err(SetupError::usage(anyhow::anyhow!(
            "step --replay FILE steps through the capture; leave out the URL ({})",
            step_args.fetch.url
        )));
    }
    let run = crate::replay::ReplayRun {
        file,
        select: &step_args.select,
        keylog: args.keylog.as_deref(),
        show_secrets: args.show_secrets,
        step: true,
    };
    let (source, epoch, description) = run.source()?;
    let what = file.display().to_string();
    let heading = Heading {
        method: "replay",
        what: &what,
        description: &description,
        epoch,
    };
    let mut choices = OutputChoices::of(args, Vec::new());
    // --keylog names the capture's secrets here, and -o has no body to write.
    choices.body_to_stdout = false;
    Session::open(Source::Replay(Box::new(source)), &choices, &heading)
}

/// One pause: show the state, take commands until one resumes the fetch.
fn pause(
    session: &mut Session,
    input: &mut CommandInput,
    screen: &mut Screen,
    history: &mut Vec<Event>,
    link_fd: Option<std::os::fd::RawFd>,
    json: bool,
) -> Result<Until, SetupError> {
    // Whether the panel is shown (again) before the next command.
    let mut show = true;
    loop {
        if show {
            match &mut session.fetch {
                Source::Live(f) => {
                    let snap = f.snapshot();
                    if json {
                        session.snapshot_line(&snap);
                    } else {
                        screen.draw(session, &panel::lines(&snap, screen.width));
                    }
                }
                Source::Replay(r) => {
                    let state = r.state();
                    if json {
                        session.snapshot_line(&state);
                    } else {
                        screen.draw(session, &panel::replay_lines(&state, screen.width));
                    }
                }
            }
        }
        show = true;
        session.flush();
        let waited = input.wait(link_fd).map_err(SetupError::from)?;
        match waited {
            Waited::Link => {
                // Real time goes on: show what arrived while paused.
                screen.erase(session);
                if let Source::Live(f) = &mut session.fetch {
                    f.observe_while_paused();
                }
                while let Some(e) = match &mut session.fetch {
                    Source::Live(f) => f.next_queued_event(),
                    Source::Replay(_) => None,
                } {
                    session.handle(&e);
                    history.push(e);
                }
            }
            Waited::End => {
                screen.print(session, "input ended: continuing to the end\n");
                return Ok(Until::End);
            }
            Waited::Command(c) => match c {
                StepCommand::Next => return Ok(Until::Event),
                StepCommand::Packet => return Ok(Until::Packet),
                StepCommand::State => return Ok(Until::State),
                StepCommand::Phase => return Ok(Until::Phase),
                StepCommand::Continue => return Ok(Until::End),
                StepCommand::Quit => {
                    screen.erase(session);
                    session.fetch.abort("you quit at a pause (fetchscope step)");
                    return Ok(Until::End);
                }
                StepCommand::Ladder => {
                    let mut ladder = LadderRecorder::new();
                    for e in history.iter() {
                        ladder.event(e);
                    }
                    let text = ladder.finish().to_text();
                    screen.print(session, &format!("\n{text}\n"));
                }
                StepCommand::Help => screen.print(session, &format!("{HELP}\n")),
                StepCommand::Unknown(k) => {
                    // One line, and still paused: on a terminal under the redrawn panel
                    // (gone with the next redraw), otherwise printed once after it.
                    let what = if input.is_terminal() {
                        "key"
                    } else {
                        "command"
                    };
                    let hint = format!("unknown {what} '{k}' — ? shows the keys");
                    if screen.redraw {
                        screen.erase(session);
                        screen.notice = Some(hint);
                    } else {
                        if json {
                            eprintln!("fetchscope: {hint}");
                        } else {
                            session.say(&format!("{hint}\n"));
                        }
                        show = false;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_on_a_terminal_only() {
        let long = vec!["x".repeat(300)];
        let (width, cut) = layout(false, None);
        assert_eq!(shape(&long, width, cut).trim_end().len(), 300);
        let (width, cut) = layout(true, Some(80));
        let text = shape(&long, width, cut);
        assert_eq!(text.trim_end().chars().count(), 79);
        assert!(text.trim_end().ends_with('…'));
    }
}
