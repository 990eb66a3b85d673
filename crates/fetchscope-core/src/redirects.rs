//! [`next_hop`]: the redirect rule shared by the smoltcp machine and the kernel twin.
//!
//! Like requests: at most [`MAX_REDIRECTS`] hops (a loop is named as one), the method
//! changes as [`http::redirect`] says, and the next request goes on the open connection
//! only when the server kept it alive and the new URL has the same origin (scheme, host,
//! port).

use url::Url;

use crate::error::{FailureClass, FetchError};
use crate::event::{ExchangeRecord, Phase, RedirectEvent};
use crate::http::{self, MAX_REDIRECTS, Redirect, ResponseHead};

/// The schemes a redirect may lead to (`--proto-redir`, as curl names it); both by
/// default, as requests follows an https → http redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectProtocols {
    /// `http://` targets are followed.
    pub http: bool,
    /// `https://` targets are followed.
    pub https: bool,
}

impl Default for RedirectProtocols {
    fn default() -> Self {
        RedirectProtocols {
            http: true,
            https: true,
        }
    }
}

impl RedirectProtocols {
    /// Whether a redirect to `scheme` is followed.
    pub fn allows(&self, scheme: &str) -> bool {
        match scheme {
            "http" => self.http,
            "https" => self.https,
            _ => false,
        }
    }
}

impl std::fmt::Display for RedirectProtocols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.http, self.https) {
            (true, true) => "http,https",
            (true, false) => "http",
            (false, true) => "https",
            (false, false) => "none",
        })
    }
}

impl std::str::FromStr for RedirectProtocols {
    type Err = String;

    /// Parses curl's `--proto-redir` list: `=https`, `-all,https`, `-http`, `+https`;
    /// names without any modifier (`https`, `http,https`) are the whole set (curl would
    /// add them to its defaults, which would allow http:// anyway).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let tokens: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if tokens.is_empty() {
            return Err(
                "--proto-redir takes a list of protocols such as =https or -all,https".into(),
            );
        }
        let bare = tokens.iter().all(|t| !t.starts_with(['+', '-', '=']));
        let mut set = if bare {
            RedirectProtocols {
                http: false,
                https: false,
            }
        } else {
            RedirectProtocols::default()
        };
        for token in tokens {
            let (modifier, name) = match token.chars().next() {
                Some(c @ ('+' | '-' | '=')) => (c, token.get(1..).unwrap_or_default()),
                _ => ('+', token),
            };
            let name = name.to_ascii_lowercase();
            let which = match name.as_str() {
                "all" => RedirectProtocols::default(),
                "http" => RedirectProtocols {
                    http: true,
                    https: false,
                },
                "https" => RedirectProtocols {
                    http: false,
                    https: true,
                },
                other => {
                    return Err(format!(
                        "--proto-redir: fetchscope follows only http and https redirects, not '{other}' (use http, https or all, with curl's + - = modifiers)"
                    ));
                }
            };
            match modifier {
                '=' => set = which,
                '-' => {
                    set.http &= !which.http;
                    set.https &= !which.https;
                }
                _ => {
                    set.http |= which.http;
                    set.https |= which.https;
                }
            }
        }
        Ok(set)
    }
}

/// Where a redirect leads and how the fetch gets there.
#[derive(Debug, Clone)]
pub struct NextHop {
    /// The next URL, method and the status that sent it.
    pub redirect: Redirect,
    /// The next request goes on the open connection.
    pub reuse: bool,
    /// The `redirect` event to report.
    pub event: RedirectEvent,
    /// A sentence on why the connection is reused or not (and on a downgrade to http).
    pub note: String,
}

/// Whether two URLs have the same origin: scheme, host and port (the default port when
/// none is given). `Url` already lower-cases schemes and host names.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// What decides whether and how a redirect is followed, besides the response.
#[derive(Debug, Clone, Copy)]
pub struct HopRules {
    /// The server keeps this connection open (no `Connection: close`).
    pub keep_alive: bool,
    /// The connection still is open (no FIN seen, established).
    pub connection_open: bool,
    /// The schemes a redirect may lead to.
    pub allowed: RedirectProtocols,
    /// The most redirects followed (`--max-redirs`; 0 makes the 3xx the final response).
    pub limit: usize,
}

/// Whether requests drops `Authorization` on the way from `from` to `to`
/// (`should_strip_auth`): another host does, except http → https on the same host with
/// default ports.
pub fn strips_auth(from: &Url, to: &Url) -> bool {
    if from.host_str() != to.host_str() {
        return true;
    }
    if from.scheme() == "http"
        && to.scheme() == "https"
        && from.port_or_known_default() == Some(80)
        && to.port_or_known_default() == Some(443)
    {
        return false;
    }
    from.scheme() != to.scheme() || from.port_or_known_default() != to.port_or_known_default()
}

/// What follows the complete response `head` to a `method` request of `url`: `None` when
/// it is the final response, the next hop when it redirects. `earlier` are the exchanges
/// before this one (one per hop taken).
///
/// Errors: a bad `Location`, a scheme the rules refuse, and the hop after the limit's
/// (named a loop when it leads back to a URL already asked for).
pub fn next_hop(
    head: Option<&ResponseHead>,
    url: &Url,
    method: &str,
    earlier: &[ExchangeRecord],
    rules: HopRules,
) -> Result<Option<NextHop>, FetchError> {
    let HopRules {
        keep_alive,
        connection_open,
        allowed,
        limit,
    } = rules;
    let Some(head) = head else {
        return Ok(None);
    };
    if limit == 0 {
        return Ok(None);
    }
    let redirect = http::redirect(head, url, method).map_err(|e| FetchError::http(&e))?;
    let Some(redirect) = redirect else {
        return Ok(None);
    };
    let hop = earlier.len() + 1;
    if hop > limit {
        let visited =
            earlier.iter().any(|e| e.url == redirect.url.as_str()) || *url == redirect.url;
        let (kind, why) = if visited {
            (
                "redirect-loop",
                format!("the server redirects in a loop (back to {})", redirect.url),
            )
        } else {
            (
                "too-many-redirects",
                format!("the last one pointed to {}", redirect.url),
            )
        };
        return Err(FetchError::new(
            FailureClass::Http,
            Phase::Response,
            kind,
            if limit == MAX_REDIRECTS {
                format!("more than {MAX_REDIRECTS} redirects, as requests allows: {why}")
            } else {
                format!("more than {limit} redirects, as --max-redirs allows: {why}")
            },
        ));
    }
    let downgrade = url.scheme() == "https" && redirect.url.scheme() == "http";
    if !allowed.allows(redirect.url.scheme()) {
        return Err(FetchError::new(
            FailureClass::Http,
            Phase::Response,
            "redirect-refused",
            format!(
                "the server redirected ({}) to {}, and --proto-redir {allowed} does not follow {}:// redirects{}",
                redirect.status,
                redirect.url,
                redirect.url.scheme(),
                if downgrade {
                    " (it would have gone on unencrypted)"
                } else {
                    ""
                }
            ),
        ));
    }
    let same = same_origin(url, &redirect.url);
    let reuse = keep_alive && same && connection_open;
    let anew = if redirect.url.scheme() == "https" {
        "DNS, TCP and TLS"
    } else {
        "DNS and TCP"
    };
    let note = if reuse {
        format!(
            "connection reused: {} kept it alive and {} is on the same host",
            redirect.url.host_str().unwrap_or_default(),
            redirect.url
        )
    } else if same {
        format!(
            "the server closes this connection; {} needs a new one",
            redirect.url
        )
    } else if url.host() != redirect.url.host() {
        format!(
            "{} is on another host: close this connection, then {anew} anew",
            redirect.url
        )
    } else if url.scheme() != redirect.url.scheme() {
        format!(
            "{} is the same host over {}://: close this connection, then {anew} anew",
            redirect.url,
            redirect.url.scheme()
        )
    } else {
        format!(
            "{} is the same host on another port: close this connection, then {anew} anew",
            redirect.url
        )
    };
    let note = if downgrade {
        format!(
            "{note}. DOWNGRADE: the redirect leaves https for http, so the rest of the fetch is not encrypted and anyone on the path can read and change it (--proto-redir =https refuses this)"
        )
    } else {
        note
    };
    let event = RedirectEvent {
        hop,
        status: redirect.status,
        from: url.to_string(),
        to: redirect.url.to_string(),
        method: redirect.method.clone(),
        reuse,
        downgrade,
    };
    Ok(Some(NextHop {
        redirect,
        reuse,
        event,
        note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, location: &str) -> ResponseHead {
        ResponseHead::new(
            "GET",
            "HTTP/1.1",
            status,
            "x".into(),
            vec![
                ("Location".into(), location.into()),
                ("Content-Length".into(), "0".into()),
            ],
        )
        .unwrap()
    }

    fn next_of(
        head: Option<&ResponseHead>,
        url: &Url,
        earlier: &[ExchangeRecord],
        keep_alive: bool,
        connection_open: bool,
        allowed: RedirectProtocols,
    ) -> Result<Option<NextHop>, FetchError> {
        next_hop(
            head,
            url,
            "GET",
            earlier,
            HopRules {
                keep_alive,
                connection_open,
                allowed,
                limit: MAX_REDIRECTS,
            },
        )
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn earlier(urls: &[&str]) -> Vec<ExchangeRecord> {
        urls.iter()
            .map(|u| ExchangeRecord {
                url: (*u).to_string(),
                method: "GET".into(),
                request_headers: Vec::new(),
                status: 302,
                reason: String::new(),
                http_version: "HTTP/1.1".into(),
                response_headers: Vec::new(),
                started_us: 0,
                reused_connection: false,
                remote: String::new(),
                body_bytes: 0,
                wire_body_bytes: 0,
                har: Default::default(),
                timings: Default::default(),
            })
            .collect()
    }

    #[test]
    fn a_final_response_has_no_next_hop() {
        let h = head(200, "/elsewhere");
        let got = next_of(
            Some(&h),
            &url("https://a.test/"),
            &[],
            true,
            true,
            RedirectProtocols::default(),
        )
        .unwrap();
        assert!(got.is_none());
        assert!(
            next_of(
                None,
                &url("https://a.test/"),
                &[],
                true,
                true,
                RedirectProtocols::default()
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn same_origin_kept_alive_reuses_the_connection() {
        let h = head(302, "/next");
        let next = next_of(
            Some(&h),
            &url("https://a.test/"),
            &[],
            true,
            true,
            RedirectProtocols::default(),
        )
        .unwrap()
        .unwrap();
        assert!(next.reuse);
        assert_eq!(next.event.hop, 1);
        assert_eq!(next.event.to, "https://a.test/next");
        assert!(next.note.starts_with("connection reused"), "{}", next.note);
        // Closed by the server, or not kept alive: a new connection.
        for (keep_alive, open) in [(false, true), (true, false)] {
            let next = next_of(
                Some(&h),
                &url("https://a.test/"),
                &[],
                keep_alive,
                open,
                RedirectProtocols::default(),
            )
            .unwrap()
            .unwrap();
            assert!(!next.reuse);
            assert!(next.note.contains("needs a new one"), "{}", next.note);
        }
    }

    #[test]
    fn another_origin_needs_a_new_connection() {
        for (to, why) in [
            ("https://b.test/", "is on another host"),
            ("http://a.test/", "is the same host over http://"),
            ("https://a.test:8443/", "is the same host on another port"),
        ] {
            let h = head(301, to);
            let next = next_of(
                Some(&h),
                &url("https://a.test/"),
                &[],
                true,
                true,
                RedirectProtocols::default(),
            )
            .unwrap()
            .unwrap();
            assert!(!next.reuse, "{to}");
            assert!(next.note.contains(why), "{to}: {}", next.note);
        }
        assert!(same_origin(
            &url("https://A.test:443/x"),
            &url("https://a.test/y")
        ));
    }

    #[test]
    fn the_31st_hop_is_an_error_named_a_loop_when_it_comes_back() {
        let thirty: Vec<String> = (0..30).map(|i| format!("https://a.test/{i}")).collect();
        let refs: Vec<&str> = thirty.iter().map(String::as_str).collect();
        let before = earlier(&refs);
        let e = next_of(
            Some(&head(302, "/0")),
            &url("https://a.test/30"),
            &before,
            true,
            true,
            RedirectProtocols::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, "redirect-loop");
        let e = next_of(
            Some(&head(302, "/new")),
            &url("https://a.test/30"),
            &before,
            true,
            true,
            RedirectProtocols::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, "too-many-redirects");
        assert!(
            e.message.contains("more than 30 redirects"),
            "{}",
            e.message
        );
        // The 30th hop itself is allowed.
        let ok = next_of(
            Some(&head(302, "/new")),
            &url("https://a.test/29"),
            &before[..29],
            true,
            true,
            RedirectProtocols::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(ok.event.hop, 30);
    }

    #[test]
    fn a_bad_location_is_an_http_error() {
        let e = next_of(
            Some(&head(302, "ftp://a.test/")),
            &url("https://a.test/"),
            &[],
            true,
            true,
            RedirectProtocols::default(),
        )
        .unwrap_err();
        assert_eq!(e.class, FailureClass::Http);
    }

    #[test]
    fn proto_redir_parses_like_curl_and_bare_names_are_the_set() {
        let p = |s: &str| s.parse::<RedirectProtocols>();
        let only_https = RedirectProtocols {
            http: false,
            https: true,
        };
        assert_eq!(p("=https"), Ok(only_https));
        assert_eq!(p("-all,https"), Ok(only_https));
        assert_eq!(p("-http"), Ok(only_https));
        assert_eq!(p("https"), Ok(only_https));
        assert_eq!(p("http,https"), Ok(RedirectProtocols::default()));
        assert_eq!(p("+http"), Ok(RedirectProtocols::default()));
        assert!(p("ftp").is_err());
        assert!(p("").is_err());
    }

    /// The hop a 302 to `to` from `from` makes on a kept-alive open connection.
    fn hop(from: &Url, to: &str, allowed: RedirectProtocols) -> Result<NextHop, FetchError> {
        next_of(Some(&head(302, to)), from, &[], true, true, allowed)
            .map(|n| n.expect("a redirect"))
    }

    #[test]
    fn a_downgrade_is_named_and_can_be_refused() {
        let from = Url::parse("https://a.test/").expect("url");
        let next = hop(&from, "http://a.test/plain", RedirectProtocols::default()).expect("ok");
        assert!(next.event.downgrade);
        assert!(!next.reuse, "another scheme is another origin");
        assert!(
            next.note.contains("same host over http://"),
            "{}",
            next.note
        );
        assert!(next.note.contains("DNS and TCP anew"), "{}", next.note);
        assert!(next.note.contains("DOWNGRADE"), "{}", next.note);
        let refused =
            hop(&from, "http://a.test/plain", "=https".parse().expect("set")).expect_err("refused");
        assert_eq!(refused.kind, "redirect-refused");
        assert!(
            refused.message.contains("--proto-redir https"),
            "{}",
            refused.message
        );
        // https → https on another host is no downgrade
        let next = hop(&from, "https://b.test/", RedirectProtocols::default()).expect("ok");
        assert!(!next.event.downgrade);
        assert!(next.note.contains("another host") && next.note.contains("DNS, TCP and TLS"));
    }
}
