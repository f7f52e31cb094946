#!/usr/bin/env python3
"""HTTP/1.1-aware TCP fault-injection proxy for S3 end-to-end tests.

Sits between a client and an upstream HTTP server (moto) on 127.0.0.1.
Requests are forwarded byte-for-byte (headers are never rewritten, so SigV4
signatures stay valid); every request gets a global sequence number and is
matched against an ordered list of rules.  The first rule that matches and
is still "armed" decides the fault:

  ``{"action": "status", "status": 503}`` (``"code": "ExpiredToken"`` sets
  the S3 error code of the answer)
      Do not forward; answer with an S3-style XML error (``SlowDown`` for
      503, ``InternalError`` for 500, ...) carrying ``x-amz-request-id`` and
      ``x-amz-id-2``.  The connection is kept alive, like real S3.
  ``{"action": "reset", "when": "before"}``
      Read the request, do not forward it, close with SO_LINGER 0 (TCP RST).
  ``{"action": "reset", "when": "mid", "bytes": N}``
      Forward the request, relay the response head and N body bytes (default:
      half the body; if the body is empty, half the head) and then RST.
  ``{"action": "stall", "seconds": S, "then": "close"|"forward"}``
      Read the request and hang S seconds without answering, then close the
      connection (default) or forward the request normally.
  ``{"action": "expire"}``
      The access key that signed the request has expired, from now on:
      this request and every later one signed with that key get 400
      ``ExpiredToken``, as S3 answers a session past its expiry.

Optional rule fields: ``skip`` (let the first K matching requests through,
default 0), ``count`` (fire this many times, default/null = forever),
``method`` (e.g. ``"PUT"``) and ``path`` (regex searched in the request
target, e.g. ``"uploadId="``).  "The first 2 requests get 503" is
``{"action": "status", "status": 503, "count": 2}``.

``Expect: 100-continue`` is answered by the proxy itself so that it always
holds the complete request before deciding; interim 1xx responses from the
upstream are swallowed.

Control while running
---------------------
A tiny HTTP control server on a second port (JSON in and out)::

  GET    /rules          current rules with their "seen"/"fired" counters
  PUT    /rules          replace all rules (body: list of rules)
  POST   /rules          append one rule (body: rule object)
  DELETE /rules          remove all rules
  GET    /stats          {"requests": n, "faults": n, "log": [...]}
  GET    /container-credentials   what ``credentials_provider`` returns (JSON);
                         ``?delay=S`` answers after S seconds
  POST   /reset          remove rules and zero all counters and the log

Script use::

  python3 tests/e2e/fault_proxy.py --upstream http://127.0.0.1:5000 \\
      --port-file /tmp/proxy.json [--rules '[{"action":"status","status":503,"count":2}]']

prints/writes ``{"proxy_url": ..., "control_url": ..., "pid": ...}`` and
runs until SIGTERM/SIGINT, stdin EOF (if stdin is a pipe) or parent death.

Module use (in-process, threads)::

  with FaultProxy("http://127.0.0.1:5000") as proxy:
      proxy.set_rules([{"action": "status", "status": 503, "count": 2}])
      client = boto3.client("s3", endpoint_url=proxy.url, ...)
      proxy.stats()

Standard library only; works with any Python >= 3.8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import stat
import struct
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024

S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad gateway (injected)."),
    503: ("SlowDown", "Please reduce your request rate."),
    504: ("GatewayTimeout", "Gateway timeout (injected)."),
}
REASONS = {400: "Bad Request", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


class _Closed(Exception):
    """Peer closed the connection cleanly between requests."""


# --------------------------------------------------------------------------
# Minimal HTTP/1.1 framing on a buffered socket
# --------------------------------------------------------------------------
class _Conn:
    """Socket with a read buffer and the few HTTP framing helpers we need."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self) -> bytes:
        """Bytes up to and including the blank line; _Closed on clean EOF."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head, self.buf = self.buf[: i + 4], self.buf[i + 4:]
                return head
            if len(self.buf) > MAX_HEAD:
                raise ValueError("header too large")
            if not self._fill():
                if self.buf:
                    raise ConnectionError("EOF inside header")
                raise _Closed()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("EOF inside body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("EOF inside chunked body")
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_chunked(self) -> bytes:
        """Raw bytes of a chunked body, including sizes and trailers."""
        out = []
        while True:
            line = self.read_line()
            out.append(line)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, until the empty line
                    t = self.read_line()
                    out.append(t)
                    if t == b"\r\n":
                        return b"".join(out)
            out.append(self.read_exact(size + 2))

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out


def _parse_head(head: bytes) -> Tuple[str, dict]:
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


def _read_body(conn: _Conn, hdrs: dict, no_body: bool = False) -> Optional[bytes]:
    """Body per RFC 7230 framing; None means "delimited by connection close"."""
    if no_body:
        return b""
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        return conn.read_chunked()
    if "content-length" in hdrs:
        return conn.read_exact(int(hdrs["content-length"]))
    return None


def _rst(sock: socket.socket) -> None:
    """Close so that the peer sees a TCP RST (SO_LINGER on, timeout 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def s3_error_response(status: int, method: str = "GET", keep_alive: bool = True,
                      code: Optional[str] = None) -> bytes:
    """A complete S3-looking XML error response (`code` overrides the
    status's usual S3 code)."""
    default, msg = S3_ERRORS.get(status, ("InjectedError", "Injected fault."))
    if code is None:
        code = default
    elif code == "XAmzContentSHA256Mismatch":
        msg = "The provided 'x-amz-content-sha256' header does not match what was computed."
    rid = uuid.uuid4().hex[:16].upper()
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Error><Code>{code}</Code><Message>{msg}</Message>"
            f"<RequestId>{rid}</RequestId><HostId>fault-proxy</HostId></Error>"
            ).encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            "Content-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"x-amz-request-id: {rid}\r\n"
            f"x-amz-id-2: fault-proxy-{rid}\r\n"
            "Server: fault-proxy\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode() + (b"" if method == "HEAD" else body)


# --------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------
VALID_ACTIONS = {"status", "reset", "stall", "expire"}


def _normalize_rule(rule: dict) -> dict:
    r = dict(rule)
    if r.get("action") not in VALID_ACTIONS:
        raise ValueError(f"bad action in rule {rule!r}; one of {sorted(VALID_ACTIONS)}")
    r.setdefault("skip", 0)
    r.setdefault("count", None)
    if r["action"] == "status":
        r["status"] = int(r.get("status", 503))
    if r["action"] == "reset":
        r.setdefault("when", "before")
        if r["when"] not in ("before", "mid"):
            raise ValueError("reset 'when' must be 'before' or 'mid'")
    if r["action"] == "stall":
        r["seconds"] = float(r.get("seconds", 5))
        r.setdefault("then", "close")
    if r.get("path"):
        re.compile(r["path"])
    r["seen"] = 0   # matching requests seen so far
    r["fired"] = 0  # faults injected so far
    return r


class FaultProxy:
    """The proxy.  ``start()``/``stop()`` or use as a context manager.

    ``upstream``: ``"http://127.0.0.1:PORT"`` or ``"127.0.0.1:PORT"``.
    ``port``/``control_port``: 0 picks free ports.  ``url`` and
    ``control_url`` are valid after ``start()``.
    """

    def __init__(self, upstream: str, port: int = 0, control_port: int = 0,
                 rules: Optional[List[dict]] = None, log_limit: int = 1000,
                 check_payload_hash: bool = False, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None):
        u = urlsplit(upstream if "//" in upstream else "http://" + upstream)
        self.upstream = (u.hostname or HOST, u.port or 80)
        self._port = port
        self._control_port = control_port
        self._lock = threading.Lock()
        self._rules: List[dict] = []
        self._requests = 0
        self._faults = 0
        self._log: List[dict] = []
        self._log_limit = log_limit
        self._stop = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._control: Optional[ThreadingHTTPServer] = None
        self._threads: List[threading.Thread] = []
        self._client_socks: set = set()
        self.url = ""
        self.control_url = ""
        # moto does not compare x-amz-content-sha256 with the body; AWS
        # does (400 XAmzContentSHA256Mismatch), and so does the proxy when
        # asked.
        self._check_hash = check_payload_hash
        # Set to a callable returning {"AccessKeyId", "SecretAccessKey",
        # "Token", "Expiration"} to serve GET /container-credentials on the
        # control port.
        self.credentials_provider = None
        self._credential_fetches = 0
        # With a certificate the proxy speaks TLS to its clients (https://)
        # and plain HTTP to the upstream.
        self._tls = None
        if tls_cert:
            import ssl
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(tls_cert, tls_key)
        self._hash_checked = 0
        self._hash_mismatches = 0
        # Requests signed with temporary keys (ASIA...), and STS AssumeRole
        # calls that went through.
        self._temporary_signed = 0
        self._assume_role_calls = 0
        self._expired_keys = set()  # access key ids an "expire" rule hit
        if rules:
            self.set_rules(rules)

    # ---- rule API ------------------------------------------------------
    def set_rules(self, rules: List[dict]) -> None:
        new = [_normalize_rule(r) for r in rules]
        with self._lock:
            self._rules = new

    def add_rule(self, rule: dict) -> None:
        r = _normalize_rule(rule)
        with self._lock:
            self._rules.append(r)

    def clear_rules(self) -> None:
        with self._lock:
            self._rules = []

    def rules(self) -> List[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def reset(self) -> None:
        with self._lock:
            self._rules, self._requests, self._faults, self._log = [], 0, 0, []
            self._expired_keys = set()

    def stats(self) -> dict:
        with self._lock:
            return {"requests": self._requests, "faults": self._faults,
                    "hash_checked": self._hash_checked,
                    "hash_mismatches": self._hash_mismatches,
                    "credential_fetches": self._credential_fetches,
                    "temporary_signed": self._temporary_signed,
                    "assume_role_calls": self._assume_role_calls,
                    "log": list(self._log)}

    def _decide(self, method: str, target: str) -> Tuple[int, Optional[dict]]:
        with self._lock:
            self._requests += 1
            n = self._requests
            chosen = None
            for r in self._rules:
                if r.get("method") and r["method"].upper() != method.upper():
                    continue
                if r.get("path") and not re.search(r["path"], target):
                    continue
                r["seen"] += 1
                armed = r["seen"] > r["skip"] and (
                    r["count"] is None or r["fired"] < r["count"])
                if armed and chosen is None:
                    r["fired"] += 1
                    chosen = dict(r)
            if chosen:
                self._faults += 1
            entry = {"n": n, "method": method, "target": target,
                     "fault": None if chosen is None else
                     {k: v for k, v in chosen.items() if k not in ("seen", "fired")}}
            self._log.append(entry)
            del self._log[: max(0, len(self._log) - self._log_limit)]
            return n, chosen

    # ---- lifecycle -----------------------------------------------------
    def start(self) -> "FaultProxy":
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, self._port))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.url = "%s://%s:%d" % (("https" if self._tls else "http",)
                                   + self._listener.getsockname()[:2])
        t = threading.Thread(target=self._accept_loop, name="fault-proxy-accept",
                             daemon=True)
        t.start()
        self._threads.append(t)

        self._control = ThreadingHTTPServer((HOST, self._control_port),
                                            _make_control_handler(self))
        self._control.daemon_threads = True
        self.control_url = "http://%s:%d" % self._control.server_address[:2]
        t = threading.Thread(target=self._control.serve_forever,
                             name="fault-proxy-control", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._control:
            self._control.shutdown()
            self._control.server_close()
        for t in self._threads:
            t.join(timeout=5)
        if self._listener:
            self._listener.close()
        with self._lock:
            socks = list(self._client_socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- data path -----------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(None)
            threading.Thread(target=self._serve_client, args=(sock,),
                             daemon=True).start()

    def _serve_client(self, csock: socket.socket) -> None:
        if self._tls is not None:
            try:
                csock = self._tls.wrap_socket(csock, server_side=True)
            except OSError:  # a client that refused our certificate
                csock.close()
                return
        with self._lock:
            self._client_socks.add(csock)
        client = _Conn(csock)
        upstream: Optional[_Conn] = None
        try:
            while not self._stop.is_set():
                try:
                    head = client.read_head()
                except _Closed:
                    break
                line, hdrs = _parse_head(head)
                method, target = (line.split(" ") + ["", ""])[:2]
                if hdrs.get("expect", "").lower() == "100-continue":
                    csock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = _read_body(client, hdrs) or b""
                client_close = hdrs.get("connection", "").lower() == "close"
                with self._lock:
                    if "Credential=ASIA" in hdrs.get("authorization", ""):
                        self._temporary_signed += 1
                    if body.startswith(b"Action=AssumeRole&"):
                        self._assume_role_calls += 1
                claimed = hdrs.get("x-amz-content-sha256", "")
                if self._check_hash and len(claimed) == 64:
                    good = hashlib.sha256(body).hexdigest() == claimed.lower()
                    with self._lock:
                        self._hash_checked += 1
                        self._hash_mismatches += 0 if good else 1
                    if not good:
                        csock.sendall(s3_error_response(400, method, not client_close,
                                                        code="XAmzContentSHA256Mismatch"))
                        if client_close:
                            break
                        continue
                m = re.search(r"Credential=([^/, ]+)/", hdrs.get("authorization", ""))
                key = m.group(1) if m else None
                with self._lock:
                    expired = key in self._expired_keys
                if expired:
                    rule = {"action": "expire"}
                else:
                    _, rule = self._decide(method, target)
                action = rule["action"] if rule else None
                if action == "expire":
                    with self._lock:
                        if key:
                            self._expired_keys.add(key)
                    csock.sendall(s3_error_response(400, method, not client_close,
                                                    code="ExpiredToken"))
                    if client_close:
                        break
                    continue

                if action == "status":
                    csock.sendall(s3_error_response(rule["status"], method,
                                                    not client_close, code=rule.get("code")))
                    if client_close:
                        break
                    continue
                if action == "reset" and rule["when"] == "before":
                    _rst(csock)
                    return
                if action == "stall":
                    if self._stop.wait(rule["seconds"]) or rule["then"] != "forward":
                        break

                # Forward.  Upstream (werkzeug) closes after each response,
                # so (re)connect whenever needed.
                if upstream is None:
                    upstream = _Conn(socket.create_connection(self.upstream, timeout=300))
                upstream.sock.sendall(head + body)
                while True:
                    rhead = upstream.read_head()
                    status_line, rhdrs = _parse_head(rhead)
                    code = int(status_line.split(" ")[1])
                    if not 100 <= code < 200:
                        break  # 1xx interim responses are swallowed
                no_body = method == "HEAD" or code in (204, 304)
                rbody = _read_body(upstream, rhdrs, no_body)
                until_close = rbody is None
                if until_close:
                    rbody = upstream.read_to_eof()
                if until_close or rhdrs.get("connection", "").lower() == "close":
                    upstream.sock.close()
                    upstream = None

                if action == "reset":  # mid-response
                    if rbody:
                        n = rule.get("bytes")
                        n = len(rbody) // 2 if n is None else min(int(n), len(rbody) - 1)
                        csock.sendall(rhead + rbody[:n])
                    else:
                        csock.sendall(rhead[: len(rhead) // 2])
                    time.sleep(0.05)  # let the partial data leave first
                    _rst(csock)
                    return
                csock.sendall(rhead + rbody)
                if until_close or client_close:
                    break
        except (OSError, ValueError, ConnectionError):
            pass
        finally:
            with self._lock:
                self._client_socks.discard(csock)
            if upstream is not None:
                upstream.sock.close()
            try:
                csock.close()
            except OSError:
                pass


def _make_control_handler(proxy: FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def _send(self, code: int, obj) -> None:
            data = (json.dumps(obj, indent=1) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n) or b"null")

        def do_GET(self):
            path, _, query = self.path.partition("?")
            if path == "/container-credentials":
                # An ECS/Batch-style credentials endpoint: what
                # `credentials_provider` gives, counted in the stats.
                if proxy.credentials_provider is None:
                    return self._send(404, {"error": "no credentials provider"})
                with proxy._lock:
                    proxy._credential_fetches += 1
                delay = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("delay")
                if delay:
                    time.sleep(float(delay))
                return self._send(200, proxy.credentials_provider())
            if self.path == "/rules":
                return self._send(200, proxy.rules())
            if self.path == "/stats":
                return self._send(200, proxy.stats())
            self._send(404, {"error": "unknown path"})

        def do_PUT(self):
            if self.path != "/rules":
                return self._send(404, {"error": "unknown path"})
            try:
                proxy.set_rules(self._json_body() or [])
            except (ValueError, TypeError, AttributeError, re.error) as e:
                return self._send(400, {"error": str(e)})
            self._send(200, proxy.rules())

        def do_POST(self):
            if self.path == "/reset":
                proxy.reset()
                return self._send(200, {"status": "ok"})
            if self.path != "/rules":
                return self._send(404, {"error": "unknown path"})
            try:
                proxy.add_rule(self._json_body())
            except (ValueError, TypeError, AttributeError, re.error) as e:
                return self._send(400, {"error": str(e)})
            self._send(200, proxy.rules())

        def do_DELETE(self):
            if self.path != "/rules":
                return self._send(404, {"error": "unknown path"})
            proxy.clear_rules()
            self._send(200, [])

    return Handler


# --------------------------------------------------------------------------
# Script entry point
# --------------------------------------------------------------------------
def _write_atomic(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix=".fault_proxy.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _wait_for_shutdown(watch_stdin: bool, watch_parent: bool) -> None:
    import signal

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda *_: stop.set())
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
        pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    except (OSError, ValueError, AttributeError):
        pipe = False
    if watch_stdin and pipe:
        def watcher():
            try:
                while os.read(sys.stdin.fileno(), 4096):
                    pass
            except OSError:
                pass
            stop.set()
        threading.Thread(target=watcher, daemon=True).start()
    parent = os.getppid()
    while not stop.wait(0.5):
        if watch_parent and os.getppid() != parent:
            break


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--rules", default="[]", help="initial rules as a JSON list")
    ap.add_argument("--port-file", help="write {proxy_url, control_url, pid} here")
    ap.add_argument("--no-watch-stdin", action="store_true")
    ap.add_argument("--no-watch-parent", action="store_true")
    args = ap.parse_args(argv)

    proxy = FaultProxy(args.upstream, args.port, args.control_port,
                       json.loads(args.rules)).start()
    info = json.dumps({"proxy_url": proxy.url, "control_url": proxy.control_url,
                       "pid": os.getpid()})
    try:
        if args.port_file:
            _write_atomic(args.port_file, info + "\n")
        print(info, flush=True)
        _wait_for_shutdown(not args.no_watch_stdin, not args.no_watch_parent)
    finally:
        if args.port_file:
            try:
                os.unlink(args.port_file)
            except OSError:
                pass
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
