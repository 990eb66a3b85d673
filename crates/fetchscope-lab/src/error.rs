//! [`LabError`]: why the built-in lab could not be set up.

/// Why the built-in lab could not be set up. Nothing the client sends produces one of
/// these: bad input only closes the connection it arrived on.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A configuration value is out of range.
    #[error("invalid lab configuration: {0}")]
    Config(String),
    /// Generating the lab's CA or server certificate failed.
    #[error("generating the lab's certificates failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS server configuration was rejected by rustls.
    #[error("setting up the lab's TLS server failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The DNS server's UDP socket could not be bound.
    #[error("binding the lab's DNS server to UDP port 53 failed: {0}")]
    DnsBind(#[from] smoltcp::socket::udp::BindError),
    /// The DNS server's TCP listening socket could not be opened.
    #[error("listening on TCP port 53 in the lab failed: {0}")]
    DnsTcpListen(smoltcp::socket::tcp::ListenError),
    /// An HTTPS listening socket could not be opened.
    #[error("listening on TCP port 443 in the lab failed: {0}")]
    HttpsListen(#[from] smoltcp::socket::tcp::ListenError),
}
