//! TLS secrets learned from an NSS key log, matched to connections by client random.

use std::collections::HashMap;

use crate::tls::tls12::MASTER_SECRET_LEN;

/// A client random is 32 bytes.
pub(crate) type ClientRandom = [u8; 32];

/// At most this many key log entries are kept; later ones are ignored.
const MAX_ENTRIES: usize = 4096;
/// Secrets longer than this are ignored (TLS 1.3 secrets are 32 or 48 bytes, a TLS 1.2
/// master secret 48).
const MAX_SECRET: usize = 64;
/// Labels longer than this are ignored.
const MAX_LABEL: usize = 64;

/// One NSS key log line: `"{label} {hex(client_random)} {hex(secret)}\n"`, as rustls's
/// `KeyLogFile` writes it and as SSLKEYLOGFILE readers (Wireshark, tshark) expect.
pub fn key_log_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    format!(
        "{label} {} {}\n",
        hex::encode(client_random),
        hex::encode(secret)
    )
}

/// The TLS 1.3 traffic secrets, or the TLS 1.2 master secret, of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnSecrets {
    /// CLIENT_HANDSHAKE_TRAFFIC_SECRET.
    pub client_handshake: Option<Vec<u8>>,
    /// SERVER_HANDSHAKE_TRAFFIC_SECRET.
    pub server_handshake: Option<Vec<u8>>,
    /// CLIENT_TRAFFIC_SECRET_0.
    pub client_traffic: Option<Vec<u8>>,
    /// SERVER_TRAFFIC_SECRET_0.
    pub server_traffic: Option<Vec<u8>>,
    /// CLIENT_RANDOM: the TLS 1.2 master secret (48 bytes).
    pub master_secret: Option<Vec<u8>>,
}

impl ConnSecrets {
    /// The secret of `epoch` (1 handshake, 2 first application traffic secret) for the
    /// client's or the server's records.
    pub fn base(&self, client: bool, epoch: u8) -> Option<&[u8]> {
        let s = match (client, epoch) {
            (true, 1) => &self.client_handshake,
            (false, 1) => &self.server_handshake,
            (true, 2) => &self.client_traffic,
            (false, 2) => &self.server_traffic,
            _ => return None,
        };
        s.as_deref()
    }
}

/// A TLS 1.3 application-data record the TLS client already decrypted, so the dissector
/// shows it without decrypting it a second time (issue 13: "decode each TLS record once").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedRecord {
    /// ClientHello.random of the connection.
    pub client_random: [u8; 32],
    /// The record's number in the server's stream: 0 is the first record the server sent
    /// (the one with its ServerHello).
    pub index: u64,
    /// Length of the content: the TLSInnerPlaintext without its type and padding.
    pub len: usize,
    /// The HTTP start line the content begins with, if it does
    /// ([`http_start_line`](crate::http_start_line)).
    pub http: Option<String>,
}

/// Already-decrypted records kept for the dissector: a few hundred at most (the dissector
/// is at most a few records behind the TLS client); the oldest go first.
const MAX_DECRYPTED: usize = 512;

/// Every secret learned so far, by client random, plus the key log text.
#[derive(Debug, Default)]
pub(crate) struct SecretStore {
    by_random: HashMap<ClientRandom, ConnSecrets>,
    entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// Records the TLS client decrypted: content length and HTTP start line.
    decrypted: std::collections::BTreeMap<(ClientRandom, u64), (usize, Option<String>)>,
}

impl SecretStore {
    /// Learns that the TLS client decrypted `r`.
    pub fn add_decrypted(&mut self, r: DecryptedRecord) {
        self.decrypted
            .insert((r.client_random, r.index), (r.len, r.http));
        while self.decrypted.len() > MAX_DECRYPTED {
            self.decrypted.pop_first();
        }
    }

    /// What the TLS client found in record `index` of the server's stream of connection
    /// `random`, if it decrypted it: the content's length and its HTTP start line.
    pub fn decrypted(&self, random: &ClientRandom, index: u64) -> Option<&(usize, Option<String>)> {
        self.decrypted.get(&(*random, index))
    }

    /// Learns one key log entry; ignores malformed or excess ones.
    pub fn add(&mut self, label: &str, client_random: &[u8], secret: &[u8]) {
        let Ok(random) = ClientRandom::try_from(client_random) else {
            return;
        };
        if self.entries.len() >= MAX_ENTRIES
            || secret.len() > MAX_SECRET
            || label.len() > MAX_LABEL
            || !label
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return;
        }
        let known = self.by_random.entry(random).or_default();
        let slot = match label {
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Some(&mut known.client_handshake),
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Some(&mut known.server_handshake),
            "CLIENT_TRAFFIC_SECRET_0" => Some(&mut known.client_traffic),
            "SERVER_TRAFFIC_SECRET_0" => Some(&mut known.server_traffic),
            "CLIENT_RANDOM" if secret.len() == MASTER_SECRET_LEN => Some(&mut known.master_secret),
            _ => None,
        };
        if let Some(slot) = slot {
            *slot = Some(secret.to_vec());
        }
        self.entries
            .push((label.to_string(), client_random.to_vec(), secret.to_vec()));
    }

    /// Learns every well-formed line of NSS key log text (`LABEL <hex random> <hex
    /// secret>`; `#` comments and blank lines skipped); returns how many lines were
    /// learned and how many were not understood.
    pub fn add_text(&mut self, text: &str) -> (usize, usize) {
        let (mut learned, mut skipped) = (0, 0);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_ascii_whitespace();
            let parsed = match (words.next(), words.next(), words.next(), words.next()) {
                (Some(label), Some(random), Some(secret), None) => {
                    match (hex::decode(random), hex::decode(secret)) {
                        (Ok(r), Ok(s)) if r.len() == 32 && !s.is_empty() => Some((label, r, s)),
                        _ => None,
                    }
                }
                _ => None,
            };
            match parsed {
                Some((label, r, s)) => {
                    let before = self.entries.len();
                    self.add(label, &r, &s);
                    if self.entries.len() > before {
                        learned += 1;
                    } else {
                        skipped += 1;
                    }
                }
                None => skipped += 1,
            }
        }
        (learned, skipped)
    }

    /// The secrets known for a client random.
    pub fn get(&self, random: &ClientRandom) -> Option<&ConnSecrets> {
        self.by_random.get(random)
    }

    /// Every entry as NSS key log text, in the order learned.
    pub fn key_log(&self) -> String {
        self.entries
            .iter()
            .map(|(l, r, s)| key_log_line(l, r, s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_render() {
        let mut store = SecretStore::default();
        let random = [7u8; 32];
        store.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &random, &[1; 32]);
        store.add("SERVER_TRAFFIC_SECRET_0", &random, &[2; 48]);
        store.add("EXPORTER_SECRET", &random, &[3; 32]);
        store.add("CLIENT_TRAFFIC_SECRET_0", &[1, 2, 3], &[4; 32]); // bad random
        store.add("bad label", &random, &[4; 32]);
        let known = store.get(&random).expect("known");
        assert_eq!(known.base(true, 1), Some(&[1u8; 32][..]));
        assert_eq!(known.base(false, 2), Some(&[2u8; 48][..]));
        assert_eq!(known.base(true, 2), None);
        assert_eq!(known.master_secret, None);
        let text = store.key_log();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with(&format!(
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET {} {}\n",
            "07".repeat(32),
            "01".repeat(32)
        )));
    }

    #[test]
    fn tls12_master_secret() {
        let mut store = SecretStore::default();
        let text = format!(
            "# a comment\nCLIENT_RANDOM {} {}\nCLIENT_RANDOM {} {}\n",
            "0a".repeat(32),
            "5b".repeat(48),
            "0b".repeat(32),
            "5b".repeat(47),
        );
        assert_eq!(store.add_text(&text), (2, 0));
        let known = store.get(&[0x0a; 32]).expect("known");
        assert_eq!(known.master_secret.as_deref(), Some(&[0x5b; 48][..]));
        assert_eq!(known.base(true, 2), None);
        // A master secret of the wrong length is kept for the key log, not used.
        let short = store.get(&[0x0b; 32]).expect("entry");
        assert_eq!(short.master_secret, None);
        assert_eq!(store.key_log(), text.replace("# a comment\n", ""));
    }
}
