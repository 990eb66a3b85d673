//! [`ProxyPolicy`]: what the lab's proxy answers each request — a tunnel for an allowed
//! `CONNECT`, the lab's routes for an absolute-form `http://` request, or one of its own
//! errors (400, 403, 407, 502).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rustls::ServerConfig;

use super::{PROXY_AUTH_PORT, PROXY_PASSWORD, PROXY_PORT, PROXY_REALM, PROXY_USER, PROXY_VIA};
use crate::config::{PROXY_ADDR, PROXY_ADDR_V6};
use crate::dns::Zone;
use crate::fault::LabFault;
use crate::http::{Request, Response, RouteContext, basic_credentials, html_error, respond};
use crate::stats::ServerStats;

/// The ports a `CONNECT` may name: HTTPS and HTTP, where the lab's web servers listen.
const TUNNEL_PORTS: [u16; 2] = [443, 80];
/// The only port an absolute-form `http://` target may name.
const HTTP_PORT: u16 = 80;
/// The longest host name the proxy reads (RFC 1035's limit).
const MAX_NAME_LEN: usize = 253;

/// How the proxy on one port answers requests.
#[derive(Debug)]
pub(crate) struct ProxyPolicy {
    /// Requests need `Proxy-Authorization: Basic` with the lab's credentials (port 3129).
    pub require_auth: bool,
    /// The lab's fault: applied by the routes of forwarded requests and by the tunnels'
    /// far end, as on a direct connection; `refused` makes a `CONNECT` to port 443 fail
    /// with 502.
    pub fault: Option<LabFault>,
    /// The names the proxy resolves (the lab's zone, without the DNS faults).
    pub zone: Zone,
    /// The addresses where the lab's web servers listen: the only destinations allowed.
    pub origins: Vec<IpAddr>,
    /// The lab's HTTPS configuration, for the far end of tunnels to port 443.
    pub tls: Arc<ServerConfig>,
}

/// An accepted `CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TunnelRequest {
    /// The port asked for: 443 (the tunnel's far end speaks TLS) or 80 (plain HTTP).
    pub port: u16,
    /// The proxy's own address toward the destination (the origin's view of its peer).
    pub via: IpAddr,
    /// The request target as sent (`host:port`), for the log.
    pub authority: String,
}

/// What the proxy answers one request with.
#[derive(Debug)]
pub(crate) enum ProxyAnswer {
    /// `200 Connection established`, then the tunnel.
    Tunnel(TunnelRequest),
    /// This response: the proxy's own error, or the lab's answer to a forwarded request.
    Respond {
        /// The response.
        response: Response,
        /// Send the head only (the request was `HEAD`).
        head_only: bool,
        /// Close the connection after it.
        close: bool,
    },
}

/// Why the proxy refuses a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// 400: not a proxy request the proxy can read; the connection closes.
    BadRequest(&'static str),
    /// 403: a destination or port the proxy does not go to.
    Forbidden(String),
    /// 502: the destination cannot be reached (an unknown name, a refused connection).
    BadGateway(String),
}

impl Refusal {
    /// The proxy's error response.
    fn response(&self) -> Response {
        let mut r = match self {
            Refusal::BadRequest(why) => html_error(
                400,
                "Bad Request",
                &format!(
                    "{why}. This is the lab's proxy: send CONNECT host:port or an absolute-form request (GET http://host/path)."
                ),
            ),
            Refusal::Forbidden(why) => html_error(403, "Forbidden", why),
            Refusal::BadGateway(why) => html_error(502, "Bad Gateway", why),
        };
        r.close = matches!(self, Refusal::BadRequest(_));
        r
    }
}

/// A destination host as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// A DNS name, in lower case, without a final dot.
    Name(String),
    /// An IPv4 or IPv6 address literal.
    Addr(IpAddr),
}

impl ProxyPolicy {
    /// The answer to `request`, counted in `stats`.
    pub fn answer(&self, request: Request, stats: &mut ServerStats) -> ProxyAnswer {
        if self.require_auth && !authorized(&request) {
            log::debug!(
                "lab proxy: {} {} without valid credentials: 407",
                request.method,
                request.target
            );
            stats.proxy_refused += 1;
            return ProxyAnswer::Respond {
                response: auth_required(),
                head_only: request.is_head(),
                close: true,
            };
        }
        if request.method == "CONNECT" {
            return match self.tunnel(&request.target) {
                Ok(tunnel) => {
                    log::debug!("lab proxy: CONNECT {}: tunnel opened", tunnel.authority);
                    stats.proxy_tunnels += 1;
                    ProxyAnswer::Tunnel(tunnel)
                }
                Err(refusal) => {
                    log::debug!("lab proxy: CONNECT {}: {refusal:?}", request.target);
                    stats.proxy_refused += 1;
                    // Whatever the client sent after the head was meant for the tunnel.
                    let mut response = refusal.response();
                    response.close = true;
                    ProxyAnswer::Respond {
                        response,
                        head_only: false,
                        close: true,
                    }
                }
            };
        }
        let head_only = request.is_head();
        let wants_close = request.wants_close;
        match self.forward(request) {
            Ok((forwarded, via)) => {
                stats.proxy_forwarded += 1;
                let cx = RouteContext {
                    fault: self.fault,
                    scheme: "http",
                    origin: Some(via),
                };
                let response = respond(&forwarded, &cx).header("Via", PROXY_VIA);
                log::debug!(
                    "lab proxy: {} http://{}{} -> {}",
                    forwarded.method,
                    forwarded.host(),
                    forwarded.target,
                    response.status
                );
                let close = wants_close || response.close;
                ProxyAnswer::Respond {
                    response,
                    head_only,
                    close,
                }
            }
            Err(refusal) => {
                log::debug!("lab proxy: refused a request: {refusal:?}");
                stats.proxy_refused += 1;
                let response = refusal.response();
                let close = wants_close || response.close;
                ProxyAnswer::Respond {
                    response,
                    head_only,
                    close,
                }
            }
        }
    }

    /// The tunnel a `CONNECT` target (`host:port`) asks for, if the proxy opens it.
    fn tunnel(&self, target: &str) -> Result<TunnelRequest, Refusal> {
        let (host, port) = parse_authority(target)?;
        let port = port.ok_or(Refusal::BadRequest("CONNECT needs a target host:port"))?;
        if !TUNNEL_PORTS.contains(&port) {
            return Err(Refusal::Forbidden(format!(
                "The lab's proxy tunnels to port 443 or 80 only, not {port}."
            )));
        }
        let dest = self.destination(&host)?;
        if port == 443 && self.fault == Some(LabFault::Refused) {
            return Err(Refusal::BadGateway(format!(
                "The connection to {dest} port 443 was refused (the lab runs with --lab-fault refused)."
            )));
        }
        Ok(TunnelRequest {
            port,
            via: via_for(dest),
            authority: target.to_owned(),
        })
    }

    /// An absolute-form `http://` request rewritten as the origin gets it (origin-form
    /// target, `Host` from the URL, no proxy fields, `Via` added), and the proxy's address
    /// toward the origin.
    fn forward(&self, mut request: Request) -> Result<(Request, IpAddr), Refusal> {
        let Some((scheme, rest)) = request.target.split_once("://") else {
            return Err(Refusal::BadRequest(
                "The request target is not in absolute form",
            ));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err(Refusal::BadRequest(
                "An https:// URL goes through a proxy in a CONNECT tunnel, not in absolute form",
            ));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(Refusal::BadRequest("The proxy forwards http:// URLs only"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = (
            rest.get(..end).unwrap_or(rest),
            rest.get(end..).unwrap_or(""),
        );
        if authority.contains('@') {
            return Err(Refusal::BadRequest("The URL carries user information"));
        }
        let (host, port) = parse_authority(authority)?;
        if port.unwrap_or(HTTP_PORT) != HTTP_PORT {
            return Err(Refusal::Forbidden(format!(
                "The lab's proxy forwards http:// URLs to port {HTTP_PORT} only."
            )));
        }
        let dest = self.destination(&host)?;
        let path = path.split('#').next().unwrap_or_default();
        let target = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let authority = authority.to_owned();
        request.path = target.split('?').next().unwrap_or_default().to_owned();
        request.target = target;
        request.headers.retain(|(name, _)| {
            !matches!(
                name.as_str(),
                "host" | "proxy-authorization" | "proxy-connection"
            )
        });
        request
            .headers
            .insert(0, ("host".to_owned(), authority.into_bytes()));
        request
            .headers
            .push(("via".to_owned(), PROXY_VIA.as_bytes().to_vec()));
        Ok((request, via_for(dest)))
    }

    /// The lab address `host` stands for, if the proxy goes there: 502 for a name the
    /// zone does not know, 403 for anything that is not one of the lab's web servers.
    fn destination(&self, host: &Host) -> Result<IpAddr, Refusal> {
        match host {
            Host::Addr(addr) if self.origins.contains(addr) => Ok(*addr),
            Host::Addr(addr) => Err(Refusal::Forbidden(format!(
                "{addr} is not one of the lab's web servers; the lab's proxy goes nowhere else."
            ))),
            Host::Name(name) => {
                let addrs = self.zone.addresses(name);
                if addrs.is_empty() {
                    return Err(Refusal::BadGateway(format!(
                        "{name} is not a name of the built-in lab: the proxy cannot resolve it."
                    )));
                }
                addrs
                    .into_iter()
                    .find(|a| self.origins.contains(a))
                    .ok_or_else(|| {
                        Refusal::Forbidden(format!(
                            "{name} is not one of the lab's web servers; the lab's proxy goes nowhere else."
                        ))
                    })
            }
        }
    }
}

/// The proxy's own address in the family of `dest`.
fn via_for(dest: IpAddr) -> IpAddr {
    match dest {
        IpAddr::V4(_) => IpAddr::V4(PROXY_ADDR),
        IpAddr::V6(_) => IpAddr::V6(PROXY_ADDR_V6),
    }
}

/// True when `request` carries `Proxy-Authorization: Basic` with the lab's credentials.
fn authorized(request: &Request) -> bool {
    let expected = format!("{PROXY_USER}:{PROXY_PASSWORD}");
    basic_credentials(request, "proxy-authorization").is_some_and(|c| c == expected.as_bytes())
}

/// 407 with the proxy's `Basic` challenge; the connection closes after it.
fn auth_required() -> Response {
    let mut r = html_error(
        407,
        "Proxy Authentication Required",
        &format!(
            "Port {PROXY_AUTH_PORT} of the lab's proxy needs Proxy-Authorization: Basic credentials (see docs/lab.md); port {PROXY_PORT} needs none."
        ),
    )
    .header("Proxy-Authenticate", format!("Basic realm=\"{PROXY_REALM}\""));
    r.close = true;
    r
}

/// Reads `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_authority(authority: &str) -> Result<(Host, Option<u16>), Refusal> {
    const BAD_HOST: Refusal = Refusal::BadRequest("The target's host is not valid");
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']').ok_or(BAD_HOST)?;
        let addr: Ipv6Addr = inside.parse().map_err(|_| BAD_HOST)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(BAD_HOST)?),
        };
        (Host::Addr(IpAddr::V6(addr)), port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        (parse_host(name).ok_or(BAD_HOST)?, port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            Some(parse_port(p).ok_or(Refusal::BadRequest("The target's port is not valid"))?)
        }
    };
    Ok((host, port))
}

/// An IPv4 literal or a DNS name (letters, digits, `-`, `.`; no empty label).
fn parse_host(host: &str) -> Option<Host> {
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Some(Host::Addr(IpAddr::V4(v4)));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid.then_some(Host::Name(name))
}

/// A port: 1 to 5 digits, 1–65535.
fn parse_port(port: &str) -> Option<u16> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CDN_ADDR, SERVER_ADDR};
    use crate::dns::ZoneRecord;
    use crate::http::{ParseOutcome, ResponseStream, parse_request};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn policy(require_auth: bool, fault: Option<LabFault>) -> ProxyPolicy {
        let zone = Zone::new([
            ("www.example.test".to_owned(), ZoneRecord::A(SERVER_ADDR)),
            ("cdn.example.test".to_owned(), ZoneRecord::A(CDN_ADDR)),
            ("proxy.example.test".to_owned(), ZoneRecord::A(PROXY_ADDR)),
            (
                "alias.example.test".to_owned(),
                ZoneRecord::Cname("www.example.test".to_owned()),
            ),
        ]);
        let tls =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(rustls::server::ResolvesServerCertUsingSni::new()));
        ProxyPolicy {
            require_auth,
            fault,
            zone,
            origins: vec![IpAddr::V4(SERVER_ADDR), IpAddr::V4(CDN_ADDR)],
            tls: Arc::new(tls),
        }
    }

    fn request(head: &str) -> Request {
        match parse_request(head.as_bytes()) {
            ParseOutcome::Complete { request, .. } => request,
            other => panic!("{head:?}: {other:?}"),
        }
    }

    /// The status and the head as sent, and whether the connection closes.
    fn respond_to(policy: &ProxyPolicy, head: &str) -> (u16, String, bool) {
        let mut stats = ServerStats::default();
        match policy.answer(request(head), &mut stats) {
            ProxyAnswer::Tunnel(t) => (200, format!("tunnel {t:?}"), false),
            ProxyAnswer::Respond {
                response,
                head_only,
                close,
            } => {
                let status = response.status;
                let stream = ResponseStream::new(response, head_only, close, "D");
                let mut buf = vec![0u8; 64 * 1024];
                let n = stream.peek(&mut buf);
                (
                    status,
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                    close,
                )
            }
        }
    }

    #[test]
    fn connect_opens_tunnels_to_lab_web_servers_only() {
        let p = policy(false, None);
        let mut stats = ServerStats::default();
        for (target, port, via) in [
            ("www.example.test:443", 443, PROXY_ADDR),
            ("WWW.Example.Test.:80", 80, PROXY_ADDR),
            ("alias.example.test:443", 443, PROXY_ADDR),
            ("10.88.0.3:443", 443, PROXY_ADDR),
        ] {
            let head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
            match p.answer(request(&head), &mut stats) {
                ProxyAnswer::Tunnel(t) => {
                    assert_eq!((t.port, t.via), (port, IpAddr::V4(via)), "{target}");
                    assert_eq!(t.authority, target);
                }
                other => panic!("{target}: {other:?}"),
            }
        }
        assert_eq!(stats.proxy_tunnels, 4);
        for (target, status) in [
            ("www.example.test:22", 403),
            ("nope.example.test:22", 403),
            ("nope.example.test:443", 502),
            ("example.com:443", 502),
            ("proxy.example.test:443", 403),
            ("10.88.0.4:443", 403),
            ("8.8.8.8:443", 403),
            ("[fd00:88::1]:443", 403),
            ("www.example.test", 400),
            ("www.example.test:", 400),
            ("www.example.test:0", 400),
            ("www.example.test:99999", 400),
            ("www.exa_mple.test:443", 400),
            ("-:443", 502),
            ("a..b:443", 400),
            ("[fd00::1:443", 400),
            ("fd00::1:443", 400),
            ("", 400),
        ] {
            let head = format!("CONNECT {target} HTTP/1.1\r\n\r\n");
            let head = head.replace("CONNECT  HTTP", "CONNECT / HTTP");
            let (got, text, close) = respond_to(&p, &head);
            assert_eq!(got, status, "{target}: {text}");
            assert!(close, "{target}");
            assert!(text.contains("Connection: close\r\n"), "{text}");
        }
    }

    #[test]
    fn the_refused_fault_makes_connect_to_443_a_bad_gateway() {
        let p = policy(false, Some(LabFault::Refused));
        let (status, _, _) = respond_to(&p, "CONNECT www.example.test:443 HTTP/1.1\r\n\r\n");
        assert_eq!(status, 502);
        let (status, _, _) = respond_to(&p, "CONNECT www.example.test:80 HTTP/1.1\r\n\r\n");
        assert_eq!(status, 200);
    }

    #[test]
    fn the_auth_port_wants_the_lab_credentials() {
        let p = policy(true, None);
        let good = STANDARD.encode("proxyuser:proxypass");
        let bad = STANDARD.encode("proxyuser:nope");
        for fields in [
            String::new(),
            format!("Proxy-Authorization: Basic {bad}\r\n"),
            format!("Proxy-Authorization: Bearer {good}\r\n"),
            format!("Authorization: Basic {good}\r\n"),
            "Proxy-Authorization: Basic !!!\r\n".to_owned(),
        ] {
            for line in [
                "CONNECT www.example.test:443 HTTP/1.1",
                "GET http://www.example.test/ HTTP/1.1",
                "CONNECT www.example.test:22 HTTP/1.1",
            ] {
                let (status, text, close) = respond_to(&p, &format!("{line}\r\n{fields}\r\n"));
                assert_eq!(status, 407, "{line} {fields}");
                assert!(close);
                assert!(
                    text.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
                    "{text}"
                );
                assert!(
                    text.contains(
                        "\r\nProxy-Authenticate: Basic realm=\"fetchscope lab proxy\"\r\n"
                    ),
                    "{text}"
                );
            }
        }
        let fields = format!("Proxy-Authorization: basic {good}\r\n");
        let (status, _, _) = respond_to(
            &p,
            &format!("CONNECT www.example.test:443 HTTP/1.1\r\n{fields}\r\n"),
        );
        assert_eq!(status, 200);
        let (status, text, close) = respond_to(
            &p,
            &format!("GET http://www.example.test/status/418 HTTP/1.1\r\n{fields}\r\n"),
        );
        assert_eq!((status, close), (418, false), "{text}");
    }

    #[test]
    fn absolute_form_requests_get_the_lab_routes_with_via() {
        let p = policy(false, None);
        let (status, text, close) = respond_to(
            &p,
            "GET http://www.example.test/status/418 HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
        );
        assert_eq!((status, close), (418, false));
        assert!(text.starts_with("HTTP/1.1 418 I'm a teapot\r\n"), "{text}");
        assert!(
            text.contains("\r\nVia: 1.1 proxy.example.test\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n418 I'm a teapot\n"), "{text}");

        // the Host field follows the URL; proxy fields are not forwarded; Via is
        let auth = STANDARD.encode("proxyuser:proxypass");
        let (_, text, _) = respond_to(
            &p,
            &format!(
                "GET http://cdn.example.test:80/anything?x=1#frag HTTP/1.1\r\nHost: other\r\nProxy-Authorization: Basic {auth}\r\nProxy-Connection: keep-alive\r\nX-A: b\r\n\r\n"
            ),
        );
        let body = text.split("\r\n\r\n").nth(1).expect("a body");
        let echo: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(echo["url"], "http://cdn.example.test:80/anything?x=1");
        assert_eq!(echo["origin"], "10.88.0.4");
        assert_eq!(
            echo["headers"],
            serde_json::json!({"Host": "cdn.example.test:80", "Via": "1.1 proxy.example.test", "X-A": "b"})
        );
        // the cdn host's page, a query on the root, HEAD, Connection: close
        let (status, text, _) = respond_to(&p, "GET http://CDN.example.test?q HTTP/1.1\r\n\r\n");
        assert_eq!(status, 200);
        assert!(text.contains("cdn"), "{text}");
        let (_, text, close) = respond_to(
            &p,
            "HEAD http://www.example.test/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(
            close && text.ends_with("Connection: close\r\n\r\n"),
            "{text}"
        );

        for (head, status, close) in [
            ("GET https://www.example.test/ HTTP/1.1\r\n\r\n", 400, true),
            ("GET ftp://www.example.test/ HTTP/1.1\r\n\r\n", 400, true),
            (
                "GET /status/200 HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
                400,
                true,
            ),
            (
                "GET http://u:p@www.example.test/ HTTP/1.1\r\n\r\n",
                400,
                true,
            ),
            ("GET http:///x HTTP/1.1\r\n\r\n", 400, true),
            (
                "GET http://www.example.test:443/ HTTP/1.1\r\n\r\n",
                403,
                false,
            ),
            ("GET http://8.8.8.8/ HTTP/1.1\r\n\r\n", 403, false),
            ("GET http://nope.test/ HTTP/1.1\r\n\r\n", 502, false),
            (
                "GET http://nope.test/ HTTP/1.1\r\nConnection: close\r\n\r\n",
                502,
                true,
            ),
        ] {
            let (got, text, closes) = respond_to(&p, head);
            assert_eq!((got, closes), (status, close), "{head}: {text}");
        }
    }
}
