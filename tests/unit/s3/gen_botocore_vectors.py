#!/usr/bin/env python3
"""Print the botocore cross-check vectors of test_sigv4.c as C initializers.

Each case is a real boto3 S3 client call. The client's clock is pinned to
2015-08-30T12:36:00Z, and the request is captured at 'before-send' (after
signing, before any network I/O; nothing is sent). The capture is turned
back into signer inputs: the path and query are percent-decoded, because
mf__sigv4_sign() takes decoded values and encodes them itself. So the C
test checks our encoding and botocore's against each other as well as the
signature. The headers passed are exactly those botocore signed, less the
ones our signer adds itself (host, x-amz-date, x-amz-content-sha256,
x-amz-security-token).

Run:  python3 tests/unit/s3/gen_botocore_vectors.py > /tmp/vectors.inc
then paste the output over the botocore_cases[] table in test_sigv4.c.
Needs boto3/botocore (produced with the versions named in the header line).
"""
import datetime
import os
import sys
from urllib.parse import unquote, urlsplit

os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
            "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"):
    os.environ.pop(var, None)

import boto3  # noqa: E402
import botocore  # noqa: E402
import botocore.auth  # noqa: E402
from botocore.config import Config  # noqa: E402

# The signer reads the clock through this module-level name.
botocore.auth.get_current_datetime = lambda *a, **k: datetime.datetime(2015, 8, 30, 12, 36, 0)

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/=="
ADDED_BY_SIGNER = {"host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"}


class Captured(Exception):
    pass


def capture(region, call, token=None, **config):
    session = boto3.session.Session(aws_access_key_id=AKID, aws_secret_access_key=SECRET,
                                    aws_session_token=token, region_name=region)
    client = session.client("s3", config=Config(**config))
    seen = {}

    def hook(request, **kwargs):
        seen["req"] = request
        raise Captured()

    client.meta.events.register("before-send", hook)
    try:
        call(client)
    except Captured:
        pass
    return seen["req"]


def text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v


def c_str(s):
    """A C string literal for UTF-8 text; breaks the literal after a \\x
    escape when a hex digit follows, so the escape cannot swallow it."""
    out, prev_hex = ['"'], False
    for b in s.encode("utf-8"):
        ch = chr(b)
        if prev_hex and ch in "0123456789abcdefABCDEF":
            out.append('" "')
        prev_hex = False
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 0x20 <= b < 0x7f:
            out.append(ch)
        else:
            out.append("\\x%02x" % b)
            prev_hex = True
    out.append('"')
    return "".join(out)


def pairs(items):
    if not items:
        return "{ { NULL, NULL } }, 0"
    body = ", ".join("{ %s, %s }" % (c_str(n), c_str(v)) for n, v in items)
    return "{ %s }, %d" % (body, len(items))


def emit(what, region, req, token):
    url = urlsplit(req.url)
    headers = {k.lower(): text(v) for k, v in req.headers.items()}
    auth = headers["authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    extra = [(n, headers[n]) for n in signed if n not in ADDED_BY_SIGNER]
    query = []
    if url.query:
        for part in url.query.split("&"):
            name, _, value = part.partition("=")
            query.append((unquote(name), unquote(value)))
    print("    {")
    print("        %s," % c_str(what))
    print("        %s, %s, %s, %s," % (c_str(req.method), c_str(url.netloc),
                                       c_str(unquote(url.path)), c_str(region)))
    print("        %s," % pairs(query))
    print("        %s," % pairs(extra))
    print("        %s," % c_str(headers["x-amz-content-sha256"]))
    print("        %s," % (c_str(token) if token else "NULL"))
    print("        /* botocore's canonical URI: %s */" % url.path.replace("*/", "*\\/"))
    if url.query:
        print("        /* and query as sent: %s */" % url.query.replace("*/", "*\\/"))
    print("        %s," % c_str(auth))
    print("    },")


CASES = [
    ("GetObject: key with '+', '=', space, non-ASCII, '/'", "us-east-1", None, {},
     lambda c: c.get_object(Bucket="examplebucket", Key="a+b=c d/\u00e9t\u00e9 \u65e5\u672c.txt")),
    ("GetObject with a byte range, path-style, eu-west-1", "eu-west-1", None,
     {"s3": {"addressing_style": "path"}},
     lambda c: c.get_object(Bucket="examplebucket", Key="data/ab/abcdef 01+02", Range="bytes=0-9")),
    ("HeadObject: key of sub-delims and '~'", "us-west-2", None, {},
     lambda c: c.head_object(Bucket="examplebucket", Key="x/~!$&'()*,;:@[] %25.bin")),
    ("GetObject: versionId with '/', '+', '=' in the query", "us-east-1", None, {},
     lambda c: c.get_object(Bucket="examplebucket", Key="k", VersionId="3/L4kqtJl+cw2=")),
    ("ListObjectsV2: prefix with '/', literal '%2F', '+', space; session token",
     "us-east-1", TOKEN, {},
     lambda c: c.list_objects_v2(Bucket="examplebucket", Prefix="data/a b/%2F+x", Delimiter="/",
                                 MaxKeys=2)),
    ("PutObject: signed payload, Content-MD5, session token", "eu-central-1", TOKEN,
     {"s3": {"payload_signing_enabled": True}, "request_checksum_calculation": "when_required"},
     lambda c: c.put_object(Bucket="examplebucket", Key="flows/F/\u00fc n+i=c.d", Body=b"hello, world\n",
                            ContentType="application/octet-stream",
                            ContentMD5="IsNoOwlBNsM5g5GucbIPBA==")),
    ("PutObject: UNSIGNED-PAYLOAD", "us-east-1", None,
     {"s3": {"payload_signing_enabled": False}, "request_checksum_calculation": "when_required"},
     lambda c: c.put_object(Bucket="examplebucket", Key="blob 1", Body=b"x" * 100)),
]

if __name__ == "__main__":
    print("/* Generated by tests/unit/s3/gen_botocore_vectors.py with boto3 %s, botocore %s. */"
          % (boto3.__version__, botocore.__version__))
    for what, region, token, config, call in CASES:
        emit(what, region, capture(region, call, token, **config), token)
    sys.stdout.flush()
