//! The report's ladder diagram as SVG, drawn from the [`Ladder`] model that the text
//! diagram also uses.

use std::fmt::Write as _;

use fetchscope_wire::Direction;

use super::{SVG_WIDTH, cut, esc, ms};
use crate::render::ladder::{Ladder, Row};

/// The ladder diagram as SVG: lifelines, one slanted arrow per packet (a link to its
/// row in the packet table), phase bands, the client's TCP states, folds and marks.
pub fn ladder_svg(l: &Ladder) -> String {
    let cols = l.columns();
    let client_x = 170.0;
    let right = SVG_WIDTH - 30.0;
    let col_x = |c: usize| client_x + (right - client_x) * (c + 1) as f64 / cols as f64;
    let mut body = String::new();
    let mut y = 76.0;
    for r in &l.rows {
        match r {
            Row::Phase { number, title, .. } => {
                let _ = write!(
                    body,
                    "<rect x=\"0\" y=\"{:.1}\" width=\"{SVG_WIDTH}\" height=\"20\" fill=\"#eef1f5\"/>\
<text x=\"8\" y=\"{:.1}\" font-size=\"12\" font-weight=\"600\">{number}. {}</text>",
                    y - 2.0,
                    y + 12.0,
                    esc(title)
                );
                y += 30.0;
            }
            Row::Packet(a) => {
                let px = col_x(l.column_of(a.peer));
                let (x1, x2, colour, marker) = match a.dir {
                    Direction::Tx => (client_x, px, "#0b6fa4", "ah-tx"),
                    Direction::Rx => (px, client_x, "#1d7a3a", "ah-rx"),
                };
                let mut label = a.label.clone();
                if l.shared_column(a.peer)
                    && let Some(p) = l.peers.get(a.peer)
                {
                    label = format!("[{}] {label}", p.addr);
                }
                let label = cut(&label, 120);
                // A label wider than its arrow (about 6.2 px a character at 11 px) is
                // squeezed to fit between the lifelines.
                let room = (x1 - x2).abs() - 12.0;
                let squeeze = if label.chars().count() as f64 * 6.2 > room {
                    format!(" textLength=\"{room:.0}\" lengthAdjust=\"spacingAndGlyphs\"")
                } else {
                    String::new()
                };
                let _ = write!(
                    body,
                    "<a href=\"#p{n}\"><g class=\"arrow\" data-n=\"{n}\"><title>#{n} {}</title>\
<text x=\"8\" y=\"{:.1}\" font-size=\"11\" class=\"mono\" fill=\"#555\">{}</text>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" class=\"mono\" fill=\"#888\" text-anchor=\"end\">#{n}</text>\
<line x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"1.5\" \
marker-end=\"url(#{marker})\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{colour}\" text-anchor=\"middle\"{}>{}</text></g></a>",
                    esc(&a.label),
                    y + 8.0,
                    ms(a.t_us),
                    client_x - 14.0,
                    y + 8.0,
                    y + 10.0,
                    (x1 + x2) / 2.0,
                    y + 1.0,
                    squeeze,
                    esc(&label),
                    n = a.number,
                );
                y += 28.0;
            }
            Row::Fold(f) => {
                let _ = write!(
                    body,
                    "<g class=\"fold\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"22\" \
fill=\"#fafafa\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" \
font-size=\"11\" fill=\"#555\">{}</text></g>",
                    client_x,
                    y - 6.0,
                    col_x(cols - 1) - client_x,
                    client_x + 8.0,
                    y + 9.0,
                    esc(&f.describe())
                );
                y += 30.0;
            }
            Row::State { t_us, state } => {
                let _ = write!(
                    body,
                    "<text x=\"8\" y=\"{:.1}\" font-size=\"11\" class=\"mono\" fill=\"#999\">{}</text>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" font-style=\"italic\" fill=\"#a0522d\" \
class=\"tcp-state\">{}</text>",
                    y + 4.0,
                    ms(*t_us),
                    client_x + 6.0,
                    y + 4.0,
                    esc(state.name())
                );
                y += 20.0;
            }
            Row::Mark { t_us, text } => {
                let _ = write!(
                    body,
                    "<text x=\"8\" y=\"{:.1}\" font-size=\"12\" font-weight=\"600\">{} ms · {}</text>",
                    y + 6.0,
                    ms(*t_us),
                    esc(&cut(text, 120))
                );
                y += 24.0;
            }
        }
    }
    let height = y + 10.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"ladder-svg\" width=\"{SVG_WIDTH}\" \
height=\"{height:.0}\" viewBox=\"0 0 {SVG_WIDTH} {height:.0}\" role=\"img\" aria-label=\"ladder diagram\">\
<defs><marker id=\"ah-tx\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#0b6fa4\"/></marker>\
<marker id=\"ah-rx\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#1d7a3a\"/></marker></defs>"
    );
    // Headings and lifelines.
    let client = l
        .clients
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        s,
        "<text x=\"8\" y=\"22\" font-size=\"11\" fill=\"#666\">time (ms)</text>\
<text x=\"{client_x}\" y=\"22\" font-size=\"13\" font-weight=\"600\" text-anchor=\"middle\">client</text>\
<text x=\"{client_x}\" y=\"38\" font-size=\"11\" text-anchor=\"middle\" class=\"mono\">{}</text>\
<line x1=\"{client_x}\" y1=\"60\" x2=\"{client_x}\" y2=\"{:.1}\" stroke=\"#333\"/>",
        esc(&client),
        height - 6.0
    );
    for c in 0..cols {
        let x = col_x(c);
        let shared = l.peers.len() > cols && c == cols - 1;
        let (name, addr, roles) = match l.peers.get(c) {
            None => ("server".to_string(), String::new(), String::new()),
            Some(_) if shared => (
                "other servers".to_string(),
                format!("{} peers", l.peers.len() - c),
                String::new(),
            ),
            Some(p) => (
                p.name.clone().unwrap_or_else(|| "server".into()),
                p.addr.to_string(),
                p.roles_text(),
            ),
        };
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"22\" font-size=\"13\" font-weight=\"600\" text-anchor=\"end\">{}</text>\
<text x=\"{x:.1}\" y=\"38\" font-size=\"11\" text-anchor=\"end\" class=\"mono\">{}</text>\
<text x=\"{x:.1}\" y=\"52\" font-size=\"11\" text-anchor=\"end\" fill=\"#666\">{}</text>\
<line x1=\"{x:.1}\" y1=\"60\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
            esc(&name),
            esc(&addr),
            esc(&roles),
            height - 6.0
        );
    }
    s.push_str(&body);
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::render::ladder::{Arrow, Fold, Peer};
    use fetchscope_core::TcpState;

    fn ladder() -> Ladder {
        let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80));
        Ladder {
            clients: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))],
            peers: vec![Peer {
                addr: server,
                name: Some("www.example.test".into()),
                roles: vec!["HTTPS".into()],
            }],
            rows: vec![
                Row::Phase {
                    t_us: 0,
                    number: 1,
                    title: "TCP <handshake>".into(),
                },
                Row::Packet(Arrow {
                    t_us: 1_500,
                    number: 1,
                    dir: Direction::Tx,
                    peer: 0,
                    label: "SYN".into(),
                    payload: 0,
                }),
                Row::Packet(Arrow {
                    t_us: 2_250,
                    number: 2,
                    dir: Direction::Rx,
                    peer: 0,
                    label: "SYN-ACK & more".into(),
                    payload: 0,
                }),
                Row::State {
                    t_us: 2_300,
                    state: TcpState::Established,
                },
                Row::Fold(Fold {
                    first: 3,
                    last: 9,
                    from_us: 3_000,
                    to_us: 4_000,
                    tx: 2,
                    rx: 5,
                    tx_bytes: 0,
                    rx_bytes: 7_000,
                }),
                Row::Mark {
                    t_us: 5_000,
                    text: "done".into(),
                },
            ],
        }
    }

    #[test]
    fn arrows_link_to_their_packet_rows_and_text_is_escaped() {
        let svg = ladder_svg(&ladder());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"ladder-svg\""));
        assert!(svg.ends_with("</svg>"));
        // One link per drawn packet, each to its row in the packet table.
        assert_eq!(svg.matches("<a href=\"#p").count(), 2);
        assert!(svg.contains("<a href=\"#p1\"><g class=\"arrow\" data-n=\"1\">"));
        assert!(svg.contains("<a href=\"#p2\"><g class=\"arrow\" data-n=\"2\">"));
        // Sent arrows use the Tx arrowhead, received ones the Rx one.
        assert!(svg.contains("marker-end=\"url(#ah-tx)\""));
        assert!(svg.contains("marker-end=\"url(#ah-rx)\""));
        // Headings, phase band, state, fold and mark.
        assert!(svg.contains(">www.example.test</text>"));
        assert!(svg.contains(">192.0.2.80</text>"));
        assert!(svg.contains(">10.0.0.2</text>"));
        assert!(svg.contains(">1. TCP &lt;handshake&gt;</text>"));
        assert!(svg.contains(">SYN-ACK &amp; more</text>"));
        assert!(svg.contains("class=\"tcp-state\">ESTABLISHED</text>"));
        assert!(svg.contains("<g class=\"fold\">"));
        assert!(svg.contains("7 packets #3-#9 not drawn"));
        assert!(svg.contains(">5.000 ms · done</text>"));
        assert!(!svg.contains("<handshake>"));
    }

    #[test]
    fn the_height_grows_with_the_rows() {
        let height = |l: &Ladder| {
            let svg = ladder_svg(l);
            let at = svg.find("height=\"").unwrap() + "height=\"".len();
            svg[at..at + svg[at..].find('"').unwrap()]
                .parse::<f64>()
                .unwrap()
        };
        let empty = Ladder::default();
        // 76 (headings) + 10 (margin): nothing else.
        assert_eq!(height(&empty), 86.0);
        // + 30 phase + 2 × 28 packets + 20 state + 30 fold + 24 mark.
        assert_eq!(height(&ladder()), 86.0 + 30.0 + 56.0 + 20.0 + 30.0 + 24.0);
        // With no peers the diagram still draws one server lifeline.
        assert!(ladder_svg(&empty).contains(">server</text>"));
    }
}
