//! `fetchscope compare URL`: the same fetch through fetchscope's stack (on a TUN device)
//! and through the kernel's stack, side by side.
//!
//! The userspace run goes first, exactly as `fetch --tun` does it; then the kernel run
//! ([`fetchscope_os::OsFetch`]) fetches the same URL with the same DNS servers, trust
//! anchors and HTTP/TLS code, its packets captured on the interface that carries them.
//! Each run's events feed an [`analysis::Analyzer`]; the two reports are printed side by
//! side with the [`differences::differences`] between them. With `--json` both event
//! streams are printed (each event tagged `"stack":"userspace"` or `"kernel"`), then one
//! `compare` object. With `--pcap FILE` both runs go into one pcapng file, on the real
//! clock, with both runs' TLS secrets.
//!
//! The built-in lab has no kernel path (its servers live inside the process), so
//! `compare` needs `--tun`.

pub mod analysis;
pub mod differences;
pub mod text;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use clap::Args;
use fetchscope_core::{Event, EventKind, FetchError};
use fetchscope_flow::Fetch;
use fetchscope_os::{OsConfig, OsFetch};
use fetchscope_wire::pcapng::PcapngSpool;
use serde::Serialize;

use crate::cli::CommonArgs;
use crate::keylog::requested_key_log;
use crate::render::ladder::LadderRecorder;
use crate::run::{EXIT_SETUP, EXIT_USAGE, SetupError, parse_request, prepare, use_color};
use analysis::{Analyzer, StackReport};
use differences::Difference;

/// Options of `fetchscope compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The URL to fetch through both stacks (http:// or https://).
    pub url: String,

    /// Capture the kernel run's packets on this interface ("any" for all); by default on
    /// the interface of the route to each peer (DNS server, web server).
    #[arg(long, value_name = "NAME", help_heading = "Compare")]
    pub capture_iface: Option<String>,

    /// Options shared by all subcommands (--tun is required here).
    #[command(flatten)]
    pub common: CommonArgs,
}

/// An event line of `--json`: the event with the stack it came from.
#[derive(Serialize)]
struct Tagged<'a> {
    stack: &'static str,
    #[serde(flatten)]
    event: &'a Event,
}

/// The final `--json` line.
#[derive(Serialize)]
struct CompareLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
    userspace: &'a StackReport,
    kernel: &'a StackReport,
    differences: &'a [Difference],
}

fn usage(msg: impl Into<String>) -> SetupError {
    SetupError {
        code: EXIT_USAGE,
        error: anyhow!(msg.into()),
    }
}

fn setup(e: anyhow::Error) -> SetupError {
    SetupError {
        code: EXIT_SETUP,
        error: e,
    }
}

/// Where the events go while the runs happen.
enum Sink {
    Json(BufWriter<io::StdoutLock<'static>>),
    Quiet,
}

impl Sink {
    fn event(&mut self, stack: &'static str, e: &Event) -> io::Result<()> {
        match self {
            Sink::Json(out) => {
                serde_json::to_writer(&mut *out, &Tagged { stack, event: e })
                    .map_err(io::Error::other)?;
                out.write_all(b"\n")?;
                out.flush()
            }
            Sink::Quiet => Ok(()),
        }
    }
}

/// The pcapng output of both runs.
struct PcapBoth {
    path: PathBuf,
    file: File,
    spool: PcapngSpool,
    key_log: String,
}

impl PcapBoth {
    fn push(&mut self, epoch: SystemTime, e: &Event) -> io::Result<()> {
        if let EventKind::Packet(p) = &e.kind {
            self.spool
                .push(epoch + Duration::from_micros(e.t_us), p.dir, &p.raw)?;
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        let mut out = BufWriter::new(self.file);
        self.spool
            .finish(&self.key_log, &mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Runs `fetchscope compare`; returns the exit status.
pub fn run(args: &CompareArgs) -> Result<i32, SetupError> {
    let common = &args.common;
    let (url, request) = parse_request(&args.url, common)?;
    if common.tun.is_none() {
        return Err(usage(
            "compare needs --tun NAME: the built-in lab's servers live inside fetchscope's own \
             process, where the kernel's stack cannot reach them. Bring up the namespace lab \
             (sudo scripts/netns-lab.sh up) and run: sudo ip netns exec fsc-cli fetchscope compare \
             https://www.example.test/ --tun fsc0 --addr 10.88.1.2/24 --gateway 10.88.1.1 \
             --dns 10.88.0.1 --cacert /tmp/fetchscope-lab/ca.pem",
        ));
    }
    // Fail before anything is sent if the kernel run could not be captured.
    fetchscope_os::check_permission().map_err(|e| setup(anyhow!(e)))?;
    if common.har.is_some() || common.report.is_some() {
        eprintln!(
            "fetchscope: note: --har and --report describe one fetch; compare writes neither (use `fetch` for each stack)"
        );
    }
    let (mut cfg, world) = prepare(url.clone(), common, request)?;
    if let Some(kl) = requested_key_log(common.keylog.as_deref()).map_err(setup)? {
        cfg.spec.key_log = Some(Arc::new(kl));
    }
    // -o FILE: written as FILE.part, renamed when fetchscope's run completes, so a failed
    // run never destroys an existing FILE (as `fetch` does).
    let body_output = match &common.output {
        Some(path) => {
            let (out, f) = crate::body_output::BodyOutput::create(path)
                .with_context(|| format!("cannot create the output file {}", path.display()))
                .map_err(setup)?;
            cfg.spec.body_out = Some(Box::new(BufWriter::with_capacity(256 * 1024, f)));
            Some(out)
        }
        None => None,
    };
    let mut pcap = match &common.pcap {
        Some(path) => Some(PcapBoth {
            path: path.clone(),
            file: File::create(path)
                .with_context(|| format!("cannot create the pcap file {}", path.display()))
                .map_err(setup)?,
            spool: PcapngSpool::new()
                .context("cannot create a temporary file for --pcap")
                .map_err(setup)?,
            key_log: String::new(),
        }),
        None => None,
    };
    let os_cfg = OsConfig {
        spec: cfg.spec.twin(),
        capture_interface: args.capture_iface.clone(),
    };

    let mut sink = if common.json {
        Sink::Json(BufWriter::new(io::stdout().lock()))
    } else {
        Sink::Quiet
    };
    let mut write_err: Option<io::Error> = None;

    // ---- fetchscope's stack.
    let epoch = cfg.epoch;
    let description = world.description.clone();
    if !common.json {
        eprintln!("fetchscope: 1/2 fetching through fetchscope's stack ({description})");
    }
    let mut user = Analyzer::new("userspace", description);
    let mut ladders = common
        .ladder
        .then(|| (LadderRecorder::new(), LadderRecorder::new()));
    let user_failure = {
        let mut fetch = Fetch::new(cfg, world.link).map_err(|e| SetupError {
            code: e.exit_code(),
            error: anyhow!(e.message.clone()),
        })?;
        while let Some(event) = fetch.next_event() {
            user.observe(&event);
            if let Some((l, _)) = &mut ladders {
                l.event(&event);
            }
            if let Some(p) = &mut pcap
                && let Err(e) = p.push(epoch, &event)
            {
                write_err.get_or_insert(e);
            }
            if let Err(e) = sink.event("userspace", &event) {
                write_err.get_or_insert(e);
            }
        }
        if let Some(p) = &mut pcap {
            p.key_log.push_str(fetch.key_log());
        }
        match fetch.result() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    };

    // ---- the kernel's stack.
    if !common.json {
        eprintln!("fetchscope: 2/2 fetching through the kernel's stack");
    }
    let mut os = OsFetch::new(os_cfg).map_err(|e| setup(anyhow!(e)))?;
    let mut kernel = Analyzer::new("kernel", String::new());
    while let Some(event) = os.next_event() {
        kernel.observe(&event);
        if let Some((_, l)) = &mut ladders {
            l.event(&event);
        }
        if let Some(p) = &mut pcap
            && let Err(e) = p.push(os.started_at(), &event)
        {
            write_err.get_or_insert(e);
        }
        if let Err(e) = sink.event("kernel", &event) {
            write_err.get_or_insert(e);
        }
    }
    let kernel_failure: Option<FetchError> = match os.result() {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    };
    if let Some(p) = &mut pcap {
        p.key_log.push_str(os.key_log());
    }

    let user = user.finish();
    let mut kernel = kernel.finish();
    kernel.path = format!(
        "kernel sockets (TCP_NODELAY), captured on {}",
        if os.interfaces().is_empty() {
            "no interface".to_string()
        } else {
            os.interfaces().join(", ")
        }
    );
    kernel.tcp_info_after_connect = os.tcp_info_after_connect().cloned();
    kernel.tcp_info_at_end = os.tcp_info_at_end().cloned();
    let diffs = differences::differences(&user, &kernel);

    match &mut sink {
        Sink::Json(out) => {
            let line = CompareLine {
                kind: "compare",
                url: url.as_str(),
                userspace: &user,
                kernel: &kernel,
                differences: &diffs,
            };
            let r = serde_json::to_writer(&mut *out, &line)
                .map_err(io::Error::other)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            if let Err(e) = r {
                write_err.get_or_insert(e);
            }
        }
        Sink::Quiet => {
            let stdout = io::stdout();
            let mut t =
                text::CompareText::new(BufWriter::new(stdout.lock()), use_color(common.color));
            if let Err(e) = t.render(url.as_str(), &user, &kernel, &diffs) {
                write_err.get_or_insert(e);
            }
        }
    }
    drop(sink);
    if let Some((lu, lk)) = ladders.take() {
        // After the comparison on stdout; with --json on stderr, so stdout stays NDJSON.
        let text = format!(
            "\nLadder: fetchscope's stack\n{}\nLadder: the kernel's stack\n{}",
            lu.finish().to_text(),
            lk.finish().to_text()
        );
        let written = if common.json {
            io::stderr().write_all(text.as_bytes())
        } else {
            let mut o = io::stdout().lock();
            o.write_all(text.as_bytes()).and_then(|()| o.flush())
        };
        if let Err(e) = written {
            write_err.get_or_insert(e);
        }
    }
    if let Some(p) = pcap.take() {
        p.finish()
            .context("could not write the pcapng file")
            .map_err(setup)?;
    }
    if let Some(out) = body_output {
        let path = out.path().to_path_buf();
        let note = out
            .settle(user_failure.is_none(), common.keep_partial)
            .with_context(|| format!("could not rename the body to {}", path.display()))
            .map_err(setup)?;
        if let Some(note) = note {
            eprintln!("fetchscope: note: {note}");
        }
    }
    if let Some(e) = write_err
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(setup(
            anyhow::Error::new(e).context("could not write the output"),
        ));
    }
    for (who, f) in [
        ("fetchscope's stack", &user_failure),
        ("the kernel", &kernel_failure),
    ] {
        if let Some(e) = f {
            eprintln!(
                "fetchscope: the fetch through {who} failed in the {} phase: {}",
                e.phase, e.message
            );
        }
    }
    Ok(user_failure.or(kernel_failure).map_or(0, |e| e.exit_code()))
}
