//! [`Timeline`]: the kernel run's events and captured packets, put in time order before
//! they are released.
//!
//! The kernel stamps a packet when it crosses the interface, which may be before this
//! process gets to run and report what the packet caused (the SYN-ACK before
//! `ESTABLISHED`). So nothing is released until it is older than a slack: a packet
//! stamped earlier can still arrive and go first. Items with the same time keep the order
//! they were added in.

use fetchscope_core::EventKind;

/// Something that happened, waiting for its turn in the stream. (Events are rare and
/// short-lived here; an event kind is as large as a packet event, see [`EventKind`].)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Item<P> {
    /// A captured packet, at the kernel's time stamp (µs since the run's start).
    Packet(u64, P),
    /// An event of the run, at the time it happened (µs since the run's start).
    Event(u64, EventKind),
}

impl<P> Item<P> {
    /// When it happened (µs since the run's start).
    pub fn t_us(&self) -> u64 {
        match self {
            Item::Packet(t, _) | Item::Event(t, _) => *t,
        }
    }
}

/// The items not yet released, and how far the release has got.
#[derive(Debug)]
pub struct Timeline<P> {
    pending: Vec<Item<P>>,
    last_released: u64,
}

impl<P> Default for Timeline<P> {
    fn default() -> Self {
        Timeline {
            pending: Vec::new(),
            last_released: 0,
        }
    }
}

impl<P> Timeline<P> {
    /// Adds an event that happened at `t_us`.
    pub fn event(&mut self, t_us: u64, kind: EventKind) {
        self.pending.push(Item::Event(t_us, kind));
    }

    /// Adds a packet stamped `t_us`.
    pub fn packet(&mut self, t_us: u64, packet: P) {
        self.pending.push(Item::Packet(t_us, packet));
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The time of the oldest item waiting.
    pub fn oldest(&self) -> Option<u64> {
        self.pending.iter().map(Item::t_us).min()
    }

    /// The time of the latest item released so far.
    pub fn last_released(&self) -> u64 {
        self.last_released
    }

    /// Takes the items stamped at or before `cutoff`, in time order (ties in the order
    /// they were added).
    pub fn release(&mut self, cutoff: u64) -> Vec<Item<P>> {
        // A stable sort: what was added first stays first among equal times.
        self.pending.sort_by_key(Item::t_us);
        let n = self.pending.partition_point(|i| i.t_us() <= cutoff);
        let ready: Vec<Item<P>> = self.pending.drain(..n).collect();
        if let Some(last) = ready.last() {
            self.last_released = self.last_released.max(last.t_us());
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(text: &str) -> EventKind {
        EventKind::Note { text: text.into() }
    }

    fn names(items: &[Item<&'static str>]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Packet(t, p) => format!("{t}:{p}"),
                Item::Event(t, EventKind::Note { text }) => format!("{t}:{text}"),
                Item::Event(t, _) => format!("{t}:event"),
            })
            .collect()
    }

    #[test]
    fn a_packet_stamped_before_the_event_it_caused_goes_first() {
        let mut tl = Timeline::default();
        // The state change is reported first (when the process looked), the SYN-ACK
        // that caused it is read from the capture afterwards, with an earlier stamp.
        tl.event(1_500, note("ESTABLISHED"));
        tl.packet(1_200, "SYN-ACK");
        tl.packet(1_600, "ACK");
        let out = tl.release(u64::MAX);
        assert_eq!(
            names(&out),
            ["1200:SYN-ACK", "1500:ESTABLISHED", "1600:ACK"]
        );
        assert_eq!(tl.last_released(), 1_600);
        assert!(tl.is_empty());
    }

    #[test]
    fn items_newer_than_the_cutoff_wait_and_ties_keep_their_order() {
        let mut tl = Timeline::default();
        tl.event(100, note("phase"));
        tl.event(100, note("request"));
        tl.packet(100, "data");
        tl.packet(5_000, "late");
        assert_eq!(tl.oldest(), Some(100));
        let out = tl.release(4_000);
        assert_eq!(names(&out), ["100:phase", "100:request", "100:data"]);
        assert_eq!((tl.len(), tl.oldest()), (1, Some(5_000)));
        // A packet that arrives now but was stamped before the held one overtakes it.
        tl.packet(4_500, "earlier");
        let out = tl.release(u64::MAX);
        assert_eq!(names(&out), ["4500:earlier", "5000:late"]);
        assert_eq!(tl.last_released(), 5_000);
    }

    #[test]
    fn releasing_nothing_keeps_the_last_time() {
        let mut tl: Timeline<&str> = Timeline::default();
        tl.packet(10, "a");
        assert_eq!(tl.release(20).len(), 1);
        assert!(tl.release(30).is_empty());
        assert_eq!(tl.last_released(), 10);
    }
}
