//! The notable differences between two runs, each one sentence computed from the two
//! reports: a comparison says nothing when the runs agree. Sentences name the runs by
//! their reports' [`StackReport::name`] ("fetchscope's stack", "the kernel", "curl"),
//! the second run (`k`) first.

use std::collections::HashSet;

use serde::Serialize;

use super::analysis::{
    CloseStart, FinInfo, HelloInfo, RequestInfo, ServerHelloInfo, StackReport, SynInfo,
    default_name, flag_list, without_grease,
};

/// One difference between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What it is about: `outcome`, `connections`, `syn`, `window`, `client_hello`,
    /// `server_hello`, `request_head`, `packets`, `acks`, `tls_flight`, `teardown`,
    /// `retransmissions`, `ip`, `timing`, `status`, `body`.
    pub topic: &'static str,
    /// The sentence.
    pub text: String,
}

/// The name sentences give `r`: its `name`, else its stack's default, else `fallback`.
pub(crate) fn name_of(r: &StackReport, fallback: &str) -> String {
    if !r.name.is_empty() {
        return r.name.clone();
    }
    let d = default_name(r.stack);
    if d.is_empty() {
        fallback.to_string()
    } else {
        d
    }
}

/// The names of the two runs, left (`u`) and right (`k`).
pub(crate) fn names(u: &StackReport, k: &StackReport) -> (String, String) {
    (name_of(u, "the first run"), name_of(k, "the second run"))
}

fn d(topic: &'static str, text: String) -> Difference {
    Difference { topic, text }
}

/// A name at the start of a sentence: a phrase ("the kernel", "fetchscope's stack") is
/// capitalised, a single word (a program name: "curl", "requests") is left as written.
fn upper(s: &str) -> String {
    if !s.contains(' ') {
        return s.to_string();
    }
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The possessive of a name: "the kernel's", "requests'".
fn poss(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// "the kernel run", "curl's run".
fn run_of(name: &str) -> String {
    if name.starts_with("the ") {
        format!("{name} run")
    } else {
        format!("{} run", poss(name))
    }
}

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// At most `max` of `items`, then how many more: "a, b, c and 4 more".
fn list(items: &[&str], max: usize) -> String {
    let shown = items
        .get(..max.min(items.len()))
        .unwrap_or(items)
        .join(", ");
    if items.len() > max {
        format!("{shown} and {} more", items.len() - max)
    } else {
        shown
    }
}

/// How long the longer of two durations (ms) must be to count: at least a millisecond
/// more and half again as long.
fn notable(x: f64, y: f64) -> bool {
    let (lo, hi) = (x.min(y), x.max(y));
    hi - lo >= 1.0 && hi >= lo * 1.5
}

/// Every difference worth a sentence, in the order of the fetch.
pub fn differences(u: &StackReport, k: &StackReport) -> Vec<Difference> {
    let (un, kn) = names(u, k);
    let (un, kn) = (un.as_str(), kn.as_str());
    let mut out = Vec::new();
    if u.ok != k.ok {
        let (good, bad, r) = if u.ok { (un, kn, k) } else { (kn, un, u) };
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
                "{} run opened {} TCP connection{}, {} {}.",
                upper(&poss(kn)),
                k.connections,
                plural(k.connections),
                poss(un),
                u.connections
            ),
        ));
    }
    if let (Some(a), Some(b)) = (&u.syn, &k.syn) {
        syn_options(&mut out, a, b, un, kn);
    }
    if let (Some(a), Some(b)) = (&u.syn_ack, &k.syn_ack)
        && a.options() != b.options()
    {
        out.push(d(
            "syn",
            format!(
                "The server's SYN-ACK to {kn} carried {}, to {un} {}: a server echoes only the options the SYN offered.",
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
                "After the handshake {kn} advertised a receive window of {b} bytes, {un} {a} bytes."
            ),
        ));
    }
    if let (Some(a), Some(b)) = (&u.client_hello, &k.client_hello) {
        client_hello(&mut out, a, b, un, kn);
    }
    if let (Some(a), Some(b)) = (&u.server_hello, &k.server_hello) {
        server_hello(
            &mut out,
            (a, u.client_hello.as_ref()),
            (b, k.client_hello.as_ref()),
            un,
            kn,
        );
    }
    if let (Some(a), Some(b)) = (&u.request, &k.request) {
        request_head(&mut out, a, b, un, kn);
    }
    packets(&mut out, u, k, un, kn);
    acks(&mut out, u, k, un, kn);
    flight(&mut out, u, k, un, kn);
    teardown(&mut out, u, k, un, kn);
    retransmissions(&mut out, u, k, un, kn);
    ip(&mut out, u, k, un, kn);
    timings(&mut out, u, k, un, kn);
    if let (Some(a), Some(b)) = (u.status, k.status)
        && a != b
    {
        out.push(d(
            "status",
            format!("The server answered {kn} with HTTP {b} and {un} with HTTP {a}."),
        ));
    }
    if let (Some(a), Some(b)) = (&u.body_sha256, &k.body_sha256)
        && a != b
    {
        out.push(d(
            "body",
            format!(
                "The bodies differ: {kn} received {} bytes (sha256 {}…), {un} {} bytes (sha256 {}…).",
                k.body_bytes.unwrap_or(0),
                b.get(..12).unwrap_or(b),
                u.body_bytes.unwrap_or(0),
                a.get(..12).unwrap_or(a)
            ),
        ));
    }
    out
}

fn syn_options(out: &mut Vec<Difference>, u: &SynInfo, k: &SynInfo, un: &str, kn: &str) {
    match (u.ts_val, k.ts_val) {
        (None, Some(v)) => out.push(d(
            "syn",
            format!(
                "{} offers TCP timestamps in its SYN (TSval {v}); {un} sends none.",
                upper(kn)
            ),
        )),
        (Some(v), None) => out.push(d(
            "syn",
            format!(
                "{} offers TCP timestamps in its SYN (TSval {v}); {kn} sends none.",
                upper(un)
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
                "{} asks for {} in its SYN, {un} for {}.",
                upper(kn),
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
                "{} SYN announces {}, {} {}.",
                upper(&poss(kn)),
                say(k.mss),
                poss(un),
                say(u.mss)
            ),
        ));
    }
    if u.sack_permitted != k.sack_permitted {
        let (yes, no) = if k.sack_permitted { (kn, un) } else { (un, kn) };
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
                "{} SYN advertises a {}-byte window, {} {} bytes.",
                upper(&poss(kn)),
                k.win,
                poss(un),
                u.win
            ),
        ));
    }
    if u.len != k.len {
        out.push(d(
            "syn",
            format!(
                "{} SYN is {} bytes long, {} {} bytes ({} vs {}).",
                upper(&poss(kn)),
                k.len,
                poss(un),
                u.len,
                k.options(),
                u.options()
            ),
        ));
    }
}

/// How two ordered lists differ, GREASE left out: the values only each holds, and where
/// the values both hold first come in a different order.
struct ListDiff<'a> {
    only_u: Vec<&'a str>,
    only_k: Vec<&'a str>,
    /// The first position (from 0) in the shared values where the order differs, and
    /// the next few shared values of each (`u`, `k`) from there ("a, b, c, …").
    reordered: Option<(usize, String, String)>,
}

impl<'a> ListDiff<'a> {
    fn new(u: &'a [String], k: &'a [String]) -> Self {
        let (u, k) = (without_grease(u), without_grease(k));
        let (su, sk): (HashSet<&str>, HashSet<&str>) =
            (u.iter().copied().collect(), k.iter().copied().collect());
        let only = |v: &[&'a str], other: &HashSet<&str>| {
            let mut seen = HashSet::new();
            v.iter()
                .copied()
                .filter(|x| !other.contains(x) && seen.insert(*x))
                .collect::<Vec<_>>()
        };
        let shared = |v: &[&'a str], other: &HashSet<&str>| {
            let mut seen = HashSet::new();
            v.iter()
                .copied()
                .filter(|x| other.contains(x) && seen.insert(*x))
                .collect::<Vec<_>>()
        };
        let (shu, shk) = (shared(&u, &sk), shared(&k, &su));
        let reordered = shu.iter().zip(&shk).position(|(a, b)| a != b).map(|i| {
            let from = |v: &[&str]| {
                let rest = v.get(i..).unwrap_or_default();
                let shown = rest.get(..3).unwrap_or(rest).join(", ");
                if rest.len() > 3 {
                    format!("{shown}, …")
                } else {
                    shown
                }
            };
            (i, from(&shu), from(&shk))
        });
        ListDiff {
            only_u: only(&u, &sk),
            only_k: only(&k, &su),
            reordered,
        }
    }

    fn equal(&self) -> bool {
        self.only_u.is_empty() && self.only_k.is_empty() && self.reordered.is_none()
    }
}

/// One sentence on two offered lists (`noun` plural, e.g. "cipher suites"; `verb` for
/// one run and `verbs` for both, e.g. "offers"/"offer"), or nothing when they agree.
fn offer_sentence(
    (u, k): (&[String], &[String]),
    noun: &str,
    (verb, verbs): (&str, &str),
    un: &str,
    kn: &str,
) -> Option<String> {
    let diff = ListDiff::new(u, k);
    if diff.equal() {
        return None;
    }
    let (nu, nk) = (without_grease(u).len(), without_grease(k).len());
    let order = |(i, a, b): &(usize, String, String)| {
        let from = if *i == 0 {
            "from the first".to_string()
        } else {
            format!("from the {} on", ordinal(i + 1))
        };
        (from, format!("{kn} {b}; {un} {a}"))
    };
    if diff.only_u.is_empty() && diff.only_k.is_empty() {
        let (from, which) = diff.reordered.as_ref().map(order)?;
        return Some(format!(
            "{} and {un} {verbs} the same {nk} {noun} in a different order {from}: {which}.",
            upper(kn)
        ));
    }
    let head = if nu == nk {
        format!("{} and {un} both {verbs} {nk} {noun}", upper(kn))
    } else {
        format!("{} {verb} {nk} {noun}, {un} {nu}", upper(kn))
    };
    let mut parts = Vec::new();
    if !diff.only_k.is_empty() {
        parts.push(format!("only {kn} {verb} {}", list(&diff.only_k, 4)));
    }
    if !diff.only_u.is_empty() {
        parts.push(format!("only {un} {verb} {}", list(&diff.only_u, 4)));
    }
    if let Some(r) = &diff.reordered {
        let (from, which) = order(r);
        parts.push(format!(
            "the shared ones come in a different order {from} ({which})"
        ));
    }
    Some(format!("{head}: {}.", parts.join("; ")))
}

/// "1st", "2nd", "3rd", "4th", ... "11th", "21st".
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn client_hello(out: &mut Vec<Difference>, u: &HelloInfo, k: &HelloInfo, un: &str, kn: &str) {
    let mut say = |text: String| out.push(d("client_hello", text));
    match (u.sends_grease(), k.sends_grease()) {
        (false, true) => say(format!(
            "{} sends GREASE values (RFC 8701) in its ClientHello; {un} does not.",
            upper(kn)
        )),
        (true, false) => say(format!(
            "{} sends GREASE values (RFC 8701) in its ClientHello; {kn} does not.",
            upper(un)
        )),
        _ => {}
    }
    if u.record_version != k.record_version {
        say(format!(
            "{} ClientHello went in a {} record, {} in a {} record.",
            upper(&poss(kn)),
            k.record_version,
            poss(un),
            u.record_version
        ));
    }
    let (vu, vk) = (without_grease(&u.versions), without_grease(&k.versions));
    if vu != vk {
        let v = |v: &[&str]| {
            if v.is_empty() {
                "no supported_versions extension (TLS 1.2 at most)".to_string()
            } else {
                format!("TLS versions {}", v.join(", "))
            }
        };
        say(format!("{} offers {}; {un} {}.", upper(kn), v(&vk), v(&vu)));
    }
    if let Some(s) = offer_sentence(
        (&u.cipher_suites, &k.cipher_suites),
        "cipher suites",
        ("offers", "offer"),
        un,
        kn,
    ) {
        say(s);
    }
    if let Some(s) = offer_sentence(
        (&u.extensions, &k.extensions),
        "extensions",
        ("sends", "send"),
        un,
        kn,
    ) {
        say(s);
    }
    let (gu, gk) = (without_grease(&u.groups), without_grease(&k.groups));
    if gu != gk {
        let g = |v: &[&str]| {
            if v.is_empty() {
                "no supported_groups".to_string()
            } else {
                format!("the groups {}", v.join(", "))
            }
        };
        say(format!("{} offers {}; {un} {}.", upper(kn), g(&gk), g(&gu)));
    }
    let (su, sk) = (without_grease(&u.key_shares), without_grease(&k.key_shares));
    if su != sk {
        let s = |v: &[&str]| {
            if v.is_empty() {
                "no key shares".to_string()
            } else {
                format!("key shares for {}", v.join(", "))
            }
        };
        say(format!("{} sends {}; {un} {}.", upper(kn), s(&sk), s(&su)));
    }
    if u.alpn != k.alpn {
        let a = |v: &[String]| {
            if v.is_empty() {
                "no ALPN".to_string()
            } else {
                format!("ALPN {}", v.join(", "))
            }
        };
        say(format!(
            "{} offers {}; {un} {}.",
            upper(kn),
            a(&k.alpn),
            a(&u.alpn)
        ));
    }
    if u.sni != k.sni {
        let n = |s: &Option<String>| {
            s.as_ref()
                .map_or("no SNI".to_string(), |s| format!("SNI {s}"))
        };
        say(format!(
            "{} sends {}; {un} {}.",
            upper(kn),
            n(&k.sni),
            n(&u.sni)
        ));
    }
    let diff = ListDiff::new(&u.signature_algorithms, &k.signature_algorithms);
    if !diff.equal() {
        let (nu, nk) = (
            without_grease(&u.signature_algorithms).len(),
            without_grease(&k.signature_algorithms).len(),
        );
        let mut only = Vec::new();
        if !diff.only_k.is_empty() {
            only.push(format!("only {kn}: {}", list(&diff.only_k, 3)));
        }
        if !diff.only_u.is_empty() {
            only.push(format!("only {un}: {}", list(&diff.only_u, 3)));
        }
        let only = if only.is_empty() {
            " in a different order".to_string()
        } else {
            format!(" ({})", only.join("; "))
        };
        say(if nu == nk {
            format!(
                "{} and {un} both offer {nk} signature algorithm{}, not the same{only}.",
                upper(kn),
                plural(nk)
            )
        } else {
            format!(
                "{} offers {nk} signature algorithm{}, {un} {nu}{only}.",
                upper(kn),
                plural(nk)
            )
        });
    }
    if let (Some(a), Some(b)) = (&u.ja4, &k.ja4)
        && a != b
    {
        say(format!(
            "The ClientHellos have different JA4 fingerprints: {kn} {b} vs {un} {a}."
        ));
    }
}

/// True if `h` offered TLS version `v` (no supported_versions: TLS 1.2 at most).
fn offers_version(h: &HelloInfo, v: &str) -> bool {
    if without_grease(&h.versions).is_empty() {
        v != "TLSv1.3"
    } else {
        h.versions.iter().any(|x| x == v)
    }
}

fn server_hello(
    out: &mut Vec<Difference>,
    (u, hu): (&ServerHelloInfo, Option<&HelloInfo>),
    (k, hk): (&ServerHelloInfo, Option<&HelloInfo>),
    un: &str,
    kn: &str,
) {
    // Why the choices differ, when one run did not offer the other's choice.
    let why = |offered: &dyn Fn(&HelloInfo, &str) -> bool, a: &str, b: &str| {
        if hk.is_some_and(|h| !offered(h, a)) {
            format!(" ({kn} did not offer {a})")
        } else if hu.is_some_and(|h| !offered(h, b)) {
            format!(" ({un} did not offer {b})")
        } else {
            String::new()
        }
    };
    let mut say = |text: String| out.push(d("server_hello", text));
    if let (Some(a), Some(b)) = (&u.version_selected, &k.version_selected)
        && a != b
    {
        let w = why(&offers_version, a, b);
        say(format!(
            "The server chose {b} for {kn} and {a} for {un}{w}."
        ));
    }
    if let (Some(a), Some(b)) = (&u.suite, &k.suite)
        && a != b
    {
        let w = why(&|h, s| h.cipher_suites.iter().any(|x| x == s), a, b);
        say(format!(
            "The server chose the cipher suite {b} for {kn} and {a} for {un}{w}."
        ));
    }
    if let (Some(a), Some(b)) = (&u.group, &k.group)
        && a != b
    {
        let w = why(&|h, g| h.groups.iter().any(|x| x == g), a, b);
        say(format!(
            "The server chose the key-exchange group {b} for {kn} and {a} for {un}{w}."
        ));
    }
    if let (Some(a), Some(b)) = (&u.alpn, &k.alpn)
        && a != b
    {
        let w = why(&|h, p| h.alpn.iter().any(|x| x == p), a, b);
        say(format!(
            "The server chose ALPN {b} for {kn} and {a} for {un}{w}."
        ));
    }
}

fn request_head(out: &mut Vec<Difference>, u: &RequestInfo, k: &RequestInfo, un: &str, kn: &str) {
    let mut say = |text: String| out.push(d("request_head", text));
    if (&u.method, &u.target) != (&k.method, &k.target) {
        say(format!(
            "{} asked for {} {}, {un} for {} {}.",
            upper(kn),
            k.method,
            k.target,
            u.method,
            u.target
        ));
    }
    match (u.header("user-agent"), k.header("user-agent")) {
        (Some(a), Some(b)) if a != b => {
            say(format!("{} sent User-Agent {b}, {un} {a}.", upper(kn)));
        }
        (None, Some(b)) => say(format!(
            "{} sent User-Agent {b}; {un} sent none.",
            upper(kn)
        )),
        (Some(a), None) => say(format!(
            "{} sent no User-Agent; {un} sent User-Agent {a}.",
            upper(kn)
        )),
        _ => {}
    }
    // Header names, compared without case; User-Agent has its own sentence.
    let lower = |r: &RequestInfo| -> Vec<String> {
        let mut seen = HashSet::new();
        r.headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .filter(|n| seen.insert(n.clone()))
            .collect()
    };
    let (lu, lk) = (lower(u), lower(k));
    let (su, sk): (HashSet<&str>, HashSet<&str>) = (
        lu.iter().map(String::as_str).collect(),
        lk.iter().map(String::as_str).collect(),
    );
    let shown = |r: &'_ RequestInfo, n: &str| -> String {
        r.headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(n))
            .map_or(n.to_string(), |(h, _)| h.clone())
    };
    let only = |mine: &[String], other: &HashSet<&str>, r: &RequestInfo| -> Vec<String> {
        mine.iter()
            .filter(|n| *n != "user-agent" && !other.contains(n.as_str()))
            .map(|n| shown(r, n))
            .collect()
    };
    let (ou, ok) = (only(&lu, &sk, u), only(&lk, &su, k));
    let headers = |v: &[String]| {
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        format!("the header{} {}", plural(v.len()), list(&v, 8))
    };
    let mut parts = Vec::new();
    if !ok.is_empty() {
        parts.push(format!("only {kn} sent {}", headers(&ok)));
    }
    if !ou.is_empty() {
        parts.push(format!("only {un} sent {}", headers(&ou)));
    }
    if !parts.is_empty() {
        let s = parts.join("; ");
        let mut c = s.chars();
        let s: String = c
            .next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default();
        say(format!("{s}."));
    }
    let shared = |mine: &[String], other: &HashSet<&str>, r: &RequestInfo| -> Vec<String> {
        mine.iter()
            .filter(|n| other.contains(n.as_str()))
            .map(|n| shown(r, n))
            .collect()
    };
    let (shu, shk) = (shared(&lu, &sk, u), shared(&lk, &su, k));
    let same_order = shu.iter().zip(&shk).all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !same_order {
        let l = |v: &[String]| {
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            list(&v, 10)
        };
        say(format!(
            "The headers both sent come in a different order: {kn} {}; {un} {}.",
            l(&shk),
            l(&shu)
        ));
    }
    for name in ["Accept", "Accept-Encoding", "Connection"] {
        if let (Some(a), Some(b)) = (u.header(name), k.header(name))
            && a != b
        {
            say(format!("{} sent {name} \"{b}\", {un} \"{a}\".", upper(kn)));
        }
    }
}

fn packets(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport, un: &str, kn: &str) {
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
                    "{}: {} had {} packets ({} sent, {} received), {} {} ({} sent, {} received).",
                    p.title(),
                    run_of(kn),
                    b.tx + b.rx,
                    b.tx,
                    b.rx,
                    poss(un),
                    a.tx + a.rx,
                    a.tx,
                    a.rx
                ),
            ));
        }
    }
}

fn acks(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport, un: &str, kn: &str) {
    let (a, b) = (&u.acks, &k.acks);
    if a.data_segments == 0 || b.data_segments == 0 {
        return;
    }
    if a.usual() != b.usual() || a.acks != b.acks {
        out.push(d(
            "acks",
            format!(
                "{} acknowledged the server's data with {}; {un} with {}.",
                upper(kn),
                b.describe(),
                a.describe()
            ),
        ));
    }
    if (a.delayed > 0) != (b.delayed > 0) {
        let (late, prompt, l, p) = if a.delayed > 0 {
            (un, kn, a, b)
        } else {
            (kn, un, b, a)
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

fn flight(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport, un: &str, kn: &str) {
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
                "The server's first flight reached {kn} in {} segment{} ({} bytes), {un} in {} ({} bytes).",
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
                "While the server's first flight arrived, {kn} sent {} ACK{}, {un} {}.",
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

/// "a FIN from the client", "a reset from the server".
fn close_word(c: &CloseStart) -> String {
    let how = if c.how == "RST" { "a reset" } else { "a FIN" };
    format!("{how} from the {}", c.by)
}

/// How and when each connection began closing (its first FIN or RST).
fn close_start(
    out: &mut Vec<Difference>,
    a: Option<&CloseStart>,
    b: Option<&CloseStart>,
    un: &str,
    kn: &str,
) {
    match (a, b) {
        (Some(ca), Some(cb)) => {
            // Two FINs from different sides: the first-FIN sentence says it.
            let both_fin = ca.how == "FIN" && cb.how == "FIN";
            if !both_fin && (ca.how, ca.by) != (cb.how, cb.by) {
                out.push(d(
                    "teardown",
                    format!(
                        "The connection began closing with {} in {}, with {} in {}.",
                        close_word(cb),
                        run_of(kn),
                        close_word(ca),
                        poss(un)
                    ),
                ));
            }
            if let (Some(x), Some(y)) = (ca.after_data_us, cb.after_data_us)
                && notable(x as f64 / 1000.0, y as f64 / 1000.0)
            {
                out.push(d(
                    "teardown",
                    format!(
                        "The connection began closing {} after the last data in {} ({}), {} after it in {} ({}).",
                        ms(y),
                        run_of(kn),
                        close_word(cb),
                        ms(x),
                        poss(un),
                        close_word(ca)
                    ),
                ));
            }
        }
        (Some(ca), None) => out.push(d(
            "teardown",
            format!(
                "No FIN or reset appears in {} (the connection was left open, or closed after the capture ended); in {} the connection began closing with {}.",
                run_of(kn),
                poss(un),
                close_word(ca)
            ),
        )),
        (None, Some(cb)) => out.push(d(
            "teardown",
            format!(
                "No FIN or reset appears in {} (the connection was left open, or closed after the capture ended); in {} the connection began closing with {}.",
                run_of(un),
                poss(kn),
                close_word(cb)
            ),
        )),
        (None, None) => {}
    }
}

fn teardown(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport, un: &str, kn: &str) {
    let (a, b) = (&u.teardown, &k.teardown);
    match (&a.first_fin, &b.first_fin) {
        (Some(fa), Some(fb)) if fa.by != fb.by => out.push(d(
            "teardown",
            format!(
                "The {} sent the first FIN in {}, the {} in {}.",
                fb.by,
                run_of(kn),
                fa.by,
                poss(un)
            ),
        )),
        _ => {}
    }
    close_start(out, a.first_close.as_ref(), b.first_close.as_ref(), un, kn);
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
                "{} sent its FIN {}; {un} sent its FIN {}.",
                upper(kn),
                fin_how(&fb),
                fin_how(&fa)
            ),
        ));
    }
    if a.time_wait != b.time_wait {
        out.push(d(
            "teardown",
            format!(
                "TIME-WAIT is kept by {} in {} and by {} in {}.",
                b.time_wait,
                run_of(kn),
                a.time_wait,
                poss(un)
            ),
        ));
    }
    if let (Some(sa), Some(sb)) = (&a.final_state, &b.final_state)
        && sa != sb
    {
        out.push(d(
            "teardown",
            format!(
                "{} socket ended in {sb}, {} in {sa}.",
                upper(&poss(kn)),
                poss(un)
            ),
        ));
    }
    if a.resets.is_empty() != b.resets.is_empty() {
        let (with, without, t) = if a.resets.is_empty() {
            (kn, un, b)
        } else {
            (un, kn, a)
        };
        let who: Vec<String> = t
            .resets
            .iter()
            .map(|(by, n)| format!("the {by} (#{n})"))
            .collect();
        out.push(d(
            "teardown",
            format!(
                "{} run saw a reset from {}; {} had none.",
                upper(&poss(with)),
                who.join(" and "),
                poss(without)
            ),
        ));
    }
}

fn retransmissions(
    out: &mut Vec<Difference>,
    u: &StackReport,
    k: &StackReport,
    un: &str,
    kn: &str,
) {
    let (a, b) = (&u.retransmissions, &k.retransmissions);
    if (a.client, a.server) != (b.client, b.server) {
        out.push(d(
            "retransmissions",
            format!(
                "{} run had {} retransmitted segment{} from the client and {} from the server; {} {} and {}.",
                upper(&poss(kn)),
                b.client,
                if b.client == 1 { "" } else { "s" },
                b.server,
                poss(un),
                a.client,
                a.server
            ),
        ));
    }
}

fn ip(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport, un: &str, kn: &str) {
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
                "{} sends {} ({}…); {un} sends {} ({}…).",
                upper(kn),
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
                "{} sends with TTL {}, {un} with TTL {}.",
                upper(kn),
                t(&b.ttls),
                t(&a.ttls)
            ),
        ));
    }
}

fn timings(out: &mut Vec<Difference>, u: &StackReport, k: &StackReport, un: &str, kn: &str) {
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
                format!("{what} took {y:.3} ms through {kn} and {x:.3} ms through {un}."),
            ));
        }
    }
    if let (Some(ta), Some(tb)) = (&u.timings, &k.timings) {
        let (x, y) = (ta.total_ms, tb.total_ms);
        let (lo, hi) = (x.min(y), x.max(y));
        if hi - lo >= 1.0 && hi >= lo * 1.5 {
            out.push(d(
                "timing",
                format!("The whole fetch took {y:.3} ms through {kn} and {x:.3} ms through {un}."),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::compare::analysis::fixtures::{self, Close, client_hello, fetch, server_hello};

    fn texts(u: &StackReport, k: &StackReport) -> Vec<String> {
        differences(u, k).into_iter().map(|d| d.text).collect()
    }

    fn has(texts: &[String], want: &str) {
        assert!(
            texts.iter().any(|t| t == want),
            "missing {want:?} in {texts:#?}"
        );
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const FIN_SOON: Close = Close {
        by_client: true,
        rst: false,
        delay_us: 300,
    };

    /// A run through `stack` named `name` (empty: the default name).
    fn run(stack: &'static str, name: &str, close: Close, headers: &[(&str, &str)]) -> StackReport {
        let events = fetch(
            40000,
            client_hello(
                &["TLS13_AES_128_GCM_SHA256"],
                &["server_name"],
                "t13d0101h1_a_b",
            ),
            server_hello("TLS13_AES_128_GCM_SHA256", "x25519"),
            headers,
            close,
        );
        if name.is_empty() {
            let mut a = crate::compare::analysis::Analyzer::new(stack, "p");
            for e in &events {
                a.observe(e);
            }
            a.finish()
        } else {
            fixtures::report(stack, name, &events)
        }
    }

    #[test]
    fn names_at_the_start_of_a_sentence_and_possessives() {
        assert_eq!(upper("the kernel"), "The kernel");
        assert_eq!(upper("fetchscope's stack"), "Fetchscope's stack");
        assert_eq!(upper("curl"), "curl");
        assert_eq!(upper("capture a.pcap"), "Capture a.pcap");
        assert_eq!(poss("the kernel"), "the kernel's");
        assert_eq!(poss("requests"), "requests'");
        assert_eq!(run_of("the kernel"), "the kernel run");
        assert_eq!(run_of("curl"), "curl's run");
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(22), "22nd");
        let r = StackReport::default();
        assert_eq!(
            names(&r, &r),
            ("the first run".into(), "the second run".into())
        );
    }

    #[test]
    fn default_names_keep_the_sentences() {
        let mut u = run("userspace", "", FIN_SOON, &[]);
        let mut k = run(
            "kernel",
            "",
            Close {
                by_client: false,
                rst: false,
                delay_us: 300,
            },
            &[],
        );
        assert_eq!(u.name, "fetchscope's stack");
        assert_eq!(k.name, "the kernel");
        u.connections = 1;
        k.connections = 2;
        u.ok = true;
        k.ok = false;
        k.error = Some("tls phase: boom".into());
        u.teardown.final_state = Some("TIME-WAIT".into());
        k.teardown.final_state = Some("CLOSED".into());
        k.teardown.resets.push(("client", 9));
        k.retransmissions.client = 2;
        u.status = Some(200);
        k.status = Some(404);
        if let Some(syn) = &mut k.syn {
            syn.ts_val = Some(4242);
            syn.ws = Some(8);
            syn.win = 65535;
            syn.len = 60;
        }
        let t = texts(&u, &k);
        for want in [
            "Fetchscope's stack completed the fetch but the kernel failed (tls phase: boom).",
            "The kernel's run opened 2 TCP connections, fetchscope's stack's 1.",
            "The kernel offers TCP timestamps in its SYN (TSval 4242); fetchscope's stack sends none.",
            "The kernel asks for window scale 8 (×256) in its SYN, fetchscope's stack for window scale 7 (×128).",
            "The kernel's SYN advertises a 65535-byte window, fetchscope's stack's 64240 bytes.",
            "The kernel's SYN is 60 bytes long, fetchscope's stack's 40 bytes (mss 1460, ws 8, sack, timestamps vs mss 1460, ws 7, sack).",
            "The server sent the first FIN in the kernel run, the client in fetchscope's stack's.",
            "TIME-WAIT is kept by server in the kernel run and by client in fetchscope's stack's.",
            "The kernel's socket ended in CLOSED, fetchscope's stack's in TIME-WAIT.",
            "The kernel's run saw a reset from the client (#9); fetchscope's stack's had none.",
            "The kernel's run had 2 retransmitted segments from the client and 0 from the server; fetchscope's stack's 0 and 0.",
            "The server answered the kernel with HTTP 404 and fetchscope's stack with HTTP 200.",
        ] {
            has(&t, want);
        }
        assert!(
            !t.iter().any(|t| t.contains("began closing")),
            "both began with a FIN 0.3 ms after the data: {t:#?}"
        );
    }

    #[test]
    fn equal_runs_with_hellos_and_requests_have_no_differences() {
        let u = run(
            "userspace",
            "",
            FIN_SOON,
            &[("Host", "h"), ("User-Agent", "x")],
        );
        assert!(u.client_hello.is_some() && u.request.is_some());
        assert_eq!(texts(&u, &u), Vec::<String>::new());
    }

    #[test]
    fn request_head_differences_name_both_runs() {
        let u = run(
            "userspace",
            "",
            FIN_SOON,
            &[
                ("Host", "www.example.test"),
                ("User-Agent", "fetchscope/0.1.0"),
                ("Accept", "*/*"),
                ("Accept-Encoding", "gzip"),
                ("Connection", "close"),
                ("X-Only-Here", "1"),
            ],
        );
        let k = run(
            "client",
            "requests",
            FIN_SOON,
            &[
                ("Host", "www.example.test"),
                ("User-Agent", "python-requests/2.34.2"),
                ("Accept-Encoding", "gzip, deflate"),
                ("Accept", "*/*"),
                ("Connection", "keep-alive"),
            ],
        );
        let d = differences(&u, &k);
        assert!(d.iter().all(|d| d.topic == "request_head"), "{d:#?}");
        let t: Vec<String> = d.into_iter().map(|d| d.text).collect();
        assert_eq!(
            t,
            [
                "requests sent User-Agent python-requests/2.34.2, fetchscope's stack fetchscope/0.1.0.",
                "Only fetchscope's stack sent the header X-Only-Here.",
                "The headers both sent come in a different order: requests Host, User-Agent, Accept-Encoding, Accept, Connection; fetchscope's stack Host, User-Agent, Accept, Accept-Encoding, Connection.",
                "requests sent Accept-Encoding \"gzip, deflate\", fetchscope's stack \"gzip\".",
                "requests sent Connection \"keep-alive\", fetchscope's stack \"close\".",
            ]
        );
        // One side without a User-Agent; header names compared without case.
        let k = run(
            "client",
            "curl",
            FIN_SOON,
            &[
                ("host", "www.example.test"),
                ("accept", "*/*"),
                ("Range", "bytes=0-"),
            ],
        );
        let u = run(
            "userspace",
            "",
            FIN_SOON,
            &[
                ("Host", "www.example.test"),
                ("User-Agent", "fetchscope/0.1.0"),
                ("Accept", "*/*"),
            ],
        );
        assert_eq!(
            texts(&u, &k),
            [
                "curl sent no User-Agent; fetchscope's stack sent User-Agent fetchscope/0.1.0.",
                "Only curl sent the header Range.",
            ]
        );
    }

    fn hello(
        suites: &[&str],
        exts: &[&str],
        groups: &[&str],
        alpn: &[&str],
        ja4: &str,
    ) -> HelloInfo {
        HelloInfo {
            record_version: "TLSv1.0".into(),
            versions: s(&["TLSv1.3", "TLSv1.2"]),
            cipher_suites: s(suites),
            extensions: s(exts),
            groups: s(groups),
            key_shares: s(&["x25519"]),
            alpn: s(alpn),
            sni: Some("www.example.test".into()),
            signature_algorithms: s(&["ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256"]),
            ja4: Some(ja4.into()),
            ..HelloInfo::default()
        }
    }

    fn with_hello(stack: &'static str, name: &str, h: HelloInfo) -> StackReport {
        StackReport {
            stack,
            name: name.into(),
            ok: true,
            client_hello: Some(h),
            ..StackReport::default()
        }
    }

    #[test]
    fn client_hello_differences() {
        let u = with_hello(
            "userspace",
            "fetchscope's stack",
            hello(
                &["A128", "A256", "CHACHA"],
                &[
                    "server_name",
                    "supported_groups",
                    "key_share",
                    "signature_algorithms",
                ],
                &["x25519", "secp256r1"],
                &["http/1.1"],
                "t13d0304h1_aaaaaaaaaaaa_bbbbbbbbbbbb",
            ),
        );
        let mut kh = hello(
            &["GREASE", "A256", "CHACHA", "A128", "ECDHE_X", "ECDHE_Y"],
            &[
                "GREASE",
                "server_name",
                "key_share",
                "supported_groups",
                "padding",
                "signature_algorithms",
                "GREASE",
            ],
            &["GREASE", "x25519", "secp256r1", "secp384r1"],
            &["h2", "http/1.1"],
            "t13d0505h2_cccccccccccc_dddddddddddd",
        );
        kh.key_shares = s(&["GREASE", "x25519"]);
        kh.signature_algorithms.push("rsa_pkcs1_sha256".into());
        kh.versions = s(&["GREASE", "TLSv1.3", "TLSv1.2"]);
        let k = with_hello("client", "curl", kh);
        let d = differences(&u, &k);
        assert!(d.iter().all(|d| d.topic == "client_hello"), "{d:#?}");
        let t: Vec<String> = d.into_iter().map(|d| d.text).collect();
        assert_eq!(
            t,
            [
                "curl sends GREASE values (RFC 8701) in its ClientHello; fetchscope's stack does not.",
                "curl offers 5 cipher suites, fetchscope's stack 3: only curl offers ECDHE_X, ECDHE_Y; the shared ones come in a different order from the first (curl A256, CHACHA, A128; fetchscope's stack A128, A256, CHACHA).",
                "curl sends 5 extensions, fetchscope's stack 4: only curl sends padding; the shared ones come in a different order from the 2nd on (curl key_share, supported_groups, signature_algorithms; fetchscope's stack supported_groups, key_share, signature_algorithms).",
                "curl offers the groups x25519, secp256r1, secp384r1; fetchscope's stack the groups x25519, secp256r1.",
                "curl offers ALPN h2, http/1.1; fetchscope's stack ALPN http/1.1.",
                "curl offers 3 signature algorithms, fetchscope's stack 2 (only curl: rsa_pkcs1_sha256).",
                "The ClientHellos have different JA4 fingerprints: curl t13d0505h2_cccccccccccc_dddddddddddd vs fetchscope's stack t13d0304h1_aaaaaaaaaaaa_bbbbbbbbbbbb.",
            ]
        );
    }

    #[test]
    fn grease_alone_is_one_sentence_and_order_alone_names_the_first_few() {
        let base = hello(
            &["A", "B", "C", "D", "E"],
            &["server_name", "key_share"],
            &["x25519"],
            &["h2"],
            "t13d0502h2_x_y",
        );
        let u = with_hello("userspace", "fetchscope's stack", base.clone());
        let mut kh = base;
        kh.cipher_suites.insert(0, "GREASE".into());
        kh.extensions.insert(1, "GREASE".into());
        kh.groups.insert(0, "GREASE".into());
        let k = with_hello("client", "chrome", kh.clone());
        assert_eq!(
            texts(&u, &k),
            [
                "chrome sends GREASE values (RFC 8701) in its ClientHello; fetchscope's stack does not."
            ]
        );
        // Both send GREASE: nothing.
        let both = with_hello("userspace", "fetchscope's stack", kh.clone());
        assert_eq!(texts(&both, &k), Vec::<String>::new());
        kh.cipher_suites = s(&["GREASE", "A", "C", "B", "E", "D"]);
        let k = with_hello("client", "chrome", kh);
        assert_eq!(
            texts(&both, &k),
            [
                "chrome and fetchscope's stack offer the same 5 cipher suites in a different order from the 2nd on: chrome C, B, E, …; fetchscope's stack B, C, D, …."
            ]
        );
    }

    #[test]
    fn server_hello_differences_say_why() {
        let mut u = with_hello(
            "userspace",
            "fetchscope's stack",
            hello(&["A128", "A256"], &[], &["x25519", "secp256r1"], &[], "j"),
        );
        let mut k = with_hello(
            "client",
            "curl",
            hello(&["A128", "A256"], &[], &["secp384r1", "x25519"], &[], "j"),
        );
        u.server_hello = Some(ServerHelloInfo {
            version_selected: Some("TLSv1.3".into()),
            suite: Some("A128".into()),
            group: Some("x25519".into()),
            ..ServerHelloInfo::default()
        });
        k.server_hello = Some(ServerHelloInfo {
            version_selected: Some("TLSv1.2".into()),
            suite: Some("A256".into()),
            group: Some("secp384r1".into()),
            ..ServerHelloInfo::default()
        });
        let d: Vec<Difference> = differences(&u, &k)
            .into_iter()
            .filter(|d| d.topic == "server_hello")
            .collect();
        let t: Vec<&str> = d.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(
            t,
            [
                "The server chose TLSv1.2 for curl and TLSv1.3 for fetchscope's stack.",
                "The server chose the cipher suite A256 for curl and A128 for fetchscope's stack.",
                "The server chose the key-exchange group secp384r1 for curl and x25519 for fetchscope's stack (fetchscope's stack did not offer secp384r1).",
            ]
        );
        // A client that offered only TLS 1.2.
        if let Some(h) = k.client_hello.as_mut() {
            h.versions.clear();
        }
        let t = texts(&u, &k);
        has(
            &t,
            "The server chose TLSv1.2 for curl and TLSv1.3 for fetchscope's stack (curl did not offer TLSv1.3).",
        );
    }

    #[test]
    fn teardown_differences_use_the_names() {
        let u = run("userspace", "", FIN_SOON, &[]);
        let k = run(
            "client",
            "curl",
            Close {
                by_client: true,
                rst: true,
                delay_us: 5000,
            },
            &[],
        );
        let t: Vec<String> = differences(&u, &k)
            .into_iter()
            .filter(|d| d.topic == "teardown")
            .map(|d| d.text)
            .collect();
        assert_eq!(
            t,
            [
                "The connection began closing with a reset from the client in curl's run, with a FIN from the client in fetchscope's stack's.",
                "The connection began closing 5.000 ms after the last data in curl's run (a reset from the client), 0.300 ms after it in fetchscope's stack's (a FIN from the client).",
                "TIME-WAIT is kept by nobody in curl's run and by client in fetchscope's stack's.",
                "curl's run saw a reset from the client (#10); fetchscope's stack's had none.",
            ]
        );
        // The server closes first for requests; its name ends in s.
        let k = run(
            "client",
            "requests",
            Close {
                by_client: false,
                rst: false,
                delay_us: 300,
            },
            &[],
        );
        let t = texts(&u, &k);
        has(
            &t,
            "The server sent the first FIN in requests' run, the client in fetchscope's stack's.",
        );
        // No close at all on one side.
        let mut open = run("capture", "capture b.pcap", FIN_SOON, &[]);
        open.teardown = Default::default();
        let t = texts(&u, &open);
        has(
            &t,
            "No FIN or reset appears in capture b.pcap's run (the connection was left open, or closed after the capture ended); in fetchscope's stack's the connection began closing with a FIN from the client.",
        );
        // Names everywhere: nothing says "kernel" when no run is the kernel.
        assert!(!t.iter().any(|t| t.contains("kernel")), "{t:#?}");
    }

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
