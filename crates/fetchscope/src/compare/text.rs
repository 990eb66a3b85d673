//! The comparison as text: two columns, the first run (fetchscope's stack) on the left,
//! the second (the kernel, a real client, a capture) on the right, each titled by its
//! report's name, then the differences.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use fetchscope_core::Phase;

use super::analysis::{
    Flight, HelloInfo, RequestInfo, ServerHelloInfo, StackReport, SynInfo, Teardown, flag_list,
    without_grease,
};
use super::differences::{Difference, names};

/// One value read from HAR timings.
type HarField = fn(&fetchscope_core::timing::HarTimings) -> f64;
/// One value of a SYN, as text.
type SynField = fn(&SynInfo) -> String;

/// Width of a label column.
const LABEL: usize = 30;
/// Width of a value column.
const COL: usize = 40;
/// The two column titles, left and right.
type Cols<'a> = (&'a str, &'a str);
/// Width of a packet column in the side-by-side ladder.
const LADDER_COL: usize = 58;

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `s` cut to `width` characters (with "…"), not padded.
fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A run's column title: its name without a leading "the " ("kernel").
fn column(name: &str) -> &str {
    name.strip_prefix("the ").unwrap_or(name)
}

/// How the path line names a run: "the kernel's stack" for the kernel, else its name.
fn path_label(r: &StackReport, name: &str) -> String {
    if r.stack == "kernel" {
        format!("{name}'s stack")
    } else {
        name.to_string()
    }
}

/// The `TCP_INFO` a run's report holds, and whether its column shows `TCP_INFO` (the
/// kernel's always does, "-" where it is missing) rather than the trace.
fn tcp_info(r: &StackReport) -> (Option<&fetchscope_os::TcpInfo>, bool) {
    let info = r
        .tcp_info_at_end
        .as_ref()
        .or(r.tcp_info_after_connect.as_ref());
    (info, r.stack == "kernel" || info.is_some())
}

fn opt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 0.0 => format!("{v:.3}"),
        _ => "-".to_string(),
    }
}

/// Writes the comparison of `u` (left, e.g. fetchscope's stack) and `k` (right, e.g. the
/// kernel or a real client).
pub struct CompareText<W: Write> {
    out: W,
    heading: Style,
    dim: Style,
}

fn paint(style: Style, text: &str) -> String {
    if style == Style::new() {
        text.to_string()
    } else {
        format!("{style}{text}{style:#}")
    }
}

impl<W: Write> CompareText<W> {
    /// A writer to `out`, coloured if `color`.
    pub fn new(out: W, color: bool) -> Self {
        let (heading, dim) = if color {
            (
                Style::new().bold(),
                Style::new().fg_color(Some(AnsiColor::BrightBlack.into())),
            )
        } else {
            (Style::new(), Style::new())
        };
        CompareText { out, heading, dim }
    }

    fn title(&mut self, t: &str, left: &str, right: &str) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{}",
            paint(
                self.heading,
                &format!("{}{}{}", cut(t, LABEL + 2), cut(left, COL), right)
            )
        )
    }

    /// A row of values that always differ a little (times): no ≠ mark, the
    /// differences list names the notable ones.
    fn val(&mut self, label: &str, left: &str, right: &str) -> io::Result<()> {
        self.row_marked(label, left, right, false)
    }

    /// A row, marked ≠ when the two values differ.
    fn row(&mut self, label: &str, left: &str, right: &str) -> io::Result<()> {
        self.row_marked(label, left, right, left != right)
    }

    fn row_marked(&mut self, label: &str, left: &str, right: &str, differ: bool) -> io::Result<()> {
        let mark = if differ { "≠" } else { " " };
        writeln!(
            self.out,
            "  {}{}{mark} {}",
            cut(label, LABEL),
            cut(left, COL - 2),
            right
        )
    }

    /// The whole comparison.
    pub fn render(
        &mut self,
        url: &str,
        u: &StackReport,
        k: &StackReport,
        diffs: &[Difference],
    ) -> io::Result<()> {
        writeln!(
            self.out,
            "{} GET {url}",
            paint(
                self.heading,
                &format!("fetchscope {} compare", env!("CARGO_PKG_VERSION"))
            )
        )?;
        let (un, kn) = names(u, k);
        let (pu, pk) = (path_label(u, &un), path_label(k, &kn));
        let w = pu.chars().count().max(pk.chars().count()) + 1;
        writeln!(self.out, "  {:<w$} {}", format!("{pu}:"), u.path)?;
        writeln!(self.out, "  {:<w$} {}", format!("{pk}:"), k.path)?;
        for (name, r) in [(un.as_str(), u), (kn.as_str(), k)] {
            if r.connections > 1
                && let Some(which) = &r.analyzed_connection
            {
                writeln!(
                    self.out,
                    "  {name} made {} TCP connections; the TCP details are those of {which}, which carried the most data",
                    r.connections
                )?;
            }
        }
        for (name, r) in [(un.as_str(), u), (kn.as_str(), k)] {
            if let Some(e) = &r.error {
                let who = match r.stack {
                    "userspace" | "kernel" => r.stack,
                    _ => name,
                };
                writeln!(self.out, "  {who} run FAILED in the {e}")?;
            }
        }
        let cols = (column(&un), column(&kn));
        self.timings(u, k, cols)?;
        self.packets(u, k)?;
        self.handshake(u, k, cols)?;
        self.client_hello(u, k, cols)?;
        self.request_head(u.request.as_ref(), k.request.as_ref(), cols)?;
        self.acks(u, k, cols)?;
        self.flight(u.server_flight.as_ref(), k.server_flight.as_ref(), cols)?;
        self.teardown(&u.teardown, &k.teardown, cols)?;
        self.tcp_view(u, k, cols)?;
        self.ladder(u, k, cols)?;
        writeln!(self.out)?;
        writeln!(self.out, "{}", paint(self.heading, "Differences"))?;
        if diffs.is_empty() {
            writeln!(self.out, "  none: both runs looked the same on the wire")?;
        }
        for d in diffs {
            writeln!(self.out, "  • {}", d.text)?;
        }
        self.out.flush()
    }

    fn timings(&mut self, u: &StackReport, k: &StackReport, (cu, ck): Cols) -> io::Result<()> {
        self.title("Phase timings (ms)", cu, ck)?;
        let har = |r: &StackReport| r.har;
        let rows: [(&str, HarField); 6] = [
            ("DNS lookup", |h| h.dns),
            ("TCP handshake", |h| {
                if h.connect < 0.0 {
                    -1.0
                } else {
                    h.connect - h.ssl.max(0.0)
                }
            }),
            ("TLS handshake", |h| h.ssl),
            ("sending the request", |h| h.send),
            ("waiting (TTFB)", |h| h.wait),
            ("receiving the body", |h| h.receive),
        ];
        for (label, f) in rows {
            let l = opt_ms(har(u).as_ref().map(f));
            let r = opt_ms(har(k).as_ref().map(f));
            self.val(label, &l, &r)?;
        }
        let total = |r: &StackReport| opt_ms(r.timings.map(|t| t.total_ms));
        self.val("total (incl. teardown)", &total(u), &total(k))
    }

    fn packets(&mut self, u: &StackReport, k: &StackReport) -> io::Result<()> {
        self.title(
            "Packets per phase",
            "sent / received (payload B)",
            "sent / received (payload B)",
        )?;
        let mut phases: Vec<Phase> = u.phases.keys().chain(k.phases.keys()).copied().collect();
        phases.sort();
        phases.dedup();
        for p in phases {
            let f = |r: &StackReport| {
                let c = r.phases.get(&p).copied().unwrap_or_default();
                format!("{} / {} ({} / {})", c.tx, c.rx, c.tx_payload, c.rx_payload)
            };
            self.row(p.title(), &f(u), &f(k))?;
        }
        let all = |r: &StackReport| format!("{} / {}", r.packets_tx, r.packets_rx);
        self.row("all", &all(u), &all(k))
    }

    fn handshake(&mut self, u: &StackReport, k: &StackReport, (cu, ck): Cols) -> io::Result<()> {
        self.title("TCP handshake", cu, ck)?;
        let syn =
            |s: &Option<SynInfo>, f: fn(&SynInfo) -> String| s.as_ref().map_or("-".to_string(), f);
        let rows: [(&str, SynField); 7] = [
            ("SYN: MSS", |s| {
                s.mss.map_or("none".into(), |m| m.to_string())
            }),
            ("SYN: window scale", |s| {
                s.ws.map_or("none".into(), |w| format!("{w} (×{})", 1u32 << w.min(14)))
            }),
            ("SYN: SACK permitted", |s| yes(s.sack_permitted)),
            ("SYN: timestamps", |s| {
                s.ts_val.map_or("no".into(), |v| format!("yes (TSval {v})"))
            }),
            ("SYN: window", |s| s.win.to_string()),
            ("SYN: length (IP bytes)", |s| s.len.to_string()),
            ("SYN: TTL", |s| s.ttl.map_or("-".into(), |t| t.to_string())),
        ];
        for (label, f) in rows {
            self.row(label, &syn(&u.syn, f), &syn(&k.syn, f))?;
        }
        self.row(
            "server's SYN-ACK",
            &syn(&u.syn_ack, |s| format!("{}, win {}", s.options(), s.win)),
            &syn(&k.syn_ack, |s| format!("{}, win {}", s.options(), s.win)),
        )?;
        let w = |v: Option<u32>| v.map_or("-".into(), |w| format!("{w} B"));
        self.row(
            "our window after handshake",
            &w(u.tcp.rcv_window),
            &w(k.tcp.rcv_window),
        )?;
        self.row(
            "server's window",
            &w(u.tcp.snd_window),
            &w(k.tcp.snd_window),
        )?;
        self.row("client IP IDs", &u.ip.id_pattern(), &k.ip.id_pattern())
    }

    /// A row of two values that may be long: marked ≠ when they differ, both cut to
    /// the column width.
    fn pair(&mut self, label: &str, left: &str, right: &str) -> io::Result<()> {
        self.row_marked(label, left, &clip(right, COL), left != right)
    }

    fn client_hello(&mut self, u: &StackReport, k: &StackReport, (cu, ck): Cols) -> io::Result<()> {
        if u.client_hello.is_none() && k.client_hello.is_none() {
            return Ok(());
        }
        self.title("TLS ClientHello", cu, ck)?;
        type HelloField = fn(&HelloInfo) -> String;
        let rows: [(&str, HelloField); 10] = [
            ("record version", |h| h.record_version.clone()),
            ("versions offered", |h| {
                let v = without_grease(&h.versions);
                if v.is_empty() {
                    "no supported_versions".into()
                } else {
                    v.join(", ")
                }
            }),
            ("cipher suites", |h| counted(&h.cipher_suites)),
            ("extensions", |h| counted(&h.extensions)),
            ("groups", |h| or_none(&without_grease(&h.groups))),
            ("key shares", |h| or_none(&without_grease(&h.key_shares))),
            ("ALPN", |h| {
                or_none(&h.alpn.iter().map(String::as_str).collect::<Vec<_>>())
            }),
            ("SNI", |h| h.sni.clone().unwrap_or_else(|| "none".into())),
            ("signature algorithms", |h| counted(&h.signature_algorithms)),
            ("JA4", |h| h.ja4.clone().unwrap_or_else(|| "-".into())),
        ];
        let hello = |r: &StackReport, f: HelloField| r.client_hello.as_ref().map_or("-".into(), f);
        for (label, f) in rows {
            self.pair(label, &hello(u, f), &hello(k, f))?;
        }
        type ServerField = fn(&ServerHelloInfo) -> Option<String>;
        let rows: [(&str, ServerField); 5] = [
            ("server chose version", |s| s.version_selected.clone()),
            ("server chose suite", |s| s.suite.clone()),
            ("server chose group", |s| s.group.clone()),
            ("server chose ALPN", |s| s.alpn.clone()),
            ("JA4S", |s| s.ja4s.clone()),
        ];
        let server = |r: &StackReport, f: ServerField| {
            r.server_hello
                .as_ref()
                .and_then(f)
                .unwrap_or_else(|| "-".into())
        };
        for (label, f) in rows {
            self.pair(label, &server(u, f), &server(k, f))?;
        }
        Ok(())
    }

    fn request_head(
        &mut self,
        u: Option<&RequestInfo>,
        k: Option<&RequestInfo>,
        (cu, ck): Cols,
    ) -> io::Result<()> {
        if u.is_none() && k.is_none() {
            return Ok(());
        }
        self.title("HTTP request head", cu, ck)?;
        let line = |r: Option<&RequestInfo>| {
            r.map_or("-".into(), |r| format!("{} {}", r.method, r.target))
        };
        self.pair("request", &line(u), &line(k))?;
        let header = |r: Option<&RequestInfo>, name: &str| {
            r.map_or("-".into(), |r| r.header(name).unwrap_or("none").to_string())
        };
        self.pair(
            "User-Agent",
            &header(u, "user-agent"),
            &header(k, "user-agent"),
        )?;
        let names = |r: Option<&RequestInfo>| {
            r.map_or("-".into(), |r| {
                format!(
                    "{}: {}",
                    r.headers.len(),
                    r.headers
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        };
        self.pair("headers", &names(u), &names(k))?;
        for name in ["Accept", "Accept-Encoding", "Connection"] {
            self.pair(name, &header(u, name), &header(k, name))?;
        }
        Ok(())
    }

    fn acks(&mut self, u: &StackReport, k: &StackReport, (cu, ck): Cols) -> io::Result<()> {
        self.title("ACKs of the server's data", cu, ck)?;
        self.row("pattern", &u.acks.brief(), &k.acks.brief())?;
        let hist = |r: &StackReport| {
            r.acks
                .segments_per_ack
                .iter()
                .map(|(n, c)| format!("{c}×{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        self.row("ACKs × segments acked", &hist(u), &hist(k))?;
        let delay = |r: &StackReport| {
            format!(
                "median {} max {} ms",
                r.acks
                    .median_delay_us
                    .map_or("-".into(), |d| format!("{:.3}", d as f64 / 1000.0)),
                r.acks
                    .max_delay_us
                    .map_or("-".into(), |d| format!("{:.3}", d as f64 / 1000.0))
            )
        };
        self.val("ACK delay", &delay(u), &delay(k))?;
        let delayed = |r: &StackReport| {
            format!(
                "{} delayed ≥ {} ms, {} pure",
                r.acks.delayed,
                super::analysis::DELAYED_ACK_US / 1000,
                r.acks.pure_acks
            )
        };
        self.row("delayed / pure ACKs", &delayed(u), &delayed(k))?;
        let rt = |r: &StackReport| {
            format!(
                "client {}, server {}",
                r.retransmissions.client, r.retransmissions.server
            )
        };
        self.row("retransmissions", &rt(u), &rt(k))
    }

    fn flight(&mut self, u: Option<&Flight>, k: Option<&Flight>, (cu, ck): Cols) -> io::Result<()> {
        self.title("Server's first flight", cu, ck)?;
        let seg = |f: Option<&Flight>| {
            f.map_or("-".into(), |f| {
                format!(
                    "{} segments, {} B in {:.3} ms",
                    f.segments.len(),
                    f.bytes,
                    f.span_us as f64 / 1000.0
                )
            })
        };
        let differ =
            u.map(|f| (f.segments.len(), f.bytes)) != k.map(|f| (f.segments.len(), f.bytes));
        self.row_marked("segments", &seg(u), &seg(k), differ)?;
        let sizes = |f: Option<&Flight>| {
            f.map_or("-".into(), |f| {
                f.segments
                    .iter()
                    .map(|s| s.payload.to_string())
                    .collect::<Vec<_>>()
                    .join("+")
            })
        };
        self.row("segment sizes", &sizes(u), &sizes(k))?;
        let acks = |f: Option<&Flight>| f.map_or("-".into(), |f| f.acks_sent.to_string());
        self.row("ACKs sent meanwhile", &acks(u), &acks(k))?;
        let n = u
            .map_or(0, |f| f.segments.len())
            .max(k.map_or(0, |f| f.segments.len()));
        for i in 0..n.min(8) {
            let rec = |f: Option<&Flight>| {
                f.and_then(|f| f.segments.get(i))
                    .map_or(String::new(), |s| {
                        if s.records.is_empty() {
                            format!("{} B", s.payload)
                        } else {
                            format!("{} B: {}", s.payload, s.records.join(", "))
                        }
                    })
            };
            self.row(&format!("  segment {}", i + 1), &rec(u), &rec(k))?;
        }
        Ok(())
    }

    fn teardown(&mut self, u: &Teardown, k: &Teardown, (cu, ck): Cols) -> io::Result<()> {
        self.title("Teardown", cu, ck)?;
        let first = |t: &Teardown| {
            t.first_fin
                .as_ref()
                .map_or("no FIN".into(), |f| f.by.to_string())
        };
        self.row("first FIN from", &first(u), &first(k))?;
        let client = |t: &Teardown| {
            [&t.first_fin, &t.second_fin]
                .into_iter()
                .flatten()
                .find(|f| f.by == "client")
                .map_or("-".into(), |f| {
                    if f.payload > 0 {
                        format!("[{}] with {} B", flag_list(f.flags, ","), f.payload)
                    } else {
                        format!("[{}] alone", flag_list(f.flags, ","))
                    }
                })
        };
        self.row("client's FIN", &client(u), &client(k))?;
        let crossed = |t: &Teardown| yes(t.crossed);
        self.row("FINs crossed", &crossed(u), &crossed(k))?;
        self.row("TIME-WAIT kept by", u.time_wait, k.time_wait)?;
        let state = |t: &Teardown| t.final_state.clone().unwrap_or_else(|| "-".into());
        self.row("client socket ended in", &state(u), &state(k))?;
        let rst = |t: &Teardown| {
            if t.resets.is_empty() {
                "none".to_string()
            } else {
                t.resets
                    .iter()
                    .map(|(by, n)| format!("{by} #{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        self.row("resets", &rst(u), &rst(k))
    }

    fn tcp_view(&mut self, u: &StackReport, k: &StackReport, (cu, ck): Cols) -> io::Result<()> {
        let (iu, uses_u) = tcp_info(u);
        let (ik, uses_k) = tcp_info(k);
        let source = |uses: bool| if uses { "TCP_INFO at end" } else { "its trace" };
        self.title(
            "TCP internals",
            &format!("{cu} ({})", source(uses_u)),
            &format!("{ck} ({})", source(uses_k)),
        )?;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |r| format!("{r:.3} ms"));
        // Each row's value for one run: from TCP_INFO when its column shows it, else
        // from the trace.
        let side = |r: &StackReport,
                    info: Option<&fetchscope_os::TcpInfo>,
                    uses: bool,
                    f: &dyn Fn(&fetchscope_os::TcpInfo) -> String,
                    trace: &dyn Fn(&StackReport) -> String| {
            if uses {
                info.map_or("-".into(), f)
            } else {
                trace(r)
            }
        };
        let not_exposed = |r: &StackReport| {
            if r.stack == "userspace" {
                "not exposed by smoltcp".to_string()
            } else {
                "not in the packets".to_string()
            }
        };
        type Info = fetchscope_os::TcpInfo;
        let rtt = |i: &Info| {
            format!(
                "{:.3} ms ± {:.3} (smoothed)",
                f64::from(i.rtt_us) / 1000.0,
                f64::from(i.rttvar_us) / 1000.0
            )
        };
        let rtt_trace = |r: &StackReport| format!("{} (SYN → SYN-ACK)", ms(r.tcp.handshake_rtt_ms));
        self.val(
            "rtt",
            &side(u, iu, uses_u, &rtt, &rtt_trace),
            &side(k, ik, uses_k, &rtt, &rtt_trace),
        )?;
        self.val(
            "handshake rtt (trace)",
            &ms(u.tcp.handshake_rtt_ms),
            &ms(k.tcp.handshake_rtt_ms),
        )?;
        let rto = |i: &Info| format!("{} ms", i.rto_us / 1000);
        self.val(
            "rto",
            &side(u, iu, uses_u, &rto, &not_exposed),
            &side(k, ik, uses_k, &rto, &not_exposed),
        )?;
        let cwnd = |i: &Info| {
            format!(
                "{} segments (ssthresh {})",
                i.snd_cwnd,
                ssthresh(i.snd_ssthresh)
            )
        };
        self.val(
            "cwnd",
            &side(u, iu, uses_u, &cwnd, &not_exposed),
            &side(k, ik, uses_k, &cwnd, &not_exposed),
        )?;
        let mss = |r: &StackReport, info: Option<&Info>, uses: bool| {
            side(
                r,
                info,
                uses,
                &|i| format!("{} / {}", i.snd_mss, i.rcv_mss),
                &|r| {
                    format!(
                        "{} / {}",
                        r.tcp.snd_mss.map_or("-".into(), |m| m.to_string()),
                        r.tcp.max_rx_payload
                    )
                },
            )
        };
        self.row("snd / rcv mss", &mss(u, iu, uses_u), &mss(k, ik, uses_k))?;
        let opts = |r: &StackReport, info: Option<&Info>| {
            info.map_or(r.tcp.options.join(","), |i| i.options.join(","))
        };
        self.row("options agreed", &opts(u, iu), &opts(k, ik))?;
        let ws = |a: Option<u8>, b: Option<u8>| match (a, b) {
            (Some(a), Some(b)) => format!("{a},{b} (snd,rcv)"),
            _ => "-".into(),
        };
        let scales = |r: &StackReport, info: Option<&Info>, uses: bool| {
            side(r, info, uses, &|i| ws(i.snd_wscale, i.rcv_wscale), &|r| {
                ws(r.tcp.snd_wscale, r.tcp.rcv_wscale)
            })
        };
        self.row(
            "window scales",
            &scales(u, iu, uses_u),
            &scales(k, ik, uses_k),
        )?;
        let retrans = |r: &StackReport, info: Option<&Info>, uses: bool| {
            side(r, info, uses, &|i| i.total_retrans.to_string(), &|r| {
                r.tcp.retransmits.to_string()
            })
        };
        self.row(
            "retransmitted segments",
            &retrans(u, iu, uses_u),
            &retrans(k, ik, uses_k),
        )?;
        let segs =
            |r: &StackReport, info: Option<&Info>| match info.map(|i| (i.segs_out, i.segs_in)) {
                Some((Some(o), Some(n))) => (true, format!("{o} / {n} (segs_out/segs_in)")),
                _ => (
                    false,
                    format!("{} / {} (trace)", r.tcp.segments_out, r.tcp.segments_in),
                ),
            };
        let ((su, tu), (sk, tk)) = (segs(u, iu), segs(k, ik));
        if su || sk {
            self.val("TCP segments out / in", &tu, &tk)?;
        }
        Ok(())
    }

    fn ladder(&mut self, u: &StackReport, k: &StackReport, (cu, ck): Cols) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{}",
            paint(
                self.heading,
                &format!("{}  │ {}", cut(&format!("Packets: {cu}"), LADDER_COL), ck)
            )
        )?;
        let mut phases: Vec<Phase> = u.ladder.keys().chain(k.ladder.keys()).copied().collect();
        phases.sort();
        phases.dedup();
        let empty = (Vec::new(), 0);
        for p in phases {
            writeln!(self.out, "  {}", paint(self.dim, p.title()))?;
            let (la, ma) = u.ladder.get(&p).unwrap_or(&empty);
            let (lb, mb) = k.ladder.get(&p).unwrap_or(&empty);
            for i in 0..la.len().max(lb.len()) {
                let a = la.get(i).map(String::as_str).unwrap_or("");
                let b = lb.get(i).map(String::as_str).unwrap_or("");
                writeln!(self.out, "  {}│ {}", cut(a, LADDER_COL), cut(b, LADDER_COL))?;
            }
            if *ma > 0 || *mb > 0 {
                let more = |n: u64| {
                    if n > 0 {
                        format!("… {n} more packets")
                    } else {
                        String::new()
                    }
                };
                writeln!(self.out, "  {}│ {}", cut(&more(*ma), LADDER_COL), more(*mb))?;
            }
        }
        Ok(())
    }
}

/// How many values a list holds, GREASE apart: "17", "16 + GREASE".
fn counted(v: &[String]) -> String {
    let n = without_grease(v).len();
    if n == v.len() {
        n.to_string()
    } else {
        format!("{n} + GREASE")
    }
}

/// The values joined, or "none".
fn or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn ssthresh(v: u32) -> String {
    if v >= 0x7fff_ffff {
        "not set".to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::analysis::fixtures::{Close, client_hello, fetch, report, server_hello};
    use crate::compare::differences::differences;

    fn run(stack: &'static str, name: &str, ua: &str, suites: &[&str]) -> StackReport {
        report(
            stack,
            name,
            &fetch(
                40000,
                client_hello(
                    suites,
                    &["GREASE", "server_name", "key_share"],
                    "t13d0302h1_a_b",
                ),
                server_hello("TLS13_AES_128_GCM_SHA256", "x25519"),
                &[
                    ("Host", "www.example.test"),
                    ("User-Agent", ua),
                    ("Accept", "*/*"),
                ],
                Close {
                    by_client: true,
                    rst: false,
                    delay_us: 300,
                },
            ),
        )
    }

    fn render(u: &StackReport, k: &StackReport) -> String {
        let mut out = Vec::new();
        CompareText::new(&mut out, false)
            .render("https://www.example.test/", u, k, &differences(u, k))
            .expect("renders");
        String::from_utf8(out).expect("utf-8")
    }

    /// The lines of the section titled `title`, up to the next blank line.
    fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
        text.lines()
            .skip_while(|l| !l.starts_with(title))
            .take_while(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn columns_are_titled_by_the_names() {
        let u = run(
            "userspace",
            "fetchscope's stack",
            "fetchscope/0.1.0",
            &["A", "B"],
        );
        let k = run(
            "client",
            "requests",
            "python-requests/2.34.2 with a long tail that goes on and on and on",
            &[
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256_AND_MORE",
                "B",
                "C",
            ],
        );
        let text = render(&u, &k);
        println!("{text}");
        assert!(!text.contains("kernel"), "{text}");
        assert!(
            text.contains(
                "\n  fetchscope's stack: a test path\n  requests:           a test path\n"
            )
        );
        for title in [
            "Phase timings (ms)",
            "TCP handshake",
            "TLS ClientHello",
            "HTTP request head",
            "ACKs of the server's data",
            "Teardown",
        ] {
            let s = section(&text, title);
            assert_eq!(
                s.first().copied(),
                Some(
                    format!(
                        "{}{}requests",
                        cut(title, LABEL + 2),
                        cut("fetchscope's stack", COL)
                    )
                    .as_str()
                ),
                "{text}"
            );
        }
        assert!(text.contains(&format!(
            "{}requests (its trace)",
            cut("fetchscope's stack (its trace)", COL)
        )));
        assert!(text.contains(&format!(
            "{}  │ requests",
            cut("Packets: fetchscope's stack", LADDER_COL)
        )));
        let hello = section(&text, "TLS ClientHello");
        let row = |label: &str| {
            hello
                .iter()
                .find(|l| l.trim_start().starts_with(label))
                .map(|l| l.to_string())
                .unwrap_or_default()
        };
        assert!(row("cipher suites").ends_with("2                                     ≠ 3"));
        assert!(row("extensions").contains("2 + GREASE"));
        assert!(row("JA4").contains("t13d0302h1_a_b"));
        assert!(row("ALPN").contains("http/1.1"));
        assert!(row("server chose suite").contains("TLS13_AES_128_GCM_SHA256"));
        let head = section(&text, "HTTP request head");
        assert!(head.iter().any(|l| l.contains("User-Agent")
            && l.contains("fetchscope/0.1.0")
            && l.contains("≠ python-requests/2.34.2")));
        // Bounded widths: label, left column, mark, right column.
        for l in hello.iter().chain(&head) {
            assert!(l.chars().count() <= 2 + LABEL + COL + 2 + COL, "{l}");
        }
        assert!(text.contains("• requests sent User-Agent python-requests/2.34.2"));
    }

    #[test]
    fn default_names_keep_the_titles() {
        let u = run("userspace", "fetchscope's stack", "x", &["A"]);
        let k = run("kernel", "the kernel", "x", &["A"]);
        let text = render(&u, &k);
        assert!(
            text.contains(
                "\n  fetchscope's stack: a test path\n  the kernel's stack: a test path\n"
            )
        );
        assert!(text.contains(&format!(
            "{}{}kernel\n",
            cut("Teardown", LABEL + 2),
            cut("fetchscope's stack", COL)
        )));
        assert!(text.contains(&format!(
            "{}kernel (TCP_INFO at end)\n",
            cut("fetchscope's stack (its trace)", COL)
        )));
        assert!(text.contains("Packets: fetchscope's stack"));
        assert!(text.contains("  rto                           not exposed by smoltcp"));
        assert!(text.contains("  none: both runs looked the same on the wire"));
    }
}
