//! Phase timings, defined like curl's `-w` variables (cumulative) and HAR (per phase).
//!
//! Marks are taken on the link's clock at these moments:
//!
//! | mark | moment | curl | HAR |
//! |---|---|---|---|
//! | `namelookup` | DNS answer accepted (0 when DNS was skipped) | `time_namelookup` | `dns` ends |
//! | `connect` | TCP socket reached ESTABLISHED | `time_connect` | `connect` ends |
//! | `appconnect` | TLS handshake complete (client Finished queued) | `time_appconnect` | `ssl` ends |
//! | `pretransfer` | the request is about to be written | `time_pretransfer` | `send` starts |
//! | `request_sent` | the packet carrying the request's last byte left | — | `send` ends |
//! | `starttransfer` | first byte of the response arrived (decrypted) | `time_starttransfer` | `wait` ends |
//! | `body_done` | last byte of the body arrived | — | `receive` ends |
//! | `total` | the fetch finished (after teardown) | `time_total` | — |

use crate::time::Instant;
use serde::Serialize;

/// Moments of one exchange (one request and its response) on the link's clock; `None`
/// until reached. With redirects there is one per hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingMarks {
    /// When the exchange started: the fetch's start for the first, the redirect for later
    /// ones.
    pub start: Instant,
    /// The exchange reused the previous exchange's connection (no DNS, TCP or TLS).
    pub reused: bool,
    /// DNS answer accepted.
    pub namelookup: Option<Instant>,
    /// TCP connection established.
    pub connect: Option<Instant>,
    /// TLS handshake complete.
    pub appconnect: Option<Instant>,
    /// Request about to be sent.
    pub pretransfer: Option<Instant>,
    /// Last byte of the request sent.
    pub request_sent: Option<Instant>,
    /// First response byte received.
    pub starttransfer: Option<Instant>,
    /// Last body byte received.
    pub body_done: Option<Instant>,
    /// Fetch finished.
    pub total: Option<Instant>,
}

impl Default for TimingMarks {
    /// An exchange starting at time zero with nothing reached yet.
    fn default() -> Self {
        TimingMarks {
            start: Instant::ZERO,
            reused: false,
            namelookup: None,
            connect: None,
            appconnect: None,
            pretransfer: None,
            request_sent: None,
            starttransfer: None,
            body_done: None,
            total: None,
        }
    }
}

/// Cumulative milliseconds since the start, like curl's `-w` variables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CurlTimings {
    /// `time_namelookup`.
    pub dns_ms: f64,
    /// `time_connect`.
    pub connect_ms: f64,
    /// `time_appconnect` (0 for plain HTTP, as curl).
    pub tls_ms: f64,
    /// `time_pretransfer`.
    pub pretransfer_ms: f64,
    /// `time_starttransfer` (time to first byte).
    pub ttfb_ms: f64,
    /// `time_total`.
    pub total_ms: f64,
    /// `time_redirect`: all redirect steps before the final exchange started.
    pub redirect_ms: f64,
}

/// One exchange's own times (a leg of a redirect chain), in milliseconds from the leg's
/// start, cumulative like curl's variables: on a reused connection DNS, connect and TLS
/// are 0; `total_ms` is the response's last byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LegTimings {
    /// DNS done.
    pub dns_ms: f64,
    /// TCP handshake done.
    pub connect_ms: f64,
    /// TLS handshake done (0 for `http://`).
    pub tls_ms: f64,
    /// The first byte of the response.
    pub ttfb_ms: f64,
    /// The response's last byte.
    pub total_ms: f64,
}

/// Per-phase milliseconds like HAR 1.2 `timings` (`-1` when a phase does not apply).
/// As in HAR, `connect` includes `ssl`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HarTimings {
    /// Time before DNS started (always 0 here).
    pub blocked: f64,
    /// DNS resolution.
    pub dns: f64,
    /// TCP connect, including TLS.
    pub connect: f64,
    /// TLS handshake.
    pub ssl: f64,
    /// Sending the request.
    pub send: f64,
    /// Waiting for the first byte of the response.
    pub wait: f64,
    /// Receiving the rest of the response.
    pub receive: f64,
}

/// Milliseconds from `start` to `t`.
fn ms(t: Instant, start: Instant) -> f64 {
    t.micros_since(start) as f64 / 1000.0
}

fn since(later: Option<Instant>, earlier: Option<Instant>) -> f64 {
    match (later, earlier) {
        (Some(l), Some(e)) if l >= e => l.micros_since(e) as f64 / 1000.0,
        _ => -1.0,
    }
}

impl TimingMarks {
    /// curl-style cumulative times from `fetch_start`. Marks not reached take the value
    /// of the previous one, as curl reports them (e.g. `time_appconnect` is 0 for plain
    /// HTTP; a reused connection has no DNS or connect step of its own).
    pub fn curl(&self, fetch_start: Instant, tls_used: bool) -> CurlTimings {
        let ms = |t: Instant| ms(t, fetch_start);
        let redirect = ms(self.start);
        let dns = self.namelookup.map(ms).unwrap_or(redirect);
        let connect = self.connect.map(ms).unwrap_or(dns);
        let tls = if tls_used {
            self.appconnect.map(ms).unwrap_or(connect)
        } else {
            0.0
        };
        let pre = self
            .pretransfer
            .map(ms)
            .unwrap_or(if tls_used { tls } else { connect });
        let ttfb = self.starttransfer.map(ms).unwrap_or(pre);
        let total = self.total.map(ms).unwrap_or(ttfb);
        CurlTimings {
            dns_ms: dns,
            connect_ms: connect,
            tls_ms: tls,
            pretransfer_ms: pre,
            ttfb_ms: ttfb,
            total_ms: total,
            redirect_ms: redirect,
        }
    }

    /// This exchange's own times, from its start.
    pub fn leg(&self, tls_used: bool) -> LegTimings {
        let mut c = self.curl(self.start, tls_used);
        if let Some(done) = self.body_done {
            c.total_ms = ms(done, self.start);
        }
        LegTimings {
            dns_ms: c.dns_ms,
            connect_ms: c.connect_ms,
            tls_ms: c.tls_ms,
            ttfb_ms: c.ttfb_ms,
            total_ms: c.total_ms.max(c.ttfb_ms),
        }
    }

    /// HAR-style per-phase durations of this exchange (`-1` where a phase does not
    /// apply, e.g. DNS, connect and ssl on a reused connection).
    pub fn har(&self, tls_used: bool) -> HarTimings {
        let (dns, connect, ssl) = if self.reused {
            (-1.0, -1.0, -1.0)
        } else {
            let dns_end = self.namelookup.or(Some(self.start));
            let connect_end = if tls_used {
                self.appconnect
            } else {
                self.connect
            };
            (
                since(self.namelookup, Some(self.start)).max(0.0),
                since(connect_end, dns_end),
                if tls_used {
                    since(self.appconnect, self.connect)
                } else {
                    -1.0
                },
            )
        };
        HarTimings {
            blocked: 0.0,
            dns,
            connect,
            ssl,
            send: since(self.request_sent, self.pretransfer),
            wait: since(self.starttransfer, self.request_sent.or(self.pretransfer)),
            receive: since(self.body_done, self.starttransfer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks() -> TimingMarks {
        TimingMarks {
            start: Instant::ZERO,
            reused: false,
            namelookup: Some(Instant::from_millis(10)),
            connect: Some(Instant::from_millis(20)),
            appconnect: Some(Instant::from_millis(40)),
            pretransfer: Some(Instant::from_millis(40)),
            request_sent: Some(Instant::from_millis(41)),
            starttransfer: Some(Instant::from_millis(51)),
            body_done: Some(Instant::from_millis(60)),
            total: Some(Instant::from_millis(75)),
        }
    }

    #[test]
    fn curl_times_are_cumulative() {
        let c = marks().curl(Instant::ZERO, true);
        assert_eq!(
            (c.dns_ms, c.connect_ms, c.tls_ms, c.ttfb_ms, c.total_ms),
            (10.0, 20.0, 40.0, 51.0, 75.0)
        );
    }

    #[test]
    fn har_times_are_per_phase_and_connect_includes_ssl() {
        let h = marks().har(true);
        assert_eq!(h.dns, 10.0);
        assert_eq!(h.connect, 30.0);
        assert_eq!(h.ssl, 20.0);
        assert_eq!(h.send, 1.0);
        assert_eq!(h.wait, 10.0);
        assert_eq!(h.receive, 9.0);
    }

    #[test]
    fn plain_http_has_no_tls_time() {
        let mut m = marks();
        m.appconnect = None;
        assert_eq!(m.curl(Instant::ZERO, false).tls_ms, 0.0);
        assert_eq!(m.har(false).ssl, -1.0);
        assert_eq!(m.har(false).connect, 10.0);
    }

    #[test]
    fn a_reused_connection_has_no_dns_connect_or_ssl() {
        let m = TimingMarks {
            start: Instant::from_millis(60),
            reused: true,
            pretransfer: Some(Instant::from_millis(60)),
            request_sent: Some(Instant::from_millis(61)),
            starttransfer: Some(Instant::from_millis(71)),
            body_done: Some(Instant::from_millis(72)),
            total: Some(Instant::from_millis(80)),
            ..TimingMarks::default()
        };
        let h = m.har(true);
        assert_eq!((h.dns, h.connect, h.ssl), (-1.0, -1.0, -1.0));
        assert_eq!((h.send, h.wait, h.receive), (1.0, 10.0, 1.0));
        let c = m.curl(Instant::ZERO, true);
        assert_eq!(c.redirect_ms, 60.0);
        assert_eq!(c.dns_ms, 60.0);
        assert_eq!(c.total_ms, 80.0);
    }
}
