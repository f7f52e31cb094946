#!/usr/bin/env python3
"""Signature-checking S3 endpoint for end-to-end tests, backed by moto.

Starts moto's server on 127.0.0.1 (on a kernel-chosen free port), creates an
IAM user with an "allow everything" inline policy and an access key through
moto's own IAM API, then switches moto's authentication ON via
``POST /moto-api/reset-auth`` (body ``0``).  From then on every request must
carry a valid AWS SigV4 signature made with that key: unsigned or wrongly
signed requests get ``403``.  Before reporting readiness the launcher checks
exactly that (unsigned -> 403, wrong secret -> 403, correct key -> 200, and a
correctly signed request for an awkward key/query is not rejected).

Script use::

    python3 tests/e2e/moto_s3.py --port-file /tmp/moto.json [--env-file F]

prints one JSON line on stdout and writes the same JSON to ``--port-file``
(atomically, so a poller never sees a partial file)::

    {"endpoint_url": "http://127.0.0.1:43121", "region": "us-east-1",
     "access_key_id": "AKIA...", "secret_access_key": "...", "pid": 1234}

``--env-file`` additionally writes ``export AWS_ENDPOINT_URL=...`` style lines
for shell scripts.  The server runs until SIGTERM/SIGINT, until its stdin
reaches EOF (only watched when stdin is a pipe or socket, so ``cmd &`` with
stdin on /dev/null keeps running), or until its parent process dies.  On a
clean exit the port/env files are removed.

Module use::

    from moto_s3 import MotoS3
    with MotoS3() as s3:
        s3.endpoint_url, s3.region, s3.access_key_id, s3.secret_access_key
        client = s3.client()          # boto3 S3 client with the right key

``MotoS3`` runs the server in a child process (``sys.executable`` by
default, which must have moto installed) whose stdin is a pipe, so the
server also dies if the test process is killed hard.

moto patches (applied in this process only, before the server starts; see
each function's docstring):

* ``patch_moto_raw_request_url``: verify signatures against the raw request
  target instead of werkzeug's decoded-and-requoted URL (stock moto rejects
  correctly signed requests for keys like ``a+b=c``, ``ünï/cødé``, ``x%2Fy``
  and queries like ``prefix=a%2Fb``).
* ``patch_moto_s3_raw_body``: don't parse S3 bodies as HTML forms (stock
  moto stores 0 bytes for a PUT sent with a form Content-Type).
* ``patch_moto_reject_unsigned``: unsigned requests get 403, not a 500
  from a KeyError.

Needs: moto (server extras: flask, werkzeug) and boto3.  Tested with moto
5.2.1, werkzeug 3.1.8, flask 3.1.3, botocore 1.43.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Optional

HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
IAM_USER = "libmetaflow-e2e"
ALLOW_ALL_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
)


# --------------------------------------------------------------------------
# The moto patch
# --------------------------------------------------------------------------
def patch_moto_raw_request_url() -> None:
    """Make moto verify SigV4 signatures against the URL as it was sent.

    Why: moto's server hands ``flask.request.url`` to every handler as
    ``full_url`` (moto/core/utils.py, ``convert_to_flask_response``); the
    handler stores it as ``self.uri`` (moto/core/responses.py,
    ``setup_class``) and the signature check
    (moto/core/authorization.py ``_authenticate_and_authorize_action`` ->
    moto/iam/access_control.py ``IAMRequestBase._create_aws_request``)
    rebuilds the canonical request from ``urlparse(self.uri)``.  For S3,
    botocore's ``S3SigV4Auth`` uses that path and query *verbatim*.  But
    werkzeug's ``Request.url`` is rebuilt from the already percent-DECODED
    path and then re-quoted with a lax safe-set and passed through
    ``uri_to_iri``: ``%2B``/``%3D`` come back as ``+``/``=``, ``%C3%BC``
    comes back as ``ü``, ``%2F`` inside a query value as ``/``.  The
    canonical request moto computes then differs from what the client
    signed, so correct signatures are rejected with SignatureDoesNotMatch.

    Fix: make ``Request.url`` return scheme + host + the raw request target
    (``REQUEST_URI``, set by werkzeug's dev server, byte-for-byte what the
    client sent).  Everything else in moto that reads ``request.url`` parses
    it with urlparse/parse_qs, which decode it correctly; S3 key names come
    from ``RAW_URI`` anyway (``S3Response.get_safe_path``).
    """
    from urllib.parse import urlsplit

    import flask.wrappers

    if getattr(flask.wrappers.Request, "_libmetaflow_raw_url", False):
        return
    original_url = flask.wrappers.Request.url  # werkzeug cached_property

    def raw_url(self):  # type: ignore[no-untyped-def]
        raw = self.environ.get("REQUEST_URI") or self.environ.get("RAW_URI")
        if not raw:
            return original_url.__get__(self, type(self))
        if not raw.startswith("/"):  # absolute-form request target
            parts = urlsplit(raw)
            raw = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        # WSGI strings are latin-1 decoded bytes; a well-behaved client sends
        # pure ASCII here, so this is a no-op for it.
        return f"{self.scheme}://{self.host}{raw}"

    flask.wrappers.Request.url = property(raw_url)  # type: ignore[assignment]
    flask.wrappers.Request._libmetaflow_raw_url = True  # type: ignore[attr-defined]


def patch_moto_reject_unsigned() -> None:
    """Answer requests without an Authorization header with 403, not 500.

    With auth on, moto's ``IAMRequestBase.__init__`` reads
    ``headers["Authorization"]`` unconditionally, so an unsigned request
    dies with KeyError -> HTTP 500.  Real S3 answers 403 AccessDenied.
    (Consequence: presigned URLs, which carry the signature in the query,
    are also refused while auth is on; this harness does not use them.)
    """
    from moto.core.exceptions import AccessDeniedError
    from moto.iam.access_control import IAMRequestBase, S3IAMRequest

    if getattr(IAMRequestBase, "_libmetaflow_unsigned", False):
        return
    original_init = IAMRequestBase.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        headers = kwargs.get("headers", args[5] if len(args) > 5 else {})
        if "Authorization" not in headers:
            self._data = kwargs.get("data", args[3] if len(args) > 3 else {})
            if isinstance(self, S3IAMRequest):
                self._raise_access_denied()  # S3 XML AccessDenied, 403
            raise AccessDeniedError(user_arn="anonymous",
                                    action=str(kwargs.get("action", "")))
        original_init(self, *args, **kwargs)

    IAMRequestBase.__init__ = init  # type: ignore[method-assign]
    IAMRequestBase._libmetaflow_unsigned = True  # type: ignore[attr-defined]


def patch_moto_s3_raw_body() -> None:
    """Never parse an S3 request body as an HTML form.

    werkzeug parses bodies with ``Content-Type:
    application/x-www-form-urlencoded`` or ``multipart/form-data`` into
    ``request.form`` and then ``request.data`` is empty, so moto silently
    stores a 0-byte object for e.g. ``curl --data-binary`` (which sends that
    content type) or ``put_object(ContentType="application/x-www-form-...")``.
    Real S3 stores the bytes whatever the content type.  For requests signed
    for the ``s3`` service we tell werkzeug not to parse forms; other moto
    services (IAM's form-encoded query API) are untouched.
    """
    import flask.wrappers

    if getattr(flask.wrappers.Request, "_libmetaflow_raw_body", False):
        return
    original = flask.wrappers.Request.want_form_data_parsed  # a property

    def want_form_data_parsed(self):  # type: ignore[no-untyped-def]
        if "/s3/aws4_request" in self.environ.get("HTTP_AUTHORIZATION", ""):
            return False
        return original.fget(self)

    flask.wrappers.Request.want_form_data_parsed = property(want_form_data_parsed)  # type: ignore[assignment]
    flask.wrappers.Request._libmetaflow_raw_body = True  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# Endpoint description
# --------------------------------------------------------------------------
@dataclass
class S3Endpoint:
    """Where the S3 endpoint is and which key signs requests to it."""

    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    pid: int = 0

    def env(self) -> dict:
        """Environment variables understood by AWS SDKs / CLIs."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def client(self, service: str = "s3", endpoint_url: Optional[str] = None,
               secret_access_key: Optional[str] = None, **config_kwargs):
        """boto3 client signed with this endpoint's key.

        ``endpoint_url`` overrides the URL (e.g. to go through fault_proxy),
        ``secret_access_key`` overrides the secret (to test bad signatures),
        other keyword arguments go to ``botocore.config.Config``.
        """
        import boto3
        from botocore.config import Config

        config_kwargs.setdefault("s3", {"addressing_style": "path"})
        return boto3.client(
            service,
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            config=Config(**config_kwargs),
        )


# --------------------------------------------------------------------------
# Server side (runs in the launcher process)
# --------------------------------------------------------------------------
def _http(method: str, url: str, body: bytes = b"", headers: Optional[dict] = None):
    """Tiny urllib wrapper returning (status, body) without raising on 4xx/5xx."""
    req = urllib.request.Request(url, data=body if method != "GET" else None,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _start_moto(port: int):
    """Start moto's ThreadedMotoServer on HOST:port (0 = free port)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    host, real_port = server.get_host_and_port()
    return server, f"http://{host}:{real_port}"


def _enable_auth(endpoint_url: str, region: str) -> S3Endpoint:
    """Create the IAM user + key (auth still off), then turn auth on."""
    import boto3

    # Auth is off by default (INITIAL_NO_AUTH_ACTION_COUNT=inf), so any
    # credentials work for these bootstrap calls.
    iam = boto3.client("iam", endpoint_url=endpoint_url, region_name=region,
                       aws_access_key_id="bootstrap",
                       aws_secret_access_key="bootstrap")
    iam.create_user(UserName=IAM_USER)
    iam.put_user_policy(UserName=IAM_USER, PolicyName="allow-all",
                        PolicyDocument=ALLOW_ALL_POLICY)
    key = iam.create_access_key(UserName=IAM_USER)["AccessKey"]

    # text/plain matters: with a form content type flask would swallow the
    # body into request.form and moto would read an empty request.data.
    status, body = _http("POST", endpoint_url + "/moto-api/reset-auth", b"0",
                         {"Content-Type": "text/plain"})
    if status != 200:
        raise RuntimeError(f"reset-auth failed: {status} {body!r}")
    return S3Endpoint(endpoint_url, region, key["AccessKeyId"],
                      key["SecretAccessKey"], os.getpid())


def verify_auth(ep: S3Endpoint) -> None:
    """Raise RuntimeError unless moto enforces signatures as intended."""
    from botocore.exceptions import ClientError

    # 1. Unsigned request.
    status, body = _http("GET", ep.endpoint_url + "/")
    if status != 403:
        raise RuntimeError(f"unsigned request not rejected: {status} {body[:300]!r}")

    # 2. Wrong secret.
    try:
        ep.client(secret_access_key="x" * 40).list_buckets()
    except ClientError as e:
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if st != 403:
            raise RuntimeError(f"wrong secret gave {st}, expected 403") from e
    else:
        raise RuntimeError("request signed with a wrong secret was accepted")

    # 3. Correct key.
    good = ep.client()
    good.list_buckets()

    # 4. Correctly signed requests with awkward paths/queries must get past
    #    the signature check (NoSuchBucket proves they did; with stock moto
    #    they fail with 403 SignatureDoesNotMatch).
    for call in (
        lambda: good.get_object(Bucket="no-such-bucket", Key="a+b=c ünï/x%2Fy"),
        lambda: good.list_objects_v2(Bucket="no-such-bucket", Prefix="ünï/a+b=c"),
    ):
        try:
            call()
        except ClientError as e:
            code = e.response["Error"]["Code"]
            if code != "NoSuchBucket":
                raise RuntimeError(
                    f"signed request with awkward key rejected: {code} "
                    "(is the raw-URL patch working with this moto version?)"
                ) from e
        else:
            raise RuntimeError("expected NoSuchBucket")


def _write_atomic(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".moto_s3.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _stdin_is_watchable() -> bool:
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def wait_for_shutdown(watch_stdin: bool, watch_parent: bool) -> str:
    """Block until a signal, stdin EOF or parent death; return the reason."""
    stop = threading.Event()
    reason = ["signal"]

    def on_signal(signum, _frame):
        reason[0] = signal.Signals(signum).name
        stop.set()

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    if watch_stdin and _stdin_is_watchable():
        def stdin_watcher():
            fd = sys.stdin.fileno()
            while True:
                try:
                    if not os.read(fd, 4096):
                        break
                except OSError:
                    break
            reason[0] = "stdin closed"
            stop.set()
        threading.Thread(target=stdin_watcher, daemon=True).start()

    parent = os.getppid()
    while not stop.wait(0.5):
        if watch_parent and os.getppid() != parent:
            reason[0] = "parent died"
            break
    return reason[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0,
                    help="port on 127.0.0.1 (default 0: pick a free one)")
    ap.add_argument("--region", default=DEFAULT_REGION)
    ap.add_argument("--port-file", help="write endpoint JSON here when ready")
    ap.add_argument("--env-file", help="write shell 'export VAR=...' lines here")
    ap.add_argument("--no-raw-url-patch", action="store_true",
                    help="do not apply the raw-URL patch (stock moto; "
                         "awkward keys will then fail the start-up check)")
    ap.add_argument("--no-raw-body-patch", action="store_true",
                    help="do not apply the S3 raw-body patch (stock moto: "
                         "form-typed PUT bodies are stored as 0 bytes)")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the start-up auth self-check")
    ap.add_argument("--no-watch-stdin", action="store_true")
    ap.add_argument("--no-watch-parent", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="log every request")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="moto_s3: %(message)s")
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    if not args.no_raw_url_patch:
        patch_moto_raw_request_url()
    if not args.no_raw_body_patch:
        patch_moto_s3_raw_body()
    patch_moto_reject_unsigned()
    server, url = _start_moto(args.port)
    written = []
    try:
        ep = _enable_auth(url, args.region)
        if not args.no_verify:
            verify_auth(ep)
        info = json.dumps(asdict(ep))
        if args.port_file:
            _write_atomic(args.port_file, info + "\n")
            written.append(args.port_file)
        if args.env_file:
            _write_atomic(args.env_file, "".join(
                f"export {k}='{v}'\n" for k, v in ep.env().items()))
            written.append(args.env_file)
        print(info, flush=True)
        why = wait_for_shutdown(not args.no_watch_stdin, not args.no_watch_parent)
        logging.info("shutting down (%s)", why)
    finally:
        for f in written:
            try:
                os.unlink(f)
            except OSError:
                pass
        server.stop()
    return 0


# --------------------------------------------------------------------------
# Client side: context manager for tests
# --------------------------------------------------------------------------
class MotoS3:
    """Run moto_s3.py in a subprocess for the duration of a ``with`` block.

    ``with MotoS3() as ep:`` yields an :class:`S3Endpoint` (``endpoint_url``,
    ``region``, ``access_key_id``, ``secret_access_key``; also
    ``ep.client()`` and ``ep.env()``).  ``python`` selects the interpreter
    (must have moto); ``extra_args`` are passed to the script.
    """

    def __init__(self, python: str = sys.executable, timeout: float = 60.0,
                 extra_args: tuple = (), verbose: bool = False):
        self.python = python
        self.timeout = timeout
        self.extra_args = list(extra_args) + (["--verbose"] if verbose else [])
        self.proc: Optional[subprocess.Popen] = None
        self._tmpdir: Optional[tempfile.TemporaryDirectory] = None
        self.endpoint: Optional[S3Endpoint] = None
        self.returncode: Optional[int] = None  # of the server, after stop()

    def start(self) -> S3Endpoint:
        self._tmpdir = tempfile.TemporaryDirectory(prefix="moto_s3.")
        port_file = os.path.join(self._tmpdir.name, "endpoint.json")
        self.proc = subprocess.Popen(
            [self.python, os.path.abspath(__file__), "--port-file", port_file,
             *self.extra_args],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto_s3.py exited early (rc={self.proc.returncode})")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("moto_s3.py did not become ready in time")
            time.sleep(0.05)
        with open(port_file) as f:
            self.endpoint = S3Endpoint(**json.load(f))
        return self.endpoint

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.stdin:
                try:
                    self.proc.stdin.close()  # polite: EOF on stdin
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.returncode = self.proc.returncode
            self.proc = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> S3Endpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
