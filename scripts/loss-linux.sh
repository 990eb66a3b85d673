#!/usr/bin/env bash
# loss-linux.sh — the Linux reference for fetchscope's loss recovery.
#
# In the namespace lab (scripts/netns-lab.sh: nginx in netns fsc-srv, clients in fsc-cli),
# the same HTTPS download (/files/1M.bin, /files/16M.bin) is fetched by curl through the
# Linux kernel's TCP stack in fsc-cli, and by fetchscope over the TUN device fsc0 in fsc-cli
# (its own smoltcp stack; fsc-cli's kernel only forwards between fsc0 and the veth), with
# the same packet loss injected by the kernel: nftables `numgen random mod 100 < N` drop
# rules (no sch_netem needed), in a table `inet fsclossref`:
#
#   rx    server→client segments (tcp sport 443 from 10.88.0.1) dropped in fsc-cli: on its
#         input hook for curl's connection, on its forward hook for fetchscope's
#   both  rx, and client→server segments (tcp dport 443) dropped on fsc-srv's input hook
#
# Drops are never made on the sending host's output: a local drop there is fed back to the
# sender's TCP (TSQ) and does not show as a retransmission on the wire. Each fetch's drops
# (nft counters) and the server's retransmitted segments (/proc/net/snmp in fsc-srv) are
# recorded, and a case whose rules dropped nothing, or whose curl runs saw no
# retransmission, is flagged. One more case, "300 ± 100 ms one way", delays server→client
# packets with fetchscope's own --delay 300 --jitter 100 --faults-dir rx on the TUN link;
# without sch_netem the kernel path has no delay injector, so curl's cells there read
# "n/a". A first case without any injection ("none") is the baseline.
#
# Each case, size and run: curl (--max-time 60) then fetchscope (--timeout 60), each also
# bounded by coreutils' timeout (75 s). A fetch completed if it ended with HTTP 200 and the
# body's SHA-256 is the lab's (files.sha256). Per case and size: completed/runs and the
# median time of the completed fetches (the tool's own total: curl's time_total,
# fetchscope's timings.total_ms; the wall-clock median, process start to exit, in
# brackets), fetchscope/curl of those medians, and whether every run in which curl
# completed within 60 s, fetchscope (run right after it) completed too.
#
# Usage: sudo scripts/loss-linux.sh [--bin PATH] [--sizes "1 16"] [--rates "1 5 10 30"]
#                                   [--runs N] [--no-delay-case] [--write FILE]
#
#   --bin PATH       the fetchscope binary (default target/release/fetchscope; $CARGO_TARGET_DIR
#                    is honoured; nothing is built)
#   --sizes "..."    MiB sizes of the lab's /files/NM.bin to fetch (default "1 16"; the lab
#                    has 1, 16 and 64)
#   --rates "..."    loss percentages, each run rx and both (default "1 5 10 30")
#   --runs N         fetches per client, case and size (default 5)
#   --no-delay-case  leave out the 300 ± 100 ms case
#   --write FILE     also write the result block (header line, table, notes) to FILE
#
# Needs root, nftables (nft), curl, python3, iproute2 and coreutils. If the lab is not up,
# it runs `scripts/netns-lab.sh up` and `down` again at exit; the nftables table is always
# removed at exit (also on Ctrl-C). All traffic stays inside the lab's namespaces.
# $FSC_LAB_PREFIX selects another lab, as for netns-lab.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

die() { printf 'loss-linux.sh: %s\n' "$1" >&2; exit "${2:-1}"; }
say() { printf '== %s\n' "$*" >&2; }

bin=""
sizes="1 16"
rates="1 5 10 30"
runs=5
delay_case=1
write=""
args_given=("$@")
while (($#)); do
    case $1 in
        --bin) bin=${2:?--bin needs a path}; shift 2 ;;
        --sizes) sizes=${2:?--sizes needs a list}; shift 2 ;;
        --rates) rates=${2:?--rates needs a list}; shift 2 ;;
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --no-delay-case) delay_case=0; shift ;;
        --write) write=${2:?--write needs a file}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (try --help)" 2 ;;
    esac
done
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1 && runs <= 1000)) || die "--runs must be a number from 1 to 1000, not '$runs'" 2
for s in $sizes; do [[ $s =~ ^[0-9]+$ ]] || die "--sizes: not a number of MiB: '$s'" 2; done
for r in $rates; do
    [[ $r =~ ^[0-9]+$ ]] && ((r >= 1 && r <= 100)) || die "--rates: each rate must be a whole percentage from 1 to 100, not '$r'" 2
done
[[ -n ${sizes// /} ]] || die "--sizes is empty" 2

[[ $EUID -eq 0 ]] || die "needs root (network namespaces and nftables): sudo $0 ${args_given[*]:-}"
for tool in ip nft curl python3 timeout sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "missing: $tool (Debian packages: iproute2 nftables curl python3 coreutils)"
done

if [[ -z $bin ]]; then
    bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/fetchscope
fi
[[ $bin == /* ]] || bin=$ROOT/$bin
[[ -x $bin ]] || die "no fetchscope binary at $bin (build it: cargo build --release -p fetchscope, or pass --bin PATH)" 3

# The lab's names, as netns-lab.sh makes them.
PFX=${FSC_LAB_PREFIX:-fsc}
[[ $PFX =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "FSC_LAB_PREFIX must be 1-8 lower-case letters or digits (got $PFX)" 2
SRV_NS=$PFX-srv
CLI_NS=$PFX-cli
TUN=${PFX}0
if [[ $PFX == fsc ]]; then LAB=${FSC_LAB_DIR:-/tmp/fetchscope-lab}; else LAB=${FSC_LAB_DIR:-/tmp/fetchscope-lab-$PFX}; fi
readonly SRV_ADDR=10.88.0.1 STACK_ADDR=10.88.1.2/24 GATEWAY=10.88.1.1 HOST=www.example.test
readonly TABLE=fsclossref
readonly CURL_MAX=60 FS_TIMEOUT=60 BACKSTOP=75

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fetchscope-loss-linux.XXXXXX")
brought_up=0
child=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    local ns
    for ns in "$CLI_NS" "$SRV_NS"; do
        if ns_exists "$ns" && ip netns exec "$ns" nft list table inet "$TABLE" >/dev/null 2>&1; then
            ip netns exec "$ns" nft delete table inet "$TABLE" || echo "loss-linux.sh: could not delete table inet $TABLE in $ns" >&2
        fi
    done
    if ((brought_up)); then
        say "bringing the lab down again (this script brought it up)"
        "$ROOT/scripts/netns-lab.sh" down > "$work/lab-down.log" 2>&1 ||
            { tail -n 5 "$work/lab-down.log" >&2; echo "loss-linux.sh: scripts/netns-lab.sh down failed" >&2; }
    fi
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the lab ------------------------------------------------------------------------

lab_ok() {
    ns_exists "$SRV_NS" && ns_exists "$CLI_NS" && ip -n "$CLI_NS" link show "$TUN" >/dev/null 2>&1 &&
        [[ -r $LAB/ca.pem && -r $LAB/files.sha256 ]] &&
        ip netns exec "$CLI_NS" curl -s -o /dev/null --max-time 5 --cacert "$LAB/ca.pem" \
            --resolve "$HOST:443:$SRV_ADDR" "https://$HOST/" 2>/dev/null
}
if ! lab_ok; then
    ns_exists "$CLI_NS" || brought_up=1
    say "the lab is not (fully) up: scripts/netns-lab.sh up"
    if ! "$ROOT/scripts/netns-lab.sh" up > "$work/lab-up.log" 2>&1; then
        tail -n 8 "$work/lab-up.log" >&2
        die "scripts/netns-lab.sh up failed (missing packages? try: sudo scripts/netns-lab.sh up --install)"
    fi
    lab_ok || die "the lab came up but https://$HOST/ does not answer curl in $CLI_NS"
fi
ip netns exec "$CLI_NS" nft list tables >/dev/null 2>&1 || die "nft does not work in $CLI_NS (nf_tables missing from the kernel?)"

expected_sha() { awk -v f="www/files/$1M.bin" '$2 == f { print $1 }' "$LAB/files.sha256"; }
available=$(awk '$2 ~ /^www\/files\/[0-9]+M\.bin$/ { sub(/^www\/files\//, "", $2); sub(/M\.bin$/, "", $2); printf "%s ", $2 }' "$LAB/files.sha256")
for s in $sizes; do
    [[ -n $(expected_sha "$s") ]] || die "the lab has no ${s} MiB file (it serves /files/NM.bin for N in: ${available% })" 2
done

# Is there a kernel delay injector? (Only to say why curl's delay cells are empty.)
no_delay_why="n/a (no sch_netem)"
if ((delay_case)); then
    if ip netns exec "$CLI_NS" tc qdisc replace dev lo root netem delay 1ms >/dev/null 2>&1; then
        ip netns exec "$CLI_NS" tc qdisc del dev lo root >/dev/null 2>&1 || true
        no_delay_why="n/a (not measured)"
    fi
fi

# --- loss rules ---------------------------------------------------------------------

drop_rules() { # RATE DIR: (re)make the tables; RATE 0 removes them
    local rate=$1 dir=$2 ns
    for ns in "$CLI_NS" "$SRV_NS"; do
        if ip netns exec "$ns" nft list table inet "$TABLE" >/dev/null 2>&1; then
            ip netns exec "$ns" nft delete table inet "$TABLE"
        fi
    done
    ((rate > 0)) || return 0
    local sc="ip saddr $SRV_ADDR tcp sport 443 numgen random mod 100 < $rate counter drop"
    ip netns exec "$CLI_NS" nft -f - <<EOF
table inet $TABLE {
    chain input {
        type filter hook input priority -150; policy accept;
        $sc
    }
    chain forward {
        type filter hook forward priority -150; policy accept;
        $sc
    }
}
EOF
    if [[ $dir == both ]]; then
        ip netns exec "$SRV_NS" nft -f - <<EOF
table inet $TABLE {
    chain input {
        type filter hook input priority -150; policy accept;
        ip daddr $SRV_ADDR tcp dport 443 numgen random mod 100 < $rate counter drop
    }
}
EOF
    fi
}

# counters: "S2C C2S" packets dropped so far (server→client in fsc-cli, client→server in fsc-srv)
counters() {
    local sc cs
    sc=$(ip netns exec "$CLI_NS" nft list table inet "$TABLE" 2>/dev/null |
        awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }')
    cs=$(ip netns exec "$SRV_NS" nft list table inet "$TABLE" 2>/dev/null |
        awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }')
    echo "$sc $cs"
}

# The server's TCP RetransSegs (fsc-srv's /proc/net/snmp).
srv_retrans() {
    ip netns exec "$SRV_NS" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RetransSegs") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# bounded CMD...: runs it in the background (so Ctrl-C is handled at once), waits; sets rc.
bounded() {
    rc=0
    timeout -k 5 "$BACKSTOP" "$@" &
    child=$!
    wait "$child" || rc=$?
    child=""
}

now_ns() { date +%s%N; }

# One line per fetch into $work/results (tab-separated):
# case size client run ok total_s wall_s drops_sc drops_cs srv_retrans own_drops message
# (own_drops: packets fetchscope's own fault injection dropped, e.g. its delay queue full)
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$work/results"; }
: > "$work/results"

one_curl() { # CASE SIZE RUN
    local case=$1 size=$2 run=$3 url="https://$HOST/files/$2M.bin" c0 c1 r0 r1 t0 t1 out ok=0 total="" msg=""
    rm -f "$work/curl.body"
    c0=$(counters); r0=$(srv_retrans); t0=$(now_ns)
    bounded ip netns exec "$CLI_NS" curl -s -S -o "$work/curl.body" --cacert "$LAB/ca.pem" \
        --resolve "$HOST:443:$SRV_ADDR" -w '%{http_code} %{time_total}' --max-time "$CURL_MAX" "$url" \
        > "$work/curl.out" 2> "$work/curl.err"
    t1=$(now_ns); c1=$(counters); r1=$(srv_retrans)
    out=$(cat "$work/curl.out")
    if ((rc == 0)) && [[ ${out%% *} == 200 ]] &&
        [[ $(sha256sum < "$work/curl.body" | cut -d' ' -f1) == "$(expected_sha "$size")" ]]; then
        ok=1; total=${out#* }
    elif ((rc == 0)); then
        msg="HTTP ${out%% *}, or the body's SHA-256 is wrong"
    elif ((rc == 124 || rc == 137)); then
        msg="killed by the ${BACKSTOP} s backstop"
    else
        msg="curl exit $rc: $(head -c 200 "$work/curl.err" | tr '\n\t' '  ')"
    fi
    rm -f "$work/curl.body"
    record "$case" "$size" curl "$run" "$ok" "$total" "$(((t1 - t0) / 1000))" \
        "$((${c1% *} - ${c0% *}))" "$((${c1#* } - ${c0#* }))" "$((r1 - r0))" 0 "$msg"
}

one_fs() { # CASE SIZE RUN [fetchscope options...]
    local case=$1 size=$2 run=$3 url="https://$HOST/files/$2M.bin" c0 c1 r0 r1 t0 t1 res
    shift 3
    c0=$(counters); r0=$(srv_retrans); t0=$(now_ns)
    bounded env NO_COLOR=1 ip netns exec "$CLI_NS" "$bin" fetch "$url" --tun "$TUN" --addr "$STACK_ADDR" \
        --gateway "$GATEWAY" --dns "$SRV_ADDR" --cacert "$LAB/ca.pem" --json --timeout "$FS_TIMEOUT" "$@" \
        > "$work/fs.out" 2> "$work/fs.err"
    t1=$(now_ns); c1=$(counters); r1=$(srv_retrans)
    # ok, total_s and message (separated by \x1f), from the last NDJSON line
    res=$(tail -n 1 "$work/fs.out" | python3 -c '
import json, sys
want, rc, err = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    ev = json.loads(sys.stdin.read())
except ValueError:
    ev = {}
if ev.get("type") == "done" and ev.get("body_sha256") == want and ev.get("status", 200) == 200:
    print("1\x1f%.6f\x1f" % (ev["timings"]["total_ms"] / 1000))
else:
    if ev.get("type") == "done":
        msg = "done, but status %s / SHA-256 %s" % (ev.get("status"), str(ev.get("body_sha256"))[:16])
    elif ev.get("message"):
        msg = "exit %d: %s" % (rc, ev["message"])
    elif rc in (124, 137):
        msg = "killed by the backstop timeout"
    else:
        msg = "exit %d, no result: %s" % (rc, err)
    print("0\x1f\x1f" + " ".join(msg.split())[:300])
' "$(expected_sha "$size")" "$rc" "$(head -c 200 "$work/fs.err" | tr '\n\t' '  ')")
    local f_ok f_total f_msg own
    IFS=$'\x1f' read -r f_ok f_total f_msg <<< "$res"
    own=$(grep -o '"drop_cause":"[a-z-]*"' "$work/fs.out" | grep -vc '"loss"' || true)
    record "$case" "$size" fetchscope "$run" "$f_ok" "$f_total" "$(((t1 - t0) / 1000))" \
        "$((${c1% *} - ${c0% *}))" "$((${c1#* } - ${c0#* }))" "$((r1 - r0))" "${own:-0}" "$f_msg"
}

# --- the cases ----------------------------------------------------------------------

cases=("none")
for r in $rates; do cases+=("rx:$r" "both:$r"); done
((delay_case)) && cases+=("delay")
nsizes=$(wc -w <<< "$sizes")
say "${#cases[@]} cases × $nsizes sizes × $runs runs × 2 clients, with $bin"
started=$(date +%s)
for c in "${cases[@]}"; do
    case $c in
        none | delay) drop_rules 0 none ;;
        *) drop_rules "${c#*:}" "${c%%:*}" ;;
    esac
    for size in $sizes; do
        for ((i = 1; i <= runs; i++)); do
            if [[ $c == delay ]]; then
                record "$c" "$size" curl "$i" skip "" "" 0 0 0 0 "$no_delay_why"
                one_fs "$c" "$size" "$i" --delay 300 --jitter 100 --faults-dir rx
            else
                one_curl "$c" "$size" "$i"
                one_fs "$c" "$size" "$i"
            fi
            printf '   %-8s %3s MiB run %d/%d: %s\n' "$c" "$size" "$i" "$runs" \
                "$(tail -n 2 "$work/results" | awk -F'\t' '{ printf "%s %s %s  ", $3, ($5 == 1 ? "ok" : ($5 == "skip" ? "n/a" : "FAILED")), ($6 == "" ? "" : $6 " s") }')" >&2
        done
    done
done
drop_rules 0 none
elapsed=$(($(date +%s) - started))

# --- the table ----------------------------------------------------------------------

fs_version=$("$bin" --version 2>/dev/null | head -n 1 || true)
curl_version=$(curl --version | head -n 1 | cut -d' ' -f1-2)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$work/results" "$work/block.md" "$elapsed" "${args_given[*]:-}" "$bin" "${fs_version:-fetchscope}" \
    "$curl_version" "$commit" "$runs" "$no_delay_why" <<'PY'
import datetime, platform, statistics, sys

results, out, elapsed, args, binpath, fsver, curlver, commit, runs, no_delay = sys.argv[1:11]
rows = {}
order = []
for line in open(results):
    case, size, client, run, ok, total, wall_us, dsc, dcs, rtx, own, msg = line.rstrip("\n").split("\t")
    key = (case, int(size))
    if key not in rows:
        rows[key] = {"curl": {}, "fetchscope": {}}
        order.append(key)
    rows[key][client][int(run)] = {
        "ok": ok, "total": float(total) if total else None, "wall": int(wall_us) / 1e6 if wall_us else None,
        "dsc": int(dsc), "dcs": int(dcs), "rtx": int(rtx), "own": int(own), "msg": msg,
    }

def label(case):
    if case == "none":
        return "no injected loss"
    if case == "delay":
        return "300 ± 100 ms one way (s→c)"
    d, r = case.split(":")
    return f"{r} % " + ("rx (s→c)" if d == "rx" else "both ways")

def med(xs):
    return statistics.median(xs) if xs else None

def secs(v):
    return "–" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 10 else f"{v:.1f}")

lines, notes, checks, failures = [], [], [], []
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines.append(
    f"Measured {now} with `scripts/loss-linux.sh {args}` ({fsver} at {binpath}, tree at {commit}; "
    f"{curlver}; Linux {platform.release()}), {elapsed} s in all. Loss: nftables `numgen random` drops "
    f"in the lab's namespaces; times are medians of the completed fetches, in seconds: the tool's own "
    f"total (curl `time_total`, fetchscope `timings.total_ms`), wall clock in brackets; "
    f"a fetch is completed when it got HTTP 200 and the right SHA-256 within 60 s."
)
lines.append("")
lines.append("| case | size | curl done | curl median s | fetchscope done | fetchscope median s | fetchscope/curl | curl done ⇒ fetchscope done |")
lines.append("|---|---|---|---|---|---|---|---|")
for key in order:
    case, size = key
    c, f = rows[key]["curl"], rows[key]["fetchscope"]
    n = len(f)
    f_ok = [r for r in f.values() if r["ok"] == "1"]
    f_med = med([r["total"] for r in f_ok])
    f_wall = med([r["wall"] for r in f_ok])
    f_cell = f"{secs(f_med)} ({secs(f_wall)})" if f_ok else "–"
    if all(r["ok"] == "skip" for r in c.values()):
        c_done, c_cell, ratio, implied = no_delay, no_delay, "n/a", "n/a"
    else:
        c_ok = [r for r in c.values() if r["ok"] == "1"]
        c_med = med([r["total"] for r in c_ok])
        c_wall = med([r["wall"] for r in c_ok])
        c_done = f"{len(c_ok)}/{len(c)}"
        c_cell = f"{secs(c_med)} ({secs(c_wall)})" if c_ok else "–"
        ratio = "–"
        if c_ok and f_ok and c_med > 0:
            q = f_med / c_med
            ratio = f"{q:.2f}×" if q < 10 else f"{q:.0f}×"
        missed = [i for i in sorted(c) if c[i]["ok"] == "1" and f.get(i, {}).get("ok") != "1"]
        if not c_ok:
            implied = "– (curl completed none)"
        elif missed:
            implied = "**no** (run " + ", ".join(map(str, missed)) + ")"
        else:
            implied = "yes"
    lines.append(f"| {label(case)} | {size} MiB | {c_done} | {c_cell} | {len(f_ok)}/{n} | {f_cell} | {ratio} | {implied} |")
    # the injection check
    for client, rs in (("curl", c), ("fetchscope", f)):
        rs = [r for r in rs.values() if r["ok"] != "skip"]
        if not rs:
            continue
        dsc, dcs, rtx, own = (sum(r[k] for r in rs) for k in ("dsc", "dcs", "rtx", "own"))
        checks.append((label(case), size, client, len(rs), dsc, dcs, rtx, own if client == "fetchscope" else None))
        if own:
            notes.append(f"{label(case)}, {size} MiB: fetchscope's own fault link dropped {own} packets "
                         f"(queue-full: it holds at most 1000 packets per direction), so this case was not pure delay/kernel loss")
        if case not in ("none", "delay"):
            if dsc == 0:
                notes.append(f"**check**: {label(case)}, {size} MiB, {client}: the server→client rule dropped nothing")
            if case.startswith("both") and dcs == 0:
                notes.append(f"**check**: {label(case)}, {size} MiB, {client}: the client→server rule dropped nothing")
            if client == "curl" and dsc + dcs > 0 and rtx == 0:
                notes.append(f"**check**: {label(case)}, {size} MiB: packets were dropped but the server retransmitted nothing")
        for i, r in sorted(((i, r) for i, r in (c if client == "curl" else f).items()), key=lambda x: x[0]):
            if r["ok"] == "0":
                failures.append(f"{label(case)}, {size} MiB, {client} run {i}: {r['msg'] or 'failed'}")
lines.append("")
lines.append("Injection check (sums over the runs): packets the nftables rules dropped, segments the server's kernel "
             "retransmitted, and packets fetchscope's own fault link dropped (its `drop_cause` other than `loss`).")
lines.append("")
lines.append("| case | size | client | fetches | dropped s→c | dropped c→s | server retransmissions | fetchscope's own drops |")
lines.append("|---|---|---|---|---|---|---|---|")
for lab, size, client, n, dsc, dcs, rtx, own in checks:
    lines.append(f"| {lab} | {size} MiB | {client} | {n} | {dsc} | {dcs} | {rtx} | {'–' if own is None else own} |")
lines.append("")
if notes:
    lines.extend(f"- {n}" for n in notes)
    lines.append("")
if failures:
    lines.append(f"{len(failures)} fetches did not complete:")
    lines.append("")
    lines.extend(f"- {x}" for x in failures[:40])
    if len(failures) > 40:
        lines.append(f"- … and {len(failures) - 40} more")
else:
    lines.append("Every fetch completed with the right digest.")
open(out, "w").write("\n".join(lines) + "\n")
PY
cat "$work/block.md"
if [[ -n $write ]]; then
    cp "$work/block.md" "$write"
    say "wrote $write"
fi
