#!/usr/bin/env bash
# tun-nat.sh — let fetchscope's userspace stack reach the internet from your own machine.
#
#   TUN fsc0, kernel side 10.89.0.1/24  <-->  fetchscope's stack at 10.89.0.2
#   net.ipv4.ip_forward=1
#   nftables: table ip fetchscope, masquerade 10.89.0.0/24 out of the default-route interface
#
# Usage: sudo scripts/tun-nat.sh up | down | status
#
#   up      make the device, turn on forwarding, add the NAT rule; prints every change
#           before making it, then the fetchscope command to run (without sudo: the
#           device belongs to you)
#   down    undo exactly what `up` did: delete the nftables table `ip fetchscope`, put
#           net.ipv4.ip_forward back to the value it had before `up`, and delete the TUN
#           device if `up` created it (or, for a device that was there before, remove
#           only the address and link state `up` added)
#   status  show the device, the table, ip_forward and the recorded state
#
# Environment: FSC_TUN (device name, default fsc0), FSC_TUN_USER (its owner, default
# $SUDO_USER or root), FSC_NAT_OUT (outgoing interface, default: the one of the IPv4
# default route), FSC_NAT_STATE_DIR (default /run/fetchscope-tun-nat: what `up` changed,
# for `down`).
#
# Only IPv4. Nothing here persists across a reboot: the device, the sysctl and the table
# all live in the running kernel. If a firewall drops forwarded traffic (a FORWARD policy
# of DROP, as Docker and ufw set), `up` says so and shows the rule to add.
set -euo pipefail

readonly TUN=${FSC_TUN:-fsc0}
readonly GATEWAY=10.89.0.1 STACK=10.89.0.2 PREFIX=24 NET=10.89.0.0/24
readonly TABLE=fetchscope
readonly STATE_DIR=${FSC_NAT_STATE_DIR:-/run/fetchscope-tun-nat}
readonly STATE=$STATE_DIR/state

say() { printf '== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
die() { printf 'tun-nat.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

need_root() {
    [[ $EUID -eq 0 ]] || die "needs root (it changes the kernel's network settings): sudo $0 $*"
}

need_tools() {
    local missing=()
    command -v ip >/dev/null 2>&1 || missing+=("ip (package iproute2)")
    command -v nft >/dev/null 2>&1 || missing+=("nft (package nftables)")
    ((${#missing[@]} == 0)) || die "missing: ${missing[*]}"
}

check_name() {
    [[ $TUN =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "FSC_TUN must be 1-15 letters, digits, '.', '_' or '-' (got '$TUN')"
}

default_route_dev() {
    ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }'
}

read_ip_forward() { cat /proc/sys/net/ipv4/ip_forward; }

set_ip_forward() {
    printf '+ sysctl -w net.ipv4.ip_forward=%s\n' "$1"
    echo "$1" > /proc/sys/net/ipv4/ip_forward
}

# state_get KEY: the recorded value of KEY (0 or 1), read without running the file.
state_get() {
    local value
    value=$(sed -n "s/^$1=//p" "$STATE" | head -n 1)
    [[ $value =~ ^[01]$ ]] || die "$STATE: no valid $1 (remove the file if it is damaged)"
    echo "$value"
}

tun_exists() { ip link show "$TUN" >/dev/null 2>&1; }
table_exists() { nft list table ip "$TABLE" >/dev/null 2>&1; }

# A resolver the stack can reach through the NAT: not a loopback stub (127.0.0.53 of
# systemd-resolved is unreachable from a TUN); systemd's upstream list first.
pick_resolver() {
    local file ns
    for file in /run/systemd/resolve/resolv.conf /etc/resolv.conf; do
        [[ -r $file ]] || continue
        while read -r ns; do
            [[ $ns =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ && $ns != 127.* ]] && { echo "$ns"; return; }
        done < <(awk '$1 == "nameserver" { print $2 }' "$file")
    done
}

warn_forward_drop() { # OUT
    local ruleset
    ruleset=$(nft list ruleset 2>/dev/null || true)
    if grep -Eq 'hook forward .*policy drop' <<< "$ruleset"; then
        cat <<EOF
   warning: a firewall chain drops forwarded packets by default (FORWARD policy DROP).
   The NAT rule alone will not help then; allow fsc traffic in that firewall, e.g.
     sudo iptables -I FORWARD -i $TUN -o $1 -j ACCEPT
     sudo iptables -I FORWARD -i $1 -o $TUN -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
   (and remove those two rules again after \`down\`, with -D instead of -I).
EOF
    fi
}

cmd_up() {
    need_root up
    need_tools
    check_name
    local out owner created=0 added_address=0 raised_link=0 previous resolver
    out=${FSC_NAT_OUT:-$(default_route_dev)}
    [[ -n $out ]] || die "no IPv4 default route: which interface leads to the internet? Set FSC_NAT_OUT"
    ip link show "$out" >/dev/null 2>&1 || die "interface '$out' does not exist"
    owner=${FSC_TUN_USER:-${SUDO_USER:-root}}
    id -u "$owner" >/dev/null 2>&1 || die "no such user '$owner' (FSC_TUN_USER)"

    # The state is recorded once: a second `up` must not mistake its own ip_forward=1 for
    # the machine's original value.
    if [[ -r $STATE ]]; then
        say "already up once (state in $STATE): keeping the recorded original values"
        previous=$(state_get previous_ip_forward)
        created=$(state_get created_tun)
        added_address=$(state_get added_address)
        raised_link=$(state_get raised_link)
    else
        previous=$(read_ip_forward)
    fi

    say "TUN device $TUN for $owner, $GATEWAY/$PREFIX on the kernel side"
    if ! tun_exists; then
        run ip tuntap add dev "$TUN" mode tun user "$owner"
        created=1
        # IPv4 only: no router solicitations or MLD reports from the kernel in the traces.
        if [[ -w /proc/sys/net/ipv6/conf/$TUN/disable_ipv6 ]]; then
            printf '+ sysctl -w net.ipv6.conf.%s.disable_ipv6=1\n' "$TUN"
            echo 1 > "/proc/sys/net/ipv6/conf/$TUN/disable_ipv6"
        fi
    fi
    if ! ip -4 addr show dev "$TUN" | grep -q " $GATEWAY/$PREFIX "; then
        run ip addr add "$GATEWAY/$PREFIX" dev "$TUN"
        added_address=1
    fi
    if ! ip link show "$TUN" | grep -q '[<,]UP[,>]'; then
        run ip link set "$TUN" up
        raised_link=1
    fi

    run mkdir -p "$STATE_DIR"
    printf 'previous_ip_forward=%s\ncreated_tun=%s\nadded_address=%s\nraised_link=%s\n' \
        "$previous" "$created" "$added_address" "$raised_link" > "$STATE.tmp"
    printf '+ record in %s: %s\n' "$STATE" "$(tr '\n' ' ' < "$STATE.tmp")"
    mv "$STATE.tmp" "$STATE"

    say "forwarding (was net.ipv4.ip_forward=$(read_ip_forward))"
    set_ip_forward 1

    say "NAT: masquerade $NET out of $out, in nftables table ip $TABLE"
    local rules
    rules=$(cat <<EOF
table ip $TABLE
delete table ip $TABLE
table ip $TABLE {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr $NET oifname "$out" masquerade
    }
}
EOF
)
    printf '+ nft -f - <<EOF\n%s\nEOF\n' "$rules"
    nft -f - <<< "$rules"
    warn_forward_drop "$out"

    resolver=$(pick_resolver)
    cat <<EOF

Ready. fetchscope's stack is $STACK on $TUN, its gateway the kernel at $GATEWAY:

  fetchscope fetch https://www.example.com/ --tun $TUN --addr $STACK/$PREFIX --gateway $GATEWAY --dns ${resolver:-1.1.1.1}
EOF
    [[ -n $resolver ]] ||
        echo "  (no non-local resolver in resolv.conf; 1.1.1.1 is just an example of a public one)"
    [[ $owner == root ]] || echo "  ($TUN belongs to $owner: run it as $owner, no sudo needed)"
    echo
    echo "Undo everything with: sudo $0 down"
}

cmd_down() {
    need_root down
    need_tools
    check_name
    local previous="" created=0 added_address=0 raised_link=0
    if [[ -r $STATE ]]; then
        previous=$(state_get previous_ip_forward)
        created=$(state_get created_tun)
        added_address=$(state_get added_address)
        raised_link=$(state_get raised_link)
    else
        say "no state in $STATE: ip_forward and the TUN device are left as they are"
    fi
    if table_exists; then
        say "NAT"
        run nft delete table ip "$TABLE"
    fi
    if [[ $previous =~ ^[01]$ && $(read_ip_forward) != "$previous" ]]; then
        say "forwarding back to its previous value"
        set_ip_forward "$previous"
    fi
    if [[ $created == 1 ]] && tun_exists; then
        say "TUN device $TUN (made by up)"
        run ip link del "$TUN"
    elif tun_exists; then
        say "TUN device $TUN existed before up: only undoing what up changed on it"
        if [[ $added_address == 1 ]] && ip -4 addr show dev "$TUN" | grep -q " $GATEWAY/$PREFIX "; then
            run ip addr del "$GATEWAY/$PREFIX" dev "$TUN"
        fi
        if [[ $raised_link == 1 ]]; then
            run ip link set "$TUN" down
        fi
    fi
    if [[ -e $STATE ]]; then
        run rm -f "$STATE"
        rmdir "$STATE_DIR" 2>/dev/null || true
    fi
    say "down"
}

cmd_status() {
    need_root status
    need_tools
    if tun_exists; then
        say "TUN device $TUN"
        ip -br addr show "$TUN" | sed 's/^/   /'
    else
        say "TUN device $TUN: absent"
    fi
    say "net.ipv4.ip_forward=$(read_ip_forward)"
    if table_exists; then
        say "nftables table ip $TABLE"
        nft list table ip "$TABLE" | sed 's/^/   /'
    else
        say "nftables table ip $TABLE: absent"
    fi
    if [[ -r $STATE ]]; then
        say "recorded by up ($STATE)"
        sed 's/^/   /' "$STATE"
    else
        say "no recorded state"
    fi
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac
