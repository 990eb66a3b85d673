//! The pull API: run a fetch in the built-in lab, print each event as it comes, and look at
//! the whole state at the moment the SYN has gone out.
//!
//! Run it with `cargo run -p fetchscope-flow --example pull`.

use std::sync::Arc;

use fetchscope_core::{EventKind, TcpState};

use fetchscope_core::Randomness;
use fetchscope_flow::{Fetch, FetchConfig};
use fetchscope_lab::{Lab, LabConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The built-in lab: a DNS server and an HTTPS server on their own smoltcp interface,
    // on a virtual clock. Fix the seed and every run prints the same thing.
    let randomness = Randomness::new(Some(7));
    let lab = Lab::new(LabConfig {
        randomness,
        ..LabConfig::default()
    })?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(lab.ca_certificate())?;
    let url = url::Url::parse("https://www.example.test/")?;
    let mut cfg = FetchConfig::new(url, vec![lab.client_cidr()], Arc::new(roots));
    cfg.gateways = vec![lab.client_gateway()];
    cfg.spec.dns_servers = vec![lab.dns_server()];
    cfg.spec.randomness = randomness;
    cfg.epoch = lab.epoch();

    let mut fetch = Fetch::new(cfg, lab)?;
    // A snapshot per event, as of that event (what `fetchscope step` shows at a pause).
    fetch.keep_snapshots(true);
    while let Some(event) = fetch.next_event() {
        match &event.kind {
            EventKind::Packet(p) => {
                println!("{:>10.3} ms  {:?}  {}", event.t_ms(), p.dir, p.summary)
            }
            EventKind::TcpState(s) => {
                println!("{:>10.3} ms  TCP {} → {}", event.t_ms(), s.from, s.to);
                if s.to == TcpState::SynSent {
                    let snap = fetch.snapshot();
                    println!("            next: {}", snap.next);
                }
            }
            EventKind::Done(d) => {
                println!(
                    "done: HTTP {} · {} body bytes · sha256 {}",
                    d.status, d.body_bytes, d.body_sha256
                );
            }
            EventKind::Error(e) => println!("failed in {}: {}", e.phase, e.message),
            _ => {}
        }
    }
    Ok(())
}
