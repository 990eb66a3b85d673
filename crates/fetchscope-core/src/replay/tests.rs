//! The replay machine in process: TCP inference and the failures a capture shows. The
//! whole replay of real captures is tested in `tests/tests/replay.rs`.

use super::*;
use fetchscope_wire::{TcpFlags, TcpLayer};

fn seg(flags: TcpFlags, seq_raw: u32, ack_raw: u32, payload_len: usize) -> TcpLayer {
    TcpLayer {
        src_port: 50000,
        dst_port: 443,
        flags,
        seq: 0,
        ack: 0,
        seq_raw,
        ack_raw,
        win: 1000,
        win_scaled: None,
        payload_len,
        options: None,
        analysis: Vec::new(),
    }
}

#[test]
fn client_states_follow_rfc_9293() {
    use Direction::{Rx, Tx};
    let mut t = InferredTcp::default();
    let mut states = Vec::new();
    let mut go = |t: &mut InferredTcp, dir, s: TcpLayer| {
        if let Some((_, to, why)) = t.segment(dir, &s) {
            assert!(why.starts_with("inferred"));
            states.push(to);
        }
    };
    go(&mut t, Tx, seg(TcpFlags::SYN, 100, 0, 0));
    go(&mut t, Tx, seg(TcpFlags::SYN, 100, 0, 0)); // retransmitted: no change
    go(&mut t, Rx, seg(TcpFlags::SYN | TcpFlags::ACK, 900, 101, 0));
    go(&mut t, Tx, seg(TcpFlags::ACK | TcpFlags::FIN, 101, 901, 10));
    go(&mut t, Rx, seg(TcpFlags::ACK, 901, 111, 0)); // acks data only, not the FIN
    go(&mut t, Rx, seg(TcpFlags::ACK, 901, 112, 0));
    go(&mut t, Rx, seg(TcpFlags::ACK | TcpFlags::FIN, 901, 112, 0));
    use TcpState::*;
    assert_eq!(states, [SynSent, Established, FinWait1, FinWait2, TimeWait]);

    // The server closes first.
    let mut t = InferredTcp::default();
    let mut states = Vec::new();
    for (dir, s) in [
        (Tx, seg(TcpFlags::SYN, 5, 0, 0)),
        (Rx, seg(TcpFlags::SYN | TcpFlags::ACK, 70, 6, 0)),
        (Rx, seg(TcpFlags::ACK | TcpFlags::FIN, 71, 6, 0)),
        (Tx, seg(TcpFlags::ACK | TcpFlags::FIN, 6, 72, 0)),
        (Rx, seg(TcpFlags::ACK, 72, 7, 0)),
    ] {
        if let Some((_, to, _)) = t.segment(dir, &s) {
            states.push(to);
        }
    }
    assert_eq!(states, [SynSent, Established, CloseWait, LastAck, Closed]);
}

#[test]
fn an_empty_capture_is_a_clear_error() {
    let mut r = Replay::new(ReplayOptions::default());
    assert_eq!(
        r.handle_packet(Duration::from_secs(1), &[0x00, 0x01], false),
        Handled::Undecodable
    );
    r.finish();
    let Some(Err(e)) = r.outcome() else {
        panic!("no error")
    };
    assert_eq!(e.kind, "no_fetch");
    assert!(e.message.contains("--client-addr"), "{}", e.message);
    let kinds: Vec<_> = std::iter::from_fn(|| r.poll_event())
        .map(|e| serde_json::to_value(&e).unwrap()["type"].clone())
        .collect();
    assert_eq!(kinds, [serde_json::json!("error")]);
}
