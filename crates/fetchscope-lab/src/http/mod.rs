//! The lab's HTTP/1.1 server logic, independent of TLS and TCP: parse a request head,
//! pick a route, describe the response and produce its bytes as the connection drains.

mod coding;
mod date;
mod pattern;
mod request;
mod response;
mod routes;

pub(crate) use date::imf_fixdate;
pub use pattern::{MAX_GENERATED_BYTES, fill_generated, generated_byte};
pub(crate) use request::{MAX_HEAD_LEN, ParseOutcome, parse_request};
pub(crate) use response::ResponseStream;
pub(crate) use routes::{RouteContext, respond, respond_error};

/// The `Server` header value, `fetchscope-lab/<version>`.
pub const SERVER_HEADER: &str = concat!("fetchscope-lab/", env!("CARGO_PKG_VERSION"));
