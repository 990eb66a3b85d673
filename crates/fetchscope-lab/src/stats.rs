//! [`ServerStats`]: counters of what the lab's servers did.

/// What the lab's servers have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// DNS queries received (UDP datagrams on port 53 and messages over TCP port 53).
    pub dns_queries: u64,
    /// DNS responses sent (answers, errors such as NXDOMAIN or FORMERR, decoys).
    pub dns_responses: u64,
    /// DNS datagrams dropped without an answer (too short, or not a query).
    pub dns_ignored: u64,
    /// DNS queries left unanswered on purpose (the `dns-silent` fault).
    pub dns_withheld: u64,
    /// DNS-over-TCP connections on port 53 that reached ESTABLISHED.
    pub dns_tcp_connections: u64,
    /// TCP segments to port 443 dropped on purpose (the `syn-silent` fault).
    pub segments_dropped: u64,
    /// TCP connections on port 443 that reached ESTABLISHED.
    pub connections_accepted: u64,
    /// TLS handshakes completed (directly on port 443 and in proxy tunnels).
    pub tls_handshakes: u64,
    /// ClientHellos answered with a fatal alert on purpose (the `tls-alert` fault).
    pub tls_alerts_sent: u64,
    /// HTTP responses sent in full (head, and body unless the request was `HEAD`), the
    /// proxy's included.
    pub requests_served: u64,
    /// HTTP bytes (response heads and bodies) handed to TLS.
    pub bytes_sent: u64,
    /// Connections closed because of a TLS or HTTP protocol error from the client.
    pub connection_errors: u64,
    /// TCP connections to the proxy (ports 3128 and 3129) that reached ESTABLISHED.
    pub proxy_connections: u64,
    /// `CONNECT` requests the proxy answered with `200 Connection established`.
    pub proxy_tunnels: u64,
    /// Absolute-form requests (`GET http://…`) the proxy answered from the lab's routes.
    pub proxy_forwarded: u64,
    /// Proxy requests answered with the proxy's own error (400, 403, 407, 502).
    pub proxy_refused: u64,
}
