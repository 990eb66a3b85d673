//! The command line: `fetchscope fetch|step|compare [URL] [options]`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fetchscope_core::ResolveOverride;

/// The URL fetched when none is given.
pub const DEFAULT_URL: &str = "https://www.example.test/";

/// Watch an HTTPS fetch end to end: DNS, TCP, TLS and HTTP through fetchscope's own
/// userspace TCP/IP stack (smoltcp), every packet and state change shown.
#[derive(Debug, Parser)]
#[command(
    name = "fetchscope",
    version,
    about,
    long_about = "Watch an HTTPS fetch end to end.\n\n\
fetchscope does what requests.get(url) does — DNS lookup, TCP three-way handshake, TLS \
handshake, HTTP GET, response, FIN teardown — through its own userspace TCP/IP stack, and \
shows every packet, TCP state change and TLS stage with its time.\n\n\
Without --tun the fetch runs in the built-in lab: a DNS server and an HTTPS server inside \
the process, joined to fetchscope's stack by an in-memory IP link on a virtual clock. It \
needs no root and no network, and knows www.example.test (a small page at /, N generated \
bytes at /bytes/N).\n\n\
With --tun NAME the stack talks to the real network through a TUN device (see \
scripts/netns-lab.sh and scripts/tun-nat.sh).\n\n\
Privileges: opening a TUN device needs root (or CAP_NET_ADMIN). Right after the device is \
open and configured, before the first packet is parsed, fetch and step give up every \
privilege: started with sudo it becomes the invoking user (SUDO_UID/SUDO_GID, no \
supplementary groups); started as root otherwise it keeps uid 0 without any capability. \
Output files (-o, --pcap, --keylog, --har, --report) are created after that, so they \
belong to that user. The built-in lab needs no privileges at all.",
    after_help = "Examples:\n  \
fetchscope fetch                                  # the built-in lab's page, every packet shown\n  \
fetchscope fetch https://www.example.test/bytes/100000 -o body.bin\n  \
fetchscope fetch --json --seed 7 | jq -c 'select(.type==\"tcp_state\")'\n  \
sudo ip netns exec fsc-cli fetchscope fetch https://www.example.test/ --tun fsc0 \\\n      \
--addr 10.88.1.2/24 --dns 10.88.0.1 --cacert /tmp/fetchscope-lab/ca.pem\n\n\
Exit status: 0 fetched (whatever the HTTP status), 2 usage, 3 set-up (TUN, permissions, \
files), 4 DNS, 5 TCP connect or proxy, 6 TLS, 7 HTTP protocol, 8 timed out, 22 HTTP status \
>= 400 with --fail, 130 stopped (Ctrl-C)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `fetchscope fetch --help`'s examples: the common cases, curl's option names.
const FETCH_EXAMPLES: &str = "Examples:
  fetchscope fetch                                        # the built-in lab's page, every packet
  fetchscope fetch https://www.example.test/bytes/100000 -o body.bin
  fetchscope fetch https://www.example.test/anything --json-body '{\"a\":1}'    # POST JSON
  fetchscope fetch https://www.example.test/anything -X PUT -d 'a=1' -H 'X-Token: t'
  fetchscope fetch -I https://www.example.test/           # HEAD
  fetchscope fetch -u me:pw https://www.example.test/basic-auth/me/pw   # never printed
  fetchscope fetch --as requests https://www.example.test/anything      # requests' own head
  fetchscope fetch -s -w '%{http_code} %{time_appconnect} %{time_total}\\n'
  fetchscope fetch https://www.example.test/bytes/1000 -o - | sha256sum   # trace on stderr
  fetchscope fetch --json --seed 7 | jq -c 'select(.type==\"tcp_state\")'
  fetchscope fetch --loss 5 --seed 3 https://www.example.test/bytes/100000
  sudo ip netns exec fsc-cli fetchscope fetch https://www.example.test/ --tun fsc0 \\
      --addr 10.88.1.2/24 --dns 10.88.0.1 --cacert /tmp/fetchscope-lab/ca.pem \\
      -x http://10.88.0.7:3128                            # through the lab's tinyproxy

Exit status: 0 fetched (whatever the HTTP status), 2 usage, 3 set-up, 4 DNS, 5 TCP connect or
proxy, 6 TLS, 7 HTTP protocol, 8 timed out, 22 HTTP status >= 400 with --fail, 130 stopped.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch a URL and show every packet, state change and timing.
    #[command(after_help = FETCH_EXAMPLES)]
    Fetch(FetchArgs),
    /// The same fetch, paused after each event: step through it and look at the TCP, TLS
    /// and HTTP state at each pause (keys: Enter/n next, p packet, s state change, f phase,
    /// c continue, b ladder, q quit, ? help; one command per line when stdin is not a
    /// terminal).
    Step(StepArgs),
    /// Fetch a URL through fetchscope's stack (--tun) and through the kernel's, and show
    /// both side by side with their differences.
    // The built-in lab's options mean nothing here: compare always runs over --tun.
    #[command(mut_arg("ipv6", |a| a.hide(true)), mut_arg("lab_fault", |a| a.hide(true)))]
    Compare(crate::compare::CompareArgs),
    /// Replay a capture (pcap or pcapng from tcpdump, Wireshark or --pcap): the fetch in
    /// it shown as a live one is — phases, packets, inferred TCP states, TLS decrypted
    /// with its key log, HTTP, timings — in every output (--json, --ladder, --har,
    /// --report).
    #[command(after_help = crate::replay::REPLAY_EXAMPLES)]
    Replay(crate::replay::ReplayArgs),
}

/// Options of `fetchscope step`: a fetch's, or a capture to step through.
#[derive(Debug, Args)]
pub struct StepArgs {
    /// The fetch.
    #[command(flatten)]
    pub fetch: FetchArgs,

    /// Step through this capture (pcap or pcapng) instead of fetching: the same pauses
    /// and keys; --keylog FILE then gives its TLS secrets.
    #[arg(long, value_name = "FILE", help_heading = "Replay")]
    pub replay: Option<PathBuf>,

    /// Which packets of the capture (with --replay).
    #[command(flatten)]
    pub select: crate::replay::ReplaySelect,
}

/// Options of `fetchscope fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The URL to fetch (http:// or https://).
    #[arg(default_value = DEFAULT_URL)]
    pub url: String,

    /// Options shared by all subcommands.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options shared by every subcommand (see DESIGN.md's command-line contract).
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Use the TUN device NAME (attach if it exists, create it when permitted) instead of
    /// the built-in lab.
    ///
    /// Needs root or CAP_NET_ADMIN to open the device; `fetch` and `step` drop every
    /// privilege right after (to the sudo user, or to no capabilities), before the first
    /// packet is parsed, and create output files afterwards, as that user.
    #[arg(long, value_name = "NAME", help_heading = "Network")]
    pub tun: Option<String>,

    /// The stack's own address on the TUN link, e.g. 10.88.1.2/24; repeat to add an IPv6
    /// address (e.g. fd00:88:1::2/64): DNS then asks for AAAA as well as A.
    #[arg(long, value_name = "CIDR", help_heading = "Network")]
    pub addr: Vec<String>,

    /// Next hop for everything off-link (default: first host of --addr's prefix); one per
    /// IP version.
    #[arg(long, value_name = "IP", help_heading = "Network")]
    pub gateway: Vec<IpAddr>,

    /// DNS server; repeat for more (default: first usable nameserver of /etc/resolv.conf).
    #[arg(long, value_name = "IP", help_heading = "Network")]
    pub dns: Vec<IpAddr>,

    /// Skip DNS for HOST on PORT and use ADDR, like curl's --resolve; repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR", help_heading = "Network")]
    pub resolve: Vec<ResolveOverride>,

    /// Extra trust anchors (PEM file); the default Mozilla roots stay trusted.
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub cacert: Option<PathBuf>,

    /// Write TLS secrets to FILE in NSS key log format (SSLKEYLOGFILE is honoured too).
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub keylog: Option<PathBuf>,

    /// Write the decoded body (after chunked and Content-Encoding decoding) to FILE.
    #[arg(short = 'o', long, value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,

    /// Write every packet to FILE as pcapng, with the TLS secrets embedded so Wireshark
    /// decrypts it without extra options.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub pcap: Option<PathBuf>,

    /// Print NDJSON events on stdout (one per line), nothing else.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// Write the fetch as an HTTP Archive (HAR 1.2) to FILE: one entry per HTTP exchange
    /// (redirect hops too) with headers and devtools-style timings; opens in browser
    /// devtools and HAR viewers.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub har: Option<PathBuf>,

    /// Draw an ASCII ladder diagram after the fetch: client and server columns, one arrow
    /// per packet with its label and time, phases marked (80 columns). With --json it goes
    /// to stderr, so stdout stays NDJSON.
    #[arg(long, help_heading = "Output")]
    pub ladder: bool,

    /// Write a self-contained HTML report to FILE: phase waterfall, ladder diagram, TLS
    /// details and certificates, HTTP headers, and every packet with its decoded layers
    /// (no network needed to view it).
    #[arg(long, value_name = "FILE.html", help_heading = "Output")]
    pub report: Option<PathBuf>,

    /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "auto",
        help_heading = "Output"
    )]
    pub color: ColorChoice,

    /// In the built-in lab, give the stack and the lab's servers IPv6 addresses as well:
    /// DNS asks for AAAA and A, and the connection prefers IPv6 (with --tun, add an IPv6
    /// --addr instead).
    #[arg(long, help_heading = "Network")]
    pub ipv6: bool,

    /// The stack's IP MTU, when smaller than its link's (e.g. 1280 to try a tunnel's path
    /// MTU): 576 to 65535, at least 1280 with IPv6. Without it the stack uses the link's
    /// MTU and lowers it when a router says the path needs less (ICMP "fragmentation
    /// needed").
    #[arg(long, value_name = "BYTES", help_heading = "Network")]
    pub mtu: Option<u32>,

    /// Give up after SECS seconds in total, naming the phase that stalled (lab: virtual
    /// seconds).
    #[arg(
        short = 'm',
        long,
        value_name = "SECS",
        default_value_t = 30.0,
        value_parser = timeout_secs,
        allow_negative_numbers = true,
        visible_alias = "max-time",
        help_heading = "Run"
    )]
    pub timeout: f64,

    /// Give up when the connection (DNS, TCP and TLS) is not up after SECS seconds, like
    /// curl's --connect-timeout
    #[arg(
        long,
        value_name = "SECS",
        value_parser = timeout_secs,
        allow_negative_numbers = true,
        help_heading = "Run"
    )]
    pub connect_timeout: Option<f64>,

    /// Exit with status 22 (as curl --fail) when the final HTTP status is 400 or more
    #[arg(long, help_heading = "Run")]
    pub fail: bool,

    /// Do not verify the server's certificate: the check still runs and its result is
    /// reported, loudly, in every output, but a failure does not stop the fetch
    #[arg(short = 'k', long, help_heading = "TLS")]
    pub insecure: bool,

    /// No trace: only errors and what -o and -w ask for
    #[arg(short = 's', long, conflicts_with = "json", help_heading = "Output")]
    pub silent: bool,

    /// After the fetch, print FORMAT with curl's variables filled in, e.g.
    /// '%{http_code} %{time_total}\n' or '%{json}' (docs/cli.md lists them)
    #[arg(short = 'w', long, value_name = "FORMAT", value_parser = parse_write_out, help_heading = "Output")]
    pub write_out: Option<crate::render::write_out::WriteOut>,

    /// Show passwords, Authorization, Proxy-Authorization, Cookie and Set-Cookie values
    /// in every output instead of <redacted, N bytes>
    #[arg(long, help_heading = "Output")]
    pub show_secrets: bool,

    /// Keep the body received before a failure in FILE.part (default: removed)
    #[arg(long, requires = "output", help_heading = "Output")]
    pub keep_partial: bool,

    /// Do not show the start of a text body in the text output
    #[arg(long, help_heading = "Output")]
    pub no_body: bool,

    /// Fix every random choice (ISNs, ports, DNS id, TLS randoms) so runs repeat; in the
    /// lab, also the clock's start date.
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub seed: Option<u64>,

    /// What to send: method, headers, body, credentials (-X, -H, -d, -u, ...).
    #[command(flatten)]
    pub request: crate::request_args::RequestArgs,

    /// Follow redirects only to these protocols, written like curl's --proto-redir:
    /// =https (only https), -http, -all,https; a bare list (https, http,https) is the
    /// whole set. Default: http,https, as requests.get() follows https → http too (the
    /// trace marks such a downgrade).
    #[arg(
        long,
        value_name = "PROTOCOLS",
        default_value = "http,https",
        help_heading = "Run"
    )]
    pub proto_redir: fetchscope_core::redirects::RedirectProtocols,

    /// Make the built-in lab misbehave in one way, to see how the fetch fails or copes:
    /// DNS (nxdomain, dns-wrong-id, dns-truncated, ...), TCP (refused, syn-silent), TLS
    /// (cert-expired, tls-alert, ...) or HTTP (truncated, redirect-loop, slow, ...).
    /// `--lab-fault help` lists every fault.
    #[arg(long, value_name = "NAME", value_parser = parse_lab_fault, help_heading = "Run")]
    pub lab_fault: Option<LabFaultChoice>,

    /// Fault injection on the stack's link: --loss, --reorder, --duplicate, --corrupt,
    /// --delay, --jitter, --rate, --faults-dir.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Fault injection on the stack's link, in the built-in lab or on a TUN device
/// (docs/faults.md). Every random choice follows --seed.
#[derive(Debug, Clone, Default, Args)]
pub struct FaultArgs {
    /// Drop PCT % of the packets. A dropped packet still appears in the trace, marked
    /// "dropped by fault injection" (a received one never reaches the stack).
    #[arg(long, value_name = "PCT", allow_negative_numbers = true, value_parser = loss_pct, help_heading = "Faults")]
    pub loss: Option<f64>,

    /// Hold back PCT % of the packets so the next packet overtakes them (at most 10 ms).
    #[arg(long, value_name = "PCT", allow_negative_numbers = true, value_parser = reorder_pct, help_heading = "Faults")]
    pub reorder: Option<f64>,

    /// Send PCT % of the packets twice.
    #[arg(long, value_name = "PCT", allow_negative_numbers = true, value_parser = duplicate_pct, help_heading = "Faults")]
    pub duplicate: Option<f64>,

    /// Flip one bit in PCT % of the packets (the receiver finds a bad checksum).
    #[arg(long, value_name = "PCT", allow_negative_numbers = true, value_parser = corrupt_pct, help_heading = "Faults")]
    pub corrupt: Option<f64>,

    /// Delay every packet by MS milliseconds (up to 60000; lab: virtual time).
    #[arg(long, value_name = "MS", allow_negative_numbers = true, value_parser = delay_ms, help_heading = "Faults")]
    pub delay: Option<std::time::Duration>,

    /// Vary the delay by up to ± MS milliseconds, uniformly (packets keep their order).
    #[arg(long, value_name = "MS", allow_negative_numbers = true, value_parser = jitter_ms, help_heading = "Faults")]
    pub jitter: Option<std::time::Duration>,

    /// Limit the bandwidth, written like tc: 10mbit, 512kbit, 1gbit (100kbps = bytes/s).
    #[arg(long, value_name = "RATE", value_parser = rate_bps, help_heading = "Faults")]
    pub rate: Option<u64>,

    /// The direction the faults apply to: rx (packets to the stack), tx (packets it
    /// sends) or both.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "both",
        help_heading = "Faults"
    )]
    pub faults_dir: FaultsDir,
}

/// Which way `--loss`, `--delay`, ... apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FaultsDir {
    /// Packets on their way to the stack.
    Rx,
    /// Packets the stack sends.
    Tx,
    /// Both.
    #[default]
    Both,
}

impl FaultArgs {
    /// The fault configuration, or `None` when no fault was asked for.
    pub fn config(&self) -> Option<fetchscope_core::fault::config::FaultConfig> {
        use fetchscope_core::fault::config::FaultDirections;
        let cfg = fetchscope_core::fault::config::FaultConfig {
            loss: self.loss.unwrap_or(0.0),
            reorder: self.reorder.unwrap_or(0.0),
            duplicate: self.duplicate.unwrap_or(0.0),
            corrupt: self.corrupt.unwrap_or(0.0),
            delay: self.delay.unwrap_or_default(),
            jitter: self.jitter.unwrap_or_default(),
            rate_bps: self.rate,
            directions: match self.faults_dir {
                FaultsDir::Rx => FaultDirections::Rx,
                FaultsDir::Tx => FaultDirections::Tx,
                FaultsDir::Both => FaultDirections::Both,
            },
        };
        cfg.is_active().then_some(cfg)
    }
}

/// Parses `--timeout SECS`: more than 0, at most a day.
/// Parses `-w FORMAT`.
pub fn parse_write_out(s: &str) -> Result<crate::render::write_out::WriteOut, String> {
    crate::render::write_out::WriteOut::parse(s)
}

fn timeout_secs(s: &str) -> Result<f64, String> {
    let why = || {
        format!(
            "takes a number of seconds more than 0 and at most 86400 (a day), like 30 or 2.5; '{s}' is not one"
        )
    };
    let secs: f64 = s.trim().parse().map_err(|_| why())?;
    if timeout_in_range(secs) {
        Ok(secs)
    } else {
        Err(why())
    }
}

/// Whether `secs` is a timeout fetchscope takes: more than 0, at most a day.
pub fn timeout_in_range(secs: f64) -> bool {
    secs.is_finite() && secs > 0.0 && secs <= 86_400.0
}

fn loss_pct(s: &str) -> Result<f64, String> {
    fetchscope_core::fault::config::parse_percent("loss", s).map_err(|e| e.to_string())
}

fn reorder_pct(s: &str) -> Result<f64, String> {
    fetchscope_core::fault::config::parse_percent("reorder", s).map_err(|e| e.to_string())
}

fn duplicate_pct(s: &str) -> Result<f64, String> {
    fetchscope_core::fault::config::parse_percent("duplicate", s).map_err(|e| e.to_string())
}

fn corrupt_pct(s: &str) -> Result<f64, String> {
    fetchscope_core::fault::config::parse_percent("corrupt", s).map_err(|e| e.to_string())
}

fn delay_ms(s: &str) -> Result<std::time::Duration, String> {
    fetchscope_core::fault::config::parse_millis("delay", s).map_err(|e| e.to_string())
}

fn jitter_ms(s: &str) -> Result<std::time::Duration, String> {
    fetchscope_core::fault::config::parse_millis("jitter", s).map_err(|e| e.to_string())
}

fn rate_bps(s: &str) -> Result<u64, String> {
    fetchscope_core::fault::config::parse_rate(s).map_err(|e| e.to_string())
}

/// When to colour the text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// What `--lab-fault` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabFaultChoice {
    /// `--lab-fault help`: list the faults and exit.
    Help,
    /// Run the built-in lab with this fault.
    Fault(fetchscope_lab::LabFault),
}

impl LabFaultChoice {
    /// The fault chosen, if any.
    pub fn fault(self) -> Option<fetchscope_lab::LabFault> {
        match self {
            LabFaultChoice::Help => None,
            LabFaultChoice::Fault(f) => Some(f),
        }
    }
}

/// Parses `--lab-fault NAME`: `help`, or a fault's name.
fn parse_lab_fault(s: &str) -> Result<LabFaultChoice, String> {
    if s.trim().eq_ignore_ascii_case("help") {
        return Ok(LabFaultChoice::Help);
    }
    let fault: fetchscope_lab::LabFault = s
        .parse()
        .map_err(|e| format!("{e} (--lab-fault help describes them)"))?;
    Ok(LabFaultChoice::Fault(fault))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn lab_faults_parse_by_name_and_help() {
        assert_eq!(parse_lab_fault("help"), Ok(LabFaultChoice::Help));
        assert_eq!(
            parse_lab_fault("tls-alert").map(LabFaultChoice::fault),
            Ok(Some(fetchscope_lab::LabFault::TlsAlert))
        );
        let err = parse_lab_fault("nope").unwrap_err();
        assert!(
            err.contains("nxdomain") && err.contains("--lab-fault help"),
            "{err}"
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn fetch_defaults_to_the_lab_page() {
        let cli = Cli::try_parse_from(["fetchscope", "fetch"]).unwrap();
        let Command::Fetch(args) = cli.command else {
            panic!("not fetch")
        };
        assert_eq!(args.url, DEFAULT_URL);
        assert_eq!(args.common.timeout, 30.0);
        assert!(args.common.tun.is_none());
    }

    #[test]
    fn fault_options_parse_and_bad_values_are_usage_errors() {
        let cli = Cli::try_parse_from([
            "fetchscope",
            "fetch",
            "--loss",
            "5",
            "--delay",
            "20",
            "--rate",
            "10mbit",
            "--faults-dir",
            "rx",
        ])
        .unwrap();
        let Command::Fetch(args) = cli.command else {
            panic!("not fetch")
        };
        let cfg = args.common.faults.config().expect("faults asked for");
        assert_eq!(cfg.loss, 5.0);
        assert_eq!(cfg.delay.as_millis(), 20);
        assert_eq!(cfg.rate_bps, Some(10_000_000));
        assert_eq!(
            cfg.directions,
            fetchscope_core::fault::config::FaultDirections::Rx
        );
        let none = Cli::try_parse_from(["fetchscope", "fetch"]).unwrap();
        let Command::Fetch(args) = none.command else {
            panic!("not fetch")
        };
        assert!(args.common.faults.config().is_none());
        for bad in [
            ["--loss", "101"],
            ["--reorder", "-1"],
            ["--corrupt", "lots"],
            ["--delay", "999999"],
            ["--rate", "fast"],
            ["--faults-dir", "up"],
        ] {
            let e = Cli::try_parse_from(["fetchscope", "fetch", bad[0], bad[1]]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn resolve_entries_are_validated() {
        assert!(Cli::try_parse_from(["fetchscope", "fetch", "--resolve", "bad"]).is_err());
        let cli = Cli::try_parse_from([
            "fetchscope",
            "fetch",
            "--resolve",
            "a.test:443:10.0.0.1",
            "--seed",
            "7",
        ])
        .unwrap();
        let Command::Fetch(args) = cli.command else {
            panic!("not fetch")
        };
        assert_eq!(args.common.resolve.len(), 1);
        assert_eq!(args.common.seed, Some(7));
    }
}
