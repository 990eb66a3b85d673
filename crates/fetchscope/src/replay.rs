//! `fetchscope replay FILE` and `step --replay FILE`: a capture (pcap or pcapng, from
//! tcpdump, Wireshark or fetchscope's `--pcap`) read packet by packet into the core's
//! [`Replay`] machine, whose events go to the same renderers a live fetch has.

use std::fs::File;
use std::io::{BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use fetchscope_core::replay::{HostFinder, Replay, ReplayOptions, ReplayState};
use fetchscope_core::{FetchError, Summary};
use fetchscope_flow::fetch::Poll;
use fetchscope_wire::capture::{CaptureError, CaptureReader};

use crate::cli::ColorChoice;
use crate::run::{Heading, OutputChoices, Session, SetupError, Source};

/// `fetchscope replay --help`'s examples.
pub const REPLAY_EXAMPLES: &str = "Examples:
  fetchscope fetch --pcap lab.pcapng && fetchscope replay lab.pcapng   # fetchscope's own capture
  # capture requests.get() with its TLS secrets, then replay it:
  sudo tcpdump -i any -w get.pcap 'port 53 or port 443' &
  SSLKEYLOGFILE=keys.log python3 -c 'import requests; requests.get(\"https://example.org/\")'
  sudo kill %1; fetchscope replay get.pcap --keylog keys.log
  fetchscope replay get.pcap --keylog keys.log --ladder
  fetchscope replay big.pcapng --host example.org --from 12.5 --until 20 --json
  fetchscope step --replay get.pcap --keylog keys.log       # pause after each event

The TLS secrets come from the pcapng's Decryption Secrets Block (editcap --inject-secrets,
fetchscope --pcap), from --keylog FILE, or from the file SSLKEYLOGFILE names. Without them the
replay shows everything up to the encrypted records and says what the key log would add.

Exit status: 0 the capture shows a completed fetch (whatever the HTTP status), 2 usage,
3 the file cannot be read or holds no fetch, 4 DNS, 5 TCP connect, 6 TLS, 7 HTTP (the
capture ends before the response does), 22 HTTP status >= 400 with --fail.";

/// Which packets of a capture make the replayed fetch.
#[derive(Debug, Clone, Default, Args)]
pub struct ReplaySelect {
    /// The client whose fetch is replayed (default: the sender of the capture's first
    /// DNS query or TCP SYN); every packet to or from it is shown.
    #[arg(long, value_name = "IP", help_heading = "Replay")]
    pub client_addr: Option<IpAddr>,

    /// Only the lookups of HOST and the connections to it (by TLS server name, HTTP Host
    /// or the addresses its lookups returned), and those of the hosts its redirects lead
    /// to. Reads the file twice.
    #[arg(long, value_name = "NAME", help_heading = "Replay")]
    pub host: Option<String>,

    /// Only packets from SECS seconds after the capture's first packet.
    #[arg(long, value_name = "SECS", value_parser = secs, help_heading = "Replay")]
    pub from: Option<Duration>,

    /// Only packets before SECS seconds after the capture's first packet.
    #[arg(long, value_name = "SECS", value_parser = secs, help_heading = "Replay")]
    pub until: Option<Duration>,
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.0..=1e9).contains(&v) {
        return Err(format!("{v} is not between 0 and 1e9 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Options of `fetchscope replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture: pcap or pcapng (raw IP, Ethernet, Linux cooked v1/v2, loopback), as
    /// tcpdump -w, Wireshark or fetchscope --pcap write it; - reads stdin.
    pub file: PathBuf,

    /// Which packets make the fetch.
    #[command(flatten)]
    pub select: ReplaySelect,

    /// TLS secrets in NSS key log format (what SSLKEYLOGFILE makes a client write);
    /// SSLKEYLOGFILE itself is read too, and so is the pcapng's Decryption Secrets Block.
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub keylog: Option<PathBuf>,

    /// Print NDJSON events on stdout (one per line), nothing else.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// Draw the ASCII ladder diagram after the trace.
    #[arg(long, help_heading = "Output")]
    pub ladder: bool,

    /// Write the replayed fetch as an HTTP Archive (HAR 1.2) to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub har: Option<PathBuf>,

    /// Write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE.html", help_heading = "Output")]
    pub report: Option<PathBuf>,

    /// Write the replayed packets (only the fetch's) to FILE as pcapng, with the TLS
    /// secrets embedded.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub pcap: Option<PathBuf>,

    /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "auto",
        help_heading = "Output"
    )]
    pub color: ColorChoice,

    /// No trace: only errors and what -w asks for.
    #[arg(short = 's', long, conflicts_with = "json", help_heading = "Output")]
    pub silent: bool,

    /// After the replay, print FORMAT with curl's variables filled in (as fetch -w).
    #[arg(short = 'w', long, value_name = "FORMAT", value_parser = crate::cli::parse_write_out, help_heading = "Output")]
    pub write_out: Option<crate::render::write_out::WriteOut>,

    /// Show Authorization, Cookie and Set-Cookie values instead of <redacted, N bytes>.
    #[arg(long, help_heading = "Output")]
    pub show_secrets: bool,

    /// Do not show the start of a text body in the text output.
    #[arg(long, help_heading = "Output")]
    pub no_body: bool,

    /// Exit with status 22 when the final HTTP status is 400 or more.
    #[arg(long, help_heading = "Run")]
    pub fail: bool,
}

/// The bytes of a capture: a file, or stdin.
type Input = BufReader<Box<dyn Read>>;

/// A capture being replayed: the reader and the machine.
pub struct ReplaySource {
    reader: Option<CaptureReader<Input>>,
    replay: Replay,
    /// Key log bytes of the capture already handed to the machine.
    key_log_seen: usize,
    packets: u64,
}

impl ReplaySource {
    /// Opens `path` (or stdin for `-`) for a replay with `options`, learning `key_log`.
    pub fn open(path: &Path, options: ReplayOptions, key_log: &str) -> Result<Self, SetupError> {
        let reader = CaptureReader::open(input(path)?).map_err(|e| capture_error(path, e))?;
        let mut replay = Replay::new(options);
        replay.learn_key_log(key_log);
        let mut source = ReplaySource {
            reader: Some(reader),
            replay,
            key_log_seen: 0,
            packets: 0,
        };
        source.learn_capture_keys();
        Ok(source)
    }

    /// Reads until the first packet of the fetch (or the end), so its time is known.
    pub fn epoch(&mut self) -> SystemTime {
        while self.replay.epoch().is_none() && self.reader.is_some() {
            self.read_one();
        }
        SystemTime::UNIX_EPOCH + self.replay.epoch().unwrap_or_default()
    }

    /// The next event; `Over` once the capture is read and every event given.
    pub fn poll_event(&mut self) -> Poll {
        loop {
            if let Some(e) = self.replay.poll_event() {
                return Poll::Event(e);
            }
            if self.reader.is_none() {
                return Poll::Over;
            }
            self.read_one();
        }
    }

    /// Reads one packet into the machine, or ends the replay at the capture's end.
    fn read_one(&mut self) {
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        match reader.next_packet() {
            Some(Ok(p)) => {
                self.packets += 1;
                self.learn_capture_keys();
                self.replay.handle_packet(p.time, &p.ip, p.truncated);
            }
            Some(Err(e)) => {
                self.replay.note_damage(&e.to_string());
                self.end();
            }
            None => self.end(),
        }
    }

    fn end(&mut self) {
        let skipped = self.reader.as_ref().map_or(0, CaptureReader::skipped);
        if skipped > 0 {
            self.replay.note_skipped_blocks(skipped);
        }
        self.reader = None;
        self.replay.finish();
    }

    /// Hands over secrets the capture's Decryption Secrets Blocks added.
    fn learn_capture_keys(&mut self) {
        let Some(reader) = &self.reader else { return };
        let text = reader.key_log();
        if text.len() > self.key_log_seen {
            let new = text
                .get(self.key_log_seen..)
                .unwrap_or_default()
                .to_string();
            self.key_log_seen = text.len();
            self.replay.learn_key_log(&new);
        }
    }

    /// The outcome, once the capture is read.
    pub fn result(&self) -> Option<&Result<Summary, FetchError>> {
        self.replay.outcome()
    }

    /// Every TLS secret learned.
    pub fn key_log(&self) -> &str {
        self.replay.key_log()
    }

    /// Stops reading the capture: the replay ends as a stopped run.
    pub fn abort(&mut self, why: &str) {
        if self.reader.take().is_some() {
            self.replay.abort(why);
        }
    }

    /// What the packets so far show, for a pause of step mode.
    pub fn state(&self) -> ReplayState {
        self.replay.state()
    }
}

fn input(path: &Path) -> Result<Input, SetupError> {
    let inner: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            File::open(path)
                .with_context(|| format!("cannot open the capture {}", path.display()))
                .map_err(SetupError::setup)?,
        )
    };
    Ok(BufReader::with_capacity(256 * 1024, inner))
}

fn capture_error(path: &Path, e: CaptureError) -> SetupError {
    SetupError::setup(anyhow::anyhow!("{}: {e}", path.display()))
}

/// The key log text `--keylog FILE` or SSLKEYLOGFILE names, with where it came from.
fn key_log_text(explicit: Option<&Path>) -> Result<(String, Option<String>), SetupError> {
    let (path, from) = match explicit {
        Some(p) => (p.to_path_buf(), "--keylog"),
        None => match std::env::var_os("SSLKEYLOGFILE").filter(|v| !v.is_empty()) {
            Some(p) => (PathBuf::from(p), "SSLKEYLOGFILE"),
            None => return Ok((String::new(), None)),
        },
    };
    let max = fetchscope_wire::capture::MAX_KEY_LOG;
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|f| f.take(max as u64 + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read the key log {} ({from})", path.display()))
        .map_err(SetupError::setup)?;
    if bytes.len() > max {
        bytes.truncate(max);
        eprintln!(
            "fetchscope: note: the key log {} is larger than {} MiB; only its first {} MiB are read",
            path.display(),
            max >> 20,
            max >> 20
        );
    }
    // Lines that are not text are not key log lines; the rest still count.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok((text, Some(format!("{from} {}", path.display()))))
}

/// Everything a replay session needs from the command line.
pub struct ReplayRun<'a> {
    /// The capture.
    pub file: &'a Path,
    /// Which packets.
    pub select: &'a ReplaySelect,
    /// `--keylog FILE` (read).
    pub keylog: Option<&'a Path>,
    /// `--show-secrets`.
    pub show_secrets: bool,
    /// Step mode: pauses show the state after the events shown so far.
    pub step: bool,
}

impl ReplayRun<'_> {
    /// The replay's source, with the first packet read (its time is the outputs' epoch),
    /// and a description for the outputs' header.
    pub fn source(&self) -> Result<(ReplaySource, SystemTime, String), SetupError> {
        let (key_log, key_source) = key_log_text(self.keylog)?;
        let flows = match &self.select.host {
            Some(host) => {
                if self.file == Path::new("-") {
                    return Err(SetupError::usage(anyhow::anyhow!(
                        "--host reads the capture twice, so it needs a file, not stdin (-)"
                    )));
                }
                Some(self.find_host(host, &key_log)?)
            }
            None => None,
        };
        let options = ReplayOptions {
            client: self.select.client_addr,
            from: self.select.from,
            until: self.select.until,
            flows,
            show_secrets: self.show_secrets,
        };
        let mut source = ReplaySource::open(self.file, options, &key_log)?;
        source.replay.keep_states(self.step);
        let epoch = source.epoch();
        let keys = match key_source {
            Some(k) => format!("TLS secrets from {k}"),
            None => "TLS secrets only from the capture itself".to_string(),
        };
        let client = source
            .replay
            .client()
            .map(|c| format!("client {c}"))
            .unwrap_or_else(|| "no client found".into());
        let description = format!("replay of a capture: {client}; {keys}");
        Ok((source, epoch, description))
    }

    /// The first pass of `--host`: which flows are the host's.
    fn find_host(
        &self,
        host: &str,
        key_log: &str,
    ) -> Result<fetchscope_core::replay::FlowFilter, SetupError> {
        let mut finder = HostFinder::new(host);
        finder.learn_key_log(key_log);
        let mut reader =
            CaptureReader::open(input(self.file)?).map_err(|e| capture_error(self.file, e))?;
        let mut seen = 0;
        while let Some(p) = reader.next_packet() {
            let Ok(p) = p else { break };
            if reader.key_log().len() > seen {
                finder.learn_key_log(reader.key_log().get(seen..).unwrap_or_default());
                seen = reader.key_log().len();
            }
            finder.packet(&p.ip);
        }
        let flows = finder.finish();
        if flows.conns.is_empty() {
            return Err(SetupError::setup(anyhow::anyhow!(
                "{}: no connection to {host} in the capture (no lookup of it, no TLS server name or Host header naming it); leave out --host to replay every flow of the client",
                self.file.display()
            )));
        }
        Ok(flows)
    }
}

/// Runs `fetchscope replay`; returns the exit status.
pub fn run(args: &ReplayArgs) -> Result<i32, SetupError> {
    let mut session = start(args)?;
    session.run_to_end();
    session.finish()
}

/// The replay session of `args`: its source and every output.
fn start(args: &ReplayArgs) -> Result<Session, SetupError> {
    let run = ReplayRun {
        file: &args.file,
        select: &args.select,
        keylog: args.keylog.as_deref(),
        show_secrets: args.show_secrets,
        step: false,
    };
    let (source, epoch, description) = run.source()?;
    let choices = OutputChoices {
        json: args.json,
        silent: args.silent,
        color: args.color,
        no_body: args.no_body,
        har: args.har.as_deref(),
        report: args.report.as_deref(),
        ladder: args.ladder,
        pcap: args.pcap.as_deref(),
        write_out: args.write_out.clone(),
        fail: args.fail,
        keep_partial: false,
        insecure: false,
        body_to_stdout: false,
        secrets: Vec::new(),
    };
    let what = args.file.display().to_string();
    let heading = Heading {
        method: "replay",
        what: &what,
        description: &description,
        epoch,
    };
    Session::open(Source::Replay(Box::new(source)), &choices, &heading)
}
