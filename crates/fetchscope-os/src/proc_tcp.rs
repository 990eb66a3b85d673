//! The kernel's socket table (`/proc/net/tcp`, `/proc/net/tcp6`): the state of a
//! connection after our socket has let go of it (a time-wait socket has no descriptor).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(a, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            // Four native-endian 32-bit words.
            let mut b = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The Linux `TCP_*` state number of the connection `local` → `remote` in `table` (the
/// text of `/proc/net/tcp` or `tcp6`).
fn find(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u8> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let l = parse_addr(f.get(1)?)?;
        let r = parse_addr(f.get(2)?)?;
        (l == local && r == remote).then(|| u8::from_str_radix(f.get(3)?, 16).ok())?
    })
}

/// The state of the connection `local` → `remote` in this network namespace's table.
pub fn state(local: SocketAddr, remote: SocketAddr) -> Option<u8> {
    let file = if local.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    find(&std::fs::read_to_string(file).ok()?, local, remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_time_wait_entry() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n\
   1: 0200580A:C350 0100580A:01BB 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000\n";
        let l: SocketAddr = "10.88.0.2:50000".parse().unwrap();
        let r: SocketAddr = "10.88.0.1:443".parse().unwrap();
        assert_eq!(find(table, l, r), Some(6));
        assert_eq!(find(table, r, l), None);
    }

    #[test]
    fn sees_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert_eq!(
            state(c.local_addr().unwrap(), c.peer_addr().unwrap()),
            Some(1)
        );
    }
}
