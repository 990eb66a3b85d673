#!/usr/bin/env bash
# netns-lab.sh — fetchscope's test lab: real nginx, dnsmasq and tinyproxy in network
# namespaces.
#
#   netns fsc-srv:  veth fsc-srv0 10.88.0.1/24   nginx (HTTPS :443, HTTP :80), dnsmasq (:53)
#                   + 10.88.0.3 .. 10.88.0.6      certificate-failure servers
#                   + 10.88.0.7                   tinyproxy :3128 (open), :3129 (Basic
#                                                 proxy auth proxyuser:proxypass)
#                   lo 127.0.0.1:8081, :8082      echo service (scripts/lab/echo.py)
#                                                 behind nginx: /anything, /basic-auth/,
#                                                 /status/ of www.example.test
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
# to give clients), certs/, pki/, www/, cdn/, files.sha256, nginx/, dnsmasq/, echo/ and
# tinyproxy/ (configs, pid files, logs), lab.env (the lab's parameters as shell
# variables).
#
# The TUN device fsc0 is made persistent by this script (`ip tuntap add ... user OWNER`)
# with its address and link up, so fetchscope only attaches to it. OWNER is
# $FSC_LAB_TUN_USER, else $SUDO_USER, else root; that user may attach without any
# capability (entering the namespace still needs root: `sudo ip netns exec fsc-cli
# sudo -u OWNER fetchscope ...`). fetchscope could instead create the device itself (it
# needs CAP_NET_ADMIN then, and the device vanishes when fetchscope exits).
#
# Needs root, iproute2, nginx, dnsmasq (package dnsmasq-base), tinyproxy (1.10 or later:
# BasicAuth), python3 and openssl; `--install` (or FETCHSCOPE_INSTALL=1) installs missing
# ones with apt-get. `check` also uses curl.
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
# The HTTP proxy: two tinyproxy instances on their own address of fsc-srv's veth.
readonly PROXY_ADDR=10.88.0.7 PROXY_PORT=3128 PROXY_AUTH_PORT=3129
readonly PROXY_USER=proxyuser PROXY_PASS=proxypass
# The echo service behind nginx, on fsc-srv's loopback: one port per client scheme.
readonly ECHO_ADDR=127.0.0.1 ECHO_HTTPS_PORT=8081 ECHO_HTTP_PORT=8082 ECHO_COMM=lab-echo
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

render() { # TEMPLATE OUTPUT [KEY=VALUE...]: @KEY@ becomes VALUE, besides the lab's own
    local template=$1 output=$2 kv
    local -a subst=(
        -e "s|@LAB@|$LAB|g" -e "s|@USER@|$RUN_USER|g" -e "s|@GROUP@|$RUN_GROUP|g"
        -e "s|@PROXY_ADDR@|$PROXY_ADDR|g" -e "s|@PROXY_PORT@|$PROXY_PORT|g"
        -e "s|@PROXY_AUTH_PORT@|$PROXY_AUTH_PORT|g" -e "s|@ECHO_ADDR@|$ECHO_ADDR|g"
        -e "s|@ECHO_HTTPS_PORT@|$ECHO_HTTPS_PORT|g" -e "s|@ECHO_HTTP_PORT@|$ECHO_HTTP_PORT|g"
    )
    shift 2
    for kv in "$@"; do
        subst+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
    done
    sed "${subst[@]}" "$template" > "$output.tmp"
    mv "$output.tmp" "$output"
    printf '+ wrote %s\n' "$output"
}

make_state() {
    say "state directory $LAB"
    umask 022
    mkdir -p "$LAB/nginx/tmp" "$LAB/dnsmasq" "$LAB/echo" "$LAB/tinyproxy"
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
    render "$HERE/lab/tinyproxy.conf.in" "$LAB/tinyproxy/tinyproxy.conf" NAME=tinyproxy \
        PORT="$PROXY_PORT" AUTH="# No authentication on this port."
    render "$HERE/lab/tinyproxy.conf.in" "$LAB/tinyproxy/tinyproxy-auth.conf" \
        NAME=tinyproxy-auth PORT="$PROXY_AUTH_PORT" \
        AUTH="# Every request needs Proxy-Authorization (else 407).\nBasicAuth $PROXY_USER $PROXY_PASS"
    # The lab's own /etc/resolv.conf, /etc/nsswitch.conf and /etc/hosts: names are the lab
    # dnsmasq's. tinyproxy gets them bind-mounted over /etc's (see start_tinyproxy); so
    # can any program run in a namespace that should resolve lab names with the system
    # resolver (python3 requests, say): see print_usage_hints.
    mkdir -p "$LAB/resolv"
    printf 'nameserver %s\n' "$SRV_ADDR" > "$LAB/resolv/resolv.conf"
    printf 'hosts: files dns\n' > "$LAB/resolv/nsswitch.conf"
    printf '127.0.0.1 localhost\n' > "$LAB/resolv/hosts"
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
    for addr in "${EXTRA_ADDRS[@]}" "$PROXY_ADDR"; do
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

# wait_listening NAME PIDFILE COMM ADDR PORT LOG: waits up to 10 s until the process
# of PIDFILE is up in the server namespace and ADDR:PORT accepts connections there; dies
# with the log's last lines if it does not.
wait_listening() {
    local name=$1 pidfile=$2 comm=$3 addr=$4 port=$5 log=$6 pid
    for _ in $(seq 100); do
        # shellcheck disable=SC2016 # the inner bash expands them
        if pid=$(pid_in_ns "$pidfile" "$comm" "$SRV_NS") &&
            ip netns exec "$SRV_NS" timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$addr" "$port" 2>/dev/null; then
            printf '   listening on %s:%s (pid %s)\n' "$addr" "$port" "$pid"
            return 0
        fi
        sleep 0.1
    done
    [[ -r $log ]] && tail -n 5 "$log" | sed 's/^/   log: /' >&2
    die "$name did not start listening on $addr:$port in $SRV_NS (its log: $log; run 'sudo $0 down', fix it, then 'up' again)"
}

# The interpreter for echo.py: one the unprivileged user can run (a python3 under /root,
# pyenv's say, is not), the system's first.
echo_python() {
    local py
    for py in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
        [[ -x $py ]] || continue
        if [[ $RUN_USER == root ]] || setpriv --reuid="$RUN_USER" --regid="$RUN_GROUP" --clear-groups \
            "$py" -c 'import json, http.server, email.parser' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    die "no python3 that user $RUN_USER can run (install python3: sudo apt-get install python3)"
}

start_echo() {
    say "echo service in $SRV_NS ($ECHO_ADDR:$ECHO_HTTPS_PORT for HTTPS, :$ECHO_HTTP_PORT for HTTP, behind nginx)"
    local pid py dir=$LAB/echo
    if pid=$(pid_in_ns "$dir/echo.pid" "$ECHO_COMM" "$SRV_NS"); then
        printf '   already running (pid %s): restarting it\n' "$pid"
        stop_pid "$pid"
    fi
    rm -f "$dir/echo.pid"
    py=$(echo_python)
    # It binds as root, then drops to the lab user itself (as dnsmasq does) and leaves
    # this shell's session; its log takes stdout and stderr.
    local -a echo_cmd=(ip netns exec "$SRV_NS" "$py" -B "$HERE/lab/echo.py" --addr "$ECHO_ADDR"
        --https-port "$ECHO_HTTPS_PORT" --http-port "$ECHO_HTTP_PORT"
        --user "$RUN_USER" --group "$RUN_GROUP" --name "$ECHO_COMM")
    printf '+ %s >> %s 2>&1 &\n' "${echo_cmd[*]}" "$dir/echo.log"
    "${echo_cmd[@]}" < /dev/null >> "$dir/echo.log" 2>&1 &
    # `ip netns exec` execs the interpreter: $! is the service's pid.
    echo $! > "$dir/echo.pid"
    wait_listening "echo.py" "$dir/echo.pid" "$ECHO_COMM" "$ECHO_ADDR" "$ECHO_HTTPS_PORT" "$dir/echo.log"
}

# tinyproxy resolves the names it is asked for itself: it runs in a mount namespace of its
# own (`ip netns exec` makes one, private to the processes it starts) in which the lab's
# resolv.conf (nameserver $SRV_ADDR), nsswitch.conf (files, dns) and hosts (localhost
# only) are bind-mounted over /etc's. Nothing outside that namespace sees them.
start_tinyproxy() { # NAME PORT
    local name=$1 port=$2 dir=$LAB/tinyproxy pid
    say "tinyproxy $name in $SRV_NS ($PROXY_ADDR:$port)"
    if pid=$(pid_in_ns "$dir/$name.pid" tinyproxy "$SRV_NS"); then
        printf '   already running (pid %s): restarting it to read its configuration\n' "$pid"
        stop_pid "$pid"
    fi
    rm -f "$dir/$name.pid"
    [[ -e /etc/resolv.conf ]] ||
        die "tinyproxy needs a file /etc/resolv.conf to put the lab's over (in its own mount namespace); there is none"
    touch "$dir/$name.log"
    chown "$RUN_USER:$RUN_GROUP" "$dir/$name.log"
    printf '+ ip netns exec %s sh -c "mount --bind %s/{resolv.conf,nsswitch.conf,hosts} over /etc/...; exec tinyproxy -c %s"\n' \
        "$SRV_NS" "$LAB/resolv" "$dir/$name.conf"
    # shellcheck disable=SC2016 # expanded by the inner sh
    ip netns exec "$SRV_NS" sh -c "$(lab_dns_mounts)"'
        exec tinyproxy -c "$2"' sh "$LAB/resolv" "$dir/$name.conf" < /dev/null >> "$dir/$name.log" 2>&1 ||
        die "tinyproxy $name did not start (see $dir/$name.log; 'sudo $0 down', then 'up' again)"
    wait_listening "tinyproxy $name" "$dir/$name.pid" tinyproxy "$PROXY_ADDR" "$port" "$dir/$name.log"
}

# The shell commands that bind-mount the lab's resolver files ($1) over /etc's, for an
# `ip netns exec NS sh -c` (whose mount namespace is its own: nothing else sees them).
lab_dns_mounts() {
    # shellcheck disable=SC2016 # for the inner sh
    printf '%s\n' 'mount --bind "$1/resolv.conf" /etc/resolv.conf || exit 1
        if [ -e /etc/nsswitch.conf ]; then mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf || exit 1; fi
        if [ -e /etc/hosts ]; then mount --bind "$1/hosts" /etc/hosts || exit 1; fi'
}

check_tinyproxy_version() {
    local v major minor
    v=$(tinyproxy -v 2>&1 | grep -Eo '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n1) || true
    major=${v%%.*}
    minor=${v#*.}
    minor=${minor%%.*}
    if [[ -z $v ]] || ((major < 1 || (major == 1 && minor < 10))); then
        die "tinyproxy ${v:-of unknown version} has no BasicAuth (needs 1.10 or later): install a newer one"
    fi
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
FSC_ECHO_URL=https://www.example.test/anything
FSC_PROXY_ADDR=$PROXY_ADDR
FSC_PROXY=http://$PROXY_ADDR:$PROXY_PORT
FSC_PROXY_AUTH=http://$PROXY_ADDR:$PROXY_AUTH_PORT
FSC_PROXY_USER=$PROXY_USER
FSC_PROXY_PASS=$PROXY_PASS
FSC_RESOLV_DIR=$LAB/resolv
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

The echo service (httpbin-like) and the HTTP proxies:

  sudo ip netns exec $CLI_NS curl --cacert $LAB/ca.pem --resolve www.example.test:443:$SRV_ADDR https://www.example.test/anything -d hello
  sudo ip netns exec $CLI_NS curl --cacert $LAB/ca.pem -x http://$PROXY_ADDR:$PROXY_PORT https://www.example.test/
  sudo ip netns exec $CLI_NS curl --cacert $LAB/ca.pem -x http://$PROXY_ADDR:$PROXY_AUTH_PORT -U $PROXY_USER:$PROXY_PASS https://www.example.test/

A program in $CLI_NS that resolves names with the system resolver (python3 requests, say)
finds lab names with the lab's resolv.conf mounted over /etc's (in that command only):

  sudo ip netns exec $CLI_NS sh -c 'mount --bind $LAB/resolv/resolv.conf /etc/resolv.conf && exec python3 ...'

Capture both on the veth: sudo ip netns exec $CLI_NS tcpdump -ni $CLI_IF
Self-test: sudo ${ENVP}$0 check    Tear down: sudo ${ENVP}$0 down [--purge]
EOF
}

cmd_up() {
    local install=$1
    need_root up
    check_lab_dir
    check_tools "$install" ip:iproute2 nginx:nginx dnsmasq:dnsmasq-base openssl:openssl \
        sha256sum:coreutils tinyproxy:tinyproxy python3:python3 setpriv:util-linux
    check_tinyproxy_version
    make_state
    make_network
    start_echo
    start_nginx
    start_dnsmasq
    start_tinyproxy tinyproxy "$PROXY_PORT"
    start_tinyproxy tinyproxy-auth "$PROXY_AUTH_PORT"
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
    local purge=$1 ns pid pids name
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
            if pid=$(pid_in_ns "$LAB/echo/echo.pid" "$ECHO_COMM" "$ns"); then
                printf '   echo service, pid %s\n' "$pid"
                stop_pid "$pid"
            fi
            for name in tinyproxy tinyproxy-auth; do
                if pid=$(pid_in_ns "$LAB/tinyproxy/$name.pid" tinyproxy "$ns"); then
                    printf '   %s, pid %s\n' "$name" "$pid"
                    stop_pid "$pid"
                fi
            done
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
    rm -f "$LAB/nginx/nginx.pid" "$LAB/dnsmasq/dnsmasq.pid" "$LAB/echo/echo.pid" \
        "$LAB/tinyproxy/tinyproxy.pid" "$LAB/tinyproxy/tinyproxy-auth.pid" 2>/dev/null || true
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
    if pid=$(pid_in_ns "$LAB/echo/echo.pid" "$ECHO_COMM" "$SRV_NS"); then
        say "echo service: running (pid $pid, $ECHO_ADDR:$ECHO_HTTPS_PORT and :$ECHO_HTTP_PORT)"
    else
        say "echo service: not running"
    fi
    local name port
    for name in tinyproxy tinyproxy-auth; do
        port=$PROXY_PORT
        [[ $name == tinyproxy-auth ]] && port=$PROXY_AUTH_PORT
        if pid=$(pid_in_ns "$LAB/tinyproxy/$name.pid" tinyproxy "$SRV_NS"); then
            say "$name: running (pid $pid, $PROXY_ADDR:$port)"
        else
            say "$name: not running"
        fi
    done
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

check_echo() { # DESCRIPTION PYTHON-CONDITION-ON-d CURL-ARGS...: d is the JSON answer
    local what=$1 cond=$2 out
    shift 2
    out=$(lab_curl "$@") || true
    # shellcheck disable=SC2016
    if python3 -c 'import json, sys; d = json.loads(sys.argv[2]); sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)' \
        "$cond" "$out" 2>/dev/null; then
        ok "$what"
    else
        bad "$what: $cond is not true of: $(tr -s ' \n' ' ' <<< "$out" | head -c 400)"
    fi
}

check_status() { # DESCRIPTION EXPECTED CURL-ARGS... (EXPECTED: what -w prints)
    local what=$1 want=$2 out
    shift 2
    out=$(lab_curl -o /dev/null "$@" 2>/dev/null) || true
    if [[ $out == "$want" ]]; then ok "$what: $out"; else bad "$what: got '$out', expected '$want'"; fi
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
    say "echo service behind nginx ($ECHO_ADDR:$ECHO_HTTPS_PORT and :$ECHO_HTTP_PORT in $SRV_NS)"
    check_echo "POST https://www.example.test/anything echoes body, method, url, args and headers" \
        'd["data"] == "lab body" and d["method"] == "POST" and d["args"] == {"x": "1"}
         and d["url"] == "https://www.example.test/anything/p?x=1" and d["json"] is None
         and d["headers"]["X-Lab-Check"] == "yes" and d["headers"]["Host"] == "www.example.test"
         and "Connection" not in d["headers"] and "X-Forwarded-For" not in d["headers"]' \
        -X POST -H 'X-Lab-Check: yes' -H 'Content-Type: text/plain' --data-binary 'lab body' 'https://www.example.test/anything/p?x=1'
    check_echo "PUT http://www.example.test/anything: JSON body parsed, scheme http" \
        'd["json"] == {"a": [1, 2]} and d["method"] == "PUT" and d["url"] == "http://www.example.test/anything"' \
        -X PUT -H 'Content-Type: application/json' --data-binary '{"a": [1, 2]}' http://www.example.test/anything
    check_echo "POST a form: fields in \"form\", \"data\" empty (as httpbin)" \
        'd["form"] == {"a": "1", "b": ["2", "3"]} and d["data"] == ""' \
        -d 'a=1&b=2&b=3' https://www.example.test/anything
    check_echo "chunked POST of 70000 bytes reaches the echo chunked and whole" \
        'len(d["data"]) == 70000 and d["headers"].get("Transfer-Encoding") == "chunked" and "Content-Length" not in d["headers"]' \
        -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' --data-binary "$(head -c 70000 /dev/zero | tr '\0' a)" https://www.example.test/anything
    check_status "HEAD /anything" "200 application/json" -I -w '%{http_code} %{content_type}' https://www.example.test/anything
    check_echo "/basic-auth/user/passwd with user:passwd" 'd == {"authenticated": True, "user": "user"}' \
        -u user:passwd https://www.example.test/basic-auth/user/passwd
    check_status "/basic-auth/user/passwd with a wrong password" '401 Basic realm="Fake Realm"' \
        -u user:wrong -w '%{http_code} %header{www-authenticate}' https://www.example.test/basic-auth/user/passwd
    check_status "/basic-auth/user/passwd without credentials" 401 -w '%{http_code}' http://www.example.test/basic-auth/user/passwd
    check_status "GET /status/418" 418 -w '%{http_code}' https://www.example.test/status/418
    check_status "DELETE /status/503 over HTTP" 503 -X DELETE -w '%{http_code}' http://www.example.test/status/503
    check_status "POST /status/201" 201 -d x -w '%{http_code}' https://www.example.test/status/201

    say "HTTP proxy (tinyproxy at $PROXY_ADDR: :$PROXY_PORT open, :$PROXY_AUTH_PORT with Basic auth)"
    local open=http://$PROXY_ADDR:$PROXY_PORT auth=http://$PROXY_ADDR:$PROXY_AUTH_PORT
    check_body https://www.example.test/ www/index.html -x "$open"
    check_status "CONNECT through $open" "200 200" -x "$open" -w '%{http_connect} %{http_code}' https://www.example.test/
    check_echo "http://www.example.test/anything forwarded by $open (Via: tinyproxy)" \
        'd["url"] == "http://www.example.test/anything" and "tinyproxy" in d["headers"].get("Via", "")' \
        -x "$open" http://www.example.test/anything
    check_status "CONNECT to port 8443 through $open (only 443 and 80 allowed)" 403 \
        -x "$open" -w '%{http_connect}' https://www.example.test:8443/
    check_status "CONNECT through $auth without credentials" 407 -x "$auth" -w '%{http_connect}' https://www.example.test/
    check_status "GET through $auth without credentials" 407 -x "$auth" -w '%{http_code}' http://www.example.test/
    # tinyproxy before 1.12 answers wrong credentials with 401 and WWW-Authenticate (its
    # issue #532, fixed by pull request #549); later ones with 407.
    out=$(lab_curl -o /dev/null -x "$auth" -U "$PROXY_USER:wrong" -w '%{http_connect}' https://www.example.test/ 2>/dev/null) || true
    if [[ $out == 407 || $out == 401 ]]; then
        ok "CONNECT through $auth with a wrong password: $out"
    else
        bad "CONNECT through $auth with a wrong password: got '$out', expected 407 (401 from tinyproxy < 1.12)"
    fi
    check_body https://www.example.test/ www/index.html -x "$auth" -U "$PROXY_USER:$PROXY_PASS"
    check_echo "http://www.example.test/anything through $auth with credentials (Proxy-Authorization not passed on)" \
        'd["method"] == "GET" and "Proxy-Authorization" not in d["headers"]' \
        -x "$auth" -U "$PROXY_USER:$PROXY_PASS" http://www.example.test/anything

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
    check_dns proxy.example.test '^proxy\.example\.test 300 A 10\.88\.0\.7$'
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
