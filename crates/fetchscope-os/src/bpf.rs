//! The capture's classic BPF filter: only the run's own flows reach user space.
//!
//! The filter runs on an `AF_PACKET`/`SOCK_DGRAM` socket, so offset 0 is the network
//! header; the ethertype comes from the ancillary load `SKF_AD_PROTOCOL`. It accepts:
//!
//! - UDP to or from one of the DNS sockets' local ports;
//! - TCP between any local port and a server's address and port (the local port is not
//!   known before `connect()` sends the SYN; user space then keeps the exact 4-tuples);
//! - ICMP/ICMPv6 errors (unreachable, time exceeded, parameter problem, packet too big)
//!   that quote a packet of those flows.
//!
//! IPv6 packets with extension headers and IPv4 fragments after the first are dropped:
//! a fetch's own packets have neither.

use std::net::IpAddr;

/// What the filter lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// Local UDP ports of the DNS sockets.
    pub udp_ports: Vec<u16>,
    /// The servers' addresses and ports (one per connection the run makes; a redirect
    /// may lead to another), once known.
    pub tcp_servers: Vec<(IpAddr, u16)>,
    /// TCP ports whose packets are all kept, whatever the addresses (a real client's
    /// connections, whose servers are not known in advance: `compare --client`).
    pub tcp_ports: Vec<u16>,
}

const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const LDX_B_MSH: u16 = 0xb1;
const LD_MEM: u16 = 0x60;
const ST_MEM: u16 = 0x02;
const ALU_AND_K: u16 = 0x54;
const ALU_LSH_K: u16 = 0x64;
const ALU_ADD_X: u16 = 0x0c;
const TAX: u16 = 0x07;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// How many bytes of an accepted packet to keep: all of it.
const ACCEPT: u32 = 0x0004_0000;

/// A jump target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum To {
    Next,
    L(String),
}

#[derive(Debug, Clone)]
enum Item {
    Insn { code: u16, k: u32, jt: To, jf: To },
    Label(String),
}

/// A jump to the label `name`.
#[allow(non_snake_case)]
fn L(name: &str) -> To {
    To::L(name.to_string())
}

/// A tiny assembler: instructions with symbolic forward jumps.
#[derive(Debug, Default)]
struct Asm {
    items: Vec<Item>,
}

impl Asm {
    fn op(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn {
            code,
            k,
            jt: To::Next,
            jf: To::Next,
        });
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.items.push(Item::Insn { code, k, jt, jf });
    }

    fn label(&mut self, name: impl Into<String>) {
        self.items.push(Item::Label(name.into()));
    }

    /// Resolves the labels; `None` if a jump goes backwards, too far or nowhere.
    fn assemble(&self) -> Option<Vec<libc::sock_filter>> {
        let mut at = std::collections::HashMap::new();
        let mut n = 0usize;
        for item in &self.items {
            match item {
                Item::Label(l) => {
                    at.insert(l.as_str(), n);
                }
                Item::Insn { .. } => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n);
        for item in &self.items {
            let Item::Insn { code, k, jt, jf } = item else {
                continue;
            };
            let here = out.len();
            let off = |t: &To| -> Option<u8> {
                match t {
                    To::Next => Some(0),
                    To::L(l) => {
                        let target = *at.get(l.as_str())?;
                        u8::try_from(target.checked_sub(here + 1)?).ok()
                    }
                }
            };
            out.push(libc::sock_filter {
                code: *code,
                jt: off(jt)?,
                jf: off(jf)?,
                k: *k,
            });
        }
        Some(out)
    }
}

fn ancillary(offset: i32) -> u32 {
    (libc::SKF_AD_OFF + offset) as u32
}

/// Compiles `f` to classic BPF.
pub fn compile(f: &FlowFilter) -> Vec<libc::sock_filter> {
    let mut a = Asm::default();
    a.op(LD_H_ABS, ancillary(libc::SKF_AD_PROTOCOL));
    a.jump(JEQ_K, 0x0800, L("v4"), To::Next);
    a.jump(JEQ_K, 0x86dd, L("v6"), L("drop"));

    // ---- IPv4: X = header length; later fragments dropped.
    a.label("v4");
    a.op(LD_H_ABS, 6);
    a.jump(JSET_K, 0x1fff, L("drop"), To::Next);
    a.op(LDX_B_MSH, 0);
    a.op(LD_B_ABS, 9);
    a.jump(JEQ_K, 17, L("v4udp"), To::Next);
    a.jump(JEQ_K, 6, L("v4tcp"), To::Next);
    a.jump(JEQ_K, 1, L("v4icmp"), L("drop"));

    a.label("v4udp");
    udp_ports(&mut a, LD_H_IND, 0, &f.udp_ports);

    a.label("v4tcp");
    any_port(&mut a, LD_H_IND, 0, &f.tcp_ports);
    for (i, (ip, port)) in f.tcp_servers.iter().enumerate() {
        let IpAddr::V4(ip) = ip else { continue };
        let (s, port) = (u32::from(*ip), u32::from(*port));
        a.op(LD_W_ABS, 12);
        a.jump(JEQ_K, s, To::Next, L(&format!("v4tcp_dst{i}")));
        a.op(LD_H_IND, 0);
        a.jump(JEQ_K, port, L("accept"), L(&format!("v4tcp_dst{i}")));
        a.label(format!("v4tcp_dst{i}"));
        a.op(LD_W_ABS, 16);
        a.jump(JEQ_K, s, To::Next, L(&format!("v4tcp_next{i}")));
        a.op(LD_H_IND, 2);
        a.jump(JEQ_K, port, L("accept"), L(&format!("v4tcp_next{i}")));
        a.label(format!("v4tcp_next{i}"));
    }
    a.jump(JEQ_K, 0, L("drop"), L("drop"));

    // ICMPv4 errors quote the IP header and 8 bytes of the packet that caused them.
    a.label("v4icmp");
    a.op(LD_B_IND, 0);
    a.jump(JEQ_K, 3, L("v4icmperr"), To::Next);
    a.jump(JEQ_K, 11, L("v4icmperr"), To::Next);
    a.jump(JEQ_K, 12, L("v4icmperr"), L("drop"));
    a.label("v4icmperr");
    // M[0] = quoted protocol; X = outer + quoted header lengths.
    a.op(LD_B_IND, 8 + 9);
    a.op(ST_MEM, 0);
    a.op(LD_B_IND, 8);
    a.op(ALU_AND_K, 0x0f);
    a.op(ALU_LSH_K, 2);
    a.op(ALU_ADD_X, 0);
    a.op(TAX, 0);
    a.op(LD_MEM, 0);
    a.jump(JEQ_K, 17, L("v4icmp_udp"), To::Next);
    a.jump(JEQ_K, 6, L("v4icmp_tcp"), L("drop"));
    a.label("v4icmp_udp");
    udp_ports(&mut a, LD_H_IND, 8, &f.udp_ports);
    a.label("v4icmp_tcp");
    quoted_tcp(&mut a, LD_H_IND, 8, &f.tcp_servers);

    // ---- IPv6 (no extension headers): fixed offsets.
    a.label("v6");
    a.op(LD_B_ABS, 6);
    a.jump(JEQ_K, 17, L("v6udp"), To::Next);
    a.jump(JEQ_K, 6, L("v6tcp"), To::Next);
    a.jump(JEQ_K, 58, L("v6icmp"), L("drop"));

    a.label("v6udp");
    udp_ports(&mut a, LD_H_ABS, 40, &f.udp_ports);

    a.label("v6tcp");
    any_port(&mut a, LD_H_ABS, 40, &f.tcp_ports);
    for (i, (ip, port)) in f.tcp_servers.iter().enumerate() {
        let IpAddr::V6(ip) = ip else { continue };
        let port = u32::from(*port);
        let words: Vec<u32> = ip
            .octets()
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (dst, next) = (format!("v6tcp_dst{i}"), format!("v6tcp_next{i}"));
        // Source = server?
        for (j, w) in words.iter().enumerate() {
            a.op(LD_W_ABS, 8 + 4 * j as u32);
            a.jump(JEQ_K, *w, To::Next, L(&dst));
        }
        a.op(LD_H_ABS, 40);
        a.jump(JEQ_K, port, L("accept"), L(&dst));
        a.label(dst.clone());
        for (j, w) in words.iter().enumerate() {
            a.op(LD_W_ABS, 24 + 4 * j as u32);
            a.jump(JEQ_K, *w, To::Next, L(&next));
        }
        a.op(LD_H_ABS, 42);
        a.jump(JEQ_K, port, L("accept"), L(&next));
        a.label(next);
    }
    a.jump(JEQ_K, 0, L("drop"), L("drop"));

    // ICMPv6 errors: destination unreachable (1), packet too big (2), time exceeded (3),
    // parameter problem (4); the quoted IPv6 header starts at 48.
    a.label("v6icmp");
    a.op(LD_B_ABS, 40);
    a.jump(JEQ_K, 1, L("v6icmperr"), To::Next);
    a.jump(JEQ_K, 2, L("v6icmperr"), To::Next);
    a.jump(JEQ_K, 3, L("v6icmperr"), To::Next);
    a.jump(JEQ_K, 4, L("v6icmperr"), L("drop"));
    a.label("v6icmperr");
    a.op(LD_B_ABS, 48 + 6);
    a.jump(JEQ_K, 17, L("v6icmp_udp"), To::Next);
    a.jump(JEQ_K, 6, L("v6icmp_tcp"), L("drop"));
    a.label("v6icmp_udp");
    udp_ports(&mut a, LD_H_ABS, 88, &f.udp_ports);
    a.label("v6icmp_tcp");
    quoted_tcp(&mut a, LD_H_ABS, 88, &f.tcp_servers);

    a.label("accept");
    a.op(RET_K, ACCEPT);
    a.label("drop");
    a.op(RET_K, 0);
    // The program only jumps forward and stays far below 255 instructions between a jump
    // and its target; should that ever change, accept nothing rather than everything.
    a.assemble().unwrap_or_else(|| {
        vec![libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        }]
    })
}

/// Accept if the 16-bit source or destination port at `base` (+0, +2) is one of `ports`;
/// else drop.
fn udp_ports(a: &mut Asm, load: u16, base: u32, ports: &[u16]) {
    for off in [0, 2] {
        a.op(load, base + off);
        for p in ports {
            a.jump(JEQ_K, u32::from(*p), L("accept"), To::Next);
        }
    }
    a.jump(JEQ_K, 0, L("drop"), L("drop"));
}

/// Accept if the 16-bit source or destination port at `base` (+0, +2) is one of `ports`;
/// else go on.
fn any_port(a: &mut Asm, load: u16, base: u32, ports: &[u16]) {
    if ports.is_empty() {
        return;
    }
    for off in [0, 2] {
        a.op(load, base + off);
        for p in ports {
            a.jump(JEQ_K, u32::from(*p), L("accept"), To::Next);
        }
    }
}

/// Accept a quoted TCP header at `base` whose destination port is a server's (we sent
/// the packet the error is about); else drop.
fn quoted_tcp(a: &mut Asm, load: u16, base: u32, servers: &[(IpAddr, u16)]) {
    a.op(load, base + 2);
    for (_, p) in servers {
        a.jump(JEQ_K, u32::from(*p), L("accept"), To::Next);
    }
    a.jump(JEQ_K, 0, L("drop"), L("drop"));
}

/// A filter that drops everything (used while the real one is not known yet).
pub fn drop_all() -> Vec<libc::sock_filter> {
    vec![libc::sock_filter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: 0,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the instructions `compile` uses, run on a packet
    /// that starts at its network header.
    fn run(prog: &[libc::sock_filter], ethertype: u16, pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0usize;
        let ld = |off: u32, size: usize| -> Option<u32> {
            if off == ancillary(libc::SKF_AD_PROTOCOL) {
                return Some(u32::from(ethertype));
            }
            let o = off as usize;
            let b = pkt.get(o..o + size)?;
            Some(b.iter().fold(0u32, |acc, v| (acc << 8) | u32::from(*v)))
        };
        for _ in 0..1000 {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => match ld(i.k, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_ABS => match ld(i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_ABS => match ld(i.k, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_IND => match ld(x + i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_IND => match ld(x + i.k, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LDX_B_MSH => match ld(i.k, 1) {
                    Some(v) => x = (v & 0xf) * 4,
                    None => return 0,
                },
                LD_MEM => a = mem[i.k as usize],
                ST_MEM => mem[i.k as usize] = a,
                ALU_AND_K => a &= i.k,
                ALU_LSH_K => a <<= i.k,
                ALU_ADD_X => a = a.wrapping_add(x),
                TAX => x = a,
                JEQ_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf });
                }
                JSET_K => {
                    pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                other => panic!("unknown opcode {other:#x}"),
            }
        }
        panic!("program did not end");
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    fn ports(sport: u16, dport: u16) -> Vec<u8> {
        let mut v = sport.to_be_bytes().to_vec();
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0; 16]);
        v
    }

    const ME: [u8; 4] = [10, 88, 0, 2];
    const SRV: [u8; 4] = [10, 88, 0, 1];

    fn filter() -> Vec<libc::sock_filter> {
        compile(&FlowFilter {
            udp_ports: vec![40000],
            tcp_servers: vec![(IpAddr::from(SRV), 443)],
            tcp_ports: Vec::new(),
        })
    }

    #[test]
    fn keeps_the_dns_flow_both_ways() {
        let f = filter();
        assert_ne!(run(&f, 0x0800, &ipv4(17, ME, SRV, &ports(40000, 53))), 0);
        assert_ne!(run(&f, 0x0800, &ipv4(17, SRV, ME, &ports(53, 40000))), 0);
        assert_eq!(run(&f, 0x0800, &ipv4(17, ME, SRV, &ports(40001, 53))), 0);
    }

    #[test]
    fn keeps_tcp_with_the_server_only() {
        let f = filter();
        assert_ne!(run(&f, 0x0800, &ipv4(6, ME, SRV, &ports(51000, 443))), 0);
        assert_ne!(run(&f, 0x0800, &ipv4(6, SRV, ME, &ports(443, 51000))), 0);
        assert_eq!(run(&f, 0x0800, &ipv4(6, ME, SRV, &ports(51000, 80))), 0);
        assert_eq!(
            run(&f, 0x0800, &ipv4(6, ME, [10, 88, 0, 9], &ports(51000, 443))),
            0
        );
        // No server yet: no TCP at all.
        let early = compile(&FlowFilter {
            udp_ports: vec![40000],
            tcp_servers: Vec::new(),
            tcp_ports: Vec::new(),
        });
        assert_eq!(
            run(&early, 0x0800, &ipv4(6, ME, SRV, &ports(51000, 443))),
            0
        );
    }

    #[test]
    fn drops_other_protocols_fragments_and_arp() {
        let f = filter();
        assert_eq!(run(&f, 0x0806, &[0; 28]), 0);
        let mut frag = ipv4(17, ME, SRV, &ports(40000, 53));
        frag[6] = 0x00;
        frag[7] = 0x10;
        assert_eq!(run(&f, 0x0800, &frag), 0);
        assert_eq!(run(&f, 0x0800, &ipv4(47, ME, SRV, &[0; 20])), 0);
    }

    #[test]
    fn keeps_icmp_errors_about_the_flows() {
        let f = filter();
        let quoted = ipv4(17, ME, SRV, &ports(40000, 53));
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted[..28]);
        assert_ne!(run(&f, 0x0800, &ipv4(1, SRV, ME, &icmp)), 0);
        let other = ipv4(17, ME, SRV, &ports(40001, 53));
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&other[..28]);
        assert_eq!(run(&f, 0x0800, &ipv4(1, SRV, ME, &icmp)), 0);
        let mut echo = vec![8, 0, 0, 0, 0, 0, 0, 0];
        echo.extend_from_slice(&quoted[..28]);
        assert_eq!(run(&f, 0x0800, &ipv4(1, SRV, ME, &echo)), 0);
        let tcp = ipv4(6, ME, SRV, &ports(51000, 443));
        let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&tcp[..28]);
        assert_ne!(run(&f, 0x0800, &ipv4(1, [10, 0, 0, 254], ME, &icmp)), 0);
    }

    #[test]
    fn tcp_ports_keep_any_address() {
        let f = compile(&FlowFilter {
            udp_ports: vec![53],
            tcp_servers: Vec::new(),
            tcp_ports: vec![443],
        });
        assert_ne!(
            run(&f, 0x0800, &ipv4(6, ME, [192, 0, 2, 9], &ports(51000, 443))),
            0
        );
        assert_ne!(
            run(&f, 0x0800, &ipv4(6, [192, 0, 2, 9], ME, &ports(443, 51000))),
            0
        );
        assert_eq!(
            run(&f, 0x0800, &ipv4(6, ME, [192, 0, 2, 9], &ports(51000, 22))),
            0
        );
        assert_ne!(run(&f, 0x0800, &ipv4(17, ME, SRV, &ports(40000, 53))), 0);
    }

    #[test]
    fn ipv6_flows() {
        let srv: std::net::Ipv6Addr = "fd00::1".parse().unwrap();
        let me: std::net::Ipv6Addr = "fd00::2".parse().unwrap();
        let f = compile(&FlowFilter {
            udp_ports: vec![40000],
            tcp_servers: vec![(IpAddr::V6(srv), 443)],
            tcp_ports: Vec::new(),
        });
        let v6 = |nh: u8, s: std::net::Ipv6Addr, d: std::net::Ipv6Addr, pl: &[u8]| {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(pl.len() as u16).to_be_bytes());
            p.extend_from_slice(&[nh, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(pl);
            p
        };
        assert_ne!(run(&f, 0x86dd, &v6(6, me, srv, &ports(50000, 443))), 0);
        assert_ne!(run(&f, 0x86dd, &v6(6, srv, me, &ports(443, 50000))), 0);
        assert_eq!(run(&f, 0x86dd, &v6(6, srv, me, &ports(444, 50000))), 0);
        assert_ne!(run(&f, 0x86dd, &v6(17, me, srv, &ports(40000, 53))), 0);
        assert_eq!(run(&f, 0x86dd, &v6(17, me, srv, &ports(40002, 53))), 0);
    }

    #[test]
    fn several_servers_after_a_redirect() {
        let other = [10, 88, 0, 3];
        let f = compile(&FlowFilter {
            udp_ports: vec![40000],
            tcp_servers: vec![(IpAddr::from(SRV), 443), (IpAddr::from(other), 8443)],
            tcp_ports: Vec::new(),
        });
        assert_ne!(run(&f, 0x0800, &ipv4(6, ME, SRV, &ports(51000, 443))), 0);
        assert_ne!(run(&f, 0x0800, &ipv4(6, other, ME, &ports(8443, 51001))), 0);
        assert_ne!(run(&f, 0x0800, &ipv4(6, ME, other, &ports(51001, 8443))), 0);
        assert_eq!(run(&f, 0x0800, &ipv4(6, ME, other, &ports(51001, 443))), 0);
        assert_eq!(run(&f, 0x0800, &ipv4(6, ME, SRV, &ports(51001, 8443))), 0);
    }

    #[test]
    fn drop_all_drops() {
        assert_eq!(
            run(&drop_all(), 0x0800, &ipv4(17, ME, SRV, &ports(1, 2))),
            0
        );
    }
}
