#!/usr/bin/env python3
"""requests_get.py URL CA_FILE DNS_SERVER -- fetch URL with Python requests, as a user would.

Names under .test are resolved through the lab's DNS server (with scripts/lab/dns-query.py),
since the namespace has no resolver of its own; everything else is plain
`requests.get(url, verify=CA_FILE)`. Prints one JSON line: the final status, the SHA-256 of
the decoded body (`r.content`), the statuses of the redirect history and the final URL; on
an error, its type and message (exit 1).
"""

import hashlib
import json
import os
import socket
import subprocess
import sys

import requests

URL, CA, DNS = sys.argv[1:4]
DNS_QUERY = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lab", "dns-query.py"
)
_real_getaddrinfo = socket.getaddrinfo


def lab_resolve(host):
    out = subprocess.run(
        [sys.executable, DNS_QUERY, host, "A", DNS],
        capture_output=True, text=True, timeout=10, check=False,
    )
    for line in out.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 4 and parts[2] == "A":
            return parts[3]
    raise socket.gaierror(socket.EAI_NONAME, f"{host}: {out.stdout.strip() or out.stderr.strip()}")


def getaddrinfo(host, port, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".test"):
        host = lab_resolve(host)
    return _real_getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = getaddrinfo

try:
    r = requests.get(URL, verify=CA, timeout=60)
except requests.RequestException as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
    sys.exit(1)
print(json.dumps({
    "status": r.status_code,
    "sha256": hashlib.sha256(r.content).hexdigest(),
    "body_bytes": len(r.content),
    "history": [h.status_code for h in r.history],
    "url": r.url,
}))
