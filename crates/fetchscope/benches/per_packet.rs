//! The per-packet path — decode (dissector and TCP tracker), `packet` event, text line,
//! NDJSON line — over the packets of a built-in-lab download, timed by criterion, with
//! the heap allocations per packet of the bulk phase counted by a counting allocator.
//!
//! `cargo bench -p fetchscope --bench per_packet`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fetchscope::render::{JsonRenderer, TextRenderer};
use fetchscope_core::packets::PacketPipeline;
use fetchscope_core::tls::TlsSecret;
use fetchscope_core::{Event, EventKind, Phase, Randomness};
use fetchscope_flow::{Fetch, FetchConfig};
use fetchscope_lab::{Lab, LabConfig};
use fetchscope_wire::Direction;

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call goes straight to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One packet of the capture, as it crossed the device.
struct Captured {
    t_us: u64,
    dir: Direction,
    phase: Phase,
    /// Shared, as a TUN link hands out packets (slices of one reused buffer).
    data: bytes::Bytes,
}

/// The packets of a seeded lab download of `bytes` body bytes, and the TLS secrets that
/// decrypt them.
fn capture(bytes: u64) -> (Vec<Captured>, Vec<TlsSecret>) {
    let randomness = Randomness::new(Some(7));
    let lab = Lab::new(LabConfig {
        randomness,
        ..LabConfig::default()
    })
    .expect("the lab starts");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(lab.ca_certificate()).expect("the lab's CA");
    let url = url::Url::parse(&format!("https://www.example.test/bytes/{bytes}")).expect("a URL");
    let mut cfg = FetchConfig::new(url, vec![lab.client_cidr()], Arc::new(roots));
    cfg.gateways = vec![lab.client_gateway()];
    cfg.spec.dns_servers = vec![lab.dns_server()];
    cfg.spec.randomness = randomness;
    cfg.epoch = lab.epoch();
    let mut fetch = Fetch::new(cfg, lab).expect("a fetch");
    let mut packets = Vec::new();
    while let Some(e) = fetch.next_event() {
        if let EventKind::Packet(p) = e.kind {
            packets.push(Captured {
                t_us: e.t_us,
                dir: p.dir,
                phase: p.phase,
                data: p.raw.clone(),
            });
        }
    }
    assert!(
        matches!(fetch.result(), Some(Ok(_))),
        "the download succeeds"
    );
    (packets, secrets_of(fetch.key_log()))
}

/// The secrets of an NSS key log.
fn secrets_of(key_log: &str) -> Vec<TlsSecret> {
    key_log
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (label, random, secret) = (f.next()?, f.next()?, f.next()?);
            Some(TlsSecret {
                label: label.to_string(),
                client_random: hex::decode(random).ok()?,
                secret: hex::decode(secret).ok()?,
            })
        })
        .collect()
}

/// The heap allocations of the bulk (response) phase.
#[derive(Debug, Default)]
struct Counted {
    packets: u64,
    allocations: u64,
    /// Packets that allocated at all, and of those the ones that completed a TLS record.
    allocating: u64,
    allocating_with_record: u64,
}

/// Sends every packet through the path; returns the bulk phase's allocations.
fn replay(
    packets: &[Captured],
    secrets: &[TlsSecret],
    text: &mut TextRenderer<Vec<u8>>,
    json: &mut JsonRenderer<Vec<u8>>,
) -> Counted {
    let mut pipeline = PacketPipeline::new();
    pipeline.learn_secrets(secrets.to_vec());
    let mut counted = Counted::default();
    for p in packets {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let layers = pipeline.decode(p.dir, &p.data);
        let ev = pipeline.event(p.dir, p.data.clone(), p.phase, layers, None, Vec::new());
        let e = Event {
            t_us: p.t_us,
            kind: EventKind::Packet(ev),
        };
        let _ = text.event(&e);
        let _ = json.event(&e);
        let with_record = matches!(&e.kind, EventKind::Packet(pk) if !pk.layers.tls.is_empty());
        black_box(&e);
        drop(e);
        if p.phase == Phase::Response {
            let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
            counted.packets += 1;
            counted.allocations += n;
            if n > 0 {
                counted.allocating += 1;
                counted.allocating_with_record += u64::from(with_record);
            }
        }
    }
    counted
}

fn per_packet(c: &mut Criterion) {
    let (packets, secrets) = capture(2_000_000);
    let mut text = TextRenderer::new(Vec::with_capacity(1 << 24), false);
    let mut json = JsonRenderer::new(Vec::with_capacity(1 << 26));
    let counted = replay(&packets, &secrets, &mut text, &mut json);
    println!(
        "bulk phase: {} packets, {} heap allocations = {:.3} per packet (target 0); \
         {} packets allocated, {} of them completing a TLS record",
        counted.packets,
        counted.allocations,
        counted.allocations as f64 / counted.packets.max(1) as f64,
        counted.allocating,
        counted.allocating_with_record
    );
    let mut group = c.benchmark_group("per_packet");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.sample_size(10);
    group.bench_function("decode + event + text + json", |b| {
        b.iter(|| {
            let mut text = TextRenderer::new(Vec::with_capacity(1 << 24), false);
            let mut json = JsonRenderer::new(Vec::with_capacity(1 << 26));
            black_box(replay(&packets, &secrets, &mut text, &mut json))
        })
    });
    group.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);
