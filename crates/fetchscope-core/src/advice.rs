//! Advice that fits where the fetch runs: the built-in lab has no `--gateway` or `--dns`
//! to check, and a stall under fault injection is the faults' doing, not the network's.

/// Where a fetch runs, as far as error messages are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// A real network (a TUN device, or the kernel's sockets).
    #[default]
    Real,
    /// The built-in lab, with the `--lab-fault` it runs with.
    Lab {
        /// The lab fault's name, if one was asked for.
        fault: Option<String>,
    },
}

/// What a stalled fetch's packets show, for [`Conditions::stall`]: which of its causes fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StallFacts {
    /// Bytes of the request on the wire (the TLS records that carry it).
    pub request_bytes: u64,
    /// Of those, bytes the server has not acknowledged (`None`: not known).
    pub unacknowledged: Option<u64>,
    /// The server's receive window is zero: it takes no more bytes.
    pub zero_window: bool,
    /// Segments of the request we sent again.
    pub retransmissions: u32,
    /// Bytes received beyond a hole, held by the stack until the missing segment comes.
    pub held_out_of_order: u64,
    /// Bytes of the response's body received.
    pub body_bytes: u64,
    /// Any byte of the response arrived.
    pub response_started: bool,
}

/// The conditions a fetch runs under, for advice in its error messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conditions {
    /// Lab or real network.
    pub network: Network,
    /// Fault injection on the stack's link (`--loss 5 %, …`), described, if any.
    pub faults: Option<String>,
    /// Fault injection drops every packet one way (`--loss 100`): nothing gets through.
    pub faults_drop_everything: bool,
}

impl Conditions {
    /// Whether this is the built-in lab.
    pub fn is_lab(&self) -> bool {
        matches!(self.network, Network::Lab { .. })
    }

    /// Why a phase may not finish here that is not the server's or the network's fault,
    /// as a clause (`"the built-in lab runs with --lab-fault syn-silent"`), if any.
    fn induced(&self) -> Option<String> {
        let fault = match &self.network {
            Network::Lab { fault: Some(f) } => {
                Some(format!("the built-in lab runs with --lab-fault {f}"))
            }
            _ => None,
        };
        let injected = self
            .faults
            .as_ref()
            .map(|f| format!("fault injection is on ({f})"));
        match (fault, injected) {
            (Some(a), Some(b)) => Some(format!("{a} and {b}")),
            (a, b) => a.or(b),
        }
    }

    /// The end of a timeout message: what to try next.
    pub fn after_timeout(&self) -> String {
        match &self.faults {
            Some(_) if self.faults_drop_everything => {
                "; --loss 100 lets no packet through, so no --timeout is long enough".to_string()
            }
            Some(_) => {
                "; lost packets are sent again after ever longer pauses (1 s, 2 s, 4 s, …), so a longer --timeout may let the fetch finish".to_string()
            }
            None => String::new(),
        }
    }

    /// `base` followed by the cause that fits where the fetch runs: the fault that was
    /// asked for, what the built-in lab's server did (`lab`), or advice for a real network
    /// (`real`, with its own leading punctuation).
    fn with_cause(&self, base: String, lab: &str, real: &str) -> String {
        match (self.induced(), &self.network) {
            (Some(why), _) => format!("{base}: {why}"),
            (None, Network::Lab { .. }) => format!("{base}: {lab}"),
            (None, Network::Real) => format!("{base}{real}"),
        }
    }

    /// No SYN-ACK came from `remote`.
    pub fn no_syn_ack(&self, remote: &str) -> String {
        self.with_cause(
            format!("no SYN-ACK from {remote}"),
            "the built-in lab's server did not answer",
            ": the server or the path to it is not answering (is --gateway right? is the port open?)",
        )
    }

    /// No DNS answer came for `host` from `server` after `queries` queries.
    pub fn no_dns_answer(&self, host: &str, server: &str, queries: u32) -> String {
        self.with_cause(
            format!("no DNS answer for {host} from {server} after {queries} queries"),
            "the built-in lab's DNS server did not answer",
            "; check --dns and that the server is reachable",
        )
    }

    /// The DNS server at `server` answered SERVFAIL for `name`.
    pub fn servfail(&self, server: &str, name: &str) -> String {
        self.with_cause(
            format!("the DNS server {server} could not resolve {name} (SERVFAIL)"),
            "the built-in lab's DNS server failed",
            "; try again later or another --dns",
        )
    }

    /// A connection stalled after the handshake, in `phase`, talking to `remote`.
    pub fn stall(&self, phase: crate::event::Phase, remote: &str, facts: &StallFacts) -> String {
        use crate::event::Phase;
        let what = match phase {
            Phase::Resolve | Phase::Connect => String::new(),
            Phase::Proxy => format!("the proxy {remote} did not answer the CONNECT request"),
            Phase::Tls => format!("the TLS handshake with {remote} did not finish"),
            Phase::Request | Phase::Response if !facts.response_started => {
                request_stall(remote, facts)
            }
            Phase::Request | Phase::Response => format!(
                "the response from {remote} did not complete ({} body bytes received)",
                facts.body_bytes
            ),
            Phase::Teardown | Phase::Done => format!("closing the connection to {remote} stalled"),
        };
        match self.induced() {
            Some(why) => format!("{what} ({why})"),
            None => what,
        }
    }
}

/// No byte of the response arrived: was the request delivered?
fn request_stall(remote: &str, f: &StallFacts) -> String {
    let n = f.request_bytes;
    if f.held_out_of_order > 0 {
        return format!(
            "the response from {remote} is stuck behind a lost segment: {} bytes of it arrived out of order and wait for the missing one",
            f.held_out_of_order
        );
    }
    match f.unacknowledged {
        Some(0) if n > 0 => format!(
            "{remote} acknowledged all {n} bytes of the request but sent no response: the network delivered the request, the server is slow or stuck"
        ),
        Some(_) if f.zero_window => format!(
            "{remote} advertises a zero receive window and takes no more of the request: the server stopped reading"
        ),
        Some(left) => format!(
            "the request to {remote} could not be delivered: {left} of its {n} bytes are still unacknowledged after {} retransmission{} (packets lost on the way, or too large for the path)",
            f.retransmissions,
            if f.retransmissions == 1 { "" } else { "s" }
        ),
        None => format!("no response from {remote} to the request ({n} bytes sent)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Phase;

    fn lab(fault: Option<&str>) -> Conditions {
        Conditions {
            network: Network::Lab {
                fault: fault.map(str::to_string),
            },
            ..Conditions::default()
        }
    }

    #[test]
    fn the_lab_never_sends_you_to_gateway_or_dns() {
        let c = lab(Some("syn-silent"));
        let s = c.no_syn_ack("10.88.0.1:443");
        assert!(
            s.contains("--lab-fault syn-silent") && !s.contains("--gateway"),
            "{s}"
        );
        let s = lab(Some("dns-silent")).no_dns_answer("h", "10.88.0.1", 6);
        assert!(s.contains("dns-silent") && !s.contains("--dns"), "{s}");
        let lossy = Conditions {
            network: Network::Lab { fault: None },
            faults: Some("loss 100 %".into()),
            faults_drop_everything: true,
        };
        let s = lossy.no_syn_ack("x");
        assert!(s.contains("fault injection is on (loss 100 %)"), "{s}");
        assert!(
            lossy
                .after_timeout()
                .contains("no --timeout is long enough")
        );
        let some_loss = Conditions {
            faults: Some("loss 5 %".into()),
            ..Conditions::default()
        };
        assert!(
            some_loss
                .after_timeout()
                .contains("a longer --timeout may let")
        );
        let real = Conditions::default();
        assert!(real.no_syn_ack("x").contains("--gateway"));
        assert!(real.no_dns_answer("h", "s", 1).contains("--dns"));
        assert!(real.after_timeout().is_empty());
        let s = lab(Some("servfail")).servfail("10.88.0.1", "h");
        assert!(
            s.contains("--lab-fault servfail") && !s.contains("--dns"),
            "{s}"
        );
        assert!(real.servfail("s", "h").contains("another --dns"));
    }

    #[test]
    fn an_acknowledged_request_is_not_called_undelivered() {
        let c = Conditions::default();
        let acked = StallFacts {
            request_bytes: 120,
            unacknowledged: Some(0),
            ..StallFacts::default()
        };
        let s = c.stall(Phase::Request, "h:443", &acked);
        assert!(
            s.contains("acknowledged all 120 bytes of the request")
                && !s.contains("could not be delivered"),
            "{s}"
        );
        let lost = StallFacts {
            request_bytes: 6000,
            unacknowledged: Some(4540),
            retransmissions: 7,
            ..StallFacts::default()
        };
        let s = c.stall(Phase::Request, "h:443", &lost);
        assert!(
            s.contains("could not be delivered: 4540 of its 6000 bytes"),
            "{s}"
        );
        let zero = StallFacts {
            request_bytes: 6000,
            unacknowledged: Some(10),
            zero_window: true,
            ..StallFacts::default()
        };
        assert!(
            c.stall(Phase::Request, "h", &zero)
                .contains("zero receive window")
        );
    }
}
