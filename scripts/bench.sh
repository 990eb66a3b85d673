#!/usr/bin/env bash
# bench.sh — fetchscope's benchmarks, recorded in BENCHMARKS.md.
#
# In the namespace lab (scripts/netns-lab.sh, under its own prefix "fsbench", so a lab
# someone has up is left alone), in one run:
#
#   1. a small-page fetch (/): fetchscope through TUN vs curl through the kernel's stack,
#      on the same nginx, both from inside the client namespace;
#   2. a 64 MiB download (/files/64M.bin) written to a file, the same two ways, and
#      fetchscope three more ways: its text trace written to a file, `--json` written to a
#      file, and `--pcap FILE`; with fetchscope's CPU per received packet;
#   3. fetchscope's peak RSS while it writes the 64 MiB body to a file;
#   4. fetchscope's CPU time while the server stays silent for 5 s;
#   5. the built-in lab (no TUN): wall time of `fetchscope fetch` and the throughput of a
#      16 MiB and a 64 MiB body written to a file.
#
# Medians of several runs (hyperfine when installed, else a timed loop), ratios against
# curl, and the targets of issues 3 and 13. Everything it starts is stopped, and the lab is taken
# down (`down --purge`) on exit, also on failure or Ctrl-C. Each command is bounded by
# `timeout`.
#
# Usage: sudo scripts/bench.sh [--runs-small N] [--runs-large N] [--no-build | --bin PATH]
#                              [--no-write]
#
#   --runs-small N   runs of each small-page fetch (default 15)
#   --runs-large N   runs of each 64 MiB / 16 MiB download (default 5)
#   --no-build       use the release binary as it is (default: cargo build --release)
#   --bin PATH       benchmark this fetchscope binary instead (no build)
#   --no-write       print the results only; leave BENCHMARKS.md alone
#
# Needs root, what netns-lab.sh needs (iproute2, nginx, dnsmasq, openssl), curl, python3
# and cargo; hyperfine is used when present. $CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

runs_small=15
runs_large=5
build=1
write=1
bin=""
while (($#)); do
    case $1 in
        --runs-small) runs_small=${2:?}; shift 2 ;;
        --runs-large) runs_large=${2:?}; shift 2 ;;
        --no-build) build=0; shift ;;
        --bin) bin=${2:?}; build=0; shift 2 ;;
        --no-write) write=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) printf 'bench.sh: unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
    esac
done
[[ $runs_small =~ ^[1-9][0-9]?$ && $runs_large =~ ^[1-9][0-9]?$ ]] ||
    { echo "bench.sh: --runs-small/--runs-large take 1..99" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "bench.sh: needs root (network namespaces): sudo $0" >&2; exit 1; }
for tool in curl python3 ip; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool is missing" >&2; exit 1; }
done

say() { printf '\n== %s\n' "$*" >&2; }

export FSC_LAB_PREFIX=fsbench
export FSC_LAB_DIR=/tmp/fetchscope-lab-fsbench
export FSC_LAB_TUN_USER=root
WORK=$(mktemp -d /tmp/fetchscope-bench.XXXXXX)
chmod 755 "$WORK"
lab_is_up=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((lab_is_up)); then
        bash "$ROOT/scripts/netns-lab.sh" down --purge >/dev/null 2>&1 ||
            echo "bench.sh: netns-lab.sh down --purge failed; run it by hand" >&2
    fi
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ------------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${bin:-$TARGET_DIR/release/fetchscope}
[[ $BIN == /* ]] || BIN=$PWD/$BIN
if ((build)); then
    say "cargo build --release -p fetchscope"
    timeout 1800 cargo build --release --quiet -p fetchscope --bin fetchscope
fi
[[ -x $BIN ]] || { echo "bench.sh: no $BIN (run without --no-build)" >&2; exit 1; }

# --- the lab ----------------------------------------------------------------------------
say "namespace lab ($FSC_LAB_PREFIX) up"
lab_is_up=1
timeout 300 bash "$ROOT/scripts/netns-lab.sh" up >"$WORK/lab-up.log" 2>&1 ||
    { cat "$WORK/lab-up.log" >&2; exit 1; }
# shellcheck disable=SC1091 # written by netns-lab.sh up
source "$FSC_LAB_DIR/lab.env"
CA=$FSC_CACERT
URL=https://www.example.test
IN_CLI=(ip netns exec "$FSC_CLI_NS")
FS=("${IN_CLI[@]}" "$BIN" fetch --color never --timeout 120)
TUN_ARGS=(--tun "$FSC_TUN" --addr "$FSC_STACK_ADDR" --gateway "$FSC_GATEWAY" --dns "$FSC_DNS" --cacert "$CA")
CURL=("${IN_CLI[@]}" curl --silent --show-error --fail --max-time 120 --cacert "$CA"
    --resolve "www.example.test:443:$FSC_SERVER_ADDR")
sha_of() { awk -v f="$1" '$2 == f { print $1 }' "$FSC_LAB_DIR/files.sha256"; }

# --- timing -----------------------------------------------------------------------------
# time_runs NAME RUNS WARMUP CMD...: runs CMD, writes NAME's wall times (seconds, one a line)
# to $WORK/NAME.times. With hyperfine: its measurements; without: a timed loop. CMD's
# standard output goes to the file $TRACE_TO when that is set, else nowhere. $FRESH names
# output files removed before each run (see "fresh files" below).
time_runs() {
    local name=$1 runs=$2 warmup=$3 i out=${TRACE_TO:-/dev/null} prepare=(true)
    shift 3
    [[ -n ${FRESH:-} ]] && prepare=(rm -f -- $FRESH)
    if command -v hyperfine >/dev/null; then
        # One string for hyperfine's -N: the words are plain (no spaces or quotes).
        timeout 1200 hyperfine --style basic -N --warmup "$warmup" --runs "$runs" \
            --prepare "${prepare[*]}" --output "$out" --export-json "$WORK/$name.json" "$*" >&2
        python3 -c 'import json,sys; [print(t) for t in json.load(open(sys.argv[1]))["results"][0]["times"]]' \
            "$WORK/$name.json" > "$WORK/$name.times"
        # The mean CPU time of the process (user + system), as hyperfine measured it.
        python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))["results"][0]; print(r["user"] + r["system"])' \
            "$WORK/$name.json" > "$WORK/$name.cpu"
        python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))["results"][0]; print(r["user"])' \
            "$WORK/$name.json" > "$WORK/$name.user"
    else
        for ((i = 0; i < warmup; i++)); do "${prepare[@]}"; timeout 300 "$@" >"$out" 2>/dev/null; done
        : > "$WORK/$name.times"
        for ((i = 0; i < runs; i++)); do
            local t0 t1
            "${prepare[@]}"
            t0=$(date +%s.%N)
            timeout 300 "$@" >"$out" 2>/dev/null
            t1=$(date +%s.%N)
            python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1" >> "$WORK/$name.times"
        done
    fi
}
median() { python3 -c 'import statistics,sys; print(statistics.median(float(l) for l in open(sys.argv[1])))' "$WORK/$1.times"; }

# check_file FILE LABFILE: the body written is nginx's file.
check_file() {
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [[ $got == "$(sha_of "$2")" ]] || { echo "bench.sh: $1 is not $2 (sha256 $got)" >&2; exit 1; }
}

say "small page: $URL/ (${runs_small} runs each)"
"${FS[@]}" "$URL/" "${TUN_ARGS[@]}" >/dev/null # fails loudly if the lab does not work
time_runs fs_small "$runs_small" 3 "${FS[@]}" "$URL/" "${TUN_ARGS[@]}"
time_runs fs_small_resolve "$runs_small" 3 "${FS[@]}" "$URL/" "${TUN_ARGS[@]}" \
    --resolve "www.example.test:443:$FSC_SERVER_ADDR"
time_runs curl_small "$runs_small" 3 "${CURL[@]}" -o /dev/null "$URL/"

say "64 MiB download: $URL/files/64M.bin to a file (${runs_large} runs each)"
# Fresh files: each run's output file is removed just before it. On a VM whose balloon
# reports free pages to the host (Firecracker, this machine), pages freed more than a
# moment ago are given back and cost a host fault on their next use. curl truncates its
# file when it opens it and reuses those pages at once; fetchscope writes FILE.part and
# renames it over FILE at the end (so a failed fetch never destroys FILE), which frees the
# old pages only then: a series of overwrites would charge it ~0.1-0.2 s of page faults
# per 64 MiB that curl does not pay. Removing both files first gives both the same pages.
export FRESH
FRESH="$WORK/fs-64M.bin" time_runs fs_large "$runs_large" 1 "${FS[@]}" "$URL/files/64M.bin" "${TUN_ARGS[@]}" -o "$WORK/fs-64M.bin"
check_file "$WORK/fs-64M.bin" www/files/64M.bin
FRESH="$WORK/curl-64M.bin" time_runs curl_large "$runs_large" 1 "${CURL[@]}" -o "$WORK/curl-64M.bin" "$URL/files/64M.bin"
check_file "$WORK/curl-64M.bin" www/files/64M.bin
rm -f "$WORK/fs-64M.bin"

say "64 MiB download with its trace kept: text to a file, --json to a file, --pcap"
FRESH="$WORK/fs-64M.bin" TRACE_TO=$WORK/trace.txt time_runs fs_large_text "$runs_large" 1 "${FS[@]}" "$URL/files/64M.bin" \
    "${TUN_ARGS[@]}" -o "$WORK/fs-64M.bin"
check_file "$WORK/fs-64M.bin" www/files/64M.bin
# The packets fetchscope received, from the trace's summary line ("N packets sent, M received").
rx_large=$(grep -o 'packets sent, [0-9]* received' "$WORK/trace.txt" | tail -1 | cut -d' ' -f3)
FRESH="$WORK/fs-64M.bin" TRACE_TO=$WORK/trace.ndjson time_runs fs_large_json "$runs_large" 1 "${FS[@]}" "$URL/files/64M.bin" \
    "${TUN_ARGS[@]}" -o "$WORK/fs-64M.bin" --json
check_file "$WORK/fs-64M.bin" www/files/64M.bin
grep -q '"type":"done"' "$WORK/trace.ndjson" || { echo "bench.sh: the --json trace has no done event" >&2; exit 1; }
FRESH="$WORK/fs-64M.bin" time_runs fs_large_pcap "$runs_large" 1 "${FS[@]}" "$URL/files/64M.bin" "${TUN_ARGS[@]}" \
    -o "$WORK/fs-64M.bin" --pcap "$WORK/trace.pcapng"
check_file "$WORK/fs-64M.bin" www/files/64M.bin
# The same curl once more after these, so a drift of the machine shows as a change of curl.
FRESH="$WORK/curl-64M.bin" time_runs curl_large2 "$runs_large" 1 "${CURL[@]}" -o "$WORK/curl-64M.bin" "$URL/files/64M.bin"
TRACE_TO=$WORK/small.txt time_runs fs_small_text 3 1 "${FS[@]}" "$URL/" "${TUN_ARGS[@]}"
rx_small=$(grep -o 'packets sent, [0-9]* received' "$WORK/small.txt" | tail -1 | cut -d' ' -f3)
[[ $rx_large =~ ^[0-9]+$ && $rx_small =~ ^[0-9]+$ ]] ||
    { echo "bench.sh: no packet counts in the traces ($rx_large, $rx_small)" >&2; exit 1; }
rm -f "$WORK/fs-64M.bin" "$WORK/curl-64M.bin" "$WORK/trace.txt" "$WORK/trace.ndjson" "$WORK/trace.pcapng"

say "peak RSS of fetchscope writing 64 MiB to a file"
# ru_maxrss of the child from wait4 (ip netns exec execs fetchscope, so the child is
# fetchscope), KiB.
rss_kib=$(timeout 300 python3 - "$WORK/rss-64M.bin" "${FS[@]}" "$URL/files/64M.bin" "${TUN_ARGS[@]}" <<'PY'
import os, subprocess, sys
out, cmd = sys.argv[1], sys.argv[2:]
child = subprocess.Popen(cmd + ["-o", out], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, f"fetchscope failed: {status}"
print(usage.ru_maxrss)
PY
)
check_file "$WORK/rss-64M.bin" www/files/64M.bin
rm -f "$WORK/rss-64M.bin"

say "CPU while the server is silent for 5 s"
# A TCP server in the server namespace accepts and then says nothing for 8 s; fetchscope
# connects, sends its ClientHello and waits, until its --timeout of 6.5 s ends the fetch.
# Two numbers: its CPU time over 5 s of that silence (/proc/PID/stat, in clock ticks of
# 10 ms), and the CPU time of the whole process, start-up and handshakes included
# (wait4's rusage of the child, microseconds), against its whole wall time.
idle=$(timeout 120 python3 - "$FSC_SRV_NS" "$FSC_SERVER_ADDR" "${IN_CLI[@]}" "$BIN" fetch \
    --color never --timeout 6.5 "$URL:8443/" "${TUN_ARGS[@]}" <<'PY'
import os, subprocess, sys, time
ns, addr, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
server_code = r'''
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8443)); s.listen(1); s.settimeout(60)
print("listening", flush=True)
c, _ = s.accept(); print("accepted", flush=True)
time.sleep(8); c.close()
'''
server = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", server_code, addr],
                          stdout=subprocess.PIPE, text=True)
fetch = None
try:
    assert server.stdout.readline().strip() == "listening"
    start = time.monotonic()
    fetch = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert server.stdout.readline().strip() == "accepted"
    hz = os.sysconf("SC_CLK_TCK")
    def cpu():
        f = open(f"/proc/{fetch.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / hz
    time.sleep(0.5)
    c0, t0 = cpu(), time.monotonic()
    time.sleep(5)
    c1, t1 = cpu(), time.monotonic()
    _, status, ru = os.wait4(fetch.pid, 0)
    wall = time.monotonic() - start
    fetch.returncode = os.waitstatus_to_exitcode(status)
    assert fetch.returncode == 8, f"expected a timeout (exit 8), got {fetch.returncode}"
    print(f"{c1 - c0:.3f} {t1 - t0:.3f} {ru.ru_utime + ru.ru_stime:.6f} {wall:.3f}")
finally:
    for p in (fetch, server):
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
PY
)
read -r idle_cpu idle_wall proc_cpu proc_wall <<< "$idle"

say "built-in lab (no TUN)"
LAB_FS=("$BIN" fetch --color never)
time_runs lab_small "$runs_small" 3 "${LAB_FS[@]}"
FRESH="$WORK/lab-16M.bin" time_runs lab_16m "$runs_large" 1 "${LAB_FS[@]}" "https://www.example.test/bytes/16777216" -o "$WORK/lab-16M.bin"
[[ $(stat -c %s "$WORK/lab-16M.bin") == 16777216 ]] || { echo "bench.sh: the lab's 16 MiB body is short" >&2; exit 1; }
rm -f "$WORK/lab-16M.bin"
FRESH="$WORK/lab-64M.bin" TRACE_TO=$WORK/lab-trace.txt time_runs lab_64m "$runs_large" 1 "${LAB_FS[@]}" \
    "https://www.example.test/bytes/67108864" -o "$WORK/lab-64M.bin"
[[ $(stat -c %s "$WORK/lab-64M.bin") == 67108864 ]] || { echo "bench.sh: the lab's 64 MiB body is short" >&2; exit 1; }
rm -f "$WORK/lab-64M.bin" "$WORK/lab-trace.txt"

# --- results ----------------------------------------------------------------------------
report=$(python3 - "$WORK" "$rss_kib" "$idle_cpu" "$idle_wall" "$proc_cpu" "$proc_wall" "$rx_large" "$rx_small" <<'PY'
import statistics, sys
work, rss_kib = sys.argv[1], int(sys.argv[2])
idle_cpu, idle_wall, proc_cpu, proc_wall = (float(a) for a in sys.argv[3:7])
rx_large, rx_small = int(sys.argv[7]), int(sys.argv[8])
def times(name):
    return [float(l) for l in open(f"{work}/{name}.times")]
def med(name):
    return statistics.median(times(name))
def ms(s):
    return f"{s * 1000:.1f} ms"
def spread(name):
    t = times(name)
    return f"{min(t) * 1000:.1f}–{max(t) * 1000:.1f} ms ({len(t)} runs)"
def cpu_s(name):
    try:
        return float(open(f"{work}/{name}.cpu").read())
    except OSError:
        return None
def cpu(name):
    c = cpu_s(name)
    return "–" if c is None else ms(c)
def user_s(name):
    try:
        return float(open(f"{work}/{name}.user").read())
    except OSError:
        return None
mib = 1024 * 1024
fs_s, fs_sr, cu_s = med("fs_small"), med("fs_small_resolve"), med("curl_small")
fs_l, cu_l = med("fs_large"), med("curl_large")
lab_s, lab_l, lab_64 = med("lab_small"), med("lab_16m"), med("lab_64m")
small_ratio = fs_s / cu_s
tput_fs, tput_cu = 64 / fs_l, 64 / cu_l
tput_ratio = tput_fs / tput_cu
# curl's median over both of its 64 MiB series, the reference for the traced runs.
cu_all = statistics.median(times("curl_large") + times("curl_large2"))
def traced(name, what):
    t = med(name)
    r = cu_all / t
    return (f"64 MiB to a file, fetchscope via TUN, {what}", f"{ms(t)} = {64 / t:.0f} MiB/s",
            spread(name), cpu(name), f"{r:.2f}× curl — ≥ 0.6× {verdict(r >= 0.6)}")
# CPU per received packet: the whole fetch, and the bulk phase (the 64 MiB fetch's CPU
# beyond the small page's, over the packets beyond the small page's).
c_large, c_small = cpu_s("fs_large_text"), cpu_s("fs_small_text")
per_packet = c_large / rx_large * 1e6 if c_large else float("nan")
u_large = user_s("fs_large_text")
per_packet_user = u_large / rx_large * 1e6 if u_large else float("nan")
bulk = (c_large - c_small) / (rx_large - rx_small) * 1e6 if c_large and c_small else float("nan")
rss_mib = rss_kib / 1024
idle_share = idle_cpu / idle_wall
def verdict(ok):
    return "met" if ok else "**missed**"
rows = [
    ("small page `/`, fetchscope via TUN (DNS by dnsmasq)", ms(fs_s), spread("fs_small"), cpu("fs_small"), ""),
    ("small page `/`, fetchscope via TUN, `--resolve`", ms(fs_sr), spread("fs_small_resolve"), cpu("fs_small_resolve"), ""),
    ("small page `/`, curl via the kernel, `--resolve`", ms(cu_s), spread("curl_small"), cpu("curl_small"), ""),
    ("small page: fetchscope ÷ curl", f"{small_ratio:.2f}×", "", "", f"≤ 1.0× — {verdict(small_ratio <= 1.0)}"),
    ("64 MiB to a file, fetchscope via TUN", f"{ms(fs_l)} = {tput_fs:.0f} MiB/s", spread("fs_large"), cpu("fs_large"), ""),
    ("64 MiB to a file, curl via the kernel", f"{ms(cu_l)} = {tput_cu:.0f} MiB/s", spread("curl_large"), cpu("curl_large"), ""),
    ("64 MiB throughput: fetchscope ÷ curl", f"{tput_ratio:.2f}×", "", "", f"≥ 0.6× — {verdict(tput_ratio >= 0.6)}"),
    traced("fs_large_text", "text trace to a file"),
    traced("fs_large_json", "`--json` to a file"),
    traced("fs_large_pcap", "`--pcap FILE`"),
    ("64 MiB to a file, curl again after the traced runs", ms(med("curl_large2")), spread("curl_large2"), cpu("curl_large2"), ""),
    (f"CPU per received packet, text trace to a file ({rx_large} packets)", f"{per_packet:.1f} µs", "mean CPU ÷ packets", "", ""),
    ("… of which in user space (fetchscope's own code and its crates)", f"{per_packet_user:.1f} µs", "mean user CPU ÷ packets", "", ""),
    (f"CPU per received packet in the bulk phase (beyond the small page's {rx_small})", f"{bulk:.1f} µs", "mean CPU ÷ packets", "", f"≤ 3 µs — {verdict(bulk <= 3)}"),
    ("peak RSS, fetchscope writing 64 MiB to a file", f"{rss_mib:.1f} MiB", "1 run", "", f"≤ 32 MiB — {verdict(rss_mib <= 32)}"),
    ("CPU while the server is silent, 5 s window (10 ms ticks)", f"{idle_cpu * 1000:.0f} ms in {idle_wall:.2f} s = {idle_share * 100:.2f} %", "1 run", "", f"≤ 2 % — {verdict(idle_share <= 0.02)}"),
    ("CPU of the whole silent-server fetch (start-up, DNS, handshakes, 6.5 s timeout)", f"{proc_cpu * 1000:.1f} ms in {proc_wall:.2f} s = {proc_cpu / proc_wall * 100:.2f} %", "1 run", "", ""),
    ("built-in lab: `fetchscope fetch` (page)", ms(lab_s), spread("lab_small"), cpu("lab_small"), ""),
    ("built-in lab: 16 MiB `/bytes/16777216 -o file`", f"{ms(lab_l)} = {16 / lab_l:.0f} MiB/s", spread("lab_16m"), cpu("lab_16m"), ""),
    ("built-in lab: 64 MiB `/bytes/67108864 -o file`, text trace to a file", f"{ms(lab_64)} = {64 / lab_64:.0f} MiB/s", spread("lab_64m"), cpu("lab_64m"), f"≥ 300 MiB/s — {verdict(64 / lab_64 >= 300)}"),
]
print("| measurement | median wall time | range | CPU (user + sys, mean) | target |")
print("|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
)

when=$(date -u '+%Y-%m-%d %H:%M UTC')
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
load=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
if git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
    dirty=" (with uncommitted changes)"
fi
if [[ -n $bin ]]; then
    origin="a binary given with --bin (the checkout was at $commit$dirty)"
else
    origin="release build of commit $commit$dirty"
fi
hyper=$(command -v hyperfine >/dev/null && hyperfine --version || echo "no hyperfine: a timed loop")
block=$(cat <<EOF
<!-- bench:begin (written by scripts/bench.sh; edit outside these markers) -->
Measured $when with \`sudo scripts/bench.sh --runs-small $runs_small --runs-large $runs_large${bin:+ --bin $bin}\`, $origin.

- Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r), load average before the run: $load
- Tools: $("$BIN" --version 2>/dev/null || echo fetchscope), $(curl --version | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3), $hyper
- Link: TUN \`$FSC_TUN\` MTU $(ip -n "$FSC_CLI_NS" -o link show "$FSC_TUN" | grep -o 'mtu [0-9]*' | cut -d' ' -f2), veth MTU 1500 (offloads off when ethtool is present)

$report
<!-- bench:end -->
EOF
)
printf '\n%s\n' "$block"
if ((write)); then
    out=$ROOT/BENCHMARKS.md
    if [[ -f $out ]] && grep -q '^<!-- bench:begin' "$out" && grep -q '^<!-- bench:end' "$out"; then
        python3 - "$out" "$block" <<'PY'
import sys
path, block = sys.argv[1], sys.argv[2]
text = open(path).read()
start = text.index("<!-- bench:begin")
end = text.index("<!-- bench:end -->") + len("<!-- bench:end -->")
open(path, "w").write(text[:start] + block + text[end:])
PY
    else
        printf '# Benchmarks\n\n%s\n' "$block" > "$out"
    fi
    say "wrote $out"
fi
