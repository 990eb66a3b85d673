//! [`ServerStats`]: counters of what the lab's servers did.

/// What the lab's servers have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// DNS datagrams received on UDP port 53.
    pub dns_queries: u64,
    /// DNS responses sent (answers and errors such as NXDOMAIN or FORMERR).
    pub dns_responses: u64,
    /// DNS datagrams dropped without an answer (too short, or not a query).
    pub dns_ignored: u64,
    /// TCP connections on port 443 that reached ESTABLISHED.
    pub connections_accepted: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// HTTP responses sent in full (head, and body unless the request was `HEAD`).
    pub requests_served: u64,
    /// HTTP bytes (response heads and bodies) handed to TLS.
    pub bytes_sent: u64,
    /// Connections closed because of a TLS or HTTP protocol error from the client.
    pub connection_errors: u64,
}
