#!/usr/bin/env python3
"""dns-query.py NAME [TYPE] [SERVER] -- one DNS query over UDP, printed like `dig +short`.

A stand-in for dig/nslookup when bind9-dnsutils is not installed; used by
`netns-lab.sh check`. Prints `rcode=NOERROR` (or NXDOMAIN, ...) and then one line per
answer: `NAME TTL TYPE DATA`. TYPE is A (default), AAAA or CNAME; SERVER defaults to the
lab's 10.88.0.1. Exits 0 when an answer arrived, 1 on timeout or a malformed reply.
"""

import random
import socket
import struct
import sys

TYPES = {"A": 1, "CNAME": 5, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def read_name(msg, pos, depth=0):
    """Returns (name, position after the name); follows compression pointers."""
    if depth > 16:
        raise ValueError("compression loop")
    labels = []
    while True:
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from("!H", msg, pos)[0] & 0x3FFF
            rest, _ = read_name(msg, pointer, depth + 1)
            labels.append(rest)
            return ".".join(x for x in labels if x), pos + 2
        pos += 1
        if length == 0:
            return ".".join(labels), pos
        labels.append(msg[pos:pos + length].decode("ascii", "replace"))
        pos += length


def main():
    name = sys.argv[1]
    qtype = sys.argv[2].upper() if len(sys.argv) > 2 else "A"
    server = sys.argv[3] if len(sys.argv) > 3 else "10.88.0.1"
    ident = random.randrange(65536)
    query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    query += encode_name(name) + struct.pack("!HH", TYPES[qtype], 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sock.sendto(query, (server, 53))
    try:
        msg, _ = sock.recvfrom(4096)
    except socket.timeout:
        print(f"no answer from {server} within 2 s", file=sys.stderr)
        return 1
    rid, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", msg, 0)
    if rid != ident:
        print("reply id does not match the query", file=sys.stderr)
        return 1
    print("rcode=" + RCODES.get(flags & 0xF, str(flags & 0xF)))
    pos = 12
    for _ in range(qd):
        _, pos = read_name(msg, pos)
        pos += 4
    names = {v: k for k, v in TYPES.items()}
    for _ in range(an):
        owner, pos = read_name(msg, pos)
        rtype, _, ttl, rdlen = struct.unpack_from("!HHIH", msg, pos)
        pos += 10
        rdata = msg[pos:pos + rdlen]
        if rtype == 1:
            data = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            data = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 5:
            data, _ = read_name(msg, pos)
        else:
            data = rdata.hex()
        print(f"{owner} {ttl} {names.get(rtype, rtype)} {data}")
        pos += rdlen
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (IndexError, ValueError, struct.error) as e:
        print(f"malformed reply: {e}", file=sys.stderr)
        sys.exit(1)
