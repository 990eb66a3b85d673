//! The loss matrix: 1 MiB fetches through loss, reordering and duplication must complete
//! with the right digest, and the trace must account for every packet.
//!
//! * **Built-in lab** (always): `/bytes/1048576` at 1, 5, 10 and 20 % loss in each
//!   direction (`--faults-dir both`, plus one run with loss only on the way in and one
//!   only on the way out), 2 % reordering and 2 % duplication, over several seeds. The
//!   time each fetch took is virtual (smoltcp's retransmission timer backs off to 60 s, so
//!   20 % loss takes virtual minutes, real seconds); the table goes to stderr
//!   (`cargo test --test loss_matrix -- --nocapture`). `scripts/loss-matrix.sh` is the
//!   longer run behind BENCHMARKS.md.
//! * **Namespace lab** (root, `require`d): the same body from nginx through the TUN
//!   device, with the kernel dropping packets in both directions on the client
//!   namespace's forwarding path — `tc netem` on the veth when the kernel has it, else an
//!   nftables `numgen random` rule (this test's kernel may lack `sch_netem`) — and
//!   fetchscope's own `--reorder`/`--duplicate` on the TUN link; then fetchscope's own
//!   `--loss`, `--delay` and `--jitter` on the TUN link. Fewer cases, real time.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fetchscope_tests::netns::{COMMAND_LIMIT, NsLab, output_within};
use fetchscope_tests::{code, events, have, lab_bytes, of_type, require, run, sha256_hex};
use serde_json::Value;

/// The body of every fetch here.
const BODY: usize = 1 << 20;
/// Seeds of the runs with loss in both directions.
const SEEDS: [u64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// What one fetch under loss showed.
struct Row {
    label: String,
    /// Virtual (lab) or real (TUN) seconds from the first packet to the end.
    secs: f64,
    dropped_tx: usize,
    dropped_rx: usize,
    recoveries: BTreeMap<String, usize>,
}

/// Checks one finished fetch of [`BODY`] bytes whose digest must be `sha256`, and the
/// trace's bookkeeping; `label` names the case in failures.
fn check(label: &str, out: &Output, ev: &[Value], sha256: &str) -> Row {
    let last = ev.last().cloned().unwrap_or_default();
    assert_eq!(
        code(out),
        0,
        "{label}: {}\nlast event: {last}\n(a response-phase timeout with every byte acknowledged and \
         the rest unread is the Fetch::step stall described in docs/faults.md)",
        String::from_utf8_lossy(&out.stderr),
    );
    let done = of_type(ev, "done")
        .first()
        .copied()
        .unwrap_or_else(|| panic!("{label}: no done event"));
    assert_eq!(done["body_bytes"], BODY as u64, "{label}");
    assert_eq!(done["body_sha256"], sha256, "{label}: wrong digest");

    let packets = of_type(ev, "packet");
    let dropped = |dir: &str| {
        packets
            .iter()
            .filter(|p| p["dir"] == dir && p["fault"]["dropped"] == true)
            .count()
    };
    let tx = packets.iter().filter(|p| p["dir"] == "tx").count();
    let rx_received = packets
        .iter()
        .filter(|p| p["dir"] == "rx" && p["fault"]["dropped"] != true)
        .count();
    assert_eq!(
        done["packets_tx"], tx as u64,
        "{label}: every sent packet once"
    );
    assert_eq!(
        done["packets_rx"], rx_received as u64,
        "{label}: received = in the trace and not dropped on the way"
    );
    let mut last_t = 0;
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p["number"], i as u64 + 1, "{label}: packet numbers");
        let t = p["t_us"].as_u64().expect("t_us");
        assert!(t >= last_t, "{label}: time went back at #{}", i + 1);
        last_t = t;
    }
    let mut recoveries = BTreeMap::new();
    for p in &packets {
        for r in p["recovery"].as_array().into_iter().flatten() {
            let kind = r["kind"].as_str().expect("kind").to_string();
            *recoveries.entry(kind).or_insert(0) += 1;
        }
    }
    // A lost data segment is always recovered by a retransmission the trace names.
    let data_lost = packets.iter().any(|p| {
        p["fault"]["dropped"] == true && p["tcp"]["payload_len"].as_u64().is_some_and(|n| n > 0)
    });
    if data_lost {
        assert!(
            [
                "rto-retransmission",
                "fast-retransmission",
                "go-back-n",
                "retransmission"
            ]
            .iter()
            .any(|k| recoveries.contains_key(*k)),
            "{label}: data was lost but no retransmission is named: {recoveries:?}"
        );
    }
    Row {
        label: label.to_string(),
        secs: done["timings"]["total_ms"].as_f64().expect("total_ms") / 1000.0,
        dropped_tx: dropped("tx"),
        dropped_rx: dropped("rx"),
        recoveries,
    }
}

/// One fetch in the built-in lab.
fn lab_case(loss: u32, dir: &str, seed: u64) -> Row {
    let loss_s = loss.to_string();
    let seed_s = seed.to_string();
    let url = format!("https://www.example.test/bytes/{BODY}");
    let args = [
        "fetch",
        url.as_str(),
        "--json",
        "--seed",
        seed_s.as_str(),
        "--loss",
        loss_s.as_str(),
        "--reorder",
        "2",
        "--duplicate",
        "2",
        "--faults-dir",
        dir,
        "--timeout",
        "86400",
    ];
    let out = run(&args);
    let ev = events(&out.stdout);
    let label = format!("lab loss {loss} % {dir} seed {seed}");
    let row = check(&label, &out, &ev, &sha256_hex(&lab_bytes(BODY)));
    if dir != "tx" {
        assert!(row.dropped_rx > 0, "{label}: nothing dropped on the way in");
    }
    if dir != "rx" && loss >= 5 {
        assert!(
            row.dropped_tx > 0,
            "{label}: nothing dropped on the way out"
        );
    }
    row
}

fn print_table(title: &str, rows: &[Row]) {
    eprintln!("{title}");
    for r in rows {
        eprintln!(
            "  {:<34} {:>10.3} s  dropped tx {:>4} rx {:>4}  {:?}",
            r.label, r.secs, r.dropped_tx, r.dropped_rx, r.recoveries
        );
    }
}

/// The lab's row of the matrix for one loss rate.
fn lab_matrix(loss: u32) {
    let mut rows: Vec<Row> = SEEDS.iter().map(|&s| lab_case(loss, "both", s)).collect();
    rows.push(lab_case(loss, "rx", 9));
    rows.push(lab_case(loss, "tx", 10));
    print_table(
        &format!("loss {loss} % (virtual seconds, built-in lab)"),
        &rows,
    );
}

#[test]
fn lab_1_percent_loss() {
    lab_matrix(1);
}

#[test]
fn lab_5_percent_loss() {
    lab_matrix(5);
}

#[test]
fn lab_10_percent_loss() {
    lab_matrix(10);
}

#[test]
fn lab_20_percent_loss() {
    lab_matrix(20);
}

/// The smallest case found of the stall described in docs/faults.md: a retransmission
/// fills a hole near the end, more becomes readable at once than one step of the machine
/// reads, and no packet follows to wake it.
#[test]
fn a_hole_filled_near_the_end_is_read_to_the_last_byte() {
    let out = run(&[
        "fetch",
        "https://www.example.test/bytes/300000",
        "--json",
        "--seed",
        "4",
        "--loss",
        "5",
        "--faults-dir",
        "rx",
        "--timeout",
        "3600",
    ]);
    let ev = events(&out.stdout);
    assert_eq!(
        code(&out),
        0,
        "{}\nlast event: {:?}",
        String::from_utf8_lossy(&out.stderr),
        ev.last()
    );
    let done = of_type(&ev, "done")[0];
    assert_eq!(done["body_sha256"], sha256_hex(&lab_bytes(300_000)));
}

/// Issue 16's example: 1 MiB at 10 % loss both ways completes under the default
/// `--timeout` (30 s), and the trace names every retransmission the stack received; each
/// timeout names smoltcp's timer (1 s, doubling, at most 60 s).
#[test]
fn ten_percent_loss_completes_under_the_default_timeout_naming_every_recovery() {
    let url = format!("https://www.example.test/bytes/{BODY}");
    // Seed 1 is the issue's; the others keep it from being a lucky one.
    for seed in [1, 2, 3, 4] {
        let seed_s = seed.to_string();
        let out = run(&[
            "fetch",
            url.as_str(),
            "--json",
            "--seed",
            &seed_s,
            "--loss",
            "10",
        ]);
        let ev = events(&out.stdout);
        let label = format!("--loss 10 --seed {seed}");
        let row = check(&label, &out, &ev, &sha256_hex(&lab_bytes(BODY)));
        assert!(row.secs < 30.0, "{label}: {} s", row.secs);
        let mut timeouts = 0;
        for p in of_type(&ev, "packet") {
            let resent = p["tcp"]["analysis"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x == "retransmission" || x == "fast-retransmission")
            });
            let kinds: Vec<&str> = p["recovery"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r["kind"].as_str()).collect())
                .unwrap_or_default();
            if resent && p["dir"] == "rx" {
                assert!(
                    kinds.iter().any(|k| matches!(
                        *k,
                        "rto-retransmission"
                            | "go-back-n"
                            | "fast-retransmission"
                            | "retransmission"
                    )),
                    "{label}: a retransmission without its recovery named: {p}"
                );
            }
            for r in p["recovery"].as_array().into_iter().flatten() {
                if r["kind"] == "rto-retransmission" {
                    timeouts += 1;
                    let ms = r["rto_ms"].as_u64().unwrap_or(0);
                    assert!((1000..=60_000).contains(&ms), "{label}: {r}");
                    let text = r["text"].as_str().unwrap_or_default();
                    if ms % 1000 == 0 {
                        assert!(
                            text.contains(&format!("RTO {} s", ms / 1000)),
                            "{label}: {r}"
                        );
                    }
                }
            }
        }
        assert!(timeouts > 0, "{label}: 10 % loss with no timeout named");
    }
}

// ------------------------------------------------------------------ namespace lab

/// How the kernel drops packets on the client namespace's forwarding path.
enum KernelLoss {
    Netem,
    Nftables,
}

/// Makes the kernel in the client namespace drop `pct` % of the packets in each
/// direction between the TUN device and the veth.
fn kernel_loss(lab: &NsLab, pct: u32) -> KernelLoss {
    let veth = lab.var("FSC_CAPTURE_IF").to_string();
    let netem = format!("loss {pct}%");
    let try_netem = |ns_cmd: Command| output_within(ns_cmd, COMMAND_LIMIT);
    let mut c = lab.in_cli("tc");
    c.args(["qdisc", "replace", "dev", &veth, "root", "netem"])
        .args(netem.split(' '));
    if try_netem(c).status.success() {
        // The other direction: the server's end of the veth pair.
        let srv_veth = format!("{}-srv0", lab.var("FSC_LAB_PREFIX"));
        let mut s = lab.in_srv("tc");
        s.args(["qdisc", "replace", "dev", &srv_veth, "root", "netem"])
            .args(netem.split(' '));
        let out = try_netem(s);
        assert!(out.status.success(), "netem on the server side: {out:?}");
        return KernelLoss::Netem;
    }
    let stack = lab.var("FSC_STACK_ADDR");
    let stack = stack.split('/').next().unwrap_or(stack);
    let per_mille = pct * 10;
    // Declared, deleted and made again: each call starts from fresh rules and counters.
    let rules = format!(
        "table inet fsloss\ndelete table inet fsloss\n\
         table inet fsloss {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n  \
         ip daddr {stack} numgen random mod 1000 < {per_mille} counter drop\n  \
         ip saddr {stack} numgen random mod 1000 < {per_mille} counter drop\n }}\n}}\n"
    );
    let path = lab.dir.join("loss.nft");
    std::fs::write(&path, &rules).expect("write nft rules");
    let mut c = lab.in_cli("nft");
    c.args(["-f"]).arg(&path);
    let out = output_within(c, COMMAND_LIMIT);
    assert!(
        out.status.success(),
        "nft -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    KernelLoss::Nftables
}

/// Packets the kernel dropped (nftables counters), for the report.
fn kernel_drops(lab: &NsLab) -> String {
    let mut c = lab.in_cli("nft");
    c.args(["list", "table", "inet", "fsloss"]);
    let out = output_within(c, COMMAND_LIMIT);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let dir = if l.starts_with("ip daddr") {
                "to the stack"
            } else if l.starts_with("ip saddr") {
                "from the stack"
            } else {
                return None;
            };
            let n = l.split("packets ").nth(1)?.split(' ').next()?;
            Some(format!("{n} {dir}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn tun_loss_in_the_kernel_is_recovered() {
    if !require(
        have("tc") || have("nft"),
        "the loss matrix through TUN needs tc or nft (iproute2, nftables)",
    ) {
        return;
    }
    let Some(lab) = NsLab::up("fsloss") else {
        return;
    };
    let sha = lab.expected_sha256("www/files/1M.bin");
    let mut rows = Vec::new();
    for (pct, seed) in [(2u32, 1u64), (5, 2), (10, 3)] {
        let how = kernel_loss(&lab, pct);
        let seed_s = seed.to_string();
        let started = Instant::now();
        let out = output_within(
            {
                let mut c = lab.fetch(
                    "/files/1M.bin",
                    &[
                        "--json",
                        "--seed",
                        &seed_s,
                        "--reorder",
                        "2",
                        "--duplicate",
                        "2",
                    ],
                );
                c.env("NO_COLOR", "1");
                c
            },
            COMMAND_LIMIT,
        );
        let took = started.elapsed();
        let ev = events(&out.stdout);
        let how_s = match how {
            KernelLoss::Netem => "netem".to_string(),
            KernelLoss::Nftables => format!("nftables: {} dropped", kernel_drops(&lab)),
        };
        let label = format!("TUN kernel loss {pct} % ({how_s})");
        let row = check(&label, &out, &ev, &sha);
        assert!(took < Duration::from_secs(120), "{label}: {took:?}");
        if let KernelLoss::Nftables = how {
            // The kernel dropped some: the stack saw the consequences, not the drops.
            let retransmitted = row.recoveries.keys().any(|k| k.contains("retransmission"));
            assert!(retransmitted, "{label}: {:?}", row.recoveries);
        }
        rows.push(row);
    }
    // fetchscope's own loss and delay on the TUN link, the kernel dropping nothing.
    kernel_loss(&lab, 0);
    let out = output_within(
        lab.fetch(
            "/files/1M.bin",
            &[
                "--json", "--seed", "4", "--loss", "5", "--delay", "3", "--jitter", "2",
            ],
        ),
        COMMAND_LIMIT,
    );
    let ev = events(&out.stdout);
    let row = check("TUN --loss 5 --delay 3 --jitter 2", &out, &ev, &sha);
    assert!(row.dropped_tx > 0 && row.dropped_rx > 0, "both ways");
    let delayed = of_type(&ev, "packet")
        .iter()
        .filter(|p| p["fault"]["delay_us"].as_u64().is_some_and(|d| d >= 1000))
        .count();
    assert!(delayed > 100, "{delayed} packets delayed");
    rows.push(row);
    print_table("loss matrix through TUN (real seconds)", &rows);
}
