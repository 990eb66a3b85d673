//! The state panel shown at each pause of `fetchscope step`.

use fetchscope_core::replay::ReplayState;
use fetchscope_flow::fetch::Snapshot;

fn seq(v: Option<(u32, u32)>) -> String {
    match v {
        Some((rel, abs)) => format!("{rel} ({abs})"),
        None => "-".into(),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// The panel's lines for `snap` (no trailing newline on the last line).
pub fn lines(snap: &Snapshot, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let title = format!(
        "── paused at {:.3} ms · phase {}{} ",
        snap.t_us as f64 / 1000.0,
        snap.phase,
        if snap.clock_paused {
            " · lab clock stopped"
        } else {
            " · real time goes on"
        }
    );
    let fill = width.saturating_sub(title.chars().count());
    out.push(format!("{title}{}", "─".repeat(fill)));
    if let Some(d) = &snap.dns {
        out.push(format!(" DNS   {d}"));
    }
    if let Some(t) = &snap.tcp {
        let s = &t.smoltcp;
        out.push(format!(" TCP   {}  {} → {}", s.state, s.local, s.remote));
        out.push(format!(
            "       smoltcp: send queue {} / {} B, receive queue {} / {} B, Nagle {}, delayed ACK {}, next timer {}",
            s.send_queue,
            s.send_capacity,
            s.recv_queue,
            s.recv_capacity,
            if s.nagle { "on" } else { "off" },
            s.ack_delay_ms
                .map(|m| format!("{m} ms"))
                .unwrap_or_else(|| "off".into()),
            s.timer_ms
                .map(|m| format!("in {m:.1} ms"))
                .unwrap_or_else(|| "none".into()),
        ));
        let d = &t.derived;
        out.push(format!(
            "       derived from the packets: SND.UNA {}  SND.NXT {}  RCV.NXT {}",
            seq(d.snd_una),
            seq(d.snd_nxt),
            seq(d.rcv_nxt)
        ));
        out.push(format!(
            "       windows: peer {} B, ours {} B · in flight {} B · MSS {}/{} · window scale {}/{} (ours/peer's) · retransmitted {}/{}",
            opt(d.snd_wnd),
            opt(d.rcv_wnd),
            d.in_flight,
            opt(d.mss.0),
            opt(d.mss.1),
            opt(d.window_scale.0),
            opt(d.window_scale.1),
            d.retransmissions.0,
            d.retransmissions.1,
        ));
        if let Some(r) = &d.retransmission_timer {
            out.push(format!("       retransmission timer: {r}"));
        }
    }
    if let Some(t) = &snap.tls {
        let mut line = format!(" TLS   {}", t.stage);
        for v in [&t.version, &t.suite, &t.group].into_iter().flatten() {
            line.push_str(&format!(" · {v}"));
        }
        if let Some(a) = &t.alpn {
            line.push_str(&format!(" · ALPN {a}"));
        }
        if let Some(w) = &t.waiting_for {
            line.push_str(&format!(" · waiting for {w}"));
        }
        out.push(line);
    }
    if let Some(h) = &snap.http {
        out.push(format!(
            " HTTP  {} · {} · {} body bytes ({} on the wire){}{}",
            h.request.clone().unwrap_or_default(),
            h.status
                .map(|s| format!("status {s}"))
                .unwrap_or_else(|| "no response yet".into()),
            h.body_bytes,
            h.wire_body_bytes,
            if h.complete { " · complete" } else { "" },
            if h.redirects > 0 {
                format!(" · {} redirect(s) so far", h.redirects)
            } else {
                String::new()
            }
        ));
    }
    out.push(format!(" next  {}", snap.next));
    out.extend(key_bar(width));
    out
}

/// The keys a pause takes, as shown under the panel.
const KEYS: [&str; 8] = [
    "[Enter/n] next",
    "[p] packet",
    "[s] state",
    "[f] phase",
    "[c] continue",
    "[b] ladder",
    "[q] quit",
    "[?] help",
];

/// The key bar in lines of at most `width` columns (wrapped between keys; one line
/// from 97 columns on, two at 80, three at 40).
pub fn key_bar(width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for k in KEYS {
        let len = line.chars().count();
        if len > 0 && len + 2 + k.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        line.push_str(if line.is_empty() { " " } else { "  " });
        line.push_str(k);
    }
    out.push(line);
    out
}

/// The panel's lines at a pause of `step --replay`: what the capture's packets so far
/// show (the TCP state is inferred from them).
pub fn replay_lines(state: &ReplayState, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let title = format!(
        "── paused at {:.3} ms · phase {} · replay: the capture waits ",
        state.t_us as f64 / 1000.0,
        state.phase
    );
    let fill = width.saturating_sub(title.chars().count());
    out.push(format!("{title}{}", "─".repeat(fill)));
    if let (Some(c), Some(s)) = (state.client, state.server) {
        out.push(format!(
            " TCP   {} (inferred from the packets)  {c} → {s}",
            opt(state.tcp_state)
        ));
    }
    if let Some(d) = &state.tcp {
        let ours = |v: Option<u32>| seq(v.zip(d.iss).map(|(v, i)| (v.wrapping_sub(i), v)));
        let peers = |v: Option<u32>| seq(v.zip(d.irs).map(|(v, i)| (v.wrapping_sub(i), v)));
        out.push(format!(
            "       from the packets: SND.UNA {}  SND.NXT {}  RCV.NXT {} · windows: peer {} B, ours {} B · retransmitted {}/{} (client/server)",
            ours(d.snd_una),
            ours(d.snd_nxt),
            peers(d.rcv_nxt),
            opt(d.snd_wnd),
            opt(d.rcv_wnd),
            d.retransmissions_tx,
            d.retransmissions_rx,
        ));
    }
    if let Some(stage) = &state.tls_stage {
        let mut line = format!(" TLS   {stage}");
        for v in [&state.tls_version, &state.tls_suite].into_iter().flatten() {
            line.push_str(&format!(" · {v}"));
        }
        out.push(line);
    }
    if let Some(r) = &state.request {
        out.push(format!(
            " HTTP  {r} → {} · body {} B{}{}",
            opt(state.status),
            state.body_bytes,
            if state.complete { " · complete" } else { "" },
            if state.redirects > 0 {
                format!(" · {} redirects", state.redirects)
            } else {
                String::new()
            }
        ));
    }
    out.extend(key_bar(width));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_bar_fits_every_width_from_40_columns_on() {
        for width in 40..=200 {
            let bar = key_bar(width);
            for l in &bar {
                assert!(l.chars().count() <= width, "{width}: {l:?}");
            }
            let joined = bar.join(" ");
            for k in KEYS {
                assert!(joined.contains(k), "{width}: {k} missing from {bar:?}");
            }
        }
        // 80 columns on a terminal leave 79 for a line: two lines, nothing cut.
        assert_eq!(key_bar(79).len(), 2);
        assert_eq!(key_bar(120).len(), 1);
    }

    #[test]
    fn a_replay_pause_says_the_state_is_inferred() {
        let state = ReplayState {
            t_us: 1500,
            phase: fetchscope_core::Phase::Tls,
            client: "10.0.0.2:5000".parse().ok(),
            server: "10.0.0.1:443".parse().ok(),
            tcp_state: Some(fetchscope_core::TcpState::Established),
            tcp: None,
            tls_version: Some("TLSv1.3".into()),
            tls_suite: None,
            tls_stage: Some("ServerHello seen".into()),
            request: None,
            status: None,
            body_bytes: 0,
            complete: false,
            redirects: 0,
        };
        let lines = replay_lines(&state, 80);
        assert!(lines[0].contains("replay: the capture waits"), "{lines:?}");
        assert!(
            lines[1].contains("ESTABLISHED (inferred from the packets)"),
            "{lines:?}"
        );
        assert!(lines[2].contains("ServerHello seen · TLSv1.3"), "{lines:?}");
    }
}
