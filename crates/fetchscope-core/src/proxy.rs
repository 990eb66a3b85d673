//! Proxies as requests finds them: `--proxy`/`--noproxy`, else `https_proxy`,
//! `http_proxy`, `all_proxy` and `no_proxy` from the environment (lower case first, then
//! upper case). HTTPS goes through a `CONNECT` tunnel; `http://` in absolute form.

use std::net::IpAddr;

use url::Url;

use crate::http::Credentials;

/// One proxy: where it listens and the credentials in its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy's URL as shown (`http://host:port`, credentials removed).
    pub url: Url,
    /// Its host, lower case (an IP literal without brackets).
    pub host: String,
    /// Its port (the URL's, else 80).
    pub port: u16,
    /// `user:pass@` from the proxy URL, sent as `Proxy-Authorization: Basic`.
    pub credentials: Option<Credentials>,
    /// Where the setting came from (`--proxy`, `HTTPS_PROXY`, ...), for the trace.
    pub source: String,
}

/// The proxies of a fetch and the hosts that bypass them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// For `https://` URLs.
    pub https: Option<Proxy>,
    /// For `http://` URLs.
    pub http: Option<Proxy>,
    /// `no_proxy`: hosts reached directly.
    pub no_proxy: Vec<String>,
    /// Where `no_proxy` came from.
    pub no_proxy_source: Option<String>,
}

impl ProxySettings {
    /// The proxy for `url`, or `None` to go directly (no proxy, or `no_proxy` matches).
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = match url.host()? {
            url::Host::Domain(d) => d.to_ascii_lowercase(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        };
        let port = url.port_or_known_default();
        (!bypasses(&self.no_proxy, &host, port)).then_some(proxy)
    }

    /// The settings from `--proxy` and `--noproxy` (which win) and the environment
    /// (`env` looks a variable up). Errors name the option or variable.
    pub fn resolve(
        flag_proxy: Option<&str>,
        flag_noproxy: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxySettings, String> {
        let var = |name: &str| -> Option<(String, String)> {
            let lower = name.to_ascii_lowercase();
            env(&lower)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (lower.clone(), v))
                .or_else(|| {
                    env(&name.to_ascii_uppercase())
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| (name.to_ascii_uppercase(), v))
                })
        };
        let (https, http) = match flag_proxy {
            Some(p) if p.trim().is_empty() => (None, None),
            Some(p) => {
                let proxy = parse_proxy(p, "--proxy")?;
                (Some(proxy.clone()), Some(proxy))
            }
            None => {
                let all = var("all_proxy");
                let pick = |name: &str| -> Result<Option<Proxy>, String> {
                    match var(name).or_else(|| all.clone()) {
                        Some((source, value)) => parse_proxy(&value, &source).map(Some),
                        None => Ok(None),
                    }
                };
                (pick("https_proxy")?, pick("http_proxy")?)
            }
        };
        let (no_proxy, no_proxy_source) = match flag_noproxy {
            Some(list) => (split_list(list), Some("--noproxy".to_owned())),
            None => match var("no_proxy") {
                Some((source, list)) => (split_list(&list), Some(source)),
                None => (Vec::new(), None),
            },
        };
        Ok(ProxySettings {
            https,
            http,
            no_proxy,
            no_proxy_source,
        })
    }
}

/// `a, .b.test ,c` → `["a", ".b.test", "c"]`.
fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Parses a proxy URL (`http://[user:pass@]host[:port]`; no scheme means `http://`, as
/// requests reads it). `source` names the option or variable in errors.
pub fn parse_proxy(value: &str, source: &str) -> Result<Proxy, String> {
    let value = value.trim();
    let text = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    // Messages show the value without a password in it.
    let shown = crate::http::text_without_password(value);
    let value = shown.as_str();
    let mut url = Url::parse(&text).map_err(|e| {
        format!("{source} '{value}' is not a proxy URL ({e}); write it as http://host:port")
    })?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{source} '{value}': fetchscope talks to proxies over plain http:// only (TLS to the proxy is not supported); use http://"
            ));
        }
        other => {
            return Err(format!(
                "{source} '{value}': {other}:// proxies are not supported; fetchscope uses http:// proxies (CONNECT for https)"
            ));
        }
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        _ => return Err(format!("{source} '{value}' has no host")),
    };
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!(
            "{source} '{value}': a proxy URL has no path; write it as http://host:port"
        ));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let credentials = Credentials::take_from_url(&mut url)
        .map_err(|_| format!("{source}: the credentials are not UTF-8 once percent-decoded"))?;
    Ok(Proxy {
        url,
        host,
        port,
        credentials,
        source: source.to_owned(),
    })
}

/// Whether `no_proxy` sends `host` (on `port`) around the proxy: `*`; the host itself or
/// a domain it is in (`example.test` and `.example.test` both match `www.example.test`);
/// an IP address or a CIDR block holding it; an entry may carry `:port`.
pub fn bypasses(no_proxy: &[String], host: &str, port: Option<u16>) -> bool {
    let ip: Option<IpAddr> = host.parse().ok();
    no_proxy.iter().any(|entry| {
        if entry == "*" {
            return true;
        }
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((n, p)) if !n.contains(':') || n.ends_with(']') => {
                (n.trim_matches(['[', ']']), p.parse::<u16>().ok())
            }
            _ => (entry.trim_matches(['[', ']']), None),
        };
        if entry_port.is_some() && entry_port != port {
            return false;
        }
        if let Some(ip) = ip {
            if let Some((net, bits)) = name.split_once('/') {
                return in_cidr(ip, net, bits);
            }
            return name.parse::<IpAddr>().ok() == Some(ip);
        }
        let name = name.trim_start_matches('.');
        host == name || host.ends_with(&format!(".{name}"))
    })
}

/// Whether `ip` is in `net/bits`.
fn in_cidr(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_environment_is_read_like_requests() {
        let s = ProxySettings::resolve(
            None,
            None,
            env(&[
                ("HTTPS_PROXY", "http://upper:3128"),
                ("https_proxy", "lower:3128"),
                ("ALL_PROXY", "http://all:1"),
                ("NO_PROXY", "internal.test, 10.0.0.0/8"),
            ]),
        )
        .unwrap();
        let https = s.for_url(&url("https://www.example.test/")).unwrap();
        assert_eq!((https.host.as_str(), https.port), ("lower", 3128));
        assert_eq!(https.source, "https_proxy");
        let http = s.for_url(&url("http://www.example.test/")).unwrap();
        assert_eq!(
            http.host, "all",
            "ALL_PROXY covers what has no variable of its own"
        );
        assert!(s.for_url(&url("https://a.internal.test/")).is_none());
        assert!(s.for_url(&url("https://internal.test/")).is_none());
        assert!(s.for_url(&url("https://10.1.2.3/")).is_none());
        assert!(s.for_url(&url("https://notinternal.test/")).is_some());
    }

    #[test]
    fn flags_win_and_credentials_move_out_of_the_url() {
        let s = ProxySettings::resolve(
            Some("http://u:p%40ss@proxy.test:3129"),
            Some("*"),
            env(&[("HTTPS_PROXY", "http://other:1")]),
        )
        .unwrap();
        let p = s.https.as_ref().unwrap();
        assert_eq!(p.url.as_str(), "http://proxy.test:3129/");
        assert_eq!(p.credentials.as_ref().unwrap().password, "p@ss");
        assert!(
            s.for_url(&url("https://www.example.test/")).is_none(),
            "--noproxy *"
        );
        let none = ProxySettings::resolve(Some(""), None, env(&[("HTTPS_PROXY", "x:1")])).unwrap();
        assert!(none.https.is_none(), "--proxy '' turns proxies off");
    }

    #[test]
    fn bad_proxy_urls_name_their_source() {
        for (bad, words) in [
            ("socks5://h:1", "socks5:// proxies are not supported"),
            ("https://h:1", "plain http://"),
            ("http://h:1/path", "no path"),
            ("http://:1", "HTTPS_PROXY"),
        ] {
            let e = ProxySettings::resolve(None, None, env(&[("HTTPS_PROXY", bad)])).unwrap_err();
            assert!(e.contains(words), "{bad}: {e}");
            assert!(e.starts_with("HTTPS_PROXY"), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_never_show_the_proxy_password() {
        let e = ProxySettings::resolve(
            None,
            None,
            env(&[("HTTPS_PROXY", "https://me:pw@corp:8443")]),
        )
        .unwrap_err();
        assert!(
            !e.contains("pw@") && e.contains("me:<redacted>@corp:8443"),
            "{e}"
        );
    }

    #[test]
    fn no_proxy_ports_and_ipv6() {
        let list = vec![
            "h.test:8443".to_owned(),
            "[fd00::1]".to_owned(),
            "fd00:88::/32".to_owned(),
        ];
        assert!(bypasses(&list, "h.test", Some(8443)));
        assert!(!bypasses(&list, "h.test", Some(443)));
        assert!(bypasses(&list, "fd00::1", Some(443)));
        assert!(bypasses(&list, "fd00:88::5", Some(443)));
        assert!(!bypasses(&list, "fd01::5", Some(443)));
    }
}
