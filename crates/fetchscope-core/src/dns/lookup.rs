//! [`DnsLookup`]: the stub resolver as a sans-IO machine, for every stack. A (and AAAA
//! when the stack has an IPv6 address) queries in parallel, retries with backoff across
//! the servers ([`RetrySchedule`]), answers judged by id, port and question
//! ([`check_answer`]), a retry over TCP (RFC 7766) for a question whose answer came back
//! truncated (TC) or in IP fragments that could not be reassembled, and a new query for
//! an alias target when an answer names only the alias ([`CnameChase`]).
//!
//! The driver owns the sockets. It hands the lookup what arrived (`handle_*`), carries
//! out what [`DnsLookup::poll_command`] asks (send a datagram, open, write or close a
//! TCP connection to the server), reports the [`DnsEvent`]s of [`DnsLookup::poll_event`]
//! in order, wakes it at [`DnsLookup::poll_timeout`], and connects once
//! [`DnsLookup::outcome`] names the address.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rand::Rng;

use super::{
    AnswerVerdict, ChaseStep, CnameChase, DnsAnswer, DnsQuery, RetrySchedule, check_answer,
    rcode_name,
};
use crate::advice::Conditions;
use crate::error::{FailureClass, FetchError};
use crate::event::{DnsEvent, Phase};
use crate::time::Instant;

/// Largest DNS message accepted over TCP (the length prefix allows 65535).
const DNS_TCP_MAX: usize = 65535;

/// The DNS port.
const DNS_PORT: u16 = 53;

/// A question's TCP connection to the server: the index of the question it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsStream(pub usize);

/// What the lookup asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsCommand {
    /// Send `bytes` as one UDP datagram to `to`, from the lookup's own port.
    SendDatagram {
        /// The server's endpoint.
        to: SocketAddr,
        /// The DNS message.
        bytes: Vec<u8>,
    },
    /// Open a TCP connection to the server for `stream` (from `local_port` where the
    /// stack lets the caller choose).
    OpenStream {
        /// Which question it carries.
        stream: DnsStream,
        /// The server's endpoint.
        to: SocketAddr,
        /// A port for our end, drawn from the run's randomness.
        local_port: u16,
    },
    /// Write `bytes` (a length-prefixed DNS message) on `stream`.
    Write {
        /// The connection.
        stream: DnsStream,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Done with `stream`: close it (its FIN exchange still shows).
    CloseStream {
        /// The connection.
        stream: DnsStream,
    },
    /// Done with the UDP socket: close it (a late duplicate answer meets a closed port).
    CloseDatagrams,
}

/// What a question's TCP connection holds after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCondition {
    /// Still connecting: nothing can be said yet.
    Connecting,
    /// Open: more may come.
    Open,
    /// The server closed it, or it was reset: nothing more will come.
    Ended,
}

/// A question asked over TCP after a truncated (or unassemblable) UDP answer.
#[derive(Debug)]
struct TcpQuestion {
    sent: bool,
    answer: Vec<u8>,
    /// Why UDP was not enough, for a timeout message.
    why: &'static str,
}

/// One question (A or AAAA) of the lookup.
#[derive(Debug)]
struct Question {
    query: DnsQuery,
    answer: Option<DnsAnswer>,
    tcp: Option<TcpQuestion>,
    /// The alias chain from the fetch's host to the name asked now.
    chase: CnameChase,
    /// Why this query follows an alias, until it is sent.
    follows: Option<String>,
}

/// The DNS lookup in progress.
#[derive(Debug)]
pub struct DnsLookup {
    questions: Vec<Question>,
    local_port: u16,
    /// Which server the next try goes to, and its retransmission timeout.
    schedule: RetrySchedule,
    retry_at: Instant,
    /// The server that answered (for messages).
    answered_by: Option<IpAddr>,
    /// Why the next query goes to another server early (an ICMP error about this one).
    switch_reason: Option<String>,
    /// IP fragments from the server received while UDP questions waited: when the
    /// retransmission timer runs out with these seen, the answer could not be
    /// reassembled and the question goes over TCP.
    fragments_seen: usize,
    /// A sentence added to "no such name" errors.
    nxdomain_hint: Option<String>,
    /// Lab or real network: decides the advice in a SERVFAIL error.
    conditions: Conditions,
    commands: VecDeque<DnsCommand>,
    events: VecDeque<DnsEvent>,
    outcome: Option<IpAddr>,
}

/// What to look up, and how to word what goes wrong.
#[derive(Debug, Clone)]
pub struct LookupSpec<'a> {
    /// The name (the URL's host).
    pub host: &'a str,
    /// The port the fetch connects to (for `--resolve` advice).
    pub port: u16,
    /// One question per record type, asked in parallel (see [`question_types`]).
    pub qtypes: &'a [RecordType],
    /// The servers, asked in turn.
    pub servers: Vec<IpAddr>,
    /// A sentence added to "no such name" errors (e.g. the built-in lab's hint).
    pub nxdomain_hint: Option<String>,
    /// Lab or real network: decides the advice in a SERVFAIL error.
    pub conditions: Conditions,
    /// The UDP port the queries go from, when the stack chose it (a kernel socket bound
    /// to port 0); `None`: drawn from the run's randomness.
    pub local_port: Option<u16>,
}

/// The failure to send a [`DnsCommand::SendDatagram`] query to `to` (from `from`, when
/// the stack knows its address), with the stack's `cause`.
pub fn send_error(
    to: SocketAddr,
    from: Option<std::net::IpAddr>,
    cause: impl std::fmt::Display,
) -> FetchError {
    let from = from.map(|l| format!(" from {l}")).unwrap_or_default();
    FetchError::new(
        FailureClass::Setup,
        Phase::Resolve,
        "setup",
        format!("could not send the DNS query to {}{from}: {cause}", to.ip()),
    )
}

/// The failure to open a [`DnsCommand::OpenStream`] connection to `to`, with the stack's
/// `cause`.
pub fn stream_open_error(to: SocketAddr, cause: impl std::fmt::Display) -> FetchError {
    FetchError::new(
        FailureClass::Dns,
        Phase::Resolve,
        "dns-tcp",
        format!(
            "cannot open a TCP connection to the DNS server {}: {cause}",
            to.ip()
        ),
    )
}

/// The record types to ask for on a stack with these address families: AAAA when it
/// has IPv6, A when it has IPv4 (both, in parallel, like getaddrinfo on a dual-stack
/// host).
pub fn question_types(ipv4: bool, ipv6: bool) -> Vec<RecordType> {
    let mut types = Vec::new();
    if ipv6 {
        types.push(RecordType::AAAA);
    }
    if ipv4 {
        types.push(RecordType::A);
    }
    types
}

impl DnsLookup {
    /// A lookup as `spec` says, from a UDP port drawn from `rng`; the first queries
    /// are queued at once (see [`DnsLookup::poll_command`]).
    pub fn start(
        now: Instant,
        spec: LookupSpec<'_>,
        rng: &mut impl Rng,
    ) -> Result<DnsLookup, FetchError> {
        let LookupSpec {
            host,
            port,
            qtypes,
            servers,
            nxdomain_hint,
            conditions,
            local_port,
        } = spec;
        if servers.is_empty() {
            return Err(FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "no-dns-server",
                format!(
                    "there is no DNS server to ask for {host}: pass --dns IP, or --resolve {host}:{port}:ADDR"
                ),
            ));
        }
        let mut questions = Vec::new();
        for &qtype in qtypes {
            let id: u16 = rng.random();
            let query = DnsQuery::new(host, qtype, id).map_err(|e| {
                FetchError::new(FailureClass::Dns, Phase::Resolve, "bad-name", e.to_string())
            })?;
            questions.push(Question {
                query,
                answer: None,
                tcp: None,
                chase: CnameChase::new(host, port),
                follows: None,
            });
        }
        let local_port = match local_port {
            Some(p) => p,
            None => rng.random_range(49152..=65535),
        };
        let mut lookup = DnsLookup {
            questions,
            local_port,
            schedule: RetrySchedule::new(servers),
            retry_at: now,
            answered_by: None,
            switch_reason: None,
            fragments_seen: 0,
            nxdomain_hint,
            conditions,
            commands: VecDeque::new(),
            events: VecDeque::new(),
            outcome: None,
        };
        lookup.send_queries(now, None, false);
        Ok(lookup)
    }

    /// The UDP port the queries go from.
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    /// The server asked now.
    pub fn server(&self) -> IpAddr {
        self.schedule.server()
    }

    /// The next thing the driver must do.
    pub fn poll_command(&mut self) -> Option<DnsCommand> {
        self.commands.pop_front()
    }

    /// The next DNS event to report.
    pub fn poll_event(&mut self) -> Option<DnsEvent> {
        self.events.pop_front()
    }

    /// When the lookup wants [`DnsLookup::handle_timeout`] (a UDP retransmission).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.udp_pending().then_some(self.retry_at)
    }

    /// The address to connect to, once every question is answered and one has an
    /// address (IPv6 first, as RFC 6724 prefers when the stack has both).
    pub fn outcome(&self) -> Option<IpAddr> {
        self.outcome
    }

    /// The TCP connections of questions asked again over TCP and not answered yet.
    pub fn streams(&self) -> impl Iterator<Item = DnsStream> + '_ {
        self.questions
            .iter()
            .enumerate()
            .filter(|(_, q)| q.answer.is_none() && q.tcp.is_some())
            .map(|(i, _)| DnsStream(i))
    }

    /// Questions still waiting for a UDP answer.
    fn udp_pending(&self) -> bool {
        self.questions
            .iter()
            .any(|q| q.answer.is_none() && q.tcp.is_none())
    }

    /// What the lookup was waiting for, for a timeout message.
    pub fn stall_description(&self, host: &str, conditions: &Conditions) -> String {
        if let Some(t) = self
            .questions
            .iter()
            .filter(|q| q.answer.is_none())
            .find_map(|q| q.tcp.as_ref())
        {
            return format!(
                "no DNS answer for {host} from {} over TCP ({})",
                self.server(),
                t.why
            );
        }
        conditions.no_dns_answer(host, &self.server().to_string(), self.schedule.sent())
    }

    /// The lookup in a few words, for a snapshot; `unsent` when the latest round of
    /// queries is reported but its packets are not shown yet (they go out next).
    pub fn describe(&self, unsent: bool) -> String {
        let asked: Vec<String> = self
            .questions
            .iter()
            .map(|q| {
                let state = if q.answer.is_some() {
                    "answered"
                } else if q.tcp.is_some() {
                    "asked again over TCP"
                } else if unsent {
                    "goes out next"
                } else {
                    "waiting"
                };
                format!(
                    "{} {} (id 0x{:04x}): {state}",
                    q.query.qtype,
                    q.query.display_name(),
                    q.query.id
                )
            })
            .collect();
        let sent = if unsent {
            self.schedule.sent().saturating_sub(1)
        } else {
            self.schedule.sent()
        };
        format!(
            "{} — server {}, from UDP port {}, {sent} round{} of queries sent",
            asked.join("; "),
            self.server(),
            self.local_port,
            if sent == 1 { "" } else { "s" }
        )
    }

    /// What the lookup does next, in one sentence.
    pub fn next_sentence(&self, now: Instant) -> String {
        if self.udp_pending() {
            let left = self.retry_at.micros_since(now) / 1000;
            let left = left as f64 / 1000.0;
            format!(
                "waiting for the DNS answer from {}; the query is resent in {left:.1} s if none arrives",
                self.server()
            )
        } else {
            format!("waiting for the DNS answer over TCP from {}", self.server())
        }
    }

    fn event(
        q: &DnsQuery,
        event: &str,
        server: Option<IpAddr>,
        reason: Option<String>,
    ) -> DnsEvent {
        DnsEvent {
            event: event.into(),
            name: q.display_name(),
            qtype: q.qtype.to_string(),
            server,
            id: Some(q.id),
            rcode: None,
            addresses: Vec::new(),
            cnames: Vec::new(),
            reason,
        }
    }

    /// Queues every question still waiting for a UDP answer; with `only_new`, only the
    /// new queries that follow an alias, on the retransmission timer already running.
    fn send_queries(&mut self, now: Instant, retry_reason: Option<String>, only_new: bool) {
        let retry_reason = match self.switch_reason.take() {
            Some(why) if !only_new => Some(why),
            _ => retry_reason,
        };
        let (server, timeout) = if only_new {
            (self.server(), self.schedule.waited())
        } else {
            self.schedule.next_try()
        };
        let local_port = self.local_port;
        for q in self
            .questions
            .iter_mut()
            .filter(|q| q.answer.is_none() && q.tcp.is_none())
            .filter(|q| !only_new || q.follows.is_some())
        {
            self.commands.push_back(DnsCommand::SendDatagram {
                to: SocketAddr::new(server, DNS_PORT),
                bytes: q.query.bytes.clone(),
            });
            let first = format!(
                "from port {local_port}; resent after {} ms if no answer",
                timeout.as_millis()
            );
            let (kind, reason) = match (q.follows.take(), &retry_reason) {
                (Some(alias), _) => ("query", format!("{alias}; {first}")),
                (None, Some(r)) => ("retry", r.clone()),
                (None, None) => ("query", first),
            };
            self.events
                .push_back(Self::event(&q.query, kind, Some(server), Some(reason)));
        }
        if !only_new {
            self.retry_at = now + timeout;
        }
    }

    /// An ICMP error from `router` (`what`: its name) quoting the datagram `src → dst`:
    /// when that is our query (from `local`), nothing listens on that server. With more
    /// servers the next one is asked at once; with one, the lookup fails.
    pub fn handle_unreachable(
        &mut self,
        now: Instant,
        local: IpAddr,
        quoted: (SocketAddr, SocketAddr),
        router: IpAddr,
        what: &str,
    ) -> Option<FetchError> {
        let server = self.server();
        let ours = SocketAddr::new(local, self.local_port);
        if quoted.0 != ours || quoted.1 != SocketAddr::new(server, DNS_PORT) || !self.udp_pending()
        {
            return None;
        }
        if self.schedule.has_other_servers() {
            self.schedule.skip_server();
            self.retry_at = now;
            self.switch_reason = Some(format!(
                "{server} is unreachable ({router} sent ICMP {what}): asking the next server"
            ));
            return None;
        }
        Some(FetchError::new(
            FailureClass::Dns,
            Phase::Resolve,
            "dns-unreachable",
            format!(
                "the DNS server {server} cannot be asked: {router} answered the query with ICMP {what}; check --dns"
            ),
        ))
    }

    /// An IP fragment of a UDP datagram from `src` arrived: while UDP questions wait for
    /// the server, it is counted (the stack reassembles what it can; the count decides
    /// the TCP retry).
    pub fn handle_fragment(&mut self, src: IpAddr) {
        if src == self.server() && self.udp_pending() {
            self.fragments_seen += 1;
        }
    }

    /// Judges the datagrams that arrived on the lookup's port (`from`, bytes), in order;
    /// then, once every question is answered, decides the outcome.
    pub fn handle_datagrams(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        datagrams: &[(SocketAddr, Vec<u8>)],
    ) -> Result<(), FetchError> {
        let server = SocketAddr::new(self.server(), DNS_PORT);
        let mut truncated = Vec::new();
        let mut accepted = Vec::new();
        for (from, data) in datagrams {
            let from = *from;
            // The datagram is for whichever question it matches; otherwise it is ignored
            // with the reason given for the first question.
            let mut ignored = None;
            let mut matched = false;
            for (i, q) in self.questions.iter_mut().enumerate() {
                if q.answer.is_some() || q.tcp.is_some() || accepted.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                match check_answer(&q.query, server, from, data) {
                    AnswerVerdict::Accept(a) if a.truncated => {
                        truncated.push(i);
                        matched = true;
                        break;
                    }
                    AnswerVerdict::Accept(a) => {
                        let mut ev = Self::event(
                            &q.query,
                            "answer",
                            Some(server.ip()),
                            a.ttl.map(|t| format!("ttl {t} s")),
                        );
                        ev.rcode = Some(rcode_name(a.rcode));
                        ev.addresses = a.addresses.clone();
                        ev.cnames = a.cnames.clone();
                        self.events.push_back(ev);
                        // Judged against the alias chain below; until then no other
                        // datagram answers this question.
                        accepted.push((i, a));
                        matched = true;
                        break;
                    }
                    AnswerVerdict::Ignore(reason) => {
                        ignored.get_or_insert((q.query.clone(), reason));
                    }
                }
            }
            if !matched && let Some((q, reason)) = ignored {
                let mut ev = Self::event(
                    &q,
                    "ignored",
                    Some(from.ip()),
                    Some(format!("answer ignored: {reason}")),
                );
                ev.id = None;
                self.events.push_back(ev);
            }
        }
        for (i, a) in accepted {
            if let Some(reason) = self.take_answer(i, a, server.ip())? {
                self.follow_alias(now, rng, i, reason)?;
            }
        }
        for i in truncated {
            self.over_tcp(
                rng,
                i,
                server.ip(),
                "truncated",
                "the answer did not fit in UDP (TC bit set): asking again over TCP port 53".into(),
                "the UDP answer was truncated",
            );
        }
        Ok(())
    }

    /// The TCP connections' news, in order of their questions: for each, whether it can
    /// take the question now (`writable`), the bytes read from it, and its condition
    /// after the read. Answers are judged, and the outcome decided once every question
    /// is answered.
    pub fn handle_streams(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        reads: &[(DnsStream, bool, Vec<u8>, StreamCondition)],
    ) -> Result<(), FetchError> {
        let server = self.server();
        let mut accepted = Vec::new();
        for (stream, writable, data, condition) in reads {
            let i = stream.0;
            let Some(q) = self.questions.get_mut(i) else {
                continue;
            };
            let Some(t) = q.tcp.as_mut().filter(|_| q.answer.is_none()) else {
                continue;
            };
            if !t.sent && *writable {
                let len = u16::try_from(q.query.bytes.len()).unwrap_or(u16::MAX);
                let mut msg = len.to_be_bytes().to_vec();
                msg.extend_from_slice(&q.query.bytes);
                self.commands.push_back(DnsCommand::Write {
                    stream: *stream,
                    bytes: msg,
                });
                t.sent = true;
            }
            let room = (DNS_TCP_MAX + 2).saturating_sub(t.answer.len());
            t.answer
                .extend_from_slice(data.get(..data.len().min(room)).unwrap_or_default());
            let need = t
                .answer
                .get(..2)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])) + 2);
            let Some(end) = need.filter(|n| t.answer.len() >= *n) else {
                if *condition == StreamCondition::Ended {
                    return Err(FetchError::new(
                        FailureClass::Dns,
                        Phase::Resolve,
                        "dns-tcp",
                        format!(
                            "the DNS server {server} closed the TCP connection without a full answer"
                        ),
                    ));
                }
                continue;
            };
            let message = t.answer.get(2..end).unwrap_or_default();
            let at = SocketAddr::new(server, DNS_PORT);
            let verdict = check_answer(&q.query, at, at, message);
            self.commands
                .push_back(DnsCommand::CloseStream { stream: *stream });
            match verdict {
                AnswerVerdict::Accept(a) => {
                    let mut ev = Self::event(
                        &q.query,
                        "answer",
                        Some(server),
                        Some(format!(
                            "over TCP{}",
                            a.ttl.map(|t| format!(", ttl {t} s")).unwrap_or_default()
                        )),
                    );
                    ev.rcode = Some(rcode_name(a.rcode));
                    ev.addresses = a.addresses.clone();
                    ev.cnames = a.cnames.clone();
                    self.events.push_back(ev);
                    accepted.push((i, a));
                }
                AnswerVerdict::Ignore(reason) => {
                    return Err(FetchError::new(
                        FailureClass::Dns,
                        Phase::Resolve,
                        "bad-answer",
                        format!(
                            "the DNS server {server} sent an unusable answer over TCP: {reason}"
                        ),
                    ));
                }
            }
        }
        for (i, a) in accepted {
            if let Some(reason) = self.take_answer(i, a, server)? {
                self.follow_alias(now, rng, i, reason)?;
            }
        }
        Ok(())
    }

    /// Resends when the retransmission timer ran out (or asks over TCP when only IP
    /// fragments came), and decides the outcome once every question is answered.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut impl Rng) -> Result<(), FetchError> {
        if self.questions.iter().all(|q| q.answer.is_some()) {
            return self.answered();
        }
        if self.udp_pending() && now >= self.retry_at && self.fragments_seen > 0 {
            self.fragments_over_tcp(rng);
            return Ok(());
        }
        if self.udp_pending() && now >= self.retry_at {
            let reason = format!(
                "no answer within {} ms; asking again",
                self.schedule.waited().as_millis()
            );
            self.send_queries(now, Some(reason), false);
        }
        Ok(())
    }

    /// Question `i`'s answer named only an alias: ask for its target with a new query
    /// (own id, own question check), sent at once.
    fn follow_alias(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        i: usize,
        reason: String,
    ) -> Result<(), FetchError> {
        let id: u16 = rng.random();
        let Some(q) = self.questions.get_mut(i) else {
            return Ok(());
        };
        let query = q.chase.next_query(q.query.qtype, id)?;
        q.query = query;
        q.answer = None;
        q.tcp = None;
        q.follows = Some(reason);
        // With no other question waiting, the new one starts the retry schedule anew on
        // the server that answered; otherwise it joins the timer already running.
        let others_waiting = self
            .questions
            .iter()
            .any(|q| q.answer.is_none() && q.tcp.is_none() && q.follows.is_none());
        if others_waiting {
            self.send_queries(now, None, true);
        } else {
            self.schedule.restart();
            self.send_queries(now, None, false);
        }
        Ok(())
    }

    /// Judges question `i`'s accepted answer against its alias chain: keeps it (final),
    /// or returns the reason to follow the alias it names.
    fn take_answer(
        &mut self,
        i: usize,
        a: DnsAnswer,
        server: IpAddr,
    ) -> Result<Option<String>, FetchError> {
        let Some(q) = self.questions.get_mut(i) else {
            return Ok(None);
        };
        match q.chase.answer(&a, server)? {
            ChaseStep::Final => {
                q.answer = Some(a);
                self.answered_by = Some(server);
                Ok(None)
            }
            ChaseStep::Follow { reason, .. } => Ok(Some(reason)),
        }
    }

    /// The retransmission timer ran out after IP fragments came from the server without a
    /// whole answer: ask every waiting question again over TCP.
    fn fragments_over_tcp(&mut self, rng: &mut impl Rng) {
        let server = self.server();
        let reason = format!(
            "the answer came in IP fragments that could not be reassembled ({} fragment{} from {server}, no whole datagram within {} ms): asking again over TCP port 53",
            self.fragments_seen,
            if self.fragments_seen == 1 { "" } else { "s" },
            self.schedule.waited().as_millis()
        );
        let waiting: Vec<usize> = self
            .questions
            .iter()
            .enumerate()
            .filter(|(_, q)| q.answer.is_none() && q.tcp.is_none())
            .map(|(i, _)| i)
            .collect();
        for i in waiting {
            self.over_tcp(
                rng,
                i,
                server,
                "fragmented",
                reason.clone(),
                "the UDP answer's IP fragments could not be reassembled",
            );
        }
    }

    /// Question `i`'s UDP answer was truncated (or could not be reassembled): ask again
    /// over TCP (RFC 7766), with a `kind` event giving `reason`.
    fn over_tcp(
        &mut self,
        rng: &mut impl Rng,
        i: usize,
        server: IpAddr,
        kind: &str,
        reason: String,
        why: &'static str,
    ) {
        let local_port: u16 = rng.random_range(49152..=65535);
        let Some(q) = self.questions.get_mut(i) else {
            return;
        };
        self.commands.push_back(DnsCommand::OpenStream {
            stream: DnsStream(i),
            to: SocketAddr::new(server, DNS_PORT),
            local_port,
        });
        q.tcp = Some(TcpQuestion {
            sent: false,
            answer: Vec::new(),
            why,
        });
        self.events
            .push_back(Self::event(&q.query, kind, Some(server), Some(reason)));
    }

    /// Every question is answered: pick the address (IPv6 first, as RFC 6724 prefers when
    /// the stack has both) or fail with the server's verdict.
    fn answered(&mut self) -> Result<(), FetchError> {
        if self.outcome.is_some() {
            return Ok(());
        }
        let server = self.answered_by.unwrap_or_else(|| self.server());
        // The alias chain of the first question that has one (both have the same when
        // A and AAAA were asked).
        let chase = self
            .questions
            .iter()
            .map(|q| &q.chase)
            .find(|c| c.chain().len() > 1);
        let name = match chase {
            Some(c) => format!("{} (the alias target of {})", c.current(), c.origin()),
            None => self
                .questions
                .first()
                .map(|q| q.query.display_name())
                .unwrap_or_default(),
        };
        let answers: Vec<&DnsAnswer> = self
            .questions
            .iter()
            .filter_map(|q| q.answer.as_ref())
            .collect();
        let addr = answers
            .iter()
            .flat_map(|a| a.addresses.iter())
            .next()
            .copied();
        let hint = self
            .nxdomain_hint
            .as_ref()
            .map(|h| format!(" {h}"))
            .unwrap_or_default();
        let dns_error = |kind: &str, message: String| {
            FetchError::new(FailureClass::Dns, Phase::Resolve, kind, message)
        };
        if let Some(addr) = addr {
            self.commands.push_back(DnsCommand::CloseDatagrams);
            self.outcome = Some(addr);
            return Ok(());
        }
        let rcode = answers
            .iter()
            .map(|a| a.rcode)
            .find(|r| *r != ResponseCode::NoError)
            .unwrap_or(ResponseCode::NoError);
        Err(match rcode {
            ResponseCode::NXDomain => dns_error(
                "nxdomain",
                format!("{name} does not exist: the DNS server {server} answered NXDOMAIN.{hint}"),
            ),
            ResponseCode::ServFail => dns_error(
                "servfail",
                self.conditions.servfail(&server.to_string(), &name),
            ),
            ResponseCode::NoError => {
                let types: Vec<String> = self
                    .questions
                    .iter()
                    .map(|q| q.query.qtype.to_string())
                    .collect();
                let types = types.join(" or ");
                let message = match chase.and_then(|c| c.no_address_message(&types, server)) {
                    Some(m) => m,
                    None => format!(
                        "{name} exists but has no address of the kind the stack can use ({types} record) at {server}.{hint}"
                    ),
                };
                dns_error("no-address", message)
            }
            other => dns_error(
                "rcode",
                format!(
                    "the DNS server {server} refused to resolve {name} ({})",
                    rcode_name(other)
                ),
            ),
        })
    }
}
