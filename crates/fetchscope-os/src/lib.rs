//! fetchscope's OS-stack twin: the same fetch as the smoltcp machine (`fetchscope_flow::Fetch`) — same DNS
//! query, same TLS configuration and code, same HTTP request — but through the kernel's
//! UDP and TCP sockets, producing the same [`Event`](fetchscope_core::Event) stream so
//! every renderer works for both.
//!
//! The packets come from a capture on the interface that carries them: an `AF_PACKET`
//! socket with a classic BPF filter for the run's own flows, read with the kernel's
//! timestamps. No libpcap is needed to build or to run (see [`capture`]). Capturing needs
//! `CAP_NET_RAW`; without it [`OsFetch::new`] fails with [`OsError::Permission`], whose
//! message names the command that fixes it.
//!
//! The kernel's own view of the connection, `TCP_INFO`, is read after the handshake and
//! at the end ([`OsFetch::tcp_info_after_connect`], [`OsFetch::tcp_info_at_end`]), and
//! after every wake-up to follow the TCP state.
//!
//! ```no_run
//! # fn run(cfg: fetchscope_os::OsConfig) -> Result<(), fetchscope_os::OsError> {
//! let mut fetch = fetchscope_os::OsFetch::new(cfg)?;
//! while let Some(event) = fetch.next_event() {
//!     println!("{:>10.3} ms  {:?}", event.t_ms(), event.kind);
//! }
//! # Ok(()) }
//! ```
//!
//! Linux only.

pub mod bpf;
pub mod capture;
pub mod config;
mod connection;
pub mod diag;
mod dns;
pub mod error;
pub mod fetch;
pub mod packets;
pub mod proc_tcp;
pub mod route;
pub mod sys;
pub mod tcpinfo;
pub mod timeline;

pub use capture::check_permission;
pub use config::OsConfig;
pub use error::{OsError, SETCAP_HINT};
pub use fetch::OsFetch;
pub use tcpinfo::TcpInfo;
