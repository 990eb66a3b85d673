//! Choosing the DNS server for `--tun` runs when `--dns` is not given.
//!
//! The first usable `nameserver` of /etc/resolv.conf is used. A loopback stub such as
//! systemd-resolved's 127.0.0.53 lives inside the host's own network stack, which
//! fetchscope's userspace stack cannot reach through a TUN device; then the upstream
//! servers in /run/systemd/resolve/resolv.conf are used when that file exists.

use std::net::IpAddr;
use std::path::Path;

/// Where the system's resolver configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of upstream servers.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// The `nameserver` addresses of a resolv.conf text, in order.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => {
                    // Drop an IPv6 zone ("fe80::1%eth0") — not usable from the TUN.
                    addr.split('%').next().and_then(|a| a.parse().ok())
                }
                _ => None,
            }
        })
        .collect()
}

/// Picks the DNS servers for a TUN run, or explains why none can be used.
pub fn pick(resolv_conf: &Path, systemd_conf: &Path) -> Result<Vec<IpAddr>, String> {
    let text = std::fs::read_to_string(resolv_conf).map_err(|e| {
        format!(
            "cannot read {} ({e}); pass the DNS server with --dns IP",
            resolv_conf.display()
        )
    })?;
    let all = nameservers(&text);
    let usable: Vec<IpAddr> = all.iter().copied().filter(|a| !a.is_loopback()).collect();
    if !usable.is_empty() {
        return Ok(usable);
    }
    if let Some(stub) = all.first() {
        if let Ok(up) = std::fs::read_to_string(systemd_conf) {
            let upstream: Vec<IpAddr> = nameservers(&up)
                .into_iter()
                .filter(|a| !a.is_loopback())
                .collect();
            if !upstream.is_empty() {
                return Ok(upstream);
            }
        }
        return Err(format!(
            "the system's DNS server {stub} (from {}) is a loopback stub inside this host, \
             which fetchscope's own stack cannot reach through the TUN device; pass a real \
             DNS server with --dns IP (e.g. your router's address)",
            resolv_conf.display()
        ));
    }
    Err(format!(
        "{} names no DNS server; pass one with --dns IP",
        resolv_conf.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tempdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("fsc-resolv-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn parses_nameserver_lines() {
        let ns = nameservers(
            "# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver bad\n",
        );
        assert_eq!(
            ns,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn loopback_stub_falls_back_to_systemd_upstreams() {
        let d = tempdir("stub");
        let rc = write(&d, "resolv.conf", "nameserver 127.0.0.53\n");
        let sd = write(&d, "sd.conf", "nameserver 192.0.2.53\n");
        assert_eq!(
            pick(&rc, &sd).unwrap(),
            vec!["192.0.2.53".parse::<IpAddr>().unwrap()]
        );
        let missing = d.join("nope");
        let err = pick(&rc, &missing).unwrap_err();
        assert!(err.contains("127.0.0.53") && err.contains("--dns"), "{err}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn usable_servers_win() {
        let d = tempdir("usable");
        let rc = write(
            &d,
            "resolv.conf",
            "nameserver 127.0.0.1\nnameserver 10.1.1.1\n",
        );
        assert_eq!(
            pick(&rc, &d.join("x")).unwrap(),
            vec!["10.1.1.1".parse::<IpAddr>().unwrap()]
        );
        let empty = write(&d, "empty.conf", "search lan\n");
        assert!(
            pick(&empty, &d.join("x"))
                .unwrap_err()
                .contains("no DNS server")
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
