//! [`RetrySchedule`]: where the next DNS query goes and how long to wait for its answer.

use std::net::IpAddr;
use std::time::Duration;

/// First retransmission timeout; doubles per try up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Largest retransmission timeout.
pub const RETRY_MAX: Duration = Duration::from_secs(8);
/// Tries per server before the next server is asked.
pub const TRIES_PER_SERVER: u32 = 3;

/// The stub resolver's retry rule, shared by the smoltcp machine and the kernel twin:
/// servers in the order given, [`TRIES_PER_SERVER`] tries each (round robin when there is
/// more than one), the timeout doubling from [`RETRY_FIRST`] to [`RETRY_MAX`] and starting
/// again at [`RETRY_FIRST`] for each new server.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    servers: Vec<IpAddr>,
    index: usize,
    tries_here: u32,
    sent: u32,
    next_timeout: Duration,
    waited: Duration,
}

impl RetrySchedule {
    /// A schedule over `servers` (tried in this order).
    pub fn new(servers: Vec<IpAddr>) -> Self {
        RetrySchedule {
            servers,
            index: 0,
            tries_here: 0,
            sent: 0,
            next_timeout: RETRY_FIRST,
            waited: RETRY_FIRST,
        }
    }

    /// The server asked now (`0.0.0.0` when there is none).
    pub fn server(&self) -> IpAddr {
        self.servers
            .get(self.index)
            .copied()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// Whether there is another server to move on to.
    pub fn has_other_servers(&self) -> bool {
        self.servers.len() > 1
    }

    /// Takes the next try: moves on to the next server when this one had its tries, and
    /// returns the server to ask and how long to wait for its answer.
    pub fn next_try(&mut self) -> (IpAddr, Duration) {
        if self.tries_here >= TRIES_PER_SERVER && self.has_other_servers() {
            self.index = (self.index + 1) % self.servers.len();
            self.tries_here = 0;
            self.next_timeout = RETRY_FIRST;
        }
        let timeout = self.next_timeout;
        self.tries_here += 1;
        self.sent += 1;
        self.waited = timeout;
        self.next_timeout = (timeout * 2).min(RETRY_MAX);
        (self.server(), timeout)
    }

    /// Starts the current server's tries again from [`RETRY_FIRST`], for a new question
    /// (an alias target to follow) asked of the server that just answered.
    pub fn restart(&mut self) {
        self.tries_here = 0;
        self.next_timeout = RETRY_FIRST;
    }

    /// Gives up on the current server: the next try goes to the next one.
    pub fn skip_server(&mut self) {
        self.tries_here = TRIES_PER_SERVER;
    }

    /// Tries taken so far, over all servers.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// The timeout of the try in flight.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn one_server_backs_off_to_the_cap() {
        let a = IpAddr::from([10, 0, 0, 1]);
        let mut s = RetrySchedule::new(vec![a]);
        let tries: Vec<_> = (0..6).map(|_| s.next_try()).collect();
        assert_eq!(
            tries,
            vec![
                (a, secs(1)),
                (a, secs(2)),
                (a, secs(4)),
                (a, secs(8)),
                (a, secs(8)),
                (a, secs(8))
            ]
        );
        assert_eq!(s.sent(), 6);
        assert_eq!(s.waited(), secs(8));
    }

    #[test]
    fn each_server_gets_its_tries_and_a_fresh_timeout() {
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut s = RetrySchedule::new(vec![a, b]);
        let tries: Vec<_> = (0..7).map(|_| s.next_try()).collect();
        assert_eq!(
            tries,
            vec![
                (a, secs(1)),
                (a, secs(2)),
                (a, secs(4)),
                (b, secs(1)),
                (b, secs(2)),
                (b, secs(4)),
                (a, secs(1))
            ]
        );
    }

    #[test]
    fn skipping_a_server_moves_on_at_once() {
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut s = RetrySchedule::new(vec![a, b]);
        assert_eq!(s.next_try(), (a, secs(1)));
        s.skip_server();
        assert_eq!(s.next_try(), (b, secs(1)));
        let mut lone = RetrySchedule::new(vec![a]);
        lone.next_try();
        lone.skip_server();
        assert_eq!(lone.next_try().0, a);
    }

    #[test]
    fn a_restart_stays_on_the_server_with_the_first_timeout() {
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut s = RetrySchedule::new(vec![a, b]);
        s.next_try();
        s.next_try();
        s.restart();
        assert_eq!(s.next_try(), (a, secs(1)));
        assert_eq!(s.next_try(), (a, secs(2)));
        assert_eq!(s.next_try(), (a, secs(4)));
        assert_eq!(s.next_try(), (b, secs(1)));
        assert_eq!(s.sent(), 6);
    }

    #[test]
    fn no_server_is_unspecified_not_a_panic() {
        let mut s = RetrySchedule::new(Vec::new());
        assert_eq!(s.next_try().0, IpAddr::from([0, 0, 0, 0]));
    }
}
