#!/usr/bin/env bash
# netns-lab.sh — fetchscope's test lab: real nginx and dnsmasq in network namespaces.
#
#   netns fsc-srv:  veth fsc-srv0 10.88.0.1/24   nginx (HTTPS :443, HTTP :80), dnsmasq (:53)
#                   + 10.88.0.3 .. 10.88.0.6      certificate-failure servers
#   netns fsc-cli:  veth fsc-cli0 10.88.0.2/24   ip_forward=1
#                   TUN fsc0 10.88.1.1/24  <-->  fetchscope's smoltcp stack at 10.88.1.2
#   fsc-srv routes 10.88.1.0/24 via 10.88.0.2
#
# Usage: sudo scripts/netns-lab.sh up [--install] | down [--purge] | status | check
#
#   up       make (or repair) everything; safe to run again; prints the commands to use
#   down     stop the processes and remove the namespaces, veths and TUN; safe to run
#            again; --purge also removes the state directory
#   status   show what exists
#   check    fetch every lab URL with curl and query the DNS server, through the kernel
#            stack in fsc-cli; exits non-zero if anything is not as expected
#
# All traffic stays inside the two namespaces: nothing listens or routes in the root
# namespace, and no system configuration (/etc/nginx, /etc/dnsmasq.conf, /etc/hosts,
# /etc/resolv.conf) is read or changed.
#
# State directory: $FSC_LAB_DIR (default /tmp/fetchscope-lab): ca.pem (the throw-away CA
# to give clients), certs/, pki/, www/, cdn/, files.sha256, nginx/ and dnsmasq/ (configs,
# pid files, logs), lab.env (the lab's parameters as shell variables).
#
# The TUN device fsc0 is made persistent by this script (`ip tuntap add ... user OWNER`)
# with its address and link up, so fetchscope only attaches to it. OWNER is
# $FSC_LAB_TUN_USER, else $SUDO_USER, else root; that user may attach without any
# capability (entering the namespace still needs root: `sudo ip netns exec fsc-cli
# sudo -u OWNER fetchscope ...`). fetchscope could instead create the device itself (it
# needs CAP_NET_ADMIN then, and the device vanishes when fetchscope exits).
#
# Needs root, iproute2, nginx, dnsmasq (package dnsmasq-base) and openssl; `--install`
# (or FETCHSCOPE_INSTALL=1) installs missing ones with apt-get. `check` also uses curl
# and python3.
set -euo pipefail

# $FSC_LAB_PREFIX (default fsc) names everything, so labs with different prefixes can run
# side by side (e.g. one per test binary): namespaces P-srv and P-cli, veths P-srv0 and
# P-cli0, TUN P0, state directory /tmp/fetchscope-lab-P (/tmp/fetchscope-lab for fsc).
readonly PFX=${FSC_LAB_PREFIX:-fsc}
[[ $PFX =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
    { printf 'netns-lab.sh: FSC_LAB_PREFIX must be 1-8 lower-case letters or digits, starting with a letter (got %s)\n' "$PFX" >&2; exit 2; }
readonly SRV_NS=$PFX-srv CLI_NS=$PFX-cli
readonly SRV_IF=$PFX-srv0 CLI_IF=$PFX-cli0
readonly TUN=${PFX}0
readonly SRV_ADDR=10.88.0.1 CLI_ADDR=10.88.0.2 PREFIX=24
readonly TUN_GATEWAY=10.88.1.1 STACK_ADDR=10.88.1.2 TUN_NET=10.88.1.0/24
readonly -a EXTRA_ADDRS=(10.88.0.3 10.88.0.4 10.88.0.5 10.88.0.6)
if [[ $PFX == fsc ]]; then
    readonly LAB=${FSC_LAB_DIR:-/tmp/fetchscope-lab}
else
    readonly LAB=${FSC_LAB_DIR:-/tmp/fetchscope-lab-$PFX}
fi
readonly MARKER=.fetchscope-lab
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE

say() { printf '== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
die() { printf 'netns-lab.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# --- checks -------------------------------------------------------------------------

need_root() {
    [[ $EUID -eq 0 ]] || die "needs root (network namespaces): sudo $0 $*"
}

check_lab_dir() {
    [[ $LAB =~ ^/[A-Za-z0-9._/-]+$ && $LAB != / && $LAB != *..* ]] ||
        die "FSC_LAB_DIR must be an absolute path of letters, digits, '.', '_', '-' and '/' (got '$LAB')"
}

# check_tools INSTALL TOOL:PACKAGE...
check_tools() {
    local install=$1 missing=() packages=() pair
    shift
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || {
            missing+=("${pair%%:*}")
            packages+=("${pair#*:}")
        }
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $install == 1 ]]; then
        say "installing ${packages[*]} (note: Debian's nginx package also starts a system nginx)"
        run apt-get install -y --no-install-recommends "${packages[@]}"
        return 0
    fi
    local i
    for i in "${!missing[@]}"; do
        printf 'missing: %s (Debian/Ubuntu package: %s)\n' "${missing[$i]}" "${packages[$i]}" >&2
    done
    die "install them (sudo apt-get install ${packages[*]}) or run with --install"
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# pid_in_ns PIDFILE COMM NS: prints the pid if the file names a live COMM process in NS.
pid_in_ns() {
    local pid
    [[ -r $1 ]] || return 1
    pid=$(tr -dc 0-9 < "$1")
    [[ -n $pid && -r /proc/$pid/comm && $(cat "/proc/$pid/comm") == "$2" ]] || return 1
    [[ $(ip netns identify "$pid" 2>/dev/null) == "$3" ]] || return 1
    echo "$pid"
}

# --- up -----------------------------------------------------------------------------

set_sysctl() { # NS KEY VALUE
    printf '+ ip netns exec %s sysctl -w %s=%s\n' "$1" "$2" "$3"
    ip netns exec "$1" tee "/proc/sys/${2//.//}" <<< "$3" > /dev/null
}

render() { # TEMPLATE OUTPUT
    sed -e "s|@LAB@|$LAB|g" -e "s|@USER@|$RUN_USER|g" -e "s|@GROUP@|$RUN_GROUP|g" \
        "$1" > "$2.tmp"
    mv "$2.tmp" "$2"
    printf '+ wrote %s\n' "$2"
}

make_state() {
    say "state directory $LAB"
    umask 022
    mkdir -p "$LAB/nginx/tmp" "$LAB/dnsmasq"
    touch "$LAB/$MARKER"
    chmod 755 "$LAB"
    bash "$HERE/lab/make-certs.sh" "$LAB"
    bash "$HERE/lab/make-content.sh" "$LAB"
    # Unprivileged workers: nginx's workers and dnsmasq drop to this user.
    if id nobody >/dev/null 2>&1; then
        RUN_USER=nobody
        RUN_GROUP=$(id -gn nobody)
    else
        RUN_USER=root
        RUN_GROUP=root
    fi
    render "$HERE/lab/nginx.conf.in" "$LAB/nginx/nginx.conf"
    render "$HERE/lab/www-locations.conf.in" "$LAB/nginx/www-locations.conf"
    render "$HERE/lab/dnsmasq.conf.in" "$LAB/dnsmasq/dnsmasq.conf"
    touch "$LAB/dnsmasq/dnsmasq.log"
    chown "$RUN_USER:$RUN_GROUP" "$LAB/dnsmasq/dnsmasq.log"
}

make_network() {
    local ns owner owner_uid current
    for ns in "$SRV_NS" "$CLI_NS"; do
        say "namespace $ns"
        ns_exists "$ns" || run ip netns add "$ns"
        run ip -n "$ns" link set lo up
        # IPv4 only: no router solicitations or MLD reports cluttering the traces.
        set_sysctl "$ns" net.ipv6.conf.all.disable_ipv6 1
        set_sysctl "$ns" net.ipv6.conf.default.disable_ipv6 1
    done
    set_sysctl "$CLI_NS" net.ipv4.ip_forward 1

    say "veth $CLI_IF ($CLI_NS) <-> $SRV_IF ($SRV_NS)"
    if ! ip -n "$CLI_NS" link show "$CLI_IF" >/dev/null 2>&1; then
        if ip -n "$SRV_NS" link show "$SRV_IF" >/dev/null 2>&1; then
            run ip -n "$SRV_NS" link del "$SRV_IF"
        fi
        run ip -n "$CLI_NS" link add "$CLI_IF" type veth peer name "$SRV_IF" netns "$SRV_NS"
    fi
    run ip -n "$CLI_NS" addr replace "$CLI_ADDR/$PREFIX" dev "$CLI_IF"
    run ip -n "$SRV_NS" addr replace "$SRV_ADDR/$PREFIX" dev "$SRV_IF"
    local addr
    for addr in "${EXTRA_ADDRS[@]}"; do
        run ip -n "$SRV_NS" addr replace "$addr/$PREFIX" dev "$SRV_IF"
    done
    run ip -n "$CLI_NS" link set "$CLI_IF" up
    run ip -n "$SRV_NS" link set "$SRV_IF" up
    # Segments as they would be on a wire: without offloads a capture on the veth shows
    # each TCP segment of the kernel's own connections, not 64 KB GSO/GRO bundles.
    if command -v ethtool >/dev/null 2>&1; then
        run ip netns exec "$CLI_NS" ethtool -K "$CLI_IF" tso off gso off gro off
        run ip netns exec "$SRV_NS" ethtool -K "$SRV_IF" tso off gso off gro off
    else
        echo "   (no ethtool: veth offloads stay on; captures of kernel connections on $CLI_IF"
        echo "    may show segments larger than the MTU; package ethtool fixes that)"
    fi
    run ip -n "$SRV_NS" route replace "$TUN_NET" via "$CLI_ADDR" dev "$SRV_IF"

    owner=${FSC_LAB_TUN_USER:-${SUDO_USER:-root}}
    say "TUN $TUN in $CLI_NS (owner $owner)"
    owner_uid=$(id -u "$owner") || die "no such user '$owner' (FSC_LAB_TUN_USER)"
    if ip -n "$CLI_NS" link show "$TUN" >/dev/null 2>&1; then
        # Made by an earlier `up` for another user? Then make it again for this one.
        current=$(ip -d -n "$CLI_NS" link show "$TUN" | grep -o ' user [^ ]*' | cut -d' ' -f3)
        if [[ $(id -u "$current" 2>/dev/null || echo "$current") != "$owner_uid" ]]; then
            run ip -n "$CLI_NS" link del "$TUN"
        fi
    fi
    if ! ip -n "$CLI_NS" link show "$TUN" >/dev/null 2>&1; then
        run ip -n "$CLI_NS" tuntap add dev "$TUN" mode tun user "$owner"
    fi
    run ip -n "$CLI_NS" addr replace "$TUN_GATEWAY/$PREFIX" dev "$TUN"
    run ip -n "$CLI_NS" link set "$TUN" up
}

nginx_args() {
    echo -p "$LAB/nginx/" -c "$LAB/nginx/nginx.conf" -e "$LAB/nginx/error.log"
}

start_nginx() {
    say "nginx in $SRV_NS"
    local pid
    # shellcheck disable=SC2046 # the paths are checked to contain no spaces
    run ip netns exec "$SRV_NS" nginx -t -q $(nginx_args)
    if pid=$(pid_in_ns "$LAB/nginx/nginx.pid" nginx "$SRV_NS"); then
        printf '   already running (pid %s): reloading the configuration\n' "$pid"
        # shellcheck disable=SC2046
        run ip netns exec "$SRV_NS" nginx $(nginx_args) -s reload
    else
        rm -f "$LAB/nginx/nginx.pid"
        # shellcheck disable=SC2046
        run ip netns exec "$SRV_NS" nginx $(nginx_args)
    fi
}

start_dnsmasq() {
    say "dnsmasq in $SRV_NS"
    local pid
    if pid=$(pid_in_ns "$LAB/dnsmasq/dnsmasq.pid" dnsmasq "$SRV_NS"); then
        printf '   already running (pid %s): restarting it to read its configuration\n' "$pid"
        stop_pid "$pid"
    fi
    rm -f "$LAB/dnsmasq/dnsmasq.pid"
    run ip netns exec "$SRV_NS" dnsmasq --conf-file="$LAB/dnsmasq/dnsmasq.conf"
}

write_env() {
    cat > "$LAB/lab.env" <<EOF
# The namespace lab's parameters (written by scripts/netns-lab.sh up).
FSC_LAB_DIR=$LAB
FSC_LAB_PREFIX=$PFX
FSC_SRV_NS=$SRV_NS
FSC_CLI_NS=$CLI_NS
FSC_TUN=$TUN
FSC_STACK_ADDR=$STACK_ADDR/$PREFIX
FSC_GATEWAY=$TUN_GATEWAY
FSC_DNS=$SRV_ADDR
FSC_SERVER_ADDR=$SRV_ADDR
FSC_CACERT=$LAB/ca.pem
FSC_CAPTURE_IF=$CLI_IF
FSC_URL=https://www.example.test/
EOF
    printf '+ wrote %s\n' "$LAB/lab.env"
}

print_usage_hints() {
    local owner=${FSC_LAB_TUN_USER:-${SUDO_USER:-root}}
    local ENVP=""
    [[ $PFX == fsc ]] || ENVP="FSC_LAB_PREFIX=$PFX "
    cat <<EOF

The lab is up. Fetch through fetchscope's own stack (TUN $TUN in $CLI_NS):

  sudo ip netns exec $CLI_NS fetchscope fetch https://www.example.test/ --tun $TUN --addr $STACK_ADDR/$PREFIX --gateway $TUN_GATEWAY --dns $SRV_ADDR --cacert $LAB/ca.pem
EOF
    if [[ $owner != root ]]; then
        cat <<EOF

  ($owner owns $TUN, so fetchscope itself can run unprivileged inside the namespace:
   sudo ip netns exec $CLI_NS sudo -u $owner fetchscope fetch ... same options ...)
EOF
    fi
    cat <<EOF

The same fetch through the kernel's stack:

  sudo ip netns exec $CLI_NS curl --cacert $LAB/ca.pem --resolve www.example.test:443:$SRV_ADDR https://www.example.test/

Capture both on the veth: sudo ip netns exec $CLI_NS tcpdump -ni $CLI_IF
Self-test: sudo ${ENVP}$0 check    Tear down: sudo ${ENVP}$0 down [--purge]
EOF
}

cmd_up() {
    local install=$1
    need_root up
    check_lab_dir
    check_tools "$install" ip:iproute2 nginx:nginx dnsmasq:dnsmasq-base openssl:openssl \
        sha256sum:coreutils
    make_state
    make_network
    start_nginx
    start_dnsmasq
    write_env
    print_usage_hints
}

# --- down ---------------------------------------------------------------------------

stop_pid() { # PID: TERM, wait up to 5 s, then KILL
    local pid=$1 i
    [[ -d /proc/$pid ]] || return 0
    run kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.1
    done
    run kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
    local purge=$1 ns pid pids
    need_root down
    check_lab_dir
    command -v ip >/dev/null || die "ip (package iproute2) is missing"
    for ns in "$CLI_NS" "$SRV_NS"; do
        ns_exists "$ns" || { say "namespace $ns: not there"; continue; }
        say "namespace $ns"
        if [[ $ns == "$SRV_NS" ]]; then
            # The daemons first (nginx's master takes its workers along)...
            if pid=$(pid_in_ns "$LAB/nginx/nginx.pid" nginx "$ns"); then
                printf '   nginx master, pid %s\n' "$pid"
                stop_pid "$pid"
            fi
            if pid=$(pid_in_ns "$LAB/dnsmasq/dnsmasq.pid" dnsmasq "$ns"); then
                printf '   dnsmasq, pid %s\n' "$pid"
                stop_pid "$pid"
            fi
        fi
        # ...then anything else still in the namespace: it was started into it for the lab
        # (a fetchscope, curl or tcpdump run, say).
        for _ in 1 2 3; do
            pids=$(ip netns pids "$ns")
            [[ -n $pids ]] || break
            for pid in $pids; do
                printf '   pid %s: %s\n' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
                stop_pid "$pid"
            done
        done
        # Removes the veth pair and the TUN device with it.
        run ip netns del "$ns"
    done
    rm -f "$LAB/nginx/nginx.pid" "$LAB/dnsmasq/dnsmasq.pid" 2>/dev/null || true
    if [[ $purge == 1 && -d $LAB ]]; then
        [[ -e $LAB/$MARKER ]] || die "$LAB has no $MARKER file: not removing it"
        run rm -rf -- "$LAB"
    fi
    say "down"
}

# --- status -------------------------------------------------------------------------

cmd_status() {
    local ns pid
    need_root status
    for ns in "$SRV_NS" "$CLI_NS"; do
        if ! ns_exists "$ns"; then
            say "namespace $ns: absent"
            continue
        fi
        say "namespace $ns"
        ip -n "$ns" -br addr | sed 's/^/   /'
        if [[ $ns == "$CLI_NS" ]] && ip -n "$ns" link show "$TUN" 2>/dev/null | grep -q NO-CARRIER; then
            printf '   (%s: DOWN/NO-CARRIER only means no process is attached; its link is up)\n' "$TUN"
        fi
        ip -n "$ns" route | sed 's/^/   route /'
        for pid in $(ip netns pids "$ns"); do
            printf '   pid %s: %s\n' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
        done
    done
    if pid=$(pid_in_ns "$LAB/nginx/nginx.pid" nginx "$SRV_NS"); then
        say "nginx: running (pid $pid)"
    else
        say "nginx: not running"
    fi
    if pid=$(pid_in_ns "$LAB/dnsmasq/dnsmasq.pid" dnsmasq "$SRV_NS"); then
        say "dnsmasq: running (pid $pid)"
    else
        say "dnsmasq: not running"
    fi
    if [[ -d $LAB ]]; then
        say "state directory $LAB ($(du -sh "$LAB" 2>/dev/null | cut -f1))"
    else
        say "state directory $LAB: absent"
    fi
}

# --- check --------------------------------------------------------------------------

FAILED=0
ok() { printf '   ok    %s\n' "$*"; }
bad() { printf '   FAIL  %s\n' "$*"; FAILED=1; }

in_cli() { ip netns exec "$CLI_NS" "$@"; }

lab_curl() { # curl in fsc-cli, every lab name pinned to its address
    in_cli curl --silent --show-error --cacert "$LAB/ca.pem" --max-time 20 \
        --resolve www.example.test:443:$SRV_ADDR --resolve www.example.test:80:$SRV_ADDR \
        --resolve example.test:443:$SRV_ADDR --resolve cdn.example.test:443:$SRV_ADDR \
        --resolve wrong.example.test:443:10.88.0.3 \
        --resolve untrusted.example.test:443:10.88.0.4 \
        --resolve expired.example.test:443:10.88.0.5 \
        --resolve self-signed.example.test:443:10.88.0.6 "$@"
}

expected_sha() { awk -v f="$1" '$2 == f { print $1 }' "$LAB/files.sha256"; }

check_body() { # URL FILE [curl options...]
    local url=$1 file=$2 got
    shift 2
    got=$(lab_curl "$@" "$url" | sha256sum | cut -d' ' -f1) || true
    if [[ $got == "$(expected_sha "$file")" ]]; then
        ok "$url: body is $file (sha256 ${got:0:16}...)"
    else
        bad "$url: body sha256 $got, expected that of $file"
    fi
}

check_hop() { # URL STATUS LOCATION
    local out
    out=$(lab_curl -o /dev/null -w '%{http_code} %header{location}' "$1") || true
    if [[ $out == "$2 $3" ]]; then ok "$1 -> $2 Location: $3"; else bad "$1: got '$out', expected '$2 $3'"; fi
}

check_cert_failure() { # URL
    local rc=0
    lab_curl -o /dev/null "$1" 2>/dev/null || rc=$?
    if [[ $rc == 60 ]]; then ok "$1: certificate rejected (curl exit 60)"; else bad "$1: curl exit $rc, expected 60"; fi
}

check_dns() { # NAME EXPECTED-LINE-REGEX
    local out
    out=$(in_cli python3 "$HERE/lab/dns-query.py" "$1" A "$SRV_ADDR" 2>&1) || true
    if grep -Eq -- "$2" <<< "$out"; then
        ok "DNS $1: $(tr '\n' ' ' <<< "$out")"
    else
        bad "DNS $1: '$(tr '\n' ' ' <<< "$out")' does not match /$2/"
    fi
}

cmd_check() {
    need_root check
    check_tools 0 curl:curl python3:python3
    ns_exists "$CLI_NS" || die "the lab is not up (sudo $0 up)"
    local out
    say "HTTPS and HTTP through the kernel stack in $CLI_NS"
    check_body https://www.example.test/ www/index.html
    check_body http://www.example.test/ www/index.html
    check_body https://www.example.test/files/1M.bin www/files/1M.bin
    check_body https://www.example.test/files/16M.bin www/files/16M.bin
    check_body https://www.example.test/files/64M.bin www/files/64M.bin
    check_body https://www.example.test/gzip/ www/gzip/index.html --compressed
    out=$(lab_curl -o /dev/null -D - -H 'Accept-Encoding: gzip' https://www.example.test/gzip/ | tr -d '\r') || true
    if grep -qi '^content-encoding: gzip' <<< "$out" && grep -qi '^transfer-encoding: chunked' <<< "$out"; then
        ok "/gzip/ is sent gzip-compressed and chunked"
    else
        bad "/gzip/ headers: $(tr '\n' ' ' <<< "$out")"
    fi
    out=$(lab_curl -o /dev/null -D - https://www.example.test/ | tr -d '\r') || true
    if grep -qi '^content-length: ' <<< "$out" && ! grep -qi '^content-encoding' <<< "$out"; then
        ok "/ is sent plain, with a Content-Length"
    else
        bad "/ headers: $(tr '\n' ' ' <<< "$out")"
    fi
    check_hop https://www.example.test/redirect/3 302 /redirect/2
    check_hop https://www.example.test/redirect/2 301 https://www.example.test/redirect/1
    check_hop https://www.example.test/redirect/1 307 /
    check_hop https://www.example.test/loop 302 /loop
    check_hop https://www.example.test/to-cdn 302 https://cdn.example.test/
    out=$(lab_curl -L -o /dev/null -w '%{http_code} %{num_redirects} %{url_effective}' https://www.example.test/redirect/3) || true
    if [[ $out == "200 3 https://www.example.test/" ]]; then ok "/redirect/3 followed: $out"; else bad "/redirect/3 followed: $out"; fi
    local rc=0
    lab_curl -L --max-redirs 5 -o /dev/null https://www.example.test/loop 2>/dev/null || rc=$?
    if [[ $rc == 47 ]]; then ok "/loop: too many redirects (curl exit 47)"; else bad "/loop: curl exit $rc, expected 47"; fi
    check_body https://www.example.test/to-cdn cdn/index.html -L
    for version in "--tlsv1.3" "--tlsv1.2 --tls-max 1.2"; do
        # shellcheck disable=SC2086 # two words on purpose
        out=$(lab_curl $version --http2 -o /dev/null -w '%{http_code} HTTP/%{http_version}' -v https://www.example.test/ 2>&1 | grep -E '^(\* SSL connection using|\* ALPN: server)|^200' | tr '\n' ' ') || true
        if grep -q 'HTTP/1.1' <<< "$out" && grep -q 'ALPN: server accepted http/1.1' <<< "$out"; then
            ok "$version: $out"
        else
            bad "$version: $out"
        fi
    done
    say "certificate failures"
    check_cert_failure https://wrong.example.test/
    check_cert_failure https://untrusted.example.test/
    check_cert_failure https://expired.example.test/
    check_cert_failure https://self-signed.example.test/
    say "DNS (dnsmasq at $SRV_ADDR)"
    check_dns www.example.test '^www\.example\.test 300 A 10\.88\.0\.1$'
    check_dns cdn.example.test '^cdn\.example\.test 300 A 10\.88\.0\.1$'
    check_dns expired.example.test 'A 10\.88\.0\.5$'
    check_dns alias.example.test '^alias\.example\.test 300 CNAME www\.example\.test$'
    check_dns chain.example.test '^chain\.example\.test 300 CNAME alias\.example\.test$'
    check_dns chain.example.test '^www\.example\.test 300 A 10\.88\.0\.1$'
    check_dns nosuch.example.test '^rcode=NXDOMAIN$'
    check_dns www.example.com '^rcode=NXDOMAIN$'
    if ((FAILED)); then die "some checks failed"; fi
    say "all checks passed"
}

# --- main ---------------------------------------------------------------------------

main() {
    local cmd="" install=${FETCHSCOPE_INSTALL:-0} purge=0 arg
    for arg in "$@"; do
        case $arg in
            up | down | status | check) cmd=$arg ;;
            --install) install=1 ;;
            --purge) purge=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; printf 'netns-lab.sh: unknown argument %s\n' "$arg" >&2; exit 2 ;;
        esac
    done
    case $cmd in
        up) cmd_up "$install" ;;
        down) cmd_down "$purge" ;;
        status) cmd_status ;;
        check) cmd_check ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
