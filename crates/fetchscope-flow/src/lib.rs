//! fetchscope's fetch machine: DNS, TCP, TLS and HTTP over a smoltcp stack, hand-driven
//! and pulled one event at a time.

pub mod http;
