//! HTTP exchanges: the request, the response, and redirects followed as requests does —
//! on the same connection when the server keeps it alive and the host is the same, on a
//! new one (DNS, TCP, TLS anew) otherwise.

use fetchscope_net::Link;
use smoltcp::wire::IpEndpoint;
use url::Url;

use super::at;
use super::{Fetch, Target};
use fetchscope_core::TcpState;
use fetchscope_core::error::{FailureClass, FetchError};
use fetchscope_core::event::{EventKind, ExchangeRecord, HttpRequestEvent, Phase};
use fetchscope_core::http::{self, HttpProgress, Limits, RequestHead, ResponseReader};
use fetchscope_core::redirects;
use fetchscope_core::timing::TimingMarks;

/// One request and its response.
pub(super) struct Exchange {
    pub url: Url,
    pub marks: TimingMarks,
    /// Send the request in the next step (the connection is ready for it).
    pub request_due: bool,
    pub request: Option<RequestHead>,
    /// TCP stream offset of the request's first byte.
    pub request_start: Option<u64>,
    /// TCP stream offset just past the request's last byte.
    pub request_end: Option<u64>,
    /// Retransmissions we had sent on the connection when the request was queued.
    pub retransmissions_before: u32,
    pub reader: Option<ResponseReader>,
    pub remote: Option<IpEndpoint>,
    /// The response is a redirect: its body is read and dropped.
    redirecting: bool,
}

impl Exchange {
    pub(super) fn new(url: Url, start: fetchscope_core::Instant, reused: bool) -> Self {
        Exchange {
            url,
            marks: TimingMarks {
                start,
                reused,
                ..TimingMarks::default()
            },
            request_due: false,
            request: None,
            request_start: None,
            request_end: None,
            retransmissions_before: 0,
            reader: None,
            remote: None,
            redirecting: false,
        }
    }

    pub(super) fn status(&self) -> u16 {
        self.reader
            .as_ref()
            .and_then(ResponseReader::head)
            .map(|h| h.status)
            .unwrap_or(0)
    }

    pub(super) fn wire_body_bytes(&self) -> u64 {
        self.reader
            .as_ref()
            .map(ResponseReader::wire_body_bytes)
            .unwrap_or(0)
    }

    pub(super) fn reader_decoded_bytes(&self) -> u64 {
        self.reader
            .as_ref()
            .map(ResponseReader::decoded_body_bytes)
            .unwrap_or(0)
    }
}

impl<L: Link> Fetch<L> {
    /// Sends the exchange's request on the open connection.
    pub(super) fn queue_request(&mut self) {
        self.enter(Phase::Request);
        let head = http::build_request("GET", &self.exchange.url, &self.cfg.user_agent);
        let bytes = head.to_bytes();
        self.exchange.marks.pretransfer = Some(at(self.now()));
        self.emit(EventKind::HttpRequest(HttpRequestEvent {
            method: head.method.clone(),
            target: head.target.clone(),
            url: self.exchange.url.to_string(),
            headers: head.headers.clone(),
        }));
        self.exchange.reader = Some(ResponseReader::new("GET", Limits::default()));
        if let Some(conn) = self.conn.as_ref() {
            self.exchange.request_start = Some(conn.tx_written);
            self.exchange.retransmissions_before = conn.track.retransmissions_tx;
        }
        let tls = self.conn.as_mut().and_then(|c| c.tls.as_mut());
        match tls {
            Some(tls) => {
                tls.send(&bytes);
                self.process_tls();
                let Some(conn) = self.conn.as_ref() else {
                    return;
                };
                let encrypted = conn.tls.as_ref().map(|t| t.outgoing().len()).unwrap_or(0);
                self.exchange.request_end = Some(conn.tx_written + encrypted as u64);
            }
            None => {
                self.write_plain(&bytes);
                self.exchange.request_end = self.conn.as_ref().map(|c| c.tx_written);
            }
        }
        self.exchange.request = Some(head);
    }

    /// Gives received plaintext to the HTTP reader.
    pub(super) fn receive_plaintext(&mut self) -> Result<(), FetchError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let data = std::mem::take(&mut conn.plain);
        if self.exchange.marks.starttransfer.is_none() && self.exchange.reader.is_some() {
            self.exchange.marks.starttransfer = Some(at(self.now()));
            self.enter(Phase::Response);
        }
        let Some(reader) = self.exchange.reader.as_mut() else {
            self.note(format!(
                "{} bytes arrived that no request asked for; ignored",
                data.len()
            ));
            return Ok(());
        };
        let intake = http::feed_response(
            reader,
            &data,
            &self.exchange.url,
            &mut self.exchange.redirecting,
            &mut self.body,
        );
        let leftover = intake.leftover_note();
        self.report_http(intake.progress);
        if let Some(e) = intake.error {
            return Err(FetchError::http(&e));
        }
        if let Some(note) = leftover {
            self.note(note);
        }
        if intake.complete {
            self.response_done()?;
        }
        Ok(())
    }

    fn report_http(&mut self, progress: Vec<HttpProgress>) {
        for p in progress {
            match fetchscope_core::event::http_progress_event(&p) {
                Some(Ok(head)) => self.emit(EventKind::Http(head)),
                Some(Err(note)) => self.note(note),
                None => {}
            }
        }
    }

    /// The response is complete: follow a redirect, or close the connection.
    fn response_done(&mut self) -> Result<(), FetchError> {
        if self.exchange.marks.body_done.is_some() {
            return Ok(());
        }
        self.exchange.marks.body_done = Some(at(self.now()));
        let Some(reader) = self.exchange.reader.as_ref() else {
            return Ok(());
        };
        let (bytes, wire) = (reader.decoded_body_bytes(), reader.wire_body_bytes());
        let connection_open = self
            .conn
            .as_ref()
            .is_some_and(|c| !c.peer_eof && c.state == TcpState::Established);
        let next = redirects::next_hop(
            reader.head(),
            &self.exchange.url,
            &self.done_exchanges,
            reader.keep_alive(),
            connection_open,
            self.cfg.redirect_protocols,
        )?;
        let Some(next) = next else {
            self.note(format!(
                "response complete: {bytes} body bytes ({wire} on the wire)"
            ));
            self.begin_teardown();
            return Ok(());
        };
        let target = Target::new(next.redirect.url.clone()).map_err(|mut e| {
            e.class = FailureClass::Http;
            e.phase = Phase::Response;
            e.kind = "bad-redirect".into();
            e
        })?;
        self.redirects = next.event.hop;
        self.emit(EventKind::Redirect(next.event));
        let record = self.exchange_record();
        self.done_exchanges.push(record);
        self.note(next.note);
        if next.reuse {
            let now = self.now();
            self.target = target;
            self.exchange = Exchange::new(next.redirect.url, at(now), true);
            self.exchange.remote = self.conn.as_ref().map(|c| c.remote);
            self.exchange.request_due = true;
        } else {
            self.next_hop = Some(target);
            self.begin_teardown();
        }
        Ok(())
    }

    /// Starts the exchange the redirect asked for, once the old connection is closed.
    pub(super) fn start_next_hop(&mut self, target: Target) -> Result<(), FetchError> {
        let now = self.now();
        self.exchange = Exchange::new(target.url.clone(), at(now), false);
        self.target = target;
        self.conn = None;
        self.start_exchange()
    }

    /// The server closed its side (TCP FIN or TLS close_notify).
    pub(super) fn peer_closed_stream(&mut self) -> Result<(), FetchError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        conn.peer_eof = true;
        let remote = conn.remote;
        match self.exchange.reader.as_mut() {
            Some(reader) if !reader.is_complete() => {
                let progress =
                    http::finish_response(reader, self.exchange.redirecting, &mut self.body)
                        .map_err(|e| FetchError::http(&e))?;
                let complete = reader.is_complete();
                self.report_http(progress);
                if complete {
                    self.response_done()?;
                }
                Ok(())
            }
            Some(_) => Ok(()),
            None if self.phase < Phase::Request => Err(FetchError::new(
                if self.phase == Phase::Tls {
                    FailureClass::Tls
                } else {
                    FailureClass::Connect
                },
                self.phase,
                "closed",
                format!(
                    "{remote} closed the connection during the {} phase",
                    self.phase
                ),
            )),
            None => Ok(()),
        }
    }

    /// The record of the current exchange, for the summary and HAR.
    pub(super) fn exchange_record(&self) -> ExchangeRecord {
        let e = &self.exchange;
        let head = e.reader.as_ref().and_then(ResponseReader::head);
        ExchangeRecord {
            url: e.url.to_string(),
            method: e
                .request
                .as_ref()
                .map(|r| r.method.clone())
                .unwrap_or_else(|| "GET".into()),
            request_headers: e
                .request
                .as_ref()
                .map(|r| r.headers.clone())
                .unwrap_or_default(),
            status: head.map(|h| h.status).unwrap_or(0),
            reason: head.map(|h| h.reason.clone()).unwrap_or_default(),
            http_version: head.map(|h| h.version.clone()).unwrap_or_default(),
            response_headers: head
                .map(|h| {
                    h.headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            started_us: e.marks.start.micros_since(at(self.start)),
            reused_connection: e.marks.reused,
            remote: e.remote.map(|r| r.to_string()).unwrap_or_default(),
            body_bytes: e.reader_decoded_bytes(),
            wire_body_bytes: e.wire_body_bytes(),
            har: e.marks.har(self.target.tls),
        }
    }
}
