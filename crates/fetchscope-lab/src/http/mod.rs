//! The lab's HTTP/1.1 server logic, independent of TLS and TCP: read a request (head and
//! body), pick a route, describe the response and produce its bytes as the connection
//! drains.

mod body;
mod coding;
mod date;
mod echo;
mod pattern;
mod reader;
mod request;
mod response;
mod routes;
#[cfg(test)]
mod server_tests;
mod urlencoded;

pub(crate) use body::MAX_BODY_LEN;
pub(crate) use date::imf_fixdate;
pub(crate) use echo::basic_credentials;
pub use pattern::{MAX_GENERATED_BYTES, fill_generated, generated_byte};
pub(crate) use reader::{Incoming, RequestReader};
pub(crate) use request::{MAX_HEAD_LEN, Request};
#[cfg(test)]
pub(crate) use request::{ParseOutcome, parse_request};
pub(crate) use response::{Response, ResponseStream};
pub(crate) use routes::{RouteContext, html_error, respond, respond_error};

/// The `Server` header value, `fetchscope-lab/<version>`.
pub const SERVER_HEADER: &str = concat!("fetchscope-lab/", env!("CARGO_PKG_VERSION"));
