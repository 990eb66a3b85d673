//! The DNS stub resolver's messages (sans-IO): build a query, judge an answer.
//!
//! An answer is accepted only when it comes from the server and port the query went to,
//! carries the query's id, is a response to a standard query, and repeats the question
//! exactly (name compared case-insensitively, type and class equal). Anything else is
//! ignored and reported, as a careful stub resolver does.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

mod chase;
mod lookup;
mod schedule;

pub use chase::{ChaseStep, CnameChase, MAX_CNAME_QUERIES};
pub use lookup::{
    DnsCommand, DnsLookup, DnsStream, LookupSpec, StreamCondition, question_types, send_error,
    stream_open_error,
};
pub use schedule::{RETRY_FIRST, RETRY_MAX, RetrySchedule, TRIES_PER_SERVER};

/// Longest CNAME chain followed inside one answer.
const MAX_CNAME_CHAIN: usize = 16;

/// Why a DNS query could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DnsQueryError {
    /// The host name is not a valid DNS name.
    #[error("'{name}' is not a valid DNS name: {detail}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Encoding failed.
    #[error("could not encode the DNS query: {0}")]
    Encode(String),
}

/// One DNS question, ready to send.
#[derive(Debug, Clone)]
pub struct DnsQuery {
    /// Message id.
    pub id: u16,
    /// The name asked for (fully qualified).
    pub name: Name,
    /// The record type asked for.
    pub qtype: RecordType,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

impl DnsQuery {
    /// A recursive query for `host`'s records of type `qtype` with message id `id`.
    pub fn new(host: &str, qtype: RecordType, id: u16) -> Result<Self, DnsQueryError> {
        let mut name = Name::from_utf8(host).map_err(|e| DnsQueryError::BadName {
            name: host.to_string(),
            detail: e.to_string(),
        })?;
        name.set_fqdn(true);
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name.clone(), qtype));
        let bytes = msg
            .to_vec()
            .map_err(|e| DnsQueryError::Encode(e.to_string()))?;
        Ok(DnsQuery {
            id,
            name,
            qtype,
            bytes,
        })
    }

    /// The name without the trailing dot, for people.
    pub fn display_name(&self) -> String {
        self.name.to_string().trim_end_matches('.').to_string()
    }
}

/// An accepted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Response code (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, ...).
    pub rcode: ResponseCode,
    /// Addresses of the asked type for the name at the end of the CNAME chain.
    pub addresses: Vec<IpAddr>,
    /// The aliases followed, in order; a chain that loops ends with the first name that
    /// came back (so [`CnameChase`] names the loop).
    pub cnames: Vec<String>,
    /// Smallest TTL of the records used.
    pub ttl: Option<u32>,
    /// The server set the truncation (TC) bit.
    pub truncated: bool,
}

/// What to do with a datagram that arrived on the query's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerVerdict {
    /// It answers the query.
    Accept(DnsAnswer),
    /// It does not; the reason says why (it is ignored, the query stays pending).
    Ignore(String),
}

/// Judges a datagram from `from` against `query`, which was sent to `server`.
pub fn check_answer(
    query: &DnsQuery,
    server: SocketAddr,
    from: SocketAddr,
    bytes: &[u8],
) -> AnswerVerdict {
    if from != server {
        return AnswerVerdict::Ignore(format!(
            "it came from {from}, but the query went to {server}"
        ));
    }
    let msg = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(e) => return AnswerVerdict::Ignore(format!("it is not a valid DNS message ({e})")),
    };
    if msg.metadata.id != query.id {
        return AnswerVerdict::Ignore(format!(
            "its id 0x{:04x} is not the query's 0x{:04x}",
            msg.metadata.id, query.id
        ));
    }
    if msg.metadata.message_type != MessageType::Response {
        return AnswerVerdict::Ignore("it is a query, not a response".to_string());
    }
    if msg.metadata.op_code != OpCode::Query {
        return AnswerVerdict::Ignore(format!(
            "its opcode is {:?}, not QUERY",
            msg.metadata.op_code
        ));
    }
    let question_ok = msg.queries.len() == 1
        && msg.queries.first().is_some_and(|q| {
            q.name().eq_case(&query.name) || q.name().to_lowercase() == query.name.to_lowercase()
        })
        && msg
            .queries
            .first()
            .is_some_and(|q| q.query_type() == query.qtype && q.query_class() == DNSClass::IN);
    if !question_ok {
        let got = msg
            .queries
            .first()
            .map(|q| format!("{} {}", q.name(), q.query_type()))
            .unwrap_or_else(|| "no question".to_string());
        return AnswerVerdict::Ignore(format!(
            "its question ({got}) is not the query's ({} {})",
            query.name, query.qtype
        ));
    }
    AnswerVerdict::Accept(follow_answers(query, &msg))
}

/// Follows the CNAME chain from the question and collects the addresses at its end.
fn follow_answers(query: &DnsQuery, msg: &Message) -> DnsAnswer {
    let mut target = query.name.to_lowercase();
    let mut visited = vec![target.clone()];
    let mut cnames = Vec::new();
    let mut ttl: Option<u32> = None;
    for _ in 0..MAX_CNAME_CHAIN {
        let next = msg.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if r.name.to_lowercase() == target => Some((c.0.clone(), r.ttl)),
            _ => None,
        });
        match next {
            Some((alias, t)) => {
                ttl = Some(ttl.map_or(t, |x| x.min(t)));
                target = alias.to_lowercase();
                cnames.push(alias.to_string().trim_end_matches('.').to_string());
                if visited.contains(&target) {
                    // A loop inside the answer: stop at the name that came back.
                    break;
                }
                visited.push(target.clone());
            }
            None => break,
        }
    }
    let mut addresses = Vec::new();
    for r in &msg.answers {
        if r.name.to_lowercase() != target {
            continue;
        }
        let addr = match (&r.data, query.qtype) {
            (RData::A(a), RecordType::A) => Some(IpAddr::V4(a.0)),
            (RData::AAAA(a), RecordType::AAAA) => Some(IpAddr::V6(a.0)),
            _ => None,
        };
        if let Some(a) = addr {
            ttl = Some(ttl.map_or(r.ttl, |x| x.min(r.ttl)));
            addresses.push(a);
        }
    }
    DnsAnswer {
        rcode: msg.metadata.response_code,
        addresses,
        cnames,
        ttl,
        truncated: msg.metadata.truncation,
    }
}

/// The response code's usual name (`NOERROR`, `NXDOMAIN`, ...).
pub fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME};
    use std::net::Ipv4Addr;

    const SERVER: &str = "10.88.0.1:53";

    fn answer_for(q: &DnsQuery, edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut m = Message::new(q.id, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), q.qtype));
        m.add_answer(Record::from_rdata(
            q.name.clone(),
            300,
            RData::A(A(Ipv4Addr::new(10, 88, 0, 1))),
        ));
        edit(&mut m);
        m.to_vec().unwrap()
    }

    #[test]
    fn accepts_a_matching_answer() {
        let q = DnsQuery::new("www.example.test", RecordType::A, 0x1234).unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let v = check_answer(&q, s, s, &answer_for(&q, |_| {}));
        let AnswerVerdict::Accept(a) = v else {
            panic!("{v:?}")
        };
        assert_eq!(a.addresses, vec![IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1))]);
        assert_eq!(a.ttl, Some(300));
        assert_eq!(a.rcode, ResponseCode::NoError);
    }

    #[test]
    fn ignores_wrong_id_port_and_question() {
        let q = DnsQuery::new("www.example.test", RecordType::A, 7).unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let other_port: SocketAddr = "10.88.0.1:5353".parse().unwrap();
        assert!(matches!(
            check_answer(&q, s, other_port, &answer_for(&q, |_| {})),
            AnswerVerdict::Ignore(r) if r.contains("came from")
        ));
        let wrong_id = answer_for(&q, |m| m.metadata.id = 8);
        assert!(matches!(
            check_answer(&q, s, s, &wrong_id),
            AnswerVerdict::Ignore(r) if r.contains("id")
        ));
        let other = DnsQuery::new("evil.test", RecordType::A, 7).unwrap();
        let wrong_q = answer_for(&other, |_| {});
        assert!(matches!(
            check_answer(&q, s, s, &wrong_q),
            AnswerVerdict::Ignore(r) if r.contains("question")
        ));
        assert!(matches!(
            check_answer(&q, s, s, b"\x00\x07garbage"),
            AnswerVerdict::Ignore(_)
        ));
    }

    #[test]
    fn question_name_case_does_not_matter() {
        let q = DnsQuery::new("www.example.test", RecordType::A, 9).unwrap();
        let upper = DnsQuery::new("WWW.Example.TEST", RecordType::A, 9).unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let bytes = answer_for(&upper, |_| {});
        assert!(matches!(
            check_answer(&q, s, s, &bytes),
            AnswerVerdict::Accept(_)
        ));
    }

    #[test]
    fn follows_cname_chains() {
        let q = DnsQuery::new("alias.example.test", RecordType::A, 1).unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let www = Name::from_ascii("www.example.test.").unwrap();
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(
            q.name.clone(),
            60,
            RData::CNAME(CNAME(www.clone())),
        ));
        m.add_answer(Record::from_rdata(
            www,
            300,
            RData::A(A(Ipv4Addr::new(10, 88, 0, 1))),
        ));
        let AnswerVerdict::Accept(a) = check_answer(&q, s, s, &m.to_vec().unwrap()) else {
            panic!()
        };
        assert_eq!(a.cnames, vec!["www.example.test".to_string()]);
        assert_eq!(a.addresses.len(), 1);
        assert_eq!(a.ttl, Some(60));
    }

    #[test]
    fn a_loop_inside_an_answer_ends_at_the_name_that_came_back() {
        let q = DnsQuery::new("a.example.test", RecordType::A, 2).unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let b = Name::from_ascii("b.example.test.").unwrap();
        let mut m = Message::new(2, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(
            q.name.clone(),
            60,
            RData::CNAME(CNAME(b.clone())),
        ));
        m.add_answer(Record::from_rdata(
            b,
            60,
            RData::CNAME(CNAME(q.name.clone())),
        ));
        let AnswerVerdict::Accept(a) = check_answer(&q, s, s, &m.to_vec().unwrap()) else {
            panic!()
        };
        assert_eq!(a.cnames, ["b.example.test", "a.example.test"]);
        assert!(a.addresses.is_empty());
        let mut chase = CnameChase::new("a.example.test", 443);
        let e = chase.answer(&a, s.ip()).unwrap_err();
        assert_eq!(e.kind, "cname-loop");
    }

    #[test]
    fn nxdomain_is_accepted_with_its_rcode() {
        let q = DnsQuery::new("nope.test", RecordType::A, 3).unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let mut m = Message::new(3, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), RecordType::A));
        m.metadata.response_code = ResponseCode::NXDomain;
        let AnswerVerdict::Accept(a) = check_answer(&q, s, s, &m.to_vec().unwrap()) else {
            panic!()
        };
        assert_eq!(rcode_name(a.rcode), "NXDOMAIN");
        assert!(a.addresses.is_empty());
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(DnsQuery::new(&"a".repeat(300), RecordType::A, 1).is_err());
    }
}
