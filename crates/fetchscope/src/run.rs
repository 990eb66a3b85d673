//! Running a fetch: pick the world (built-in lab or TUN), build the configuration, pull
//! the events into the renderers, and turn the outcome into an exit status.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use fetchscope_flow::{EventKind, Fetch, FetchConfig, FetchError};
use fetchscope_lab::{Lab, LabConfig};
use fetchscope_net::{Link, Randomness};
use fetchscope_net::{TunLink, TunOptions};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use smoltcp::wire::{IpCidr, Ipv4Address, Ipv4Cidr};
use std::net::IpAddr;
use std::path::Path;
use url::Url;

use crate::resolvconf;

use crate::cli::{ColorChoice, CommonArgs};
use crate::keylog::FileKeyLog;
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
    fn usage(e: impl Into<anyhow::Error>) -> Self {
        SetupError {
            code: EXIT_USAGE,
            error: e.into(),
        }
    }

    fn setup(e: impl Into<anyhow::Error>) -> Self {
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
pub fn parse_url(s: &str) -> Result<Url, SetupError> {
    let url = Url::parse(s)
        .or_else(|e| {
            if matches!(e, url::ParseError::RelativeUrlWithoutBase) {
                Url::parse(&format!("https://{s}"))
            } else {
                Err(e)
            }
        })
        .with_context(|| format!("'{s}' is not a URL (try https://www.example.test/)"))
        .map_err(SetupError::usage)?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(SetupError::usage(anyhow::anyhow!(
                "fetchscope fetches http:// and https:// URLs, not {other}://"
            )));
        }
    }
    if url.host().is_none() {
        return Err(SetupError::usage(anyhow::anyhow!(
            "the URL {url} has no host"
        )));
    }
    Ok(url)
}

/// Builds the configuration and the world for a fetch of `url` with `args`.
pub fn prepare(url: Url, args: &CommonArgs) -> Result<(FetchConfig, World), SetupError> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        return Err(SetupError::usage(anyhow::anyhow!(
            "--timeout must be a number of seconds between 0 and 86400"
        )));
    }
    let randomness = Randomness::new(args.seed);
    if let Some(name) = &args.tun {
        return prepare_tun(url, args, name, randomness);
    }
    if args.addr.is_some() || args.gateway.is_some() || !args.dns.is_empty() {
        return Err(SetupError::usage(anyhow::anyhow!(
            "--addr, --gateway and --dns only apply with --tun NAME; without --tun the fetch runs in the built-in lab"
        )));
    }
    // The built-in lab.
    let epoch = match args.seed {
        Some(_) => SystemTime::UNIX_EPOCH + Duration::from_secs(SEEDED_EPOCH_SECS),
        None => SystemTime::now(),
    };
    let lab = Lab::new(LabConfig {
        randomness,
        epoch,
        ..LabConfig::default()
    })
    .context("could not start the built-in lab")
    .map_err(SetupError::setup)?;
    let mut roots = RootCertStore::empty();
    roots
        .add(lab.ca_certificate())
        .context("the lab's CA certificate was rejected")
        .map_err(SetupError::setup)?;
    let mut cfg = FetchConfig::new(url, lab.client_cidr(), Arc::new(roots));
    cfg.gateway = Some(lab.client_gateway());
    cfg.dns_servers = vec![lab.dns_server()];
    cfg.resolve = args.resolve.clone();
    cfg.randomness = randomness;
    cfg.epoch = epoch;
    if args.cacert.is_some() {
        eprintln!(
            "fetchscope: note: --cacert is ignored in the built-in lab, where only the lab's own CA is trusted"
        );
    }
    cfg.timeout = Duration::from_secs_f64(args.timeout);
    let names: Vec<String> = lab.names().into_iter().map(|(n, _)| n).collect();
    cfg.nxdomain_hint = Some(format!(
        "The built-in lab only knows {}; to fetch from a real server use --tun (see the README).",
        names.join(" and ")
    ));
    let description = match args.seed {
        Some(s) => format!("built-in lab, virtual clock, seed {s}"),
        None => "built-in lab, virtual clock".to_string(),
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
    let addr = args.addr.as_deref().ok_or_else(|| {
        SetupError::usage(anyhow::anyhow!(
            "--tun needs the stack's own address: add --addr CIDR, e.g. --addr 10.88.1.2/24"
        ))
    })?;
    let cidr: Ipv4Cidr = addr.parse().map_err(|_| {
        SetupError::usage(anyhow::anyhow!(
            "--addr {addr} is not an IPv4 address with a prefix length, e.g. 10.88.1.2/24"
        ))
    })?;
    if cidr.prefix_len() >= 31 || cidr.prefix_len() == 0 {
        return Err(SetupError::usage(anyhow::anyhow!(
            "--addr {addr}: the prefix must leave room for the stack and its gateway (e.g. /24)"
        )));
    }
    let network = cidr.network();
    let first_host = Ipv4Address::from_bits(network.address().to_bits().wrapping_add(1));
    let gateway: IpAddr = match args.gateway {
        Some(g) => g,
        None => {
            if first_host == cidr.address() {
                return Err(SetupError::usage(anyhow::anyhow!(
                    "--addr {addr} is the first host of its prefix, the default gateway: pass --gateway IP"
                )));
            }
            IpAddr::V4(first_host)
        }
    };
    let IpAddr::V4(gw4) = gateway else {
        return Err(SetupError::usage(anyhow::anyhow!(
            "--gateway must be an IPv4 address"
        )));
    };
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
    // The kernel side gets the gateway address when fetchscope creates the device.
    let kernel_side = Ipv4Cidr::new(gw4, cidr.prefix_len());
    let link = TunLink::open(TunOptions::create(name, Some(kernel_side)))
        .map_err(|e| SetupError::setup(anyhow::anyhow!(e.to_string())))?;
    let description = format!(
        "TUN device {name}{}, stack {cidr}, gateway {gateway}, DNS {}",
        if link.created() { " (created)" } else { "" },
        dns_servers
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut cfg = FetchConfig::new(url, IpCidr::Ipv4(cidr), Arc::new(roots));
    cfg.gateway = Some(gateway);
    cfg.dns_servers = dns_servers;
    cfg.resolve = args.resolve.clone();
    cfg.randomness = randomness;
    cfg.timeout = Duration::from_secs_f64(args.timeout);
    Ok((
        cfg,
        World {
            link: Box::new(link),
            description,
        },
    ))
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

/// Runs `fetchscope fetch`; returns the exit status.
pub fn fetch(url: &str, args: &CommonArgs) -> Result<i32, SetupError> {
    let url = parse_url(url)?;
    let (mut cfg, world) = prepare(url.clone(), args)?;
    if let Some(path) = &args.output {
        let f = create_file(path, "output")?;
        cfg.body_out = Some(Box::new(BufWriter::with_capacity(256 * 1024, f)));
    }
    let keylog_path = args.keylog.clone().or_else(|| {
        std::env::var_os("SSLKEYLOGFILE")
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    if let Some(path) = keylog_path {
        let kl = FileKeyLog::open(&path)
            .with_context(|| format!("cannot open the key log file {}", path.display()))
            .map_err(SetupError::setup)?;
        cfg.key_log = Some(Arc::new(kl));
    }
    let mut pcap = match &args.pcap {
        Some(path) => {
            Some(crate::pcap::PcapOutput::new(path, cfg.epoch).map_err(SetupError::setup)?)
        }
        None => None,
    };

    let mut fetch = Fetch::new(cfg, world.link).map_err(|e| SetupError {
        code: e.exit_code(),
        error: anyhow::anyhow!(e.message.clone()),
    })?;
    let stdout = io::stdout();
    let out = BufWriter::new(stdout.lock());
    let mut renderer = if args.json {
        Renderer::Json(JsonRenderer::new(out))
    } else {
        let mut t = TextRenderer::new(out, use_color(args.color));
        t.header(url.as_str(), &world.description)?;
        Renderer::Text(t)
    };
    let mut write_err: Option<io::Error> = None;
    while let Some(event) = fetch.next_event() {
        if let (Some(p), EventKind::Packet(pk)) = (&mut pcap, &event.kind)
            && let Err(e) = p.packet(event.t_us, pk)
        {
            write_err.get_or_insert(e);
        }
        if let Err(e) = renderer.event(&event) {
            write_err.get_or_insert(e);
        }
    }
    let failure: Option<FetchError> = match fetch.result() {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    };
    if let Some(e) = &failure {
        let _ = renderer.failed(e);
    }
    let _ = renderer.flush();
    drop(renderer);
    if let Some(p) = pcap.take() {
        p.finish(fetch.key_log())
            .context("could not write the pcapng file")
            .map_err(SetupError::setup)?;
    }
    if let Some(e) = write_err
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(SetupError::setup(
            anyhow::Error::new(e).context("could not write the output"),
        ));
    }
    match failure {
        Some(e) => {
            eprintln!("fetchscope: {} failed: {}", e.phase, e.message);
            Ok(e.exit_code())
        }
        None => Ok(0),
    }
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
}
