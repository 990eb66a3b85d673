#!/usr/bin/env bash
# loss-matrix.sh — the long loss matrix, recorded in BENCHMARKS.md.
#
# In the built-in lab (no root, no network): 1 MiB bodies (/bytes/1048576) fetched at each
# loss rate with 2 % reordering and 2 % duplication, over many seeds, with the loss in both
# directions, only on the way in (rx) and only on the way out (tx). Every fetch must end
# with `done` and the right SHA-256; anything else is a failure, listed with the command
# that reproduces it. For each rate and direction: runs, failures, and the median, p90 and
# maximum *virtual* time a fetch took (the lab's clock; smoltcp's retransmission timer
# backs off to 60 s, so heavy loss takes virtual minutes but real seconds).
#
# The short version runs in CI: tests/tests/loss_matrix.rs.
#
# The Linux reference columns (curl through the kernel, and fetchscope over TUN, against
# nginx in the namespace lab with the same nftables-injected loss; needs root):
# `scripts/loss-matrix.sh --linux [its options]` runs scripts/loss-linux.sh (see its --help).
#
# Usage: scripts/loss-matrix.sh [--seeds N] [--seeds-one-way N] [--rates "1 5 10 20"]
#                               [--jobs J] [--no-build | --bin PATH] [--no-write]
#        scripts/loss-matrix.sh --linux [--bin PATH] [--runs N] [--sizes "1 16"] ...
#
#   --seeds N          seeds per rate with loss in both directions (default 250)
#   --seeds-one-way N  seeds per rate with loss only rx, and only tx (default 50 each)
#   --rates "..."      loss percentages (default "1 5 10 20")
#   --jobs J           fetches run at once (default: the number of CPUs)
#   --no-build         use target/release/fetchscope as it is (default: cargo build --release)
#   --bin PATH         run this fetchscope binary (no build)
#   --no-write         print the results only; leave BENCHMARKS.md alone
#
# Needs cargo (unless --bin), python3 and coreutils' timeout. $CARGO_TARGET_DIR is honoured.
# Each fetch is bounded: --timeout 86400 virtual seconds, and 600 real seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

seeds=250
seeds_one_way=50
rates="1 5 10 20"
jobs=$(nproc 2>/dev/null || echo 2)
build=1
write=1
bin=""
args_given=("$@")
while (($#)); do
    case $1 in
        --seeds) seeds=${2:?}; shift 2 ;;
        --seeds-one-way) seeds_one_way=${2:?}; shift 2 ;;
        --rates) rates=${2:?}; shift 2 ;;
        --jobs) jobs=${2:?}; shift 2 ;;
        --no-build) build=0; shift ;;
        --bin) bin=${2:?}; build=0; shift 2 ;;
        --no-write) write=0; shift ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        --linux) shift; exec "$(dirname "${BASH_SOURCE[0]}")/loss-linux.sh" "$@" ;;
        *) echo "loss-matrix.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
for n in "$seeds" "$seeds_one_way" "$jobs"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "loss-matrix.sh: not a number: $n" >&2; exit 2; }
done
((jobs >= 1)) || jobs=1

target=${CARGO_TARGET_DIR:-$ROOT/target}
built="release build"
[[ -n $bin ]] && built="the binary $bin, from"
if [[ -z $bin ]]; then
    bin=$target/release/fetchscope
    if ((build)); then
        echo "== cargo build --release -p fetchscope"
        cargo build --release --quiet -p fetchscope --bin fetchscope
    fi
fi
[[ -x $bin ]] || { echo "loss-matrix.sh: no fetchscope binary at $bin" >&2; exit 3; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fetchscope-loss-matrix.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# One line per fetch: rate dir seed
cases=$work/cases
: > "$cases"
for rate in $rates; do
    for ((s = 1; s <= seeds; s++)); do echo "$rate both $s" >> "$cases"; done
    for ((s = 1; s <= seeds_one_way; s++)); do
        echo "$rate rx $((1000 + s))" >> "$cases"
        echo "$rate tx $((2000 + s))" >> "$cases"
    done
done
total=$(wc -l < "$cases")
echo "== $total fetches of 1 MiB, $jobs at a time, with $bin"

# Runs one case; prints "rate dir seed status virtual_ms real_ms detail".
export BIN=$bin
one() {
    local rate=$1 dir=$2 seed=$3 start end last
    start=$(date +%s%N)
    last=$(NO_COLOR=1 timeout 600 "$BIN" fetch https://www.example.test/bytes/1048576 --json \
        --seed "$seed" --loss "$rate" --reorder 2 --duplicate 2 --faults-dir "$dir" \
        --timeout 86400 2>/dev/null | tail -n 1) || true
    end=$(date +%s%N)
    printf '%s %s %s %s\t%s\n' "$rate" "$dir" "$seed" "$(((end - start) / 1000000))" "$last"
}
export -f one
started=$(date +%s)
xargs -P "$jobs" -L 1 bash -c 'one "$@"' _ < "$cases" > "$work/results"
elapsed=$(($(date +%s) - started))

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
git diff --quiet HEAD -- crates 2>/dev/null || dirty=" (with uncommitted changes)"
block=$work/block.md
python3 - "$work/results" "$block" "$elapsed" "$commit$dirty" "${args_given[*]:-}" "$built" <<'PY'
import hashlib, json, statistics, sys, os, platform, datetime

results, out, elapsed, commit, args, built = sys.argv[1:7]
expected = hashlib.sha256(bytes(i % 251 for i in range(1 << 20))).hexdigest()
rows, failures = {}, []
for line in open(results):
    head, _, last = line.rstrip("\n").partition("\t")
    rate, direction, seed, real_ms = head.split()
    key = (float(rate), direction)
    r = rows.setdefault(key, {"times": [], "real": [], "fail": 0})
    r["real"].append(int(real_ms) / 1000)
    try:
        ev = json.loads(last)
    except ValueError:
        ev = {}
    ok = ev.get("type") == "done" and ev.get("body_sha256") == expected
    if ok:
        r["times"].append(ev["timings"]["total_ms"] / 1000)
    else:
        r["fail"] += 1
        what = ev.get("message") or ("wrong digest" if ev.get("type") == "done" else "no result (killed or crashed)")
        failures.append(
            f"`fetchscope fetch https://www.example.test/bytes/1048576 --seed {seed} --loss {rate} "
            f"--reorder 2 --duplicate 2 --faults-dir {direction} --timeout 86400`: {what}"
        )

def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]

def fmt(v):
    return "–" if v is None else (f"{v:.1f} s" if v < 600 else f"{v / 60:.1f} min")

order = {"both": 0, "rx": 1, "tx": 2}
lines = []
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
cpus = os.cpu_count()
lines.append(f"Measured {now} with `scripts/loss-matrix.sh {args}`, {built} commit {commit}; "
             f"{sum(len(r['times']) + r['fail'] for r in rows.values())} fetches in {elapsed} s of real time "
             f"on {cpus} CPUs (Linux {platform.release()}).")
lines.append("")
lines.append("| loss | direction | fetches | failed | median | p90 | max | real time per fetch (median) |")
lines.append("|---|---|---|---|---|---|---|---|")
for (rate, d), r in sorted(rows.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))):
    n = len(r["times"]) + r["fail"]
    rate_s = f"{rate:g} %"
    lines.append(
        f"| {rate_s} | {d} | {n} | {r['fail']} | {fmt(pct(r['times'], 50))} | {fmt(pct(r['times'], 90))} | "
        f"{fmt(max(r['times']) if r['times'] else None)} | {statistics.median(r['real']):.2f} s |"
    )
lines.append("")
if failures:
    lines.append(f"**{len(failures)} failed** (each is a bug to fix):")
    lines.append("")
    for f in failures[:20]:
        lines.append(f"- {f}")
    if len(failures) > 20:
        lines.append(f"- … and {len(failures) - 20} more")
else:
    lines.append("Every fetch completed with the right digest.")
open(out, "w").write("\n".join(lines) + "\n")
PY
cat "$block"

if ((write)); then
    python3 - "$ROOT/BENCHMARKS.md" "$block" <<'PY'
import sys
path, block = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
begin = "<!-- loss-matrix:begin (written by scripts/loss-matrix.sh; edit outside these markers) -->"
end = "<!-- loss-matrix:end -->"
if begin not in text or end not in text:
    sys.exit("BENCHMARKS.md has no loss-matrix markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + block + end + tail)
PY
    echo "== BENCHMARKS.md updated"
fi
if grep -q "failed\*\*" "$block"; then
    exit 1
fi
