#!/usr/bin/env bash
# Fuzz fetchscope's parsers of network input with libFuzzer, on the stable toolchain.
#
#   scripts/fuzz.sh TARGET SECONDS     run one target (or `all`: every target, SECONDS each)
#   scripts/fuzz.sh ci [SECONDS]       every target for SECONDS (default 20), fuzz/regressions first
#   scripts/fuzz.sh seeds              (re)generate the seed corpora from lab captures
#   scripts/fuzz.sh build              build the instrumented targets only
#   scripts/fuzz.sh list               the targets
#
# Targets (fuzz/src/lib.rs says what each checks): dissect, tls_records, dns_answer, capture,
# replay, http_response. The corpora grow in fuzz/corpus/TARGET (seeded from real captures of
# the built-in lab the first time); a crash or broken invariant leaves its input in
# fuzz/artifacts/TARGET and the script fails. Copy such an input to fuzz/regressions/TARGET/
# once fixed: `cargo test --manifest-path fuzz/Cargo.toml` replays them all.
#
# Why not `cargo fuzz run`: cargo-fuzz needs a nightly toolchain, and the machines here have
# stable only. libFuzzer itself (libfuzzer-sys) and the coverage instrumentation it needs
# (LLVM's SanitizerCoverage, `-Cpasses=sancov-module`) work on stable, so this script
# passes the same flags cargo-fuzz would (without AddressSanitizer, which is nightly-only;
# Rust's own bounds and overflow checks stay on). On a nightly toolchain `cd fuzz && cargo
# fuzz run TARGET` works as well.
#
# Environment: FUZZ_TARGET_DIR (build directory, default target/fuzz), FUZZ_JOBS (parallel
# fuzzing processes per target, default 1), FUZZ_RSS_MB (memory limit, default 1024).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ="$ROOT/fuzz"
TARGETS=(dissect tls_records dns_answer http_response capture replay)
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
BIN="$CARGO_TARGET_DIR/$TRIPLE/release"
RSS_MB="${FUZZ_RSS_MB:-1024}"

say() { printf 'fuzz: %s\n' "$*" >&2; }

build() {
    say "building the fuzz targets (stable $(rustc --version | cut -d' ' -f2), libFuzzer + SanitizerCoverage)"
    # --target keeps the instrumentation away from build scripts and proc macros.
    RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
        cargo build --release --manifest-path "$FUZZ/Cargo.toml" --target "$TRIPLE" --bins
}

# Captures of the built-in lab: the routes and faults whose bytes the targets should start
# from. Each line: arguments to `fetchscope fetch`.
CAPTURES=(
    "https://www.example.test/"
    "https://www.example.test/bytes/100000"
    "https://www.example.test/gzip-chunked"
    "https://www.example.test/deflate"
    "https://www.example.test/redirect/2"
    "https://alias.example.test/ --ipv6"
    "https://www.example.test/ --lab-fault bad-chunk"
    "https://www.example.test/ --lab-fault huge-headers"
    "https://www.example.test/ --lab-fault truncated"
    "https://www.example.test/ --lab-fault corrupt-gzip"
    "https://www.example.test/ --lab-fault dns-truncated"
    "https://www.example.test/ --lab-fault dns-wrong-id"
    "https://www.example.test/ --lab-fault tls-alert"
    "https://www.example.test/ --lab-fault cert-expired"
    "https://chain.example.test/"
    "http://www.example.test/"
    "http://www.example.test/gzip-chunked"
    "http://www.example.test/chunked"
    "http://www.example.test/close"
    "http://www.example.test/deflate-raw"
    "http://www.example.test/gzip"
    "http://www.example.test/status/103"
    "http://www.example.test/status/304"
    "http://www.example.test/bytes/20000"
    "http://www.example.test/ --lab-fault bad-chunk"
    "http://www.example.test/ --lab-fault huge-headers"
    "http://www.example.test/ --lab-fault bad-status-line"
    "http://www.example.test/ --lab-fault truncated"
    "http://www.example.test/ --lab-fault corrupt-gzip"
)

# The replay starts from whole captures of a few fetches (small ones: libFuzzer cuts inputs
# at 64 KiB); the cleartext one lets mutations reach the HTTP reading, which TLS's
# authentication stops. Each line: arguments to `fetchscope fetch`.
REPLAY_CAPTURES=(
    "https://www.example.test/"
    "https://www.example.test/bytes/30000"
    "https://www.example.test/ --loss 10"
    "https://www.example.test/redirect/2"
    "http://www.example.test/gzip-chunked"
)

# Rewrites pcapng files in place with their Decryption Secrets Block cut to the key log
# itself: fetchscope's --pcap reserves 64 KiB for it, padded with comment lines.
compact_pcapng() {
    python3 - "$@" <<'PY'
import struct, sys
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    out, at = bytearray(), 0
    while at + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, at)
        if length < 12 or at + length > len(data):
            break
        block = data[at:at + length]
        if kind == 0x0A and length >= 16:
            secrets_type, secrets_len = struct.unpack_from("<II", block, 8)
            text = block[16:16 + secrets_len]
            text = b"".join(l for l in text.splitlines(keepends=True) if not l.startswith(b"#"))
            padded = text + b"\0" * (-len(text) % 4)
            total = 16 + len(padded) + 4
            block = struct.pack("<IIII", kind, total, secrets_type, len(text)) + padded + struct.pack("<I", total)
        out += block
        at += length
    open(path, "wb").write(bytes(out))
PY
}

seeds() {
    local bin="${FETCHSCOPE_BIN:-}"
    if [[ -z "$bin" || ! -x "$bin" ]]; then
        say "building fetchscope to capture the seeds"
        (cd "$ROOT" && CARGO_TARGET_DIR="${SEED_TARGET_DIR:-$ROOT/target}" cargo build --release -q -p fetchscope)
        bin="${SEED_TARGET_DIR:-$ROOT/target}/release/fetchscope"
    fi
    local tmp
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    local i=0
    for args in "${CAPTURES[@]}"; do
        i=$((i + 1))
        # shellcheck disable=SC2086
        "$bin" fetch $args --seed "$i" --json --pcap "$tmp/$i.pcapng" >/dev/null 2>&1 || true
    done
    mkdir -p "$FUZZ/corpus"
    python3 "$ROOT/scripts/fuzz-seeds.py" "$FUZZ/corpus" "$tmp"/*.pcapng
    # The capture reader starts from whole files (the first 64 KiB of each, once the
    # secrets block's padding is gone, so the packets are in it).
    compact_pcapng "$tmp"/*.pcapng
    mkdir -p "$FUZZ/corpus/capture"
    for f in "$tmp"/*.pcapng; do head -c 65536 "$f" > "$FUZZ/corpus/capture/$(basename "$f")"; done
    # The replay starts from whole (compacted) captures.
    mkdir -p "$FUZZ/corpus/replay" "$tmp/replay"
    i=100
    for args in "${REPLAY_CAPTURES[@]}"; do
        i=$((i + 1))
        # shellcheck disable=SC2086
        "$bin" fetch $args --seed "$i" --json --pcap "$tmp/replay/$i.pcapng" >/dev/null 2>&1 || true
    done
    compact_pcapng "$tmp"/replay/*.pcapng
    for f in "$tmp"/replay/*.pcapng; do head -c 65536 "$f" > "$FUZZ/corpus/replay/$(basename "$f")"; done
}

run() {
    local target=$1 secs=$2
    [[ -x "$BIN/$target" ]] || { say "no such target '$target' (built: ${TARGETS[*]})"; exit 2; }
    local corpus="$FUZZ/corpus/$target" artifacts="$FUZZ/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    if [[ -z "$(ls -A "$corpus")" ]]; then
        seeds
    fi
    mkdir -p "$FUZZ/regressions/$target"
    local extra=()
    if [[ "${FUZZ_JOBS:-1}" != 1 ]]; then
        extra+=("-jobs=$FUZZ_JOBS" "-workers=$FUZZ_JOBS")
    fi
    if [[ -f "$FUZZ/dict/$target.dict" ]]; then
        extra+=("-dict=$FUZZ/dict/$target.dict")
    fi
    say "$target for ${secs}s ($(ls "$corpus" | wc -l) corpus files)"
    local log="$artifacts/last-run.log"
    set +e
    "$BIN/$target" "$corpus" "$FUZZ/regressions/$target" \
        -max_total_time="$secs" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
        -max_len=65536 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${extra[@]}" >"$log" 2>&1
    local status=$?
    set -e
    if [[ "${FUZZ_JOBS:-1}" != 1 ]]; then
        cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' "$log" |
        sed "s/^/fuzz: $target: /" >&2 || true
    grep -E '#[0-9]+ +DONE' "$log" | tail -1 | sed "s/^/fuzz: $target: /" >&2 || true
    if [[ $status -ne 0 ]]; then
        say "$target FAILED (exit $status); the input is in $artifacts/, the log in $log:"
        grep -E -A12 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | head -40 >&2
        return 1
    fi
}

case "${1:-}" in
    list) printf '%s\n' "${TARGETS[@]}" ;;
    build) build ;;
    seeds) seeds ;;
    ci)
        secs="${2:-20}"
        build
        failed=0
        for t in "${TARGETS[@]}"; do run "$t" "$secs" || failed=1; done
        exit $failed
        ;;
    all)
        secs="${2:?usage: scripts/fuzz.sh all SECONDS}"
        build
        failed=0
        for t in "${TARGETS[@]}"; do run "$t" "$secs" || failed=1; done
        exit $failed
        ;;
    "" | -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' ;;
    *)
        target=$1
        secs="${2:?usage: scripts/fuzz.sh TARGET SECONDS}"
        build
        run "$target" "$secs"
        ;;
esac
