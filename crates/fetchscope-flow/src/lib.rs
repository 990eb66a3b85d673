//! fetchscope's fetch machine over a smoltcp stack: DNS, TCP, TLS and HTTP, hand-driven
//! and pulled one event at a time. The protocols themselves (DNS messages, TLS, HTTP,
//! redirects, timings, the events) are `fetchscope_core`'s; this crate drives smoltcp.
//!
//! The machine is pulled: [`Fetch::next_event`] runs it until something happens and
//! returns that one [`Event`](fetchscope_core::Event); nothing happens between calls (in the built-in lab not even
//! time passes), so a caller can print, step, pause or stop at any event. With
//! [`Fetch::keep_snapshots`], [`Fetch::snapshot`] describes the state as of the last event
//! returned: the TCP socket as smoltcp exposes it and as the packets show it, the TLS
//! stage, the HTTP progress, and what happens next.
//!
//! ```
//! use std::sync::Arc;
//! use fetchscope_core::{EventKind, TcpState};
//! use fetchscope_flow::{Fetch, FetchConfig};
//! use fetchscope_lab::{Lab, LabConfig};
//!
//! let lab = Lab::new(LabConfig::default()).unwrap();
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(lab.ca_certificate()).unwrap();
//! let url = url::Url::parse("https://www.example.test/").unwrap();
//! let mut cfg = FetchConfig::new(url, vec![lab.client_cidr()], Arc::new(roots));
//! cfg.gateways = vec![lab.client_gateway()];
//! cfg.spec.dns_servers = vec![lab.dns_server()];
//! cfg.epoch = lab.epoch();
//!
//! let mut fetch = Fetch::new(cfg, lab).unwrap();
//! fetch.keep_snapshots(true);
//! let (mut syn_sent, mut waited_for_syn_ack) = (false, false);
//! while let Some(event) = fetch.next_event() {
//!     match &event.kind {
//!         EventKind::TcpState(s) if s.to == TcpState::SynSent => syn_sent = true,
//!         // The SYN's own packet event: from now on the machine waits for the SYN-ACK.
//!         EventKind::Packet(_) if syn_sent && !waited_for_syn_ack => {
//!             assert!(fetch.snapshot().next.contains("SYN-ACK"));
//!             waited_for_syn_ack = true;
//!         }
//!         _ => {}
//!     }
//! }
//! assert!(waited_for_syn_ack);
//! assert!(matches!(fetch.result(), Some(Ok(summary)) if summary.status == 200));
//! ```
//!
//! `examples/pull.rs` is the same as a program: `cargo run -p fetchscope-flow --example pull`.

pub mod config;
pub mod fetch;
mod stack_state;

pub use config::FetchConfig;
pub use fetch::Fetch;
