//! The notable differences between two runs, each one sentence computed from the two
//! reports: a comparison says nothing when the runs agree.

use serde::Serialize;

use super::analysis::{FinInfo, StackReport, SynInfo, flag_list};

/// One difference between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What it is about: `outcome`, `connections`, `syn`, `window`, `packets`, `acks`,
    /// `tls_flight`, `teardown`, `retransmissions`, `ip`, `timing`, `status`, `body`.
    pub topic: &'static str,
    /// The sentence.
    pub text: String,
}

/// How the text names each run.
const U: &str = "fetchscope's stack";
const K: &str = "the kernel";

fn d(topic: &'static str, text: String) -> Difference {
    Difference { topic, text }
}

fn upper(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

/// Every difference worth a sentence, in the order of the fetch.
pub fn differences(u: &StackReport, k: &StackReport) -> Vec<Difference> {
    let mut out = Vec::new();
    if u.ok != k.ok {
        let (good, bad, r) = if u.ok { (U, K, k) } else { (K, U, u) };
        out.push(d(
            "outcome",
            format!(
                "{} completed the fetch but {bad} failed ({}).",
                upper(good),
                r.error.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    if u.connections != k.connections && u.connections > 0 && k.connections > 0 {
        out.push(d(
            "connections",
            format!(
                "{} run opened {} TCP connection{}, {U}'s {}.",
                upper(&format!("{K}'s")),
                k.connections,
                if k.connections == 1 { "" } else { "s" },
                u.connections
            ),
        ));
    }
    if let (Some(a), Some(b)) = (&u.syn, &k.syn) {
        syn_options(&mut out, a, b);
    }
    if let (Some(a), Some(b)) = (&u.syn_ack, &k.syn_ack)
        && a.options() != b.options()
    {
        out.push(d(
            "syn",
            format!(
                "The server's SYN-ACK to {K} carried {}, to {U} {}: a server echoes only the options the SYN offered.",
                b.options(),
                a.options()
            ),
        ));
    }
    if let (Some(a), Some(b)) = (u.tcp.rcv_window, k.tcp.rcv_window)
        && a != b
    {
        out.push(d(
            "window",
            format!(
                "After the handshake {K} advertised a receive window of {b} bytes, {U} {a} bytes."
            ),
        ));
    }
    packets(&mut out, u, k);
    acks(&mut out, u, k);
    flight(&mut out, u, k);
    teardown(&mut out, u, k);
    retransmissions(&mut out, u, k);
    ip(&mut out, u, k);
    timings(&mut out, u, k);
    if let (Some(a), Some(b)) = (u.status, k.status)
        && a != b
    {
        out.push(d(
            "status",
            format!("The server answered {K} with HTTP {b} and {U} with HTTP {a}."),
        ));
    }
    if let (Some(a), Some(b)) = (&u.body_sha256, &k.body_sha256)
        && a != b
    {
        out.push(d(
            "body",
            format!(
                "The bodies differ: {K} received {} bytes (sha256 {}…), {U} {} bytes (sha256 {}…).",
                k.body_bytes.unwrap_or(0),
                b.get(..12).unwrap_or(b),
                u.body_bytes.unwrap_or(0),
                a.get(..12).unwrap_or(a)
            ),
        ));
    }
    out
}

fn syn_options(out: &mut Vec<Difference>, u: &SynInfo, k: &SynInfo) {
    match (u.ts_val, k.ts_val) {
        (None, Some(v)) => out.push(d(
            "syn",
            format!(
                "{} offers TCP timestamps in its SYN (TSval {v}); {U} sends none.",
                upper(K)
            ),
        )),
        (Some(v), None) => out.push(d(
            "syn",
            format!(
                "{} offers TCP timestamps in its SYN (TSval {v}); {K} sends none.",
                upper(U)
            ),
        )),
        _ => {}
    }
    if u.ws != k.ws {
        let say = |w: Option<u8>| match w {
            Some(w) => format!("window scale {w} (×{})", 1u64 << w.min(14)),
            None => "no window scaling".to_string(),
        };
        out.push(d(
            "syn",
            format!(
                "{} asks for {} in its SYN, {U} for {}.",
                upper(K),
                say(k.ws),
                say(u.ws)
            ),
        ));
    }
    if u.mss != k.mss {
        let say = |m: Option<u16>| m.map_or("no MSS option".to_string(), |m| format!("MSS {m}"));
        out.push(d(
            "syn",
            format!(
                "{}'s SYN announces {}, {U}'s {}.",
                upper(K),
                say(k.mss),
                say(u.mss)
            ),
        ));
    }
    if u.sack_permitted != k.sack_permitted {
        let (yes, no) = if k.sack_permitted { (K, U) } else { (U, K) };
        out.push(d(
            "syn",
            format!(
                "{} offers selective acknowledgements (SACK-permitted); {no} does not.",
                upper(yes)
            ),
        ));
    }
    if u.win != k.win {
        out.push(d(
            "syn",
            format!(
                "{}'s SYN advertises a {}-byte window, {U}'s {} bytes.",
                upper(K),
                k.win,
                u.win
            ),
        ));
    }
    if u.len != k.len {
        out.push(d(
            "syn",
            format!(
                "{}'s SYN is {} bytes long, {U}'s {} bytes ({} vs {}).",
                upper(K),
                k.len,
                u.len,
                k.options(),
                u.options()
            ),
        ));
    }
}

fn packets(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport) {
    let mut phases: Vec<_> = u.phases.keys().chain(k.phases.keys()).copied().collect();
    phases.sort();
    phases.dedup();
    for p in phases {
        let a = u.phases.get(&p).copied().unwrap_or_default();
        let b = k.phases.get(&p).copied().unwrap_or_default();
        if (a.tx, a.rx) != (b.tx, b.rx) {
            out.push(d(
                "packets",
                format!(
                    "{}: {K} run had {} packets ({} sent, {} received), {U}'s {} ({} sent, {} received).",
                    p.title(),
                    b.tx + b.rx,
                    b.tx,
                    b.rx,
                    a.tx + a.rx,
                    a.tx,
                    a.rx
                ),
            ));
        }
    }
}

fn acks(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport) {
    let (a, b) = (&u.acks, &k.acks);
    if a.data_segments == 0 || b.data_segments == 0 {
        return;
    }
    if a.usual() != b.usual() || a.acks != b.acks {
        out.push(d(
            "acks",
            format!(
                "{} acknowledged the server's data with {}; {U} with {}.",
                upper(K),
                b.describe(),
                a.describe()
            ),
        ));
    }
    if (a.delayed > 0) != (b.delayed > 0) {
        let (late, prompt, l, p) = if a.delayed > 0 {
            (U, K, a, b)
        } else {
            (K, U, b, a)
        };
        out.push(d(
            "acks",
            format!(
                "{} delayed {} ACK{} (up to {}); {prompt} sent every ACK within {} of the data.",
                upper(late),
                l.delayed,
                if l.delayed == 1 { "" } else { "s" },
                ms(l.max_delay_us.unwrap_or(0)),
                ms(p.max_delay_us.unwrap_or(0))
            ),
        ));
    }
}

fn flight(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport) {
    let (Some(a), Some(b)) = (&u.server_flight, &k.server_flight) else {
        return;
    };
    let sizes = |f: &super::analysis::Flight| {
        f.segments
            .iter()
            .map(|s| s.payload.to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    };
    if a.segments.len() != b.segments.len() || sizes(a) != sizes(b) {
        out.push(d(
            "tls_flight",
            format!(
                "The server's first flight reached {K} in {} segment{} ({} bytes), {U} in {} ({} bytes).",
                b.segments.len(),
                if b.segments.len() == 1 { "" } else { "s" },
                sizes(b),
                a.segments.len(),
                sizes(a)
            ),
        ));
    }
    if a.acks_sent != b.acks_sent {
        out.push(d(
            "tls_flight",
            format!(
                "While the server's first flight arrived, {K} sent {} ACK{}, {U} {}.",
                b.acks_sent,
                if b.acks_sent == 1 { "" } else { "s" },
                a.acks_sent
            ),
        ));
    }
}

fn fin_how(f: &FinInfo) -> String {
    if f.payload > 0 {
        let what = if f.records.is_empty() {
            format!("{} bytes of data", f.payload)
        } else {
            f.records.join(", ")
        };
        format!(
            "on the segment carrying {what} ([{}])",
            flag_list(f.flags, ", ")
        )
    } else {
        format!("in a segment of its own ([{}])", flag_list(f.flags, ", "))
    }
}

fn teardown(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport) {
    let (a, b) = (&u.teardown, &k.teardown);
    match (&a.first_fin, &b.first_fin) {
        (Some(fa), Some(fb)) if fa.by != fb.by => out.push(d(
            "teardown",
            format!(
                "The {} sent the first FIN in {K} run, the {} in {U}'s.",
                fb.by, fa.by
            ),
        )),
        _ => {}
    }
    // The client's own FIN: piggy-backed or not, which flags.
    let client_fin = |t: &super::analysis::Teardown| {
        [&t.first_fin, &t.second_fin]
            .into_iter()
            .flatten()
            .find(|f| f.by == "client")
            .cloned()
    };
    if let (Some(fa), Some(fb)) = (client_fin(a), client_fin(b))
        && ((fa.payload > 0) != (fb.payload > 0) || fa.flags != fb.flags)
    {
        out.push(d(
            "teardown",
            format!(
                "{} sent its FIN {}; {U} sent its FIN {}.",
                upper(K),
                fin_how(&fb),
                fin_how(&fa)
            ),
        ));
    }
    if a.time_wait != b.time_wait {
        out.push(d(
            "teardown",
            format!(
                "TIME-WAIT is kept by {} in {K} run and by {} in {U}'s.",
                b.time_wait, a.time_wait
            ),
        ));
    }
    if let (Some(sa), Some(sb)) = (&a.final_state, &b.final_state)
        && sa != sb
    {
        out.push(d(
            "teardown",
            format!("{}'s socket ended in {sb}, {U}'s in {sa}.", upper(K)),
        ));
    }
    if a.resets.is_empty() != b.resets.is_empty() {
        let (with, without, t) = if a.resets.is_empty() {
            (K, U, b)
        } else {
            (U, K, a)
        };
        let who: Vec<String> = t
            .resets
            .iter()
            .map(|(by, n)| format!("the {by} (#{n})"))
            .collect();
        out.push(d(
            "teardown",
            format!(
                "{} run saw a reset from {}; {without}'s had none.",
                upper(&format!("{with}'s")),
                who.join(" and ")
            ),
        ));
    }
}

fn retransmissions(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport) {
    let (a, b) = (&u.retransmissions, &k.retransmissions);
    if (a.client, a.server) != (b.client, b.server) {
        out.push(d(
            "retransmissions",
            format!(
                "{} run had {} retransmitted segment{} from the client and {} from the server; {U}'s {} and {}.",
                upper(&format!("{K}'s")),
                b.client,
                if b.client == 1 { "" } else { "s" },
                b.server,
                a.client,
                a.server
            ),
        ));
    }
}

fn ip(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport) {
    let (a, b) = (&u.ip, &k.ip);
    if a.id_pattern() != b.id_pattern() {
        let ids = |h: &super::analysis::IpHabits| {
            h.first_ids
                .iter()
                .map(|i| format!("{i:#06x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(d(
            "ip",
            format!(
                "{} sends {} ({}…); {U} sends {} ({}…).",
                upper(K),
                b.id_pattern(),
                ids(b),
                a.id_pattern(),
                ids(a)
            ),
        ));
    }
    if a.ttls != b.ttls && !a.ttls.is_empty() && !b.ttls.is_empty() {
        let t = |v: &[u8]| v.iter().map(u8::to_string).collect::<Vec<_>>().join("/");
        out.push(d(
            "ip",
            format!(
                "{} sends with TTL {}, {U} with TTL {}.",
                upper(K),
                t(&b.ttls),
                t(&a.ttls)
            ),
        ));
    }
}

fn timings(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport) {
    let (Some(a), Some(b)) = (&u.har, &k.har) else {
        return;
    };
    let rows = [
        ("The DNS lookup", a.dns, b.dns),
        (
            "The TCP handshake",
            a.connect - a.ssl.max(0.0),
            b.connect - b.ssl.max(0.0),
        ),
        ("The TLS handshake", a.ssl, b.ssl),
        ("Waiting for the first response byte", a.wait, b.wait),
        ("Receiving the response", a.receive, b.receive),
    ];
    for (what, x, y) in rows {
        if x < 0.0 || y < 0.0 {
            continue;
        }
        let (lo, hi) = (x.min(y), x.max(y));
        // Notable: at least a millisecond and half again as long.
        if hi - lo >= 1.0 && hi >= lo * 1.5 {
            out.push(d(
                "timing",
                format!("{what} took {y:.3} ms through {K} and {x:.3} ms through {U}."),
            ));
        }
    }
    if let (Some(ta), Some(tb)) = (&u.timings, &k.timings) {
        let (x, y) = (ta.total_ms, tb.total_ms);
        let (lo, hi) = (x.min(y), x.max(y));
        if hi - lo >= 1.0 && hi >= lo * 1.5 {
            out.push(d(
                "timing",
                format!("The whole fetch took {y:.3} ms through {K} and {x:.3} ms through {U}."),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(ts: Option<u32>, ws: Option<u8>, win: u16, len: usize) -> SynInfo {
        SynInfo {
            mss: Some(1460),
            ws,
            sack_permitted: true,
            ts_val: ts,
            win,
            len,
            ..SynInfo::default()
        }
    }

    #[test]
    fn equal_runs_have_no_differences() {
        let r = StackReport {
            ok: true,
            syn: Some(syn(Some(1), Some(7), 64240, 60)),
            ..StackReport::default()
        };
        assert!(differences(&r, &r).is_empty());
    }

    #[test]
    fn syn_option_differences_name_the_values() {
        let u = StackReport {
            ok: true,
            syn: Some(syn(None, Some(3), 65535, 52)),
            ..StackReport::default()
        };
        let k = StackReport {
            ok: true,
            syn: Some(syn(Some(4242), Some(7), 64240, 60)),
            ..StackReport::default()
        };
        let texts: Vec<String> = differences(&u, &k).into_iter().map(|d| d.text).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("timestamps") && t.contains("4242")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("window scale 7") && t.contains("window scale 3")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("64240") && t.contains("65535")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("60 bytes") && t.contains("52 bytes")),
            "{texts:?}"
        );
        assert!(
            !texts.iter().any(|t| t.contains("SACK")),
            "both offer SACK: {texts:?}"
        );
    }
}
