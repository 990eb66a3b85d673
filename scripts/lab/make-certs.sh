#!/usr/bin/env bash
# make-certs.sh DIR — the namespace lab's throw-away PKI, made with openssl (EC P-256).
#
#   DIR/ca.pem, ca.key                   the lab CA (give ca.pem to clients with --cacert)
#   DIR/certs/www.{pem,key}              www.example.test, example.test, alias.example.test,
#                                        chain.example.test (signed by the lab CA)
#   DIR/certs/cdn.{pem,key}              cdn.example.test (lab CA)
#   DIR/certs/wrong.{pem,key}            other.test, served as wrong.example.test (name mismatch)
#   DIR/certs/untrusted.{pem,key}        untrusted.example.test, signed by a CA nobody trusts
#   DIR/certs/expired.{pem,key}          expired.example.test, lab CA, valid only in 2020
#   DIR/certs/self-signed.{pem,key}      self-signed.example.test, signed by itself
#
# Existing files are kept: the script only makes what is missing, so certificates stay
# stable across `netns-lab.sh up` runs (delete DIR, or `down --purge`, for new ones).
set -euo pipefail

dir=${1:?usage: make-certs.sh DIR}
umask 022
mkdir -p "$dir/certs" "$dir/pki"
pki=$dir/pki

step() { printf '  [certs] %s\n' "$*"; }

# A minimal openssl configuration, so nothing depends on the system's openssl.cnf.
cat > "$pki/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::FSC_SAN
[ca]
default_ca = lab_ca
[lab_ca]
database = $ENV::FSC_PKI/index.txt
new_certs_dir = $ENV::FSC_PKI
serial = $ENV::FSC_PKI/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
export FSC_PKI=$pki FSC_SAN=DNS:unused.invalid

new_key() { # FILE
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

new_ca() { # NAME CN
    local name=$1 cn=$2
    [[ -s $pki/$name.pem && -s $pki/$name.key ]] && return 0
    step "CA \"$cn\" -> $pki/$name.pem"
    new_key "$pki/$name.key"
    openssl req -config "$pki/openssl.cnf" -new -x509 -key "$pki/$name.key" -sha256 \
        -days 3650 -subj "/CN=$cn" -extensions ca_ext -out "$pki/$name.pem"
}

csr() { # NAME CN
    new_key "$dir/certs/$1.key"
    openssl req -config "$pki/openssl.cnf" -new -key "$dir/certs/$1.key" -subj "/CN=$2" \
        -out "$pki/$1.csr"
}

leaf() { # NAME CA CN SAN...
    local name=$1 ca=$2 cn=$3
    shift 3
    [[ -s $dir/certs/$name.pem && -s $dir/certs/$name.key ]] && return 0
    local san
    san=$(printf 'DNS:%s,' "$@")
    step "$name: CN=$cn SAN=${san%,} signed by $ca"
    csr "$name" "$cn"
    FSC_SAN=${san%,} openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.pem" \
        -CAkey "$pki/$ca.key" -set_serial "0x$(openssl rand -hex 8)" -sha256 -days 825 \
        -extfile "$pki/openssl.cnf" -extensions leaf_ext -out "$dir/certs/$name.pem" 2>/dev/null
}

expired_leaf() { # NAME CN — signed by the lab CA, valid 2020-01-01 .. 2020-12-31
    local name=$1 cn=$2
    [[ -s $dir/certs/$name.pem && -s $dir/certs/$name.key ]] && return 0
    step "$name: CN=$cn valid 2020-01-01..2020-12-31 only, signed by lab-ca"
    csr "$name" "$cn"
    : > "$pki/index.txt"
    openssl rand -hex 8 > "$pki/serial"
    FSC_SAN=DNS:$cn openssl ca -config "$pki/openssl.cnf" -batch -notext \
        -cert "$pki/lab-ca.pem" -keyfile "$pki/lab-ca.key" -in "$pki/$name.csr" \
        -startdate 20200101000000Z -enddate 20201231235959Z -extensions leaf_ext \
        -out "$dir/certs/$name.pem" 2>/dev/null
}

self_signed() { # NAME CN
    local name=$1 cn=$2
    [[ -s $dir/certs/$name.pem && -s $dir/certs/$name.key ]] && return 0
    step "$name: CN=$cn, self-signed"
    new_key "$dir/certs/$name.key"
    FSC_SAN=DNS:$cn openssl req -config "$pki/openssl.cnf" -new -x509 \
        -key "$dir/certs/$name.key" -sha256 -days 825 -subj "/CN=$cn" -extensions leaf_ext \
        -out "$dir/certs/$name.pem"
}

new_ca lab-ca "fetchscope lab CA"
new_ca untrusted-ca "fetchscope untrusted CA (not in ca.pem)"
cp "$pki/lab-ca.pem" "$dir/ca.pem"

leaf www lab-ca www.example.test www.example.test example.test alias.example.test chain.example.test
leaf cdn lab-ca cdn.example.test cdn.example.test
leaf wrong lab-ca other.test other.test
leaf untrusted untrusted-ca untrusted.example.test untrusted.example.test
expired_leaf expired expired.example.test
self_signed self-signed self-signed.example.test

for name in www cdn wrong expired; do
    openssl verify -CAfile "$dir/ca.pem" -no_check_time "$dir/certs/$name.pem" >/dev/null
done
