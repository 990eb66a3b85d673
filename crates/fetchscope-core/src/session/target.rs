//! [`Target`]: the URL of an exchange and how to reach it (host, port, TLS or not).

use url::{Host, Url};

use crate::error::{FailureClass, FetchError};
use crate::event::Phase;

/// Where an exchange goes: its URL, the host to look up, the port and whether TLS runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL asked for.
    pub url: Url,
    /// The host, lower case (an IP literal without brackets).
    pub host: String,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
    /// `https://`: TLS runs on the connection.
    pub tls: bool,
}

impl Target {
    /// The target of `url`; errors for a scheme other than `http`/`https` and for a URL
    /// without a host (both stacks check the same way).
    pub fn new(url: Url) -> Result<Target, FetchError> {
        let setup =
            |msg: String| FetchError::new(FailureClass::Setup, Phase::Resolve, "setup", msg);
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(setup(format!(
                    "fetchscope fetches http:// and https:// URLs, not {other}://"
                )));
            }
        };
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(setup(format!("the URL {url} has no host"))),
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            url,
            host,
            port,
            tls,
        })
    }

    /// The target a redirect leads to: as [`Target::new`], failing as an HTTP error of
    /// the response that sent it.
    pub fn of_redirect(url: Url) -> Result<Target, FetchError> {
        Target::new(url).map_err(|mut e| {
            e.class = FailureClass::Http;
            e.phase = Phase::Response;
            e.kind = "bad-redirect".into();
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_schemes_are_read_and_checked() {
        let t = Target::new(Url::parse("https://WWW.Example.TEST/x").unwrap()).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("www.example.test", 443, true)
        );
        let t = Target::new(Url::parse("http://[fd00::1]:8080/").unwrap()).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("fd00::1", 8080, false));
        let e = Target::new(Url::parse("ftp://example.test/").unwrap()).unwrap_err();
        assert_eq!((e.class, e.kind.as_str()), (FailureClass::Setup, "setup"));
        let e = Target::new(Url::parse("unix:/run/socket").unwrap()).unwrap_err();
        assert_eq!(e.class, FailureClass::Setup);
        let e = Target::of_redirect(Url::parse("mailto:a@example.test").unwrap()).unwrap_err();
        assert_eq!(
            (e.class, e.phase, e.kind.as_str()),
            (FailureClass::Http, Phase::Response, "bad-redirect")
        );
    }
}
