//! [`Zone`]: the lab's names, and the pure function from a DNS query to its response.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// TTL of the lab's records, in seconds.
pub const DNS_TTL: u32 = 300;

/// Largest UDP payload the server advertises and answers with when the query has EDNS(0).
const EDNS_PAYLOAD: u16 = 1232;

/// Largest answer without EDNS(0) (RFC 1035).
const CLASSIC_PAYLOAD: usize = 512;

/// Largest DNS message over TCP (its two-byte length prefix).
const TCP_PAYLOAD: usize = 65_535;

/// Longest CNAME chain the server follows inside its zone.
const MAX_CNAME_CHAIN: usize = 8;

/// Bytes of TXT padding a padded answer carries in its additional section (with the rest
/// of the message, a UDP answer of about 3.7 KB: three IP fragments at MTU 1500).
pub(crate) const PADDING_BYTES: usize = 3_600;

/// One record of the lab's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneRecord {
    /// An IPv4 address (A record).
    A(Ipv4Addr),
    /// An IPv6 address (AAAA record).
    Aaaa(Ipv6Addr),
    /// An alias for another name (CNAME record).
    Cname(String),
}

/// How a response travels, which decides its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// UDP: 512 bytes, or the EDNS(0) payload size; longer answers are truncated (TC).
    Udp,
    /// TCP: up to 65535 bytes, never truncated.
    Tcp,
}

/// How the server answers, beyond what the zone says (the lab's DNS faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnswerPolicy {
    /// The transport the response goes back on.
    pub transport: Transport,
    /// Answer every well-formed query with this response code and no records.
    pub rcode: Option<ResponseCode>,
    /// Set the TC bit and drop every record, whatever the size.
    pub truncate: bool,
    /// Answer an alias with its CNAME record only, without the target's records (as
    /// unbound's `local-data` does): the client must ask for the target itself.
    pub cname_only: bool,
    /// Add [`PADDING_BYTES`] of TXT records to the additional section and ignore the
    /// UDP size limit (a server that sends answers larger than the path's MTU).
    pub pad: bool,
}

impl AnswerPolicy {
    /// Plain answers from the zone over `transport`.
    pub fn plain(transport: Transport) -> Self {
        AnswerPolicy {
            transport,
            rcode: None,
            truncate: false,
            cname_only: false,
            pad: false,
        }
    }
}

/// The lab's authoritative data: names with their A, AAAA and CNAME records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    records: Vec<(String, ZoneRecord)>,
}

impl Zone {
    /// A zone of `(name, record)` pairs; names are matched without case or final dot, and
    /// a name may have several records (an A and an AAAA, say).
    pub fn new(records: impl IntoIterator<Item = (String, ZoneRecord)>) -> Self {
        Zone {
            records: records
                .into_iter()
                .map(|(name, record)| {
                    let record = match record {
                        ZoneRecord::Cname(target) => ZoneRecord::Cname(normalize(&target)),
                        other => other,
                    };
                    (normalize(&name), record)
                })
                .collect(),
        }
    }

    /// The zone with `name`'s records replaced by one CNAME record to `target`.
    pub fn with_alias(mut self, name: &str, target: &str) -> Self {
        let name = normalize(name);
        self.records.retain(|(n, _)| *n != name);
        self.records
            .push((name, ZoneRecord::Cname(normalize(target))));
        self
    }

    /// The zone's records.
    pub fn records(&self) -> &[(String, ZoneRecord)] {
        &self.records
    }

    /// The zone's names, each once, in the order of their first record.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (name, _) in &self.records {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The first IPv4 address of `name`, following CNAMEs, if the zone has one.
    pub fn lookup(&self, name: &str) -> Option<Ipv4Addr> {
        self.addresses(name).into_iter().find_map(|a| match a {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
    }

    /// Every address (A, then AAAA) of `name`, following CNAMEs.
    pub fn addresses(&self, name: &str) -> Vec<IpAddr> {
        let (_, target) = self.follow(&normalize(name));
        let mut v4: Vec<IpAddr> = Vec::new();
        let mut v6: Vec<IpAddr> = Vec::new();
        for record in self.records_of(&target) {
            match record {
                ZoneRecord::A(a) => v4.push(IpAddr::V4(*a)),
                ZoneRecord::Aaaa(a) => v6.push(IpAddr::V6(*a)),
                ZoneRecord::Cname(_) => {}
            }
        }
        v4.extend(v6);
        v4
    }

    fn records_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ZoneRecord> + 'a {
        self.records
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, r)| r)
    }

    fn knows(&self, name: &str) -> bool {
        self.records.iter().any(|(n, _)| n == name)
    }

    /// Follows CNAMEs from `name` (normalized): the `(alias, target)` steps and the name
    /// at the end of the chain (bounded by [`MAX_CNAME_CHAIN`]).
    fn follow(&self, name: &str) -> (Vec<(String, String)>, String) {
        let mut steps = Vec::new();
        let mut current = name.to_owned();
        for _ in 0..MAX_CNAME_CHAIN {
            let next = self.records_of(&current).find_map(|r| match r {
                ZoneRecord::Cname(t) => Some(t.clone()),
                _ => None,
            });
            match next {
                Some(target) => {
                    steps.push((current.clone(), target.clone()));
                    current = target;
                }
                None => break,
            }
        }
        (steps, current)
    }

    /// The response to one DNS datagram over UDP, or `None` when it gets no answer at all
    /// (shorter than a DNS header, or not a query).
    ///
    /// - A known name: its records of the asked type (A, AAAA; ANY gives both), TTL
    ///   [`DNS_TTL`]. An alias: its CNAME record, then the target's records, as a
    ///   recursive resolver answers. A known name without records of that type: NOERROR
    ///   without answers ("NODATA"); an unknown name: NXDOMAIN. AA and RA are set, the id,
    ///   opcode, RD flag and question are echoed.
    /// - Undecodable queries get FORMERR, opcodes other than QUERY NOTIMP, classes other
    ///   than IN REFUSED, anything but exactly one question FORMERR.
    pub fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        self.respond(query, &AnswerPolicy::plain(Transport::Udp))
    }

    /// The response to one DNS message under `policy` (see [`Zone::answer`]).
    pub(crate) fn respond(&self, query: &[u8], policy: &AnswerPolicy) -> Option<Vec<u8>> {
        let [id_high, id_low, flags, ..] = *query else {
            return None;
        };
        if query.len() < 12 {
            return None;
        }
        let id = u16::from_be_bytes([id_high, id_low]);
        let is_response = flags & 0x80 != 0;
        if is_response {
            return None;
        }
        let op_code = OpCode::from_u8((flags >> 3) & 0x0f);
        let recursion_desired = flags & 0x01 != 0;

        let request = match Message::from_vec(query) {
            Ok(m) => m,
            Err(e) => {
                log::debug!("lab DNS: undecodable query id {id}: {e}");
                return error_response(id, op_code, recursion_desired, ResponseCode::FormErr);
            }
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        if request.metadata.op_code != OpCode::Query {
            return error_response(id, op_code, recursion_desired, ResponseCode::NotImp);
        }
        let [question] = request.queries.as_slice() else {
            return error_response(id, op_code, recursion_desired, ResponseCode::FormErr);
        };

        let mut response = Message::response(id, OpCode::Query);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = recursion_desired;
        response.metadata.recursion_available = true;
        response.add_query(question.clone());
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            response.edns = Some(edns);
        }
        match policy.rcode {
            Some(code) => {
                response.metadata.response_code = code;
                response.metadata.authoritative = code != ResponseCode::ServFail;
            }
            None => self.fill_answer(&mut response, question, policy.cname_only),
        }
        if policy.truncate {
            return response.truncate().to_vec().ok();
        }
        if policy.pad {
            pad(&mut response, question);
            return response.to_vec().ok();
        }

        let bytes = response.to_vec().ok()?;
        let limit = match policy.transport {
            Transport::Tcp => TCP_PAYLOAD,
            Transport::Udp if request.edns.is_some() => usize::from(EDNS_PAYLOAD),
            Transport::Udp => CLASSIC_PAYLOAD,
        };
        if bytes.len() > limit {
            return response.truncate().to_vec().ok();
        }
        Some(bytes)
    }

    fn fill_answer(&self, response: &mut Message, question: &Query, cname_only: bool) {
        if question.query_class() != DNSClass::IN {
            response.metadata.response_code = ResponseCode::Refused;
            response.metadata.authoritative = false;
            return;
        }
        let asked = normalize(&question.name().to_ascii());
        if !self.knows(&asked) {
            response.metadata.response_code = ResponseCode::NXDomain;
            return;
        }
        let qtype = question.query_type();
        let (steps, target) = self.follow(&asked);
        let mut owner = question.name().clone();
        for (_, alias_target) in &steps {
            let Ok(target_name) = Name::from_ascii(format!("{alias_target}.")) else {
                return;
            };
            response.add_answer(Record::from_rdata(
                owner.clone(),
                DNS_TTL,
                RData::CNAME(CNAME(target_name.clone())),
            ));
            owner = target_name;
            if qtype == RecordType::CNAME || cname_only {
                // Only the alias itself was asked for, or the server names no more.
                return;
            }
        }
        if !self.knows(&target) {
            response.metadata.response_code = ResponseCode::NXDomain;
            return;
        }
        for record in self.records_of(&target) {
            let data = match (record, qtype) {
                (ZoneRecord::A(a), RecordType::A | RecordType::ANY) => RData::A(A(*a)),
                (ZoneRecord::Aaaa(a), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(*a)),
                _ => continue,
            };
            response.add_answer(Record::from_rdata(owner.clone(), DNS_TTL, data));
        }
    }
}

/// Adds [`PADDING_BYTES`] of TXT data for the question's name to the additional section.
fn pad(response: &mut Message, question: &Query) {
    let strings: Vec<String> = (0..PADDING_BYTES / 255)
        .map(|i| format!("{:-<255}", format!("fetchscope-lab-padding-{i}")))
        .collect();
    response.add_additional(Record::from_rdata(
        question.name().clone(),
        DNS_TTL,
        RData::TXT(TXT::new(strings)),
    ));
}

/// An answer with only a header (and the given response code).
fn error_response(
    id: u16,
    op_code: OpCode,
    recursion_desired: bool,
    code: ResponseCode,
) -> Option<Vec<u8>> {
    let mut m = Message::error_msg(id, op_code, code);
    m.metadata.recursion_desired = recursion_desired;
    m.metadata.recursion_available = true;
    m.to_vec().ok()
}

/// Lower case, without the final dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone::new([
            (
                "www.example.test".to_owned(),
                ZoneRecord::A(Ipv4Addr::new(10, 88, 0, 1)),
            ),
            (
                "example.test".to_owned(),
                ZoneRecord::A(Ipv4Addr::new(10, 88, 0, 1)),
            ),
        ])
    }

    fn query(id: u16, name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    fn parse(bytes: &[u8]) -> Message {
        Message::from_vec(bytes).unwrap()
    }

    #[test]
    fn a_record_for_known_names_any_case() {
        for name in ["www.example.test", "WWW.Example.TEST.", "example.test"] {
            let r = parse(&zone().answer(&query(4711, name, RecordType::A)).unwrap());
            assert_eq!(r.metadata.id, 4711);
            assert_eq!(r.metadata.message_type, MessageType::Response);
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
            assert!(r.metadata.authoritative && r.metadata.recursion_available);
            assert!(r.metadata.recursion_desired);
            assert_eq!(r.queries.len(), 1);
            assert_eq!(r.answers.len(), 1);
            assert_eq!(r.answers[0].ttl, DNS_TTL);
            assert_eq!(r.answers[0].data, RData::A(A(Ipv4Addr::new(10, 88, 0, 1))));
        }
    }

    #[test]
    fn aaaa_for_known_name_is_empty_noerror_and_unknown_is_nxdomain() {
        let r = parse(
            &zone()
                .answer(&query(1, "www.example.test", RecordType::AAAA))
                .unwrap(),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        let r = parse(
            &zone()
                .answer(&query(2, "nope.test", RecordType::A))
                .unwrap(),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.answers.is_empty());
        assert_eq!(r.queries[0].name().to_ascii(), "nope.test.");
    }

    #[test]
    fn edns_query_gets_edns_answer() {
        let mut m = parse(&query(3, "www.example.test", RecordType::A));
        m.edns = Some(Edns::new());
        let r = parse(&zone().answer(&m.to_vec().unwrap()).unwrap());
        assert_eq!(r.edns.map(|e| e.max_payload()), Some(EDNS_PAYLOAD));
    }

    #[test]
    fn malformed_queries_never_panic() {
        let z = zone();
        assert_eq!(z.answer(&[]), None);
        assert_eq!(z.answer(&[1, 2, 3]), None);
        // header claims one question that isn't there: FORMERR with the same id
        let r = parse(
            &z.answer(&[0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0])
                .unwrap(),
        );
        assert_eq!(r.metadata.id, 0xabcd);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // no question at all
        let r = parse(&z.answer(&[0, 7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // a response is not answered
        let mut resp = query(5, "www.example.test", RecordType::A);
        resp[2] |= 0x80;
        assert_eq!(z.answer(&resp), None);
        // a compression pointer loop
        let mut looped = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let r = parse(&z.answer(&looped).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // deterministic pseudo-random garbage
        let mut x: u32 = 0x1234_5678;
        for len in 0..600usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = z.answer(&bytes);
        }
    }

    #[test]
    fn other_opcodes_and_classes() {
        let mut q = query(6, "www.example.test", RecordType::A);
        q[2] |= 2 << 3; // opcode STATUS
        let r = parse(&zone().answer(&q).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
        let mut m = parse(&query(7, "www.example.test", RecordType::A));
        m.queries[0].set_query_class(DNSClass::CH);
        let r = parse(&zone().answer(&m.to_vec().unwrap()).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    }

    fn lab_zone() -> Zone {
        let v6: Ipv6Addr = "fd00:88::1".parse().unwrap();
        Zone::new([
            (
                "www.example.test".to_owned(),
                ZoneRecord::A(Ipv4Addr::new(10, 88, 0, 1)),
            ),
            ("www.example.test".to_owned(), ZoneRecord::Aaaa(v6)),
            (
                "alias.example.test".to_owned(),
                ZoneRecord::Cname("www.example.test".to_owned()),
            ),
            (
                "chain.example.test".to_owned(),
                ZoneRecord::Cname("Alias.Example.Test.".to_owned()),
            ),
            (
                "dangling.example.test".to_owned(),
                ZoneRecord::Cname("gone.example.test".to_owned()),
            ),
        ])
    }

    #[test]
    fn cname_chains_are_answered_like_a_recursive_resolver() {
        let z = lab_zone();
        let r = parse(
            &z.answer(&query(1, "chain.example.test", RecordType::A))
                .unwrap(),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let got: Vec<String> = r
            .answers
            .iter()
            .map(|a| format!("{} {}", a.name, a.data))
            .collect();
        assert_eq!(
            got,
            [
                "chain.example.test. alias.example.test.",
                "alias.example.test. www.example.test.",
                "www.example.test. 10.88.0.1",
            ]
        );
        // AAAA through the alias
        let r = parse(
            &z.answer(&query(2, "alias.example.test", RecordType::AAAA))
                .unwrap(),
        );
        assert_eq!(r.answers.len(), 2);
        assert_eq!(
            r.answers[1].data,
            RData::AAAA(AAAA("fd00:88::1".parse().unwrap()))
        );
        // the CNAME itself
        let r = parse(
            &z.answer(&query(3, "alias.example.test", RecordType::CNAME))
                .unwrap(),
        );
        assert_eq!(r.answers.len(), 1);
        // an alias to a name the zone does not have
        let r = parse(
            &z.answer(&query(4, "dangling.example.test", RecordType::A))
                .unwrap(),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            z.addresses("CHAIN.example.test."),
            vec![
                IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1)),
                IpAddr::V6("fd00:88::1".parse().unwrap())
            ]
        );
        assert_eq!(
            z.lookup("alias.example.test"),
            Some(Ipv4Addr::new(10, 88, 0, 1))
        );
        assert_eq!(
            z.names(),
            [
                "www.example.test",
                "alias.example.test",
                "chain.example.test",
                "dangling.example.test"
            ]
        );
    }

    #[test]
    fn a_cname_loop_ends() {
        let z = Zone::new([
            ("a.test".to_owned(), ZoneRecord::Cname("b.test".to_owned())),
            ("b.test".to_owned(), ZoneRecord::Cname("a.test".to_owned())),
        ]);
        let r = parse(&z.answer(&query(1, "a.test", RecordType::A)).unwrap());
        assert_eq!(r.answers.len(), MAX_CNAME_CHAIN);
        assert!(z.addresses("a.test").is_empty());
    }

    #[test]
    fn policies_override_the_rcode_or_truncate() {
        let z = lab_zone();
        let q = query(5, "www.example.test", RecordType::A);
        for code in [ResponseCode::NXDomain, ResponseCode::ServFail] {
            let policy = AnswerPolicy {
                rcode: Some(code),
                ..AnswerPolicy::plain(Transport::Udp)
            };
            let r = parse(&z.respond(&q, &policy).unwrap());
            assert_eq!(r.metadata.response_code, code);
            assert!(r.answers.is_empty());
            // the question is echoed, so a careful stub accepts the answer
            assert_eq!(r.queries.len(), 1);
            assert_eq!(r.metadata.id, 5);
        }
        let policy = AnswerPolicy {
            truncate: true,
            ..AnswerPolicy::plain(Transport::Udp)
        };
        let r = parse(&z.respond(&q, &policy).unwrap());
        assert!(r.metadata.truncation);
        assert!(r.answers.is_empty());
        assert_eq!(r.queries.len(), 1);
        assert_eq!(r.metadata.id, 5);
        let r = parse(&z.respond(&q, &AnswerPolicy::plain(Transport::Tcp)).unwrap());
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 1);
    }

    #[test]
    fn cname_only_answers_name_the_alias_and_nothing_more() {
        let z = lab_zone();
        let policy = AnswerPolicy {
            cname_only: true,
            ..AnswerPolicy::plain(Transport::Udp)
        };
        let r = parse(
            &z.respond(&query(1, "chain.example.test", RecordType::A), &policy)
                .unwrap(),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.answers[0].data,
            RData::CNAME(CNAME(Name::from_ascii("alias.example.test.").unwrap()))
        );
        // the target's own query gets its address
        let r = parse(
            &z.respond(&query(2, "www.example.test", RecordType::A), &policy)
                .unwrap(),
        );
        assert_eq!(r.answers[0].data, RData::A(A(Ipv4Addr::new(10, 88, 0, 1))));
        // an alias replaces the name's records
        let z = lab_zone().with_alias("WWW.example.test.", "example.test");
        assert_eq!(
            z.records()
                .iter()
                .filter(|(n, _)| n == "www.example.test")
                .collect::<Vec<_>>(),
            [&(
                "www.example.test".to_owned(),
                ZoneRecord::Cname("example.test".to_owned())
            )]
        );
    }

    #[test]
    fn padded_answers_exceed_the_mtu_over_udp_and_keep_their_records() {
        let z = lab_zone();
        let policy = AnswerPolicy {
            pad: true,
            ..AnswerPolicy::plain(Transport::Udp)
        };
        let bytes = z
            .respond(&query(3, "www.example.test", RecordType::A), &policy)
            .unwrap();
        assert!(
            bytes.len() > 3_000 && bytes.len() < 4_000,
            "{}",
            bytes.len()
        );
        let r = parse(&bytes);
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.additionals.len(), 1);
    }

    #[test]
    fn big_answers_are_truncated_over_udp_but_not_over_tcp() {
        let z = Zone::new((0..40).map(|i| {
            (
                "many.test".to_owned(),
                ZoneRecord::Aaaa(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i)),
            )
        }));
        let q = query(6, "many.test", RecordType::AAAA);
        let r = parse(&z.answer(&q).unwrap());
        assert!(r.metadata.truncation && r.answers.is_empty());
        let r = parse(&z.respond(&q, &AnswerPolicy::plain(Transport::Tcp)).unwrap());
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 40);
    }
}
