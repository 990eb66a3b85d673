//! The one-line summary of a [`Dissection`], for people.

use std::fmt::Write;

use crate::dissection::Dissection;
use crate::dns::{DnsFlags, DnsLayer};
use crate::problem::DecodeProblem;
use crate::tcp::{TcpFlags, TcpLayer};
use crate::text::InlineText;
use crate::tls::record::TlsRecord;

impl Dissection {
    /// One readable line, e.g. `[SYN] seq=0 win=65535 len=0 mss=1460 ws=0 sack_perm`,
    /// `DNS answer 0x1267 A www.example.test → 10.88.0.1 (ttl 300)` or
    /// `[PSH, ACK] seq=1 ack=1 win=65535 len=254 · ClientHello sni=www.example.test alpn=http/1.1`.
    /// TCP analysis labels and problems follow in parentheses.
    ///
    /// The line is an [`InlineText`]: it runs for every packet, and a typical line needs
    /// no heap allocation.
    pub fn summary(&self) -> InlineText {
        let mut line = InlineText::new();
        let Some(ip) = &self.ip else {
            match self.problems.first() {
                Some(p) => line.push_str(&malformed_lead(p)),
                None => line.push_str("empty packet"),
            }
            return line;
        };
        if let Some(tcp) = &self.tcp {
            write_tcp_part(&mut line, tcp);
            write_tls_parts(&mut line, &self.tls);
            if let Some(dns) = &self.dns {
                line.push_str(" · ");
                line.push_str(&dns_part(dns));
            }
            if let Some(h) = &self.http {
                line.push_str(" · ");
                line.push_str(&h.line);
            }
        } else if let Some(udp) = &self.udp {
            match &self.dns {
                Some(dns) => line.push_str(&dns_part(dns)),
                None => {
                    let _ = write!(
                        line,
                        "UDP {} → {} len={}",
                        udp.src_port, udp.dst_port, udp.len
                    );
                }
            }
        } else if let Some(icmp) = &self.icmp {
            let family = if ip.version == 4 { "ICMP" } else { "ICMPv6" };
            let _ = match &icmp.quoted {
                Some(q) => write!(line, "{family} {} for {q}", icmp.name),
                None => write!(line, "{family} {}", icmp.name),
            };
        } else {
            let family = if ip.version == 4 { "IPv4" } else { "IPv6" };
            let _ = match &ip.fragment {
                Some(f) => write!(
                    line,
                    "{family} fragment offset={}{} proto {}",
                    f.offset,
                    if f.more { " more" } else { "" },
                    ip.protocol
                ),
                None => write!(line, "{family} {} len={}", ip.protocol, ip.len),
            };
        }
        if let Some(tcp) = &self.tcp
            && let Some((first, rest)) = tcp.analysis.split_first()
        {
            line.push_str(" (");
            line.push_str(first.as_str());
            for a in rest {
                line.push_str(", ");
                line.push_str(a.as_str());
            }
            line.push(')');
        }
        if !self.problems.is_empty() {
            let problems: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
            let _ = write!(line, " ({})", problems.join("; "));
        }
        line
    }
}

/// "IPv4 (malformed: header length 3)" for a packet whose IP header could not be read.
fn malformed_lead(problem: &DecodeProblem) -> String {
    match problem {
        DecodeProblem::Malformed { layer, error } => format!("{layer} (malformed: {error})"),
        other => format!("({other})"),
    }
}

/// The TCP part: flags in Wireshark's order ("[SYN, ACK]", "[FIN, PSH, ACK]"), numbers,
/// options, written to `s`.
fn write_tcp_part(s: &mut InlineText, tcp: &TcpLayer) {
    let _ = write!(s, "[{}] seq={}", tcp.flags, tcp.seq);
    if tcp.flags.contains(TcpFlags::ACK) {
        let _ = write!(s, " ack={}", tcp.ack);
    }
    let win = tcp.win_scaled.unwrap_or(u32::from(tcp.win));
    let _ = write!(s, " win={win} len={}", tcp.payload_len);
    if let Some(o) = &tcp.options {
        if let Some(mss) = o.mss {
            let _ = write!(s, " mss={mss}");
        }
        if let Some(ws) = o.ws {
            let _ = write!(s, " ws={ws}");
        }
        if o.sack_permitted {
            s.push_str(" sack_perm");
        }
        if !o.sack.is_empty() {
            let blocks: Vec<String> = o.sack.iter().map(|[l, r]| format!("{l}-{r}")).collect();
            let _ = write!(s, " sack={}", blocks.join(","));
        }
        if let (Some(v), Some(e)) = (o.ts_val, o.ts_ecr) {
            let _ = write!(s, " ts={v}/{e}");
        }
    }
}

fn dns_part(dns: &DnsLayer) -> String {
    let question = dns.question.as_deref().unwrap_or("(no question)");
    let qtype = dns.qtype.as_deref().unwrap_or("?");
    let mut s = if !dns.response {
        format!("DNS query 0x{:04x} {qtype} {question}", dns.id)
    } else if dns.rcode != "NOERROR" {
        format!("DNS answer 0x{:04x} {} {question}", dns.id, dns.rcode)
    } else if dns.answers.is_empty() {
        format!(
            "DNS answer 0x{:04x} {qtype} {question} → no records",
            dns.id
        )
    } else {
        let data: Vec<&str> = dns.answers.iter().map(|a| a.data.as_str()).collect();
        let ttl = dns.answers.iter().map(|a| a.ttl).min().unwrap_or(0);
        format!(
            "DNS answer 0x{:04x} {qtype} {question} → {} (ttl {ttl})",
            dns.id,
            data.join(", ")
        )
    };
    if dns.flags.contains(DnsFlags::TC) {
        s.push_str(" [truncated]");
    }
    s
}

/// One part per record, with runs of protected handshake records merged.
/// The TLS parts after " · ", joined by ", ". Records of application data (the records
/// of a transfer) are written straight into the line; others go through [`tls_parts`].
fn write_tls_parts(line: &mut InlineText, records: &[TlsRecord]) {
    let app_data =
        |r: &TlsRecord| r.alert.is_none() && r.encrypted && r.inner == Some("application_data");
    if records.iter().all(app_data) {
        for (i, r) in records.iter().enumerate() {
            line.push_str(if i == 0 { " · " } else { ", " });
            write_app_data(line, r);
        }
        return;
    }
    for (i, part) in tls_parts(records).iter().enumerate() {
        line.push_str(if i == 0 { " · " } else { ", " });
        line.push_str(part);
    }
}

/// "application data 16384 B", with the HTTP start line it begins with, if any.
fn write_app_data(out: &mut impl Write, r: &TlsRecord) {
    let _ = match (r.app_len, &r.http) {
        (Some(n), Some(line)) => write!(out, "application data {n} B ({line})"),
        (Some(n), None) => write!(out, "application data {n} B"),
        _ => write!(out, "application data {} B (encrypted)", r.length),
    };
}

fn tls_parts(records: &[TlsRecord]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut run: Option<(bool, Vec<String>, usize)> = None;
    for r in records {
        let protected_handshake = r.encrypted && r.inner == Some("handshake");
        if protected_handshake {
            let decrypted = r.decrypted == Some(true);
            match &mut run {
                Some((d, msgs, n)) if *d == decrypted => {
                    msgs.extend(r.messages.iter().cloned());
                    *n += 1;
                }
                _ => {
                    parts.extend(run.take().map(handshake_run));
                    run = Some((decrypted, r.messages.clone(), 1));
                }
            }
            continue;
        }
        parts.extend(run.take().map(handshake_run));
        parts.push(tls_part(r));
    }
    parts.extend(run.take().map(handshake_run));
    parts
}

fn handshake_run((_, messages, records): (bool, Vec<String>, usize)) -> String {
    if !messages.is_empty() {
        format!("encrypted handshake ({})", messages.join(", "))
    } else if records > 1 {
        format!("encrypted handshake ({records} records)")
    } else {
        "encrypted handshake".into()
    }
}

fn tls_part(r: &TlsRecord) -> String {
    if let Some(alert) = &r.alert {
        return match r.alert_level.as_deref() {
            Some("fatal") => format!("alert fatal {alert}"),
            _ => format!("alert {alert}"),
        };
    }
    match (r.record, r.encrypted, r.inner) {
        ("change_cipher_spec", false, _) => "ChangeCipherSpec".into(),
        ("handshake", false, _) => handshake_messages(r),
        (_, true, Some("application_data")) => {
            let mut s = String::new();
            write_app_data(&mut s, r);
            s
        }
        (_, true, Some("alert")) => "encrypted alert".into(),
        ("heartbeat", ..) => "heartbeat".into(),
        (kind, ..) => format!("TLS {kind} {} B", r.length),
    }
}

fn handshake_messages(r: &TlsRecord) -> String {
    if r.messages.is_empty() {
        return "handshake fragment".into();
    }
    let parts: Vec<String> = r
        .messages
        .iter()
        .map(|m| match m.as_str() {
            "ClientHello" => {
                let mut s = "ClientHello".to_string();
                if let Some(sni) = &r.sni {
                    let _ = write!(s, " sni={sni}");
                }
                if !r.alpn.is_empty() {
                    let _ = write!(s, " alpn={}", r.alpn.join(","));
                }
                s
            }
            "ServerHello" | "HelloRetryRequest" => {
                let mut s = m.clone();
                for v in [&r.version_selected, &r.suite, &r.group]
                    .into_iter()
                    .flatten()
                {
                    let _ = write!(s, " {v}");
                }
                s
            }
            _ => m.clone(),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_ip_lead() {
        let d = Dissection {
            problems: vec![DecodeProblem::Malformed {
                layer: crate::Layer::Ipv4,
                error: crate::DecodeError::field("header length", 3),
            }],
            ..Dissection::default()
        };
        assert_eq!(d.summary(), "IPv4 (malformed: header length 3)");
        assert_eq!(Dissection::default().summary(), "empty packet");
    }

    #[test]
    fn merged_handshake_runs() {
        let enc = |msgs: &[&str]| TlsRecord {
            record: "application_data",
            encrypted: true,
            decrypted: Some(true),
            inner: Some("handshake"),
            messages: msgs.iter().map(|s| s.to_string()).collect(),
            ..TlsRecord::default()
        };
        let records = vec![
            TlsRecord {
                record: "change_cipher_spec",
                ..TlsRecord::default()
            },
            enc(&["EncryptedExtensions"]),
            enc(&["Certificate", "CertificateVerify"]),
            enc(&["Finished"]),
            TlsRecord {
                record: "application_data",
                encrypted: true,
                decrypted: Some(false),
                inner: Some("application_data"),
                length: 93,
                ..TlsRecord::default()
            },
        ];
        assert_eq!(
            tls_parts(&records),
            vec![
                "ChangeCipherSpec",
                "encrypted handshake (EncryptedExtensions, Certificate, CertificateVerify, Finished)",
                "application data 93 B (encrypted)"
            ]
        );
    }
}
