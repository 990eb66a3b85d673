//! The DNS stub: A (and AAAA when the stack has an IPv6 address) queries over one smoltcp
//! UDP socket, retries with backoff across the servers, answers judged by id, port and
//! question, a retry over TCP for a question whose answer came back truncated (TC) or in
//! IP fragments that could not be reassembled, and a new query for an alias target when
//! an answer names only the alias ([`CnameChase`]).

use std::net::{IpAddr, SocketAddr};

use fetchscope_net::Link;
use fetchscope_wire::Dissection;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rand::Rng;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpAddress;

use super::Fetch;
use super::at;
use fetchscope_core::dns::{
    AnswerVerdict, ChaseStep, CnameChase, DnsAnswer, DnsQuery, RetrySchedule, check_answer,
    rcode_name,
};
use fetchscope_core::error::{FailureClass, FetchError};
use fetchscope_core::event::{DnsEvent, EventKind, Phase};

/// Largest DNS message accepted over TCP (the length prefix allows 65535).
const DNS_TCP_MAX: usize = 65535;

/// A question asked over TCP after a truncated (or unassemblable) UDP answer.
struct TcpQuestion {
    handle: SocketHandle,
    sent: bool,
    answer: Vec<u8>,
    /// Why UDP was not enough, for a timeout message.
    why: &'static str,
}

/// One question (A or AAAA) of the lookup.
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
pub(super) struct DnsLookup {
    questions: Vec<Question>,
    udp: SocketHandle,
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
}

impl DnsLookup {
    fn server(&self) -> IpAddr {
        self.schedule.server()
    }

    /// Questions still waiting for a UDP answer.
    fn udp_pending(&self) -> bool {
        self.questions
            .iter()
            .any(|q| q.answer.is_none() && q.tcp.is_none())
    }

    /// When the lookup wants to run again by itself (a UDP retransmission).
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.udp_pending().then_some(self.retry_at)
    }

    /// What the lookup was waiting for, for a timeout message.
    pub(super) fn stall_description(
        &self,
        host: &str,
        conditions: &fetchscope_core::advice::Conditions,
    ) -> String {
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
    pub(super) fn describe(&self, unsent: bool) -> String {
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
    pub(super) fn next_sentence(&self, now: Instant) -> String {
        if self.udp_pending() {
            let left = if self.retry_at > now {
                (self.retry_at - now).total_millis() as f64 / 1000.0
            } else {
                0.0
            };
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
}

impl<L: Link> Fetch<L> {
    /// Starts an exchange that needs its own connection: resolve the target's host (or
    /// take its address from the URL or `--resolve`), then connect.
    pub(super) fn start_exchange(&mut self) -> Result<(), FetchError> {
        self.enter(Phase::Resolve);
        if let Some((addr, event)) = fetchscope_core::address_without_dns(
            &self.target.url,
            &self.target.host,
            self.target.port,
            &self.cfg.resolve,
        ) {
            self.emit(EventKind::Dns(event));
            return self.connect(addr);
        }
        self.start_dns()
    }

    /// The record types to ask for: AAAA when the stack has an IPv6 address, A when it
    /// has an IPv4 one (both, in parallel, like getaddrinfo on a dual-stack host).
    fn question_types(&self) -> Vec<RecordType> {
        let mut types = Vec::new();
        if self
            .cfg
            .addrs
            .iter()
            .any(|a| a.address().version() == smoltcp::wire::IpVersion::Ipv6)
        {
            types.push(RecordType::AAAA);
        }
        if self
            .cfg
            .addrs
            .iter()
            .any(|a| a.address().version() == smoltcp::wire::IpVersion::Ipv4)
        {
            types.push(RecordType::A);
        }
        types
    }

    fn start_dns(&mut self) -> Result<(), FetchError> {
        let host = self.target.host.clone();
        let servers = self.cfg.dns_servers.clone();
        if servers.is_empty() {
            return Err(FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "no-dns-server",
                format!(
                    "there is no DNS server to ask for {host}: pass --dns IP, or --resolve {host}:{}:ADDR",
                    self.target.port
                ),
            ));
        }
        let mut questions = Vec::new();
        for qtype in self.question_types() {
            let id: u16 = self.rng.random();
            let query = DnsQuery::new(&host, qtype, id).map_err(|e| {
                FetchError::new(FailureClass::Dns, Phase::Resolve, "bad-name", e.to_string())
            })?;
            questions.push(Question {
                query,
                answer: None,
                tcp: None,
                chase: CnameChase::new(&host, self.target.port),
                follows: None,
            });
        }
        let local_port: u16 = self.rng.random_range(49152..=65535);
        let rx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8 * 1024]);
        let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2 * 1024]);
        let mut sock = udp::Socket::new(rx, tx);
        sock.bind(local_port).map_err(|e| {
            FetchError::new(
                FailureClass::Setup,
                Phase::Resolve,
                "setup",
                format!("could not bind the DNS socket to port {local_port}: {e}"),
            )
        })?;
        let udp = self.sockets.add(sock);
        let now = self.now();
        self.dns = Some(DnsLookup {
            questions,
            udp,
            local_port,
            schedule: RetrySchedule::new(servers),
            retry_at: now,
            answered_by: None,
            switch_reason: None,
            fragments_seen: 0,
        });
        self.send_dns_queries(None, false)
    }

    /// Sends every question still waiting for a UDP answer; with `only_new`, only the
    /// new queries that follow an alias, on the retransmission timer already running.
    fn send_dns_queries(
        &mut self,
        retry_reason: Option<String>,
        only_new: bool,
    ) -> Result<(), FetchError> {
        let now = self.now();
        let local = self.cfg.addrs.first().copied();
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let retry_reason = match d.switch_reason.take() {
            Some(why) if !only_new => Some(why),
            _ => retry_reason,
        };
        let (server, timeout) = if only_new {
            (d.server(), d.schedule.waited())
        } else {
            d.schedule.next_try()
        };
        let timeout = Duration::from(timeout);
        let sock = self.sockets.get_mut::<udp::Socket>(d.udp);
        let mut events = Vec::new();
        for q in d
            .questions
            .iter_mut()
            .filter(|q| q.answer.is_none() && q.tcp.is_none())
            .filter(|q| !only_new || q.follows.is_some())
        {
            sock.send_slice(&q.query.bytes, (IpAddress::from(server), 53))
                .map_err(|e| {
                    let from = local.map(|l| format!(" from {l}")).unwrap_or_default();
                    FetchError::new(
                        FailureClass::Setup,
                        Phase::Resolve,
                        "setup",
                        format!("could not send the DNS query to {server}{from}: {e}"),
                    )
                })?;
            let first = format!(
                "from port {}; resent after {} ms if no answer",
                d.local_port,
                timeout.total_millis()
            );
            let (kind, reason) = match (q.follows.take(), &retry_reason) {
                (Some(alias), _) => ("query", format!("{alias}; {first}")),
                (None, Some(r)) => ("retry", r.clone()),
                (None, None) => ("query", first),
            };
            events.push(DnsLookup::event(&q.query, kind, Some(server), Some(reason)));
        }
        if !only_new {
            d.retry_at = now + timeout;
        }
        for ev in events {
            self.emit(EventKind::Dns(ev));
        }
        Ok(())
    }

    /// An ICMP error whose quoted datagram is our DNS query (local → server:53, compared
    /// as endpoints): nothing listens on
    /// that server. With more servers the next one is asked at once; with one, the
    /// lookup fails.
    pub(super) fn dns_unreachable(
        &mut self,
        quoted: super::connection::QuotedTcp,
        router: IpAddr,
        what: &str,
    ) -> Option<FetchError> {
        let local = self.cfg.addrs.first().map(|a| a.address())?;
        let now = self.now();
        let d = self.dns.as_mut()?;
        let server = d.server();
        let ours = SocketAddr::new(IpAddr::from(local), d.local_port);
        if quoted.src != ours || quoted.dst != SocketAddr::new(server, 53) || !d.udp_pending() {
            return None;
        }
        if d.schedule.has_other_servers() {
            d.schedule.skip_server();
            d.retry_at = now;
            d.switch_reason = Some(format!(
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

    /// Judges what arrived; resends when the retransmission timer ran out.
    pub(super) fn drive_dns(&mut self) -> Result<(), FetchError> {
        self.drive_dns_udp()?;
        self.drive_dns_tcp()?;
        let Some(d) = self.dns.as_ref() else {
            return Ok(());
        };
        if d.questions.iter().all(|q| q.answer.is_some()) {
            return self.dns_answered();
        }
        let now = self.now();
        if d.udp_pending() && now >= d.retry_at && d.fragments_seen > 0 {
            return self.dns_fragments_over_tcp();
        }
        if d.udp_pending() && now >= d.retry_at {
            let reason = format!(
                "no answer within {} ms; asking again",
                d.schedule.waited().as_millis()
            );
            self.send_dns_queries(Some(reason), false)?;
        }
        Ok(())
    }

    /// Question `i`'s answer named only an alias: ask for its target with a new query
    /// (own id, own question check), sent at once.
    fn follow_alias(&mut self, i: usize, reason: String) -> Result<(), FetchError> {
        let id: u16 = self.rng.random();
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let Some(q) = d.questions.get_mut(i) else {
            return Ok(());
        };
        let query = q.chase.next_query(q.query.qtype, id)?;
        q.query = query;
        q.answer = None;
        q.tcp = None;
        q.follows = Some(reason);
        // With no other question waiting, the new one starts the retry schedule anew on
        // the server that answered; otherwise it joins the timer already running.
        let others_waiting = d
            .questions
            .iter()
            .any(|q| q.answer.is_none() && q.tcp.is_none() && q.follows.is_none());
        if others_waiting {
            self.send_dns_queries(None, true)
        } else {
            d.schedule.restart();
            self.send_dns_queries(None, false)
        }
    }

    /// Judges question `i`'s accepted answer against its alias chain: keeps it (final),
    /// or returns the reason to follow the alias it names.
    fn take_answer(
        &mut self,
        i: usize,
        a: DnsAnswer,
        server: IpAddr,
    ) -> Result<Option<String>, FetchError> {
        let Some(d) = self.dns.as_mut() else {
            return Ok(None);
        };
        let Some(q) = d.questions.get_mut(i) else {
            return Ok(None);
        };
        match q.chase.answer(&a, server)? {
            ChaseStep::Final => {
                q.answer = Some(a);
                d.answered_by = Some(server);
                Ok(None)
            }
            ChaseStep::Follow { reason, .. } => Ok(Some(reason)),
        }
    }

    fn drive_dns_udp(&mut self) -> Result<(), FetchError> {
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let server = SocketAddr::new(d.server(), 53);
        let mut events = Vec::new();
        let mut truncated = Vec::new();
        let mut accepted = Vec::new();
        // Judge everything that arrived (bounded by the socket's buffer).
        let sock = self.sockets.get_mut::<udp::Socket>(d.udp);
        while let Ok((data, meta)) = sock.recv() {
            let from = SocketAddr::new(IpAddr::from(meta.endpoint.addr), meta.endpoint.port);
            // The datagram is for whichever question it matches; otherwise it is ignored
            // with the reason given for the first question.
            let mut ignored = None;
            let mut matched = false;
            for (i, q) in d.questions.iter_mut().enumerate() {
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
                        let mut ev = DnsLookup::event(
                            &q.query,
                            "answer",
                            Some(server.ip()),
                            a.ttl.map(|t| format!("ttl {t} s")),
                        );
                        ev.rcode = Some(rcode_name(a.rcode));
                        ev.addresses = a.addresses.clone();
                        ev.cnames = a.cnames.clone();
                        events.push(ev);
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
                let mut ev = DnsLookup::event(
                    &q,
                    "ignored",
                    Some(from.ip()),
                    Some(format!("answer ignored: {reason}")),
                );
                ev.id = None;
                events.push(ev);
            }
        }
        for ev in events {
            self.emit(EventKind::Dns(ev));
        }
        for (i, a) in accepted {
            if let Some(reason) = self.take_answer(i, a, server.ip())? {
                self.follow_alias(i, reason)?;
            }
        }
        for i in truncated {
            self.dns_over_tcp(
                i,
                server.ip(),
                "truncated",
                "the answer did not fit in UDP (TC bit set): asking again over TCP port 53".into(),
                "the UDP answer was truncated",
            )?;
        }
        Ok(())
    }

    /// A received packet: an IP fragment from the DNS server while UDP questions wait is
    /// counted (smoltcp reassembles what it can; the count decides the TCP retry).
    pub(super) fn account_dns_fragment(&mut self, d: &Dissection) {
        let Some(ip) = d.ip.as_ref().filter(|ip| ip.fragment.is_some()) else {
            return;
        };
        let Some(lookup) = self.dns.as_mut() else {
            return;
        };
        if ip.protocol == "udp" && ip.src == lookup.server() && lookup.udp_pending() {
            lookup.fragments_seen += 1;
        }
    }

    /// The retransmission timer ran out after IP fragments came from the server without a
    /// whole answer: ask every waiting question again over TCP.
    fn dns_fragments_over_tcp(&mut self) -> Result<(), FetchError> {
        let Some(d) = self.dns.as_ref() else {
            return Ok(());
        };
        let server = d.server();
        let reason = format!(
            "the answer came in IP fragments that could not be reassembled ({} fragment{} from {server}, no whole datagram within {} ms): asking again over TCP port 53",
            d.fragments_seen,
            if d.fragments_seen == 1 { "" } else { "s" },
            d.schedule.waited().as_millis()
        );
        let waiting: Vec<usize> = d
            .questions
            .iter()
            .enumerate()
            .filter(|(_, q)| q.answer.is_none() && q.tcp.is_none())
            .map(|(i, _)| i)
            .collect();
        for i in waiting {
            self.dns_over_tcp(
                i,
                server,
                "fragmented",
                reason.clone(),
                "the UDP answer's IP fragments could not be reassembled",
            )?;
        }
        Ok(())
    }

    /// Question `i`'s UDP answer was truncated (or could not be reassembled): ask again
    /// over TCP (RFC 7766), with a `kind` event giving `reason`.
    fn dns_over_tcp(
        &mut self,
        i: usize,
        server: IpAddr,
        kind: &str,
        reason: String,
        why: &'static str,
    ) -> Result<(), FetchError> {
        let local_port: u16 = self.rng.random_range(49152..=65535);
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 8 * 1024]),
            tcp::SocketBuffer::new(vec![0; 2 * 1024]),
        );
        sock.set_nagle_enabled(false);
        sock.connect(
            self.iface.context(),
            (IpAddress::from(server), 53),
            local_port,
        )
        .map_err(|e| {
            FetchError::new(
                FailureClass::Dns,
                Phase::Resolve,
                "dns-tcp",
                format!("cannot open a TCP connection to the DNS server {server}: {e}"),
            )
        })?;
        let handle = self.sockets.add(sock);
        let Some(q) = self.dns.as_mut().and_then(|d| d.questions.get_mut(i)) else {
            return Ok(());
        };
        q.tcp = Some(TcpQuestion {
            handle,
            sent: false,
            answer: Vec::new(),
            why,
        });
        let ev = DnsLookup::event(&q.query, kind, Some(server), Some(reason));
        self.emit(EventKind::Dns(ev));
        Ok(())
    }

    fn drive_dns_tcp(&mut self) -> Result<(), FetchError> {
        let Some(d) = self.dns.as_mut() else {
            return Ok(());
        };
        let server = d.server();
        let mut events = Vec::new();
        let mut accepted = Vec::new();
        for (i, q) in d.questions.iter_mut().enumerate() {
            let Some(t) = q.tcp.as_mut().filter(|_| q.answer.is_none()) else {
                continue;
            };
            let sock = self.sockets.get_mut::<tcp::Socket>(t.handle);
            if !t.sent && sock.may_send() {
                let len = u16::try_from(q.query.bytes.len()).unwrap_or(u16::MAX);
                let mut msg = len.to_be_bytes().to_vec();
                msg.extend_from_slice(&q.query.bytes);
                if sock.send_slice(&msg).is_ok_and(|n| n == msg.len()) {
                    t.sent = true;
                }
            }
            let mut buf = [0u8; 2048];
            while sock.can_recv() && t.answer.len() < DNS_TCP_MAX + 2 {
                match sock.recv_slice(&mut buf) {
                    Ok(n) if n > 0 => {
                        let room = DNS_TCP_MAX + 2 - t.answer.len();
                        t.answer
                            .extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                    }
                    _ => break,
                }
            }
            let need = t
                .answer
                .get(..2)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])) + 2);
            let Some(end) = need.filter(|n| t.answer.len() >= *n) else {
                let connecting =
                    matches!(sock.state(), tcp::State::SynSent | tcp::State::SynReceived);
                if !connecting && (!sock.is_active() || (!sock.may_recv() && !sock.can_recv())) {
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
            let at = SocketAddr::new(server, 53);
            let verdict = check_answer(&q.query, at, at, message);
            // Done with this connection: close it (its FIN exchange still shows).
            sock.close();
            match verdict {
                AnswerVerdict::Accept(a) => {
                    let mut ev = DnsLookup::event(
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
                    events.push(ev);
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
        for ev in events {
            self.emit(EventKind::Dns(ev));
        }
        for (i, a) in accepted {
            if let Some(reason) = self.take_answer(i, a, server)? {
                self.follow_alias(i, reason)?;
            }
        }
        Ok(())
    }

    /// Every question is answered: pick the address (IPv6 first, as RFC 6724 prefers when
    /// the stack has both) or fail with the server's verdict.
    fn dns_answered(&mut self) -> Result<(), FetchError> {
        let Some(d) = self.dns.take() else {
            return Ok(());
        };
        // The UDP socket is closed now: a late duplicate answer meets a closed port, as
        // with any stub resolver. TCP ones were closed and finish their FIN exchange.
        self.sockets.remove(d.udp);
        let server = d.answered_by.unwrap_or_else(|| d.server());
        // The alias chain of the first question that has one (both have the same when
        // A and AAAA were asked).
        let chase = d
            .questions
            .iter()
            .map(|q| &q.chase)
            .find(|c| c.chain().len() > 1);
        let name = match chase {
            Some(c) => format!("{} (the alias target of {})", c.current(), c.origin()),
            None => d
                .questions
                .first()
                .map(|q| q.query.display_name())
                .unwrap_or_default(),
        };
        let answers: Vec<&DnsAnswer> = d
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
            .cfg
            .nxdomain_hint
            .as_ref()
            .map(|h| format!(" {h}"))
            .unwrap_or_default();
        let dns_error = |kind: &str, message: String| {
            FetchError::new(FailureClass::Dns, Phase::Resolve, kind, message)
        };
        if let Some(addr) = addr {
            self.exchange.marks.namelookup = Some(at(self.now()));
            return self.connect(addr);
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
                self.cfg.conditions.servfail(&server.to_string(), &name),
            ),
            ResponseCode::NoError => {
                let types: Vec<String> = d
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
