#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run).
#
# 1. Installs what the tests need when run as root on Debian and something is missing:
#    nginx, dnsmasq-base, tshark, tcpdump, iproute2, openssl, python3-requests, ...
# 2. Checks formatting, lints (clippy -D warnings) and docs.
# 3. Runs every test: unit tests of each crate, the built-in lab end to end, and — as
#    root — the TUN tests against real nginx and dnsmasq in network namespaces the tests
#    create and remove themselves.
#
# With CI=true a test whose prerequisite is missing fails instead of skipping.
#
# Usage: scripts/test.sh [--no-lint] [-- extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

lint=1
while (($#)); do
    case $1 in
        --no-lint) lint=0; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done

say() { printf '\n== %s\n' "$*"; }

# --- prerequisites -----------------------------------------------------------------------
# command -> Debian package
declare -A need=(
    [nginx]=nginx [dnsmasq]=dnsmasq-base [tshark]=tshark [tcpdump]=tcpdump
    [ip]=iproute2 [openssl]=openssl [python3]=python3 [curl]=curl [nft]=nftables
    [ethtool]=ethtool [tmux]=tmux [chromium]=chromium [tinyproxy]=tinyproxy
)
missing=()
for cmd in "${!need[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
python3 -c 'import requests' 2>/dev/null || missing+=(python3-requests)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || true
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "missing (tests that need them will skip, or fail under CI=true): ${missing[*]}"
    fi
fi

# --- checks ------------------------------------------------------------------------------
if ((lint)); then
    say "cargo fmt --check"
    cargo fmt --all -- --check
    say "cargo clippy -D warnings"
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    say "cargo doc"
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
fi

# --- tests -------------------------------------------------------------------------------
say "cargo test"
cargo test --workspace "$@"

# --- fuzzing: a short run of every fuzz target (docs/security.md; longer: scripts/fuzz.sh TARGET SECONDS)
say "fuzz: every target for ${FUZZ_CI_SECONDS:-20} s"
FETCHSCOPE_BIN="${FETCHSCOPE_BIN:-${CARGO_TARGET_DIR:-target}/debug/fetchscope}" \
    scripts/fuzz.sh ci "${FUZZ_CI_SECONDS:-20}"
say "all tests passed"
