#!/usr/bin/env python3
"""Cut fetchscope pcapng captures into seed corpora for the fuzz targets in fuzz/.

usage: fuzz-seeds.py OUT_DIR CAPTURE.pcapng...

Reads each capture (IP packets in Enhanced Packet Blocks with direction flags, TLS
secrets in a Decryption Secrets Block, as `fetchscope fetch --pcap` writes them) and
writes, under OUT_DIR/<target>/, files in the input format of each target (see
fuzz/src/lib.rs):

  dissect        the capture's packets as frames [dir][len][packet], once with the key
                 log handed over first and once without
  tls_records    the TCP payloads of port 443 as frames [side][len][payload], key log first
  dns_answer     every DNS message from port 53 (UDP, or TCP without its length prefix),
                 behind a selector byte matching its question
  http_response  the cleartext bytes the server sent on port 80, behind flags and a seed

File names are the SHA-1 of the content, as libFuzzer names corpus files.
"""

import hashlib
import os
import struct
import sys

# Limits so seeds stay quick to run: libFuzzer runs every seed on every start.
MAX_PACKETS = 48
MAX_STREAM = 48 * 1024

# The names fuzz/src/lib.rs's dns_answer asks for, in its order.
DNS_NAMES = [
    "www.example.test",
    "example.test",
    "chain.example.test",
    "a-rather-long-label-for-compression-pointers.sub.example.test",
]


def read_pcapng(path):
    """Returns ([(outbound, packet bytes)], key log bytes) of a pcapng file."""
    data = open(path, "rb").read()
    packets, keylog = [], b""
    pos = 0
    endian = "<"
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        if btype == 0x0A0D0D0A:
            magic = data[pos + 8 : pos + 12]
            endian = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack_from(endian + "II", data, pos)
        if blen < 12 or pos + blen > len(data):
            break
        body = data[pos + 8 : pos + blen - 4]
        if btype == 6:  # Enhanced Packet Block
            _iface, _hi, _lo, caplen, _origlen = struct.unpack_from(endian + "IIIII", body, 0)
            pkt = body[20 : 20 + caplen]
            opts = body[20 + ((caplen + 3) & ~3) :]
            outbound = None
            o = 0
            while o + 4 <= len(opts):
                code, olen = struct.unpack_from(endian + "HH", opts, o)
                if code == 0:
                    break
                if code == 2 and olen == 4:
                    flags = struct.unpack_from(endian + "I", opts, o + 4)[0]
                    outbound = (flags & 3) == 2
                o += 4 + ((olen + 3) & ~3)
            packets.append((bool(outbound), pkt))
        elif btype == 0x0A:  # Decryption Secrets Block
            stype, slen = struct.unpack_from(endian + "II", body, 0)
            if stype == 0x544C534B:
                keylog += body[8 : 8 + slen]
        pos += blen
    return packets, keylog


def transport(pkt):
    """(proto, src, dst, sport, dport, header bytes after IP, l4 payload) or None."""
    if not pkt:
        return None
    version = pkt[0] >> 4
    if version == 4:
        ihl = (pkt[0] & 15) * 4
        total = struct.unpack_from("!H", pkt, 2)[0]
        proto = pkt[9]
        src, dst = pkt[12:16], pkt[16:20]
        l4 = pkt[ihl:total]
    elif version == 6:
        plen = struct.unpack_from("!H", pkt, 4)[0]
        proto = pkt[6]
        src, dst = pkt[8:24], pkt[24:40]
        l4 = pkt[40 : 40 + plen]
    else:
        return None
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack_from("!HH", l4, 0)
        return ("udp", src, dst, sport, dport, None, l4[8:])
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq = struct.unpack_from("!HHI", l4, 0)
        off = (l4[12] >> 4) * 4
        return ("tcp", src, dst, sport, dport, seq, l4[off:])
    return None


def frame(kind, payload):
    payload = payload[:0xFFFF]
    return bytes([kind]) + struct.pack("!H", len(payload)) + payload


def tcp_streams(packets, port):
    """Per-connection in-order payload segments [(side, payload)] for TCP `port`,
    side 0 = towards the port, retransmissions dropped."""
    conns = {}
    for _outbound, pkt in packets:
        t = transport(pkt)
        if not t or t[0] != "tcp" or port not in (t[3], t[4]):
            continue
        _, src, dst, sport, dport, seq, payload = t
        client = (src, sport) if dport == port else (dst, dport)
        side = 0 if dport == port else 1
        conn = conns.setdefault(client, {"segments": [], "next": [None, None]})
        if not payload:
            continue
        nxt = conn["next"][side]
        if nxt is not None and ((seq - nxt) & 0xFFFFFFFF) >= 0x80000000:
            continue  # a retransmission of bytes already seen
        conn["next"][side] = (seq + len(payload)) & 0xFFFFFFFF
        conn["segments"].append((side, payload))
    return [c["segments"] for c in conns.values()]


def dns_selector(msg):
    """The dns_answer selector byte matching `msg`'s question, or None."""
    if len(msg) < 12 or struct.unpack_from("!H", msg, 4)[0] < 1:
        return None
    labels, o = [], 12
    while o < len(msg):
        n = msg[o]
        if n == 0 or n & 0xC0:
            break
        labels.append(msg[o + 1 : o + 1 + n].decode("ascii", "replace").lower())
        o += 1 + n
    if o + 5 > len(msg):
        return None
    qtype = struct.unpack_from("!H", msg, o + 1)[0]
    name = ".".join(labels)
    index = DNS_NAMES.index(name) if name in DNS_NAMES else 0
    return index | (4 if qtype == 28 else 0) | 8


def write(out_dir, target, content):
    d = os.path.join(out_dir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(content).hexdigest()), "wb") as f:
        f.write(content)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    counts = {}

    def emit(target, content):
        write(out_dir, target, content)
        counts[target] = counts.get(target, 0) + 1

    for path in sys.argv[2:]:
        packets, keylog = read_pcapng(path)
        if not packets:
            print(f"fuzz-seeds: {path}: no packets", file=sys.stderr)
            continue
        frames = b"".join(frame(0 if outbound else 1, p) for outbound, p in packets[:MAX_PACKETS])
        emit("dissect", frames)
        if keylog:
            emit("dissect", frame(2, keylog) + frames)
        for segments in tcp_streams(packets, 443):
            body, size = b"", 0
            for side, payload in segments:
                if size + len(payload) > MAX_STREAM:
                    break
                body += frame(side, payload)
                size += len(payload)
            if body:
                emit("tls_records", (frame(2, keylog) if keylog else b"") + body)
        for _outbound, pkt in packets:
            t = transport(pkt)
            if t and t[0] == "udp" and t[3] == 53:
                sel = dns_selector(t[6])
                if sel is not None:
                    emit("dns_answer", bytes([sel]) + t[6])
        for segments in tcp_streams(packets, 53):
            reply = b"".join(p for side, p in segments if side == 1)
            while len(reply) >= 2:
                n = struct.unpack_from("!H", reply, 0)[0]
                msg, reply = reply[2 : 2 + n], reply[2 + n :]
                sel = dns_selector(msg)
                if sel is not None:
                    emit("dns_answer", bytes([sel]) + msg)
        for segments in tcp_streams(packets, 80):
            reply = b"".join(p for side, p in segments if side == 1)[:MAX_STREAM]
            if reply:
                # GET, peer closes at the end, default limits, pieces up to 1 + 7*37 bytes.
                emit("http_response", bytes([0x02 | (7 << 3), len(reply) & 0xFF]) + reply)
                # The same with small limits and one-byte pieces.
                emit("http_response", bytes([0x06, 1]) + reply)
    for target, n in sorted(counts.items()):
        print(f"fuzz-seeds: {n} seeds for {target}")


if __name__ == "__main__":
    main()
