//! TLS over a TCP stream: records, handshake messages, names, and TLS 1.3 decryption.

pub(crate) mod conn;
pub(crate) mod crypto;
pub(crate) mod handshake;
pub(crate) mod hello;
pub(crate) mod ja4;
pub(crate) mod keylog;
pub(crate) mod names;
pub(crate) mod record;
pub(crate) mod tls12;
