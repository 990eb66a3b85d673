#!/usr/bin/env bash
# bench-ab.sh — fetchscope builds against each other and against curl, run by run.
#
# scripts/bench.sh times each command in a series of its own; on a busy or noisy machine a
# series minutes later meets another machine. This script alternates the commands run by
# run instead (curl, then each fetchscope binary, then curl again, ...), so a change of
# the machine hits them all alike. In the namespace lab (scripts/netns-lab.sh, prefix
# "fsbench"): the 64 MiB download /files/64M.bin through TUN, the output file removed
# before each run (see "fresh files" in scripts/bench.sh), then the medians and each
# binary's throughput against curl's. BENCHMARKS.md records what it printed.
#
# Usage: sudo scripts/bench-ab.sh [--runs N] [--mode text|json|pcap|null] BIN...
#
#   --runs N    rounds (default 9)
#   --mode M    text: the text trace to a file (default); json: --json to a file;
#               pcap: --pcap FILE as well; null: body and trace to /dev/null
#   BIN...      fetchscope binaries (e.g. target/release/fetchscope and an older build)
#
# Needs root, what netns-lab.sh needs, curl and python3. Everything it starts is stopped
# and the lab taken down on exit; each command is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

runs=9
mode=text
bins=()
while (($#)); do
    case $1 in
        --runs) runs=${2:?}; shift 2 ;;
        --mode) mode=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        -*) printf 'bench-ab.sh: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
        *) bins+=("$(realpath "$1")"); shift ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]?$ ]] || { echo "bench-ab.sh: --runs takes 1..99" >&2; exit 2; }
[[ $mode =~ ^(text|json|pcap|null)$ ]] || { echo "bench-ab.sh: --mode is text, json, pcap or null" >&2; exit 2; }
((${#bins[@]})) || { echo "bench-ab.sh: name at least one fetchscope binary (see --help)" >&2; exit 2; }
for b in "${bins[@]}"; do [[ -x $b ]] || { echo "bench-ab.sh: $b is not an executable" >&2; exit 2; }; done
[[ $EUID -eq 0 ]] || { echo "bench-ab.sh: needs root (network namespaces): sudo $0" >&2; exit 1; }

export FSC_LAB_PREFIX=fsbench FSC_LAB_DIR=/tmp/fetchscope-lab-fsbench FSC_LAB_TUN_USER=root
WORK=$(mktemp -d /tmp/fetchscope-bench-ab.XXXXXX)
chmod 755 "$WORK"
lab_is_up=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((lab_is_up)); then
        bash "$ROOT/scripts/netns-lab.sh" down --purge >/dev/null 2>&1 ||
            echo "bench-ab.sh: netns-lab.sh down --purge failed; run it by hand" >&2
    fi
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lab_is_up=1
timeout 300 bash "$ROOT/scripts/netns-lab.sh" up >"$WORK/lab-up.log" 2>&1 ||
    { cat "$WORK/lab-up.log" >&2; exit 1; }
# shellcheck disable=SC1091 # written by netns-lab.sh up
source "$FSC_LAB_DIR/lab.env"
URL=https://www.example.test/files/64M.bin
out=$WORK/body.bin trace=$WORK/trace
extra=()
case $mode in
    json) extra=(--json) ;;
    pcap) extra=(--pcap "$WORK/trace.pcapng") ;;
    null) out=/dev/null trace=/dev/null ;;
esac

# one NAME CMD...: one timed run; appends "NAME wall user sys" to $WORK/times.
one() {
    local name=$1
    shift
    [[ $out == /dev/null ]] || rm -f -- "$out"
    /usr/bin/time -f "$name %e %U %S" -a -o "$WORK/times" timeout 300 "$@" >"$trace" 2>/dev/null ||
        { echo "bench-ab.sh: $name failed" >&2; exit 1; }
}
for ((i = 0; i < runs; i++)); do
    one curl ip netns exec "$FSC_CLI_NS" curl --silent --show-error --fail --max-time 120 \
        --cacert "$FSC_CACERT" --resolve "www.example.test:443:$FSC_SERVER_ADDR" -o "$out" "$URL"
    for b in "${bins[@]}"; do
        one "$b" ip netns exec "$FSC_CLI_NS" "$b" fetch --color never --timeout 120 "$URL" \
            --tun "$FSC_TUN" --addr "$FSC_STACK_ADDR" --gateway "$FSC_GATEWAY" --dns "$FSC_DNS" \
            --cacert "$FSC_CACERT" -o "$out" "${extra[@]}"
    done
done

python3 - "$WORK/times" "$mode" "$runs" <<'PY'
import statistics, sys
path, mode, runs = sys.argv[1], sys.argv[2], sys.argv[3]
rows = {}
for line in open(path):
    name, wall, user, sys_ = line.rsplit(None, 3)
    rows.setdefault(name, []).append((float(wall), float(user) + float(sys_)))
curl = statistics.median(w for w, _ in rows["curl"])
print(f"64 MiB through TUN, mode {mode}, {runs} alternating rounds (medians; CPU = user + sys)")
print("| command | wall | range | CPU | throughput ÷ curl's |")
print("|---|---|---|---|---|")
for name, v in rows.items():
    w = statistics.median(x for x, _ in v)
    c = statistics.median(x for _, x in v)
    ratio = "" if name == "curl" else f"{curl / w:.2f}×"
    print(f"| {name} | {w:.3f} s | {min(x for x, _ in v):.3f}–{max(x for x, _ in v):.3f} s | {c:.3f} s | {ratio} |")
PY
