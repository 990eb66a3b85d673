//! `-w/--write-out FORMAT`: curl's variables, filled in from the fetch's summary, with
//! curl's names and units (seconds, bytes, bytes per second).

use std::fmt::Write as _;

use fetchscope_core::{FetchError, Summary};

/// The variables `-w` knows, in the order `%{json}` lists them.
pub const VARIABLES: &[&str] = &[
    "http_code",
    "response_code",
    "time_namelookup",
    "time_connect",
    "time_appconnect",
    "time_pretransfer",
    "time_starttransfer",
    "time_total",
    "time_redirect",
    "num_redirects",
    "size_download",
    "speed_download",
    "remote_ip",
    "remote_port",
    "local_ip",
    "local_port",
    "url_effective",
    "exitcode",
    "errormsg",
];

/// A parsed `-w` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOut {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(&'static str),
    Json,
}

/// What the variables are filled in from.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// The summary of a completed fetch.
    pub summary: Option<&'a Summary>,
    /// The failure of one that did not complete.
    pub error: Option<&'a FetchError>,
    /// The URL asked for (for `url_effective` when the fetch failed).
    pub url: &'a str,
    /// The exit status fetchscope ends with.
    pub exit_code: i32,
}

impl WriteOut {
    /// Parses FORMAT: `%{name}` variables, `%%`, and the escapes `\n`, `\t`, `\r`, `\\`.
    /// An unknown variable is an error that lists the known ones.
    pub fn parse(format: &str) -> Result<WriteOut, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some('r') => text.push('\r'),
                    Some('\\') => text.push('\\'),
                    Some(other) => {
                        text.push('\\');
                        text.push(other);
                    }
                    None => text.push('\\'),
                },
                '%' if chars.peek() == Some(&'%') => {
                    chars.next();
                    text.push('%');
                }
                '%' if chars.peek() == Some(&'{') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    if name == "json" {
                        parts.push(Part::Json);
                    } else if let Some(v) = VARIABLES.iter().find(|v| **v == name) {
                        parts.push(Part::Var(v));
                    } else {
                        return Err(format!(
                            "-w: %{{{name}}} is not a variable fetchscope knows; it knows %{{json}}, {}",
                            VARIABLES
                                .iter()
                                .map(|v| format!("%{{{v}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
                other => text.push(other),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(WriteOut { parts })
    }

    /// The text for `outcome`.
    pub fn render(&self, outcome: &Outcome<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&value(v, outcome).text()),
                Part::Json => {
                    let map: serde_json::Map<String, serde_json::Value> = VARIABLES
                        .iter()
                        .map(|v| ((*v).to_owned(), value(v, outcome).json()))
                        .collect();
                    let _ = write!(out, "{}", serde_json::Value::Object(map));
                }
            }
        }
        out
    }
}

/// One variable's value.
enum Value {
    Seconds(f64),
    Int(u64),
    Code(u16),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Seconds(s) => format!("{s:.6}"),
            Value::Int(n) => n.to_string(),
            Value::Code(c) => format!("{c:03}"),
            Value::Text(t) => t.clone(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Value::Seconds(s) => serde_json::json!(s),
            Value::Int(n) => serde_json::json!(n),
            Value::Code(c) => serde_json::json!(c),
            Value::Text(t) => serde_json::json!(t),
        }
    }
}

/// The value of variable `name` for `o` (zeros and empty text for what a failed fetch
/// never reached, as curl reports them).
fn value(name: &str, o: &Outcome<'_>) -> Value {
    let s = o.summary;
    let secs = |f: fn(&Summary) -> f64| Value::Seconds(s.map_or(0.0, |s| f(s) / 1000.0));
    let (remote_ip, remote_port) = split_addr(s.map(|s| s.remote.as_str()));
    let (local_ip, local_port) = split_addr(s.map(|s| s.local.as_str()));
    match name {
        "http_code" | "response_code" => Value::Code(s.map_or(0, |s| s.status)),
        "time_namelookup" => secs(|s| s.timings.dns_ms),
        "time_connect" => secs(|s| s.timings.connect_ms),
        "time_appconnect" => secs(|s| s.timings.tls_ms),
        "time_pretransfer" => secs(|s| s.timings.pretransfer_ms),
        "time_starttransfer" => secs(|s| s.timings.ttfb_ms),
        "time_total" => secs(|s| s.timings.total_ms),
        "time_redirect" => secs(|s| s.timings.redirect_ms),
        "num_redirects" => Value::Int(s.map_or(0, |s| s.redirects as u64)),
        "size_download" => Value::Int(s.map_or(0, |s| s.wire_body_bytes)),
        "speed_download" => Value::Int(s.map_or(0, |s| {
            if s.timings.total_ms > 0.0 {
                (s.wire_body_bytes as f64 / (s.timings.total_ms / 1000.0)) as u64
            } else {
                0
            }
        })),
        "remote_ip" => Value::Text(remote_ip),
        "remote_port" => Value::Text(remote_port),
        "local_ip" => Value::Text(local_ip),
        "local_port" => Value::Text(local_port),
        "url_effective" => Value::Text(s.map_or_else(|| o.url.to_owned(), |s| s.url.clone())),
        "exitcode" => Value::Int(u64::try_from(o.exit_code).unwrap_or(0)),
        "errormsg" => Value::Text(o.error.map(|e| e.message.clone()).unwrap_or_default()),
        _ => Value::Text(String::new()),
    }
}

/// `10.0.0.1:443` or `[fd00::1]:443` → (`10.0.0.1`, `443`); empty when unknown.
fn split_addr(addr: Option<&str>) -> (String, String) {
    match addr.and_then(|a| a.parse::<std::net::SocketAddr>().ok()) {
        Some(a) => (a.ip().to_string(), a.port().to_string()),
        None => (String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_variables_escapes_and_percent() {
        let w = WriteOut::parse("%{http_code} 100%% %{time_total}\\n").unwrap();
        let o = Outcome {
            summary: None,
            error: None,
            url: "https://h.test/",
            exit_code: 4,
        };
        assert_eq!(w.render(&o), "000 100% 0.000000\n");
        let e = WriteOut::parse("%{nope}").unwrap_err();
        assert!(e.contains("%{nope}") && e.contains("%{time_total}"), "{e}");
        let w = WriteOut::parse("%{url_effective} %{exitcode}").unwrap();
        assert_eq!(w.render(&o), "https://h.test/ 4");
    }

    #[test]
    fn json_lists_every_variable() {
        let w = WriteOut::parse("%{json}").unwrap();
        let o = Outcome {
            summary: None,
            error: None,
            url: "https://h.test/",
            exit_code: 0,
        };
        let v: serde_json::Value = serde_json::from_str(&w.render(&o)).unwrap();
        for name in VARIABLES {
            assert!(v.get(name).is_some(), "{name} missing");
        }
        assert_eq!(v["http_code"], 0);
    }

    #[test]
    fn addresses_split_into_ip_and_port() {
        assert_eq!(
            split_addr(Some("[fd00::1]:443")),
            ("fd00::1".into(), "443".into())
        );
        assert_eq!(
            split_addr(Some("10.0.0.1:80")),
            ("10.0.0.1".into(), "80".into())
        );
        assert_eq!(split_addr(None), (String::new(), String::new()));
    }
}
