//! The comparison as text: two columns, fetchscope's stack on the left, the kernel on
//! the right, then the differences.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use fetchscope_core::Phase;

use super::analysis::{Flight, StackReport, SynInfo, Teardown, flag_list};
use super::differences::Difference;

/// One value read from HAR timings.
type HarField = fn(&fetchscope_core::timing::HarTimings) -> f64;
/// One value of a SYN, as text.
type SynField = fn(&SynInfo) -> String;

/// Width of a label column.
const LABEL: usize = 30;
/// Width of a value column.
const COL: usize = 40;
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

fn opt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 0.0 => format!("{v:.3}"),
        _ => "-".to_string(),
    }
}

/// Writes the comparison of `u` (userspace) and `k` (kernel).
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
        writeln!(self.out, "  fetchscope's stack: {}", u.path)?;
        writeln!(self.out, "  the kernel's stack: {}", k.path)?;
        for (name, r) in [("fetchscope's stack", u), ("the kernel", k)] {
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
        for r in [u, k] {
            if let Some(e) = &r.error {
                writeln!(self.out, "  {} run FAILED in the {e}", r.stack)?;
            }
        }
        self.timings(u, k)?;
        self.packets(u, k)?;
        self.handshake(u, k)?;
        self.acks(u, k)?;
        self.flight(u.server_flight.as_ref(), k.server_flight.as_ref())?;
        self.teardown(&u.teardown, &k.teardown)?;
        self.tcp_view(u, k)?;
        self.ladder(u, k)?;
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

    fn timings(&mut self, u: &StackReport, k: &StackReport) -> io::Result<()> {
        self.title("Phase timings (ms)", "fetchscope's stack", "kernel")?;
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

    fn handshake(&mut self, u: &StackReport, k: &StackReport) -> io::Result<()> {
        self.title("TCP handshake", "fetchscope's stack", "kernel")?;
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

    fn acks(&mut self, u: &StackReport, k: &StackReport) -> io::Result<()> {
        self.title("ACKs of the server's data", "fetchscope's stack", "kernel")?;
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

    fn flight(&mut self, u: Option<&Flight>, k: Option<&Flight>) -> io::Result<()> {
        self.title("Server's first flight", "fetchscope's stack", "kernel")?;
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

    fn teardown(&mut self, u: &Teardown, k: &Teardown) -> io::Result<()> {
        self.title("Teardown", "fetchscope's stack", "kernel")?;
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

    fn tcp_view(&mut self, u: &StackReport, k: &StackReport) -> io::Result<()> {
        self.title(
            "TCP internals",
            "fetchscope's stack (its trace)",
            "kernel (TCP_INFO at end)",
        )?;
        let info = k
            .tcp_info_at_end
            .as_ref()
            .or(k.tcp_info_after_connect.as_ref());
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |r| format!("{r:.3} ms"));
        let rtt_k = info.map_or("-".into(), |i| {
            format!(
                "{:.3} ms ± {:.3} (smoothed)",
                f64::from(i.rtt_us) / 1000.0,
                f64::from(i.rttvar_us) / 1000.0
            )
        });
        self.val(
            "rtt",
            &format!("{} (SYN → SYN-ACK)", ms(u.tcp.handshake_rtt_ms)),
            &rtt_k,
        )?;
        self.val(
            "handshake rtt (trace)",
            &ms(u.tcp.handshake_rtt_ms),
            &ms(k.tcp.handshake_rtt_ms),
        )?;
        self.val(
            "rto",
            "not exposed by smoltcp",
            &info.map_or("-".into(), |i| format!("{} ms", i.rto_us / 1000)),
        )?;
        self.val(
            "cwnd",
            "not exposed by smoltcp",
            &info.map_or("-".into(), |i| {
                format!(
                    "{} segments (ssthresh {})",
                    i.snd_cwnd,
                    ssthresh(i.snd_ssthresh)
                )
            }),
        )?;
        let mss_u = format!(
            "{} / {}",
            u.tcp.snd_mss.map_or("-".into(), |m| m.to_string()),
            u.tcp.max_rx_payload
        );
        let mss_k = info.map_or("-".into(), |i| format!("{} / {}", i.snd_mss, i.rcv_mss));
        self.row("snd / rcv mss", &mss_u, &mss_k)?;
        self.row(
            "options agreed",
            &u.tcp.options.join(","),
            &info.map_or(k.tcp.options.join(","), |i| i.options.join(",")),
        )?;
        let ws = |a: Option<u8>, b: Option<u8>| match (a, b) {
            (Some(a), Some(b)) => format!("{a},{b} (snd,rcv)"),
            _ => "-".into(),
        };
        self.row(
            "window scales",
            &ws(u.tcp.snd_wscale, u.tcp.rcv_wscale),
            &info.map_or("-".into(), |i| ws(i.snd_wscale, i.rcv_wscale)),
        )?;
        self.row(
            "retransmitted segments",
            &u.tcp.retransmits.to_string(),
            &info.map_or("-".into(), |i| i.total_retrans.to_string()),
        )?;
        if let Some(i) = info
            && let (Some(o), Some(n)) = (i.segs_out, i.segs_in)
        {
            self.val(
                "TCP segments out / in",
                &format!("{} / {} (trace)", u.tcp.segments_out, u.tcp.segments_in),
                &format!("{o} / {n} (segs_out/segs_in)"),
            )?;
        }
        Ok(())
    }

    fn ladder(&mut self, u: &StackReport, k: &StackReport) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{}",
            paint(
                self.heading,
                &format!(
                    "{}  │ {}",
                    cut("Packets: fetchscope's stack", LADDER_COL),
                    "kernel"
                )
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
