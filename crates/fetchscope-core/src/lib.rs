//! fetchscope's protocol core: everything a fetch does that does not depend on which
//! network stack carries it — DNS messages and the stub resolver's rules, TLS (rustls,
//! unbuffered), HTTP/1.1, redirects, timings, errors with the advice they give, and the
//! [`Event`] stream every renderer reads.
//!
//! Nothing here sends a packet, opens a socket or reads a clock: the drivers do
//! (`fetchscope-flow` over smoltcp, `fetchscope-os` over the kernel's sockets) and hand
//! the core what happened, with the time it happened on the core's own [`Instant`].
//! `cargo tree -p fetchscope-core -e normal` shows no network stack.

#![forbid(unsafe_code)]

pub mod advice;
pub mod certinfo;
pub mod dns;
pub mod error;
pub mod event;
pub mod fault;
pub mod http;
pub mod packets;
pub mod proxy;
pub mod random;
pub mod recovery;
pub mod redirects;
pub mod replay;
pub mod session;
pub mod spec;
pub mod tcp_state;
pub mod time;
pub mod timing;
pub mod tls;

pub use error::{FailureClass, FetchError};
pub use event::{Event, EventKind, Phase, Summary};
pub use http::default_user_agent;
pub use random::Randomness;
pub use spec::{FetchSpec, ResolveOverride, address_without_dns};
pub use tcp_state::TcpState;
pub use time::Instant;
