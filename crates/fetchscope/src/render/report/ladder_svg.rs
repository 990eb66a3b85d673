//! The report's ladder diagram as SVG, drawn from the [`Ladder`] model that the text
//! diagram also uses.

use fetchscope_wire::Direction;
use maud::{Markup, html};

use super::{Fixed, SVG_WIDTH, Text, cut, ms};
use crate::render::ladder::{Ladder, Row};

/// Where the client's lifeline stands.
const CLIENT_X: f64 = 170.0;
/// Where the rows begin, below the headings.
const TOP: f64 = 76.0;

/// How tall a row is drawn.
fn row_height(r: &Row) -> f64 {
    match r {
        Row::Phase { .. } | Row::Fold(_) => 30.0,
        Row::Packet(_) => 28.0,
        Row::State { .. } => 20.0,
        Row::Mark { .. } => 24.0,
    }
}

/// The ladder diagram as SVG: lifelines, one slanted arrow per packet (a link to its
/// row in the packet table), phase bands, the client's TCP states, folds and marks.
pub fn ladder_svg(l: &Ladder) -> Markup {
    let cols = l.columns();
    let right = SVG_WIDTH - 30.0;
    let col_x = |c: usize| CLIENT_X + (right - CLIENT_X) * (c + 1) as f64 / cols as f64;
    // Each row with the y it is drawn at.
    let rows: Vec<(f64, &Row)> = l
        .rows
        .iter()
        .scan(TOP, |y, r| {
            let at = *y;
            *y += row_height(r);
            Some((at, r))
        })
        .collect();
    let height = TOP + l.rows.iter().map(row_height).sum::<f64>() + 10.0;
    let client = l
        .clients
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    // The peer columns' headings: name, address, roles.
    let heads: Vec<(f64, String, String, String)> = (0..cols)
        .map(|c| {
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
            (col_x(c), name, addr, roles)
        })
        .collect();
    let lifeline_end = Fixed(height - 6.0, 1);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" id="ladder-svg" width=(SVG_WIDTH)
            height=(Fixed(height, 0)) viewBox={ "0 0 " (SVG_WIDTH) " " (Fixed(height, 0)) }
            role="img" aria-label="ladder diagram" {
            defs {
                @for (id, colour) in [("ah-tx", "#0b6fa4"), ("ah-rx", "#1d7a3a")] {
                    marker id=(id) viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"
                        markerHeight="8" orient="auto" {
                        path d="M0,0 L10,5 L0,10 z" fill=(colour) {}
                    }
                }
            }
            // Headings and lifelines.
            text x="8" y="22" font-size="11" fill="#666" { "time (ms)" }
            text x=(CLIENT_X) y="22" font-size="13" font-weight="600" text-anchor="middle" {
                "client"
            }
            text x=(CLIENT_X) y="38" font-size="11" text-anchor="middle" class="mono" {
                (Text(&client))
            }
            line x1=(CLIENT_X) y1="60" x2=(CLIENT_X) y2=(lifeline_end) stroke="#333" {}
            @for (x, name, addr, roles) in &heads {
                @let x = Fixed(*x, 1);
                text x=(x) y="22" font-size="13" font-weight="600" text-anchor="end" {
                    (Text(name))
                }
                text x=(x) y="38" font-size="11" text-anchor="end" class="mono" { (Text(addr)) }
                text x=(x) y="52" font-size="11" text-anchor="end" fill="#666" { (Text(roles)) }
                line x1=(x) y1="60" x2=(x) y2=(lifeline_end) stroke="#333" {}
            }
            @for (y, r) in rows {
                @match r {
                    Row::Phase { number, title, .. } => {
                        rect x="0" y=(Fixed(y - 2.0, 1)) width=(SVG_WIDTH) height="20"
                            fill="#eef1f5" {}
                        text x="8" y=(Fixed(y + 12.0, 1)) font-size="12" font-weight="600" {
                            (number) ". " (Text(title))
                        }
                    }
                    Row::Packet(a) => {
                        @let px = col_x(l.column_of(a.peer));
                        @let (x1, x2, colour, marker) = match a.dir {
                            Direction::Tx => (CLIENT_X, px, "#0b6fa4", "ah-tx"),
                            Direction::Rx => (px, CLIENT_X, "#1d7a3a", "ah-rx"),
                        };
                        @let label = match l.peers.get(a.peer) {
                            Some(p) if l.shared_column(a.peer) => format!("[{}] {}", p.addr, a.label),
                            _ => a.label.clone(),
                        };
                        @let label = cut(&label, 120);
                        // A label wider than its arrow (about 6.2 px a character at 11 px)
                        // is squeezed to fit between the lifelines.
                        @let room = (x1 - x2).abs() - 12.0;
                        @let squeeze = (label.chars().count() as f64 * 6.2 > room)
                            .then_some(Fixed(room, 0));
                        a href={ "#p" (a.number) } {
                            g class="arrow" data-n=(a.number) {
                                title { "#" (a.number) " " (Text(&a.label)) }
                                text x="8" y=(Fixed(y + 8.0, 1)) font-size="11" class="mono"
                                    fill="#555" { (ms(a.t_us)) }
                                text x=(Fixed(CLIENT_X - 14.0, 1)) y=(Fixed(y + 8.0, 1))
                                    font-size="11" class="mono" fill="#888" text-anchor="end" {
                                    "#" (a.number)
                                }
                                line x1=(Fixed(x1, 1)) y1=(Fixed(y, 1)) x2=(Fixed(x2, 1))
                                    y2=(Fixed(y + 10.0, 1)) stroke=(colour) stroke-width="1.5"
                                    marker-end={ "url(#" (marker) ")" } {}
                                text x=(Fixed((x1 + x2) / 2.0, 1)) y=(Fixed(y + 1.0, 1))
                                    font-size="11" fill=(colour) text-anchor="middle"
                                    textLength=[squeeze]
                                    lengthAdjust=[squeeze.map(|_| "spacingAndGlyphs")] {
                                    (Text(&label))
                                }
                            }
                        }
                    }
                    Row::Fold(f) => {
                        g class="fold" {
                            rect x=(Fixed(CLIENT_X, 1)) y=(Fixed(y - 6.0, 1))
                                width=(Fixed(col_x(cols - 1) - CLIENT_X, 1)) height="22"
                                fill="#fafafa" stroke="#bbb" stroke-dasharray="4 3" {}
                            text x=(Fixed(CLIENT_X + 8.0, 1)) y=(Fixed(y + 9.0, 1))
                                font-size="11" fill="#555" { (Text(&f.describe())) }
                        }
                    }
                    Row::State { t_us, state } => {
                        text x="8" y=(Fixed(y + 4.0, 1)) font-size="11" class="mono"
                            fill="#999" { (ms(*t_us)) }
                        text x=(Fixed(CLIENT_X + 6.0, 1)) y=(Fixed(y + 4.0, 1)) font-size="11"
                            font-style="italic" fill="#a0522d" class="tcp-state" {
                            (Text(state.name()))
                        }
                    }
                    Row::Mark { t_us, text } => {
                        text x="8" y=(Fixed(y + 6.0, 1)) font-size="12" font-weight="600" {
                            (ms(*t_us)) " ms · " (Text(&cut(text, 120)))
                        }
                    }
                }
            }
        }
    }
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
        let svg = ladder_svg(&ladder()).into_string();
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
            let svg = ladder_svg(l).into_string();
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
        assert!(ladder_svg(&empty).into_string().contains(">server</text>"));
    }
}
