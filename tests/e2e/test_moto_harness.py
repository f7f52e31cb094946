#!/usr/bin/env python3
"""Self-tests for the e2e S3 harness (moto_s3.py and fault_proxy.py).

Run either way (the interpreter needs moto + boto3):

    python3 tests/e2e/test_moto_harness.py [-v] [-k SUBSTRING]
    python3 -m pytest tests/e2e/test_moto_harness.py     # if pytest exists

As a script it runs every ``test_*`` function, prints PASS/FAIL per test and
exits non-zero if any failed.  One moto server is shared by all tests
(``setup_module``/``teardown_module``); each test uses its own bucket.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import botocore  # noqa: E402
from botocore import UNSIGNED  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from fault_proxy import FaultProxy  # noqa: E402
from moto_s3 import MotoS3, S3Endpoint, _http  # noqa: E402

AWKWARD_KEYS = [
    "a+b=c",
    "sp ace",
    "ünï/cødé",
    "x%2Fy",
    "ünï/sub/deep key+1=2",
    "q?mark&amp=1#hash",
    "tilde~star*semi;colon,comma",
]
MiB = 1024 * 1024

_server: MotoS3 | None = None
EP: S3Endpoint | None = None


def setup_module(module=None) -> None:
    global _server, EP
    _server = MotoS3()
    EP = _server.start()


def teardown_module(module=None) -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


# ---------------------------------------------------------------- helpers
class _Skip(Exception):
    """Raised by _skip() when pytest is not in use."""


def _skip(reason: str):
    if "pytest" in sys.modules:
        import pytest
        pytest.skip(reason)
    raise _Skip(reason)


def _err(exc: ClientError) -> tuple:
    return (exc.response["ResponseMetadata"]["HTTPStatusCode"],
            exc.response["Error"]["Code"])


def _expect_client_error(fn, status, code=None):
    try:
        fn()
    except ClientError as e:
        st, c = _err(e)
        assert st == status, f"expected HTTP {status}, got {st} {c}"
        if code is not None:
            assert c == code, f"expected {code}, got {c}"
        return e
    raise AssertionError(f"expected HTTP {status} {code or ''}, call succeeded")


def _fresh_bucket(s3, name: str) -> str:
    s3.create_bucket(Bucket=name)
    return name


def _capture_urls(client) -> list:
    """Record the URL of every request the client sends."""
    urls: list = []
    client.meta.events.register(
        "before-send.s3.*", lambda request, **_: urls.append(request.url))
    return urls


def _fast_retry_client(url: str, attempts: int, **cfg):
    """S3 client through ``url`` with `attempts` total attempts (standard mode)."""
    assert EP is not None
    cfg.setdefault("connect_timeout", 5)
    cfg.setdefault("read_timeout", 30)
    return EP.client(endpoint_url=url,
                     retries={"total_max_attempts": attempts, "mode": "standard"},
                     **cfg)


# ------------------------------------------------------------- auth tests
def test_signed_request_succeeds():
    assert EP is not None
    assert EP.endpoint_url.startswith("http://127.0.0.1:")
    s3 = EP.client()
    s3.list_buckets()
    sts = EP.client("sts")
    ident = sts.get_caller_identity()
    assert ident["Arn"].endswith(":user/libmetaflow-e2e"), ident["Arn"]


def test_wrong_secret_is_rejected():
    assert EP is not None
    s3 = EP.client(secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    _expect_client_error(s3.list_buckets, 403, "SignatureDoesNotMatch")
    good = EP.client()
    b = _fresh_bucket(good, "e2e-wrong-secret")
    good.put_object(Bucket=b, Key="a+b=c", Body=b"x")
    _expect_client_error(lambda: s3.get_object(Bucket=b, Key="a+b=c"),
                         403, "SignatureDoesNotMatch")
    _expect_client_error(lambda: s3.put_object(Bucket=b, Key="k", Body=b"x"),
                         403, "SignatureDoesNotMatch")


def test_unknown_access_key_is_rejected():
    import boto3

    assert EP is not None
    s3 = boto3.client("s3", endpoint_url=EP.endpoint_url, region_name=EP.region,
                      aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                      aws_secret_access_key=EP.secret_access_key)
    _expect_client_error(s3.list_buckets, 403, "InvalidAccessKeyId")


def test_unsigned_request_is_rejected():
    assert EP is not None
    good = EP.client()
    b = _fresh_bucket(good, "e2e-unsigned")
    good.put_object(Bucket=b, Key="obj", Body=b"secret")
    anon = EP.client(signature_version=UNSIGNED)
    _expect_client_error(anon.list_buckets, 403)
    _expect_client_error(lambda: anon.get_object(Bucket=b, Key="obj"), 403)
    _expect_client_error(lambda: anon.put_object(Bucket=b, Key="o2", Body=b"x"), 403)
    for method, path in (("GET", "/"), ("GET", f"/{b}/obj"), ("PUT", f"/{b}/o3")):
        req = urllib.request.Request(EP.endpoint_url + path, method=method,
                                     data=b"x" if method == "PUT" else None)
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 403, (method, path, e.code)
            body = e.read()
            # moto's object-ACL check answers anonymous GETs of existing
            # objects with an empty 403 before auth runs; others are XML.
            assert body == b"" or b"<Code>AccessDenied</Code>" in body, body
        else:
            raise AssertionError(f"unsigned {method} {path} succeeded")
    # nothing was written by the anonymous attempts
    keys = [o["Key"] for o in good.list_objects_v2(Bucket=b).get("Contents", [])]
    assert keys == ["obj"], keys


# ------------------------------------------------------------ S3 behaviour
def test_awkward_keys_roundtrip():
    assert EP is not None
    s3 = EP.client()
    urls = _capture_urls(s3)
    b = _fresh_bucket(s3, "e2e-awkward-keys")
    for i, key in enumerate(AWKWARD_KEYS):
        s3.put_object(Bucket=b, Key=key, Body=f"body {i} {key}".encode())
    for i, key in enumerate(AWKWARD_KEYS):
        got = s3.get_object(Bucket=b, Key=key)["Body"].read()
        assert got == f"body {i} {key}".encode(), (key, got)
        head = s3.head_object(Bucket=b, Key=key)
        assert head["ContentLength"] == len(got)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]]
    assert sorted(listed) == sorted(AWKWARD_KEYS), listed
    # the client really sent the encodings we care about
    sent = "\n".join(urls)
    for enc in ("a%2Bb%3Dc", "sp%20ace", "%C3%BCn%C3%AF/c%C3%B8d%C3%A9", "x%252Fy"):
        assert enc in sent, f"{enc} not in request URLs"
    for key in AWKWARD_KEYS:
        s3.delete_object(Bucket=b, Key=key)
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    s3.delete_bucket(Bucket=b)


def test_list_prefix_with_encoded_slash():
    assert EP is not None
    s3 = EP.client()
    urls = _capture_urls(s3)
    b = _fresh_bucket(s3, "e2e-prefix")
    for key in ("ünï/cødé", "ünï/sub/deep", "ünïx", "x%2Fy", "x/y", "top"):
        s3.put_object(Bucket=b, Key=key, Body=b"1")

    r = s3.list_objects_v2(Bucket=b, Prefix="ünï/")
    assert [o["Key"] for o in r["Contents"]] == ["ünï/cødé", "ünï/sub/deep"], r
    assert "prefix=%C3%BCn%C3%AF%2F" in urls[-1], urls[-1]

    r = s3.list_objects_v2(Bucket=b, Prefix="ünï/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["ünï/cødé"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["ünï/sub/"]
    assert "delimiter=%2F" in urls[-1], urls[-1]

    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert sorted(p["Prefix"] for p in r["CommonPrefixes"]) == ["x/", "ünï/"]

    # literal "%2F" in the prefix travels as %252F and must not match "x/y"
    r = s3.list_objects_v2(Bucket=b, Prefix="x%2F")
    assert [o["Key"] for o in r["Contents"]] == ["x%2Fy"], r
    assert "prefix=x%252F" in urls[-1], urls[-1]

    # v1 listing with marker containing '/'
    r = s3.list_objects(Bucket=b, Prefix="ünï/", Marker="ünï/cødé")
    assert [o["Key"] for o in r["Contents"]] == ["ünï/sub/deep"], r


def test_form_content_type_body_is_stored():
    """PUT bodies are kept verbatim whatever the Content-Type (moto patch)."""
    assert EP is not None
    s3 = EP.client()
    b = _fresh_bucket(s3, "e2e-content-type")
    body = b"a=1&b=2\r\n--xyz\r\nhello"
    for ct in ("application/x-www-form-urlencoded",
               "multipart/form-data; boundary=xyz", "text/plain", None):
        kw = {"ContentType": ct} if ct else {}
        s3.put_object(Bucket=b, Key="k", Body=body, **kw)
        r = s3.get_object(Bucket=b, Key="k")
        assert r["Body"].read() == body, ct
        if ct:
            assert r["ContentType"] == ct, (ct, r["ContentType"])


def test_ranged_get():
    assert EP is not None
    s3 = EP.client()
    b = _fresh_bucket(s3, "e2e-range")
    data = bytes(range(256)) * 40  # 10240 bytes
    s3.put_object(Bucket=b, Key="r a+n=g/ë", Body=data)
    r = s3.get_object(Bucket=b, Key="r a+n=g/ë", Range="bytes=100-199")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == f"bytes 100-199/{len(data)}", r["ContentRange"]
    assert r["Body"].read() == data[100:200]
    r = s3.get_object(Bucket=b, Key="r a+n=g/ë", Range="bytes=-10")
    assert r["Body"].read() == data[-10:]
    r = s3.get_object(Bucket=b, Key="r a+n=g/ë", Range="bytes=10000-")
    assert r["Body"].read() == data[10000:]


def test_multipart_upload_3x5MiB():
    assert EP is not None
    s3 = EP.client()
    b = _fresh_bucket(s3, "e2e-multipart")
    key = "mp/ünï+=/big file.bin"
    parts_data = [os.urandom(5 * MiB) for _ in range(3)]
    up = s3.create_multipart_upload(Bucket=b, Key=key)
    parts = []
    for n, chunk in enumerate(parts_data, start=1):
        r = s3.upload_part(Bucket=b, Key=key, UploadId=up["UploadId"],
                           PartNumber=n, Body=chunk)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket=b, Key=key, UploadId=up["UploadId"])["Parts"]
    assert [p["Size"] for p in listed] == [5 * MiB] * 3
    r = s3.complete_multipart_upload(Bucket=b, Key=key, UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": parts})
    assert r["ETag"].strip('"').endswith("-3"), r["ETag"]
    whole = b"".join(parts_data)
    obj = s3.get_object(Bucket=b, Key=key)
    assert obj["ContentLength"] == 15 * MiB
    assert hashlib.sha256(obj["Body"].read()).digest() == hashlib.sha256(whole).digest()
    # a ranged GET across the part 1/part 2 boundary
    lo, hi = 5 * MiB - 10, 5 * MiB + 9
    r = s3.get_object(Bucket=b, Key=key, Range=f"bytes={lo}-{hi}")
    assert r["Body"].read() == whole[lo:hi + 1]


def test_multipart_abort():
    assert EP is not None
    s3 = EP.client()
    b = _fresh_bucket(s3, "e2e-mp-abort")
    up = s3.create_multipart_upload(Bucket=b, Key="k")
    s3.upload_part(Bucket=b, Key="k", UploadId=up["UploadId"], PartNumber=1,
                   Body=b"x" * 100)
    s3.abort_multipart_upload(Bucket=b, Key="k", UploadId=up["UploadId"])
    assert not s3.list_multipart_uploads(Bucket=b).get("Uploads")
    _expect_client_error(lambda: s3.head_object(Bucket=b, Key="k"), 404)


# ------------------------------------------------------------ proxy tests
def test_proxy_passthrough():
    assert EP is not None
    with FaultProxy(EP.endpoint_url) as proxy:
        s3 = _fast_retry_client(proxy.url, 1)
        b = _fresh_bucket(s3, "e2e-proxy-pass")
        for key in AWKWARD_KEYS:
            s3.put_object(Bucket=b, Key=key, Body=key.encode())
        assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]) \
            == sorted(AWKWARD_KEYS)
        big = os.urandom(6 * MiB)  # > 1 MiB: botocore sends Expect: 100-continue
        s3.put_object(Bucket=b, Key="big", Body=big)
        assert s3.get_object(Bucket=b, Key="big")["Body"].read() == big
        st = proxy.stats()
        assert st["faults"] == 0 and st["requests"] == len(AWKWARD_KEYS) + 4, st
        # signature checking still works through the proxy
        bad = EP.client(endpoint_url=proxy.url, secret_access_key="y" * 40)
        _expect_client_error(bad.list_buckets, 403, "SignatureDoesNotMatch")


def test_proxy_checks_payload_hash():
    """With check_payload_hash the proxy does what AWS does and moto does
    not: a body whose SHA-256 differs from x-amz-content-sha256 gets 400
    XAmzContentSHA256Mismatch; botocore's correct hashes pass."""
    assert EP is not None
    import hashlib
    with FaultProxy(EP.endpoint_url, check_payload_hash=True) as proxy:
        s3 = _fast_retry_client(proxy.url, 1)
        b = _fresh_bucket(s3, "e2e-proxy-hash")
        s3.put_object(Bucket=b, Key="k", Body=b"right")
        wrong = hashlib.sha256(b"something else").hexdigest()
        status, body = _http("PUT", proxy.url + "/" + b + "/k2", b"the body",
                                {"x-amz-content-sha256": wrong})
        assert status == 400 and b"XAmzContentSHA256Mismatch" in body, (status, body)
        st = proxy.stats()
        assert st["hash_mismatches"] == 1 and st["hash_checked"] >= 2, st


def _retry_case(rules, call, attempts=3):
    """Run call(s3) through a proxy with rules; return (result, proxy stats)."""
    assert EP is not None
    with FaultProxy(EP.endpoint_url, rules=rules) as proxy:
        s3 = _fast_retry_client(proxy.url, attempts, read_timeout=1)
        return call(s3), proxy.stats()


def test_proxy_503_then_success():
    assert EP is not None
    EP.client().create_bucket(Bucket="e2e-proxy-503")
    r, st = _retry_case(
        [{"action": "status", "status": 503, "count": 2}],
        lambda s3: s3.put_object(Bucket="e2e-proxy-503", Key="a+b=c", Body=b"hello"))
    assert r["ResponseMetadata"]["RetryAttempts"] == 2, r["ResponseMetadata"]
    assert st["requests"] == 3 and st["faults"] == 2, st
    assert [e["fault"] and e["fault"]["status"] for e in st["log"]] == [503, 503, None]
    assert EP.client().get_object(Bucket="e2e-proxy-503", Key="a+b=c")["Body"].read() \
        == b"hello"


def test_proxy_500_on_get_only():
    assert EP is not None
    s3 = EP.client()
    s3.create_bucket(Bucket="e2e-proxy-500")
    s3.put_object(Bucket="e2e-proxy-500", Key="k", Body=b"data")
    r, st = _retry_case(
        [{"action": "status", "status": 500, "count": 1, "method": "GET",
          "path": "/e2e-proxy-500/k"}],
        lambda c: (c.head_object(Bucket="e2e-proxy-500", Key="k"),
                   c.get_object(Bucket="e2e-proxy-500", Key="k")["Body"].read()))
    assert r[1] == b"data"
    assert [e["method"] for e in st["log"]] == ["HEAD", "GET", "GET"], st["log"]
    assert st["faults"] == 1


def test_proxy_reset_before_response():
    assert EP is not None
    EP.client().create_bucket(Bucket="e2e-proxy-rst")
    r, st = _retry_case(
        [{"action": "reset", "when": "before", "count": 1}],
        lambda s3: s3.put_object(Bucket="e2e-proxy-rst", Key="k", Body=b"v"))
    assert r["ResponseMetadata"]["RetryAttempts"] == 1
    assert st["requests"] == 2 and st["faults"] == 1, st


def test_proxy_reset_mid_response():
    assert EP is not None
    s3 = EP.client()
    s3.create_bucket(Bucket="e2e-proxy-mid")
    payload = os.urandom(256 * 1024)
    s3.put_object(Bucket="e2e-proxy-mid", Key="k", Body=payload)
    # Truncated response *headers* (empty-body PUT reply): botocore retries.
    r, st = _retry_case(
        [{"action": "reset", "when": "mid", "count": 1}],
        lambda c: c.put_object(Bucket="e2e-proxy-mid", Key="k2", Body=b"v"))
    assert r["ResponseMetadata"]["RetryAttempts"] == 1 and st["faults"] == 1
    # Truncated *body* of a GET: botocore returns the stream, reading it
    # must fail loudly rather than return short data.
    with FaultProxy(EP.endpoint_url) as proxy:
        proxy.add_rule({"action": "reset", "when": "mid", "bytes": 1000,
                        "method": "GET", "count": 1})
        c = _fast_retry_client(proxy.url, 3)
        body = c.get_object(Bucket="e2e-proxy-mid", Key="k")["Body"]
        try:
            data = body.read()
        except (BotoCoreError, OSError) as e:
            print(f"    truncated body raised {type(e).__name__}")
        else:
            raise AssertionError(f"truncated body read returned {len(data)} bytes")
        # next request works again
        assert c.get_object(Bucket="e2e-proxy-mid", Key="k")["Body"].read() == payload


def test_proxy_stall_times_out_then_success():
    assert EP is not None
    EP.client().create_bucket(Bucket="e2e-proxy-stall")
    t0 = time.monotonic()
    r, st = _retry_case(
        [{"action": "stall", "seconds": 3, "count": 1}],
        lambda s3: s3.list_objects_v2(Bucket="e2e-proxy-stall"))
    assert r["ResponseMetadata"]["RetryAttempts"] == 1
    assert st["faults"] == 1 and st["requests"] == 2
    assert time.monotonic() - t0 >= 1.0  # the read timeout did expire


def test_proxy_persistent_503_fails():
    assert EP is not None
    EP.client().create_bucket(Bucket="e2e-proxy-down")
    with FaultProxy(EP.endpoint_url,
                    rules=[{"action": "status", "status": 503}]) as proxy:
        s3 = _fast_retry_client(proxy.url, 3)
        e = _expect_client_error(
            lambda: s3.put_object(Bucket="e2e-proxy-down", Key="k", Body=b"v"),
            503, "SlowDown")
        assert e.response["ResponseMetadata"]["RetryAttempts"] == 2
        assert e.response["ResponseMetadata"]["RequestId"]  # x-amz-request-id
        st = proxy.stats()
        assert st["requests"] == 3 and st["faults"] == 3, st
    # nothing reached moto
    _expect_client_error(
        lambda: EP.client().head_object(Bucket="e2e-proxy-down", Key="k"), 404)


def test_proxy_persistent_reset_fails():
    assert EP is not None
    with FaultProxy(EP.endpoint_url,
                    rules=[{"action": "reset", "when": "before"}]) as proxy:
        s3 = _fast_retry_client(proxy.url, 2)
        try:
            s3.list_buckets()
        except BotoCoreError as e:  # EndpointConnectionError / ConnectionClosedError
            print(f"    persistent reset raised {type(e).__name__}")
        else:
            raise AssertionError("list_buckets succeeded through a dead proxy")
        assert proxy.stats()["requests"] == 2


def _ctl(url: str, method: str, path: str, obj=None):
    data = None if obj is None else json.dumps(obj).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_proxy_control_endpoint_and_skip():
    assert EP is not None
    EP.client().create_bucket(Bucket="e2e-proxy-ctl")
    with FaultProxy(EP.endpoint_url) as proxy:
        c = proxy.control_url
        s3 = _fast_retry_client(proxy.url, 1)  # no retries: see each fault
        s3.list_objects_v2(Bucket="e2e-proxy-ctl")
        # 3rd and 4th matching PUTs fail, everything else passes
        rules = _ctl(c, "PUT", "/rules", [{"action": "status", "status": 500,
                                           "method": "PUT", "skip": 2, "count": 2}])
        assert rules[0]["seen"] == 0 and rules[0]["fired"] == 0
        results = []
        for i in range(6):
            try:
                s3.put_object(Bucket="e2e-proxy-ctl", Key=f"k{i}", Body=b"v")
                results.append("ok")
            except ClientError as e:
                results.append(_err(e)[1])
        assert results == ["ok", "ok", "InternalError", "InternalError", "ok", "ok"], results
        rules = _ctl(c, "GET", "/rules")
        assert rules[0]["seen"] == 6 and rules[0]["fired"] == 2, rules
        stats = _ctl(c, "GET", "/stats")
        assert stats["requests"] == 7 and stats["faults"] == 2, stats
        # add a rule at runtime, then clear
        _ctl(c, "POST", "/rules", {"action": "status", "status": 503})
        _expect_client_error(lambda: s3.list_buckets(), 503, "SlowDown")
        assert _ctl(c, "DELETE", "/rules") == []
        s3.list_buckets()
        assert _ctl(c, "POST", "/reset") == {"status": "ok"}
        assert _ctl(c, "GET", "/stats")["requests"] == 0
        # bad rule -> 400
        try:
            _ctl(c, "POST", "/rules", {"action": "explode"})
        except urllib.error.HTTPError as e:
            assert e.code == 400
        else:
            raise AssertionError("bad rule accepted")


# ------------------------------------------------- non-botocore client
def test_curl_sigv4_client():
    """curl --aws-sigv4 (a libcurl signer, like a C client) through the proxy."""
    import shutil

    assert EP is not None
    curl = shutil.which("curl")
    if not curl:
        _skip("curl not installed")
    ver = subprocess.run([curl, "--version"], capture_output=True, text=True).stdout
    if tuple(int(x) for x in ver.split()[1].split(".")[:2]) < (7, 75):
        _skip("curl too old for --aws-sigv4")

    def run(url, *args, data=None):
        body = data or b""
        cmd = [curl, "-sS", "--retry", "2", "--retry-delay", "1",
               "--aws-sigv4", f"aws:amz:{EP.region}:s3",
               "--user", f"{EP.access_key_id}:{EP.secret_access_key}",
               # S3 requires this header; curl < 8.? does not add it itself
               "-H", "x-amz-content-sha256: " + hashlib.sha256(body).hexdigest(),
               "-o", "-", "-w", "\n%{http_code}", *args]
        if data is not None:  # --data-binary => form content type + Expect
            cmd += ["-X", "PUT", "--data-binary", "@-"]
        p = subprocess.run(cmd + [url], input=body, capture_output=True, timeout=60)
        out, _, code = p.stdout.rpartition(b"\n")
        return int(code or 0), out

    with FaultProxy(EP.endpoint_url) as proxy:
        base = proxy.url + "/e2e-curl"
        assert run(base, "-X", "PUT")[0] == 200
        proxy.set_rules([{"action": "status", "status": 503, "count": 1}])
        big = os.urandom(2 * MiB)
        key = "/%C3%BCn%C3%AF/a%2Bb%3Dc%20d"  # "ünï/a+b=c d"
        code, out = run(base + key, data=big)
        assert code == 200, (code, out[:300])
        assert proxy.stats()["faults"] == 1  # curl retried the 503
        code, out = run(base + key)
        assert code == 200 and out == big, (code, len(out))
        code, out = run(base + "?list-type=2&prefix=%C3%BCn%C3%AF%2F")
        assert code == 200 and "<Key>ünï/a+b=c d</Key>".encode() in out, out[:500]
        bad = run(base + key, "--user", f"{EP.access_key_id}:wrong")[0]
        assert bad == 403, bad
    assert EP.client().get_object(Bucket="e2e-curl", Key="ünï/a+b=c d")["Body"].read() == big


# ---------------------------------------------------- script entry points
def _wait_file(path: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, f"process exited rc={proc.returncode}"
        assert time.monotonic() < deadline, "timeout waiting for port file"
        time.sleep(0.05)
    with open(path) as f:
        return json.load(f)


def test_proxy_script_mode():
    import tempfile

    assert EP is not None
    d = tempfile.mkdtemp()
    pf = os.path.join(d, "proxy.json")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "fault_proxy.py"), "--upstream",
         EP.endpoint_url, "--port-file", pf, "--rules",
         json.dumps([{"action": "status", "status": 503, "count": 1}])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        info = _wait_file(pf, proc)
        s3 = _fast_retry_client(info["proxy_url"], 2)
        r = s3.list_buckets()
        assert r["ResponseMetadata"]["RetryAttempts"] == 1
        assert _ctl(info["control_url"], "GET", "/stats")["faults"] == 1
    finally:
        proc.stdin.close()  # EOF on stdin -> clean exit
        rc = proc.wait(timeout=10)
    assert rc == 0 and not os.path.exists(pf)
    os.rmdir(d)


def test_moto_launcher_exits_on_stdin_eof():
    m = MotoS3()
    ep = m.start()
    ep.client().list_buckets()
    m.stop()
    assert m.returncode == 0, m.returncode  # exited by itself on stdin EOF
    try:
        urllib.request.urlopen(ep.endpoint_url + "/", timeout=2)
    except urllib.error.HTTPError:
        raise AssertionError("server still answering after stop()")
    except OSError:
        pass


# -------------------------------------------------------------- runner
def _main(argv) -> int:
    verbose = "-v" in argv
    only = argv[argv.index("-k") + 1] if "-k" in argv else ""
    tests = [(n, f) for n, f in list(globals().items())
             if n.startswith("test_") and callable(f) and only in n]
    failed = []
    t_all = time.monotonic()
    setup_module()
    try:
        for name, fn in tests:
            t0 = time.monotonic()
            try:
                fn()
            except _Skip as e:
                print(f"SKIP {name}: {e}")
                continue
            except Exception:  # noqa: BLE001 - report every failure
                failed.append(name)
                print(f"FAIL {name} ({time.monotonic() - t0:.1f}s)")
                traceback.print_exc()
            else:
                print(f"PASS {name} ({time.monotonic() - t0:.1f}s)")
            sys.stdout.flush()
    finally:
        teardown_module()
    print(f"\n{len(tests) - len(failed)}/{len(tests)} passed "
          f"in {time.monotonic() - t_all:.1f}s (botocore {botocore.__version__})")
    if verbose and failed:
        print("failed:", " ".join(failed))
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
