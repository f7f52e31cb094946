#!/usr/bin/env python3
"""S3 transfer benchmark: libmetaflow against boto3's transfer manager.

Starts moto's S3 on 127.0.0.1 with signature checking on
(tests/e2e/moto_s3.py), writes a file of random bytes, then, per round:

* ours: bench_s3 streams the file into an artifact (mf_task_put_stream)
  and back out into a file (mf_artifact_read_stream);
* boto3: upload_file and download_file of the same file, with the default
  TransferConfig (8 MiB multipart chunks, 10 threads).

Each side's objects are deleted after its round, so no round finds the
previous one's data. Prints seconds, MB/s and peak RSS (ours: the
bench_s3 process; boto3: this process's growth, since moto runs in a
child). Run on demand:

  python3 bench/bench_s3.py --bench build/bench/bench_s3 [--mb 1024] [--rounds 2]

Needs a python3 with moto and boto3 (the machine's default one).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

from moto_s3 import MotoS3  # noqa: E402


def make_file(path, mb):
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))


def delete_prefix(client, bucket, prefix):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys[i:i + 1000]})


def same(a, b):
    with open(a, "rb") as x, open(b, "rb") as y:
        while True:
            p, q = x.read(1 << 20), y.read(1 << 20)
            if p != q:
                return False
            if not p:
                return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="the bench_s3 executable")
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lib", default=None, help="LD_LIBRARY_PATH for bench_s3")
    args = ap.parse_args()
    from boto3.s3.transfer import TransferConfig

    bucket = "bench"
    with MotoS3() as s3, tempfile.TemporaryDirectory(prefix="mf-bench-s3-") as tmp:
        client = s3.client()
        client.create_bucket(Bucket=bucket)
        src, dst = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
        make_file(src, args.mb)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(s3.env())
        env.update({"METAFLOW_DEFAULT_DATASTORE": "s3",
                    "METAFLOW_DATASTORE_SYSROOT_S3": "s3://%s/mf" % bucket,
                    "XDG_CACHE_HOME": os.path.join(tmp, "cache"),
                    "AWS_EC2_METADATA_DISABLED": "true"})
        if args.lib:
            env["LD_LIBRARY_PATH"] = args.lib
        mb = args.mb * (1 << 20) / 1e6
        rows = []
        for r in range(args.rounds):
            out = subprocess.run([args.bench, src, dst], env=env, capture_output=True,
                                 text=True, check=False)
            if out.returncode != 0:
                sys.exit("bench_s3 failed:\n" + out.stderr)
            ours = json.loads(out.stdout)
            assert same(src, dst), "bench_s3: the bytes read back differ"
            delete_prefix(client, bucket, "mf/")
            os.unlink(dst)

            cfg = TransferConfig()
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.monotonic()
            client.upload_file(src, bucket, "boto3/in.bin", Config=cfg)
            t1 = time.monotonic()
            client.download_file(bucket, "boto3/in.bin", dst, Config=cfg)
            with open(dst, "rb+") as f:
                os.fsync(f.fileno())
            t2 = time.monotonic()
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            assert same(src, dst), "boto3: the bytes read back differ"
            delete_prefix(client, bucket, "boto3/")
            os.unlink(dst)
            rows.append((ours, (t1 - t0, t2 - t1, rss1 - rss0, rss1)))
            print("round %d: ours up %.2f s down %.2f s rss %d MB | boto3 up %.2f s down %.2f s"
                  % (r + 1, ours["up_s"], ours["down_s"], ours["peak_rss_kb"] // 1024,
                     t1 - t0, t2 - t1), flush=True)

        print()
        print("S3 transfer of %d MiB against moto on 127.0.0.1 (%d rounds)" % (args.mb, args.rounds))
        print("%-28s %10s %10s %10s %10s %14s" % ("", "up s", "up MB/s", "down s", "down MB/s",
                                                  "peak RSS MB"))
        for name, pick in (("libmetaflow (stream API)", 0), ("boto3 transfer manager", 1)):
            for ours, theirs in rows:
                if pick == 0:
                    up, down, rss = ours["up_s"], ours["down_s"], ours["peak_rss_kb"] / 1024
                else:
                    up, down, rss = theirs[0], theirs[1], theirs[3] / 1024
                print("%-28s %10.2f %10.1f %10.2f %10.1f %14.0f"
                      % (name, up, mb / up, down, mb / down, rss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
