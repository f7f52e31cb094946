#!/usr/bin/env python3
"""Run a command against a real, signature-checking S3 endpoint.

Starts moto's S3 (moto_s3.MotoS3, auth on) and a fault-injecting proxy in
front of it (fault_proxy.FaultProxy, no rules), creates a fresh bucket, then
runs the command with the environment an S3 user would have:

  AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3   the proxy (every request goes
                                          through it)
  AWS_REGION, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
  METAFLOW_DATASTORE_SYSROOT_S3           s3://<bucket>/metaflow

and for the tests themselves:

  MF_TEST_S3_BUCKET       the bucket
  MF_TEST_S3_DIRECT_URL   moto itself, bypassing the proxy
  MF_TEST_PROXY_CONTROL   the proxy's control URL (PUT /rules, GET /stats,
                          GET /container-credentials: temporary credentials
                          of a role assumed in moto, for
                          AWS_CONTAINER_CREDENTIALS_FULL_URI)

With --tls the proxy speaks https with a fresh self-signed certificate for
127.0.0.1, which AWS_CA_BUNDLE names.

AWS_* variables of the caller's environment (profiles, shared files) are
removed first so nothing but the test key can be used, and HOME and
XDG_CACHE_HOME point into a temporary directory. Exits with the command's
status.

  python3 tests/e2e/with_s3.py [--bucket NAME] [--tls] -- COMMAND [ARGS...]
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fault_proxy import FaultProxy  # noqa: E402
from moto_s3 import MotoS3  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bucket", default="mf-e2e")
    ap.add_argument("--tls", action="store_true",
                    help="the proxy speaks https with a fresh self-signed certificate "
                         "for 127.0.0.1, given to the command as AWS_CA_BUNDLE")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")
    with tempfile.TemporaryDirectory(prefix="mf-e2e-") as home:
        cert = key = None
        if args.tls:
            cert, key = os.path.join(home, "cert.pem"), os.path.join(home, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
        return run(args, cmd, home, cert, key)


def temporary_credentials(s3):
    """A function that assumes a role in moto and returns the temporary
    credentials in the container-credentials JSON form (what AWS Batch and
    ECS tasks get), each call a fresh session."""
    import json as _json

    iam, sts = s3.client("iam"), s3.client("sts")
    arn = iam.create_role(RoleName="mf-e2e-task", AssumeRolePolicyDocument=_json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName="mf-e2e-task", PolicyName="all", PolicyDocument=_json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                "Resource": "*"}]}))

    def fetch():
        c = sts.assume_role(RoleArn=arn, RoleSessionName="mf-e2e")["Credentials"]
        return {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["SessionToken"],
                "Expiration": c["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}
    fetch.role_arn = arn
    return fetch


def run(args, cmd, home, cert, key):
    with MotoS3() as s3, FaultProxy(s3.endpoint_url, check_payload_hash=True,
                                    tls_cert=cert, tls_key=key) as proxy:
        s3.client().create_bucket(Bucket=args.bucket)
        proxy.credentials_provider = temporary_credentials(s3)
        role_arn = proxy.credentials_provider.role_arn
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("METAFLOW_")}
        env.update(s3.env())
        env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_S3"] = proxy.url
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(home, "no-credentials")
        env["AWS_CONFIG_FILE"] = os.path.join(home, "no-config")
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env["HOME"] = home
        env["XDG_CACHE_HOME"] = os.path.join(home, ".cache")
        env["METAFLOW_DATASTORE_SYSROOT_S3"] = "s3://%s/metaflow" % args.bucket
        env["MF_TEST_S3_BUCKET"] = args.bucket
        env["MF_TEST_S3_DIRECT_URL"] = s3.endpoint_url
        env["MF_TEST_PROXY_CONTROL"] = proxy.control_url
        env["MF_TEST_ROLE_ARN"] = role_arn
        if cert:
            env["AWS_CA_BUNDLE"] = cert
        return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main())
