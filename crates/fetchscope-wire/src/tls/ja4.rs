//! JA4 and JA4S fingerprints of ClientHello and ServerHello messages.
