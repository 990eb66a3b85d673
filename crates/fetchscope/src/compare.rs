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
pub mod client;
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
    #[arg(required_unless_present = "replay")]
    pub url: Option<String>,

    /// Put a real client beside fetchscope's stack instead of fetchscope's kernel run:
    /// `requests` (python3 -c 'requests.get(URL)'), `curl` (curl -L URL) or a command
    /// with {url} in it. It runs through the kernel in this namespace with SSLKEYLOGFILE
    /// set to a private file; its packets are captured and replayed.
    #[arg(long = "client", value_name = "CLIENT", help_heading = "Compare")]
    pub real_client: Option<client::ClientChoice>,

    /// Compare two captures (pcap or pcapng) instead of fetching: each is replayed as
    /// `fetchscope replay` does (--keylog FILE or SSLKEYLOGFILE give TLS secrets to both).
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "real_client", help_heading = "Compare")]
    pub replay: Vec<PathBuf>,

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

/// The final `--json` line: `userspace` and `kernel` (or `client`, or `a` and `b` for
/// two captures), and the differences.
fn compare_line(
    url: &str,
    sides: [(&str, &StackReport); 2],
    differences: &[Difference],
    extra: Option<(&str, serde_json::Value)>,
) -> serde_json::Value {
    let mut line = serde_json::Map::new();
    line.insert("type".into(), "compare".into());
    line.insert("url".into(), url.into());
    for (key, report) in sides {
        line.insert(key.into(), serde_json::to_value(report).unwrap_or_default());
    }
    line.insert(
        "differences".into(),
        serde_json::to_value(differences).unwrap_or_default(),
    );
    if let Some((k, v)) = extra {
        line.insert(k.into(), v);
    }
    serde_json::Value::Object(line)
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
    if let [a, b] = args.replay.as_slice() {
        return replays(a, b, common);
    }
    let typed = args.url.as_deref().unwrap_or_default();
    let (url, request) = parse_request(typed, common)?;
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

    // ---- a real client, instead of the kernel run.
    if let Some(choice) = &args.real_client {
        if !common.json {
            eprintln!("fetchscope: 2/2 running the real client ({choice}) through the kernel");
        }
        let run = client::run(
            choice,
            &url,
            common.cacert.as_deref(),
            common.timeout,
            args.capture_iface.as_deref(),
        )
        .map_err(setup)?;
        let mut other = Analyzer::named("client", run.name.clone(), run.path.clone());
        for event in &run.events {
            other.observe(event);
            if let Some((_, l)) = &mut ladders {
                l.event(event);
            }
            if let Some(p) = &mut pcap
                && let Err(e) = p.push(run.epoch, event)
            {
                write_err.get_or_insert(e);
            }
            if let Err(e) = sink.event("client", event) {
                write_err.get_or_insert(e);
            }
        }
        if let Some(p) = &mut pcap {
            p.key_log.push_str(&run.key_log);
        }
        let other = other.finish();
        let user = user.finish();
        let replay_failure = run.events.iter().find_map(|e| match &e.kind {
            EventKind::Error(err) => Some(FetchError::new(
                fetchscope_core::FailureClass::Http,
                err.phase,
                err.kind.clone(),
                err.message.clone(),
            )),
            _ => None,
        });
        let client_failure = run
            .failure
            .clone()
            .map(|m| {
                FetchError::new(
                    fetchscope_core::FailureClass::Http,
                    fetchscope_core::Phase::Done,
                    "client_failed",
                    m,
                )
            })
            .or(replay_failure);
        if let Some(r) = &run.reported
            && (Some(r.status) != other.status
                || Some(&r.body_sha256) != other.body_sha256.as_ref())
        {
            eprintln!(
                "fetchscope: note: {} itself reported HTTP {} (sha256 {}…), its replayed packets show {} (sha256 {}…)",
                run.name,
                r.status,
                r.body_sha256.get(..12).unwrap_or_default(),
                other
                    .status
                    .map_or("no status".into(), |s| format!("HTTP {s}")),
                other
                    .body_sha256
                    .as_deref()
                    .and_then(|s| s.get(..12))
                    .unwrap_or_default()
            );
        }
        let ladder_titles = ("fetchscope's stack".to_string(), run.name.clone());
        let reported = run.reported.as_ref().map(|r| {
            (
                "client_reported",
                serde_json::to_value(r).unwrap_or_default(),
            )
        });
        let shown = Shown {
            url: url.as_str(),
            left: (&user, "userspace"),
            right: (&other, "client"),
            extra: reported,
            ladders: ladders.map(|(a, b)| (a, b, ladder_titles)),
        };
        present(shown, &mut sink, common, &mut write_err);
        return settle(
            pcap,
            body_output,
            write_err,
            common,
            [
                ("fetchscope's stack", user_failure),
                (&run.name, client_failure),
            ],
        );
    }

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
    let shown = Shown {
        url: url.as_str(),
        left: (&user, "userspace"),
        right: (&kernel, "kernel"),
        extra: None,
        ladders: ladders.map(|(a, b)| {
            (
                a,
                b,
                (
                    "fetchscope's stack".to_string(),
                    "the kernel's stack".to_string(),
                ),
            )
        }),
    };
    present(shown, &mut sink, common, &mut write_err);
    settle(
        pcap,
        body_output,
        write_err,
        common,
        [
            ("fetchscope's stack", user_failure),
            ("the kernel", kernel_failure),
        ],
    )
}

/// What the comparison shows: the two reports, what the JSON line adds, the ladders.
struct Shown<'a> {
    url: &'a str,
    left: (&'a StackReport, &'static str),
    right: (&'a StackReport, &'static str),
    extra: Option<(&'static str, serde_json::Value)>,
    ladders: Option<(LadderRecorder, LadderRecorder, (String, String))>,
}

/// Prints the comparison (text or the `--json` line) and the ladders.
fn present(
    shown: Shown<'_>,
    sink: &mut Sink,
    common: &CommonArgs,
    write_err: &mut Option<io::Error>,
) {
    let (u, uk) = shown.left;
    let (k, kk) = shown.right;
    let diffs = differences::differences(u, k);
    match sink {
        Sink::Json(out) => {
            let line = compare_line(shown.url, [(uk, u), (kk, k)], &diffs, shown.extra);
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
            if let Err(e) = t.render(shown.url, u, k, &diffs) {
                write_err.get_or_insert(e);
            }
        }
    }
    if let Some((lu, lk, (tu, tk))) = shown.ladders {
        // After the comparison on stdout; with --json on stderr, so stdout stays NDJSON.
        let text = format!(
            "\nLadder: {tu}\n{}\nLadder: {tk}\n{}",
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
}

/// Writes the pcap, settles the body file, reports failures; the exit status.
fn settle(
    pcap: Option<PcapBoth>,
    body_output: Option<crate::body_output::BodyOutput>,
    write_err: Option<io::Error>,
    common: &CommonArgs,
    runs: [(&str, Option<FetchError>); 2],
) -> Result<i32, SetupError> {
    if let Some(p) = pcap {
        p.finish()
            .context("could not write the pcapng file")
            .map_err(setup)?;
    }
    if let Some(out) = body_output {
        let path = out.path().to_path_buf();
        let note = out
            .settle(runs[0].1.is_none(), common.keep_partial)
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
    for (who, f) in &runs {
        if let Some(e) = f {
            eprintln!(
                "fetchscope: the fetch through {who} failed in the {} phase: {}",
                e.phase, e.message
            );
        }
    }
    let [(_, a), (_, b)] = runs;
    Ok(a.or(b).map_or(0, |e| e.exit_code()))
}

/// `compare --replay A B`: two captures replayed and compared.
fn replays(
    a: &std::path::Path,
    b: &std::path::Path,
    common: &CommonArgs,
) -> Result<i32, SetupError> {
    let mut sink = if common.json {
        Sink::Json(BufWriter::new(io::stdout().lock()))
    } else {
        Sink::Quiet
    };
    let mut write_err: Option<io::Error> = None;
    let mut reports = Vec::new();
    let mut ladders = Vec::new();
    let mut failures = Vec::new();
    for (key, path) in [("a", a), ("b", b)] {
        let select = crate::replay::ReplaySelect::default();
        let run = crate::replay::ReplayRun {
            file: path,
            select: &select,
            keylog: common.keylog.as_deref(),
            show_secrets: common.show_secrets,
            step: false,
        };
        let (mut source, _, description) = run.source()?;
        let mut analyzer = Analyzer::named(
            "capture",
            format!("capture {}", path.display()),
            description,
        );
        let mut ladder = LadderRecorder::new();
        while let fetchscope_flow::fetch::Poll::Event(e) = source.poll_event() {
            analyzer.observe(&e);
            ladder.event(&e);
            if let Err(err) = sink.event(key, &e) {
                write_err.get_or_insert(err);
            }
        }
        failures.push(match source.result() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        });
        reports.push(analyzer.finish());
        ladders.push(ladder);
    }
    let (Some(ra), Some(rb)) = (reports.first(), reports.get(1)) else {
        return Ok(0);
    };
    let mut ls = ladders.into_iter();
    let ladders = match (common.ladder, ls.next(), ls.next()) {
        (true, Some(x), Some(y)) => Some((x, y, (ra.name.clone(), rb.name.clone()))),
        _ => None,
    };
    let shown = Shown {
        url: "",
        left: (ra, "a"),
        right: (rb, "b"),
        extra: None,
        ladders,
    };
    let what = format!("{} and {}", a.display(), b.display());
    let shown = Shown {
        url: &what,
        ..shown
    };
    present(shown, &mut sink, common, &mut write_err);
    let mut fs = failures.into_iter();
    let (fa, fb) = (fs.next().flatten(), fs.next().flatten());
    let (na, nb) = (ra.name.clone(), rb.name.clone());
    settle(None, None, write_err, common, [(&na, fa), (&nb, fb)])
}
