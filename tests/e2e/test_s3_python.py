#!/usr/bin/env python3
"""The Python binding on the S3 datastore, end to end, against moto with
signature checking on (run through tests/e2e/with_s3.py, by a python3 that
has boto3).

* `python flow.py --datastore s3 run`: foreach, join and a 200 MB artifact;
  METAFLOW_DEFAULT_DATASTORE=s3 gives the same; resume after a failure.
* A second machine (another index cache) reads the runs with the client.
* Interoperability both ways with boto3, through the public datastore
  vtable (ctypes): objects we write (single and multipart) read back by
  boto3 byte for byte; objects boto3 writes (put_object and the transfer
  manager's multipart upload_file) read back by us.
* A wrong secret fails the run with a clear error that never shows it.

Each check prints a line; the first failure raises and exits non-zero.
"""

import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap

import boto3
from botocore.config import Config

BUCKET = os.environ["MF_TEST_S3_BUCKET"]
PY = sys.executable
checks = 0


def ok(what):
    global checks
    checks += 1
    print("ok %d - %s" % (checks, what), flush=True)


FLOW = textwrap.dedent('''
    import os
    from metaflow import FlowSpec, step

    class S3PyFlow(FlowSpec):
        @step
        def start(self):
            blob = bytearray(200 * 1024 * 1024)
            for i in range(0, len(blob), 4096):
                blob[i] = i // 4096 % 251
            self.blob = blob
            self.items = list(range(6))
            self.next(self.body, foreach="items")

        @step
        def body(self):
            if os.environ.get("FAIL_ITEM") == str(self.input):
                raise RuntimeError("item %d failed on purpose" % self.input)
            self.square = self.input * self.input
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.square for i in inputs)
            self.merge_artifacts(inputs, include=["blob"])
            self.next(self.end)

        @step
        def end(self):
            assert len(self.blob) == 200 * 1024 * 1024 and self.blob[4096 * 300] == 300 % 251
            print("total", self.total)

    if __name__ == "__main__":
        S3PyFlow()
''')

CLIENT = textwrap.dedent('''
    import sys
    from metaflow import Flow, namespace
    namespace(None)
    run = Flow("S3PyFlow")[sys.argv[1]]
    end = run["end"].task
    print(run.successful, end.data.total, len(list(run["body"])), len(end.data.blob))
''')


def run(args, cwd, env=None, check=True):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([PY] + args, cwd=cwd, env=e, capture_output=True, text=True,
                       timeout=600)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def run_id_of(p):
    for line in (p.stdout + p.stderr).splitlines():
        if "Workflow starting" in line or "run-id" in line:
            for word in line.replace("(", " ").replace(")", " ").replace(",", " ").split():
                if word.isdigit() and len(word) >= 10:
                    return word
    raise AssertionError("no run id in:\n" + p.stdout + p.stderr)


def s3client():
    return boto3.client("s3", endpoint_url=os.environ["MF_TEST_S3_DIRECT_URL"],
                        region_name=os.environ["AWS_REGION"],
                        config=Config(s3={"addressing_style": "path"}))


def test_flows(tmp):
    with open(os.path.join(tmp, "flow.py"), "w") as f:
        f.write(FLOW)
    with open(os.path.join(tmp, "client.py"), "w") as f:
        f.write(CLIENT)

    p = run(["flow.py", "--datastore", "s3", "run"], tmp)
    rid = run_id_of(p)
    assert "total 55" in p.stdout + p.stderr, p.stdout + p.stderr
    ok("--datastore s3 run: foreach, join, a 200 MB artifact (run %s)" % rid)
    assert not os.path.exists(os.path.join(tmp, ".metaflow")), "wrote a local datastore"
    keys = [o["Key"] for page in s3client().get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix="metaflow/S3PyFlow/%s/" % rid) for o in page.get("Contents", [])]
    assert "metaflow/S3PyFlow/%s/_run" % rid in keys, keys
    assert sum(k.endswith(".manifest") for k in keys) == 9, keys
    ok("the run's records and 9 manifests are in the bucket, nothing on local disk")

    other = {"XDG_CACHE_HOME": os.path.join(tmp, "machine-b")}
    p = run(["client.py", rid], tmp, env=dict(other, METAFLOW_DEFAULT_DATASTORE="s3"))
    assert p.stdout.split() == ["True", "55", "6", str(200 * 1024 * 1024)], p.stdout
    ok("a second machine's client reads the run from S3")

    p = run(["flow.py", "run"], tmp, env={"METAFLOW_DEFAULT_DATASTORE": "s3",
                                          "FAIL_ITEM": "4"}, check=False)
    assert p.returncode != 0 and "failed on purpose" in p.stdout + p.stderr, p.stderr
    failed = run_id_of(p)
    ok("METAFLOW_DEFAULT_DATASTORE=s3: a failing run fails (run %s)" % failed)
    p = run(["flow.py", "resume", "--origin-run-id", failed], tmp,
            env={"METAFLOW_DEFAULT_DATASTORE": "s3"})
    resumed = run_id_of(p)
    assert resumed != failed and "total 55" in p.stdout + p.stderr, p.stdout + p.stderr
    p = run(["client.py", resumed], tmp, env=dict(other, METAFLOW_DEFAULT_DATASTORE="s3"))
    assert p.stdout.split()[:3] == ["True", "55", "6"], p.stdout
    ok("resume on S3 succeeds and the second machine sees it")

    mfctl = os.environ.get("MFCTL")
    if mfctl:
        e = dict(os.environ, METAFLOW_DEFAULT_DATASTORE="s3",
                 XDG_CACHE_HOME=os.path.join(tmp, "machine-c"))
        p = subprocess.run([mfctl, "runs", "S3PyFlow"], env=e, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        ids = [line.split("\t")[0] for line in p.stdout.splitlines()]
        states = {line.split("\t")[0]: line.split("\t")[1] for line in p.stdout.splitlines()}
        assert set(ids) == {rid, failed, resumed}, p.stdout
        assert states[failed] == "failed" and states[resumed] == "succeeded", p.stdout
        ok("mfctl on a third machine lists the three runs from S3")

    p = run(["flow.py", "--datastore", "s3", "run"], tmp,
            env={"AWS_SECRET_ACCESS_KEY": "AbCdWrongSecretWrongSecretWrongSecret1234"},
            check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "HTTP 403" in out and "SignatureDoesNotMatch" in out, out
    assert "AbCdWrongSecret" not in out and os.environ["AWS_SECRET_ACCESS_KEY"] not in out, out
    ok("a wrong secret fails clearly (HTTP 403 SignatureDoesNotMatch), secret not shown")


# ---- the datastore vtable through ctypes

class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_uint64)]


class Buf(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("reserved", ctypes.c_size_t),
                ("size", ctypes.c_size_t)]


class Vtable(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint),
        ("free", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
        ("put", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.POINTER(Iovec), ctypes.c_size_t, ctypes.c_uint32)),
        ("get", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.c_uint64, ctypes.c_uint64, ctypes.POINTER(Buf))),
        ("exists", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                    ctypes.POINTER(ctypes.c_uint64))),
    ]


class Datastore:
    def __init__(self, root):
        self.lib = ctypes.CDLL(os.environ["LIBMETAFLOW_PATH"])
        self.lib.mf_error_last.restype = ctypes.c_char_p
        self.h = ctypes.c_void_p()
        rc = self.lib.mf_datastore_open(ctypes.byref(self.h), b"s3", root.encode())
        assert rc == 0, self.err()
        self.vt = ctypes.cast(self.h, ctypes.POINTER(Vtable)).contents

    def err(self):
        return self.lib.mf_error_last().decode()

    def put(self, key, data):
        cbuf = ctypes.create_string_buffer(data, len(data))
        iov = Iovec(ctypes.cast(cbuf, ctypes.c_void_p), len(data))
        rc = self.vt.put(self.h, key.encode(), ctypes.byref(iov), 1, 0)
        assert rc == 0, self.err()

    def get(self, key):
        b = Buf()
        rc = self.vt.get(self.h, key.encode(), 0, 2 ** 64 - 1, ctypes.byref(b))
        assert rc == 0, self.err()
        data = ctypes.string_at(b.ptr, b.size) if b.size else b""
        self.lib.mf_buf_dispose(ctypes.byref(b))
        return data

    def size(self, key):
        n = ctypes.c_uint64()
        rc = self.vt.exists(self.h, key.encode(), ctypes.byref(n))
        assert rc == 0, self.err()
        return n.value

    def close(self):
        self.lib.mf_datastore_free(self.h)


def test_interop(tmp):
    s3 = s3client()
    os.environ["MF_S3_MULTIPART_THRESHOLD"] = "5M"
    os.environ["MF_S3_PART_SIZE"] = "5M"
    ds = Datastore("s3://%s/interop" % BUCKET)
    small = os.urandom(1000) + "ünï".encode()
    big = os.urandom(12 * 1024 * 1024 + 17)
    ds.put("ours/small.bin", small)
    ds.put("ours/big.bin", big)
    got = s3.get_object(Bucket=BUCKET, Key="interop/ours/small.bin")["Body"].read()
    assert got == small
    obj = s3.get_object(Bucket=BUCKET, Key="interop/ours/big.bin")
    assert obj["Body"].read() == big and obj["ETag"].strip('"').endswith("-3"), obj["ETag"]
    ok("objects we write (single PUT, 3-part multipart) read back by boto3")

    s3.put_object(Bucket=BUCKET, Key="interop/theirs/small.txt", Body=b"from boto3")
    path = os.path.join(tmp, "upload.bin")
    data = os.urandom(20 * 1024 * 1024 + 5)
    with open(path, "wb") as f:
        f.write(data)
    from boto3.s3.transfer import TransferConfig
    s3.upload_file(path, BUCKET, "interop/theirs/big.bin",
                   Config=TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20))
    assert ds.get("theirs/small.txt") == b"from boto3"
    assert ds.size("theirs/big.bin") == len(data)
    assert hashlib.sha256(ds.get("theirs/big.bin")).digest() == hashlib.sha256(data).digest()
    ok("objects boto3 writes (put_object, multipart upload_file) read back by us")
    ds.close()


def main():
    with tempfile.TemporaryDirectory(prefix="mf-s3py-") as tmp:
        test_interop(tmp)
        test_flows(tmp)
    print("1..%d" % checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
