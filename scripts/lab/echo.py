#!/usr/bin/env python3
"""echo.py — the namespace lab's httpbin-like echo service (behind nginx in netns fsc-srv).

Python 3 standard library only. scripts/netns-lab.sh starts it as root inside fsc-srv;
it binds its ports, drops to --user/--group (the lab's unprivileged user, as nginx's
workers and dnsmasq do) and detaches (own session, stdin/stdout/stderr as given by the
script: the log file). nginx proxies to it, from www.example.test's HTTPS server on
--https-port (default 8081) and from its HTTP server on --http-port (default 8082): the
port a request arrives on is how the echo knows the client's scheme for "url" without
any X-Forwarded-* header.

  /anything, /anything/...  any method: 200 application/json
        {"args": {query parameters}, "data": "body text", "files": {multipart files},
         "form": {urlencoded or multipart fields}, "headers": {Title-Case name: value},
         "json": body parsed as JSON or null, "method": "...", "url": "scheme://host/...",
         "raw_headers": [[name, value], ...]}
      As httpbin: a parameter, field or header given more than once becomes a list
      (headers: the values joined with ","); a form body leaves "data" empty; a body that
      is not UTF-8 is "data:application/octet-stream;base64,...". "raw_headers" (not in
      httpbin) lists the header lines exactly as they reached the echo: name case, order
      and repeats kept.
  /basic-auth/USER/PASS     200 {"authenticated": true, "user": USER} when the request's
                            Basic credentials are USER:PASS, else 401 with
                            WWW-Authenticate: Basic realm="Fake Realm" and no body
  /status/N                 any method: status N (100-599) and the body "N Reason\\n",
                            as in the built-in lab: no body for 204 and 304, an empty one
                            for 205; 1xx: answered 200 (nginx passes no interim response)
  anything else             404

Usage: echo.py [--addr 127.0.0.1] [--https-port 8081] [--http-port 8082]
               [--user nobody --group nogroup] [--name lab-echo]
"""

import argparse
import base64
import binascii
import ctypes
import email.parser
import email.policy
import grp
import http
import http.server
import json
import os
import pwd
import signal
import sys
import threading
import urllib.parse

MAX_BODY = 64 * 1024 * 1024  # as nginx's client_max_body_size for these locations
REASONS = {413: "Content Too Large", 422: "Unprocessable Content", 418: "I'm a teapot"}


def reason(code):
    if code in REASONS:
        return REASONS[code]
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def title_case(name):
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def flatten(pairs, join=None):
    """httpbin's "semiflatten": one value stays a value, more become a list (or, with
    join, one string)."""
    out = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return {
        k: (v[0] if len(v) == 1 else (join.join(v) if join is not None else v))
        for k, v in out.items()
    }


class BadRequest(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fetchscope-lab-echo"  # nginx sends its own Server header instead

    def version_string(self):
        return self.server_version

    # Every method goes to dispatch (GET, POST, PUT, HEAD, DELETE, PATCH, OPTIONS, ...).
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def handle_expect_100(self):
        # nginx has already answered the client's "Expect: 100-continue" (and passes the
        # header on, so the echo shows it); a second 100 would confuse nginx.
        return True

    # --- request -------------------------------------------------------------------

    def read_body(self):
        codings = ",".join(self.headers.get_all("Transfer-Encoding") or [])
        codings = [c.strip().lower() for c in codings.split(",") if c.strip()]
        if codings:
            if codings[-1] != "chunked":
                raise BadRequest("Transfer-Encoding without chunked last")
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise BadRequest("bad Content-Length")
        n = int(length)
        if n > MAX_BODY:
            raise BadRequest("body too large")
        body = self.rfile.read(n)
        if len(body) != n:
            raise BadRequest("body ended early")
        return body

    def read_chunked(self):
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise BadRequest("bad chunk-size line")
            size = line.split(b";", 1)[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if n == 0:
                break
            if len(body) + n > MAX_BODY:
                raise BadRequest("body too large")
            chunk = self.rfile.read(n)
            if len(chunk) != n or self.rfile.read(2) != b"\r\n":
                raise BadRequest("chunk ended early")
            body += chunk
        while True:  # trailer fields, up to the empty line
            line = self.rfile.readline(8192)
            if line in (b"\r\n", b"\n", b""):
                break
        return bytes(body)

    # --- response ------------------------------------------------------------------

    def answer(self, code, body=b"", content_type=None, extra=(), no_body=False):
        self.send_response(code, reason(code))
        for name, value in extra:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and not no_body and body:
            self.wfile.write(body)

    def answer_json(self, code, obj, extra=()):
        text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
        self.answer(code, text.encode(), "application/json", extra)

    # --- routes --------------------------------------------------------------------

    def dispatch(self):
        try:
            body = self.read_body()
        except BadRequest as e:
            self.close_connection = True
            self.answer(400, f"400 Bad Request: {e}\n".encode(), "text/plain; charset=utf-8")
            return
        target = urllib.parse.urlsplit(self.path)
        path = target.path
        if path == "/anything" or path.startswith("/anything/"):
            self.anything(target, body)
        elif path.startswith("/basic-auth/"):
            self.basic_auth(path[len("/basic-auth/"):])
        elif path.startswith("/status/"):
            self.status(path[len("/status/"):])
        else:
            self.answer(404, b"404 Not Found\n", "text/plain; charset=utf-8")

    def anything(self, target, body):
        raw = list(self.headers.items())
        content_type = self.headers.get("Content-Type", "")
        mime = content_type.split(";", 1)[0].strip().lower()
        form, files, data = {}, {}, None
        if mime == "application/x-www-form-urlencoded":
            form = flatten(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                                  keep_blank_values=True))
            data = ""
        elif mime == "multipart/form-data":
            form, files = multipart(content_type, body)
            data = ""
        if data is None:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                data = "data:application/octet-stream;base64," + base64.b64encode(body).decode()
        try:
            parsed_json = json.loads(data) if data else None
        except ValueError:
            parsed_json = None
        host = self.headers.get("Host", "")
        self.answer_json(200, {
            "args": flatten(urllib.parse.parse_qsl(target.query, keep_blank_values=True)),
            "data": data,
            "files": files,
            "form": form,
            "headers": flatten(((title_case(k), v) for k, v in raw), join=","),
            "json": parsed_json,
            "method": self.command,
            # The target as it came (absolute-form as is: nginx sends origin-form).
            "url": self.path if target.scheme else f"{self.server.scheme}://{host}{self.path}",
            "raw_headers": [[k, v] for k, v in raw],
        })

    def basic_auth(self, rest):
        user, _, password = rest.partition("/")
        user, password = urllib.parse.unquote(user), urllib.parse.unquote(password)
        given = None
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                given = None
        if given is not None and given == f"{user}:{password}":
            self.answer_json(200, {"authenticated": True, "user": user})
        else:
            self.answer(401, b"", None, [("WWW-Authenticate", 'Basic realm="Fake Realm"')])

    def status(self, rest):
        if not (rest.isdigit() and 100 <= int(rest) <= 599):
            self.answer(400, b"Use /status/N with N a status code from 100 to 599.\n",
                        "text/plain; charset=utf-8")
            return
        code = int(rest)
        if code < 200:
            text = f"200 OK, instead of a {code} {reason(code)} response (not passed by nginx)\n"
            self.answer(200, text.encode(), "text/plain; charset=utf-8")
        elif code in (204, 304):
            self.answer(code, no_body=True)
        elif code == 205:
            self.answer(code, b"", "text/plain")
        else:
            self.answer(code, f"{code} {reason(code)}\n".encode(), "text/plain; charset=utf-8")

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        sys.stderr.write(f"[{self.log_date_time_string()}] {self.server.scheme} "
                         f"{self.address_string()} {format % args}\n")
        sys.stderr.flush()


def multipart(content_type, body):
    """multipart/form-data: (fields, files), each flattened as httpbin does."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields, files = [], []
    if msg.is_multipart():
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name is None:
                continue
            payload = part.get_payload(decode=True) or b""
            text = payload.decode("utf-8", "replace")
            (files if part.get_filename() is not None else fields).append((name, text))
    return flatten(fields), flatten(files)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, scheme):
        super().__init__(address, Handler)
        self.scheme = scheme


def drop_privileges(user, group):
    if user is None or os.getuid() != 0:
        return
    uid = pwd.getpwnam(user).pw_uid
    gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(user).pw_gid
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        sys.exit(f"echo.py: could not drop privileges to {user}")


def set_name(name):
    """The process name (comm) the lab script looks for in its pid file's process."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--https-port", type=int, default=8081)
    p.add_argument("--http-port", type=int, default=8082)
    p.add_argument("--user")
    p.add_argument("--group")
    p.add_argument("--name", default="lab-echo")
    a = p.parse_args()
    set_name(a.name)
    servers = [Server((a.addr, a.https_port), "https"), Server((a.addr, a.http_port), "http")]
    # Everything the handlers use is loaded before the drop (the interpreter's own files
    # may not be readable by the unprivileged user).
    for codec in ("iso-8859-1", "utf-8", "ascii", "idna"):
        b"".decode(codec)
    drop_privileges(a.user, a.group)
    try:
        os.setsid()  # out of the starting shell's process group (its Ctrl-C, its job control)
    except OSError:
        pass  # already a process group leader
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stderr.write(f"echo.py: listening on {a.addr}:{a.https_port} (https) and "
                     f"{a.addr}:{a.http_port} (http) as uid {os.getuid()}\n")
    sys.stderr.flush()
    while not stop.wait(3600):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()


if __name__ == "__main__":
    main()
