//! fetchscope's fetch machine: DNS, TCP, TLS and HTTP over a smoltcp stack, hand-driven
//! and pulled one event at a time.
//!
//! ```no_run
//! # fn run(cfg: fetchscope_flow::FetchConfig, link: impl fetchscope_net::Link) {
//! let mut fetch = fetchscope_flow::Fetch::new(cfg, link).expect("set-up");
//! while let Some(event) = fetch.next_event() {
//!     println!("{:>10.3} ms  {:?}", event.t_ms(), event.kind);
//! }
//! # }
//! ```

pub mod certinfo;
pub mod config;
pub mod dns;
pub mod error;
pub mod event;
pub mod fetch;
pub mod http;
pub mod timing;
pub mod tls;

pub use config::{FetchConfig, ResolveOverride};
pub use error::{FailureClass, FetchError};
pub use event::{Event, EventKind, Phase, Summary};
pub use fetch::Fetch;
pub use http::default_user_agent;
