//! The TLS client: rustls's unbuffered API driven by hand, reporting each handshake stage.
//!
//! [`TlsClient`] knows nothing about sockets: the fetch machine copies ciphertext from the
//! TCP socket into [`TlsClient::incoming_spare`], calls [`TlsClient::process`], and writes
//! [`TlsClient::outgoing`] back to the socket. What rustls does not announce by itself is
//! observed through a recording certificate verifier and a recording key log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, SystemTime};

use rustls::client::UnbufferedClientConnection;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
pub mod explain;

pub use explain::TrustSource;

use rustls::{ClientConfig, DigitallySignedStruct, KeyLog, RootCertStore, SignatureScheme};

/// Largest TLS record on the wire (header + 2^14 + 256).
const MAX_RECORD: usize = 5 + 16384 + 256;
/// Incoming ciphertext buffer: room for two full records.
const INCOMING_CAP: usize = 2 * MAX_RECORD;

/// Why TLS failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// The server's certificate was not accepted.
    #[error("{0}")]
    Certificate(String),
    /// The server sent a fatal alert.
    #[error("the server ended the handshake with the alert {0}")]
    AlertReceived(String),
    /// The server broke the protocol.
    #[error("the server broke the TLS protocol: {0}")]
    Protocol(String),
    /// The configuration could not be built.
    #[error("TLS set-up failed: {0}")]
    Setup(String),
}

impl TlsError {
    /// A short machine name for the `error` event's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            TlsError::Certificate(_) => "certificate",
            TlsError::AlertReceived(_) => "alert",
            TlsError::Protocol(_) => "protocol",
            TlsError::Setup(_) => "setup",
        }
    }

    fn from_rustls(e: rustls::Error, host: &str, trust: TrustSource) -> TlsError {
        match e {
            rustls::Error::InvalidCertificate(c) => {
                TlsError::Certificate(explain::certificate(&c, host, trust))
            }
            rustls::Error::AlertReceived(a) => TlsError::AlertReceived(explain::alert(a)),
            other => TlsError::Protocol(explain::protocol(&other)),
        }
    }
}

/// One TLS secret, as rustls logs it (an NSS key log line split up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSecret {
    /// e.g. `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub label: String,
    /// The 32-byte ClientHello random.
    pub client_random: Vec<u8>,
    /// The secret.
    pub secret: Vec<u8>,
}

impl TlsSecret {
    /// The NSS key log line (without newline).
    pub fn key_log_line(&self) -> String {
        format!(
            "{} {} {}",
            self.label,
            hex::encode(&self.client_random),
            hex::encode(&self.secret)
        )
    }
}

/// What the recording verifier and key log saw, shared with rustls's callbacks.
#[derive(Debug, Default)]
struct Observed {
    secrets: Vec<TlsSecret>,
    chain: Option<Vec<CertificateDer<'static>>>,
    chain_result: Option<Result<(), String>>,
    signature_ok: Option<bool>,
}

#[derive(Debug, Default)]
struct Observer {
    state: Mutex<Observed>,
}

impl Observer {
    fn with<R>(&self, f: impl FnOnce(&mut Observed) -> R) -> R {
        match self.state.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

#[derive(Debug)]
struct RecordingKeyLog {
    observer: Arc<Observer>,
    forward: Option<Arc<dyn KeyLog>>,
}

impl KeyLog for RecordingKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.observer.with(|o| {
            o.secrets.push(TlsSecret {
                label: label.to_string(),
                client_random: client_random.to_vec(),
                secret: secret.to_vec(),
            })
        });
        if let Some(f) = &self.forward {
            f.log(label, client_random, secret);
        }
    }
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    observer: Arc<Observer>,
    /// `--insecure`: a chain that fails verification is recorded and accepted.
    insecure: bool,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        self.observer.with(|o| {
            o.chain = Some(chain);
            o.chain_result = Some(r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        });
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let r = self.inner.verify_tls12_signature(message, cert, dss);
        self.observer.with(|o| o.signature_ok = Some(r.is_ok()));
        r
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let r = self.inner.verify_tls13_signature(message, cert, dss);
        self.observer.with(|o| o.signature_ok = Some(r.is_ok()));
        r
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The clock certificates are checked against: the link's clock plus its epoch, so the
/// built-in lab's virtual time and real time over a TUN device are both honoured.
#[derive(Debug)]
pub struct LinkTime {
    epoch: SystemTime,
    micros: AtomicU64,
}

impl LinkTime {
    /// A clock at `epoch`, to be advanced with [`LinkTime::set`].
    pub fn new(epoch: SystemTime) -> Self {
        LinkTime {
            epoch,
            micros: AtomicU64::new(0),
        }
    }

    /// Sets the link time (microseconds since the fetch started).
    pub fn set(&self, micros: u64) {
        self.micros.store(micros, Ordering::Relaxed);
    }

    /// The wall-clock time now.
    pub fn wall(&self) -> SystemTime {
        self.epoch + StdDuration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

impl rustls::time_provider::TimeProvider for LinkTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(
            self.wall().duration_since(SystemTime::UNIX_EPOCH).ok()?,
        ))
    }
}

/// Everything needed to start a TLS client.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The crypto provider (ring; seeded for repeatable runs).
    pub provider: Arc<CryptoProvider>,
    /// Trust anchors.
    pub roots: Arc<RootCertStore>,
    /// ALPN protocols offered.
    pub alpn: Vec<Vec<u8>>,
    /// Where else to write the secrets (user key log file), if anywhere.
    pub key_log: Option<Arc<dyn KeyLog>>,
    /// The clock certificates are checked against.
    pub time: Arc<LinkTime>,
    /// Where the trust anchors came from (for the advice in certificate errors).
    pub trust: TrustSource,
    /// `--insecure`: the server's certificate is checked and the result reported, but a
    /// failure does not stop the handshake.
    pub insecure: bool,
}

/// A client configuration, built once per fetch (before the connection, as requests
/// builds its SSL context): roots, verifier, ALPN, key log.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    observer: Arc<Observer>,
    trust: TrustSource,
    insecure: bool,
}

impl TlsConfig {
    /// Builds the configuration.
    pub fn new(setup: TlsSetup) -> Result<TlsConfig, TlsError> {
        let observer = Arc::new(Observer::default());
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            setup.roots.clone(),
            setup.provider.clone(),
        )
        .build()
        .map_err(|e| TlsError::Setup(format!("no usable trust anchors: {e}")))?;
        let verifier = Arc::new(RecordingVerifier {
            inner: webpki,
            observer: observer.clone(),
            insecure: setup.insecure,
        });
        let mut config = ClientConfig::builder_with_details(setup.provider.clone(), setup.time)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = setup.alpn;
        config.key_log = Arc::new(RecordingKeyLog {
            observer: observer.clone(),
            forward: setup.key_log,
        });
        Ok(TlsConfig {
            config: Arc::new(config),
            observer,
            trust: setup.trust,
            insecure: setup.insecure,
        })
    }

    /// Whether certificate failures are only reported (`--insecure`).
    pub fn insecure(&self) -> bool {
        self.insecure
    }
}

/// Something the TLS client did or saw, for the fetch machine to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProgress {
    /// The ClientHello was encoded for sending.
    ClientHelloQueued,
    /// The ServerHello was processed.
    ServerHello {
        /// Protocol version.
        version: String,
        /// Cipher suite.
        suite: String,
        /// Key exchange group (if known).
        group: Option<String>,
    },
    /// The certificate chain was checked against the trust anchors and the name.
    ChainVerified {
        /// The chain as sent, end-entity first.
        chain: Vec<CertificateDer<'static>>,
    },
    /// The chain failed verification and was accepted anyway (`--insecure`).
    ChainAccepted {
        /// The chain as sent, end-entity first.
        chain: Vec<CertificateDer<'static>>,
        /// Why verification failed.
        problem: String,
    },
    /// The server proved it holds the certificate's key (CertificateVerify).
    SignatureVerified,
    /// The server's Finished was verified (application traffic keys exist).
    ServerFinished,
    /// The client's Finished was encoded; the handshake is complete on our side.
    HandshakeComplete {
        /// ALPN protocol chosen by the server.
        alpn: Option<String>,
    },
    /// Session tickets received so far changed.
    TicketsReceived(u32),
    /// Application data was encrypted for sending.
    AppDataQueued(usize),
    /// Our close_notify was encoded for sending.
    CloseNotifyQueued,
    /// The server's close_notify arrived.
    PeerClosed,
}

impl TlsProgress {
    /// The `tls` event this progress becomes — stage name, one sentence for people (about
    /// `host`) and the certificate chain — or `Err(note)` for progress that is only a note.
    /// The userspace fetch and the kernel twin share these words.
    pub fn into_stage(
        self,
        host: &str,
    ) -> Result<(&'static str, String, Vec<crate::event::CertificateInfo>), String> {
        Ok(match self {
            TlsProgress::ClientHelloQueued => (
                "client_hello_sent",
                format!("ClientHello for {host} offering TLS 1.3 and 1.2, ALPN http/1.1"),
                Vec::new(),
            ),
            TlsProgress::ServerHello {
                version,
                suite,
                group,
            } => (
                "server_hello",
                format!(
                    "the server chose {version} with {suite}{}",
                    group
                        .map(|g| format!(" and key exchange {g}"))
                        .unwrap_or_default()
                ),
                Vec::new(),
            ),
            TlsProgress::ChainVerified { chain } => (
                "certificate_verified",
                format!(
                    "certificate chain ({} certificate{}) verified for {host}",
                    chain.len(),
                    if chain.len() == 1 { "" } else { "s" },
                ),
                chain
                    .iter()
                    .filter_map(|c| crate::certinfo::describe(c))
                    .collect(),
            ),
            TlsProgress::ChainAccepted { chain, problem } => (
                "certificate_not_verified",
                format!(
                    "INSECURE: the certificate chain for {host} failed verification ({problem}) and was accepted because of --insecure: the connection is encrypted, but nothing proves who is at the other end"
                ),
                chain
                    .iter()
                    .filter_map(|c| crate::certinfo::describe(c))
                    .collect(),
            ),
            TlsProgress::SignatureVerified => (
                "certificate_verify_ok",
                "the server proved it holds the certificate's private key (CertificateVerify)"
                    .to_string(),
                Vec::new(),
            ),
            TlsProgress::ServerFinished => (
                "server_finished",
                "the server's Finished checked out: the handshake was not tampered with"
                    .to_string(),
                Vec::new(),
            ),
            TlsProgress::HandshakeComplete { alpn } => (
                "handshake_complete",
                format!(
                    "client Finished sent; handshake complete{}",
                    alpn.map(|a| format!(", ALPN {a}")).unwrap_or_default()
                ),
                Vec::new(),
            ),
            TlsProgress::TicketsReceived(n) => (
                "session_ticket",
                format!("the server sent a session ticket ({n} so far), for resuming later"),
                Vec::new(),
            ),
            TlsProgress::AppDataQueued(n) => {
                return Err(format!(
                    "{n} bytes of HTTP encrypted into TLS application data"
                ));
            }
            TlsProgress::CloseNotifyQueued => (
                "close_notify_sent",
                "close_notify alert sent: no more data from us".to_string(),
                Vec::new(),
            ),
            TlsProgress::PeerClosed => (
                "close_notify_received",
                "the server sent close_notify: no more data from it".to_string(),
                Vec::new(),
            ),
        })
    }
}

/// A TLS client over a byte stream, driven by hand.
pub struct TlsClient {
    conn: UnbufferedClientConnection,
    host: String,
    incoming: Vec<u8>,
    incoming_used: usize,
    /// Records the server sent that rustls has consumed so far (the next one's number).
    server_records: u64,
    /// This round's application data: each record's content length and HTTP start line.
    round_plain: Vec<(usize, Option<String>)>,
    /// Records decrypted since [`TlsClient::take_decrypted`] was last called.
    decrypted: Vec<fetchscope_wire::DecryptedRecord>,
    outgoing: Vec<u8>,
    pending_app: Vec<u8>,
    close_requested: bool,
    close_queued: bool,
    observer: Arc<Observer>,
    /// `--insecure`: a chain that failed verification was accepted (and is reported so).
    insecure: bool,
    secrets_taken: usize,
    hello_queued: bool,
    server_hello_seen: bool,
    chain_reported: bool,
    signature_reported: bool,
    server_finished_seen: bool,
    complete: bool,
    peer_closed: bool,
    closed: bool,
    tickets: u32,
    failed: Option<TlsError>,
    trust: TrustSource,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("host", &self.host)
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Starts a client for `server_name`; the ClientHello is produced by the first
    /// [`TlsClient::process`].
    pub fn new(
        config: &TlsConfig,
        server_name: ServerName<'static>,
    ) -> Result<TlsClient, TlsError> {
        let host = match &server_name {
            ServerName::DnsName(d) => d.as_ref().to_string(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            other => format!("{other:?}"),
        };
        // One observer serves the configuration; each connection starts with a clean view.
        let secrets_taken = config.observer.with(|o| {
            o.chain = None;
            o.chain_result = None;
            o.signature_ok = None;
            o.secrets.len()
        });
        let conn = UnbufferedClientConnection::new(config.config.clone(), server_name)
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        Ok(TlsClient {
            conn,
            host,
            incoming: vec![0; INCOMING_CAP],
            incoming_used: 0,
            server_records: 0,
            round_plain: Vec::new(),
            decrypted: Vec::new(),
            outgoing: Vec::new(),
            pending_app: Vec::new(),
            close_requested: false,
            close_queued: false,
            observer: config.observer.clone(),
            insecure: config.insecure,
            secrets_taken,
            hello_queued: false,
            server_hello_seen: false,
            chain_reported: false,
            signature_reported: false,
            server_finished_seen: false,
            complete: false,
            peer_closed: false,
            closed: false,
            tickets: 0,
            trust: config.trust,
            failed: None,
        })
    }

    /// Free space for ciphertext from the peer; fill it, then call
    /// [`TlsClient::incoming_filled`].
    pub fn incoming_spare(&mut self) -> &mut [u8] {
        let used = self.incoming_used;
        self.incoming.get_mut(used..).unwrap_or_default()
    }

    /// Records that `n` bytes were written into [`TlsClient::incoming_spare`].
    pub fn incoming_filled(&mut self, n: usize) {
        self.incoming_used = (self.incoming_used + n).min(self.incoming.len());
    }

    /// Ciphertext waiting to be written to the transport.
    pub fn outgoing(&self) -> &[u8] {
        &self.outgoing
    }

    /// Drops the first `n` bytes of [`TlsClient::outgoing`] once the transport took them.
    pub fn consume_outgoing(&mut self, n: usize) {
        let n = n.min(self.outgoing.len());
        self.outgoing.drain(..n);
    }

    /// Queues application data; it is encrypted once the handshake allows.
    pub fn send(&mut self, data: &[u8]) {
        self.pending_app.extend_from_slice(data);
    }

    /// Asks for a close_notify to be sent (after any queued application data).
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    /// The handshake is complete on our side.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Our close_notify has been encoded.
    pub fn close_queued(&self) -> bool {
        self.close_queued
    }

    /// Application data still waiting to be encrypted.
    pub fn pending_app(&self) -> usize {
        self.pending_app.len()
    }

    /// Takes the secrets logged since the last call.
    pub fn take_secrets(&mut self) -> Vec<TlsSecret> {
        let taken = self.secrets_taken;
        let new: Vec<TlsSecret> = self.observer.with(|o| {
            o.secrets
                .get(taken..)
                .map(<[_]>::to_vec)
                .unwrap_or_default()
        });
        self.secrets_taken += new.len();
        new
    }

    /// Negotiated version name, once known (`TLSv1.3`).
    pub fn version(&self) -> Option<String> {
        self.conn.protocol_version().map(version_name)
    }

    /// Negotiated cipher suite name, once known.
    pub fn suite(&self) -> Option<String> {
        self.conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
    }

    /// Negotiated key exchange group name, once known.
    pub fn group(&self) -> Option<String> {
        self.conn
            .negotiated_key_exchange_group()
            .map(|g| group_name(g.name()))
    }

    /// Negotiated ALPN protocol.
    pub fn alpn(&self) -> Option<String> {
        self.conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// Runs rustls until it needs more input or has nothing more to do; decrypted
    /// application data goes to `on_plaintext`. Errors are sticky. What happened before
    /// an error is lost; [`TlsClient::process_into`] keeps it.
    pub fn process(
        &mut self,
        on_plaintext: &mut dyn FnMut(&[u8]),
    ) -> Result<Vec<TlsProgress>, TlsError> {
        let mut progress = Vec::new();
        self.process_into(on_plaintext, &mut progress)?;
        Ok(progress)
    }

    /// Like [`TlsClient::process`], but what happened is appended to `progress` also
    /// when the call fails (a ServerHello seen before a certificate error is still
    /// reported).
    pub fn process_into(
        &mut self,
        on_plaintext: &mut dyn FnMut(&[u8]),
        progress: &mut Vec<TlsProgress>,
    ) -> Result<(), TlsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let start = progress.len();
        let mut mine = Vec::new();
        let r = self.process_inner(on_plaintext, &mut mine);
        self.observe(&mut mine);
        progress.splice(start.., mine);
        if let Err(e) = r {
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    fn process_inner(
        &mut self,
        on_plaintext: &mut dyn FnMut(&[u8]),
        progress: &mut Vec<TlsProgress>,
    ) -> Result<(), TlsError> {
        // Each round handles one state; bounded so a confused peer can't spin us.
        for _ in 0..10_000 {
            let used = self.incoming_used;
            let Some(window) = self.incoming.get_mut(..used) else {
                return Err(TlsError::Protocol("incoming buffer out of range".into()));
            };
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(window);
            let state = match state {
                Ok(s) => s,
                Err(e) => {
                    // rustls may have queued an alert for the peer; it's lost with the
                    // connection, as with any client that gives up here.
                    return Err(TlsError::from_rustls(e, &self.host, self.trust));
                }
            };
            let mut stop = false;
            match state {
                ConnectionState::EncodeTlsData(mut enc) => {
                    let start = self.outgoing.len();
                    let mut size = 4096;
                    loop {
                        self.outgoing.resize(start + size, 0);
                        let out = self.outgoing.get_mut(start..).unwrap_or_default();
                        match enc.encode(out) {
                            Ok(n) => {
                                self.outgoing.truncate(start + n);
                                break;
                            }
                            Err(EncodeError::InsufficientSize(s)) => {
                                size = s.required_size;
                            }
                            Err(e) => {
                                self.outgoing.truncate(start);
                                return Err(TlsError::Protocol(format!("encode: {e}")));
                            }
                        }
                    }
                    if !self.hello_queued {
                        self.hello_queued = true;
                        progress.push(TlsProgress::ClientHelloQueued);
                    } else if !self.complete && !self.conn.is_handshaking() {
                        // Traffic keys exist once the server's Finished checked out; the
                        // record encoded now is our Finished (TLS 1.3).
                        self.complete = true;
                        progress.push(TlsProgress::HandshakeComplete { alpn: None });
                    }
                }
                ConnectionState::TransmitTlsData(t) => {
                    // The bytes are in `outgoing`; the fetch machine sends them in order.
                    t.done();
                }
                ConnectionState::BlockedHandshake => stop = true,
                ConnectionState::ReadTraffic(mut rt) => {
                    while let Some(rec) = rt.next_record() {
                        let rec =
                            rec.map_err(|e| TlsError::from_rustls(e, &self.host, self.trust))?;
                        self.round_plain.push((
                            rec.payload.len(),
                            fetchscope_wire::http_start_line(rec.payload),
                        ));
                        on_plaintext(rec.payload);
                    }
                }
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    progress.push(TlsProgress::PeerClosed);
                }
                ConnectionState::Closed => {
                    self.closed = true;
                    stop = true;
                }
                ConnectionState::WriteTraffic(mut wt) => {
                    if !self.complete {
                        self.complete = true;
                        progress.push(TlsProgress::HandshakeComplete { alpn: None });
                    }
                    if !self.pending_app.is_empty() {
                        let data = std::mem::take(&mut self.pending_app);
                        let n = encrypt_into(&mut self.outgoing, data.len() + 1024, |out| {
                            wt.encrypt(&data, out)
                        })?;
                        let _ = n;
                        progress.push(TlsProgress::AppDataQueued(data.len()));
                    }
                    if self.close_requested && !self.close_queued {
                        encrypt_into(&mut self.outgoing, 64, |out| wt.queue_close_notify(out))?;
                        self.close_queued = true;
                        progress.push(TlsProgress::CloseNotifyQueued);
                    }
                    stop = true;
                }
                _ => stop = true,
            }
            self.note_decrypted(discard);
            self.discard(discard);
            if stop {
                return Ok(());
            }
        }
        Err(TlsError::Protocol(
            "TLS processing did not settle (too many steps)".into(),
        ))
    }

    /// Counts the server's records in the first `consumed` bytes of `incoming` (whole
    /// records, as rustls discards them) and, when each was application data handed out
    /// this round, notes what they held for the dissector, which then need not decrypt
    /// them again. A round that also consumed other records (a NewSessionTicket, an
    /// alert) notes nothing: which record held which data is not known then.
    fn note_decrypted(&mut self, consumed: usize) {
        let mut records = 0u64;
        let mut at = 0usize;
        while let Some(h) = self.incoming.get(at..at + 5).filter(|_| at < consumed) {
            at += 5 + usize::from(u16::from_be_bytes([h[3], h[4]]));
            records += 1;
        }
        // Most rounds hand out no application data: then there is nothing to look up.
        let random = if self.round_plain.is_empty() || records != self.round_plain.len() as u64 {
            None
        } else {
            self.observer
                .with(|o| o.secrets.first().map(|s| s.client_random.clone()))
                .and_then(|r| <[u8; 32]>::try_from(r).ok())
        };
        let first = self.server_records;
        // The buffer keeps its room for the next round.
        for (k, (len, http)) in self.round_plain.drain(..).enumerate() {
            if let Some(random) = random {
                self.decrypted.push(fetchscope_wire::DecryptedRecord {
                    client_random: random,
                    index: first + k as u64,
                    len,
                    http,
                });
            }
        }
        self.server_records += records;
    }

    /// Takes the application-data records decrypted since the last call (for the
    /// dissector: see [`fetchscope_wire::Dissector::add_decrypted_record`]).
    pub fn take_decrypted(&mut self) -> Vec<fetchscope_wire::DecryptedRecord> {
        std::mem::take(&mut self.decrypted)
    }

    fn discard(&mut self, n: usize) {
        let n = n.min(self.incoming_used);
        if n > 0 {
            self.incoming.copy_within(n..self.incoming_used, 0);
            self.incoming_used -= n;
        }
    }

    /// Turns what rustls's getters and our callbacks now show into progress reports.
    fn observe(&mut self, progress: &mut Vec<TlsProgress>) {
        if !self.server_hello_seen
            && let (Some(version), Some(suite)) = (self.version(), self.suite())
        {
            self.server_hello_seen = true;
            // Stages seen in this round came after the ServerHello: put it first.
            progress.insert(
                0,
                TlsProgress::ServerHello {
                    version,
                    suite,
                    group: self.group(),
                },
            );
        }
        // The verifier's findings are copied out only until both are reported (this runs
        // for every record of the transfer).
        let (chain, chain_ok, sig) = if self.chain_reported && self.signature_reported {
            (None, None, None)
        } else {
            self.observer
                .with(|o| (o.chain.clone(), o.chain_result.clone(), o.signature_ok))
        };
        let mut insert_at = progress
            .iter()
            .position(|p| {
                matches!(
                    p,
                    TlsProgress::HandshakeComplete { .. }
                        | TlsProgress::AppDataQueued(_)
                        | TlsProgress::PeerClosed
                )
            })
            .unwrap_or(progress.len());
        if !self.chain_reported
            && let (Some(chain), Some(result)) = (chain, chain_ok)
        {
            self.chain_reported = true;
            // A refused chain (no --insecure) ends the handshake: the error says why.
            let p = match result {
                Ok(()) => Some(TlsProgress::ChainVerified { chain }),
                Err(problem) if self.insecure => {
                    Some(TlsProgress::ChainAccepted { chain, problem })
                }
                Err(_) => None,
            };
            if let Some(p) = p {
                progress.insert(insert_at, p);
                insert_at += 1;
            }
        }
        if !self.signature_reported && sig == Some(true) {
            self.signature_reported = true;
            progress.insert(insert_at, TlsProgress::SignatureVerified);
            insert_at += 1;
        }
        if !self.server_finished_seen && self.hello_queued && !self.conn.is_handshaking() {
            self.server_finished_seen = true;
            progress.insert(insert_at, TlsProgress::ServerFinished);
        }
        for p in progress.iter_mut() {
            if let TlsProgress::HandshakeComplete { alpn: a } = p {
                *a = self.alpn();
            }
        }
        let tickets = self.conn.tls13_tickets_received();
        if tickets != self.tickets {
            self.tickets = tickets;
            progress.push(TlsProgress::TicketsReceived(tickets));
        }
    }
}

/// Encrypts into the end of `out`, growing it as rustls asks.
fn encrypt_into(
    out: &mut Vec<u8>,
    first_guess: usize,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<usize, TlsError> {
    let start = out.len();
    let mut size = first_guess;
    for _ in 0..4 {
        out.resize(start + size, 0);
        let buf = out.get_mut(start..).unwrap_or_default();
        match f(buf) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(n);
            }
            Err(EncryptError::InsufficientSize(s)) => size = s.required_size,
            Err(e) => {
                out.truncate(start);
                return Err(TlsError::Protocol(format!("encrypt: {e}")));
            }
        }
    }
    out.truncate(start);
    Err(TlsError::Protocol(
        "encrypt: buffer size did not settle".into(),
    ))
}

/// `TLSv1.3`-style name of a protocol version.
pub fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1".into(),
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0".into(),
        other => format!("{other:?}"),
    }
}

/// Lower-case name of a key exchange group, as Wireshark prints it.
pub fn group_name(g: rustls::NamedGroup) -> String {
    match g {
        rustls::NamedGroup::X25519 => "x25519".into(),
        rustls::NamedGroup::secp256r1 => "secp256r1".into(),
        rustls::NamedGroup::secp384r1 => "secp384r1".into(),
        rustls::NamedGroup::secp521r1 => "secp521r1".into(),
        rustls::NamedGroup::X448 => "x448".into(),
        other => {
            let code = u16::from(other);
            if code == 0x11ec {
                "X25519MLKEM768".into()
            } else {
                format!("0x{code:04x}")
            }
        }
    }
}
