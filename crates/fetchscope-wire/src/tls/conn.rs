//! One TLS connection over a TCP stream: record cutting per direction, handshake state,
//! TLS 1.3 record decryption with epochs and record sequence numbers, and TLS 1.2 AEAD
//! record decryption from the CLIENT_RANDOM master secret.

use crate::error::DecodeError;
use crate::http;
use crate::problem::{DecodeProblem, Layer, malformed};
use crate::tls::crypto::{RecordKey, Tls13Suite, split_inner_len};
use crate::tls::handshake::HandshakeBuffer;
use crate::tls::hello::{self, Facts};
use crate::tls::keylog::{ClientRandom, ConnSecrets, SecretStore};
use crate::tls::names;
use crate::tls::record::{HEADER_LEN, RecordHeader, TlsRecord};
use crate::tls::tls12::{Tls12Key, Tls12Suite};

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
    /// Record sequence number of the next protected record within `epoch` (TLS 1.2:
    /// since this side's ChangeCipherSpec).
    seq: u64,
    /// Records this side sent so far (the next record's number in its stream).
    records: u64,
    /// Derived keys, at most the current and the next epoch's.
    keys: Vec<(u8, RecordKey)>,
    /// TLS 1.2: this side's write key since its ChangeCipherSpec, once derived.
    key12: Option<Tls12Key>,
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
    /// ServerHello.random (TLS 1.2's key block needs it).
    server_random: Option<[u8; 32]>,
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
            server_random: None,
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
            self.protected12(side, header, body, secrets, &mut rec, problems);
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
                // TLS 1.2 and earlier: this side's records are protected from now on, with
                // sequence numbers from 0 and keys from the current randoms.
                if self.version.is_some_and(|v| v < TLS13)
                    && let Some(half) = self.halves.get_mut(side)
                {
                    half.encrypted = true;
                    half.seq = 0;
                    half.key12 = None;
                    half.hs.clear();
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
                        // ServerHello: type(1) length(3) legacy_version(2) random(32).
                        self.server_random = msg.get(6..38).and_then(|r| r.try_into().ok());
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

    /// A TLS 1.2 (or earlier) protected record: decrypted when the master secret is known
    /// and the suite is an AEAD one ring has, else labelled from the handshake state.
    fn protected12(
        &mut self,
        side: usize,
        header: RecordHeader,
        body: &[u8],
        secrets: &SecretStore,
        rec: &mut TlsRecord,
        problems: &mut Vec<DecodeProblem>,
    ) {
        rec.encrypted = true;
        let mut plain = std::mem::take(&mut self.plain);
        match self.open12(side, header, body, secrets, &mut plain) {
            Opened::Plain => {
                rec.decrypted = Some(true);
                self.inner12(side, header.kind, &plain, rec, problems);
            }
            outcome => {
                if matches!(outcome, Opened::Failed) {
                    let done = self.halves.get(side).is_some_and(|h| h.handshake_done);
                    let epoch = if header.kind == HANDSHAKE && !done {
                        EPOCH_HANDSHAKE
                    } else {
                        EPOCH_APPLICATION
                    };
                    problems.push(DecodeProblem::NotDecrypted { epoch });
                }
                self.label12(side, header.kind, rec);
            }
        }
        self.plain = plain;
    }

    /// Decrypts a TLS 1.2 record from `side` with its write key (derived when first
    /// needed); counts the record's sequence number either way.
    fn open12(
        &mut self,
        side: usize,
        header: RecordHeader,
        body: &[u8],
        secrets: &SecretStore,
        plain: &mut Vec<u8>,
    ) -> Opened {
        let client = self.client_side == Some(side);
        let suite = self.suite.and_then(Tls12Suite::from_id);
        let master = self
            .random
            .as_ref()
            .and_then(|r| secrets.get(r))
            .and_then(|s| s.master_secret.as_deref());
        let randoms = self.random.zip(self.server_random);
        let Some(half) = self.halves.get_mut(side) else {
            return Opened::NoKey;
        };
        let seq = half.seq;
        half.seq = half.seq.saturating_add(1);
        if half.key12.is_none()
            && let (Some(suite), Some(master), Some((cr, sr))) = (suite, master, randoms)
        {
            half.key12 = Tls12Key::derive(&suite, master, &cr, &sr, client);
        }
        match &half.key12 {
            Some(key) if key.open_into(seq, header.kind, header.version, body, plain) => {
                Opened::Plain
            }
            Some(_) => Opened::Failed,
            None => Opened::NoKey,
        }
    }

    /// The content of a decrypted TLS 1.2 record.
    fn inner12(
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
                // The Finished (and, on renegotiation, the next handshake's messages).
                self.handshake(side, content, rec, problems);
                if let Some(half) = self.halves.get_mut(side) {
                    half.handshake_done = true;
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

    /// A TLS 1.2 protected record not decrypted: labels from the state.
    fn label12(&mut self, side: usize, kind: u8, rec: &mut TlsRecord) {
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

    /// A TLS 1.2 exchange between a real rustls client and server in memory.
    mod tls12 {
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex};

        use rustls::crypto::ring::{cipher_suite, default_provider};
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
        use rustls::{
            ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection,
        };

        use super::*;
        use crate::tls::keylog::key_log_line;
        use crate::tls::tls12::MASTER_SECRET_LEN;

        const REQUEST: &[u8] = b"GET /tls12 HTTP/1.1\r\nHost: localhost\r\n\r\n";
        const RESPONSE: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello there";

        /// Captures rustls's key log lines.
        #[derive(Debug, Default)]
        struct Log(Mutex<String>);

        impl rustls::KeyLog for Log {
            fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
                if let Ok(mut text) = self.0.lock() {
                    text.push_str(&key_log_line(label, client_random, secret));
                }
            }
        }

        /// What each side wrote, in order (side 0 client, 1 server), and the key log.
        struct Exchange {
            flights: Vec<(usize, Vec<u8>)>,
            key_log: String,
        }

        fn pump<D>(
            conn: &mut rustls::ConnectionCommon<D>,
            out: &mut Vec<(usize, Vec<u8>)>,
            side: usize,
        ) {
            let mut bytes = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut bytes).expect("write_tls");
            }
            if !bytes.is_empty() {
                out.push((side, bytes));
            }
        }

        fn deliver<D>(conn: &mut rustls::ConnectionCommon<D>, mut bytes: &[u8], got: &mut Vec<u8>) {
            while !bytes.is_empty() {
                conn.read_tls(&mut bytes).expect("read_tls");
                conn.process_new_packets().expect("process");
            }
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = conn.reader().read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }

        fn exchange(suite: rustls::SupportedCipherSuite) -> Exchange {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
                .expect("certificate");
            let der: CertificateDer<'static> = cert.cert.der().clone();
            let key =
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
            let mut roots = RootCertStore::empty();
            roots.add(der.clone()).expect("root");
            let mut provider = default_provider();
            provider.cipher_suites = vec![suite];
            let provider = Arc::new(provider);
            let log = Arc::new(Log::default());
            let mut client_config = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS12])
                .expect("client versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            client_config.key_log = log.clone();
            let server_config = ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS12])
                .expect("server versions")
                .with_no_client_auth()
                .with_single_cert(vec![der], key)
                .expect("server cert");
            let name = ServerName::try_from("localhost").expect("name");
            let mut client = ClientConnection::new(Arc::new(client_config), name).expect("client");
            let mut server = ServerConnection::new(Arc::new(server_config)).expect("server");

            client.writer().write_all(REQUEST).expect("request");
            let mut flights = Vec::new();
            let (mut got_request, mut got_response) = (Vec::new(), Vec::new());
            let mut answered = false;
            for _ in 0..10 {
                pump(&mut client, &mut flights, 0);
                if let Some((0, bytes)) = flights.last() {
                    let bytes = bytes.clone();
                    deliver(&mut server, &bytes, &mut got_request);
                }
                if !answered && got_request == REQUEST {
                    server.writer().write_all(RESPONSE).expect("response");
                    answered = true;
                }
                pump(&mut server, &mut flights, 1);
                if let Some((1, bytes)) = flights.last() {
                    let bytes = bytes.clone();
                    deliver(&mut client, &bytes, &mut got_response);
                }
                if got_response == RESPONSE {
                    break;
                }
            }
            assert_eq!(got_response, RESPONSE, "exchange completed");
            client.send_close_notify();
            pump(&mut client, &mut flights, 0);
            server.send_close_notify();
            pump(&mut server, &mut flights, 1);
            let key_log = log.0.lock().expect("log").clone();
            Exchange { flights, key_log }
        }

        /// Feeds the exchange to a fresh connection; returns records, problems, app bytes.
        fn dissect(
            ex: &Exchange,
            key_log: &str,
        ) -> (TlsConn, Vec<TlsRecord>, Vec<DecodeProblem>, Vec<u8>) {
            let mut secrets = SecretStore::default();
            secrets.add_text(key_log);
            let mut conn = TlsConn::new(Some(0));
            conn.app_out = Some(Vec::new());
            let (mut records, mut problems) = (Vec::new(), Vec::new());
            for (side, bytes) in &ex.flights {
                conn.feed(*side, bytes, &secrets, &mut records, &mut problems);
            }
            let app = conn.app_out.take().unwrap_or_default();
            (conn, records, problems, app)
        }

        fn suites() -> [(rustls::SupportedCipherSuite, u16); 3] {
            [
                (
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    0xc02b,
                ),
                (
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    0xc02c,
                ),
                (
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                    0xcca9,
                ),
            ]
        }

        #[test]
        fn decrypts_each_aead_suite() {
            for (suite, id) in suites() {
                let ex = exchange(suite);
                assert!(ex.key_log.starts_with("CLIENT_RANDOM "), "{}", ex.key_log);
                let (conn, records, problems, app) = dissect(&ex, &ex.key_log);
                assert!(problems.is_empty(), "{id:04x}: {problems:?}");
                assert_eq!(conn.suite, Some(id));
                assert_eq!(conn.version, Some(0x0303));
                let protected: Vec<&TlsRecord> = records.iter().filter(|r| r.encrypted).collect();
                assert!(
                    protected.iter().all(|r| r.decrypted == Some(true)),
                    "{id:04x}: {protected:?}"
                );
                let finished: Vec<&&TlsRecord> = protected
                    .iter()
                    .filter(|r| r.inner == Some("handshake"))
                    .collect();
                assert_eq!(finished.len(), 2, "{id:04x}");
                for f in finished {
                    assert_eq!(f.message.as_deref(), Some("Finished"));
                    assert_eq!(f.messages, vec!["Finished"]);
                }
                let http: Vec<&str> = protected
                    .iter()
                    .filter(|r| r.inner == Some("application_data"))
                    .filter_map(|r| r.http.as_deref())
                    .collect();
                assert_eq!(http, ["GET /tls12 HTTP/1.1", "HTTP/1.1 200 OK"]);
                let app_len: usize = protected.iter().filter_map(|r| r.app_len).sum();
                assert_eq!(app_len, REQUEST.len() + RESPONSE.len());
                assert_eq!(app, [REQUEST, RESPONSE].concat());
                let alerts: Vec<&str> = protected
                    .iter()
                    .filter_map(|r| r.alert.as_deref())
                    .collect();
                assert_eq!(alerts, ["close_notify", "close_notify"]);
            }
        }

        #[test]
        fn wrong_master_secret_is_not_decrypted() {
            let ex = exchange(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
            let mut words = ex.key_log.split_ascii_whitespace();
            let (label, random) = (words.next().expect("label"), words.next().expect("random"));
            let wrong = format!("{label} {random} {}\n", "00".repeat(MASTER_SECRET_LEN));
            let (_, records, problems, app) = dissect(&ex, &wrong);
            let protected: Vec<&TlsRecord> = records.iter().filter(|r| r.encrypted).collect();
            assert!(!protected.is_empty());
            assert!(protected.iter().all(|r| r.decrypted == Some(false)));
            assert_eq!(problems.len(), protected.len(), "{problems:?}");
            assert_eq!(problems[0], DecodeProblem::NotDecrypted { epoch: 1 });
            assert!(
                problems
                    .iter()
                    .all(|p| matches!(p, DecodeProblem::NotDecrypted { .. }))
            );
            // Labelled as without keys.
            let finished = protected
                .iter()
                .filter(|r| r.message.as_deref() == Some("Finished"))
                .count();
            assert_eq!(finished, 2);
            assert!(app.is_empty());

            // Without any key: labels only, no problems (as before decryption existed).
            let (_, records, problems, app) = dissect(&ex, "");
            assert!(problems.is_empty(), "{problems:?}");
            assert!(
                records
                    .iter()
                    .filter(|r| r.encrypted)
                    .all(|r| r.decrypted == Some(false) && r.inner.is_some())
            );
            assert!(app.is_empty());
        }

        #[test]
        fn tampered_record_fails_alone() {
            let mut ex = exchange(cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256);
            // The client's flight with its request: flip the last byte (the tag).
            let (_, flight) = ex
                .flights
                .iter_mut()
                .rfind(|(side, bytes)| *side == 0 && bytes.first() == Some(&APPLICATION_DATA))
                .expect("request flight");
            if let Some(last) = flight.last_mut() {
                *last ^= 1;
            }
            let key_log = ex.key_log.clone();
            let (_, records, problems, app) = dissect(&ex, &key_log);
            assert_eq!(
                problems,
                [DecodeProblem::NotDecrypted {
                    epoch: EPOCH_APPLICATION
                }]
            );
            let failed: Vec<&TlsRecord> = records
                .iter()
                .filter(|r| r.decrypted == Some(false))
                .collect();
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].inner, Some("application_data"));
            // Later records of the same side still decrypt (sequence numbers go on).
            assert_eq!(app, RESPONSE);
            assert_eq!(records.iter().filter_map(|r| r.alert.as_deref()).count(), 2);
        }

        #[test]
        fn truncated_and_garbage_records() {
            let ex = exchange(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384);
            // Every prefix of the exchange (cut anywhere, records split too): no panic,
            // and what is decrypted is a prefix of the application bytes.
            let total: usize = ex.flights.iter().map(|(_, b)| b.len()).sum();
            let all = [REQUEST, RESPONSE].concat();
            for cut in (0..total).step_by(7) {
                let mut secrets = SecretStore::default();
                secrets.add_text(&ex.key_log);
                let mut conn = TlsConn::new(Some(0));
                conn.app_out = Some(Vec::new());
                let (mut records, mut problems) = (Vec::new(), Vec::new());
                let mut left = cut;
                for (side, bytes) in &ex.flights {
                    let part = bytes.get(..left.min(bytes.len())).unwrap_or_default();
                    left -= part.len();
                    conn.feed(*side, part, &secrets, &mut records, &mut problems);
                }
                assert!(problems.is_empty(), "cut {cut}: {problems:?}");
                let app = conn.app_out.take().unwrap_or_default();
                assert!(all.starts_with(&app), "cut {cut}");
            }

            // Keys known, then protected records of every short length and some garbage.
            let (mut conn, _, _, _) = dissect(&ex, &ex.key_log);
            let mut secrets = SecretStore::default();
            secrets.add_text(&ex.key_log);
            conn.halves = Default::default();
            for half in &mut conn.halves {
                half.encrypted = true;
                half.handshake_done = true;
            }
            let (mut records, mut problems) = (Vec::new(), Vec::new());
            let mut stream = Vec::new();
            for len in 0..40usize {
                for kind in [HANDSHAKE, ALERT, APPLICATION_DATA, 24] {
                    let body: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
                    stream.extend(record(kind, 0x0303, &body));
                }
            }
            conn.feed(1, &stream, &secrets, &mut records, &mut problems);
            assert_eq!(records.len(), 160);
            assert_eq!(problems.len(), 160);
            assert!(records.iter().all(|r| r.decrypted == Some(false)));
            // The same garbage without keys: labels only.
            let mut conn = TlsConn::new(Some(0));
            conn.version = Some(0x0303);
            conn.suite = Some(0xc02c);
            for half in &mut conn.halves {
                half.encrypted = true;
            }
            let (mut records, mut problems) = (Vec::new(), Vec::new());
            conn.feed(1, &stream, &secrets, &mut records, &mut problems);
            assert_eq!(records.len(), 160);
            assert!(problems.is_empty());
        }
    }
}
