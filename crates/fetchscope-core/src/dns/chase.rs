//! [`CnameChase`]: following an alias whose answer names no address (RFC 1034 §5.3.3).
//!
//! A resolver may answer a name with only its CNAME record (unbound's `local-data` does).
//! A careful stub then asks for the alias target itself, with a new query of its own (own
//! id, own question check), and keeps doing so for at most [`MAX_CNAME_QUERIES`] queries.
//! Every alias seen, inside one answer or across answers, is remembered: a name that comes
//! back is a loop, and the lookup ends naming it. The smoltcp stub and the kernel twin
//! share this rule.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;

use super::DnsAnswer;
use crate::error::{FailureClass, FetchError};
use crate::event::Phase;

/// Most extra queries sent to follow aliases whose answers name no address.
pub const MAX_CNAME_QUERIES: usize = 8;

/// What to do after an accepted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChaseStep {
    /// The answer is final: it has addresses, an error code, or no alias to follow.
    Final,
    /// Ask for `to`, the target of the alias `from`, with a new query.
    Follow {
        /// The alias (the name just asked for, or the end of the chain in its answer).
        from: String,
        /// The name to ask for next.
        to: String,
        /// The reason text for the new query's event.
        reason: String,
    },
}

/// One question's walk along an alias chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnameChase {
    /// The name first asked for, then every alias target seen, in order (lower case).
    chain: Vec<String>,
    /// Extra queries sent so far.
    queries: usize,
    /// The port of the fetch, for the `--resolve` hint.
    port: u16,
}

impl CnameChase {
    /// A chase starting at `origin`, the name the fetch resolves (for port `port`).
    pub fn new(origin: &str, port: u16) -> Self {
        CnameChase {
            chain: vec![normalize(origin)],
            queries: 0,
            port,
        }
    }

    /// The name first asked for.
    pub fn origin(&self) -> &str {
        self.chain.first().map(String::as_str).unwrap_or_default()
    }

    /// The name at the end of the chain so far (the one asked for, or to ask for, next).
    pub fn current(&self) -> &str {
        self.chain.last().map(String::as_str).unwrap_or_default()
    }

    /// Every name of the chain, the origin first.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }

    /// The query for the name the chase is at now (the alias target), with its own `id`.
    pub fn next_query(
        &self,
        qtype: hickory_proto::rr::RecordType,
        id: u16,
    ) -> Result<super::DnsQuery, FetchError> {
        super::DnsQuery::new(self.current(), qtype, id).map_err(|e| {
            FetchError::new(
                FailureClass::Dns,
                Phase::Resolve,
                "bad-name",
                format!("the alias target cannot be asked for: {e}"),
            )
        })
    }

    /// Extra queries sent to follow aliases so far.
    pub fn queries(&self) -> usize {
        self.queries
    }

    /// The chain as people read it: `a → b → c`.
    pub fn chain_text(&self) -> String {
        self.chain.join(" → ")
    }

    /// Takes the accepted `answer` to the query for [`CnameChase::current`], which
    /// `server` sent: the next step, or the error that ends the lookup (an alias loop,
    /// kind `cname-loop`; a chain longer than [`MAX_CNAME_QUERIES`] queries, kind
    /// `cname-chain-too-long`).
    pub fn answer(&mut self, answer: &DnsAnswer, server: IpAddr) -> Result<ChaseStep, FetchError> {
        for alias in &answer.cnames {
            let alias = normalize(alias);
            let seen = self.chain.contains(&alias);
            self.chain.push(alias);
            if seen {
                return Err(self.loop_error(server));
            }
        }
        if answer.cnames.is_empty()
            || !answer.addresses.is_empty()
            || answer.rcode != ResponseCode::NoError
        {
            return Ok(ChaseStep::Final);
        }
        if self.queries >= MAX_CNAME_QUERIES {
            return Err(FetchError::new(
                FailureClass::Dns,
                Phase::Resolve,
                "cname-chain-too-long",
                format!(
                    "{} is an alias chain longer than {MAX_CNAME_QUERIES} lookups: {}; the DNS server {server} never named an address, pass --resolve {}:{}:ADDR to skip DNS",
                    self.origin(),
                    self.chain_text(),
                    self.origin(),
                    self.port
                ),
            ));
        }
        self.queries += 1;
        let from = self
            .chain
            .get(self.chain.len().saturating_sub(2))
            .cloned()
            .unwrap_or_default();
        let to = self.current().to_string();
        let reason = format!(
            "follows the alias {from} → {to} (the answer named no address for it; lookup {} of at most {MAX_CNAME_QUERIES})",
            self.queries
        );
        Ok(ChaseStep::Follow { from, to, reason })
    }

    /// The sentence for a chain that ended at a name without an address of the kinds
    /// `types` asked for, or `None` when there was no alias (the caller's usual
    /// sentence fits then).
    pub fn no_address_message(&self, types: &str, server: IpAddr) -> Option<String> {
        (self.chain.len() > 1).then(|| {
            format!(
                "{} is an alias of {} ({}), which has no address of the kind the stack can use ({types} record) at {server}; pass --resolve {}:{}:ADDR to skip DNS",
                self.origin(),
                self.current(),
                self.chain_text(),
                self.origin(),
                self.port
            )
        })
    }

    fn loop_error(&self, server: IpAddr) -> FetchError {
        FetchError::new(
            FailureClass::Dns,
            Phase::Resolve,
            "cname-loop",
            format!(
                "{} is an alias loop: {}; the zone at the DNS server {server} is broken, pass --resolve {}:{}:ADDR to skip DNS",
                self.origin(),
                self.chain_text(),
                self.origin(),
                self.port
            ),
        )
    }
}

/// Lower case, without the final dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1));

    fn answer(cnames: &[&str], addresses: &[IpAddr]) -> DnsAnswer {
        DnsAnswer {
            rcode: ResponseCode::NoError,
            addresses: addresses.to_vec(),
            cnames: cnames.iter().map(|c| c.to_string()).collect(),
            ttl: Some(300),
            truncated: false,
        }
    }

    #[test]
    fn an_answer_with_an_address_is_final() {
        let mut c = CnameChase::new("www.example.test", 443);
        let a = answer(&["cdn.example.test"], &[SERVER]);
        assert_eq!(c.answer(&a, SERVER).unwrap(), ChaseStep::Final);
        assert_eq!(c.queries(), 0);
        assert_eq!(c.chain_text(), "www.example.test → cdn.example.test");
        let plain = answer(&[], &[SERVER]);
        let mut c = CnameChase::new("www.example.test", 443);
        assert_eq!(c.answer(&plain, SERVER).unwrap(), ChaseStep::Final);
        assert!(c.no_address_message("A", SERVER).is_none());
    }

    #[test]
    fn a_cname_only_answer_is_followed_with_its_own_query() {
        let mut c = CnameChase::new("WWW.example.test.", 443);
        let step = c
            .answer(&answer(&["a.example.test."], &[]), SERVER)
            .unwrap();
        let ChaseStep::Follow { from, to, reason } = step else {
            panic!("{step:?}")
        };
        assert_eq!(
            (from.as_str(), to.as_str()),
            ("www.example.test", "a.example.test")
        );
        assert!(
            reason.contains("www.example.test → a.example.test"),
            "{reason}"
        );
        assert_eq!(c.current(), "a.example.test");
        assert_eq!(c.queries(), 1);
        // the target's own answer has the address
        let done = c.answer(&answer(&[], &[SERVER]), SERVER).unwrap();
        assert_eq!(done, ChaseStep::Final);
    }

    #[test]
    fn an_error_code_with_an_alias_is_final() {
        let mut c = CnameChase::new("www.example.test", 443);
        let mut a = answer(&["gone.example.test"], &[]);
        a.rcode = ResponseCode::NXDomain;
        assert_eq!(c.answer(&a, SERVER).unwrap(), ChaseStep::Final);
    }

    #[test]
    fn a_loop_across_answers_is_named() {
        let mut c = CnameChase::new("www.example.test", 443);
        assert!(matches!(
            c.answer(&answer(&["loop.example.test"], &[]), SERVER),
            Ok(ChaseStep::Follow { .. })
        ));
        let e = c
            .answer(&answer(&["www.example.test"], &[]), SERVER)
            .unwrap_err();
        assert_eq!(e.kind, "cname-loop");
        assert!(
            e.message.contains(
                "www.example.test is an alias loop: www.example.test → loop.example.test → www.example.test"
            ),
            "{}",
            e.message
        );
        assert!(e.message.contains("--resolve www.example.test:443:ADDR"));
    }

    #[test]
    fn a_loop_inside_one_answer_is_named() {
        let mut c = CnameChase::new("a.test", 443);
        let e = c
            .answer(&answer(&["b.test", "a.test"], &[]), SERVER)
            .unwrap_err();
        assert_eq!(e.kind, "cname-loop");
        assert!(
            e.message.contains("a.test → b.test → a.test"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_chain_is_bounded() {
        let mut c = CnameChase::new("n0.test", 443);
        for i in 1..=MAX_CNAME_QUERIES {
            let next = format!("n{i}.test");
            assert!(
                matches!(
                    c.answer(&answer(&[&next], &[]), SERVER),
                    Ok(ChaseStep::Follow { .. })
                ),
                "hop {i}"
            );
        }
        assert_eq!(c.queries(), MAX_CNAME_QUERIES);
        let e = c.answer(&answer(&["n99.test"], &[]), SERVER).unwrap_err();
        assert_eq!(e.kind, "cname-chain-too-long");
        assert!(e.message.contains("n0.test → n1.test"), "{}", e.message);
    }

    #[test]
    fn an_alias_without_address_names_the_target_and_resolve() {
        let mut c = CnameChase::new("www.example.test", 8443);
        assert!(matches!(
            c.answer(&answer(&["a.example.test"], &[]), SERVER),
            Ok(ChaseStep::Follow { .. })
        ));
        assert_eq!(
            c.answer(&answer(&[], &[]), SERVER).unwrap(),
            ChaseStep::Final
        );
        let m = c.no_address_message("A", SERVER).unwrap();
        assert!(m.contains("alias of a.example.test"), "{m}");
        assert!(m.contains("--resolve www.example.test:8443:ADDR"), "{m}");
    }
}
