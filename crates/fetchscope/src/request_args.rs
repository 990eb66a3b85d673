//! The request options, with curl's names: `-X`, `-H`, `-d`, `--data-binary`, `--json`,
//! `-I`, `-A`, `-u`, `--max-redirs`, `-L`, `--as`, and credentials in the URL.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use fetchscope_core::http::{
    BodyKind, ClientProfile, Credentials, HeaderEdit, RequestBody, RequestOptions, is_token_char,
};
use fetchscope_core::proxy::ProxySettings;
use url::Url;

/// The most a `-d`/`--json` body read from a file (`@FILE`) may hold in memory; larger
/// files go with `--data-binary @FILE`, which streams.
pub const MAX_INLINE_BODY: u64 = 64 * 1024 * 1024;

/// Request options shared by `fetch`, `step` and `compare`.
#[derive(Debug, Clone, Default, Args)]
pub struct RequestArgs {
    /// The method, e.g. POST, PUT, DELETE (default GET, or POST with a body)
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        help_heading = "Request"
    )]
    pub method: Option<String>,

    /// Send a header: 'Name: value' replaces fetchscope's header of that name, 'Name:'
    /// removes it; repeatable
    #[arg(
        short = 'H',
        long = "header",
        value_name = "'NAME: VALUE'",
        help_heading = "Request"
    )]
    pub headers: Vec<String>,

    /// Send DATA as the body (POST unless -X says otherwise), with Content-Type
    /// application/x-www-form-urlencoded as curl does; @FILE reads FILE without its line
    /// breaks; repeated -d are joined with '&'
    #[arg(
        short = 'd',
        long = "data",
        value_name = "DATA",
        help_heading = "Request"
    )]
    pub data: Vec<String>,

    /// Like -d, but the bytes exactly as given; @FILE streams FILE (any size, bounded memory)
    #[arg(long, value_name = "DATA", conflicts_with_all = ["data", "json_body"], help_heading = "Request")]
    pub data_binary: Option<String>,

    /// Send DATA (or @FILE) as a JSON body: Content-Type application/json (curl adds
    /// Accept: application/json too)
    #[arg(
        long,
        value_name = "DATA",
        conflicts_with = "data",
        help_heading = "Request"
    )]
    pub json_body: Option<String>,

    /// Send HEAD: the response's head only
    #[arg(short = 'I', long = "head", help_heading = "Request")]
    pub head: bool,

    /// The User-Agent to send
    #[arg(
        short = 'A',
        long = "user-agent",
        value_name = "UA",
        help_heading = "Request"
    )]
    pub user_agent: Option<String>,

    /// Basic authentication as USER:PASSWORD (credentials in the URL work too, as in
    /// requests); never printed unless --show-secrets
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER:PASSWORD",
        help_heading = "Request"
    )]
    pub user: Option<String>,

    /// Follow at most N redirects (default 30, as requests); 0 shows the 3xx itself
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = max_redirs, help_heading = "Request")]
    pub max_redirs: Option<usize>,

    /// Accepted for curl's sake: redirects are followed by default, as requests.get does
    #[arg(short = 'L', long = "location", help_heading = "Request")]
    pub location: bool,

    /// Accepted for curl's sake: fetchscope always asks for gzip and deflate and decodes them
    #[arg(long, help_heading = "Request")]
    pub compressed: bool,

    /// Go through this HTTP proxy, http://host:port or http://user:pass@host:port: HTTPS through a CONNECT
    /// tunnel, http:// in absolute form; '' turns proxies off. Over --tun,
    /// HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY are honoured as requests does
    #[arg(short = 'x', long, value_name = "URL", help_heading = "Request")]
    pub proxy: Option<String>,

    /// Hosts to reach without the proxy, comma-separated (example.test, .internal,
    /// 10.0.0.0/8, *), instead of NO_PROXY
    #[arg(long, value_name = "LIST", help_heading = "Request")]
    pub noproxy: Option<String>,

    /// Send exactly the request head this client sends: requests (requests.get) or curl
    #[arg(long = "as", value_name = "CLIENT", help_heading = "Request")]
    pub client: Option<ClientChoice>,
}

/// `--as`: the client whose request head is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientChoice {
    /// Python requests (`requests.get()`).
    Requests,
    /// curl.
    Curl,
}

impl RequestArgs {
    /// The request these options ask for; credentials in `url` move out of it (they are
    /// sent as Basic authentication and never shown). Errors name the option.
    ///
    /// `env_proxies`: whether the environment's proxy variables apply (over a real
    /// network; the built-in lab takes only `--proxy`).
    pub fn options(
        &self,
        url: &mut Url,
        show_secrets: bool,
        env_proxies: bool,
    ) -> Result<RequestOptions, String> {
        let mut method = match &self.method {
            Some(m) => Some(method(m)?),
            None => None,
        };
        if self.head {
            match method.as_deref() {
                None | Some("HEAD") => method = Some("HEAD".to_owned()),
                Some(other) => {
                    return Err(format!(
                        "-I/--head asks for HEAD but -X asks for {other}; give one of them"
                    ));
                }
            }
        }
        let headers = self
            .headers
            .iter()
            .map(|h| header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let body = self.body()?;
        if self.head && body.is_some() {
            return Err(
                "-I/--head sends no body; leave out -d, --data-binary and --json".to_owned(),
            );
        }
        let mut credentials = match &self.user {
            Some(u) => Some(user(u)?),
            None => None,
        };
        if let Some(from_url) = url_credentials(url)? {
            credentials.get_or_insert(from_url);
        }
        if let Some(ua) = &self.user_agent {
            check_value("-A/--user-agent", "the User-Agent", ua)?;
        }
        let proxies =
            ProxySettings::resolve(self.proxy.as_deref(), self.noproxy.as_deref(), |k| {
                if env_proxies {
                    std::env::var(k).ok()
                } else {
                    None
                }
            })?;
        Ok(RequestOptions {
            method,
            proxies,
            profile: match self.client {
                None => ClientProfile::Fetchscope,
                Some(ClientChoice::Requests) => ClientProfile::Requests,
                Some(ClientChoice::Curl) => ClientProfile::Curl,
            },
            user_agent: self.user_agent.clone(),
            headers,
            body,
            credentials,
            max_redirects: self.max_redirs,
            show_secrets,
        })
    }

    /// The body from `-d`, `--data-binary` or `--json`.
    fn body(&self) -> Result<Option<(Arc<RequestBody>, BodyKind)>, String> {
        if let Some(data) = &self.data_binary {
            let body = match data.strip_prefix('@') {
                Some(path) => RequestBody::file(PathBuf::from(path))
                    .map_err(|e| format!("--data-binary @{path}: cannot read {path}: {e}"))?,
                None => RequestBody::Bytes(data.as_bytes().to_vec()),
            };
            return Ok(Some((Arc::new(body), BodyKind::Data)));
        }
        if let Some(data) = &self.json_body {
            let bytes = inline_data("--json", data, false)?;
            return Ok(Some((Arc::new(RequestBody::Bytes(bytes)), BodyKind::Json)));
        }
        if self.data.is_empty() {
            return Ok(None);
        }
        let mut joined = Vec::new();
        for (i, d) in self.data.iter().enumerate() {
            if i > 0 {
                joined.push(b'&');
            }
            joined.extend(inline_data("-d/--data", d, true)?);
        }
        Ok(Some((Arc::new(RequestBody::Bytes(joined)), BodyKind::Data)))
    }
}

/// The bytes of `-d DATA` or `--json DATA`: DATA itself, or the contents of FILE for
/// `@FILE` (`-` is standard input), without CR and LF when `strip_newlines` (as curl's -d).
fn inline_data(option: &str, data: &str, strip_newlines: bool) -> Result<Vec<u8>, String> {
    let Some(path) = data.strip_prefix('@') else {
        return Ok(data.as_bytes().to_vec());
    };
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INLINE_BODY + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INLINE_BODY + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("{option} @{path}: cannot read {path}: {e}"))?;
    if bytes.len() as u64 > MAX_INLINE_BODY {
        return Err(format!(
            "{option} @{path}: the file is larger than {} MiB; send it with --data-binary @{path}, which streams it",
            MAX_INLINE_BODY >> 20
        ));
    }
    if strip_newlines {
        bytes.retain(|b| *b != b'\r' && *b != b'\n');
    }
    Ok(bytes)
}

/// `--max-redirs N`: a count, 0 or more.
fn max_redirs(s: &str) -> Result<usize, String> {
    s.trim().parse().map_err(|_| {
        format!("takes a number of redirects, 0 or more (0 shows the 3xx itself); '{s}' is not one")
    })
}

/// `-X METHOD`, checked: an RFC 9110 token.
fn method(m: &str) -> Result<String, String> {
    if m.is_empty() || !m.chars().all(is_token_char) {
        return Err(format!(
            "-X/--request '{}' is not an HTTP method: use letters like GET, POST, PUT, DELETE, PATCH",
            m.escape_debug()
        ));
    }
    Ok(m.to_owned())
}

/// `-H 'Name: value'` or `-H 'Name:'`, checked.
fn header(h: &str) -> Result<HeaderEdit, String> {
    let Some((name, value)) = h.split_once(':') else {
        return Err(
            "-H/--header takes 'Name: value' (or 'Name:' to remove a header); this one has no ':'"
                .to_owned(),
        );
    };
    let name = name.trim();
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(format!(
            "-H/--header: '{}' is not a header name (letters, digits and -_. only)",
            name.escape_debug()
        ));
    }
    let value = value.trim();
    check_value("-H/--header", &format!("'{name}:'s value"), value)?;
    Ok(if value.is_empty() {
        HeaderEdit::Remove(name.to_owned())
    } else {
        HeaderEdit::Set(name.to_owned(), value.to_owned())
    })
}

/// A header value may hold no CR, LF or NUL (it would split the request head).
/// The message names the option and `what` (never the value: it may be a secret).
fn check_value(option: &str, what: &str, value: &str) -> Result<(), String> {
    if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(format!(
            "{option} {what} holds a line break or NUL, which would split the request head; remove it"
        ));
    }
    Ok(())
}

/// `-u USER:PASSWORD`.
fn user(u: &str) -> Result<Credentials, String> {
    let Some((user, password)) = u.split_once(':') else {
        return Err(
            "-u/--user takes USER:PASSWORD (fetchscope does not prompt for a password)".to_owned(),
        );
    };
    check_value("-u/--user", "the user or password", u)?;
    Ok(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// Credentials in the URL (`https://user:secret@host/`), percent-decoded as requests does,
/// and removed from `url`.
fn url_credentials(url: &mut Url) -> Result<Option<Credentials>, String> {
    Credentials::take_from_url(url)
        .map_err(|_| "the credentials in the URL are not UTF-8 once percent-decoded".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RequestArgs {
        RequestArgs::default()
    }

    #[test]
    fn headers_parse_and_bad_ones_name_the_option() {
        assert_eq!(
            header("X-A: 1").unwrap(),
            HeaderEdit::Set("X-A".into(), "1".into())
        );
        assert_eq!(
            header("Accept:").unwrap(),
            HeaderEdit::Remove("Accept".into())
        );
        for bad in ["nocolon", ": v", "Bad Name: v", "X: a\r\nY: b", "X: a\0"] {
            let e = header(bad).unwrap_err();
            assert!(e.starts_with("-H/--header"), "{e}");
        }
    }

    #[test]
    fn methods_are_tokens() {
        assert_eq!(method("PATCH").unwrap(), "PATCH");
        assert!(method("GE T").unwrap_err().contains("-X/--request"));
        assert!(method("").is_err());
    }

    #[test]
    fn url_credentials_move_out_of_the_url() {
        let mut url = Url::parse("https://me:p%40ss@h.test/x").unwrap();
        let o = args().options(&mut url, false, false).unwrap();
        assert_eq!(url.as_str(), "https://h.test/x");
        let c = o.credentials.unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("me", "p@ss"));
    }

    #[test]
    fn data_makes_a_post_and_joins_with_ampersands() {
        let a = RequestArgs {
            data: vec!["a=1".into(), "b=2".into()],
            ..args()
        };
        let mut url = Url::parse("https://h.test/").unwrap();
        let o = a.options(&mut url, false, false).unwrap();
        assert_eq!(o.method(), "POST");
        let (body, kind) = o.body.unwrap();
        assert_eq!(*body, RequestBody::Bytes(b"a=1&b=2".to_vec()));
        assert_eq!(kind, BodyKind::Data);
    }

    #[test]
    fn missing_files_and_conflicts_are_named() {
        let mut url = Url::parse("https://h.test/").unwrap();
        let a = RequestArgs {
            data: vec!["@/nonexistent/x".into()],
            ..args()
        };
        assert!(
            a.options(&mut url, false, false)
                .unwrap_err()
                .starts_with("-d/--data @/nonexistent/x")
        );
        let a = RequestArgs {
            data_binary: Some("@/nonexistent/x".into()),
            ..args()
        };
        assert!(
            a.options(&mut url, false, false)
                .unwrap_err()
                .starts_with("--data-binary")
        );
        let a = RequestArgs {
            head: true,
            method: Some("POST".into()),
            ..args()
        };
        assert!(
            a.options(&mut url, false, false)
                .unwrap_err()
                .contains("-I/--head")
        );
        let a = RequestArgs {
            user: Some("nopassword".into()),
            ..args()
        };
        assert!(
            a.options(&mut url, false, false)
                .unwrap_err()
                .contains("USER:PASSWORD")
        );
    }
}
