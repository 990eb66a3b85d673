//! Running a fetch: pick the world (built-in lab or TUN), build the configuration, pull
//! the events into the renderers, and turn the outcome into an exit status.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use fetchscope_core::Randomness;
use fetchscope_core::{Event, EventKind, FetchError};
use fetchscope_flow::fetch::Poll;
use fetchscope_flow::{Fetch, FetchConfig};
use fetchscope_lab::{Lab, LabConfig};
use fetchscope_net::Link;
use fetchscope_net::{TunLink, TunOptions};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use smoltcp::wire::Ipv4Cidr;
use std::path::Path;
use url::Url;

use crate::{addressing, resolvconf};

use crate::cli::{ColorChoice, CommonArgs};
use crate::keylog::requested_key_log;
use crate::render::{JsonRenderer, Renderer, TextRenderer};

/// Exit status for usage errors (as clap uses).
pub const EXIT_USAGE: i32 = 2;
/// Exit status for set-up errors.
pub const EXIT_SETUP: i32 = 3;

/// A failure before the fetch could start, with its exit status.
#[derive(Debug)]
pub struct SetupError {
    /// Exit status.
    pub code: i32,
    /// What went wrong and what to do.
    pub error: anyhow::Error,
}

impl SetupError {
    /// A usage error (exit status 2).
    pub fn usage(e: impl Into<anyhow::Error>) -> Self {
        SetupError {
            code: EXIT_USAGE,
            error: e.into(),
        }
    }

    /// A set-up error (exit status 3).
    pub fn setup(e: impl Into<anyhow::Error>) -> Self {
        SetupError {
            code: EXIT_SETUP,
            error: e.into(),
        }
    }
}

/// The start date of the lab's virtual clock in seeded runs (2026-01-01T00:00:00Z), so a
/// seeded run's `Date` headers and certificates repeat too.
const SEEDED_EPOCH_SECS: u64 = 1_767_225_600;

/// Where the fetch runs.
pub struct World {
    /// The link for the client stack.
    pub link: Box<dyn Link>,
    /// One phrase for the header line.
    pub description: String,
}

/// Parses and checks the URL.
pub fn parse_url(typed: &str) -> Result<Url, SetupError> {
    let usage = |msg: String| SetupError::usage(anyhow::anyhow!(msg));
    // Messages quote the URL without a password in it.
    let shown = fetchscope_core::http::text_without_password(typed);
    let s = shown.as_str();
    // `https//host` and `https:/host`: a scheme with its colon or a slash missing would
    // otherwise become a host called "https".
    let lower = s.to_ascii_lowercase();
    for scheme in ["https", "http"] {
        if let Some(rest) = lower.strip_prefix(scheme)
            && (rest.starts_with("//") || (rest.starts_with(":/") && !rest.starts_with("://")))
        {
            let host_and_path = rest.trim_start_matches([':', '/']);
            return Err(usage(format!(
                "'{s}' is missing part of \"{scheme}://\"; did you mean {scheme}://{host_and_path}?"
            )));
        }
    }
    if s.starts_with('/') {
        return Err(usage(format!(
            "'{s}' is a path without a host; did you mean https://www.example.test{s}?"
        )));
    }
    let url = Url::parse(typed)
        .or_else(|e| {
            if matches!(e, url::ParseError::RelativeUrlWithoutBase) {
                Url::parse(&format!("https://{typed}"))
            } else {
                Err(e)
            }
        })
        .map_err(|e| {
            usage(format!(
                "'{s}' is not a URL ({e}); try https://www.example.test/"
            ))
        })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(usage(format!(
                "fetchscope fetches http:// and https:// URLs, not {other}://"
            )));
        }
    }
    if url.host().is_none() || url.host_str() == Some("") {
        return Err(usage(format!(
            "the URL {} has no host",
            fetchscope_core::http::text_without_password(url.as_str())
        )));
    }
    if url.port() == Some(0) {
        return Err(usage(format!(
            "the URL {} names port 0, which no server can listen on; leave the port out for {}'s default ({})",
            fetchscope_core::http::text_without_password(url.as_str()),
            url.scheme(),
            if url.scheme() == "https" { 443 } else { 80 }
        )));
    }
    Ok(url)
}

/// Parses the URL and the request options; credentials in the URL move into the
/// options (the URL returned has none, so nothing prints them).
pub fn parse_request(
    url: &str,
    args: &CommonArgs,
) -> Result<(Url, fetchscope_core::http::RequestOptions), SetupError> {
    let mut url = parse_url(url)?;
    let request = args
        .request
        .options(&mut url, args.show_secrets, args.tun.is_some())
        .map_err(|e| SetupError::usage(anyhow::anyhow!(e)))?;
    Ok((url, request))
}

/// Exit status of `--fail` when the final HTTP status is 400 or more (curl's).
pub const EXIT_HTTP_FAIL: i32 = 22;

/// Builds the configuration and the world for a fetch of `url` with `args`, sending
/// `request`.
pub fn prepare(
    url: Url,
    args: &CommonArgs,
    request: fetchscope_core::http::RequestOptions,
) -> Result<(FetchConfig, World), SetupError> {
    // Checked when parsed too; a CommonArgs built in code meets the same rule.
    if !crate::cli::timeout_in_range(args.timeout) {
        return Err(SetupError::usage(anyhow::anyhow!(
            "--timeout takes a number of seconds more than 0 and at most 86400 (a day)"
        )));
    }
    let mtu = stack_mtu(args)?;
    let randomness = Randomness::new(args.seed);
    let lab_fault = args.lab_fault.and_then(|c| c.fault());
    if let (Some(fault), Some(_)) = (lab_fault, &args.tun) {
        return Err(SetupError::usage(anyhow::anyhow!(
            "--lab-fault {fault} only applies to the built-in lab, not with --tun: a real network's faults are its own"
        )));
    }
    if args.tun.is_some() && args.ipv6 {
        return Err(SetupError::usage(anyhow::anyhow!(
            "--ipv6 is for the built-in lab; with --tun give the stack an IPv6 address with a second --addr"
        )));
    }
    let (mut cfg, world, network) = match &args.tun {
        Some(name) => {
            let (cfg, world) = prepare_tun(url, args, name, randomness)?;
            (cfg, world, fetchscope_core::advice::Network::Real)
        }
        None => {
            if !args.addr.is_empty() || !args.gateway.is_empty() || !args.dns.is_empty() {
                return Err(SetupError::usage(anyhow::anyhow!(
                    "--addr, --gateway and --dns only apply with --tun NAME; without --tun the fetch runs in the built-in lab"
                )));
            }
            let (cfg, world) = prepare_lab(url, args, randomness, lab_fault)?;
            let fault = lab_fault.map(|f| f.to_string());
            (cfg, world, fetchscope_core::advice::Network::Lab { fault })
        }
    };
    // What both worlds share: the advice's conditions, the MTU and the redirect rule.
    cfg.conditions = fetchscope_core::advice::Conditions {
        network,
        faults: args.faults.config().map(|c| c.to_string()),
        faults_drop_everything: args.faults.loss.is_some_and(|l| l >= 100.0),
    };
    cfg.mtu = mtu;
    cfg.spec.redirect_protocols = args.proto_redir;
    cfg.spec.request = request;
    cfg.spec.insecure = args.insecure;
    cfg.spec.connect_timeout = args.connect_timeout.map(Duration::from_secs_f64);
    Ok((cfg, with_faults(world, args)?))
}

/// `--mtu`, checked: 576 to 65535 bytes, and at least 1280 when the stack has IPv6
/// (`--ipv6`, or an IPv6 `--addr`).
fn stack_mtu(args: &CommonArgs) -> Result<Option<usize>, SetupError> {
    let Some(mtu) = args.mtu else {
        return Ok(None);
    };
    let ipv6 = args.ipv6 || args.addr.iter().any(|a| a.contains(':'));
    let min = if ipv6 { 1280 } else { 576 };
    if !(min..=65_535).contains(&mtu) {
        let why = match (mtu < min, ipv6) {
            (true, true) => ": IPv6 links carry at least 1280",
            (true, false) => ": every IPv4 host takes 576-byte packets",
            (false, _) => ": no IP packet is larger",
        };
        return Err(SetupError::usage(anyhow::anyhow!(
            "--mtu {mtu} is out of range: give {min} to 65535 bytes{why}"
        )));
    }
    Ok(usize::try_from(mtu).ok())
}

/// Puts fault injection (`--loss`, `--delay`, ...) between the stack and the world's
/// link, when asked for.
fn with_faults(world: World, args: &CommonArgs) -> Result<World, SetupError> {
    let Some(cfg) = args.faults.config() else {
        return Ok(world);
    };
    let randomness = Randomness::new(args.seed);
    let link = fetchscope_net::FaultLink::new(world.link, cfg, &randomness)
        .map_err(|e| SetupError::usage(anyhow::anyhow!(e)))?;
    Ok(World {
        link: Box::new(link),
        description: format!("{}, faults: {cfg}", world.description),
    })
}

/// Builds the configuration for a fetch in the built-in lab.
fn prepare_lab(
    url: Url,
    args: &CommonArgs,
    randomness: Randomness,
    lab_fault: Option<fetchscope_lab::LabFault>,
) -> Result<(FetchConfig, World), SetupError> {
    // The built-in lab.
    let epoch = match args.seed {
        Some(_) => SystemTime::UNIX_EPOCH + Duration::from_secs(SEEDED_EPOCH_SECS),
        None => SystemTime::now(),
    };
    let lab = Lab::new(LabConfig {
        randomness,
        epoch,
        fault: lab_fault,
        ipv6: args.ipv6,
        ..LabConfig::default()
    })
    .context("could not start the built-in lab")
    .map_err(SetupError::setup)?;
    let mut roots = RootCertStore::empty();
    roots
        .add(lab.ca_certificate())
        .context("the lab's CA certificate was rejected")
        .map_err(SetupError::setup)?;
    let mut addrs = vec![lab.client_cidr()];
    let mut gateways = vec![lab.client_gateway()];
    if let (Some(a), Some(g)) = (lab.client_cidr_v6(), lab.client_gateway_v6()) {
        addrs.push(a);
        gateways.push(g);
    }
    let mut cfg = FetchConfig::new(url, addrs, Arc::new(roots));
    cfg.spec.trust = fetchscope_core::tls::TrustSource::Lab;
    cfg.gateways = gateways;
    cfg.spec.dns_servers = vec![lab.dns_server()];
    cfg.spec.resolve = args.resolve.clone();
    cfg.spec.randomness = randomness;
    cfg.epoch = epoch;
    if args.cacert.is_some() {
        eprintln!(
            "fetchscope: note: --cacert is ignored in the built-in lab, where only the lab's own CA is trusted"
        );
    }
    cfg.spec.timeout = Duration::from_secs_f64(args.timeout);
    let names: Vec<String> = lab.names().into_iter().map(|(n, _)| n).collect();
    cfg.nxdomain_hint = Some(format!(
        "The built-in lab only knows {}; to fetch from a real server use --tun (see the README).",
        list_in_words(&names)
    ));
    if lab_fault == Some(fetchscope_lab::LabFault::Nxdomain) {
        cfg.nxdomain_hint = Some(
            "(The built-in lab runs with --lab-fault nxdomain: it answers NXDOMAIN for every name.)"
                .to_string(),
        );
    }
    let description = match args.seed {
        Some(s) => format!("built-in lab, virtual clock, seed {s}"),
        None => "built-in lab, virtual clock".to_string(),
    };
    let description = if args.ipv6 {
        format!("{description}, IPv4 and IPv6")
    } else {
        description
    };
    let description = match lab_fault {
        Some(fault) => format!("{description}, lab fault {fault}"),
        None => description,
    };
    Ok((
        cfg,
        World {
            link: Box::new(lab),
            description,
        },
    ))
}

/// Builds the configuration for a fetch through the TUN device `name`.
fn prepare_tun(
    url: Url,
    args: &CommonArgs,
    name: &str,
    randomness: Randomness,
) -> Result<(FetchConfig, World), SetupError> {
    let addressing = addressing::parse(&args.addr, &args.gateway)
        .map_err(|e| SetupError::usage(anyhow::anyhow!(e)))?;
    let dns_servers = if args.dns.is_empty() {
        resolvconf::pick(
            Path::new(resolvconf::RESOLV_CONF),
            Path::new(resolvconf::SYSTEMD_RESOLV_CONF),
        )
        .map_err(|e| SetupError::usage(anyhow::anyhow!(e)))?
    } else {
        args.dns.clone()
    };
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &args.cacert {
        add_cacert(&mut roots, path)?;
    }
    // The kernel side gets the IPv4 gateway address when fetchscope creates the device.
    let kernel_side = match (addressing.ipv4(), addressing.gateway4()) {
        (Some(c), Some(g)) => Some(Ipv4Cidr::new(g, c.prefix_len())),
        _ => None,
    };
    let link = TunLink::open(TunOptions::create(name, kernel_side))
        .map_err(|e| SetupError::setup(anyhow::anyhow!(e.to_string())))?;
    // Replies must come back through this device, or the fetch could only time out.
    if let Some(stack) = addressing.ipv4() {
        link.check_route_back(stack.address())
            .map_err(|e| SetupError::setup(anyhow::anyhow!(e.to_string())))?;
    }
    let description = format!(
        "TUN device {name}{}, stack {}, gateway {}, DNS {}",
        if link.created() { " (created)" } else { "" },
        join(&addressing.addrs),
        join(&addressing.gateways),
        join(&dns_servers)
    );
    let mut cfg = FetchConfig::new(url, addressing.addrs.clone(), Arc::new(roots));
    if args.cacert.is_some() {
        cfg.spec.trust = fetchscope_core::tls::TrustSource::WebRootsAndCacert;
    }
    cfg.gateways = addressing.gateways.clone();
    cfg.spec.dns_servers = dns_servers;
    cfg.spec.resolve = args.resolve.clone();
    cfg.spec.randomness = randomness;
    cfg.spec.timeout = Duration::from_secs_f64(args.timeout);
    Ok((
        cfg,
        World {
            link: Box::new(link),
            description,
        },
    ))
}

/// `a, b and c`.
fn list_in_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `a, b, c` for a list of displayable things.
fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the certificates of a PEM file to `roots`.
fn add_cacert(roots: &mut RootCertStore, path: &Path) -> Result<(), SetupError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read --cacert {}", path.display()))
        .map_err(SetupError::setup)?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--cacert {} is not a PEM certificate file", path.display()))
        .map_err(SetupError::setup)?;
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(SetupError::setup(anyhow::anyhow!(
            "--cacert {} holds no usable CA certificate ({ignored} ignored)",
            path.display()
        )));
    }
    Ok(())
}

fn create_file(path: &std::path::Path, what: &str) -> Result<File, SetupError> {
    File::create(path)
        .with_context(|| format!("cannot create the {what} file {}", path.display()))
        .map_err(SetupError::setup)
}

/// Whether text output should be coloured.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
        }
    }
}

/// The trace's buffer on stdout: one write per 64 KiB of trace (8 KiB wrote a 64 MiB
/// fetch's 6 MB of text in 750 writes). A live fetch also flushes whenever it waits for
/// the network, and at least every [`FLUSH_EVERY`].
const STDOUT_BUFFER: usize = 64 * 1024;

/// A request to stop the fetch: the first Ctrl-C (SIGINT) or SIGTERM ends it gracefully;
/// a second one terminates the process as usual.
struct Stop(Arc<std::sync::atomic::AtomicBool>);

impl Stop {
    /// Watches SIGINT and SIGTERM (nothing is watched when the handlers cannot be set).
    fn on_signals() -> Stop {
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The second signal finds the flag set and does what it would have done.
            let _ = signal_hook::flag::register_conditional_default(sig, Arc::clone(&flag));
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        Stop(flag)
    }

    /// True once a signal asked the fetch to stop.
    fn requested(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The longest the trace stays in the buffer while the fetch does not wait.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Where a session's events come from: a fetch, or the replay of a capture.
pub enum Source {
    /// A live fetch through the lab or a TUN device.
    Live(Box<Fetch<Box<dyn Link>>>),
    /// A capture replayed (`fetchscope replay`, `step --replay`).
    Replay(Box<crate::replay::ReplaySource>),
}

impl Source {
    /// The next event, or that the source waits or is over.
    pub fn poll_event(&mut self) -> Poll {
        match self {
            Source::Live(f) => f.poll_event(),
            Source::Replay(r) => r.poll_event(),
        }
    }

    /// The summary or the failure, once over.
    pub fn result(&self) -> Option<&Result<fetchscope_core::Summary, FetchError>> {
        match self {
            Source::Live(f) => f.result(),
            Source::Replay(r) => r.result(),
        }
    }

    /// Every TLS secret known, as an NSS key log.
    pub fn key_log(&self) -> &str {
        match self {
            Source::Live(f) => f.key_log(),
            Source::Replay(r) => r.key_log(),
        }
    }

    /// Ends the run early: a live fetch resets its connection, a replay stops reading.
    pub fn abort(&mut self, why: &str) {
        match self {
            Source::Live(f) => f.abort(why),
            Source::Replay(r) => r.abort(why),
        }
    }
}

/// The outputs a session writes, whatever makes its events.
pub struct OutputChoices<'a> {
    /// `--json`.
    pub json: bool,
    /// `-s`.
    pub silent: bool,
    /// `--color`.
    pub color: ColorChoice,
    /// `--no-body`.
    pub no_body: bool,
    /// `--har FILE`.
    pub har: Option<&'a Path>,
    /// `--report FILE`.
    pub report: Option<&'a Path>,
    /// `--ladder`.
    pub ladder: bool,
    /// `--pcap FILE`.
    pub pcap: Option<&'a Path>,
    /// `-w FORMAT`.
    pub write_out: Option<crate::render::write_out::WriteOut>,
    /// `--fail`.
    pub fail: bool,
    /// `--keep-partial`.
    pub keep_partial: bool,
    /// `--insecure` (said in every output).
    pub insecure: bool,
    /// `-o -`: the body goes to stdout, the trace to stderr.
    pub body_to_stdout: bool,
    /// Secret values the text output redacts.
    pub secrets: Vec<String>,
}

impl<'a> OutputChoices<'a> {
    /// The outputs `fetch` and `step` options ask for.
    pub fn of(args: &'a CommonArgs, secrets: Vec<String>) -> Self {
        OutputChoices {
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
            keep_partial: args.keep_partial,
            insecure: args.insecure,
            body_to_stdout: args.output.as_deref() == Some(Path::new("-")),
            secrets,
        }
    }
}

/// What a session's outputs say about where its events come from.
pub struct Heading<'a> {
    /// The method, or `replay`.
    pub method: &'a str,
    /// The URL fetched, or the capture file.
    pub what: &'a str,
    /// The world: the lab, a TUN device, a capture.
    pub description: &'a str,
    /// The time of t = 0.
    pub epoch: SystemTime,
}

/// A prepared fetch with its renderer and output files: what `fetch` and `step` share.
pub struct Session {
    /// The fetch machine, or the replay.
    pub fetch: Source,
    renderer: Renderer<BufWriter<Box<dyn Write>>>,
    pcap: Option<crate::pcap::PcapOutput>,
    har: Option<(crate::render::har::HarRecorder, File)>,
    ladder: Option<crate::render::ladder::LadderRecorder>,
    report: Option<(crate::render::report::ReportRecorder, File)>,
    json: bool,
    /// `-o FILE`, renamed into place when the fetch completes.
    body_output: Option<crate::body_output::BodyOutput>,
    write_err: Option<io::Error>,
    /// When the trace was last flushed (it is at least every [`FLUSH_EVERY`]).
    flushed_at: std::time::Instant,
    /// How privileges were dropped, until the note about it is shown with the first packet.
    privilege_note: Option<crate::privileges::Dropped>,
    /// The trace goes to stderr (`-o -` puts the body on stdout).
    trace_on_stderr: bool,
    /// `--keep-partial`: a failed fetch's body stays in FILE.part.
    keep_partial: bool,
    /// `--fail`: exit 22 for an HTTP status of 400 or more.
    fail_on_http_error: bool,
    /// `-w FORMAT`, printed at the end.
    write_out: Option<crate::render::write_out::WriteOut>,
    /// The URL asked for (or the capture replayed), for `-w` when the run failed.
    url: String,
    /// `--insecure`: the ladder says so too.
    insecure: bool,
}

/// What `--insecure` adds to an output's description (nothing without it).
fn insecure_words(insecure: bool) -> &'static str {
    if insecure {
        "; INSECURE (--insecure): certificate problems did not stop this fetch"
    } else {
        ""
    }
}

impl Session {
    /// Prepares the world, the configuration and every output of a fetch of `url`, and
    /// prints the header line (text mode).
    pub fn start(url: &str, args: &CommonArgs) -> Result<Session, SetupError> {
        let (url, request) = parse_request(url, args)?;
        let method = request.method();
        let secrets = if args.show_secrets {
            Vec::new()
        } else {
            request.secret_values()
        };
        let (mut cfg, world) = prepare(url.clone(), args, request)?;
        let body_to_stdout = args.output.as_deref() == Some(Path::new("-"));
        // The TUN device is open and configured: give up root now, before any output file
        // is created (so they belong to the invoking user) and before the first packet is
        // read (see crate::privileges).
        let dropped = crate::privileges::drop_privileges().map_err(SetupError::setup)?;
        // -o FILE: written as FILE.part, renamed when the fetch completes (body_output).
        let body_output = match &args.output {
            Some(_) if body_to_stdout => {
                cfg.spec.body_out = Some(Box::new(io::stdout()));
                None
            }
            Some(path) => {
                let (out, f) = crate::body_output::BodyOutput::create(path)
                    .with_context(|| format!("cannot create the output file {}", path.display()))
                    .map_err(SetupError::setup)?;
                cfg.spec.body_out = Some(Box::new(BufWriter::with_capacity(256 * 1024, f)));
                Some(out)
            }
            None => None,
        };
        if let Some(kl) = requested_key_log(args.keylog.as_deref()).map_err(SetupError::setup)? {
            cfg.spec.key_log = Some(Arc::new(kl));
        }
        let epoch = cfg.epoch;
        let fetch = Fetch::new(cfg, world.link).map_err(|e| SetupError {
            code: e.exit_code(),
            error: anyhow::anyhow!(e.message.clone()),
        })?;
        let heading = Heading {
            method: &method,
            what: url.as_str(),
            description: &world.description,
            epoch,
        };
        let mut session = Session::open(
            Source::Live(Box::new(fetch)),
            &OutputChoices::of(args, secrets),
            &heading,
        )?;
        session.body_output = body_output;
        // Only over TUN is the drop news: the built-in lab needs no privileges at all.
        session.privilege_note = (args.tun.is_some() && dropped.dropped()).then_some(dropped);
        Ok(session)
    }

    /// Creates every output `choices` asks for around `source`, and prints the header line
    /// (text mode). Output files are created now, so a bad path fails before the run; they
    /// are written at the end (also when the run failed).
    pub fn open(
        source: Source,
        choices: &OutputChoices<'_>,
        heading: &Heading<'_>,
    ) -> Result<Session, SetupError> {
        let insecure = insecure_words(choices.insecure);
        let pcap = match choices.pcap {
            Some(path) => {
                Some(crate::pcap::PcapOutput::new(path, heading.epoch).map_err(SetupError::setup)?)
            }
            None => None,
        };
        let har = match choices.har {
            Some(path) => Some((
                crate::render::har::HarRecorder::new(
                    heading.epoch,
                    format!("{}{insecure}", heading.description),
                ),
                create_file(path, "HAR")?,
            )),
            None => None,
        };
        let report = match choices.report {
            Some(path) => Some((
                crate::render::report::ReportRecorder::new(
                    heading.epoch,
                    heading.what,
                    heading.description,
                ),
                create_file(path, "report")?,
            )),
            None => None,
        };
        let ladder = choices
            .ladder
            .then(crate::render::ladder::LadderRecorder::new);
        // The trace's stream: stdout, or stderr when the body goes to stdout, or nowhere
        // with -s.
        let body_to_stdout = choices.body_to_stdout;
        let stream: Box<dyn Write> = if choices.silent {
            Box::new(io::sink())
        } else if body_to_stdout {
            Box::new(io::stderr())
        } else {
            Box::new(io::stdout().lock())
        };
        let out = BufWriter::with_capacity(STDOUT_BUFFER, stream);
        let renderer = if choices.json {
            Renderer::Json(JsonRenderer::new(out))
        } else {
            let color = use_color(choices.color) && !body_to_stdout && !choices.silent;
            let mut t = TextRenderer::new(out, color)
                .show_body(!choices.no_body && !body_to_stdout)
                .redact(choices.secrets.clone());
            t.header(heading.method, heading.what, heading.description)?;
            Renderer::Text(t)
        };
        Ok(Session {
            fetch: source,
            renderer,
            pcap,
            har,
            ladder,
            report,
            json: choices.json,
            body_output: None,
            write_err: None,
            flushed_at: std::time::Instant::now(),
            privilege_note: None,
            trace_on_stderr: body_to_stdout,
            keep_partial: choices.keep_partial,
            fail_on_http_error: choices.fail,
            write_out: choices.write_out.clone(),
            url: heading.what.to_string(),
            insecure: choices.insecure,
        })
    }

    /// Renders one event and feeds it to every output.
    pub fn handle(&mut self, event: &Event) {
        // What /proc/self/status says while the first packet is processed, after the drop.
        if matches!(event.kind, EventKind::Packet(_))
            && let Some(text) = self
                .privilege_note
                .take()
                .and_then(|d| crate::privileges::first_packet_note(&d))
        {
            let kind = EventKind::Note { text };
            self.handle(&Event {
                t_us: event.t_us,
                kind,
            });
        }
        // The pcap holds what crossed the stack's device: not a received packet that
        // fault injection dropped before it got there (docs/faults.md).
        if let (Some(p), EventKind::Packet(pk)) = (&mut self.pcap, &event.kind)
            && !(pk.dir == fetchscope_wire::Direction::Rx
                && pk.fault.as_ref().is_some_and(|f| f.dropped))
            && let Err(e) = p.packet(event.t_us, pk)
        {
            self.write_err.get_or_insert(e);
        }
        if let Err(e) = self.renderer.event(event) {
            self.write_err.get_or_insert(e);
        }
        if let Some((h, _)) = &mut self.har {
            h.event(event);
        }
        if let Some(l) = &mut self.ladder {
            l.event(event);
        }
        if let Some((r, _)) = &mut self.report {
            r.event(event);
        }
    }

    /// Writes text to stdout beside the events (not in `--json` mode), flushing it.
    pub fn say(&mut self, text: &str) {
        if let Err(e) = self.renderer.raw(text) {
            self.write_err.get_or_insert(e);
        }
    }

    /// In `--json` mode, writes the state at a pause as a `{"type":"snapshot",...}` line.
    pub fn snapshot_line<T: serde::Serialize>(&mut self, snap: &T) {
        #[derive(serde::Serialize)]
        struct Line<'a, T> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            snap: &'a T,
        }
        let line = Line {
            kind: "snapshot",
            snap,
        };
        if let Err(e) = self.renderer.json_line(&line) {
            self.write_err.get_or_insert(e);
        }
    }

    /// Flushes stdout.
    pub fn flush(&mut self) {
        let _ = self.renderer.flush();
        self.flushed_at = std::time::Instant::now();
    }

    /// Pulls every remaining event.
    pub fn run_to_end(&mut self) {
        let stop = Stop::on_signals();
        loop {
            if stop.requested() {
                // Ends the fetch as `q` in step mode does (a RST for an open connection),
                // so the trace, the pcap and the body's `.part` keep what was seen. Once
                // the fetch is over, `abort` does nothing.
                self.fetch.abort("stopped by a signal (Ctrl-C or SIGTERM)");
            }
            match self.fetch.poll_event() {
                Poll::Event(event) => {
                    self.handle(&event);
                    // A long transfer never waits: what a person watches (or a killed
                    // fetch leaves behind) is at most this far behind.
                    if self.flushed_at.elapsed() >= FLUSH_EVERY {
                        self.flush();
                    }
                }
                // Nothing will happen for a while: what is buffered goes out now.
                Poll::Waiting => self.flush(),
                Poll::Over => break,
            }
        }
    }

    /// Writes the output files and returns the exit status.
    pub fn finish(mut self) -> Result<i32, SetupError> {
        let (failure, summary): (Option<FetchError>, Option<fetchscope_core::Summary>) =
            match self.fetch.result() {
                Some(Err(e)) => (Some(e.clone()), None),
                Some(Ok(s)) => (None, Some(s.clone())),
                None => (None, None),
            };
        if let Some(e) = &failure {
            let _ = self.renderer.failed(e);
        }
        let _ = self.renderer.flush();
        drop(self.renderer);
        let mut write_err = self.write_err;
        if let Some(l) = self.ladder.take() {
            // After the text output on stdout; with --json on stderr, so stdout stays NDJSON.
            let mut text = l.finish().to_text();
            if self.insecure {
                text.push_str(insecure_words(true).trim_start_matches("; "));
                text.push('\n');
            }
            let written = if self.json || self.trace_on_stderr {
                io::stderr().write_all(format!("\n{text}").as_bytes())
            } else {
                let mut o = io::stdout().lock();
                o.write_all(format!("\n{text}").as_bytes())
                    .and_then(|()| o.flush())
            };
            if let Err(e) = written {
                write_err.get_or_insert(e);
            }
        }
        if let Some((h, mut f)) = self.har.take() {
            f.write_all(h.to_json().as_bytes())
                .and_then(|()| f.flush())
                .context("could not write the HAR file")
                .map_err(SetupError::setup)?;
        }
        if let Some((r, f)) = self.report.take() {
            let mut f = BufWriter::new(f);
            f.write_all(r.to_html().as_bytes())
                .and_then(|()| f.flush())
                .context("could not write the HTML report")
                .map_err(SetupError::setup)?;
        }
        if let Some(p) = self.pcap.take() {
            p.finish(self.fetch.key_log())
                .context("could not write the pcapng file")
                .map_err(SetupError::setup)?;
        }
        // The body file: every byte is written once the machine is gone (its buffer
        // flushed); it takes its name only when the fetch completed.
        drop(self.fetch);
        if let Some(out) = self.body_output.take() {
            let path = out.path().to_path_buf();
            let note = out
                .settle(failure.is_none(), self.keep_partial)
                .with_context(|| format!("could not rename the body to {}", path.display()))
                .map_err(SetupError::setup)?;
            if let Some(note) = note {
                eprintln!("fetchscope: note: {note}");
            }
        }
        if let Some(e) = write_err
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            return Err(SetupError::setup(
                anyhow::Error::new(e).context("could not write the output"),
            ));
        }
        let code = match (&failure, &summary) {
            (Some(e), _) => {
                eprintln!("fetchscope: {} failed: {}", e.phase, e.message);
                e.exit_code()
            }
            (None, Some(s)) if self.fail_on_http_error && s.status >= 400 => {
                eprintln!(
                    "fetchscope: the server answered HTTP {} (--fail: exit status {EXIT_HTTP_FAIL})",
                    s.status
                );
                EXIT_HTTP_FAIL
            }
            _ => 0,
        };
        if let Some(w) = &self.write_out {
            let text = w.render(&crate::render::write_out::Outcome {
                summary: summary.as_ref(),
                error: failure.as_ref(),
                url: &self.url,
                exit_code: code,
            });
            // On stdout after everything else (as curl); with --json on stderr, so
            // stdout stays NDJSON.
            let written = if self.json {
                io::stderr().write_all(text.as_bytes())
            } else {
                let mut o = io::stdout().lock();
                o.write_all(text.as_bytes()).and_then(|()| o.flush())
            };
            if let Err(e) = written
                && e.kind() != io::ErrorKind::BrokenPipe
            {
                return Err(SetupError::setup(
                    anyhow::Error::new(e).context("could not write the -w output"),
                ));
            }
        }
        Ok(code)
    }
}

/// Runs `fetchscope fetch`; returns the exit status.
pub fn fetch(url: &str, args: &CommonArgs) -> Result<i32, SetupError> {
    if args.lab_fault == Some(crate::cli::LabFaultChoice::Help) {
        print!("{}", lab_fault_help());
        return Ok(0);
    }
    let mut session = Session::start(url, args)?;
    session.run_to_end();
    session.finish()
}

/// The text of `--lab-fault help`.
pub fn lab_fault_help() -> String {
    format!(
        "fetchscope fetch --lab-fault NAME makes the built-in lab misbehave in one way \
         (see docs/lab.md):\n\n{}\nExample: fetchscope fetch --lab-fault cert-expired\n",
        fetchscope_lab::LabFault::help_text()
    )
}

impl From<io::Error> for SetupError {
    fn from(e: io::Error) -> Self {
        SetupError::setup(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_scheme_get_https() {
        assert_eq!(
            parse_url("www.example.test/x").unwrap().as_str(),
            "https://www.example.test/x"
        );
        assert_eq!(parse_url("ftp://a/").unwrap_err().code, EXIT_USAGE);
        assert_eq!(parse_url("http://").unwrap_err().code, EXIT_USAGE);
    }

    #[test]
    fn a_scheme_missing_its_colon_or_a_slash_is_named() {
        for bad in [
            "https//www.example.test",
            "https:/www.example.test/x",
            "HTTP//a.test",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.code, EXIT_USAGE);
            let text = e.error.to_string();
            assert!(text.contains("did you mean"), "{bad}: {text}");
        }
        assert!(
            parse_url("https//www.example.test")
                .unwrap_err()
                .error
                .to_string()
                .contains("https://www.example.test")
        );
        // a host that merely starts with "http" is a host
        assert_eq!(
            parse_url("httpbin.test/x").unwrap().as_str(),
            "https://httpbin.test/x"
        );
    }

    #[test]
    fn port_zero_is_a_usage_error() {
        let e = parse_url("https://www.example.test:0/").unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
        assert!(e.error.to_string().contains("port 0"));
    }
}
