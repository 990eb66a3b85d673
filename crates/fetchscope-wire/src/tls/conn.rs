//! One TLS connection over a TCP stream: record cutting per direction, handshake state,
//! and TLS 1.3 record decryption with epochs and record sequence numbers.

use crate::error::DecodeError;
use crate::http;
use crate::problem::{DecodeProblem, Layer, malformed};
use crate::tls::crypto::{RecordKey, Tls13Suite, split_inner_len};
use crate::tls::handshake::HandshakeBuffer;
use crate::tls::hello::{self, Facts};
use crate::tls::keylog::{ClientRandom, ConnSecrets, SecretStore};
use crate::tls::names;
use crate::tls::record::{HEADER_LEN, RecordHeader, TlsRecord};

/// TLS 1.3's version number.
const TLS13: u16 = 0x0304;
/// Record content types.
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Handshake message types that change a direction's keys.
const FINISHED: u8 = 20;
const KEY_UPDATE: u8 = 24;
/// Epochs of RFC 8446's key schedule as this module numbers them.
const EPOCH_HANDSHAKE: u8 = 1;
const EPOCH_APPLICATION: u8 = 2;

/// One direction (one sender) of a TLS connection.
#[derive(Debug, Default)]
struct TlsHalf {
    /// Stream bytes of an incomplete record (at most one record header + body).
    buf: Vec<u8>,
    /// Record framing lost: nothing more is decoded in this direction.
    lost: bool,
    /// Handshake-message reassembly.
    hs: HandshakeBuffer,
    /// Records from here on are protected (TLS 1.3: after ServerHello; TLS 1.2: after
    /// this side's ChangeCipherSpec).
    encrypted: bool,
    /// This side has finished its handshake (seen, or inferred without keys).
    handshake_done: bool,
    /// Key epoch of the next protected record (1 handshake, 2 application, +1 per KeyUpdate).
    epoch: u8,
    /// Record sequence number of the next protected record within `epoch`.
    seq: u64,
    /// Records this side sent so far (the next record's number in its stream).
    records: u64,
    /// Derived keys, at most the current and the next epoch's.
    keys: Vec<(u8, RecordKey)>,
}

impl TlsHalf {
    /// The record key of `epoch`, derived from the connection's secrets when first needed.
    fn key(
        &mut self,
        epoch: u8,
        client: bool,
        suite: &Tls13Suite,
        secrets: &ConnSecrets,
    ) -> Option<&RecordKey> {
        if let Some(i) = self.keys.iter().position(|(e, _)| *e == epoch) {
            return self.keys.get(i).map(|(_, k)| k);
        }
        let secret = match epoch {
            EPOCH_HANDSHAKE => secrets.base(client, EPOCH_HANDSHAKE)?.to_vec(),
            EPOCH_APPLICATION.. => {
                let mut s = secrets.base(client, EPOCH_APPLICATION)?.to_vec();
                for _ in EPOCH_APPLICATION..epoch {
                    s = suite.next_secret(&s)?;
                }
                s
            }
            _ => return None,
        };
        let key = RecordKey::derive(suite, &secret)?;
        if self.keys.len() >= 2 {
            self.keys.remove(0);
        }
        self.keys.push((epoch, key));
        self.keys.last().map(|(_, k)| k)
    }

    /// Moves to the next epoch (after Finished or KeyUpdate).
    fn next_epoch(&mut self) {
        self.epoch = self.epoch.saturating_add(1);
        self.seq = 0;
        self.hs.clear();
    }
}

/// The result of trying to decrypt one record.
enum Opened {
    /// Decrypted: the TLSInnerPlaintext is in the buffer given.
    Plain,
    /// No secret known for this record.
    NoKey,
    /// Keys were known but none authenticated the record.
    Failed,
}

/// A TLS connection's decoding state.
#[derive(Debug)]
pub(crate) struct TlsConn {
    halves: [TlsHalf; 2],
    /// Which side (sender index 0/1) is the TLS client.
    client_side: Option<usize>,
    /// ClientHello.random, the key to the secrets.
    random: Option<ClientRandom>,
    /// The negotiated version, once a ServerHello was seen.
    version: Option<u16>,
    /// The negotiated cipher suite.
    suite: Option<u16>,
    /// Where records are decrypted (reused: a transfer's records need no new buffer).
    plain: Vec<u8>,
    /// Where decrypted application data goes while a caller collects it (replay's HTTP
    /// reading); `None`: not collected.
    pub(crate) app_out: Option<Vec<u8>>,
}

impl TlsConn {
    /// A connection whose client is probably `client_side` (the TCP SYN sender); the
    /// ClientHello's sender overrides it.
    pub fn new(client_side: Option<usize>) -> Self {
        TlsConn {
            halves: Default::default(),
            client_side,
            random: None,
            version: None,
            suite: None,
            plain: Vec::new(),
            app_out: None,
        }
    }

    fn tls13(&self) -> bool {
        self.version == Some(TLS13)
    }

    /// Adds in-order stream bytes from `side`; every record they complete goes to `records`.
    pub fn feed(
        &mut self,
        side: usize,
        bytes: &[u8],
        secrets: &SecretStore,
        records: &mut Vec<TlsRecord>,
        problems: &mut Vec<DecodeProblem>,
    ) {
        let Some(half) = self.halves.get_mut(side) else {
            return;
        };
        if half.lost {
            return;
        }
        let mut buf = std::mem::take(&mut half.buf);
        buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut lost = false;
        while let Some(raw) = buf.get(start..start + HEADER_LEN) {
            let raw: [u8; HEADER_LEN] = raw.try_into().unwrap_or_default();
            let header = match RecordHeader::parse(&raw) {
                Ok(h) => h,
                Err(e) => {
                    problems.push(DecodeProblem::TlsFramingLost { error: e });
                    lost = true;
                    break;
                }
            };
            let end = start + HEADER_LEN + usize::from(header.len);
            let Some(body) = buf.get(start + HEADER_LEN..end) else {
                break;
            };
            records.push(self.record(side, header, &raw, body, secrets, problems));
            start = end;
        }
        if let Some(half) = self.halves.get_mut(side) {
            if lost {
                half.lost = true;
            } else {
                buf.drain(..start);
                half.buf = buf;
            }
        }
    }

    /// Bytes held in record and handshake buffers.
    pub fn buffered(&self) -> usize {
        self.halves
            .iter()
            .map(|h| h.buf.len() + h.hs.buffered())
            .sum()
    }

    /// Stops decoding `side` after stream bytes went missing.
    pub fn lose(&mut self, side: usize) {
        if let Some(half) = self.halves.get_mut(side) {
            half.lost = true;
            half.buf = Vec::new();
        }
    }

    /// Decodes one complete record from `side`.
    fn record(
        &mut self,
        side: usize,
        header: RecordHeader,
        raw: &[u8; HEADER_LEN],
        body: &[u8],
        secrets: &SecretStore,
        problems: &mut Vec<DecodeProblem>,
    ) -> TlsRecord {
        let mut rec = header.report();
        let encrypted = self.halves.get(side).is_some_and(|h| h.encrypted);
        let index = self.halves.get_mut(side).map_or(0, |h| {
            h.records += 1;
            h.records - 1
        });
        if self.tls13() && encrypted && header.kind == APPLICATION_DATA {
            if self.already_decrypted(side, index, secrets, &mut rec) {
                return rec;
            }
            self.protected13(side, raw, body, secrets, &mut rec, problems);
        } else if !self.tls13() && encrypted && header.kind != CHANGE_CIPHER_SPEC {
            self.protected12(side, header.kind, &mut rec);
        } else {
            self.plaintext(side, header.kind, body, &mut rec, problems);
        }
        rec
    }

    fn plaintext(
        &mut self,
        side: usize,
        kind: u8,
        body: &[u8],
        rec: &mut TlsRecord,
        problems: &mut Vec<DecodeProblem>,
    ) {
        match kind {
            HANDSHAKE => {
                self.handshake(side, body, rec, problems);
            }
            CHANGE_CIPHER_SPEC => {
                // TLS 1.2 and earlier: this side's records are protected from now on.
                if self.version.is_some_and(|v| v < TLS13)
                    && let Some(half) = self.halves.get_mut(side)
                {
                    half.encrypted = true;
                }
            }
            ALERT => alert(body, rec, problems),
            APPLICATION_DATA => {
                // Application data is never plaintext; the handshake was not seen.
                rec.encrypted = true;
                rec.decrypted = Some(false);
                rec.inner = Some("application_data");
            }
            _ => {}
        }
    }

    /// Feeds handshake bytes (plaintext or decrypted) from `side`; returns the types of the
    /// messages completed.
    fn handshake(
        &mut self,
        side: usize,
        bytes: &[u8],
        rec: &mut TlsRecord,
        problems: &mut Vec<DecodeProblem>,
    ) -> Vec<u8> {
        let Some(half) = self.halves.get_mut(side) else {
            return Vec::new();
        };
        let done = half.hs.push(bytes);
        if let Some(e) = &done.problem {
            problems.push(malformed(Layer::TlsHandshake, e));
        }
        let mut kinds = Vec::new();
        for msg in &done.messages {
            kinds.push(*msg.first().unwrap_or(&0));
            match hello::describe(msg, self.tls13(), rec) {
                Ok(Facts::ClientHello { random }) => {
                    self.client_side = Some(side);
                    self.random = Some(random);
                }
                Ok(Facts::ServerHello {
                    version,
                    suite,
                    retry,
                }) => {
                    if self.client_side.is_none() {
                        self.client_side = Some(1 - side.min(1));
                    }
                    if !retry {
                        self.server_hello(version, suite);
                    }
                }
                Ok(Facts::Nothing) => {}
                Err(e) => problems.push(malformed(Layer::TlsHandshake, &e)),
            }
        }
        kinds
    }

    fn server_hello(&mut self, version: u16, suite: u16) {
        self.version = Some(version);
        self.suite = Some(suite);
        if version == TLS13 {
            for half in &mut self.halves {
                half.encrypted = true;
                half.epoch = EPOCH_HANDSHAKE;
                half.seq = 0;
                half.keys.clear();
                half.hs.clear();
            }
        }
    }

    /// A server's application-data record the TLS client already decrypted (record
    /// `index` of its stream): shown from what the client found, its sequence number
    /// counted, and true; false when the client has not reported it.
    fn already_decrypted(
        &mut self,
        side: usize,
        index: u64,
        secrets: &SecretStore,
        rec: &mut TlsRecord,
    ) -> bool {
        let server = self.client_side.is_some_and(|c| c != side);
        let Some(half) = self.halves.get_mut(side) else {
            return false;
        };
        if !server || half.epoch < EPOCH_APPLICATION {
            return false;
        }
        let known = self
            .random
            .as_ref()
            .and_then(|r| secrets.decrypted(r, index));
        let Some((len, http)) = known else {
            return false;
        };
        half.seq = half.seq.saturating_add(1);
        rec.encrypted = true;
        rec.decrypted = Some(true);
        rec.inner = Some(names::content_type(APPLICATION_DATA));
        rec.app_len = Some(*len);
        rec.http.clone_from(http);
        true
    }

    /// A TLS 1.3 protected record: decrypt when the secrets are known, else label it from
    /// the handshake state.
    fn protected13(
        &mut self,
        side: usize,
        raw: &[u8; HEADER_LEN],
        body: &[u8],
        secrets: &SecretStore,
        rec: &mut TlsRecord,
        problems: &mut Vec<DecodeProblem>,
    ) {
        rec.encrypted = true;
        let epoch = self.halves.get(side).map_or(0, |h| h.epoch);
        let mut plain = std::mem::take(&mut self.plain);
        match self.open(side, raw, body, secrets, &mut plain) {
            Opened::Plain => {
                rec.decrypted = Some(true);
                match split_inner_len(&plain) {
                    Some((kind, len)) => {
                        let content = plain.get(..len).unwrap_or_default();
                        self.inner13(side, kind, content, rec, problems);
                    }
                    None => problems.push(malformed(
                        Layer::TlsRecord,
                        &DecodeError::field("inner content type", "missing (all padding)"),
                    )),
                }
            }
            outcome => {
                if matches!(outcome, Opened::Failed) {
                    problems.push(DecodeProblem::NotDecrypted { epoch });
                }
                rec.decrypted = Some(false);
                let done = self.halves.get(side).is_some_and(|h| h.handshake_done);
                rec.inner = Some(if done {
                    "application_data"
                } else {
                    "handshake"
                });
            }
        }
        self.plain = plain;
        if self.client_side == Some(side) {
            // The client's first protected record ends its handshake (Finished), and the
            // server finished before it.
            for half in &mut self.halves {
                half.handshake_done = true;
            }
        }
    }

    /// The content of a decrypted TLS 1.3 record.
    fn inner13(
        &mut self,
        side: usize,
        kind: u8,
        content: &[u8],
        rec: &mut TlsRecord,
        problems: &mut Vec<DecodeProblem>,
    ) {
        rec.inner = Some(names::content_type(kind));
        match kind {
            HANDSHAKE => {
                for k in self.handshake(side, content, rec, problems) {
                    let Some(half) = self.halves.get_mut(side) else {
                        continue;
                    };
                    if k == FINISHED && half.epoch == EPOCH_HANDSHAKE {
                        half.handshake_done = true;
                        half.next_epoch();
                    } else if k == KEY_UPDATE && half.epoch >= EPOCH_APPLICATION {
                        half.next_epoch();
                    }
                }
            }
            ALERT => alert(content, rec, problems),
            APPLICATION_DATA => {
                rec.app_len = Some(content.len());
                rec.http = http::start_line(content);
                if let Some(out) = &mut self.app_out {
                    out.extend_from_slice(content);
                }
            }
            _ => {}
        }
    }

    /// Decrypts a record from `side` with the current epoch's key, else the next epoch's
    /// (robust when a Finished or KeyUpdate went unseen).
    fn open(
        &mut self,
        side: usize,
        raw: &[u8; HEADER_LEN],
        body: &[u8],
        secrets: &SecretStore,
        plain: &mut Vec<u8>,
    ) -> Opened {
        let client = self.client_side == Some(side);
        let suite = self.suite.and_then(Tls13Suite::from_id);
        let known = self.random.as_ref().and_then(|r| secrets.get(r));
        let Some(half) = self.halves.get_mut(side) else {
            return Opened::NoKey;
        };
        let (Some(suite), Some(known)) = (suite, known) else {
            half.seq = half.seq.saturating_add(1);
            return Opened::NoKey;
        };
        let mut tried = false;
        let current = (half.epoch, half.seq);
        for (epoch, seq) in [current, (half.epoch.saturating_add(1), 0)] {
            let opened = match half.key(epoch, client, &suite, known) {
                Some(key) => {
                    tried = true;
                    key.open_into(seq, raw, body, plain)
                }
                None => false,
            };
            if opened {
                if epoch != half.epoch {
                    half.hs.clear();
                    if epoch > EPOCH_HANDSHAKE {
                        half.handshake_done = true;
                    }
                }
                half.epoch = epoch;
                half.seq = seq.saturating_add(1);
                return Opened::Plain;
            }
        }
        half.seq = half.seq.saturating_add(1);
        if tried { Opened::Failed } else { Opened::NoKey }
    }

    /// A TLS 1.2 (or earlier) protected record: no decryption, labels from the state.
    fn protected12(&mut self, side: usize, kind: u8, rec: &mut TlsRecord) {
        rec.encrypted = true;
        rec.decrypted = Some(false);
        let Some(half) = self.halves.get_mut(side) else {
            return;
        };
        if kind == HANDSHAKE && !half.handshake_done {
            rec.inner = Some("handshake");
            rec.message = Some("Finished".into());
            rec.messages = vec!["Finished".into()];
            half.handshake_done = true;
        } else {
            rec.inner = Some(names::content_type(kind));
        }
    }
}

/// An alert's level and description (the first one, if several are packed together).
fn alert(body: &[u8], rec: &mut TlsRecord, problems: &mut Vec<DecodeProblem>) {
    match body {
        [level, desc, ..] => {
            rec.alert_level = Some(names::alert_level(*level));
            rec.alert = Some(names::alert(*desc));
        }
        _ => problems.push(malformed(
            Layer::TlsAlert,
            &DecodeError::Truncated {
                what: "alert",
                have: body.len(),
                need: 2,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, version: u16, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind];
        r.extend_from_slice(&version.to_be_bytes());
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn records_split_and_joined() {
        let mut conn = TlsConn::new(Some(0));
        let secrets = SecretStore::default();
        let mut stream = record(ALERT, 0x0303, &[1, 0]);
        stream.extend(record(ALERT, 0x0303, &[2, 40]));
        let mut records = Vec::new();
        let mut problems = Vec::new();
        conn.feed(0, &stream[..4], &secrets, &mut records, &mut problems);
        assert!(records.is_empty());
        conn.feed(0, &stream[4..9], &secrets, &mut records, &mut problems);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].alert.as_deref(), Some("close_notify"));
        conn.feed(0, &stream[9..], &secrets, &mut records, &mut problems);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].alert_level.as_deref(), Some("fatal"));
        assert_eq!(records[1].alert.as_deref(), Some("handshake_failure"));
        assert!(problems.is_empty());
    }

    #[test]
    fn garbage_stops_the_direction_only() {
        let mut conn = TlsConn::new(Some(0));
        let secrets = SecretStore::default();
        let mut records = Vec::new();
        let mut problems = Vec::new();
        conn.feed(
            0,
            b"GET / HTTP/1.1\r\n",
            &secrets,
            &mut records,
            &mut problems,
        );
        assert_eq!(problems.len(), 1);
        assert!(matches!(
            &problems[..],
            [DecodeProblem::TlsFramingLost {
                error: DecodeError::BadField {
                    field: "record type",
                    ..
                }
            }]
        ));
        assert!(
            problems[0]
                .to_string()
                .starts_with("malformed TLS record: record type 0x47")
        );
        conn.feed(
            0,
            &record(ALERT, 0x0303, &[1, 0]),
            &secrets,
            &mut records,
            &mut problems,
        );
        assert!(records.is_empty());
        conn.feed(
            1,
            &record(ALERT, 0x0303, &[1, 0]),
            &secrets,
            &mut records,
            &mut problems,
        );
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn tls12_labels_after_change_cipher_spec() {
        let mut conn = TlsConn::new(Some(0));
        conn.version = Some(0x0303);
        let secrets = SecretStore::default();
        let mut records = Vec::new();
        let mut problems = Vec::new();
        let mut stream = record(CHANGE_CIPHER_SPEC, 0x0303, &[1]);
        stream.extend(record(HANDSHAKE, 0x0303, &[0xee; 40]));
        stream.extend(record(APPLICATION_DATA, 0x0303, &[0xee; 60]));
        conn.feed(0, &stream, &secrets, &mut records, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(records[0].record, "change_cipher_spec");
        assert!(!records[0].encrypted);
        assert_eq!(records[1].message.as_deref(), Some("Finished"));
        assert_eq!(records[1].inner, Some("handshake"));
        assert!(records[1].encrypted);
        assert_eq!(records[2].inner, Some("application_data"));
    }
}
